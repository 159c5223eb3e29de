package config

// Recovery tunes what the recovery service does on one chain (the `recovery:` block of a chain).
type Recovery struct {
	// StuckAfterBlocks is how many blocks a broadcast transaction may stay unmined before it is bumped
	// (or resent, when the node no longer knows it). Default: about 10 seconds of blocks, at least 3 and
	// at most 20 (StuckAfterBlocksFor): 5 on a 2 s chain like Polygon, 3 on Ethereum's 12 s.
	StuckAfterBlocks uint64 `yaml:"stuck_after_blocks"`
	// FreezeOnConflict freezes the hot wallet when a transaction Sluice did not sign takes one of its
	// nonces (the key was used outside Sluice): the signer stops using it until an operator unfreezes
	// it. Default true.
	FreezeOnConflict *bool `yaml:"freeze_on_conflict"`
	// ReorgWatchBlocks is how many blocks past its receipt's block a CONFIRMED transaction is still
	// checked against the canonical chain: a reorg deeper than the confirmations re-opens its
	// withdrawals and raises a critical deep_reorg alert. A reverted batch gives its withdrawals back
	// only this deep (monitor). Default: twice the confirmations.
	ReorgWatchBlocks uint64 `yaml:"reorg_watch_blocks"`
}

// FreezesOnConflict reports whether a nonce conflict freezes the wallet (the default).
func (r Recovery) FreezesOnConflict() bool { return r.FreezeOnConflict == nil || *r.FreezeOnConflict }

// Values of a chain's finality.
const (
	FinalityDepth     = "depth"
	FinalityFinalized = "finalized"
)

// WaitsForFinalized reports whether the chain's transactions are final only once the node's
// `finalized` block has reached them.
func (ch *Chain) WaitsForFinalized() bool { return ch.Finality == FinalityFinalized }
