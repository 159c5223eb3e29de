package monitor

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/sluice-custody/sluice/internal/store"
	"github.com/sluice-custody/sluice/multicall"
)

// settleTransfers settles the balance transfers (top-ups, sweeps) a transaction paid, in the database
// transaction that settles the transaction itself: CONFIRMED with a successful receipt, FAILED with a
// reverted one. In a token top-up batch each item has its own outcome (the batch contract goes on
// past a failed transferFrom), read from its TransferResult event.
func (mo *Monitor) settleTransfers(ctx context.Context, tx *sql.Tx, cd ChainDeps, st *store.SentTx, r *types.Receipt) error {
	ts, err := mo.store.TransfersBySentTx(ctx, tx, st.ID)
	if err != nil || len(ts) == 0 {
		return err
	}
	ok := r.Status == types.ReceiptStatusSuccessful
	block := r.BlockNumber.Uint64()
	failedItem := map[string]bool{}
	if ok && len(ts) > 1 && !cd.Config.BatchContract.IsZero() && strings.EqualFold(cd.Config.BatchContract.Hex(), st.To) {
		items, err := multicall.ParseTransferResults(cd.Config.BatchContract.Common(), r.Logs)
		if err != nil {
			return fmt.Errorf("top-up batch tx %s: %w", r.TxHash.Hex(), err)
		}
		failedItem = unpaidTransfers(ts, items)
	}
	for _, t := range ts {
		status, reason := store.TransferConfirmed, fmt.Sprintf("tx %s confirmed in block %d", r.TxHash.Hex(), block)
		switch {
		case !ok:
			status, reason = store.TransferFailed, fmt.Sprintf("tx %s reverted in block %d (receipt status 0)", r.TxHash.Hex(), block)
		case failedItem[t.ID]:
			status, reason = store.TransferFailed, fmt.Sprintf("its transfer inside batch tx %s (block %d) failed", r.TxHash.Hex(), block)
		}
		if err := mo.store.SettleTransfer(ctx, tx, t.ID, status, reason); err != nil {
			return err
		}
	}
	return nil
}

// unpaidTransfers matches a token batch's item results to the transfers it paid (by recipient and
// amount: items carry no transfer id) and returns the ids of those no successful item paid.
func unpaidTransfers(ts []*store.BalanceTransfer, items []multicall.ItemResult) map[string]bool {
	paid := map[string]bool{}
	used := make([]bool, len(items))
	for _, t := range ts {
		for i, it := range items {
			if !used[i] && it.Success && it.To == common.HexToAddress(t.To) && it.Amount.Cmp(t.Amount) == 0 {
				used[i], paid[t.ID] = true, true
				break
			}
		}
	}
	out := map[string]bool{}
	for _, t := range ts {
		if !paid[t.ID] {
			out[t.ID] = true
		}
	}
	return out
}
