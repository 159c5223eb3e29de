package recovery_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluice-custody/sluice/broadcaster"
	"github.com/sluice-custody/sluice/internal/alert"
	"github.com/sluice-custody/sluice/internal/config"
	"github.com/sluice-custody/sluice/internal/pipelinetest"
	"github.com/sluice-custody/sluice/internal/queue"
	"github.com/sluice-custody/sluice/internal/store"
	"github.com/sluice-custody/sluice/internal/testenv"
	"github.com/sluice-custody/sluice/recovery"
)

// inFlight is one native withdrawal signed and broadcast, with its tx-monitor message.
type inFlight struct {
	w   *store.Withdrawal
	to  common.Address
	st  *store.SentTx
	mon queue.Message
}

const paid = 1e15

// sendPaused signs and broadcasts one withdrawal with block sealing stopped, so it sits in the pool.
func sendPaused(t *testing.T, e *pipelinetest.Env, b *broadcaster.Broadcaster) inFlight {
	t.Helper()
	to := testenv.NewAccount(t).Address
	w := e.Withdraw("POL", to, paid)
	if err := e.Signer().Handle(e.Ctx, e.One(queue.TxRequest)); err != nil {
		t.Fatal(err)
	}
	ms := e.Receive(queue.SignedTx)
	if len(ms) != 1 {
		got := e.Get(w.ID)
		t.Fatalf("signed-tx holds %d messages, want 1; withdrawal %s %v %v", len(ms), got.Status, got.ErrorType, got.ErrorMessage)
	}
	e.Chain.SealEvery(time.Hour)
	if b == nil {
		b = e.Broadcaster()
	}
	if err := b.Handle(e.Ctx, ms[0]); err != nil {
		t.Fatal(err)
	}
	// Done with it, as the consumer would be: signed-tx is FIFO per address, and the next one waits.
	if err := e.Queue.Delete(e.Ctx, queue.SignedTx, ms[0]); err != nil {
		t.Fatal(err)
	}
	w = e.Get(w.ID)
	if w.Status != store.Broadcasted || w.SentTxID == nil {
		t.Fatalf("withdrawal %s after broadcast", w.Status)
	}
	st, err := e.Store.GetSentTx(e.Ctx, *w.SentTxID)
	if err != nil {
		t.Fatal(err)
	}
	return inFlight{w: w, to: to, st: st, mon: e.One(queue.TxMonitor)}
}

// age makes the current attempt of id look in flight for many blocks, as if sweeps had seen it long ago.
func age(t *testing.T, e *pipelinetest.Env, id int64) {
	t.Helper()
	if _, err := e.Store.DB.ExecContext(e.Ctx, `UPDATE sent_transactions SET attempt_block = 0 WHERE id = ?`, id); err != nil {
		t.Fatal(err)
	}
}

// settle resumes sealing and runs the monitor on f until its withdrawal is terminal, then checks it is
// CONFIRMED and the recipient holds exactly one payment.
func settle(t *testing.T, e *pipelinetest.Env, f inFlight) {
	t.Helper()
	e.Chain.SealEvery(100 * time.Millisecond)
	mo := e.Monitor()
	deadline := time.Now().Add(45 * time.Second)
	for !e.Get(f.w.ID).Status.Terminal() {
		if time.Now().After(deadline) {
			t.Fatalf("withdrawal never settled (%s)", e.Get(f.w.ID).Status)
		}
		if err := mo.Handle(e.Ctx, f.mon); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if got := e.Get(f.w.ID); got.Status != store.Confirmed {
		t.Fatalf("withdrawal %s, want CONFIRMED", got.Status)
	}
	bal, err := e.Client.BalanceAt(e.Ctx, f.to)
	if err != nil || bal.Cmp(big.NewInt(paid)) != 0 {
		t.Fatalf("recipient holds %v (%v), want exactly one payment of %d", bal, err, int64(paid))
	}
}

// attempts lists the attempts of a sent transaction, oldest first, as "hash status".
func attempts(t *testing.T, e *pipelinetest.Env, id int64) []string {
	t.Helper()
	rows, err := e.Store.DB.QueryContext(e.Ctx, `SELECT tx_hash, status, max_fee_per_gas FROM tx_attempts WHERE sent_tx_id = ? ORDER BY id`, id)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var h, s, fee string
		if err := rows.Scan(&h, &s, &fee); err != nil {
			t.Fatal(err)
		}
		out = append(out, h+" "+s+" "+fee)
	}
	return out
}

func sweep(t *testing.T, e *pipelinetest.Env, rs *recovery.Service) recovery.Sweep {
	t.Helper()
	sw, err := rs.UnstickChain(e.Ctx, "local")
	if err != nil {
		t.Fatalf("sweep: %v", err)
	}
	return sw
}

// The market overtakes a broadcast transaction: the pool's floor rises above its tip (geth then drops it
// from the pool, and refuses it back naming the tip it needs). Recovery finds it stuck after
// stuck_after_blocks, bumps it to that tip at the same nonce, and it is mined once: the recipient is paid
// exactly once, both attempts are recorded, the one mined marked mined and the other replaced.
func TestFeeOvertakenIsBumpedAndPaidOnce(t *testing.T) {
	e := pipelinetest.New(t, pipelinetest.Options{})
	f := sendPaused(t, e, nil)
	floor := new(big.Int).Mul(f.st.MaxPriorityFee, big.NewInt(3))
	if err := e.Chain.SetMinTip(e.Ctx, floor); err != nil {
		t.Fatal(err)
	}
	ch := e.Config
	ch.Recovery.StuckAfterBlocks = 2
	rs := newService(e, ch, alert.Nop{})
	if sw := sweep(t, e, rs); sw.InFlight != 1 || sw.Stuck != 0 {
		t.Fatalf("first sweep %+v: want the clock started, nothing stuck yet", sw)
	}
	e.Chain.Commit()
	if sw := sweep(t, e, rs); sw.Stuck != 0 {
		t.Fatalf("stuck after 1 block of 2: %+v", sw)
	}
	e.Chain.Commit()
	if sw := sweep(t, e, rs); sw.Stuck != 1 || sw.Bumped != 1 {
		t.Fatalf("sweep after 2 blocks %+v, want one bump", sw)
	}
	cur, err := e.Store.GetSentTx(e.Ctx, f.st.ID)
	if err != nil {
		t.Fatal(err)
	}
	if cur.Status != store.TxBroadcasted || cur.Nonce != f.st.Nonce || cur.Hash == f.st.Hash || cur.MaxPriorityFee.Cmp(floor) < 0 {
		t.Fatalf("after the bump: %s nonce %d hash %s tip %s; want BROADCASTED, same nonce, new hash, tip ≥ %s",
			cur.Status, cur.Nonce, cur.Hash, cur.MaxPriorityFee, floor)
	}
	if sw := sweep(t, e, rs); sw.Bumped != 0 {
		t.Fatalf("sweep right after the bump bumped again: %+v", sw)
	}
	settle(t, e, f)
	as := attempts(t, e, f.st.ID)
	if len(as) < 2 || !strings.HasSuffix(strings.Fields(as[0])[1], "replaced") || strings.Fields(as[len(as)-1])[1] != "mined" {
		t.Fatalf("attempts %v: want ≥ 2, the first replaced, the last mined", as)
	}
	t.Logf("attempts: %v", as)
}

// A send the node silently lost (the broadcaster was told it went out; the node never kept it) is resent
// from its recorded bytes, unchanged, and mined.
func TestSilentlyDroppedSendIsResent(t *testing.T) {
	e := pipelinetest.New(t, pipelinetest.Options{})
	b, err := broadcaster.New(broadcaster.Deps{Store: e.Store, Queue: e.Queue,
		Chains: map[string]broadcaster.Chain{"local": dropSends{e.Client}}}, e.Log, broadcaster.NopMetrics())
	if err != nil {
		t.Fatal(err)
	}
	f := sendPaused(t, e, b)
	e.Chain.SealEvery(100 * time.Millisecond)
	ch := e.Config
	ch.Recovery.StuckAfterBlocks = 2
	rs := newService(e, ch, alert.Nop{})
	sweep(t, e, rs)
	e.Chain.Commit()
	e.Chain.Commit()
	var sw recovery.Sweep
	deadline := time.Now().Add(10 * time.Second)
	for sw.Resent == 0 && time.Now().Before(deadline) {
		sw = sweep(t, e, rs)
	}
	if sw.Resent != 1 || sw.Bumped != 0 {
		t.Fatalf("sweep %+v, want one resend and no bump", sw)
	}
	settle(t, e, f)
	if as := attempts(t, e, f.st.ID); len(as) != 1 || strings.Fields(as[0])[0] != f.st.Hash {
		t.Fatalf("attempts %v, want the one recorded attempt, mined", as)
	}
}

// dropSends says yes to every send and sends nothing.
type dropSends struct{ broadcaster.Chain }

func (dropSends) SendTransaction(context.Context, *types.Transaction) error { return nil }

// hook is a Slack-compatible webhook receiver.
type hook struct {
	mu   sync.Mutex
	msgs []string
}

func (h *hook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var m struct{ Text string }
	if err := json.NewDecoder(r.Body).Decode(&m); err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	h.mu.Lock()
	h.msgs = append(h.msgs, m.Text)
	h.mu.Unlock()
}

func (h *hook) wait(t *testing.T, n int) []string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		h.mu.Lock()
		got := append([]string(nil), h.msgs...)
		h.mu.Unlock()
		if len(got) >= n || time.Now().After(deadline) {
			if len(got) != n {
				t.Fatalf("webhook got %d messages %q, want %d", len(got), got, n)
			}
			return got
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// syncBuffer is a log destination safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// A bump that would exceed the chain's fee cap is not signed: the attempt in the pool stays the only
// one, and a critical alert (log line, metric, webhook, alerts row) names the wallet, the nonce, the fee
// needed and the cap, once however many sweeps see it, until the nonce is mined (then resolved).
func TestBumpAboveCapStopsAndAlerts(t *testing.T) {
	e := pipelinetest.New(t, pipelinetest.Options{})
	f := sendPaused(t, e, nil)
	rcv := &hook{}
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	reg := prometheus.NewRegistry()
	logs := &syncBuffer{}
	hub, err := alert.New(alert.Deps{Book: e.Store, Webhook: alert.WebhookConfig{URL: srv.URL, Timeout: time.Second}},
		slog.New(slog.NewJSONHandler(logs, nil)), alert.NewMetrics(reg))
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(e.Ctx)
	defer stop()
	go hub.Run(ctx)

	ch := e.Config
	ch.Recovery.StuckAfterBlocks = 2
	ch.Fees.MaxFeePerGas = config.NewWei(f.st.MaxFeePerGas) // no room for the +10% a replacement needs
	rs := newService(e, ch, hub)
	for i := range 3 {
		age(t, e, f.st.ID)
		if sw := sweep(t, e, rs); sw.Stuck != 1 || sw.AtCap != 1 || sw.Bumped != 0 {
			t.Fatalf("sweep %d: %+v, want stuck at the cap, no bump", i, sw)
		}
	}
	if as := attempts(t, e, f.st.ID); len(as) != 1 {
		t.Fatalf("attempts %v: a bump above the cap was recorded", as)
	}
	key := recovery.CapAlertKey("local", f.st.From, f.st.Nonce)
	open, err := e.Store.OpenAlerts(e.Ctx, recovery.AlertStuckAtCap)
	if err != nil || len(open) != 1 || open[0].Key != key || open[0].FiredCount != 3 || open[0].Severity != "critical" {
		t.Fatalf("open alerts %+v (%v), want %s seen 3 times", open, err, key)
	}
	msgs := rcv.wait(t, 1)
	for _, want := range []string{f.st.From, fmt.Sprintf("nonce %d", f.st.Nonce), "cap " + f.st.MaxFeePerGas.String(), "CRITICAL"} {
		if !strings.Contains(msgs[0], want) {
			t.Fatalf("webhook message %q does not name %q", msgs[0], want)
		}
	}
	if n := metricValue(t, reg, "sluice_alerts_fired_total"); n != 1 {
		t.Fatalf("sluice_alerts_fired_total %v, want 1", n)
	}
	if n := metricValue(t, reg, "sluice_alerts_open"); n != 1 {
		t.Fatalf("sluice_alerts_open %v, want 1", n)
	}
	if l := logs.String(); strings.Count(l, "ALERT stuck_at_cap") != 1 || !strings.Contains(l, `"fee_cap":"`+f.st.MaxFeePerGas.String()) {
		t.Fatalf("log lines:\n%s\nwant one ALERT stuck_at_cap line naming the cap", l)
	}

	settle(t, e, f) // the attempt kept in the pool is mined
	if sw := sweep(t, e, rs); sw.Resolved != 1 {
		t.Fatalf("sweep after mining %+v, want the alert resolved", sw)
	}
	if open, _ := e.Store.OpenAlerts(e.Ctx, ""); len(open) != 0 {
		t.Fatalf("alerts still open: %+v", open)
	}
	if msgs := rcv.wait(t, 2); !strings.Contains(msgs[1], "RESOLVED") {
		t.Fatalf("second webhook message %q, want the resolution", msgs[1])
	}
	if n := metricValue(t, reg, "sluice_alerts_open"); n != 0 {
		t.Fatalf("sluice_alerts_open %v after resolve, want 0", n)
	}
}

// metricValue sums every series of a metric family on reg (a counter's or a gauge's value).
func metricValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	v := 0.0
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				v += m.GetGauge().GetValue() + m.GetCounter().GetValue()
			}
		}
	}
	return v
}

// Two recovery instances sweep the same stuck transaction at the same time, round after round: each
// round exactly one of them replaces it (the compare-and-swap on the current hash), never both, and the
// transaction is mined once.
func TestRacingInstancesBumpOncePerRound(t *testing.T) {
	e := pipelinetest.New(t, pipelinetest.Options{})
	f := sendPaused(t, e, nil)
	ch := e.Config
	ch.Recovery.StuckAfterBlocks = 2
	a, b := newService(e, ch, alert.Nop{}), newService(e, ch, alert.Nop{})
	const rounds = 6
	for r := range rounds {
		age(t, e, f.st.ID)
		var (
			wg   sync.WaitGroup
			sws  [2]recovery.Sweep
			errs [2]error
		)
		for i, rs := range []*recovery.Service{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				sws[i], errs[i] = rs.UnstickChain(e.Ctx, "local")
			}()
		}
		wg.Wait()
		if errs[0] != nil || errs[1] != nil {
			t.Fatalf("round %d: %v / %v", r, errs[0], errs[1])
		}
		if n := sws[0].Bumped + sws[1].Bumped; n != 1 {
			t.Fatalf("round %d: %d bumps (%+v, %+v), want exactly 1", r, n, sws[0], sws[1])
		}
		if as := attempts(t, e, f.st.ID); len(as) != r+2 {
			t.Fatalf("round %d: %d attempts, want %d", r, len(as), r+2)
		}
	}
	settle(t, e, f)
	mined := 0
	for _, a := range attempts(t, e, f.st.ID) {
		if strings.Fields(a)[1] == store.AttemptMined {
			mined++
		}
	}
	if mined != 1 {
		t.Fatalf("%d attempts marked mined, want 1", mined)
	}
}

// A signed batch left behind by the market (the pool's tip floor rises above it after broadcast) is
// bumped as one transaction at its nonce: every recipient of the batch is paid exactly once.
func TestBatchOvertakenIsBumpedEveryRecipientPaidOnce(t *testing.T) {
	e := pipelinetest.New(t, pipelinetest.Options{Confirmations: 2})
	e.Config.Multicall3 = config.Address(e.Contracts.Multicall3)
	e.Config.BatchContract = config.Address(e.Contracts.BatchTransfer)
	e.Config.Batching.Prefer = "throughput"
	var ws []*store.Withdrawal
	for range 5 {
		ws = append(ws, e.Withdraw("POL", testenv.NewAccount(t).Address, paid))
	}
	e.Receive(queue.TxRequest) // the batcher finds them in the database
	if n, err := e.Signer().BatchOnce(e.Ctx); err != nil || n != 5 {
		t.Fatalf("batched %d (%v), want 5", n, err)
	}
	e.Chain.SealEvery(time.Hour)
	if err := e.Broadcaster().Handle(e.Ctx, e.One(queue.SignedTx)); err != nil {
		t.Fatal(err)
	}
	mon := e.One(queue.TxMonitor)
	w0 := e.Get(ws[0].ID)
	st, err := e.Store.GetSentTx(e.Ctx, *w0.SentTxID)
	if err != nil || st.Kind == "withdrawal" {
		t.Fatalf("sent tx %+v (%v), want the batch", st, err)
	}
	if err := e.Chain.SetMinTip(e.Ctx, new(big.Int).Mul(st.MaxPriorityFee, big.NewInt(2))); err != nil {
		t.Fatal(err)
	}
	ch := e.Config
	ch.Recovery.StuckAfterBlocks = 2
	rs := newService(e, ch, alert.Nop{})
	age(t, e, st.ID)
	if sw := sweep(t, e, rs); sw.Bumped != 1 {
		t.Fatalf("sweep %+v, want the batch bumped", sw)
	}
	e.Chain.SealEvery(100 * time.Millisecond)
	mo := e.Monitor()
	deadline := time.Now().Add(45 * time.Second)
	for _, w := range ws {
		for !e.Get(w.ID).Status.Terminal() {
			if time.Now().After(deadline) {
				t.Fatalf("withdrawal %s never settled", w.ID)
			}
			if err := mo.Handle(e.Ctx, mon); err != nil {
				t.Fatal(err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	for _, w := range ws {
		bal, err := e.Client.BalanceAt(e.Ctx, common.HexToAddress(w.To))
		if err != nil || bal.Cmp(big.NewInt(paid)) != 0 || e.Get(w.ID).Status != store.Confirmed {
			t.Fatalf("recipient %s holds %v (%v), withdrawal %s: want paid once, CONFIRMED", w.To, bal, err, e.Get(w.ID).Status)
		}
	}
	if as := attempts(t, e, st.ID); len(as) != 2 || strings.Fields(as[1])[1] != store.AttemptMined {
		t.Fatalf("attempts %v, want the original replaced and the bump mined", as)
	}
	if n, err := e.Client.NonceAt(e.Ctx, e.Hot.Address); err != nil || n != st.Nonce+1 {
		t.Fatalf("hot wallet nonce %d (%v), want %d: one transaction mined", n, err, st.Nonce+1)
	}
}
