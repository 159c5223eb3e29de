package app

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/sluice-custody/sluice/internal/alert"
	"github.com/sluice-custody/sluice/internal/queue"
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

// recoveryExtras builds the recovery duties that consume queues rather than sweep: the nonce-conflict
// resolver (its own sweep plus the drain's questions about who took a nonce) and one consumer per DLQ,
// acting on each dead letter by its error class.
func (a *App) recoveryExtras(rs *recovery.Service, log *slog.Logger) ([]service.Worker, error) {
	chains := map[string]recovery.ConflictChainDeps{}
	for _, ch := range a.Cfg.Chains {
		chains[ch.Name] = recovery.ConflictChainDeps{Config: ch, Client: a.Chains[ch.Name]}
	}
	conf, err := recovery.NewConflictResolver(recovery.ConflictDeps{Store: rs.Store(), Queue: a.Sender,
		Alerts: rs.Alerts(), Chains: chains}, log, metricsOf(a, "recovery_conflicts", recovery.NewConflictMetrics))
	if err != nil {
		return nil, err
	}
	drain, err := recovery.NewDrainer(recovery.DrainDeps{Store: rs.Store(), Queue: a.Sender, Alerts: rs.Alerts(),
		Conflicts: conf, FillGaps: func(ctx context.Context) error { _, err := rs.FillGaps(ctx); return err }},
		log, metricsOf(a, "recovery_dlq", recovery.NewDLQMetrics))
	if err != nil {
		return nil, err
	}
	ws := []service.Worker{conf.Run}
	for _, dlq := range recovery.DLQs {
		// A decision to wait (a foreign tx not yet final, a redrive not yet due) comes back as a retry
		// after the visibility timeout: minutes, not the pipeline's seconds.
		c, err := queue.NewConsumer(queue.ConsumerDeps{Queue: a.Queue, Name: dlq, Handler: drain.Handler(dlq),
			Concurrency: a.Cfg.Services["recovery"].Concurrency, Visibility: 2 * time.Minute,
			Wait: a.Cfg.Queue.WaitTime.Duration}, log, a.queueMetrics)
		if err != nil {
			return nil, err
		}
		ws = append(ws, c.Run)
	}
	return ws, nil
}
