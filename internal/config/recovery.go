package config

// Recovery tunes what the recovery service does on one chain (the `recovery:` block of a chain).
type Recovery struct {
	// FreezeOnConflict freezes the hot wallet when a transaction Sluice did not sign takes one of its
	// nonces (the key was used outside Sluice): the signer stops using it until an operator unfreezes
	// it. Default true.
	FreezeOnConflict *bool `yaml:"freeze_on_conflict"`
}

// FreezesOnConflict reports whether a nonce conflict freezes the wallet (the default).
func (r Recovery) FreezesOnConflict() bool { return r.FreezeOnConflict == nil || *r.FreezeOnConflict }
