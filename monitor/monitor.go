// Package monitor owns following broadcast transactions to finality: it waits for each chain's
// confirmation count, re-reads the receipt every round so a reorg that drops or moves the transaction
// is followed, re-sends a transaction the node forgot, and settles withdrawals as CONFIRMED or FAILED
// from the receipt.
package monitor

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/sluice-custody/sluice/config"
	"github.com/sluice-custody/sluice/queue"
	"github.com/sluice-custody/sluice/store"
	"github.com/sluice-custody/sluice/txerr"
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
	env, err := queue.ParseEnvelope(m.Body, queue.TypeTxBroadcasted)
	if err != nil {
		return txerr.New(txerr.InvalidTransaction, "bad_message", err)
	}
	var p queue.TxBroadcasted
	if err := json.Unmarshal(env.Payload, &p); err != nil || p.SentTxID == 0 {
		return txerr.New(txerr.InvalidTransaction, "bad_message", fmt.Errorf("tx-monitor payload %s: %v", env.Payload, err))
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
	if err := mo.settle(ctx, st, rcpt); err != nil {
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

func (mo *Monitor) settle(ctx context.Context, st *store.SentTx, r *types.Receipt) error {
	rec := store.Receipt{Hash: r.TxHash.Hex(), BlockNumber: r.BlockNumber.Uint64(), BlockHash: r.BlockHash.Hex(),
		Status: int(r.Status), GasUsed: r.GasUsed}
	ok := r.Status == types.ReceiptStatusSuccessful
	return mo.Store.InTx(ctx, func(tx *sql.Tx) error {
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
		block := rec.BlockNumber
		for _, w := range ws {
			if w.Status.Terminal() {
				continue
			}
			var err error
			if ok {
				err = mo.Store.Transition(ctx, tx, w.ID, w.Status, store.Confirmed,
					fmt.Sprintf("tx %s confirmed in block %d", rec.Hash, block), "monitor", store.Change{BlockNumber: &block})
			} else {
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
}
