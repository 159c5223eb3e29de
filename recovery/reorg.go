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

	"github.com/ethereum/go-ethereum/common"

	"github.com/sluice-custody/sluice/internal/alert"
	"github.com/sluice-custody/sluice/internal/queue"
	"github.com/sluice-custody/sluice/internal/store"
	"github.com/sluice-custody/sluice/internal/txerr"
)

// AlertDeepReorg is the alert kind of a CONFIRMED transaction whose block left the canonical chain.
const AlertDeepReorg = "deep_reorg"

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
	for _, r := range rows {
		if r.BlockNumber > head {
			continue // this node is behind the one that gave the receipt: judged by the next sweep
		}
		h, ok := canonical[r.BlockNumber]
		if !ok {
			hdr, err := cd.Client.HeaderByNumber(ctx, new(big.Int).SetUint64(r.BlockNumber))
			if err != nil {
				fail(fmt.Errorf("header %d of %s: %w", r.BlockNumber, name, err))
				continue
			}
			h = hdr.Hash()
			canonical[r.BlockNumber] = h
		}
		if strings.EqualFold(h.Hex(), r.BlockHash) {
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
