package telemetry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluice-custody/sluice/internal/config"
	"github.com/sluice-custody/sluice/internal/nonce"
	"github.com/sluice-custody/sluice/internal/queue"
)

// Node is what the gauges ask of a chain's node.
type Node interface {
	BalanceAt(ctx context.Context, addr common.Address) (*big.Int, error)
	TokenBalance(ctx context.Context, token, holder common.Address) (*big.Int, error)
	NonceAt(ctx context.Context, addr common.Address) (uint64, error)
	PendingNonceAt(ctx context.Context, addr common.Address) (uint64, error)
}

// Nonces is what the gauges ask of the nonce allocator.
type Nonces interface {
	Peek(ctx context.Context, chainID uint64, addr common.Address) (nonce.State, error)
}

// GaugeChain is one configured chain: its hot wallets and assets come from Config.
type GaugeChain struct {
	Config config.Chain
	Node   Node
}

// GaugeDeps are what the gauge worker reads.
type GaugeDeps struct {
	Queue  queue.Inspector
	Queues []string // default queue.AllQueues()
	Chains []GaugeChain
	Nonces Nonces
	// Interval between rounds (default 15 s); Timeout bounds each call (default 5 s).
	Interval time.Duration
	Timeout  time.Duration
}

// Gauges reads queue depths, hot-wallet balances and nonce lags into their gauges every Interval. One
// service type runs it (the monitor), so each value is exported by one process.
type Gauges struct {
	d   GaugeDeps
	log *slog.Logger

	depth, oldest, dlq, balance, lag *prometheus.GaugeVec
	errors                           *prometheus.CounterVec
}

// NewGauges checks d and registers the gauges (sluice_queue_depth, sluice_queue_oldest_age_seconds,
// sluice_dlq_depth, sluice_wallet_balance, sluice_nonce_lag, sluice_gauge_errors_total) on reg.
func NewGauges(d GaugeDeps, log *slog.Logger, reg prometheus.Registerer) (*Gauges, error) {
	switch {
	case d.Queue == nil:
		return nil, errors.New("gauges: Queue is required")
	case d.Nonces == nil:
		return nil, errors.New("gauges: Nonces is required")
	case reg == nil:
		return nil, errors.New("gauges: a registry is required")
	}
	for _, c := range d.Chains {
		if c.Node == nil {
			return nil, fmt.Errorf("gauges: chain %s has no node client", c.Config.Name)
		}
	}
	if d.Queues == nil {
		d.Queues = queue.AllQueues()
	}
	if d.Interval <= 0 {
		d.Interval = 15 * time.Second
	}
	if d.Timeout <= 0 {
		d.Timeout = 5 * time.Second
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	g := &Gauges{d: d, log: log,
		depth: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sluice_queue_depth",
			Help: "Messages in a queue or DLQ (visible, delayed and in flight; approximate on SQS), by queue.",
		}, []string{"queue"}),
		oldest: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sluice_queue_oldest_age_seconds",
			Help: "Age of the oldest message in a queue or DLQ (0 when empty), by queue. MySQL backend only: on SQS watch CloudWatch's ApproximateAgeOfOldestMessage.",
		}, []string{"queue"}),
		dlq: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sluice_dlq_depth",
			Help: "Messages in a dead-letter queue, by queue (the DLQ's name).",
		}, []string{"queue"}),
		balance: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sluice_wallet_balance",
			Help: "Balance of a configured hot wallet, in asset units (e.g. 12.5 POL), by chain, wallet and asset.",
		}, []string{"chain", "wallet", "asset"}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sluice_nonce_lag",
			Help: "Nonce distance of a hot wallet, by kind: pending_minus_latest (chain pending − chain latest: sent, not mined) and redis_minus_chain (Redis counter − chain pending: handed out, not yet on the node).",
		}, []string{"chain", "wallet", "kind"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_gauge_errors_total",
			Help: "Gauge reads that failed (the gauge keeps its last value), by source: queue, balance, nonce.",
		}, []string{"source"}),
	}
	reg.MustRegister(g.depth, g.oldest, g.dlq, g.balance, g.lag, g.errors)
	return g, nil
}

// Run collects at once and then every Interval until ctx is canceled.
func (g *Gauges) Run(ctx context.Context) error {
	t := time.NewTicker(g.d.Interval)
	defer t.Stop()
	for {
		g.Collect(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Collect reads every gauge once; sources are read concurrently, each call within Timeout.
func (g *Gauges) Collect(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		g.queues(ctx)
	}()
	for _, c := range g.d.Chains {
		for _, w := range c.Config.HotWallets {
			wg.Add(1)
			go func() {
				defer wg.Done()
				g.wallet(ctx, c, w.Common())
			}()
		}
	}
	wg.Wait()
}

func (g *Gauges) call(ctx context.Context, f func(ctx context.Context) error) error {
	cctx, cancel := context.WithTimeout(ctx, g.d.Timeout)
	defer cancel()
	return f(cctx)
}

func (g *Gauges) fail(source string, err error, args ...any) {
	if err == nil {
		return
	}
	g.errors.WithLabelValues(source).Inc()
	g.log.Warn("gauge read failed", append(args, "source", source, "err", err)...)
}

func (g *Gauges) queues(ctx context.Context) {
	dlqs := map[string]bool{}
	for _, q := range queue.WorkQueues {
		dlqs[queue.DLQFor(q)] = true
	}
	for _, name := range g.d.Queues {
		var st queue.Stats
		err := g.call(ctx, func(ctx context.Context) (err error) {
			st, err = g.d.Queue.Stats(ctx, name)
			return err
		})
		if err != nil {
			g.fail("queue", err, "queue", name)
			continue
		}
		g.depth.WithLabelValues(name).Set(float64(st.Depth))
		if st.OldestKnown {
			g.oldest.WithLabelValues(name).Set(st.OldestAge.Seconds())
		}
		if dlqs[name] {
			g.dlq.WithLabelValues(name).Set(float64(st.Depth))
		}
	}
}

func (g *Gauges) wallet(ctx context.Context, c GaugeChain, w common.Address) {
	chain, wallet := c.Config.Name, w.Hex()
	for _, a := range c.Config.Assets {
		var bal *big.Int
		err := g.call(ctx, func(ctx context.Context) (err error) {
			if a.Native() {
				bal, err = c.Node.BalanceAt(ctx, w)
			} else {
				bal, err = c.Node.TokenBalance(ctx, a.Address.Common(), w)
			}
			return err
		})
		if err != nil {
			g.fail("balance", err, "chain", chain, "wallet", wallet, "asset", a.Symbol)
			continue
		}
		g.balance.WithLabelValues(chain, wallet, a.Symbol).Set(Units(bal, a.Decimals))
	}
	var latest, pending uint64
	err := g.call(ctx, func(ctx context.Context) (err error) {
		if latest, err = c.Node.NonceAt(ctx, w); err != nil {
			return err
		}
		pending, err = c.Node.PendingNonceAt(ctx, w)
		return err
	})
	if err != nil {
		g.fail("nonce", err, "chain", chain, "wallet", wallet)
		return
	}
	g.lag.WithLabelValues(chain, wallet, "pending_minus_latest").Set(float64(pending) - float64(latest))
	var st nonce.State
	if err := g.call(ctx, func(ctx context.Context) (err error) {
		st, err = g.d.Nonces.Peek(ctx, c.Config.ChainID, w)
		return err
	}); err != nil {
		g.fail("nonce", err, "chain", chain, "wallet", wallet)
		return
	}
	if st.HasNext { // no counter yet: the wallet has not signed through this Redis
		g.lag.WithLabelValues(chain, wallet, "redis_minus_chain").Set(float64(st.Next) - float64(pending))
	}
}

// Units converts base units to asset units (wei → POL with decimals 18) as a float, for gauges.
func Units(v *big.Int, decimals uint8) float64 {
	f, _ := new(big.Float).Quo(new(big.Float).SetInt(v), new(big.Float).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(decimals)), nil))).Float64()
	return f
}
