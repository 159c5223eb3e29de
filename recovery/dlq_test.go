package recovery_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluice-custody/sluice/internal/pipelinetest"
	"github.com/sluice-custody/sluice/internal/queue"
	"github.com/sluice-custody/sluice/internal/store"
	"github.com/sluice-custody/sluice/internal/testenv"
	"github.com/sluice-custody/sluice/internal/txerr"
	"github.com/sluice-custody/sluice/recovery"
)

// clear deletes every message of every queue, so a case sees only its own.
func clear(e *drainEnv) {
	e.T.Helper()
	for _, q := range queue.AllQueues() {
		for _, m := range e.Receive(q) {
			if err := e.Queue.Delete(e.Ctx, q, m); err != nil {
				e.T.Fatal(err)
			}
		}
	}
}

// request creates a PENDING withdrawal and takes its tx-request message.
func request(e *drainEnv) (*store.Withdrawal, queue.Message) {
	w := e.Withdraw("POL", testenv.NewAccount(e.T).Address, 1e15)
	return w, e.One(queue.TxRequest)
}

// signed creates a withdrawal, has the signer sign it and takes its signed-tx message.
func signed(e *drainEnv) (*store.Withdrawal, queue.Message) {
	w, m := request(e)
	if err := e.Signer().Handle(e.Ctx, m); err != nil {
		e.T.Fatal(err)
	}
	got := e.Get(w.ID)
	if got.Status != store.Signed {
		e.T.Fatalf("withdrawal %s after signing", got.Status)
	}
	return got, e.One(queue.SignedTx)
}

// redriven asserts that queue q holds exactly the original body orig again.
func redriven(t *testing.T, e *drainEnv, q string, orig []byte) queue.Message {
	t.Helper()
	got := e.One(q)
	if !bytes.Equal(got.Body, orig) {
		t.Fatalf("%s holds %s, want the original %s", q, got.Body, orig)
	}
	if err := e.Queue.Delete(e.Ctx, q, got); err != nil { // out of its FIFO group for the next case
		t.Fatal(err)
	}
	return got
}

func parkedReason(t *testing.T, e *drainEnv, dlq string, m queue.Message) string {
	t.Helper()
	ps, err := e.Store.ParkedMessages(e.Ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ps {
		if p.Queue == dlq && p.MessageID == m.ID {
			if !bytes.Equal(p.Body, m.Body) {
				t.Fatalf("parked body %q, want the DLQ message %q", p.Body, m.Body)
			}
			return p.Reason
		}
	}
	t.Fatalf("message %s of %s not parked", m.ID, dlq)
	return ""
}

// Each DLQ class, a poison message and a message the backend moved without a verdict end handled
// (redriven, re-feed, settled, failed) or parked with their reason, with the decision recorded.
func TestDLQDrainByClass(t *testing.T) {
	e := newDrainEnv(t, pipelinetest.Options{}, nil)
	type setup struct {
		dlq  string
		m    queue.Message
		w    *store.Withdrawal
		orig queue.Message // the work message that was dead-lettered
	}
	cases := []struct {
		name    string
		setup   func(e *drainEnv) setup
		want    string // the finishing decision's action
		wantErr error
		check   func(t *testing.T, e *drainEnv, s setup)
	}{
		{
			name: "poison body", want: recovery.ActionParked,
			setup: func(e *drainEnv) setup {
				return setup{dlq: queue.RequestDLQ, m: e.onDLQ(queue.RequestDLQ, []byte("\x00not json{"), "")}
			},
			check: func(t *testing.T, e *drainEnv, s setup) {
				if r := parkedReason(t, e, s.dlq, s.m); !strings.Contains(r, "does not decode") {
					t.Fatalf("reason %q", r)
				}
				if len(e.alerts.kind("dlq_parked")) == 0 {
					t.Fatal("no dlq_parked alert")
				}
			},
		},
		{
			name: "payload without reference (bad_message)", want: recovery.ActionParked,
			setup: func(e *drainEnv) setup {
				body := []byte(`{"v":1,"type":"withdrawal.requested","id":"x","payload":{}}`)
				_, _, err := queue.Decode[queue.WithdrawalRequested](body, queue.TypeWithdrawalRequested)
				return setup{dlq: queue.RequestDLQ, m: e.deadLetter(queue.TxRequest, queue.Message{ID: "bad-1", Body: body}, err)}
			},
			check: func(t *testing.T, e *drainEnv, s setup) {
				if r := parkedReason(t, e, s.dlq, s.m); !strings.Contains(r, "could not decode") {
					t.Fatalf("reason %q", r)
				}
			},
		},
		{
			name: "unknown message type", want: recovery.ActionParked,
			setup: func(e *drainEnv) setup {
				body := []byte(`{"v":1,"type":"tx.teleported","id":"y","payload":{"a":1}}`)
				return setup{dlq: queue.SignedTxDLQ, m: e.deadLetter(queue.SignedTx, queue.Message{ID: "bad-2", Body: body},
					classified(txerr.Network, "", "reset"))}
			},
			check: func(t *testing.T, e *drainEnv, s setup) {
				if r := parkedReason(t, e, s.dlq, s.m); !strings.Contains(r, "tx.teleported") {
					t.Fatalf("reason %q", r)
				}
			},
		},
		{
			name: "UNKNOWN on a pending withdrawal", want: recovery.ActionParked,
			setup: func(e *drainEnv) setup {
				w, m := request(e)
				return setup{dlq: queue.RequestDLQ, w: w, orig: m, m: e.deadLetter(queue.TxRequest, m, errors.New("something odd"))}
			},
			check: func(t *testing.T, e *drainEnv, s setup) {
				if r := parkedReason(t, e, s.dlq, s.m); !strings.Contains(r, "nobody classified") {
					t.Fatalf("reason %q", r)
				}
				if got := status(e, s.w.ID); got != store.Pending {
					t.Fatalf("withdrawal %s, want left PENDING for a person", got)
				}
			},
		},
		{
			name: "INVALID_TRANSACTION with nothing recorded fails the withdrawal", want: recovery.ActionFailed,
			setup: func(e *drainEnv) setup {
				w, m := request(e)
				return setup{dlq: queue.RequestDLQ, w: w, orig: m, m: e.deadLetter(queue.TxRequest, m,
					classified(txerr.InvalidTransaction, "asset_gone", "asset no longer configured"))}
			},
			check: func(t *testing.T, e *drainEnv, s setup) {
				got := e.Get(s.w.ID)
				if got.Status != store.Failed || got.ErrorType != string(txerr.InvalidTransaction) || !strings.Contains(got.ErrorMessage, "asset no longer configured") {
					t.Fatalf("withdrawal %s %s %q", got.Status, got.ErrorType, got.ErrorMessage)
				}
				if len(e.alerts.kind("withdrawal_failed")) == 0 {
					t.Fatal("no withdrawal_failed alert")
				}
			},
		},
		{
			name: "NETWORK on tx-request: redriven once, also when the DLQ message comes back", want: recovery.ActionRedrive,
			setup: func(e *drainEnv) setup {
				w, m := request(e)
				return setup{dlq: queue.RequestDLQ, w: w, orig: m, m: e.deadLetter(queue.TxRequest, m, classified(txerr.Network, "", "connection reset"))}
			},
			check: func(t *testing.T, e *drainEnv, s setup) {
				// The consumer died before deleting the DLQ message: it is delivered again.
				if err := e.handle(s.dlq, s.m); err != nil {
					t.Fatal(err)
				}
				redriven(t, e, queue.TxRequest, s.orig.Body)
				env, _ := queue.ParseEnvelope(s.orig.Body, "")
				if n, _, err := e.Store.Redrives(e.Ctx, env.ID); err != nil || n != 1 {
					t.Fatalf("redrives %d (%v), want 1", n, err)
				}
			},
		},
		{
			name: "TIMEOUT on signed-tx: redriven in its group", want: recovery.ActionRedrive,
			setup: func(e *drainEnv) setup {
				w, m := signed(e)
				return setup{dlq: queue.SignedTxDLQ, w: w, orig: m, m: e.deadLetter(queue.SignedTx, m, classified(txerr.Timeout, "", "deadline"))}
			},
			check: func(t *testing.T, e *drainEnv, s setup) {
				got := redriven(t, e, queue.SignedTx, s.orig.Body)
				if got.GroupID != s.orig.GroupID || got.GroupID == "" {
					t.Fatalf("group %q, want %q", got.GroupID, s.orig.GroupID)
				}
			},
		},
		{
			name: "NONCE_TOO_HIGH: gaps filled, then redriven", want: recovery.ActionGapFill,
			setup: func(e *drainEnv) setup {
				w, m := signed(e)
				return setup{dlq: queue.SignedTxDLQ, w: w, orig: m, m: e.deadLetter(queue.SignedTx, m, classified(txerr.NonceTooHigh, "", "nonce too high"))}
			},
			check: func(t *testing.T, e *drainEnv, s setup) {
				if e.gapFills != 1 {
					t.Fatalf("gap fills %d, want 1", e.gapFills)
				}
				redriven(t, e, queue.SignedTx, s.orig.Body)
			},
		},
		{
			name: "GAS_PRICE_TOO_LOW: re-fee asked with the node's tip, then redriven", want: recovery.ActionRefee,
			setup: func(e *drainEnv) setup {
				w, m := signed(e)
				return setup{dlq: queue.SignedTxDLQ, w: w, orig: m, m: e.deadLetter(queue.SignedTx, m,
					classified(txerr.GasPriceTooLow, "", "transaction underpriced: gas tip cap 1, minimum needed 25000000000"))}
			},
			check: func(t *testing.T, e *drainEnv, s setup) {
				_, p, err := queue.Decode[queue.TxRefeeRequested](e.One(queue.TxRequest).Body, queue.TypeTxRefeeRequested)
				if err != nil || p.SentTxID != *s.w.SentTxID || !strings.EqualFold(p.Hash, s.w.TxHash) || p.MinTipCap != "25000000000" {
					t.Fatalf("re-fee request %+v (%v)", p, err)
				}
				redriven(t, e, queue.SignedTx, s.orig.Body)
			},
		},
		{
			name: "REPLACEMENT_UNDERPRICED: re-fee asked, then redriven", want: recovery.ActionRefee,
			setup: func(e *drainEnv) setup {
				w, m := signed(e)
				return setup{dlq: queue.SignedTxDLQ, w: w, orig: m, m: e.deadLetter(queue.SignedTx, m,
					classified(txerr.ReplacementUnderpriced, "", "replacement transaction underpriced"))}
			},
			check: func(t *testing.T, e *drainEnv, s setup) {
				if _, _, err := queue.Decode[queue.TxRefeeRequested](e.One(queue.TxRequest).Body, queue.TypeTxRefeeRequested); err != nil {
					t.Fatal(err)
				}
				redriven(t, e, queue.SignedTx, s.orig.Body)
			},
		},
		{
			name: "INSUFFICIENT_FUNDS: alert per wallet and asset, wait and redrive", want: recovery.ActionFunds,
			setup: func(e *drainEnv) setup {
				w, m := signed(e)
				return setup{dlq: queue.SignedTxDLQ, w: w, orig: m, m: e.deadLetter(queue.SignedTx, m,
					classified(txerr.InsufficientFunds, "", "insufficient funds for gas * price + value"))}
			},
			check: func(t *testing.T, e *drainEnv, s setup) {
				as := e.alerts.kind("insufficient_funds")
				if len(as) != 1 || as[0].Key != "insufficient_funds:local:"+e.Hot.Address.Hex()+":POL" {
					t.Fatalf("alerts %+v", as)
				}
				redriven(t, e, queue.SignedTx, s.orig.Body)
			},
		},
		{
			name: "permanent error on a recorded tx whose nonce is free: parked, never failed", want: recovery.ActionParked,
			setup: func(e *drainEnv) setup {
				w, m := signed(e)
				return setup{dlq: queue.SignedTxDLQ, w: w, orig: m, m: e.deadLetter(queue.SignedTx, m,
					classified(txerr.InvalidTransaction, "", "max priority fee per gas higher than max fee per gas"))}
			},
			check: func(t *testing.T, e *drainEnv, s setup) {
				if r := parkedReason(t, e, s.dlq, s.m); !strings.Contains(r, "could still be mined") {
					t.Fatalf("reason %q", r)
				}
				if got := status(e, s.w.ID); got != store.Signed {
					t.Fatalf("withdrawal %s, want still SIGNED", got)
				}
			},
		},
		{
			name: "NONCE_TOO_LOW where our attempt was mined: settled by the monitor", want: recovery.ActionSettle,
			setup: func(e *drainEnv) setup {
				w, m := signed(e)
				if err := e.Broadcaster().Handle(e.Ctx, m); err != nil {
					t.Fatal(err)
				}
				clear(e)
				e.WaitMinedNonce(*e.Get(w.ID).Nonce + 1)
				return setup{dlq: queue.SignedTxDLQ, w: w, orig: m, m: e.deadLetter(queue.SignedTx, m, classified(txerr.NonceTooLow, "", "nonce too low"))}
			},
			check: func(t *testing.T, e *drainEnv, s setup) {
				mm := e.One(queue.TxMonitor)
				_, p, err := queue.Decode[queue.TxBroadcasted](mm.Body, queue.TypeTxBroadcasted)
				if err != nil || p.SentTxID != *s.w.SentTxID {
					t.Fatalf("monitor request %+v (%v)", p, err)
				}
				// The monitor settles it once at depth.
				mon := e.Monitor()
				for status(e, s.w.ID) != store.Confirmed {
					if err := mon.Handle(e.Ctx, mm); err != nil {
						t.Fatal(err)
					}
					time.Sleep(100 * time.Millisecond)
				}
			},
		},
		{
			name: "moved by the backend without a verdict: redriven", want: recovery.ActionRedrive,
			setup: func(e *drainEnv) setup {
				w, _ := signed(e)
				body, err := queue.NewEnvelope(context.Background(), queue.TypeTxBroadcasted, queue.NewID(), "c", queue.TxBroadcasted{SentTxID: *w.SentTxID, Chain: "local", Hash: w.TxHash})
				if err != nil {
					t.Fatal(err)
				}
				return setup{dlq: queue.BroadcastTxDLQ, w: w, orig: queue.Message{Body: body}, m: e.onDLQ(queue.BroadcastTxDLQ, body, "")}
			},
			check: func(t *testing.T, e *drainEnv, s setup) {
				redriven(t, e, queue.TxMonitor, s.orig.Body)
			},
		},
		{
			name: "redriven too often: parked", want: recovery.ActionParked,
			setup: func(e *drainEnv) setup {
				w, m := request(e)
				env, _ := queue.ParseEnvelope(m.Body, "")
				for range 3 {
					if err := e.Store.InTx(e.Ctx, func(tx *sql.Tx) error { return e.Store.CountRedrive(e.Ctx, tx, env.ID, queue.TxRequest) }); err != nil {
						t.Fatal(err)
					}
				}
				time.Sleep(20 * time.Millisecond) // past the last redrive's backoff
				return setup{dlq: queue.RequestDLQ, w: w, orig: m, m: e.deadLetter(queue.TxRequest, m, classified(txerr.Network, "", "reset"))}
			},
			check: func(t *testing.T, e *drainEnv, s setup) {
				if r := parkedReason(t, e, s.dlq, s.m); !strings.Contains(r, "redriven 3 times") {
					t.Fatalf("reason %q", r)
				}
			},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			parent := e.T
			e.T = t
			defer func() { e.T = parent }()
			clear(e)
			s := c.setup(e)
			err := e.handle(s.dlq, s.m)
			if !errors.Is(err, c.wantErr) {
				t.Fatalf("handle: %v, want %v", err, c.wantErr)
			}
			if got := e.finished(s.dlq, s.m); got != c.want {
				t.Fatalf("finishing decision %q, want %q", got, c.want)
			}
			ds, err := e.Store.Decisions(e.Ctx, s.dlq, s.m.ID)
			if err != nil || len(ds) != 1 || ds[0].Reason == "" {
				t.Fatalf("decisions %+v (%v), want one with its reason", ds, err)
			}
			if c.check != nil {
				c.check(t, e, s)
			}
			if err := e.Queue.Delete(e.Ctx, s.dlq, s.m); err != nil { // as the consumer does after a nil
				t.Fatal(err)
			}
		})
	}
}

// A tx-request redriven for a withdrawal already SIGNED re-queues the recorded transaction: one sent
// transaction, one nonce, however often the request comes back.
func TestRedrivenRequestForSignedWithdrawalSignsOnce(t *testing.T) {
	e := newDrainEnv(t, pipelinetest.Options{}, nil)
	w, req := request(e)
	if err := e.Signer().Handle(e.Ctx, req); err != nil {
		t.Fatal(err)
	}
	first := e.Get(w.ID)
	if first.Status != store.Signed || first.SentTxID == nil {
		t.Fatalf("withdrawal %s", first.Status)
	}
	if err := e.Queue.Delete(e.Ctx, queue.SignedTx, e.One(queue.SignedTx)); err != nil {
		t.Fatal(err)
	}
	// The request was delivered again meanwhile and dead-lettered after a network failure.
	dm := e.deadLetter(queue.TxRequest, req, classified(txerr.Network, "", "connection refused"))
	for range 2 { // and the DLQ message itself is delivered twice
		if err := e.handle(queue.RequestDLQ, dm); err != nil {
			t.Fatal(err)
		}
	}
	again := redriven(t, e, queue.TxRequest, req.Body)
	if err := e.Signer().Handle(e.Ctx, again); err != nil {
		t.Fatal(err)
	}
	got := e.Get(w.ID)
	if got.Status != store.Signed || *got.SentTxID != *first.SentTxID || *got.Nonce != *first.Nonce {
		t.Fatalf("after redrive: %s sent tx %v nonce %v, want SIGNED %d nonce %d", got.Status, got.SentTxID, got.Nonce, *first.SentTxID, *first.Nonce)
	}
	if n := e.CountSent(); n != 1 {
		t.Fatalf("%d sent transactions, want 1", n)
	}
	_, p, err := queue.Decode[queue.TxSigned](e.One(queue.SignedTx).Body, queue.TypeTxSigned)
	if err != nil || p.SentTxID != *first.SentTxID {
		t.Fatalf("re-queued %+v (%v), want the recorded tx %d", p, err, *first.SentTxID)
	}
}

// A redrive waits out its backoff: the DLQ message is left to come back, nothing is decided yet.
func TestRedriveWaitsForItsBackoff(t *testing.T) {
	e := newDrainEnv(t, pipelinetest.Options{}, nil)
	slow, err := recovery.NewDrainer(recovery.DrainDeps{Store: e.Store, Queue: e.Queue, Alerts: e.alerts, Conflicts: e.conflicts,
		BackoffBase: time.Hour}, e.Log, recovery.NopDLQMetrics())
	if err != nil {
		t.Fatal(err)
	}
	_, req := request(e)
	dm := e.deadLetter(queue.TxRequest, req, classified(txerr.Timeout, "", "deadline exceeded"))
	if err := slow.Handle(e.Ctx, queue.RequestDLQ, dm); !errors.Is(err, recovery.ErrNotDue) {
		t.Fatalf("handle: %v, want ErrNotDue", err)
	}
	if a := e.finished(queue.RequestDLQ, dm); a != "" {
		t.Fatalf("decided %q before the backoff ran out", a)
	}
	if ms := e.Receive(queue.TxRequest); len(ms) != 0 {
		t.Fatalf("redriven early: %d messages", len(ms))
	}
}

// The drain's handler runs under the ordinary consumer: the DLQ message is handled and deleted, the
// original is back on its work queue, and the metrics register on a process registry next to the
// conflict metrics.
func TestDrainUnderConsumer(t *testing.T) {
	e := newDrainEnv(t, pipelinetest.Options{}, nil)
	reg := prometheus.NewRegistry()
	dr, err := recovery.NewDrainer(recovery.DrainDeps{Store: e.Store, Queue: e.Queue, Alerts: e.alerts, Conflicts: e.conflicts,
		BackoffBase: time.Millisecond}, e.Log, recovery.NewDLQMetrics(reg))
	if err != nil {
		t.Fatal(err)
	}
	_ = recovery.NewConflictMetrics(reg)
	_, req := request(e)
	body, err := queue.DeadLetterFor(req, queue.TxRequest, classified(txerr.Network, "", "reset"), time.Now().Add(-time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Queue.Delete(e.Ctx, queue.TxRequest, req); err != nil {
		t.Fatal(err)
	}
	if err := e.Queue.Send(e.Ctx, queue.RequestDLQ, body, queue.SendOptions{}); err != nil {
		t.Fatal(err)
	}
	c, err := queue.NewConsumer(queue.ConsumerDeps{Queue: e.Queue, Name: queue.RequestDLQ, Handler: dr.Handler(queue.RequestDLQ),
		Wait: 200 * time.Millisecond, Visibility: 5 * time.Second}, e.Log, queue.NopMetrics())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(e.Ctx)
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if n, err := e.Queue.Depth(e.Ctx, queue.RequestDLQ); err == nil && n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("DLQ never drained")
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	redriven(t, e, queue.TxRequest, req.Body)
	if got := counterSum(t, reg, "sluice_recovery_dlq_decisions_total"); got != 1 {
		t.Fatalf("decisions counted %v, want 1", got)
	}
}

// counterSum is the sum of a counter family's samples.
func counterSum(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			sum := 0.0
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
			return sum
		}
	}
	t.Fatalf("%s not registered", name)
	return 0
}
