// Package broadcaster owns getting recorded signed transactions to the chain: it sends the raw bytes
// (in nonce order per address, as the signed-tx queue delivers them), treats "already there" answers as
// success, marks the transaction and its withdrawals BROADCASTED and hands them to the monitor.
package broadcaster

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/sluice-custody/sluice/internal/queue"
	"github.com/sluice-custody/sluice/internal/store"
	"github.com/sluice-custody/sluice/internal/txerr"
)

// Chain is what the broadcaster asks of a node.
type Chain interface {
	SendTransaction(ctx context.Context, tx *types.Transaction) error
	TransactionByHash(ctx context.Context, hash common.Hash) (*types.Transaction, bool, error)
}

// Deps are the collaborators a Broadcaster cannot work without.
type Deps struct {
	Store *store.Store
	// Queue hands broadcast transactions to the monitor, in the transaction that marks them.
	Queue queue.TxSender
	// Chains are the node clients by chain name.
	Chains map[string]Chain
}

// Broadcaster consumes signed-tx.
type Broadcaster struct {
	store  *store.Store
	queue  queue.TxSender
	chains map[string]Chain
	log    *slog.Logger
	met    Metrics
}

// New checks d (a missing dependency is an error naming it) and builds the broadcaster. A nil log
// discards; m may be NopMetrics() in tests.
func New(d Deps, log *slog.Logger, m Metrics) (*Broadcaster, error) {
	switch {
	case d.Store == nil:
		return nil, errors.New("broadcaster: Store is required")
	case d.Queue == nil:
		return nil, errors.New("broadcaster: Queue is required")
	case len(d.Chains) == 0:
		return nil, errors.New("broadcaster: Chains is required (no chain configured)")
	case m == nil:
		return nil, errors.New("broadcaster: Metrics is required (NopMetrics() for none)")
	}
	for name, c := range d.Chains {
		if c == nil {
			return nil, fmt.Errorf("broadcaster: Chains[%q] has no client", name)
		}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Broadcaster{store: d.Store, queue: d.Queue, chains: d.Chains, log: log, met: m}, nil
}

// Handle processes one signed-tx message.
func (b *Broadcaster) Handle(ctx context.Context, m queue.Message) error {
	env, p, err := queue.Decode[queue.TxSigned](m.Body, queue.TypeTxSigned)
	if err != nil {
		return err
	}
	st, err := b.store.GetSentTx(ctx, p.SentTxID)
	if err != nil {
		return fmt.Errorf("load sent tx %d: %w", p.SentTxID, err)
	}
	log := b.log.With("sent_tx_id", st.ID, "from", st.From, "correlation_id", env.CorrelationID)
	if st.Status != store.TxSigned {
		log.Info("already broadcast", "status", st.Status)
		return nil
	}
	client, ok := b.chains[st.Chain]
	if !ok {
		return txerr.Permanentf(txerr.InvalidTransaction, "chain %q of sent tx %d is not configured", st.Chain, st.ID)
	}
	// Signers commit concurrently, so messages can arrive out of nonce order; a node may refuse a
	// nonce above its next one (Hardhat's automine does) and would hold this address's queue hostage.
	// Sending the lower unsent ones first keeps the address in nonce order whatever the arrival order.
	lower, err := b.store.SignedBelow(ctx, st.ChainID, st.From, st.Nonce)
	if err != nil {
		return err
	}
	for _, l := range append(lower, st) {
		if err := b.broadcast(ctx, log, client, l); err != nil {
			return err
		}
	}
	return nil
}

// broadcast sends one recorded transaction and marks it sent.
func (b *Broadcaster) broadcast(ctx context.Context, log *slog.Logger, client Chain, st *store.SentTx) error {
	tx := new(types.Transaction)
	if err := tx.UnmarshalBinary(st.Raw); err != nil {
		return txerr.New(txerr.InvalidTransaction, "bad_raw_tx", fmt.Errorf("decode sent tx %d: %w", st.ID, err))
	}
	if err := b.send(ctx, client, st, tx); err != nil {
		typ := txerr.Classify(err)
		if typ == txerr.GasPriceTooLow {
			return b.requestRefee(ctx, log, st, err)
		}
		b.met.SendError(st.Chain, string(typ))
		log.Warn("broadcast failed", "nonce", st.Nonce, "err", err, "type", typ)
		return err
	}
	ws, err := b.markBroadcasted(ctx, st, st.CorrelationID)
	if err != nil {
		return err
	}
	if ws != nil { // nil: a concurrent delivery marked it, and counted it
		b.met.Sent(st.Chain)
		now := time.Now()
		for _, w := range ws {
			b.met.WithdrawalBroadcast(w.Chain, w.Asset, now.Sub(w.CreatedAt))
		}
	}
	log.Info("broadcast", "nonce", st.Nonce, "tx_hash", st.Hash)
	return nil
}

// send submits tx; a node that already has it, or a chain that already mined one of its attempts, is
// success. A nonce consumed by anything else is a conflict no retry can fix.
func (b *Broadcaster) send(ctx context.Context, client Chain, st *store.SentTx, tx *types.Transaction) error {
	return sendDecision(ctx, client, st, tx, func(ctx context.Context) ([]string, error) {
		return b.store.AttemptHashes(ctx, st.ID)
	})
}

// sendDecision is send without the store, so that its decisions are table-tested with a fake Chain:
// attempts lists the hashes of st's recorded attempts and is read only when the node says nonce too low.
func sendDecision(ctx context.Context, client Chain, st *store.SentTx, tx *types.Transaction,
	attempts func(context.Context) ([]string, error)) error {
	err := client.SendTransaction(ctx, tx)
	if err == nil || txerr.IsAlreadyKnown(err) {
		return nil
	}
	if txerr.Classify(err) != txerr.NonceTooLow {
		return fmt.Errorf("send %s: %w", tx.Hash(), err)
	}
	hashes, herr := attempts(ctx)
	if herr != nil {
		return herr
	}
	for _, h := range hashes {
		_, _, lerr := client.TransactionByHash(ctx, common.HexToHash(h))
		if lerr == nil {
			return nil // ours is on chain (or in the pool) under this or an earlier attempt
		}
		if !errors.Is(lerr, ethereum.NotFound) {
			return fmt.Errorf("look up attempt %s: %w", h, lerr)
		}
	}
	return txerr.New(txerr.InvalidTransaction, "nonce_conflict",
		fmt.Errorf("nonce %d of %s is used by a transaction that is not ours (%d attempts checked): %w", st.Nonce, st.From, len(hashes), err))
}

// requestRefee asks the signer (the broadcaster holds no keys) to sign st again at its nonce with higher
// fees, after a node refused it as underpriced, passing on the least tip the node named. st stays SIGNED
// and this delivery is done: the new attempt comes back on signed-tx.
func (b *Broadcaster) requestRefee(ctx context.Context, log *slog.Logger, st *store.SentTx, refusal error) error {
	p := queue.TxRefeeRequested{SentTxID: st.ID, Hash: st.Hash}
	if tip, ok := txerr.MinTipNeeded(refusal); ok {
		p.MinTipCap = tip.String()
	}
	body, err := queue.NewEnvelope(ctx, queue.TypeTxRefeeRequested, queue.NewID(), st.CorrelationID, p)
	if err != nil {
		return err
	}
	if err := b.store.InTx(ctx, func(tx *sql.Tx) error {
		return b.queue.SendTx(ctx, tx, queue.TxRequest, body, queue.SendOptions{})
	}); err != nil {
		return fmt.Errorf("request re-fee of sent tx %d: %w", st.ID, err)
	}
	log.Warn("node refused the fees; asked the signer for a new attempt with higher fees", "nonce", st.Nonce,
		"tx_hash", st.Hash, "min_tip_needed", p.MinTipCap, "err", refusal)
	return nil
}

// markBroadcasted marks st and its withdrawals BROADCASTED and queues the monitor, all in one database
// transaction, and returns the withdrawals it moved (nil when a concurrent delivery had marked st).
func (b *Broadcaster) markBroadcasted(ctx context.Context, st *store.SentTx, correlationID string) ([]*store.Withdrawal, error) {
	var moved []*store.Withdrawal
	err := b.store.InTx(ctx, func(tx *sql.Tx) error {
		moved = nil // the transaction may be retried after a deadlock
		if err := b.store.SetSentTxStatus(ctx, tx, st.ID, store.TxSigned, store.TxBroadcasted); err != nil {
			if errors.Is(err, store.ErrConflict) {
				return nil // a concurrent delivery got here first and queued the monitor
			}
			return err
		}
		ws, err := b.store.WithdrawalsBySentTx(ctx, tx, st.ID)
		if err != nil {
			return err
		}
		moved = make([]*store.Withdrawal, 0, len(ws))
		for _, w := range ws {
			if err := b.store.Transition(ctx, tx, w.ID, store.Signed, store.Broadcasted, "sent "+st.Hash, store.ActorBroadcaster, store.Change{}); err != nil {
				return err
			}
			moved = append(moved, w)
		}
		body, err := queue.NewEnvelope(ctx, queue.TypeTxBroadcasted, queue.NewID(), correlationID,
			queue.TxBroadcasted{SentTxID: st.ID, Chain: st.Chain, Hash: st.Hash})
		if err != nil {
			return err
		}
		return b.queue.SendTx(ctx, tx, queue.TxMonitor, body, queue.SendOptions{})
	})
	if err != nil {
		return nil, err
	}
	return moved, nil
}
