package mysqlq

// The claim statements, for the query-plan test.
var (
	ClaimUngroupedSQL  = claimUngroupedSQL
	ClaimGroupHeadsSQL = claimGroupHeadsSQL
)
