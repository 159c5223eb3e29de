package admin

import "time"

// Role is what an operator may do; each role can do everything the roles before it can.
type Role string

const (
	RoleViewer   Role = "viewer"   // reads
	RoleOperator Role = "operator" // + requests actions (single-person ones take effect at once)
	RoleApprover Role = "approver" // + approves or rejects other operators' requests
	RoleAdmin    Role = "admin"    // + manages operators
)

// Operator is an operator account as the API shows it (never its password hash).
type Operator struct {
	Username  string     `json:"username"`
	Role      Role       `json:"role"`
	Disabled  bool       `json:"disabled"`
	CreatedAt time.Time  `json:"created_at"`
	LastLogin *time.Time `json:"last_login,omitempty"`
}

// LoginRequest is POST /admin/v1/auth/login. Session "cookie" (the dashboard) sets the session and CSRF
// cookies instead of returning the tokens.
type LoginRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
	Session  string `json:"session,omitempty"` // "" (tokens in the body) or "cookie"
}

// Tokens is the answer to login and refresh. AccessToken is a short-lived JWT; RefreshToken is opaque.
type Tokens struct {
	AccessToken  string    `json:"access_token,omitempty"`
	RefreshToken string    `json:"refresh_token,omitempty"`
	ExpiresAt    time.Time `json:"expires_at"`
	CSRFToken    string    `json:"csrf_token,omitempty"` // cookie sessions: send it back in X-CSRF-Token
	Operator     Operator  `json:"operator"`
}

// Problem is one thing wrong now, for `sluice ops status` and the dashboard's overview (worst first).
type Problem struct {
	Severity string    `json:"severity"` // critical, warning, info
	Kind     string    `json:"kind"`     // stuck_tx, nonce_gap, dlq, frozen_wallet, alert, awaiting_funds, webhook_dead, ...
	Chain    string    `json:"chain,omitempty"`
	Subject  string    `json:"subject"` // what it is about: a wallet, a tx hash, a queue
	Message  string    `json:"message"`
	Since    time.Time `json:"since"`
	Hint     string    `json:"hint,omitempty"` // the command that fixes it, e.g. "sluice ops withdrawals speed-up <id>"
}

// Status is GET /admin/v1/status.
type Status struct {
	Problems []Problem     `json:"problems"`
	Summary  []ChainCounts `json:"summary"`
}

// ChainCounts is one chain's pipeline summary (GET /admin/v1/summary returns a list of them).
type ChainCounts struct {
	Chain            string         `json:"chain"`
	Counts           map[string]int `json:"counts"` // state → withdrawals
	OldestOpenAgeSec float64        `json:"oldest_open_age_s"`
}

// Page is a page of a list: next_cursor is empty on the last page.
type Page[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor,omitempty"`
}

// TxPlan is one transaction an action would sign.
type TxPlan struct {
	Chain             string   `json:"chain"`
	From              string   `json:"from"`
	Nonce             uint64   `json:"nonce"`
	To                string   `json:"to"`
	ValueWei          string   `json:"value_wei"`
	MaxFeePerGasWei   string   `json:"max_fee_per_gas_wei"`
	MaxPriorityFeeWei string   `json:"max_priority_fee_per_gas_wei"`
	Kind              string   `json:"kind"` // payment, replacement, cancel, gap_fill
	Replaces          string   `json:"replaces,omitempty"`
	WithdrawalIDs     []string `json:"withdrawal_ids,omitempty"`
}

// RowChange is one row an action would change.
type RowChange struct {
	Table  string `json:"table"`
	Key    string `json:"key"`
	Change string `json:"change"` // e.g. "status SIGNED → FAILED"
}

// Plan is what an action would do: the exact transactions and rows; a dry run returns only this.
type Plan struct {
	Summary      string      `json:"summary"`
	Transactions []TxPlan    `json:"transactions,omitempty"`
	Rows         []RowChange `json:"rows,omitempty"`
	Warnings     []string    `json:"warnings,omitempty"`
}

// ActionRequest is POST /admin/v1/actions.
type ActionRequest struct {
	Action    string            `json:"action"` // see the Action* names
	Target    string            `json:"target"` // withdrawal id, DLQ message id, or "chain/address" for a wallet
	Params    map[string]string `json:"params,omitempty"`
	Reason    string            `json:"reason,omitempty"`
	DryRun    bool              `json:"dry_run,omitempty"`
	RequestID string            `json:"request_id"` // client-chosen UUID: the same id replayed does nothing twice
}

// Action outcome states.
const (
	ActionPlanned          = "planned"           // dry run
	ActionDone             = "done"              // performed (or recorded for the signing service)
	ActionAwaitingApproval = "awaiting_approval" // two-person: waits for a different approver (HTTP 202)
	ActionRejected         = "rejected"
	ActionExpired          = "expired"
	ActionFailed           = "failed"
)

// ActionResult is the answer to POST /admin/v1/actions and an approval's view of its action.
type ActionResult struct {
	RequestID   string         `json:"request_id"`
	Action      string         `json:"action"`
	Target      string         `json:"target"`
	Status      string         `json:"status"`
	Plan        Plan           `json:"plan"`
	Result      map[string]any `json:"result,omitempty"`
	Error       string         `json:"error,omitempty"`
	RequestedBy string         `json:"requested_by"`
	ApprovedBy  string         `json:"approved_by,omitempty"`
	ExpiresAt   *time.Time     `json:"expires_at,omitempty"`
}

// Actions an operator can request. TwoPerson lists those that need a second person.
const (
	ActionWithdrawalRetry   = "withdrawal.retry"
	ActionWithdrawalFail    = "withdrawal.fail"
	ActionWithdrawalCancel  = "withdrawal.cancel"
	ActionWithdrawalSpeedUp = "withdrawal.speed-up"
	ActionDLQRedrive        = "dlq.redrive"
	ActionDLQDiscard        = "dlq.discard"
	ActionWalletResync      = "wallet.resync" // params force=true makes it two-person
	ActionWalletFillGap     = "wallet.fill-gap"
	ActionWalletFreeze      = "wallet.freeze"
	ActionWalletUnfreeze    = "wallet.unfreeze"
)

// Approval is a pending (or decided) two-person request: GET /admin/v1/approvals.
type Approval struct {
	ID        string       `json:"id"`
	Status    string       `json:"status"` // pending, approved, rejected, expired
	Action    ActionResult `json:"action"`
	CreatedAt time.Time    `json:"created_at"`
	ExpiresAt time.Time    `json:"expires_at"`
	DecidedBy string       `json:"decided_by,omitempty"`
	DecidedAt *time.Time   `json:"decided_at,omitempty"`
	Reason    string       `json:"reason,omitempty"`
}

// AuditEntry is one row of the audit log.
type AuditEntry struct {
	ID       int64          `json:"id"`
	At       time.Time      `json:"at"`
	Operator string         `json:"operator"`
	Remote   string         `json:"remote"`
	Kind     string         `json:"kind"` // login, login_failed, read, action, approval, operator
	What     string         `json:"what"`
	Detail   map[string]any `json:"detail,omitempty"` // the plan, the outcome
	Outcome  string         `json:"outcome"`
	PrevHash string         `json:"prev_hash"`
	Hash     string         `json:"hash"`
}

// AuditVerify is GET /admin/v1/audit/verify.
type AuditVerify struct {
	OK            bool   `json:"ok"`
	Rows          int64  `json:"rows"`
	FirstBrokenID int64  `json:"first_broken_id,omitempty"`
	Reason        string `json:"reason,omitempty"`
}
