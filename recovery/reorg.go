package recovery

// Reorgs beyond the confirmation depth. A reorg shallower than the depth is the monitor's: it settles
// only on a canonical block at depth. A deeper one can take back a block the monitor already settled
// on; the reorg watch keeps checking each CONFIRMED transaction of a chain for reorg_watch_blocks past
// its block, and when that block is no longer canonical it re-opens the transaction and its
// withdrawals (CONFIRMED → BROADCASTED, reason "reorged"), resends the mined attempt's recorded bytes
// (same nonce: only one transaction per nonce can be mined, so this cannot pay twice), hands it back to
// the monitor, which confirms it again at depth on the new chain, and raises a critical deep_reorg
// alert, resolved once it is settled again.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/sluice-custody/sluice/internal/alert"
	"github.com/sluice-custody/sluice/internal/queue"
	"github.com/sluice-custody/sluice/internal/store"
	"github.com/sluice-custody/sluice/internal/txerr"
)

// AlertDeepReorg is the alert kind of a CONFIRMED transaction whose block left the canonical chain.
const AlertDeepReorg = "deep_reorg"

// AlertRevertedReorged is the alert kind of a reverted (FAILED) transaction whose block left the
// canonical chain: open while it is not mined again; AlertRevertedRemined when it mined successfully.
const (
	AlertRevertedReorged = "reverted_reorged"
	AlertRevertedRemined = "reverted_remined"
)

// ReorgAlertKey is the de-duplication key of the deep-reorg alert of (chain, mined attempt's hash).
func ReorgAlertKey(chainName, txHash string) string {
	return fmt.Sprintf("%s:%s:%s", AlertDeepReorg, chainName, strings.ToLower(txHash))
}

func parseReorgAlertKey(key string) (chainName, txHash string, ok bool) {
	p := strings.Split(key, ":")
	if len(p) != 3 || p[0] != AlertDeepReorg {
		return "", "", false
	}
	return p[1], p[2], true
}

// ReorgSweep is what one reorg watch of a chain did.
type ReorgSweep struct {
	Watched, Reorged, Resolved int
	// Remined counts reverted transactions a reorg mined successfully: their withdrawals may be paid
	// twice (critical alert).
	Remined int
}

// WatchReorgs checks once that every CONFIRMED transaction of chain name mined in the last
// reorg_watch_blocks blocks is still in the block its receipt named, re-opens those that are not, and
// resolves the deep-reorg alerts of transactions settled again.
func (s *Service) WatchReorgs(ctx context.Context, name string) (ReorgSweep, error) {
	cd, ok := s.chains[name]
	if !ok {
		return ReorgSweep{}, fmt.Errorf("chain %q is not configured", name)
	}
	head, err := cd.Client.BlockNumber(ctx)
	if err != nil {
		return ReorgSweep{}, fmt.Errorf("head of %s: %w", name, err)
	}
	from := uint64(0)
	if w := cd.Config.Recovery.ReorgWatchBlocks; head > w {
		from = head - w
	}
	rows, err := s.store.ConfirmedSince(ctx, cd.Config.ChainID, from)
	if err != nil {
		return ReorgSweep{}, err
	}
	sw := ReorgSweep{Watched: len(rows)}
	canonical := map[uint64]common.Hash{} // one header per block, however many transactions it holds
	var firstErr error
	fail := func(err error) {
		if firstErr == nil {
			firstErr = err
		}
	}
	// reorged reports whether block number is no longer the block hash a receipt named, with the
	// canonical block's hash. A block above this node's head is not judged (the node is behind the one
	// that gave the receipt: the next sweep judges it), nor one whose header cannot be read (fail).
	reorged := func(number uint64, hash string) (common.Hash, bool) {
		if number > head {
			return common.Hash{}, false
		}
		h, ok := canonical[number]
		if !ok {
			hdr, err := cd.Client.HeaderByNumber(ctx, new(big.Int).SetUint64(number))
			if err != nil {
				fail(fmt.Errorf("header %d of %s: %w", number, name, err))
				return common.Hash{}, false
			}
			h = hdr.Hash()
			canonical[number] = h
		}
		return h, !strings.EqualFold(h.Hex(), hash)
	}
	for _, r := range rows {
		h, moved := reorged(r.BlockNumber, r.BlockHash)
		if !moved {
			continue
		}
		done, err := s.reopen(ctx, cd, r, h, head)
		if err != nil {
			s.log.Error("re-open reorged transaction", "chain", name, "sent_tx_id", r.ID, "err", err)
			fail(err)
			continue
		}
		if done {
			sw.Reorged++
		}
	}
	// Reverted transactions too: their withdrawals were failed, or given back to be signed again at a
	// new nonce, so were a reorg to mine one successfully they would be paid twice. The monitor settles
	// a reverted batch only reorg_watch_blocks deep; it is watched as long again after that.
	rev, err := s.store.RevertedSince(ctx, cd.Config.ChainID, from-min(from, cd.Config.Recovery.ReorgWatchBlocks))
	if err != nil {
		return sw, err
	}
	sw.Watched += len(rev)
	for _, r := range rev {
		h, moved := reorged(r.BlockNumber, r.BlockHash)
		if !moved {
			continue
		}
		remined, err := s.revertedReorged(ctx, cd, r, h, head)
		if err != nil {
			s.log.Error("reorged reverted transaction", "chain", name, "sent_tx_id", r.ID, "err", err)
			fail(err)
			continue
		}
		if remined {
			sw.Remined++
		}
	}
	open, err := s.store.OpenAlerts(ctx, AlertDeepReorg)
	if err != nil {
		return sw, err
	}
	for _, a := range open {
		c, txHash, ok := parseReorgAlertKey(a.Key)
		if !ok || c != name {
			continue
		}
		st, err := s.store.SentTxOfAttempt(ctx, txHash)
		if err != nil {
			fail(err)
			continue
		}
		// Settled again (the monitor confirmed it at depth on the new chain, or it reverted there): the
		// withdrawals carry the outcome, and the watch keeps following its new block.
		if st.Status == store.TxConfirmed || st.Status == store.TxFailed {
			s.alerts.Resolve(ctx, a.Key)
			sw.Resolved++
		}
	}
	return sw, firstErr
}

// reopen re-opens one transaction whose block left the canonical chain. It reports false when another
// instance re-opened it first (or it changed meanwhile).
func (s *Service) reopen(ctx context.Context, cd ChainDeps, r store.MinedTx, now common.Hash, head uint64) (bool, error) {
	reason := fmt.Sprintf("reorged: tx %s was confirmed in block %d (%s) at %d confirmations; that block left the canonical chain "+
		"(block %d is now %s, head %d); resent and followed to depth again", r.Hash, r.BlockNumber, r.BlockHash, cd.Config.Confirmations,
		r.BlockNumber, now.Hex(), head)
	var ws []*store.Withdrawal
	err := s.store.InTx(ctx, func(tx *sql.Tx) error {
		var err error
		if ws, err = s.store.ReopenReorged(ctx, tx, r.ID, r.BlockHash, reason); err != nil {
			return err
		}
		// In the same transaction as the re-opening: the monitor is asked to follow it again exactly
		// when it was re-opened.
		body, err := queue.NewEnvelope(ctx, queue.TypeTxBroadcasted, queue.NewID(), r.CorrelationID,
			queue.TxBroadcasted{SentTxID: r.ID, Chain: r.Chain, Hash: r.Hash})
		if err != nil {
			return err
		}
		return s.queue.SendTx(ctx, tx, queue.TxMonitor, body, queue.SendOptions{})
	})
	if errors.Is(err, store.ErrConflict) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	s.m.Reorged(r.Chain)
	ids := make([]string, len(ws))
	for i, w := range ws {
		ids[i] = w.ID
	}
	log := s.log.With("chain", r.Chain, "sent_tx_id", r.ID, "from", r.From, "nonce", r.Nonce, "tx_hash", r.Hash, "correlation_id", r.CorrelationID)
	log.Error("confirmed transaction reorged out beyond the confirmation depth; re-opened and resent",
		"block", r.BlockNumber, "block_hash", r.BlockHash, "canonical_hash", now.Hex(), "head", head, "withdrawals", ids)
	s.alerts.Fire(ctx, alert.Alert{
		Key: ReorgAlertKey(r.Chain, r.Hash), Kind: AlertDeepReorg, Severity: alert.Critical,
		Summary: fmt.Sprintf("reorg deeper than the %d confirmations on %s: tx %s of %s (nonce %d), confirmed in block %d, is no longer "+
			"on the canonical chain; %d withdrawal(s) re-opened as BROADCASTED and the transaction resent", cd.Config.Confirmations,
			r.Chain, r.Hash, r.From, r.Nonce, r.BlockNumber, len(ws)),
		Labels: map[string]string{"chain": r.Chain, "wallet": r.From},
		Details: map[string]any{"sent_tx_id": r.ID, "tx_hash": r.Hash, "nonce": r.Nonce, "block_number": r.BlockNumber,
			"block_hash": r.BlockHash, "canonical_hash": now.Hex(), "head": head, "withdrawals": ids},
	})
	st, err := s.store.GetSentTx(ctx, r.ID)
	if err != nil {
		log.Warn("load re-opened transaction for resend; the monitor resends it", "err", err)
		return true, nil
	}
	// The node usually puts a reorged-out transaction back in its pool itself; this covers the nodes
	// that do not. "Already known" or "nonce too low" (mined again on the new branch, or its nonce
	// taken there: the monitor, or the conflict handler, follows it) are answers, not failures.
	err = s.sendRaw(ctx, cd, st.Raw)
	switch {
	case err == nil || txerr.IsAlreadyKnown(err):
		s.m.Resent(r.Chain)
	case txerr.Classify(err) == txerr.NonceTooLow:
		log.Info("reorged transaction's nonce is already mined on the new branch", "err", err)
	default:
		log.Warn("resend of reorged transaction; the monitor resends it", "err", err)
	}
	return true, nil
}

// reorgEvery is how often a chain's reorg watch runs: once per block, within bounds.
func reorgEvery(blockTime time.Duration) time.Duration { return max(blockTime, 200*time.Millisecond) }

// revertedReorged follows a reverted transaction whose block left the canonical chain. Mined again and
// reverted again: its new block is recorded and watched. Not mined (yet): a critical alert stays open,
// since it may still mine. Mined successfully: it paid, although its withdrawals were failed or given
// back and signed again, so a critical alert names them as possibly paid twice and each one's history
// says so (once: the move to the new block is a compare-and-swap). It reports whether it found it
// mined successfully.
func (s *Service) revertedReorged(ctx context.Context, cd ChainDeps, r store.MinedTx, now common.Hash, head uint64) (bool, error) {
	st, err := s.store.GetSentTx(ctx, r.ID)
	if err != nil {
		return false, err
	}
	hashes, err := s.store.AttemptHashes(ctx, st.ID)
	if err != nil {
		return false, err
	}
	var rcpt *types.Receipt
	for _, h := range hashes {
		got, err := cd.Client.TransactionReceipt(ctx, common.HexToHash(h))
		if err == nil {
			rcpt = got
			break
		}
		if !errors.Is(err, ethereum.NotFound) {
			return false, fmt.Errorf("receipt of %s: %w", h, err)
		}
	}
	returned, err := s.store.BatchReturns(ctx, st.ID)
	if err != nil {
		return false, err
	}
	ws, err := s.store.WithdrawalsBySentTx(ctx, s.store.DB, st.ID)
	if err != nil {
		return false, err
	}
	ids := append([]string(nil), returned...)
	for _, w := range ws {
		ids = append(ids, w.ID)
	}
	reorgKey := fmt.Sprintf("%s:%s:%s", AlertRevertedReorged, r.Chain, strings.ToLower(r.Hash))
	labels := map[string]string{"chain": r.Chain, "wallet": r.From}
	if rcpt == nil {
		s.alerts.Fire(ctx, alert.Alert{Key: reorgKey, Kind: AlertRevertedReorged, Severity: alert.Critical,
			Summary: fmt.Sprintf("reverted tx %s of %s (nonce %d) on %s left the canonical chain (block %d) and is not mined on the new one: "+
				"it may still mine and pay %d withdrawal(s) that were failed or signed again", r.Hash, r.From, r.Nonce, r.Chain, r.BlockNumber, len(ids)),
			Labels: labels,
			Details: map[string]any{"sent_tx_id": r.ID, "tx_hash": r.Hash, "nonce": r.Nonce, "block_number": r.BlockNumber,
				"block_hash": r.BlockHash, "canonical_hash": now.Hex(), "head": head, "withdrawals": ids},
		})
		return false, nil
	}
	rec := store.Receipt{Hash: rcpt.TxHash.Hex(), BlockNumber: rcpt.BlockNumber.Uint64(), BlockHash: rcpt.BlockHash.Hex(),
		Status: int(rcpt.Status), GasUsed: rcpt.GasUsed}
	ok := rcpt.Status == types.ReceiptStatusSuccessful
	note := fmt.Sprintf("POSSIBLY PAID TWICE: tx %s, recorded as reverted in block %d, was mined successfully in block %d (%s) after a reorg "+
		"deeper than the watch; this withdrawal was failed or signed again since. Check the chain and reconcile by hand", rec.Hash, r.BlockNumber,
		rec.BlockNumber, rec.BlockHash)
	err = s.store.InTx(ctx, func(tx *sql.Tx) error {
		if err := s.store.MoveReverted(ctx, tx, r.ID, r.BlockHash, rec); err != nil {
			return err
		}
		if !ok {
			return nil
		}
		for _, id := range ids {
			if err := s.store.NoteHistory(ctx, tx, id, note, store.ActorRecovery); err != nil {
				return err
			}
		}
		return nil
	})
	if errors.Is(err, store.ErrConflict) {
		return false, nil // another instance followed it first
	}
	if err != nil {
		return false, err
	}
	s.alerts.Resolve(ctx, reorgKey)
	if !ok {
		s.log.Warn("reverted transaction reorged and reverted again in another block", "chain", r.Chain, "sent_tx_id", r.ID,
			"tx_hash", rec.Hash, "block", rec.BlockNumber)
		return false, nil
	}
	s.log.Error("reverted transaction mined successfully after a deep reorg; its withdrawals may be paid twice", "chain", r.Chain,
		"sent_tx_id", r.ID, "tx_hash", rec.Hash, "block", rec.BlockNumber, "withdrawals", ids)
	s.alerts.Fire(ctx, alert.Alert{
		Key: fmt.Sprintf("%s:%s:%s", AlertRevertedRemined, r.Chain, strings.ToLower(r.Hash)), Kind: AlertRevertedRemined, Severity: alert.Critical,
		Summary: fmt.Sprintf("tx %s of %s (nonce %d) on %s, settled as reverted in block %d, was mined successfully in block %d after a reorg "+
			"deeper than reorg_watch_blocks: %d withdrawal(s) may be paid twice: %s", rec.Hash, r.From, r.Nonce, r.Chain, r.BlockNumber,
			rec.BlockNumber, len(ids), strings.Join(ids, ", ")),
		Labels: labels,
		Details: map[string]any{"sent_tx_id": r.ID, "tx_hash": rec.Hash, "nonce": r.Nonce, "old_block_number": r.BlockNumber,
			"old_block_hash": r.BlockHash, "block_number": rec.BlockNumber, "block_hash": rec.BlockHash, "withdrawals": ids},
	})
	return true, nil
}
