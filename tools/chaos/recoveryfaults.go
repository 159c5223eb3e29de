package chaos

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/big"
	mrand "math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
)

// Recovery fault kinds, as the schedule prints them.
const (
	faultFeeSurge = "fee-surge"
	faultForeign  = "foreign-nonce"
	faultReorg    = "reorg"
)

// plannedFault is one recovery fault of the schedule: what, and when after the first post.
type plannedFault struct {
	kind string
	at   time.Duration
}

// Sizes of the faults. A surge lifts the node's tip floor to 1.3× the 1 gwei floor the chaos chain's
// transactions are signed at (the fees' min_priority_fee): three bumps of 10% reach it, well under the
// 100 gwei tip cap and the 500 gwei fee cap, so the cap never stops a bump.
var (
	surgeTip      = big.NewInt(1_300_000_000)
	normalTip     = big.NewInt(1_000_000) // the devchain's floor before any surge (geth's default, 0.001 gwei)
	surgeFor      = 8 * time.Second
	reorgDepth    = uint64(3)                 // below the run's confirmations (12 by default): the monitor rides it out
	foreignTipWei = big.NewInt(5_000_000_000) // over a 10% replacement of anything Sluice signs in a run
	// silentDropRate is the share of sends drawn for a silent drop until DroppedSends are spent: with a
	// few hundred sends a run, the budget is spent in the first part of the run, while there is time
	// to recover.
	silentDropRate = 0.05
)

// recoverySchedule draws when each recovery fault happens, from its own stream of the seed: uniformly
// over the middle 80% of the posting time, so that each lands while withdrawals are in flight. Dropped
// sends are not scheduled here: the proxy decides them per request.
func recoverySchedule(seed uint64, f RecoveryFaults, postFor time.Duration) []plannedFault {
	rng := mrand.New(mrand.NewPCG(seed, streamRecovery))
	var plan []plannedFault
	add := func(kind string, n int) {
		for range n {
			at := postFor/10 + time.Duration(rng.Int64N(int64(max(time.Second, postFor*8/10))))
			plan = append(plan, plannedFault{kind: kind, at: at.Round(100 * time.Millisecond)})
		}
	}
	add(faultFeeSurge, f.FeeSurges)
	add(faultForeign, f.ForeignNonces)
	add(faultReorg, f.Reorgs)
	slices.SortStableFunc(plan, func(a, b plannedFault) int { return int(a.at - b.at) })
	return plan
}

func formatFaultPlan(plan []plannedFault) string {
	if len(plan) == 0 {
		return "none"
	}
	var parts []string
	for _, p := range plan {
		parts = append(parts, fmt.Sprintf("%s at %s", p.kind, p.at))
	}
	return strings.Join(parts, ", ")
}

// injected is what the recovery faults did, for the verdict and the breakdown.
type injected struct {
	mu         sync.Mutex
	surging    int // surges under way: the floor comes down when the last one ends
	surges     int
	reorgs     int
	reorgedTxs int                    // the hot wallet's transactions in the blocks a reorg dropped
	foreign    map[uint64]common.Hash // nonce → the foreign transaction the harness sent at it
	unfrozen   int
	problems   []string
	incomplete []string
}

func (in *injected) note(incomplete bool, format string, args ...any) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if incomplete {
		in.incomplete = append(in.incomplete, fmt.Sprintf(format, args...))
	} else {
		in.problems = append(in.problems, fmt.Sprintf(format, args...))
	}
}

// faultLoop carries out the recovery fault schedule, each fault at its time after start.
func (r *run) faultLoop(ctx context.Context, plan []plannedFault, start time.Time, done chan<- struct{}) {
	defer close(done)
	for _, p := range plan {
		if !sleepCtx(ctx, time.Until(start.Add(p.at))) {
			break
		}
		switch p.kind {
		case faultFeeSurge:
			// On its own: its surgeFor must not push the next fault's time back.
			go r.feeSurge(ctx)
		case faultForeign:
			r.foreignNonce(ctx)
		case faultReorg:
			r.reorg(ctx)
		}
	}
}

// feeSurge lifts the node's tip floor above what the signed transactions carry, for surgeFor: the node
// drops what its pool holds under the floor and refuses new sends under it, so the broadcaster re-fees
// at send and recovery bumps (or resends, then bumps) what was recorded at the old fee.
func (r *run) feeSurge(ctx context.Context) {
	if err := r.chain.SetMinTip(ctx, surgeTip); err != nil {
		r.inj.note(true, "fee surge: %v", err)
		return
	}
	r.inj.mu.Lock()
	r.inj.surging++
	r.inj.mu.Unlock()
	r.logf("fee surge: the node's tip floor is %s wei for %s", surgeTip, surgeFor)
	sleepCtx(ctx, surgeFor)
	r.inj.mu.Lock()
	r.inj.surging--
	last := r.inj.surging == 0
	r.inj.mu.Unlock()
	if !last {
		r.inj.mu.Lock()
		r.inj.surges++
		r.inj.mu.Unlock()
		return // a later surge overlaps this one: it lowers the floor
	}
	// Lowered on a fresh context: a surge left on would stall the rest of the run.
	lctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.chain.SetMinTip(lctx, normalTip); err != nil {
		r.inj.note(true, "fee surge: lowering the tip floor: %v", err)
		return
	}
	r.inj.mu.Lock()
	r.inj.surges++
	r.inj.mu.Unlock()
	r.logf("fee surge over: the node's tip floor is back to %s wei", normalTip)
}

// foreignNonce signs, with the hot wallet's key, a zero-value self-transfer at the wallet's first unmined
// nonce and sends it straight to the node, with a tip high enough to replace what Sluice has in the
// pool at that nonce: a transaction Sluice did not sign takes a nonce Sluice already used. (At the
// pending nonce instead, the signer, which allocates past the chain's pending nonce, would simply move
// on and nothing would conflict.) It waits up to 5 s for Sluice to have a transaction pending, so that
// there is one to conflict with. Then it acts as the operator: once recovery's nonce_conflict alert is open (the wallet
// is frozen, freeze_on_conflict being the default), it unfreezes the wallet.
func (r *run) foreignNonce(ctx context.Context) {
	var n uint64
	for range 50 {
		latest, err := r.eth.NonceAt(ctx, r.hot, nil)
		if err != nil {
			r.inj.note(true, "foreign nonce: nonce: %v", err)
			return
		}
		n = latest
		if pending, err := r.eth.PendingNonceAt(ctx, r.hot); err == nil && pending > latest {
			break
		}
		if !sleepCtx(ctx, 100*time.Millisecond) {
			return
		}
	}
	head, err := r.eth.HeaderByNumber(ctx, nil)
	if err != nil {
		r.inj.note(true, "foreign nonce: head: %v", err)
		return
	}
	feeCap := new(big.Int).Add(new(big.Int).Mul(head.BaseFee, big.NewInt(4)), foreignTipWei)
	tx, err := types.SignNewTx(r.hotKey, types.LatestSignerForChainID(r.chainID), &types.DynamicFeeTx{
		ChainID: r.chainID, Nonce: n, GasTipCap: foreignTipWei, GasFeeCap: feeCap, Gas: 21000, To: &r.hot, Value: new(big.Int),
	})
	if err != nil {
		r.inj.note(true, "foreign nonce: sign: %v", err)
		return
	}
	if err := r.eth.SendTransaction(ctx, tx); err != nil {
		r.inj.note(true, "foreign nonce: send at nonce %d: %v", n, err)
		return
	}
	r.inj.mu.Lock()
	r.inj.foreign[n] = tx.Hash()
	r.inj.mu.Unlock()
	r.logf("foreign nonce: sent %s at the hot wallet's nonce %d, straight to the node", tx.Hash().Hex(), n)
	// The operator waits for recovery's alert, up to 2 minutes: not on the schedule's time.
	go r.unfreezeOnAlert(ctx, n)
}

// unfreezeOnAlert is the operator: once recovery's nonce_conflict alert is open, it lifts the freeze.
func (r *run) unfreezeOnAlert(ctx context.Context, n uint64) {
	// The operator: wait for the alert, then unfreeze. A conflict needs Sluice to have a transaction at
	// that nonce; if the signer had not reached it yet, the foreign one simply moved the wallet on and no
	// alert comes (the verdict still accounts for the nonce).
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		if !sleepCtx(ctx, time.Second) {
			return
		}
		alerts, err := r.db.OpenAlerts(ctx, "nonce_conflict")
		if err != nil || len(alerts) == 0 {
			continue
		}
		// The freeze follows the alert in the same recovery pass; give it a moment to land.
		for range 10 {
			err = r.db.UnfreezeWallet(ctx, "local", r.hot.Hex(), "chaos harness", "foreign transaction injected by the chaos run")
			if err == nil {
				r.inj.mu.Lock()
				r.inj.unfrozen++
				r.inj.mu.Unlock()
				r.logf("foreign nonce: nonce_conflict alert open (%s); wallet unfrozen as an operator would", alerts[0].Summary)
				return
			}
			if !sleepCtx(ctx, 500*time.Millisecond) {
				return
			}
		}
		r.logf("foreign nonce: nonce_conflict alert open, but no freeze to lift: %v", err)
		return
	}
	r.logf("foreign nonce: no nonce_conflict alert within 2m (Sluice had no transaction at nonce %d, or recovery is slow)", n)
}

// reorg makes the block reorgDepth below the head the head again and seals reorgDepth+1 blocks on it
// at once, so the canonical chain changes under transactions mined (but not yet confirmed) in the
// dropped blocks. The node puts their transactions back in its pool; they mine again on the new branch.
// The simulated node forks only with an empty pool, so it seals a block first and forks right after,
// retrying for a few seconds.
func (r *run) reorg(ctx context.Context) {
	r.clearForeign(ctx)
	deadline := time.Now().Add(10 * time.Second)
	for attempt := 0; time.Now().Before(deadline); attempt++ {
		r.chain.Commit()
		head, err := r.eth.HeaderByNumber(ctx, nil)
		if err != nil || head.Number.Uint64() <= reorgDepth {
			sleepCtx(ctx, 100*time.Millisecond)
			continue
		}
		parent, err := r.eth.HeaderByNumber(ctx, new(big.Int).SetUint64(head.Number.Uint64()-reorgDepth))
		if err != nil {
			continue
		}
		dropped := 0
		for b := parent.Number.Uint64() + 1; b <= head.Number.Uint64(); b++ {
			if blk, err := r.eth.BlockByNumber(ctx, new(big.Int).SetUint64(b)); err == nil {
				signer := types.LatestSignerForChainID(r.chainID)
				for _, tx := range blk.Transactions() {
					if from, err := types.Sender(signer, tx); err == nil && from == r.hot {
						dropped++
					}
				}
			}
		}
		if err := r.chain.Fork(parent.Hash()); err != nil {
			if !sleepCtx(ctx, 50*time.Millisecond) {
				return
			}
			continue
		}
		for range reorgDepth + 1 {
			r.chain.Commit()
		}
		r.inj.mu.Lock()
		r.inj.reorgs++
		r.inj.reorgedTxs += dropped
		r.inj.mu.Unlock()
		r.logf("reorg: blocks %d–%d (%d hot wallet transactions) left the chain; forked at %d after %d tries, %d blocks sealed on it",
			parent.Number.Uint64()+1, head.Number.Uint64(), dropped, parent.Number.Uint64(), attempt+1, reorgDepth+1)
		return
	}
	r.inj.note(true, "reorg: the node's pool was never empty long enough to fork in 10 s")
}

// clearForeign waits (up to 15 s) until the foreign transaction, if one was sent, is mined deeper than
// a reorg reaches: a reorg that drops it puts it back in the pool next to Sluice's re-sends of the
// transaction it replaced, and which of the two mines is then a coin toss — a run where Sluice's wins
// never exercises the conflict.
func (r *run) clearForeign(ctx context.Context) {
	r.inj.mu.Lock()
	hashes := slices.Collect(maps.Values(r.inj.foreign))
	r.inj.mu.Unlock()
	deadline := time.Now().Add(15 * time.Second)
	for _, h := range hashes {
		for time.Now().Before(deadline) {
			rc, err := r.eth.TransactionReceipt(ctx, h)
			if err == nil {
				head, herr := r.eth.BlockNumber(ctx)
				if herr == nil && rc.BlockNumber.Uint64()+reorgDepth < head {
					break
				}
			}
			if !sleepCtx(ctx, 300*time.Millisecond) {
				return
			}
		}
	}
}

// recoveryCounts is what the recovery service did, from the metrics scraped before shutdown and the
// database: a killed instance loses its counters, so the database gives the floor where it can.
type recoveryCounts struct {
	Bumped, Resent, GapsFilled, Reorged int
	DLQLeft                             int
	Parked                              []string
}

// sumMetric adds up a counter over every scrape (every label set).
func sumMetric(scrapes map[string][]byte, name string) int {
	total := 0.0
	for _, b := range scrapes {
		for _, line := range strings.Split(string(b), "\n") {
			if !strings.HasPrefix(line, name) {
				continue
			}
			rest := line[len(name):]
			if rest != "" && rest[0] != '{' && rest[0] != ' ' {
				continue
			}
			f := strings.Fields(line)
			var v float64
			if _, err := fmt.Sscan(f[len(f)-1], &v); err == nil {
				total += v
			}
		}
	}
	return int(total)
}

func (r *run) recoveryCounts(ctx context.Context, scrapes map[string][]byte, dlq map[string]int) (recoveryCounts, error) {
	var c recoveryCounts
	c.Bumped = sumMetric(scrapes, "sluice_recovery_bumps_total")
	// Whoever resent a dropped transaction: recovery's stuck sweep, or the monitor while waiting for a
	// receipt (which usually looks first); each counts only what the node had really dropped.
	c.Resent = sumMetric(scrapes, "sluice_recovery_resent_total") + sumMetric(scrapes, "sluice_monitor_resent_total")
	c.GapsFilled = sumMetric(scrapes, "sluice_recovery_gaps_filled_total")
	// A shallow reorg is ridden out before the confirmation depth, where no counter sees it: its
	// transactions count as reorged when the harness saw them in the dropped blocks (they must still end
	// CONFIRMED, which the balances check). Deep reorgs and the monitor's at-depth finds come on top.
	r.inj.mu.Lock()
	c.Reorged = r.inj.reorgedTxs
	r.inj.mu.Unlock()
	c.Reorged += sumMetric(scrapes, "sluice_recovery_deep_reorgs_total") + sumMetric(scrapes, "sluice_monitor_reorgs_total")
	var bumpedDB, gapsDB int
	// Attempts beyond a transaction's first are replacements at its nonce (recovery's bumps and the
	// broadcaster's re-fees at send).
	if err := r.db.DB.QueryRowContext(ctx, `SELECT COUNT(*) - COUNT(DISTINCT sent_tx_id) FROM tx_attempts`).Scan(&bumpedDB); err != nil {
		return c, fmt.Errorf("count bumps: %w", err)
	}
	if err := r.db.DB.QueryRowContext(ctx, `SELECT COUNT(*) FROM sent_transactions WHERE source = 'SYSTEM'`).Scan(&gapsDB); err != nil {
		return c, fmt.Errorf("count gap fills: %w", err)
	}
	c.Bumped = max(c.Bumped, bumpedDB)
	c.GapsFilled = max(c.GapsFilled, gapsDB)
	for _, n := range dlq {
		c.DLQLeft += n
	}
	parked, err := r.db.ParkedMessages(ctx)
	if err != nil && !errors.Is(err, context.Canceled) {
		return c, err
	}
	for _, p := range parked {
		c.Parked = append(c.Parked, fmt.Sprintf("%s/%s %s: %s", p.Queue, p.MessageID, p.ErrorType, p.Reason))
	}
	return c, nil
}
