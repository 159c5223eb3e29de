package telemetry

import (
	"context"
	"errors"
	"math/big"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sluice-custody/sluice/internal/config"
	"github.com/sluice-custody/sluice/internal/nonce"
	"github.com/sluice-custody/sluice/internal/queue"
	"github.com/sluice-custody/sluice/internal/store"
)

type fakeQueue map[string]queue.Stats

func (f fakeQueue) Stats(_ context.Context, name string) (queue.Stats, error) {
	if name == queue.BalanceCheck {
		return queue.Stats{}, errors.New("unreachable")
	}
	return f[name], nil
}

type fakeNode struct {
	native, token   *big.Int
	latest, pending uint64
	hang            bool
}

func (n fakeNode) wait(ctx context.Context) error {
	if n.hang {
		<-ctx.Done()
		return ctx.Err()
	}
	return nil
}
func (n fakeNode) BalanceAt(ctx context.Context, _ common.Address) (*big.Int, error) {
	return n.native, n.wait(ctx)
}
func (n fakeNode) TokenBalance(ctx context.Context, _, _ common.Address) (*big.Int, error) {
	return n.token, n.wait(ctx)
}
func (n fakeNode) NonceAt(ctx context.Context, _ common.Address) (uint64, error) {
	return n.latest, n.wait(ctx)
}
func (n fakeNode) PendingNonceAt(ctx context.Context, _ common.Address) (uint64, error) {
	return n.pending, n.wait(ctx)
}

type fakeNonces struct{ next uint64 }

func (f fakeNonces) Peek(context.Context, uint64, common.Address) (nonce.State, error) {
	return nonce.State{Next: f.next, HasNext: true}, nil
}

func chainConfig(name string, wallet common.Address) config.Chain {
	return config.Chain{Name: name, ChainID: 1, HotWallets: []config.Address{config.Address(wallet)},
		Assets: []config.Asset{{Symbol: "POL", Decimals: 18}, {Symbol: "USDT", Decimals: 6, Address: config.Address(common.HexToAddress("0x1"))}}}
}

// TestGauges reads every source once: queue and DLQ depths and ages, balances in asset units, both
// nonce lags; a source that fails or hangs past the timeout leaves its gauges unset and is counted,
// without holding up the others.
func TestGauges(t *testing.T) {
	reg := prometheus.NewRegistry()
	w := common.HexToAddress("0x00000000000000000000000000000000000000aa")
	q := fakeQueue{queue.TxRequest: {Depth: 4, OldestAge: 3 * time.Second, OldestKnown: true}, queue.SignedTxDLQ: {Depth: 2}}
	g, err := NewGauges(GaugeDeps{Queue: q, Nonces: fakeNonces{next: 12}, Timeout: 100 * time.Millisecond, Chains: []GaugeChain{
		{Config: chainConfig("polygon", w), Node: fakeNode{native: new(big.Int).Mul(big.NewInt(125), big.NewInt(1e17)), token: big.NewInt(7_250_000), latest: 7, pending: 10}},
		{Config: chainConfig("stuck", w), Node: fakeNode{hang: true}},
	}}, nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	g.Collect(context.Background())
	if d := time.Since(start); d > time.Second {
		t.Fatalf("a hanging node held the round for %v", d)
	}
	wl := w.Hex()
	for _, c := range []struct {
		got, want float64
		what      string
	}{
		{testutil.ToFloat64(g.depth.WithLabelValues(queue.TxRequest)), 4, "tx-request depth"},
		{testutil.ToFloat64(g.oldest.WithLabelValues(queue.TxRequest)), 3, "tx-request age"},
		{testutil.ToFloat64(g.dlq.WithLabelValues(queue.SignedTxDLQ)), 2, "signed-tx-dlq depth"},
		{testutil.ToFloat64(g.balance.WithLabelValues("polygon", wl, "POL")), 12.5, "POL balance"},
		{testutil.ToFloat64(g.balance.WithLabelValues("polygon", wl, "USDT")), 7.25, "USDT balance"},
		{testutil.ToFloat64(g.lag.WithLabelValues("polygon", wl, "pending_minus_latest")), 3, "pending − latest"},
		{testutil.ToFloat64(g.lag.WithLabelValues("polygon", wl, "redis_minus_chain")), 2, "redis − pending"},
		{testutil.ToFloat64(g.errors.WithLabelValues("queue")), 1, "queue errors"},
		{testutil.ToFloat64(g.errors.WithLabelValues("balance")), 2, "balance errors (stuck chain)"},
		{testutil.ToFloat64(g.errors.WithLabelValues("nonce")), 1, "nonce errors (stuck chain)"},
	} {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.what, c.got, c.want)
		}
	}
	// The DLQ gauge names only DLQs; the stuck chain has no balance series.
	if n := testutil.CollectAndCount(g.dlq); n != len(queue.WorkQueues) {
		t.Errorf("%d DLQ series, want %d", n, len(queue.WorkQueues))
	}
	if n := testutil.CollectAndCount(g.depth); n != len(queue.AllQueues())-1 { // balance-check failed
		t.Errorf("%d depth series, want %d", n, len(queue.AllQueues())-1)
	}
	if n := testutil.CollectAndCount(g.balance); n != 2 {
		t.Errorf("%d balance series, want 2 (the stuck chain has none)", n)
	}
}

// TestTransitions checks the store observer: every transition counted with its labels, and the three
// stages that are transitions timed from acceptance.
func TestTransitions(t *testing.T) {
	reg := prometheus.NewRegistry()
	tr := NewTransitions(reg)
	accepted := time.Now().Add(-10 * time.Second)
	tr.now = func() time.Time { return accepted.Add(10 * time.Second) }
	for _, c := range [][2]store.Status{{"", store.Pending}, {store.Pending, store.Signing}, {store.Signing, store.Signed},
		{store.Signed, store.Broadcasted}, {store.Broadcasted, store.Confirmed}} {
		tr.Transitioned(store.Transitioned{Chain: "polygon", Asset: "USDT", From: c[0], To: c[1], CreatedAt: accepted})
	}
	if v := testutil.ToFloat64(tr.total.WithLabelValues("polygon", "USDT", "SIGNING", "SIGNED")); v != 1 {
		t.Errorf("SIGNING→SIGNED counted %v", v)
	}
	if n := testutil.CollectAndCount(tr.total); n != 5 {
		t.Errorf("%d transition series, want 5", n)
	}
	// The monitor's metrics register the same histogram on the same registry: it must be shared.
	if h := StageSeconds(reg); h != tr.stages {
		t.Fatal("StageSeconds registered a second histogram")
	}
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() != "sluice_withdrawal_stage_seconds" {
			continue
		}
		if len(mf.GetMetric()) != 3 {
			t.Fatalf("%d stage series, want signed, broadcast, confirmed", len(mf.GetMetric()))
		}
		for _, m := range mf.GetMetric() {
			if h := m.GetHistogram(); h.GetSampleCount() != 1 || h.GetSampleSum() != 10 {
				t.Errorf("stage %v: %d samples summing to %v, want 1 of 10 s", m.GetLabel(), h.GetSampleCount(), h.GetSampleSum())
			}
		}
	}
}
