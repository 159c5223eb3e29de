package config

// AccountMgr tunes `sluice accountmgr`, which keeps every hot wallet's balances within their top_up
// band from the chain's main_account.
type AccountMgr struct {
	// Interval is the pause between two balance checks of every managed account (default 30s).
	Interval Duration `yaml:"interval"`
}
