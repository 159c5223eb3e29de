package app

import (
	"log/slog"
	"sync"

	"github.com/sluice-custody/sluice/internal/alert"
	"github.com/sluice-custody/sluice/internal/service"
	"github.com/sluice-custody/sluice/recovery"
)

// Alerts is the process's alert notifier: every service of the process raises alerts through it, and
// every instance of every process shares its open alerts through the database (table alerts). Its
// webhook delivery runs with the process's workers.
func (a *App) Alerts() (*alert.Hub, error) {
	a.hubOnce.Do(func() {
		c := a.Cfg.Alerts
		a.hub, a.hubErr = alert.New(alert.Deps{Book: a.Store, Webhook: alert.WebhookConfig{
			URL: c.WebhookURL, Timeout: c.WebhookTimeout.Duration, Retries: c.WebhookRetries}},
			a.Log.With("component", "alerts"), metricsOf(a, "alerts", alert.NewMetrics))
	})
	return a.hub, a.hubErr
}

// hubState is embedded in App: the notifier is made once per process.
type hubState struct {
	hubOnce sync.Once
	hubErr  error
}

// recoveryWorkers builds `sluice recovery`: gap filling and stuck/dropped transactions
// (recovery.Service), then whatever RecoveryExtras adds.
func (a *App) recoveryWorkers(log *slog.Logger) ([]service.Worker, error) {
	hub, err := a.Alerts()
	if err != nil {
		return nil, err
	}
	d := recovery.Deps{Store: a.Store, Queue: a.Sender, Keys: a.Keys, Leases: a.Nonces, Alerts: hub,
		Chains: map[string]recovery.ChainDeps{}}
	for _, ch := range a.Cfg.Chains {
		d.Chains[ch.Name] = recovery.ChainDeps{Config: ch, Client: a.Chains[ch.Name]}
	}
	rs, err := recovery.New(d, log, metricsOf(a, "recovery", recovery.NewMetrics))
	if err != nil {
		return nil, err
	}
	var ws []service.Worker
	for _, w := range rs.Workers() {
		ws = append(ws, w)
	}
	extra, err := a.recoveryExtras(rs, log)
	if err != nil {
		return nil, err
	}
	return append(ws, extra...), nil
}

// recoveryExtras is THE HOOK for the recovery duties built outside recovery.Service: the DLQ consumers
// (one per DLQ, a.consumer(…, queue.DLQ name, handler)) and the nonce-conflict handler register their
// workers here. They get the running service (rs.Store(), rs.Alerts(), rs.FillAddress for
// NONCE_TOO_HIGH) and the App (a.Queue, a.Sender, a.Chains, a.consumer). Every worker returned runs in
// `sluice recovery` (and `sluice all`, `sluice dev`) next to the gap and stuck sweeps.
func (a *App) recoveryExtras(rs *recovery.Service, log *slog.Logger) ([]service.Worker, error) {
	_, _ = rs, log
	return nil, nil
}
