package recovery

// Cancel of one payment out of a batch. The batch is replaced at its nonce by the same call without that
// payment (same contract, same other transfers in the same order, the same gas limit, fees bumped by
// fees.Estimator's Replacement, signed and recorded through txsend as a new attempt of the same sent
// transaction). The new attempt lists the withdrawals it leaves out (tx_attempt_drops, inherited by
// every later bump of it). Both attempts share one nonce, so exactly one of them can ever be mined, and
// the monitor settles by that one: the old batch → everyone paid (the cancel lost the race, and the
// history says so); the new one → the left-out withdrawal CANCELED, the others paid. When the last
// payment of a batch is canceled, the replacement is the plain cancel: a zero-value self-transfer.
//
// Before signing, the call of the current attempt is rebuilt from its withdrawals and compared with the
// recorded bytes: if they differ (a batch built in a way this code does not know), nothing is signed and
// the request is answered "refused", so a wrong model of the batch can never pay someone who was not in
// it, or twice.

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/sluice-custody/sluice/internal/fees"
	"github.com/sluice-custody/sluice/internal/store"
	"github.com/sluice-custody/sluice/internal/txsend"
	"github.com/sluice-custody/sluice/multicall"
)

// cancelItem performs a cancel_item action against st (BROADCASTED). "" means try again next round.
func (s *Service) cancelItem(ctx context.Context, cd ChainDeps, st *store.SentTx, a *store.TxAction) (string, error) {
	kind, err := s.store.AttemptKind(ctx, s.store.DB, st.Hash)
	if err != nil {
		return "", err
	}
	if kind == store.AttemptCancel {
		return "already canceling the whole transaction: " + st.Hash, nil
	}
	dropped, err := s.store.AttemptDrops(ctx, s.store.DB, st.Hash)
	if err != nil {
		return "", err
	}
	if dropped[a.WithdrawalID] {
		return "already left out by " + st.Hash, nil
	}
	b, err := s.store.BatchBySentTx(ctx, s.store.DB, st.ID)
	if err != nil {
		return "", err
	}
	ws, err := s.store.WithdrawalsBySentTx(ctx, s.store.DB, st.ID)
	if err != nil {
		return "", err
	}
	var current, keep []*store.Withdrawal
	found := false
	for _, w := range ws {
		if dropped[w.ID] {
			continue
		}
		current = append(current, w)
		if w.ID == a.WithdrawalID {
			found = true
			continue
		}
		keep = append(keep, w)
	}
	if !found {
		return "withdrawal not in transaction " + st.Hash, nil
	}
	cur := new(types.Transaction)
	if err := cur.UnmarshalBinary(st.Raw); err != nil {
		return "", fmt.Errorf("decode sent tx %d: %w", st.ID, err)
	}
	data, value, err := batchCall(b, cd, current)
	if err != nil {
		return "refused: " + err.Error(), nil
	}
	if cur.To() == nil || !bytes.Equal(data, cur.Data()) || value.Cmp(cur.Value()) != 0 {
		s.log.Error("batch call does not match its withdrawals; item cancel refused", "chain", st.Chain, "sent_tx_id", st.ID,
			"batch_id", b.ID, "withdrawal_id", a.WithdrawalID)
		return "refused: the recorded batch call does not match its withdrawals", nil
	}
	var (
		build  func(*store.SentTx, fees.Fees) (txsend.Candidate, error)
		record func(context.Context, *sql.Tx, *store.SentTx) error
	)
	if len(keep) == 0 {
		// The last payment of the batch: nothing is left to pay, so the replacement is the plain cancel.
		build = cancelOf
		record = func(ctx context.Context, tx *sql.Tx, next *store.SentTx) error {
			if err := s.store.MarkCancelAttempt(ctx, tx, next.Hash); err != nil {
				return err
			}
			return s.store.MarkDrop(ctx, tx, next.Hash, a.WithdrawalID)
		}
	} else {
		newData, newValue, err := batchCall(b, cd, keep)
		if err != nil {
			return "refused: " + err.Error(), nil
		}
		to, gas := *cur.To(), cur.Gas()
		build = func(prev *store.SentTx, f fees.Fees) (txsend.Candidate, error) {
			return txsend.Candidate{Chain: prev.Chain, ChainID: prev.ChainID, From: common.HexToAddress(prev.From), To: to,
				Value: newValue, Data: newData, Gas: gas, Fees: f, CorrelationID: prev.CorrelationID, Replaces: prev}, nil
		}
		record = func(ctx context.Context, tx *sql.Tx, next *store.SentTx) error {
			return s.store.MarkDrop(ctx, tx, next.Hash, a.WithdrawalID)
		}
	}
	out, err := s.replace(ctx, cd, st, nil, build, record)
	if err != nil {
		return "", err
	}
	switch out {
	case bumped:
		s.log.Info("batch replaced without one payment", "chain", st.Chain, "sent_tx_id", st.ID, "batch_id", b.ID,
			"withdrawal_id", a.WithdrawalID, "kept", len(keep), "replaced_hash", st.Hash)
		return fmt.Sprintf("batch %s replaced without this payment (%d kept)", b.ID, len(keep)), nil
	default:
		// At the fee cap (alerted), or replaced or settled by someone else meanwhile: the request stays
		// pending and the next round looks again (a mined nonce ends it as "not in flight").
		return "", nil
	}
}

// batchCall is the call of a batch of mode b.Mode paying ws in order: what the signer sends
// (signer.BuildNative's atomic aggregate3Value, or batchTransfer of the token).
func batchCall(b *store.Batch, cd ChainDeps, ws []*store.Withdrawal) ([]byte, *big.Int, error) {
	ts := make([]multicall.Transfer, len(ws))
	for i, w := range ws {
		ts[i] = multicall.Transfer{To: common.HexToAddress(w.To), Amount: w.Amount}
	}
	switch b.Mode {
	case store.BatchMulticall3:
		return multicall.NativeBatchAtomic(ts)
	case store.BatchERC20:
		asset, ok := cd.Config.Asset(b.Asset)
		if !ok || asset.Native() {
			return nil, nil, fmt.Errorf("asset %s of batch %s is not a configured token", b.Asset, b.ID)
		}
		data, err := multicall.ERC20Batch(asset.Address.Common(), ts)
		return data, new(big.Int), err
	}
	return nil, nil, fmt.Errorf("batch %s has mode %q, whose call cannot be rebuilt", b.ID, b.Mode)
}
