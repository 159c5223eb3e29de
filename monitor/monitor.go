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
	"github.com/ethereum/go-ethereum/rpc"

	"github.com/sluice-custody/sluice/internal/chain"
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

// ChainDeps is one configured chain and its node client (the monitor pays no fees: Fees stays nil).
type ChainDeps = chain.Deps[Chain]

// Deps are the collaborators a Monitor cannot work without.
type Deps struct {
	Store *store.Store
	// Queue is for looking again later (a fresh delayed message, so waiting never counts as a failed
	// receive) and for asking the signer again for withdrawals a reverted batch sent back to PENDING.
	Queue  queue.Queue
	Chains map[string]ChainDeps
}

// Monitor consumes tx-monitor.
type Monitor struct {
	store  *store.Store
	queue  queue.Queue
	chains map[string]ChainDeps
	log    *slog.Logger
	met    Metrics
}

// New checks d (a missing dependency is an error naming it) and builds the monitor. A nil log discards;
// m may be NopMetrics() in tests.
func New(d Deps, log *slog.Logger, m Metrics) (*Monitor, error) {
	switch {
	case d.Store == nil:
		return nil, errors.New("monitor: Store is required")
	case d.Queue == nil:
		return nil, errors.New("monitor: Queue is required")
	case len(d.Chains) == 0:
		return nil, errors.New("monitor: Chains is required (no chain configured)")
	case m == nil:
		return nil, errors.New("monitor: Metrics is required (NopMetrics() for none)")
	}
	for name, cd := range d.Chains {
		if cd.Client == nil {
			return nil, fmt.Errorf("monitor: Chains[%q] has no client", name)
		}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Monitor{store: d.Store, queue: d.Queue, chains: d.Chains, log: log, met: m}, nil
}

// maxDelay is the longest a message can be delayed (SQS allows 15 minutes).
const maxDelay = 15 * time.Minute

// Handle processes one tx-monitor message.
func (mo *Monitor) Handle(ctx context.Context, m queue.Message) error {
	env, p, err := queue.Decode[queue.TxBroadcasted](m.Body, queue.TypeTxBroadcasted)
	if err != nil {
		return err
	}
	st, err := mo.store.GetSentTx(ctx, p.SentTxID)
	if err != nil {
		return fmt.Errorf("load sent tx %d: %w", p.SentTxID, err)
	}
	if st.Status == store.TxConfirmed || st.Status == store.TxFailed || st.Status == store.TxConflicted {
		return nil // settled, or its nonce taken for good by a foreign tx (recovery): nothing to follow or resend
	}
	cd, ok := mo.chains[st.Chain]
	if !ok {
		return txerr.Permanentf(txerr.InvalidTransaction, "chain %q of sent tx %d is not configured", st.Chain, st.ID)
	}
	log := mo.log.With("sent_tx_id", st.ID, "from", st.From, "nonce", st.Nonce, "correlation_id", env.CorrelationID)

	hashes, err := mo.store.AttemptHashes(ctx, st.ID)
	if err != nil {
		return err
	}
	v, err := decide(ctx, cd.Client, hashes, rule{confirmations: cd.Config.Confirmations, blockTime: cd.Config.BlockTime.Duration,
		finalized: cd.Config.WaitsForFinalized()})
	if err != nil {
		return fmt.Errorf("sent tx %d on %s: %w", st.ID, st.Chain, err)
	}
	switch v.action {
	case resendAndWait:
		resend(ctx, log, cd.Client, st)
		return mo.later(ctx, env, p, v.delay)
	case waitDepth, waitFinalized:
		return mo.later(ctx, env, p, v.delay)
	case waitReorg:
		mo.met.Reorg(st.Chain)
		log.Warn("receipt block is no longer canonical; waiting", "block", v.receipt.BlockNumber.Uint64())
		return mo.later(ctx, env, p, v.delay)
	}
	if err := mo.settle(ctx, cd, st, v.receipt, v.minedAt); err != nil {
		return err
	}
	log.Info("settled", "tx_hash", v.receipt.TxHash.Hex(), "block", v.receipt.BlockNumber.Uint64(), "status", v.receipt.Status,
		"confirmations", v.confs)
	return nil
}

// action is what the monitor does with a broadcast transaction after looking at the chain.
type action int

const (
	// resendAndWait: no attempt has a receipt, so the node may have dropped it (restart, eviction, a
	// reorg that took its block): put the recorded bytes back and look again after a block.
	resendAndWait action = iota
	// waitDepth: mined, but not yet at the configured confirmations.
	waitDepth
	// waitReorg: mined at depth by the node's receipt, but in a block that is no longer canonical (the
	// node has not caught up with a reorg): nothing is settled; the next look follows where it went.
	waitReorg
	// settle: mined at depth in a canonical block: confirm or fail from the receipt.
	settle
	// waitFinalized: at depth in a canonical block, on a chain configured with finality: finalized,
	// whose node has not yet finalized that block.
	waitFinalized
)

func (a action) String() string {
	return [...]string{"resendAndWait", "waitDepth", "waitReorg", "settle", "waitFinalized"}[a]
}

// rule is when a chain's mined transaction is final.
type rule struct {
	confirmations uint64
	blockTime     time.Duration
	// finalized: also wait for the node's `finalized` block to reach the receipt's block.
	finalized bool
}

// verdict is decide's answer.
type verdict struct {
	action  action
	receipt *types.Receipt // of the attempt found; nil for resendAndWait
	minedAt time.Time      // the receipt's block time; set for settle
	confs   uint64
	delay   time.Duration // when to look again; zero for settle
}

// decide reads the chain for every attempt (hashes, a fee bump may have replaced the first) of a
// broadcast transaction and says what to do with it. It reads the node only, never the store, so each
// case (found at depth, below depth, reorged, dropped) is table-tested against a fake Chain.
func decide(ctx context.Context, c Chain, hashes []string, ru rule) (verdict, error) {
	confirmations, blockTime := ru.confirmations, ru.blockTime
	var rcpt *types.Receipt
	for _, h := range hashes {
		r, err := c.TransactionReceipt(ctx, common.HexToHash(h))
		if err == nil {
			rcpt = r
			break
		}
		if !errors.Is(err, ethereum.NotFound) {
			return verdict{}, fmt.Errorf("receipt of %s: %w", h, err)
		}
	}
	if rcpt == nil {
		return verdict{action: resendAndWait, delay: blockTime}, nil
	}
	head, err := c.BlockNumber(ctx)
	if err != nil {
		return verdict{}, fmt.Errorf("head: %w", err)
	}
	mined := rcpt.BlockNumber.Uint64()
	confs := uint64(0)
	if head >= mined {
		confs = head - mined + 1
	}
	if confs < confirmations {
		return verdict{action: waitDepth, receipt: rcpt, confs: confs, delay: time.Duration(confirmations-confs) * blockTime}, nil
	}
	// The receipt may come from a node that has not caught up with a reorg; settle only on a receipt
	// whose block is canonical now.
	h, err := c.HeaderByNumber(ctx, rcpt.BlockNumber)
	if err != nil {
		return verdict{}, fmt.Errorf("header %d: %w", mined, err)
	}
	if h.Hash() != rcpt.BlockHash {
		return verdict{action: waitReorg, receipt: rcpt, confs: confs, delay: blockTime}, nil
	}
	if ru.finalized {
		// The depth alone is a guess at finality; where the chain has a finality gadget (Polygon's
		// milestones) its own word is surer. A stalled gadget holds everything back, as it should.
		f, err := c.HeaderByNumber(ctx, big.NewInt(int64(rpc.FinalizedBlockNumber)))
		if err != nil {
			return verdict{}, fmt.Errorf("finalized block: %w", err)
		}
		if f.Number == nil || f.Number.Uint64() < mined {
			return verdict{action: waitFinalized, receipt: rcpt, confs: confs, delay: blockTime}, nil
		}
	}
	return verdict{action: settle, receipt: rcpt, minedAt: time.Unix(int64(h.Time), 0), confs: confs}, nil
}

// resend puts the recorded raw tx back to the node: harmless when it is still pooled (same hash), and
// it brings back one a node dropped (restarted, evicted, reorged out).
func resend(ctx context.Context, log *slog.Logger, c Chain, st *store.SentTx) {
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
	body, err := queue.NewEnvelope(ctx, queue.TypeTxBroadcasted, queue.NewID(), env.CorrelationID, p)
	if err != nil {
		return err
	}
	return mo.queue.Send(ctx, queue.TxMonitor, body, queue.SendOptions{Delay: d})
}

func (mo *Monitor) settle(ctx context.Context, cd ChainDeps, st *store.SentTx, r *types.Receipt, minedAt time.Time) error {
	rec := store.Receipt{Hash: r.TxHash.Hex(), BlockNumber: r.BlockNumber.Uint64(), BlockHash: r.BlockHash.Hex(),
		Status: int(r.Status), GasUsed: r.GasUsed, EffectiveGasPrice: r.EffectiveGasPrice}
	ok := r.Status == types.ReceiptStatusSuccessful
	var (
		retry    []*store.Withdrawal // returned to PENDING: asked for again once committed
		done     []settled           // counted once committed
		finished bool                // this delivery settled the transaction (its fee is counted once)
	)
	err := mo.store.InTx(ctx, func(tx *sql.Tx) error {
		retry, done, finished = retry[:0], done[:0], false // the transaction may be retried after a deadlock
		status := store.TxConfirmed
		if !ok {
			status = store.TxFailed
		}
		if err := mo.store.FinishSentTx(ctx, tx, st.ID, status, rec); err != nil {
			if errors.Is(err, store.ErrConflict) {
				return nil // settled by a concurrent delivery
			}
			return err
		}
		finished = true
		ws, err := mo.store.WithdrawalsBySentTx(ctx, tx, st.ID)
		if err != nil {
			return err
		}
		kind, err := mo.store.AttemptKind(ctx, tx, rec.Hash)
		if err != nil {
			return err
		}
		if kind == store.AttemptCancel {
			// The client's cancel (a zero-value self-transfer at the same nonce) is what mined: the
			// payment can never be mined now, nothing was paid.
			block := rec.BlockNumber
			for _, w := range ws {
				if w.Status.Terminal() {
					continue
				}
				if err := mo.store.Transition(ctx, tx, w.ID, w.Status, store.Canceled,
					fmt.Sprintf("cancel replacement %s mined in block %d; the payment was not made", rec.Hash, block),
					store.ActorMonitor, store.Change{BlockNumber: &block}); err != nil {
					return err
				}
				done = append(done, settled{w, store.Canceled, ""})
			}
			return nil
		}
		batch, err := mo.store.BatchBySentTx(ctx, tx, st.ID)
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
			returns := 0
			if !ok && batch != nil {
				if returns, err = mo.store.CountReturns(ctx, tx, w.ID); err != nil {
					return err
				}
			}
			itemReverted := ok && items != nil && !items[i].Success
			var err error
			switch withdrawalOutcome(ok, batch != nil, itemReverted, returns) {
			case confirmed:
				err = mo.store.Transition(ctx, tx, w.ID, w.Status, store.Confirmed,
					fmt.Sprintf("tx %s confirmed in block %d", rec.Hash, block), store.ActorMonitor, store.Change{BlockNumber: &block})
				done = append(done, settled{w, store.Confirmed, ""})
			case repended:
				// A reverted batch paid no one (a revert undoes every transfer in it), and at this depth
				// the revert is final and its nonce spent, so no attempt of it can ever be mined: the
				// withdrawals can safely be signed afresh. After maxBatchReturns such rounds they fail.
				reason := fmt.Sprintf("batch %s tx %s reverted in block %d (final at %d confirmations): nothing was paid; back to pending for a fresh attempt",
					batch.ID, rec.Hash, block, cd.Config.Confirmations)
				err = mo.store.ReturnToPending(ctx, tx, w.ID, w.Status, reason, store.ActorMonitor)
				retry = append(retry, w)
			case failed:
				typ := string(txerr.ExecutionReverted)
				var msg string
				switch {
				case itemReverted:
					msg = fmt.Sprintf("transfer %d of batch %s reverted inside tx %s (block %d); the other transfers of the batch are unaffected",
						i, batch.ID, rec.Hash, block)
				case batch != nil:
					msg = fmt.Sprintf("batch %s tx %s reverted in block %d (receipt status 0), after %d earlier reverted batches", batch.ID, rec.Hash, block, returns)
				default:
					msg = fmt.Sprintf("tx %s reverted in block %d (receipt status 0)", rec.Hash, block)
				}
				err = mo.store.Transition(ctx, tx, w.ID, w.Status, store.Failed, msg, store.ActorMonitor,
					store.Change{BlockNumber: &block, ErrorType: &typ, ErrorMessage: &msg})
				done = append(done, settled{w, store.Failed, typ})
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
	now := time.Now()
	if finished {
		fee := new(big.Int)
		if r.EffectiveGasPrice != nil {
			fee.Mul(new(big.Int).SetUint64(r.GasUsed), r.EffectiveGasPrice)
		}
		mo.met.Paid(st.Chain, st.From, r.GasUsed, fee)
	}
	for _, d := range done {
		mo.met.Mined(d.w.Chain, minedAt.Sub(d.w.CreatedAt))
		switch d.status {
		case store.Canceled:
		case store.Confirmed:
			mo.met.Confirmed(d.w.Chain, d.w.Asset, now.Sub(d.w.CreatedAt))
		default:
			mo.met.Failed(d.w.Chain, d.w.Asset, d.errType)
		}
	}
	for _, w := range retry {
		// The batcher finds PENDING withdrawals in the database; the message serves a signer without one.
		body, err := queue.NewEnvelope(ctx, queue.TypeWithdrawalRequested, queue.NewID(), w.CorrelationID, queue.WithdrawalRequested{WithdrawalID: w.ID})
		if err == nil {
			err = mo.queue.Send(ctx, queue.TxRequest, body, queue.SendOptions{})
		}
		if err != nil {
			mo.log.Warn("re-request withdrawal after reverted batch", "withdrawal_id", w.ID, "err", err)
		}
	}
	return nil
}

// maxBatchReturns bounds how often a withdrawal goes back to PENDING after reverted batches.
const maxBatchReturns = 2

// settled is a withdrawal the settling transaction moved to a terminal status.
type settled struct {
	w       *store.Withdrawal
	status  store.Status
	errType string
}

// outcome is how one withdrawal of a transaction mined at depth settles.
type outcome int

const (
	confirmed outcome = iota
	failed
	repended // back to PENDING, to be signed afresh
)

func (o outcome) String() string { return [...]string{"confirmed", "failed", "repended"}[o] }

// withdrawalOutcome applies the settling rules to one withdrawal: receiptOK is the receipt's status,
// inBatch whether the transaction was a batch, itemReverted whether this withdrawal's own transfer
// inside a successful ERC-20 batch reverted, returns how often it already went back to PENDING after
// reverted batches.
func withdrawalOutcome(receiptOK, inBatch, itemReverted bool, returns int) outcome {
	switch {
	case receiptOK && itemReverted:
		return failed
	case receiptOK:
		return confirmed
	case inBatch && returns < maxBatchReturns:
		return repended
	}
	return failed
}

// itemResults reads each item's outcome of an ERC-20 batch from its TransferResult events, in the order
// the signer built it (withdrawal id order), checking every item against its withdrawal.
func (mo *Monitor) itemResults(cd ChainDeps, st *store.SentTx, b *store.Batch, ws []*store.Withdrawal, r *types.Receipt) ([]multicall.ItemResult, error) {
	if cd.Config.BatchContract.IsZero() || !strings.EqualFold(cd.Config.BatchContract.Hex(), st.To) {
		return nil, txerr.Permanentf(txerr.Unknown, "batch %s was sent to %s, not the configured batch contract %q", b.ID, st.To, cd.Config.BatchContract)
	}
	items, err := multicall.ParseTransferResults(cd.Config.BatchContract.Common(), r.Logs)
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
