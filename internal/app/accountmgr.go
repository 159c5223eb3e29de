package app

import (
	"log/slog"

	"github.com/sluice-custody/sluice/accountmgr"
	"github.com/sluice-custody/sluice/internal/queue"
	"github.com/sluice-custody/sluice/internal/service"
)

// accountmgrWorkers builds `sluice accountmgr`: the round that reads balances and queues balance-checks
// every accountmgr.interval, and the balance-check consumer that queues top-ups and sweeps.
func (a *App) accountmgrWorkers(log *slog.Logger) ([]service.Worker, error) {
	hub, err := a.Alerts()
	if err != nil {
		return nil, err
	}
	d := accountmgr.Deps{Store: a.Store, Queue: a.Queue, Sender: a.Sender, Alerts: hub, Interval: a.Cfg.AccountMgr.Interval.Duration,
		Chains: map[string]accountmgr.ChainDeps{}}
	for _, ch := range a.Cfg.Chains {
		d.Chains[ch.Name] = accountmgr.ChainDeps{Config: ch, Client: a.Chains[ch.Name]}
	}
	m, err := accountmgr.New(d, log, metricsOf(a, "accountmgr", accountmgr.NewMetrics))
	if err != nil {
		return nil, err
	}
	c, err := a.consumer("accountmgr", queue.BalanceCheck, m.Handle)
	if err != nil {
		return nil, err
	}
	return []service.Worker{m.Run, c}, nil
}
