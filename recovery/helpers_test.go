package recovery_test

import (
	"github.com/sluice-custody/sluice/internal/alert"
	"github.com/sluice-custody/sluice/internal/config"
	"github.com/sluice-custody/sluice/internal/pipelinetest"
	"github.com/sluice-custody/sluice/recovery"
)

// newService builds a recovery service on e for chain config ch (the Env's, or one with other fees).
func newService(e *pipelinetest.Env, ch config.Chain, n alert.Notifier) *recovery.Service {
	e.T.Helper()
	s, err := recovery.New(recovery.Deps{Store: e.Store, Queue: e.Queue, Keys: e.Keys, Leases: e.Nonces, Alerts: n,
		Chains: map[string]recovery.ChainDeps{"local": {Config: ch, Client: e.Client}}}, e.Log, recovery.NopMetrics())
	if err != nil {
		e.T.Fatal(err)
	}
	return s
}
