// Package monitor owns following broadcast transactions to finality: it waits for each chain's
// confirmation count, re-reads the receipt every round so a reorg that drops or moves the transaction
// is followed, re-sends a transaction the node forgot, and settles withdrawals as CONFIRMED or FAILED
// from the receipt.
package monitor

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/sluice-custody/sluice/internal/config"
	"github.com/sluice-custody/sluice/internal/queue"
	"github.com/sluice-custody/sluice/internal/store"
	"github.com/sluice-custody/sluice/internal/txerr"
	"github.com/sluice-custody/sluice/multicall"
)

// Chain is what the monitor asks of a node.
type Chain interface {
	BlockNumber(ctx context.Context) (uint64, error)
	HeaderByNumber(ctx context.Context, number *big.Int) (*types.Header, error)
	TransactionReceipt(ctx context.Context, hash common.Hash) (*types.Receipt, error)
	SendTransaction(ctx context.Context, tx *types.Transaction) error
}

// ChainDeps is one configured chain and its node client.
type ChainDeps struct {
	Config config.Chain
	Client Chain
}

// Monitor consumes tx-monitor.
type Monitor struct {
	Store  *store.Store
	Queue  queue.Queue // to look again later: a fresh delayed message, so waiting never counts as a failed receive
	Chains map[string]ChainDeps
	Log    *slog.Logger
}

// maxDelay is the longest a message can be delayed (SQS allows 15 minutes).
const maxDelay = 15 * time.Minute

// Handle processes one tx-monitor message.
func (mo *Monitor) Handle(ctx context.Context, m queue.Message) error {
	env, p, err := queue.Decode[queue.TxBroadcasted](m.Body, queue.TypeTxBroadcasted)
	if err != nil {
		return err
	}
	st, err := mo.Store.GetSentTx(ctx, p.SentTxID)
	if err != nil {
		return fmt.Errorf("load sent tx %d: %w", p.SentTxID, err)
	}
	if st.Status == store.TxConfirmed || st.Status == store.TxFailed {
		return nil
	}
	cd, ok := mo.Chains[st.Chain]
	if !ok {
		return txerr.Permanentf(txerr.InvalidTransaction, "chain %q of sent tx %d is not configured", st.Chain, st.ID)
	}
	log := mo.Log.With("sent_tx_id", st.ID, "from", st.From, "nonce", st.Nonce, "correlation_id", env.CorrelationID)

	rcpt, err := mo.findReceipt(ctx, cd.Client, st)
	if err != nil {
		return err
	}
	blockTime := cd.Config.BlockTime.Duration
	if rcpt == nil {
		mo.resend(ctx, log, cd.Client, st)
		return mo.later(ctx, env, p, blockTime)
	}
	head, err := cd.Client.BlockNumber(ctx)
	if err != nil {
		return fmt.Errorf("head of %s: %w", st.Chain, err)
	}
	mined := rcpt.BlockNumber.Uint64()
	confs := uint64(0)
	if head >= mined {
		confs = head - mined + 1
	}
	if confs < cd.Config.Confirmations {
		return mo.later(ctx, env, p, time.Duration(cd.Config.Confirmations-confs)*blockTime)
	}
	// The receipt may come from a node that has not caught up with a reorg; settle only on a receipt
	// whose block is canonical now.
	h, err := cd.Client.HeaderByNumber(ctx, rcpt.BlockNumber)
	if err != nil {
		return fmt.Errorf("header %d of %s: %w", mined, st.Chain, err)
	}
	if h.Hash() != rcpt.BlockHash {
		log.Warn("receipt block is no longer canonical; waiting", "block", mined)
		return mo.later(ctx, env, p, blockTime)
	}
	if err := mo.settle(ctx, cd, st, rcpt); err != nil {
		return err
	}
	log.Info("settled", "tx_hash", rcpt.TxHash.Hex(), "block", mined, "status", rcpt.Status, "confirmations", confs)
	return nil
}

// findReceipt looks for a receipt of any attempt of st (a fee bump may have replaced the first).
func (mo *Monitor) findReceipt(ctx context.Context, c Chain, st *store.SentTx) (*types.Receipt, error) {
	hashes, err := mo.Store.AttemptHashes(ctx, st.ID)
	if err != nil {
		return nil, err
	}
	for _, h := range hashes {
		r, err := c.TransactionReceipt(ctx, common.HexToHash(h))
		if err == nil {
			return r, nil
		}
		if !errors.Is(err, ethereum.NotFound) {
			return nil, fmt.Errorf("receipt of %s: %w", h, err)
		}
	}
	return nil, nil
}

// resend puts the recorded raw tx back to the node: harmless when it is still pooled (same hash), and
// it brings back one a node dropped (restarted, evicted, reorged out).
func (mo *Monitor) resend(ctx context.Context, log *slog.Logger, c Chain, st *store.SentTx) {
	tx := new(types.Transaction)
	if err := tx.UnmarshalBinary(st.Raw); err != nil {
		log.Error("recorded raw tx does not decode", "err", err)
		return
	}
	if err := c.SendTransaction(ctx, tx); err != nil {
		log.Debug("re-send while waiting for receipt", "err", err)
	}
}

// later schedules another look after d by sending a fresh copy of the message; the current one is
// then deleted by the consumer.
func (mo *Monitor) later(ctx context.Context, env queue.Envelope, p queue.TxBroadcasted, d time.Duration) error {
	d = min(max(d, time.Second), maxDelay)
	body, err := queue.NewEnvelope(queue.TypeTxBroadcasted, queue.NewID(), env.CorrelationID, p)
	if err != nil {
		return err
	}
	return mo.Queue.Send(ctx, queue.TxMonitor, body, queue.SendOptions{Delay: d})
}

func (mo *Monitor) settle(ctx context.Context, cd ChainDeps, st *store.SentTx, r *types.Receipt) error {
	rec := store.Receipt{Hash: r.TxHash.Hex(), BlockNumber: r.BlockNumber.Uint64(), BlockHash: r.BlockHash.Hex(),
		Status: int(r.Status), GasUsed: r.GasUsed}
	ok := r.Status == types.ReceiptStatusSuccessful
	var retry []*store.Withdrawal // returned to PENDING: asked for again once committed
	err := mo.Store.InTx(ctx, func(tx *sql.Tx) error {
		retry = retry[:0]
		status := store.TxConfirmed
		if !ok {
			status = store.TxFailed
		}
		if err := mo.Store.FinishSentTx(ctx, tx, st.ID, status, rec); err != nil {
			if errors.Is(err, store.ErrConflict) {
				return nil // settled by a concurrent delivery
			}
			return err
		}
		ws, err := mo.Store.WithdrawalsBySentTx(ctx, tx, st.ID)
		if err != nil {
			return err
		}
		batch, err := mo.Store.BatchBySentTx(ctx, tx, st.ID)
		if errors.Is(err, store.ErrNotFound) {
			batch, err = nil, nil
		}
		if err != nil {
			return err
		}
		block := rec.BlockNumber
		var items []multicall.ItemResult
		if batch != nil && ok && batch.Mode == store.BatchERC20 {
			if items, err = mo.itemResults(cd, st, batch, ws, r); err != nil {
				return err
			}
		}
		for i, w := range ws {
			if w.Status.Terminal() {
				continue
			}
			var err error
			switch {
			case ok && items != nil && !items[i].Success:
				typ := string(txerr.ExecutionReverted)
				msg := fmt.Sprintf("transfer %d of batch %s reverted inside tx %s (block %d); the other transfers of the batch are unaffected",
					i, batch.ID, rec.Hash, block)
				err = mo.Store.Transition(ctx, tx, w.ID, w.Status, store.Failed, msg, "monitor",
					store.Change{BlockNumber: &block, ErrorType: &typ, ErrorMessage: &msg})
			case ok:
				err = mo.Store.Transition(ctx, tx, w.ID, w.Status, store.Confirmed,
					fmt.Sprintf("tx %s confirmed in block %d", rec.Hash, block), "monitor", store.Change{BlockNumber: &block})
			case batch != nil:
				// A reverted batch paid no one (a revert undoes every transfer in it), and at this depth
				// the revert is final and its nonce spent, so no attempt of it can ever be mined: the
				// withdrawals can safely be signed afresh. After maxBatchReturns such rounds they fail.
				var n int
				if n, err = mo.Store.CountReturns(ctx, tx, w.ID); err != nil {
					return err
				}
				if n < maxBatchReturns {
					reason := fmt.Sprintf("batch %s tx %s reverted in block %d (final at %d confirmations): nothing was paid; back to pending for a fresh attempt",
						batch.ID, rec.Hash, block, cd.Config.Confirmations)
					err = mo.Store.ReturnToPending(ctx, tx, w.ID, w.Status, reason, "monitor")
					retry = append(retry, w)
					break
				}
				typ := string(txerr.ExecutionReverted)
				msg := fmt.Sprintf("batch %s tx %s reverted in block %d (receipt status 0), after %d earlier reverted batches", batch.ID, rec.Hash, block, n)
				err = mo.Store.Transition(ctx, tx, w.ID, w.Status, store.Failed, msg, "monitor",
					store.Change{BlockNumber: &block, ErrorType: &typ, ErrorMessage: &msg})
			default:
				typ := string(txerr.ExecutionReverted)
				msg := fmt.Sprintf("tx %s reverted in block %d (receipt status 0)", rec.Hash, block)
				err = mo.Store.Transition(ctx, tx, w.ID, w.Status, store.Failed, msg, "monitor",
					store.Change{BlockNumber: &block, ErrorType: &typ, ErrorMessage: &msg})
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, w := range retry {
		// The batcher finds PENDING withdrawals in the database; the message serves a signer without one.
		body, err := queue.NewEnvelope(queue.TypeWithdrawalRequested, queue.NewID(), w.CorrelationID, queue.WithdrawalRequested{WithdrawalID: w.ID})
		if err == nil {
			err = mo.Queue.Send(ctx, queue.TxRequest, body, queue.SendOptions{})
		}
		if err != nil {
			mo.Log.Warn("re-request withdrawal after reverted batch", "withdrawal_id", w.ID, "err", err)
		}
	}
	return nil
}

// maxBatchReturns bounds how often a withdrawal goes back to PENDING after reverted batches.
const maxBatchReturns = 2

// itemResults reads each item's outcome of an ERC-20 batch from its TransferResult events, in the order
// the signer built it (withdrawal id order), checking every item against its withdrawal.
func (mo *Monitor) itemResults(cd ChainDeps, st *store.SentTx, b *store.Batch, ws []*store.Withdrawal, r *types.Receipt) ([]multicall.ItemResult, error) {
	if cd.Config.BatchContract == "" || !strings.EqualFold(cd.Config.BatchContract, st.To) {
		return nil, txerr.Permanentf(txerr.Unknown, "batch %s was sent to %s, not the configured batch contract %q", b.ID, st.To, cd.Config.BatchContract)
	}
	items, err := multicall.ParseTransferResults(common.HexToAddress(cd.Config.BatchContract), r.Logs)
	if err != nil {
		return nil, fmt.Errorf("batch %s: %w", b.ID, err)
	}
	if len(items) != len(ws) {
		return nil, txerr.Permanentf(txerr.Unknown, "batch %s: %d TransferResult events for %d withdrawals", b.ID, len(items), len(ws))
	}
	for i, it := range items {
		w := ws[i]
		if it.To != common.HexToAddress(w.To) || it.Amount.Cmp(w.Amount) != 0 {
			return nil, txerr.Permanentf(txerr.Unknown, "batch %s item %d pays %s %s, withdrawal %s wants %s %s",
				b.ID, i, it.To, it.Amount, w.ID, w.To, w.Amount)
		}
	}
	return items, nil
}
