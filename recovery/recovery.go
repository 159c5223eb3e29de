// Package recovery is the `sluice recovery` service: it puts things back in order after failures, so
// that nothing stays stuck. It fills nonce gaps (nonces below an address's recorded transactions that
// nobody will send) with zero-value self-transfers, bumps the fees of broadcast transactions the market
// left behind (a new attempt at the same nonce, recorded next to the earlier ones), resends
// transactions a node forgot, re-opens confirmed transactions a reorg deeper than the confirmations
// took back (reorg.go), and raises an alert when only a person can help (the fee cap is reached).
//
// Several instances may run at once: every action that writes is a conditional write that only one
// instance can win (the unique nonce key for a gap fill, store.ReplaceAttempt's compare-and-swap on the
// current attempt's hash for a bump, the alerts table's unique open key for an alert), and a resend of
// recorded bytes is idempotent by nature.
package recovery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/sluice-custody/sluice/internal/alert"
	"github.com/sluice-custody/sluice/internal/chain"
	"github.com/sluice-custody/sluice/internal/nonce"
	"github.com/sluice-custody/sluice/internal/queue"
	"github.com/sluice-custody/sluice/internal/store"
	"github.com/sluice-custody/sluice/internal/txsend"
)

// Chain is what recovery asks of a node.
type Chain interface {
	BlockNumber(ctx context.Context) (uint64, error)
	NonceAt(ctx context.Context, account common.Address) (uint64, error)
	HeaderByNumber(ctx context.Context, number *big.Int) (*types.Header, error)
	SuggestGasTipCap(ctx context.Context) (*big.Int, error)
	TransactionByHash(ctx context.Context, hash common.Hash) (*types.Transaction, bool, error)
	SendTransaction(ctx context.Context, tx *types.Transaction) error
}

// Keys hands out signers: recovery signs gap fills and fee bumps itself (through txsend, the one
// sign-and-record path), so it runs where the keys are, like the signer.
type Keys = txsend.Keys

// Leases shows which nonces are on loan to a signer right now.
type Leases interface {
	Peek(ctx context.Context, chainID uint64, addr common.Address) (nonce.State, error)
}

// ChainDeps is one configured chain, its node client and its fee estimator (built from the chain's
// fees config when left nil).
type ChainDeps = chain.Deps[Chain]

// Worker is one long-running loop of the service (a service.Worker).
type Worker = func(ctx context.Context) error

// Deps are the collaborators the recovery service cannot work without.
type Deps struct {
	Store  *store.Store
	Queue  queue.TxSender
	Keys   Keys
	Leases Leases
	Chains map[string]ChainDeps
	// Alerts raises what needs a person (alert.Nop in tests that do not look).
	Alerts alert.Notifier
	// GapEvery is the pause between gap sweeps (10 s when zero). Stuck transactions are swept once per
	// block time of each chain.
	GapEvery time.Duration
}

// Service is the recovery service.
type Service struct {
	store    *store.Store
	queue    queue.TxSender
	leases   Leases
	chains   map[string]ChainDeps
	alerts   alert.Notifier
	send     *txsend.Sender
	gapEvery time.Duration
	log      *slog.Logger
	m        Metrics
}

// New checks d and builds the service. A nil log discards; m may be NopMetrics().
func New(d Deps, log *slog.Logger, m Metrics) (*Service, error) {
	switch {
	case d.Store == nil:
		return nil, errors.New("recovery: Store is required")
	case d.Leases == nil:
		return nil, errors.New("recovery: Leases is required (the nonce allocator)")
	case d.Alerts == nil:
		return nil, errors.New("recovery: Alerts is required (alert.Nop{} for none)")
	case len(d.Chains) == 0:
		return nil, errors.New("recovery: Chains is required (no chain configured)")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if m == nil {
		m = NopMetrics()
	}
	// Every gap fill fixes its nonce and every bump replaces a recorded one: no allocator needed.
	send, err := txsend.New(txsend.Deps{Store: d.Store, Queue: d.Queue, Keys: d.Keys}, log)
	if err != nil {
		return nil, fmt.Errorf("recovery: %w", err)
	}
	chains, err := chain.AllWithFees(d.Chains)
	if err != nil {
		return nil, fmt.Errorf("recovery: %w", err)
	}
	every := d.GapEvery
	if every <= 0 {
		every = 10 * time.Second
	}
	return &Service{store: d.Store, queue: d.Queue, leases: d.Leases, chains: chains, alerts: d.Alerts, send: send, gapEvery: every, log: log, m: m}, nil
}

// Alerts is the service's notifier, for the workers registered next to it.
func (s *Service) Alerts() alert.Notifier { return s.alerts }

// Store is the service's store, for the workers registered next to it.
func (s *Service) Store() *store.Store { return s.store }

// Workers are the service's own loops: the gap sweep, and one stuck-transaction sweep and one reorg
// watch per chain.
// Workers of other recovery duties (DLQ drain, nonce conflicts) are registered by the app next to these
// (internal/app, recoveryWorkers).
func (s *Service) Workers() []Worker {
	ws := []Worker{func(ctx context.Context) error {
		s.every(ctx, s.gapEvery, "nonce gap sweep", func(ctx context.Context) error { _, err := s.FillGaps(ctx); return err })
		return nil
	}}
	for name, cd := range s.chains {
		every := max(cd.Config.BlockTime.Duration, 200*time.Millisecond)
		ws = append(ws, func(ctx context.Context) error {
			s.every(ctx, every, "stuck transaction sweep of "+name, func(ctx context.Context) error {
				// Client actions first: a speed-up asked for now is not left to the stuck clock.
				if _, err := s.PerformActions(ctx, name); err != nil {
					s.log.Warn("client actions of "+name, "err", err)
				}
				if _, err := s.PerformWalletActions(ctx, name); err != nil {
					s.log.Warn("operators' wallet actions of "+name, "err", err)
				}
				_, err := s.UnstickChain(ctx, name)
				return err
			})
			return nil
		}, func(ctx context.Context) error {
			s.every(ctx, reorgEvery(cd.Config.BlockTime.Duration), "reorg watch of "+name, func(ctx context.Context) error {
				_, err := s.WatchReorgs(ctx, name)
				return err
			})
			return nil
		})
	}
	return ws
}

// every runs fn every d until ctx ends; a failed round is logged and the next one tries again.
func (s *Service) every(ctx context.Context, d time.Duration, what string, fn func(context.Context) error) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := fn(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn(what, "err", err)
			}
		}
	}
}
