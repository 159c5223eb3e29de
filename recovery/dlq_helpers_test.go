package recovery_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/sluice-custody/sluice/internal/alert"
	"github.com/sluice-custody/sluice/internal/pipelinetest"
	"github.com/sluice-custody/sluice/internal/queue"
	"github.com/sluice-custody/sluice/internal/store"
	"github.com/sluice-custody/sluice/internal/txerr"
	"github.com/sluice-custody/sluice/recovery"
)

// recAlerts records every alert fired.
type recAlerts struct {
	mu    sync.Mutex
	fired []alert.Alert
}

func (r *recAlerts) Fire(_ context.Context, a alert.Alert) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fired = append(r.fired, a)
}

func (r *recAlerts) Resolve(context.Context, string) {}

// kinds returns the alerts of a kind.
func (r *recAlerts) kind(k string) []alert.Alert {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []alert.Alert
	for _, a := range r.fired {
		if a.Kind == k {
			out = append(out, a)
		}
	}
	return out
}

// drainEnv is a pipeline with a drain and a conflict resolver on it.
type drainEnv struct {
	*pipelinetest.Env
	alerts    *recAlerts
	conflicts *recovery.ConflictResolver
	drain     *recovery.Drainer
	gapFills  int
}

func newDrainEnv(t *testing.T, o pipelinetest.Options, freeze *bool) *drainEnv {
	t.Helper()
	e := &drainEnv{Env: pipelinetest.New(t, o), alerts: &recAlerts{}}
	cfg := e.Config
	cfg.Recovery.FreezeOnConflict = freeze
	var err error
	e.conflicts, err = recovery.NewConflictResolver(recovery.ConflictDeps{Store: e.Store, Queue: e.Queue, Alerts: e.alerts,
		Chains: map[string]recovery.ConflictChainDeps{"local": {Config: cfg, Client: e.Client}}}, e.Log, recovery.NopConflictMetrics())
	if err != nil {
		t.Fatal(err)
	}
	e.drain, err = recovery.NewDrainer(recovery.DrainDeps{Store: e.Store, Queue: e.Queue, Alerts: e.alerts, Conflicts: e.conflicts,
		FillGaps:    func(context.Context) error { e.gapFills++; return nil },
		BackoffBase: time.Millisecond, BackoffMax: 10 * time.Millisecond, MaxRedrives: 3}, e.Log, recovery.NopDLQMetrics())
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// deadLetter puts m (taken off work queue src) on src's DLQ as the consumer does after err, and
// receives it from there.
func (e *drainEnv) deadLetter(src string, m queue.Message, err error) queue.Message {
	e.T.Helper()
	body, derr := queue.DeadLetterFor(m, src, err, time.Now().Add(-time.Minute))
	if derr != nil {
		e.T.Fatal(derr)
	}
	if m.Receipt != "" { // as the consumer does: the original leaves its queue (and its FIFO group)
		if err := e.Queue.Delete(e.Ctx, src, m); err != nil {
			e.T.Fatal(err)
		}
	}
	return e.onDLQ(queue.DLQFor(src), body, m.GroupID)
}

// onDLQ sends body to dlq and receives it back.
func (e *drainEnv) onDLQ(dlq string, body []byte, group string) queue.Message {
	e.T.Helper()
	if err := e.Queue.Send(e.Ctx, dlq, body, queue.SendOptions{GroupID: group}); err != nil {
		e.T.Fatal(err)
	}
	return e.One(dlq)
}

// handle runs the drain on a DLQ message.
func (e *drainEnv) handle(dlq string, m queue.Message) error {
	return e.drain.Handle(e.Ctx, dlq, m)
}

// finished returns the action of the decision that finished a DLQ message ("" when none did).
func (e *drainEnv) finished(dlq string, m queue.Message) string {
	e.T.Helper()
	a, ok, err := e.Store.DecisionTaken(e.Ctx, dlq, m.ID)
	if err != nil {
		e.T.Fatal(err)
	}
	if !ok {
		return ""
	}
	return a
}

func classified(t txerr.Type, code, msg string) error { return txerr.New(t, code, errors.New(msg)) }

func status(e *drainEnv, id string) store.Status { return e.Get(id).Status }
