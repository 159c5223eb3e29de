package recovery

// Stuck and dropped transactions. A broadcast transaction whose current attempt is still unmined
// stuck_after_blocks after recovery first saw it is either unknown to the node (dropped: evicted, a
// node restart, a pool that raised its floor) and resent from its recorded bytes, or known and left
// behind by the market, and replaced at its nonce with the same call and higher fees (fees.Estimator's
// Replacement: tip and fee cap each at least +10%, at least the current estimate, never under the floor
// nor over the cap). At the cap nothing is signed: the highest attempt stays in the pool and a critical
// alert names the wallet, the nonce, the fee needed and the cap until the nonce is mined.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/sluice-custody/sluice/internal/alert"
	"github.com/sluice-custody/sluice/internal/fees"
	"github.com/sluice-custody/sluice/internal/store"
	"github.com/sluice-custody/sluice/internal/txerr"
	"github.com/sluice-custody/sluice/internal/txsend"
)

// SystemSource is the source of transactions recovery signs on its own account (gap fills): they carry
// no request id and no withdrawal.
const SystemSource = "SYSTEM"

// AlertStuckAtCap is the alert kind of a transaction whose bump would exceed the chain's fee cap.
const AlertStuckAtCap = "stuck_at_cap"

// maxBumpsPerSweep bounds the attempts one sweep signs for one transaction: a node that refuses a bump
// names the tip it wants, and the next bump uses it at once instead of waiting for the next sweep.
const maxBumpsPerSweep = 3

// CapAlertKey is the de-duplication key of the at-cap alert of (chain, wallet, nonce).
func CapAlertKey(chainName, from string, nonce uint64) string {
	return fmt.Sprintf("%s:%s:%s:%d", AlertStuckAtCap, chainName, strings.ToLower(from), nonce)
}

// parseCapAlertKey reads CapAlertKey back.
func parseCapAlertKey(key string) (chainName, from string, nonce uint64, ok bool) {
	p := strings.Split(key, ":")
	if len(p) != 4 || p[0] != AlertStuckAtCap {
		return "", "", 0, false
	}
	n, err := strconv.ParseUint(p[3], 10, 64)
	return p[1], p[2], n, err == nil
}

// Plan is what Decide finds in one chain's in-flight transactions.
type Plan struct {
	// Unseen have no stuck clock yet: it starts at this sweep's head.
	Unseen []int64
	// Stuck are past the threshold, in address and nonce order: each is looked up on the node.
	Stuck []store.InFlight
}

// Decide applies the stuck rule to the in-flight transactions of a chain, in address and nonce order,
// without the node or the store (so it is table-tested and benchmarked alone). mined holds each
// address's mined nonce, by lower-case address.
//
//   - A nonce below its address's mined nonce is consumed: the monitor settles it (or the conflict
//     handler, when no attempt of ours was mined). Nothing to do here.
//   - A transaction without a clock gets one.
//   - A transaction whose clock started `after` blocks ago or earlier is stuck, but only while every
//     nonce from the mined one up to it is in flight too: one above a gap (or above a transaction not
//     yet broadcast) is waiting for that nonce, not for fees, and bumping it would only pay more and,
//     at the cap, raise a false alarm. The gap filler fills the gap; its clock keeps running.
func Decide(rows []store.InFlight, mined map[string]uint64, head, after uint64) Plan {
	var (
		p        Plan
		from     string
		next     uint64 // the nonce that keeps the address's run of in-flight nonces unbroken
		unbroken bool
	)
	for _, r := range rows {
		m, known := mined[strings.ToLower(r.From)]
		if r.From != from {
			from, next, unbroken = r.From, m, true
		}
		if known && r.Nonce < m {
			continue
		}
		if !known {
			unbroken = true // no mined nonce read: judged by its clock alone
		} else if r.Nonce != next {
			unbroken = false
		}
		next = r.Nonce + 1
		if r.AttemptBlock == nil {
			p.Unseen = append(p.Unseen, r.ID)
			continue
		}
		if unbroken && head >= *r.AttemptBlock+after {
			p.Stuck = append(p.Stuck, r)
		}
	}
	return p
}

// Sweep is what one stuck-transaction sweep of a chain did.
type Sweep struct {
	InFlight, Stuck, Bumped, Resent, AtCap, Resolved int
}

// outcome is what unstick did with one stuck transaction.
type outcome int

const (
	skipped outcome = iota // mined, settled or replaced by someone else meanwhile
	resent
	bumped
	atCap
)

// UnstickChain sweeps the in-flight transactions of one chain once.
func (s *Service) UnstickChain(ctx context.Context, name string) (Sweep, error) {
	cd, ok := s.chains[name]
	if !ok {
		return Sweep{}, fmt.Errorf("chain %q is not configured", name)
	}
	start := time.Now()
	head, err := cd.Client.BlockNumber(ctx)
	if err != nil {
		return Sweep{}, fmt.Errorf("head of %s: %w", name, err)
	}
	rows, err := s.store.InFlightTxs(ctx, cd.Config.ChainID)
	if err != nil {
		return Sweep{}, err
	}
	open, err := s.store.OpenAlerts(ctx, AlertStuckAtCap)
	if err != nil {
		return Sweep{}, err
	}
	mined := map[string]uint64{}
	need := func(from string) error {
		from = strings.ToLower(from)
		if _, ok := mined[from]; ok {
			return nil
		}
		n, err := cd.Client.NonceAt(ctx, common.HexToAddress(from))
		if err != nil {
			return fmt.Errorf("mined nonce of %s on %s: %w", from, name, err)
		}
		mined[from] = n
		return nil
	}
	for _, r := range rows {
		if err := need(r.From); err != nil {
			return Sweep{}, err
		}
	}
	p := Decide(rows, mined, head, cd.Config.Recovery.StuckAfterBlocks)
	if err := s.store.MarkAttemptSeen(ctx, p.Unseen, head); err != nil {
		return Sweep{}, err
	}
	sw := Sweep{InFlight: len(rows), Stuck: len(p.Stuck)}
	var firstErr error
	for _, r := range p.Stuck {
		out, err := s.unstick(ctx, cd, r)
		if err != nil {
			s.log.Warn("stuck transaction", "chain", name, "sent_tx_id", r.ID, "from", r.From, "nonce", r.Nonce, "err", err)
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		switch out {
		case resent:
			sw.Resent++
		case bumped:
			sw.Bumped++
		case atCap:
			sw.AtCap++
		}
	}
	// An at-cap alert stays open until its nonce is mined (by whichever attempt, or by anything).
	for _, a := range open {
		c, from, n, ok := parseCapAlertKey(a.Key)
		if !ok || c != name {
			continue
		}
		if err := need(from); err != nil {
			return sw, err
		}
		if n < mined[from] {
			s.alerts.Resolve(ctx, a.Key)
			sw.Resolved++
		}
	}
	byWallet := map[string]int{}
	for _, hw := range cd.Config.HotWallets {
		byWallet[hw.Hex()] = 0
	}
	var oldestBlocks uint64
	for _, r := range p.Stuck {
		w := common.HexToAddress(r.From).Hex()
		if _, ours := byWallet[w]; ours { // bounded labels: configured hot wallets only
			byWallet[w]++
		}
		if r.AttemptBlock != nil && head > *r.AttemptBlock {
			oldestBlocks = max(oldestBlocks, head-*r.AttemptBlock)
		}
	}
	s.m.Swept(name, sw.InFlight, byWallet, time.Duration(oldestBlocks)*cd.Config.BlockTime.Duration, time.Since(start))
	return sw, firstErr
}

// unstick looks one stuck transaction up on the node and resends or bumps it.
func (s *Service) unstick(ctx context.Context, cd ChainDeps, r store.InFlight) (outcome, error) {
	st, err := s.store.GetSentTx(ctx, r.ID)
	if err != nil {
		return skipped, err
	}
	if st.Status != store.TxBroadcasted || st.Hash != r.Hash {
		return skipped, nil // settled or bumped since the scan
	}
	hashes, err := s.store.AttemptHashes(ctx, st.ID)
	if err != nil {
		return skipped, err
	}
	known := false
	for _, h := range hashes {
		_, pending, err := cd.Client.TransactionByHash(ctx, common.HexToHash(h))
		switch {
		case err == nil && !pending:
			return skipped, nil // mined by this attempt: the monitor settles it
		case err == nil && strings.EqualFold(h, st.Hash):
			known = true
		case err != nil && !errors.Is(err, ethereum.NotFound):
			return skipped, fmt.Errorf("look up attempt %s: %w", h, err)
		}
	}
	log := s.log.With("chain", st.Chain, "sent_tx_id", st.ID, "from", st.From, "nonce", st.Nonce, "correlation_id", st.CorrelationID)
	var learned *big.Int
	if !known {
		// Dropped: put the recorded bytes back. Idempotent: the same hash, "already known" if it is back.
		err := s.sendRaw(ctx, cd, st.Raw)
		switch typ := txerr.Classify(err); {
		case err == nil || txerr.IsAlreadyKnown(err):
			s.m.Resent(st.Chain)
			log.Warn("the node no longer knew the transaction; resent its recorded bytes", "tx_hash", st.Hash)
			return resent, nil
		case typ == txerr.NonceTooLow:
			return skipped, nil // its nonce was mined meanwhile: the monitor (or the conflict handler) takes it
		case typ == txerr.GasPriceTooLow || typ == txerr.ReplacementUnderpriced:
			// The node dropped it for its fees (a raised pool floor): bump at once, to the tip it named.
			learned, _ = txerr.MinTipNeeded(err)
			log.Warn("the node dropped the transaction and refuses it back at its fees; bumping", "tx_hash", st.Hash, "err", err)
		default:
			return skipped, fmt.Errorf("resend %s: %w", st.Hash, err)
		}
	}
	return s.bump(ctx, cd, st, learned)
}

// bump signs and records a new attempt of st with higher fees, then sends it.
func (s *Service) bump(ctx context.Context, cd ChainDeps, st *store.SentTx, learned *big.Int) (outcome, error) {
	return s.replace(ctx, cd, st, learned, txsend.ReplacementOf, nil)
}

// replace signs and records a new attempt of st at its nonce with higher fees, built by build (the same
// call for a bump, a self-transfer for a cancel) and with record's writes in the same database
// transaction, then sends it; a refusal naming the tip the node wants is followed at once by another.
func (s *Service) replace(ctx context.Context, cd ChainDeps, st *store.SentTx, learned *big.Int,
	build func(*store.SentTx, fees.Fees) (txsend.Candidate, error), record func(context.Context, *sql.Tx, *store.SentTx) error) (outcome, error) {
	done := skipped
	for range maxBumpsPerSweep {
		f, err := cd.Fees.Replacement(ctx, fees.Fees{MaxFeePerGas: st.MaxFeePerGas, MaxPriorityFee: st.MaxPriorityFee}, learned)
		var oc *fees.OverCapError
		if errors.As(err, &oc) {
			s.fireAtCap(ctx, cd, st, oc)
			if done == skipped {
				done = atCap
			}
			return done, nil
		}
		if err != nil {
			return done, err
		}
		c, err := build(st, f)
		if err != nil {
			return done, err
		}
		c.Record = record
		// Sent just below, by this sweep: the broadcaster has nothing to do for a BROADCASTED row, and
		// a crash before the send is covered by the monitor's re-send of the current attempt.
		c.Unqueued = true
		next, err := s.send.Send(ctx, c)
		if errors.Is(err, store.ErrConflict) {
			// Another instance bumped it first, or it settled: the compare-and-swap on the hash says so.
			return done, nil
		}
		if err != nil {
			return done, err
		}
		done = bumped
		s.m.Bumped(st.Chain)
		s.log.Warn("stuck transaction replaced with higher fees", "chain", st.Chain, "sent_tx_id", st.ID, "from", st.From,
			"nonce", st.Nonce, "tx_hash", next.Hash, "replaced_hash", st.Hash, "max_fee_per_gas", f.MaxFeePerGas,
			"max_priority_fee", f.MaxPriorityFee, "old_max_fee_per_gas", st.MaxFeePerGas, "old_max_priority_fee", st.MaxPriorityFee)
		err = s.sendRaw(ctx, cd, next.Raw)
		typ := txerr.Classify(err)
		if err == nil || txerr.IsAlreadyKnown(err) || typ == txerr.NonceTooLow {
			return done, nil
		}
		if typ != txerr.GasPriceTooLow && typ != txerr.ReplacementUnderpriced {
			// Recorded: the monitor's next look, or the next sweep, sends it again.
			s.log.Warn("new attempt recorded but not sent; it is resent later", "tx_hash", next.Hash, "err", err)
			return done, nil
		}
		learned, _ = txerr.MinTipNeeded(err)
		st = next
	}
	return done, nil
}

// fireAtCap raises the at-cap alert of st (once per wallet and nonce until the nonce is mined).
func (s *Service) fireAtCap(ctx context.Context, cd ChainDeps, st *store.SentTx, oc *fees.OverCapError) {
	s.m.AtCap(st.Chain)
	s.alerts.Fire(ctx, alert.Alert{
		Key: CapAlertKey(st.Chain, st.From, st.Nonce), Kind: AlertStuckAtCap, Severity: alert.Critical,
		Summary: fmt.Sprintf("transaction of %s at nonce %d on %s is stuck: a bump needs %s %s wei, above the configured cap %s wei; "+
			"every later transaction of this wallet waits behind it", st.From, st.Nonce, st.Chain, oc.What, oc.Need, oc.Cap),
		Labels: map[string]string{"chain": st.Chain, "wallet": st.From},
		Details: map[string]any{"nonce": st.Nonce, "tx_hash": st.Hash, "fee_field": oc.What, "fee_needed": oc.Need.String(),
			"fee_cap": oc.Cap.String(), "max_fee_per_gas": st.MaxFeePerGas.String(), "max_priority_fee": st.MaxPriorityFee.String(),
			"sent_tx_id": st.ID, "stuck_after_blocks": cd.Config.Recovery.StuckAfterBlocks},
	})
}

// storeInFlight is the scan's view of a loaded row.
func storeInFlight(st *store.SentTx) store.InFlight {
	return store.InFlight{ID: st.ID, From: st.From, Nonce: st.Nonce, Hash: st.Hash}
}

func (s *Service) sendRaw(ctx context.Context, cd ChainDeps, raw []byte) error {
	tx := new(types.Transaction)
	if err := tx.UnmarshalBinary(raw); err != nil {
		return txerr.New(txerr.InvalidTransaction, "bad_raw_tx", err)
	}
	return cd.Client.SendTransaction(ctx, tx)
}
