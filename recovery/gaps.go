// Package recovery owns putting things back in order after failures. Here: filling nonce gaps, the
// nonces below an address's recorded transactions that nobody will ever send (a signer leased one and
// died, or failed for good, and no later allocation took it), with zero-value self-transfers, so the
// transactions above them can be mined. Draining the DLQs and retrying what can be retried come with
// the recovery service's own issue.
package recovery

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"math/big"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/sluice-custody/sluice/internal/config"
	"github.com/sluice-custody/sluice/internal/keys"
	"github.com/sluice-custody/sluice/internal/nonce"
	"github.com/sluice-custody/sluice/internal/queue"
	"github.com/sluice-custody/sluice/internal/store"
	"github.com/sluice-custody/sluice/signer"
)

// Chain is what gap filling asks of a node.
type Chain interface {
	NonceAt(ctx context.Context, account common.Address) (uint64, error)
	HeaderByNumber(ctx context.Context, number *big.Int) (*types.Header, error)
	SuggestGasTipCap(ctx context.Context) (*big.Int, error)
}

// Keys hands out signers.
type Keys interface {
	Signer(ctx context.Context, addr common.Address) (keys.Signer, error)
}

// Leases shows which nonces are on loan to a signer right now.
type Leases interface {
	Peek(ctx context.Context, chainID uint64, addr common.Address) (nonce.State, error)
}

// ChainDeps is one configured chain and its node client.
type ChainDeps struct {
	Config config.Chain
	Client Chain
}

// GapFiller fills nonce gaps of the hot wallets.
type GapFiller struct {
	Store  *store.Store
	Queue  queue.TxSender
	Keys   Keys
	Leases Leases
	Chains map[string]ChainDeps
	Every  time.Duration // between sweeps (10 s when zero)
	Log    *slog.Logger
}

// Run sweeps every g.Every until ctx ends.
func (g *GapFiller) Run(ctx context.Context) error {
	every := g.Every
	if every <= 0 {
		every = 10 * time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if _, err := g.Once(ctx); err != nil && ctx.Err() == nil {
				g.Log.Warn("nonce gap sweep", "err", err)
			}
		}
	}
}

// Once sweeps every hot wallet once and returns how many gaps it filled.
func (g *GapFiller) Once(ctx context.Context) (int, error) {
	filled := 0
	for _, cd := range g.Chains {
		for _, hw := range cd.Config.HotWallets {
			n, err := g.fillAddress(ctx, cd, common.HexToAddress(hw))
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
	holes, err := g.Store.UnrecordedNonces(ctx, cd.Config.ChainID, from.Hex(), mined)
	if err != nil || len(holes) == 0 {
		return 0, err
	}
	st, err := g.Leases.Peek(ctx, cd.Config.ChainID, from)
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
	head, err := cd.Client.HeaderByNumber(ctx, nil)
	if err != nil {
		return false, err
	}
	tip, err := cd.Client.SuggestGasTipCap(ctx)
	if err != nil {
		return false, err
	}
	fees, err := signer.PickFees(cd.Config.Fees, head.BaseFee, tip)
	if err != nil {
		return false, err
	}
	s, err := g.Keys.Signer(ctx, from)
	if err != nil {
		return false, err
	}
	chainID := new(big.Int).SetUint64(cd.Config.ChainID)
	tx, err := s.SignTx(ctx, types.NewTx(&types.DynamicFeeTx{ChainID: chainID, Nonce: n, GasTipCap: fees.MaxPriorityFee,
		GasFeeCap: fees.MaxFeePerGas, Gas: 21000, To: &from, Value: new(big.Int)}), chainID)
	if err != nil {
		return false, fmt.Errorf("sign fill of nonce %d: %w", n, err)
	}
	raw, err := tx.MarshalBinary()
	if err != nil {
		return false, err
	}
	rec := &store.SentTx{Chain: cd.Config.Name, ChainID: cd.Config.ChainID, From: from.Hex(), Nonce: n, To: from.Hex(),
		Hash: tx.Hash().Hex(), Raw: raw, GasLimit: 21000, MaxFeePerGas: fees.MaxFeePerGas, MaxPriorityFee: fees.MaxPriorityFee,
		Kind: "nonce_fill", Source: "recovery", CorrelationID: "nonce-fill-" + queue.NewID()}
	err = g.Store.InTx(ctx, func(dbtx *sql.Tx) error {
		if _, err := g.Store.InsertSentTx(ctx, dbtx, rec); err != nil {
			return err
		}
		body, err := queue.NewEnvelope(queue.TypeTxSigned, queue.NewID(), rec.CorrelationID,
			queue.TxSigned{SentTxID: rec.ID, Chain: rec.Chain, From: rec.From, Nonce: n, Hash: rec.Hash})
		if err != nil {
			return err
		}
		return g.Queue.SendTx(ctx, dbtx, queue.SignedTx, body, queue.SendOptions{GroupID: rec.Chain + ":" + rec.From})
	})
	if store.IsDuplicate(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("record fill of nonce %d: %w", n, err)
	}
	g.Log.Warn("filled a nonce gap with a zero-value self-transfer", "chain", rec.Chain, "from", rec.From, "nonce", n, "tx_hash", rec.Hash)
	return true, nil
}
