package signer

import (
	"context"

	"github.com/sluice-custody/sluice/internal/store"
	"github.com/sluice-custody/sluice/multicall"
)

// SignUnsimulatedNativeBatch signs claimed withdrawals into one atomic Multicall3 batch without the
// simulation, so tests can put a batch on chain that reverts.
func (s *Signer) SignUnsimulatedNativeBatch(ctx context.Context, chain string, ws []*store.Withdrawal, gas uint64) error {
	cd := s.chains[chain]
	data, value, err := multicall.NativeBatchAtomic(transfersOf(ws))
	if err != nil {
		return err
	}
	f, err := cd.Fees.New(ctx, nil)
	if err != nil {
		return err
	}
	return s.signBatch(ctx, s.log, cd, cd.Config.HotWallets[0].Common(), f, batchPlan{ws: ws,
		to: cd.Config.Multicall3.Common(), value: value, data: data, gas: gas, mode: store.BatchMulticall3, reason: "test: unsimulated"})
}
