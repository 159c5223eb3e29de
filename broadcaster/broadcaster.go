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
	"strings"

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

// Broadcaster consumes signed-tx.
type Broadcaster struct {
	Store  *store.Store
	Queue  queue.TxSender
	Chains map[string]Chain
	Log    *slog.Logger
}

// Handle processes one signed-tx message.
func (b *Broadcaster) Handle(ctx context.Context, m queue.Message) error {
	env, p, err := queue.Decode[queue.TxSigned](m.Body, queue.TypeTxSigned)
	if err != nil {
		return err
	}
	st, err := b.Store.GetSentTx(ctx, p.SentTxID)
	if err != nil {
		return fmt.Errorf("load sent tx %d: %w", p.SentTxID, err)
	}
	log := b.Log.With("sent_tx_id", st.ID, "from", st.From, "correlation_id", env.CorrelationID)
	if st.Status != store.TxSigned {
		log.Info("already broadcast", "status", st.Status)
		return nil
	}
	client, ok := b.Chains[st.Chain]
	if !ok {
		return txerr.Permanentf(txerr.InvalidTransaction, "chain %q of sent tx %d is not configured", st.Chain, st.ID)
	}
	// Signers commit concurrently, so messages can arrive out of nonce order; a node may refuse a
	// nonce above its next one (Hardhat's automine does) and would hold this address's queue hostage.
	// Sending the lower unsent ones first keeps the address in nonce order whatever the arrival order.
	lower, err := b.Store.SignedBelow(ctx, st.ChainID, st.From, st.Nonce)
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
		if txerr.Classify(err) == txerr.GasPriceTooLow {
			return b.requestRefee(ctx, log, st, err)
		}
		log.Warn("broadcast failed", "nonce", st.Nonce, "err", err, "type", txerr.Classify(err))
		return err
	}
	if err := b.markBroadcasted(ctx, st, st.CorrelationID); err != nil {
		return err
	}
	log.Info("broadcast", "nonce", st.Nonce, "tx_hash", st.Hash)
	return nil
}

// send submits tx; a node that already has it, or a chain that already mined one of its attempts, is
// success. A nonce consumed by anything else is a conflict no retry can fix.
func (b *Broadcaster) send(ctx context.Context, client Chain, st *store.SentTx, tx *types.Transaction) error {
	err := client.SendTransaction(ctx, tx)
	if err == nil || strings.Contains(strings.ToLower(err.Error()), "already known") {
		return nil
	}
	if txerr.Classify(err) != txerr.NonceTooLow {
		return fmt.Errorf("send %s: %w", tx.Hash(), err)
	}
	hashes, herr := b.Store.AttemptHashes(ctx, st.ID)
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
	body, err := queue.NewEnvelope(queue.TypeTxRefeeRequested, queue.NewID(), st.CorrelationID, p)
	if err != nil {
		return err
	}
	if err := b.Store.InTx(ctx, func(tx *sql.Tx) error {
		return b.Queue.SendTx(ctx, tx, queue.TxRequest, body, queue.SendOptions{})
	}); err != nil {
		return fmt.Errorf("request re-fee of sent tx %d: %w", st.ID, err)
	}
	log.Warn("node refused the fees; asked the signer for a new attempt with higher fees", "nonce", st.Nonce,
		"tx_hash", st.Hash, "min_tip_needed", p.MinTipCap, "err", refusal)
	return nil
}

func (b *Broadcaster) markBroadcasted(ctx context.Context, st *store.SentTx, correlationID string) error {
	return b.Store.InTx(ctx, func(tx *sql.Tx) error {
		if err := b.Store.SetSentTxStatus(ctx, tx, st.ID, store.TxSigned, store.TxBroadcasted); err != nil {
			if errors.Is(err, store.ErrConflict) {
				return nil // a concurrent delivery got here first and queued the monitor
			}
			return err
		}
		ws, err := b.Store.WithdrawalsBySentTx(ctx, tx, st.ID)
		if err != nil {
			return err
		}
		for _, w := range ws {
			if err := b.Store.Transition(ctx, tx, w.ID, store.Signed, store.Broadcasted, "sent "+st.Hash, store.ActorBroadcaster, store.Change{}); err != nil {
				return err
			}
		}
		body, err := queue.NewEnvelope(queue.TypeTxBroadcasted, queue.NewID(), correlationID,
			queue.TxBroadcasted{SentTxID: st.ID, Chain: st.Chain, Hash: st.Hash})
		if err != nil {
			return err
		}
		return b.Queue.SendTx(ctx, tx, queue.TxMonitor, body, queue.SendOptions{})
	})
}
