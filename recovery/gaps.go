package recovery

// Nonce gaps: nonces below an address's recorded transactions that nobody will ever send (a signer
// leased one and died, or failed for good, and no later allocation took it). Each is filled with a
// zero-value self-transfer (from = to = the wallet), recorded in sent_transactions with no request id
// and source SYSTEM (kind nonce_fill), so the transactions above it can be
// mined.

import (
	"context"
	"errors"
	"fmt"

	"github.com/ethereum/go-ethereum/common"

	"github.com/sluice-custody/sluice/internal/queue"
	"github.com/sluice-custody/sluice/internal/store"
	"github.com/sluice-custody/sluice/internal/txsend"
)

// FillGaps sweeps every hot wallet (and main account) of every chain once and returns how many gaps it
// filled.
func (g *Service) FillGaps(ctx context.Context) (int, error) {
	filled := 0
	for _, cd := range g.chains {
		for _, hw := range signingWallets(cd.Config) {
			n, err := g.fillAddress(ctx, cd, hw.Common())
			filled += n
			if err != nil {
				return filled, fmt.Errorf("fill gaps of %s on %s: %w", hw, cd.Config.Name, err)
			}
		}
	}
	return filled, nil
}

// FillAddress fills the gaps of one address of a configured chain now (a DLQ consumer that saw
// NONCE_TOO_HIGH calls it before redriving) and returns how many it filled.
func (g *Service) FillAddress(ctx context.Context, chainName string, from common.Address) (int, error) {
	cd, ok := g.chains[chainName]
	if !ok {
		return 0, fmt.Errorf("fill gaps: chain %q is not configured", chainName)
	}
	return g.fillAddress(ctx, cd, from)
}

// fillAddress fills the gaps of one address: nonces from the chain's mined nonce up to the highest
// recorded one that have no recorded transaction and no live lease (an expired or released lease, or
// none at all, means nobody is signing into it).
func (g *Service) fillAddress(ctx context.Context, cd ChainDeps, from common.Address) (int, error) {
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
func (g *Service) fill(ctx context.Context, cd ChainDeps, from common.Address, n uint64) (bool, error) {
	f, err := cd.Fees.New(ctx, nil)
	if err != nil {
		return false, err
	}
	st, err := g.send.Send(ctx, txsend.Candidate{
		Chain: cd.Config.Name, ChainID: cd.Config.ChainID, From: from, To: from, Gas: 21000, Fees: f, Nonce: &n,
		Kind: "nonce_fill", Source: SystemSource, CorrelationID: "nonce-fill-" + queue.NewID(),
	})
	if errors.Is(err, store.ErrNonceTaken) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("fill nonce %d: %w", n, err)
	}
	g.m.GapFilled(st.Chain)
	g.log.Warn("filled a nonce gap with a zero-value self-transfer", "chain", st.Chain, "from", st.From, "nonce", n, "tx_hash", st.Hash)
	return true, nil
}
