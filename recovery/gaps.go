// Package recovery owns putting things back in order after failures. Here: filling nonce gaps, the
// nonces below an address's recorded transactions that nobody will ever send (a signer leased one and
// died, or failed for good, and no later allocation took it), with zero-value self-transfers, so the
// transactions above them can be mined. Draining the DLQs and retrying what can be retried come with
// the recovery service's own issue.
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

	"github.com/sluice-custody/sluice/internal/chain"
	"github.com/sluice-custody/sluice/internal/nonce"
	"github.com/sluice-custody/sluice/internal/queue"
	"github.com/sluice-custody/sluice/internal/store"
	"github.com/sluice-custody/sluice/internal/txsend"
)

// Chain is what gap filling asks of a node.
type Chain interface {
	NonceAt(ctx context.Context, account common.Address) (uint64, error)
	HeaderByNumber(ctx context.Context, number *big.Int) (*types.Header, error)
	SuggestGasTipCap(ctx context.Context) (*big.Int, error)
}

// Keys hands out signers.
type Keys = txsend.Keys

// Leases shows which nonces are on loan to a signer right now.
type Leases interface {
	Peek(ctx context.Context, chainID uint64, addr common.Address) (nonce.State, error)
}

// ChainDeps is one configured chain, its node client and its fee estimator (built from the chain's
// fees config when left nil).
type ChainDeps = chain.Deps[Chain]

// Metrics is what gap filling counts. It runs in the signer's process and is counted with the signer's
// transactions (kind gap_fill): a signer.Metrics satisfies it.
type Metrics interface {
	TransactionSigned(chain, kind string)
}

// NopMetrics counts nothing, for tests.
func NopMetrics() Metrics { return nopMetrics{} }

type nopMetrics struct{}

func (nopMetrics) TransactionSigned(string, string) {}

// Deps are the collaborators a GapFiller cannot work without.
type Deps struct {
	Store  *store.Store
	Queue  queue.TxSender
	Keys   Keys
	Leases Leases
	Chains map[string]ChainDeps
	Every  time.Duration // between sweeps (10 s when zero)
}

// GapFiller fills nonce gaps of the hot wallets.
type GapFiller struct {
	store  *store.Store
	leases Leases
	chains map[string]ChainDeps
	every  time.Duration
	send   *txsend.Sender
	log    *slog.Logger
	m      Metrics
}

// New checks d and builds a GapFiller. A nil log discards; m may be NopMetrics().
func New(d Deps, log *slog.Logger, m Metrics) (*GapFiller, error) {
	if d.Leases == nil {
		return nil, errors.New("gap filler: no nonce leases")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if m == nil {
		m = NopMetrics()
	}
	// Every fill fixes its nonce, so the sender needs no allocator.
	send, err := txsend.New(txsend.Deps{Store: d.Store, Queue: d.Queue, Keys: d.Keys}, log)
	if err != nil {
		return nil, fmt.Errorf("gap filler: %w", err)
	}
	chains, err := chain.AllWithFees(d.Chains)
	if err != nil {
		return nil, fmt.Errorf("gap filler: %w", err)
	}
	every := d.Every
	if every <= 0 {
		every = 10 * time.Second
	}
	return &GapFiller{store: d.Store, leases: d.Leases, chains: chains, every: every, send: send, log: log, m: m}, nil
}

// Run sweeps every d.Every until ctx ends.
func (g *GapFiller) Run(ctx context.Context) error {
	t := time.NewTicker(g.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if _, err := g.Once(ctx); err != nil && ctx.Err() == nil {
				g.log.Warn("nonce gap sweep", "err", err)
			}
		}
	}
}

// Once sweeps every hot wallet once and returns how many gaps it filled.
func (g *GapFiller) Once(ctx context.Context) (int, error) {
	filled := 0
	for _, cd := range g.chains {
		for _, hw := range cd.Config.HotWallets {
			n, err := g.fillAddress(ctx, cd, hw.Common())
			filled += n
			if err != nil {
				return filled, fmt.Errorf("fill gaps of %s on %s: %w", hw, cd.Config.Name, err)
			}
		}
	}
	return filled, nil
}

// fillAddress fills the gaps of one address: nonces from the chain's mined nonce up to the highest
// recorded one that have no recorded transaction and no live lease (an expired or released lease, or
// none at all, means nobody is signing into it).
func (g *GapFiller) fillAddress(ctx context.Context, cd ChainDeps, from common.Address) (int, error) {
	mined, err := cd.Client.NonceAt(ctx, from)
	if err != nil {
		return 0, err
	}
	holes, err := g.store.UnrecordedNonces(ctx, cd.Config.ChainID, from.Hex(), mined)
	if err != nil || len(holes) == 0 {
		return 0, err
	}
	st, err := g.leases.Peek(ctx, cd.Config.ChainID, from)
	if err != nil {
		return 0, err
	}
	live := map[uint64]bool{}
	for _, l := range st.Leases {
		live[l.Nonce] = !l.Expired
	}
	filled := 0
	for _, h := range holes {
		if live[h] {
			continue
		}
		ok, err := g.fill(ctx, cd, from, h)
		if err != nil {
			return filled, err
		}
		if ok {
			filled++
		}
	}
	return filled, nil
}

// fill records a zero-value self-transfer at nonce n with its signed-tx message. It reports false when
// a transaction got recorded at n meanwhile (the unique nonce key decides, so a late signer and the
// filler can never both use it).
func (g *GapFiller) fill(ctx context.Context, cd ChainDeps, from common.Address, n uint64) (bool, error) {
	f, err := cd.Fees.New(ctx, nil)
	if err != nil {
		return false, err
	}
	st, err := g.send.Send(ctx, txsend.Candidate{
		Chain: cd.Config.Name, ChainID: cd.Config.ChainID, From: from, To: from, Gas: 21000, Fees: f, Nonce: &n,
		Kind: "nonce_fill", Source: "recovery", CorrelationID: "nonce-fill-" + queue.NewID(),
	})
	if errors.Is(err, store.ErrNonceTaken) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("fill nonce %d: %w", n, err)
	}
	g.m.TransactionSigned(st.Chain, "gap_fill")
	g.log.Warn("filled a nonce gap with a zero-value self-transfer", "chain", st.Chain, "from", st.From, "nonce", n, "tx_hash", st.Hash)
	return true, nil
}
