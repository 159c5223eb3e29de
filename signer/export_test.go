package signer

import (
	"context"

	"github.com/ethereum/go-ethereum/common"

	"github.com/sluice-custody/sluice/internal/store"
	"github.com/sluice-custody/sluice/multicall"
)

// SignUnsimulatedNativeBatch signs claimed withdrawals into one atomic Multicall3 batch without the
// simulation, so tests can put a batch on chain that reverts.
func (s *Signer) SignUnsimulatedNativeBatch(ctx context.Context, chain string, ws []*store.Withdrawal, gas uint64) error {
	cd := s.Chains[chain]
	data, value, err := multicall.NativeBatchAtomic(transfersOf(ws))
	if err != nil {
		return err
	}
	head, err := cd.Client.HeaderByNumber(ctx, nil)
	if err != nil {
		return err
	}
	tip, err := cd.Client.SuggestGasTipCap(ctx)
	if err != nil {
		return err
	}
	fees, err := PickFees(cd.Config.Fees, head.BaseFee, tip)
	if err != nil {
		return err
	}
	return s.signBatch(ctx, s.Log, cd, common.HexToAddress(cd.Config.HotWallets[0]), fees, batchPlan{ws: ws,
		to: common.HexToAddress(cd.Config.Multicall3), value: value, data: data, gas: gas, mode: store.BatchMulticall3, reason: "test: unsimulated"})
}
