package chaos

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math/big"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/sluice-custody/sluice/contracts"

	"github.com/ethereum/go-ethereum/common"

	"github.com/sluice-custody/sluice/internal/nonce"
	"github.com/sluice-custody/sluice/internal/queue"
)

// Result is what a run found.
type Result struct {
	Withdrawals  int
	Confirmed    int
	Failed       int
	Canceled     int
	PaidTwice    int // recipients holding more than their CONFIRMED withdrawals (or anything for a FAILED one)
	Lost         int // withdrawals not terminal, or CONFIRMED without the recipient holding the amount
	Duplicates   int // withdrawals made by a replay, or listed that the run never asked for
	Kills        int
	Redeliveries int // deliveries with receive count > 1, from the consumers' logs
	RPCFaults    int
	NonceGaps    int
	TopUps       int // top-ups confirmed on chain (balance_transfers CONFIRMED, their transaction CONFIRMED)
	DoubleTopUps int // deficits topped up twice (topups.go)
	KeyHits      int // places a private key the run generated was found in (logs, metrics, rows, messages)
	Recovery     recoveryCounts
	Injected     string // the recovery faults carried out, for the breakdown
	Instances    int    // processes per service
	Duration     time.Duration

	LostBy      map[string]int // lost withdrawals by their last status
	KillsBy     map[string]int
	FaultsBy    map[string]int
	SendDrops   int // sends the node accepted whose answer the proxy dropped
	RPCRequests int
	Nonce       NonceReport
	Queue       QueueReport
	Replays     struct{ Sequential, Concurrent int }
	Resent      ResendReport
	Cancels     *CancelReport
	KeyScan     KeyScan
	Crashes     []string
	Problems    []string // every violation, one line each (the first ones are printed)
	Incomplete  []string // what the run was asked to do and did not (a kill skipped): it proved less
	Dir         string
	Seed        uint64
}

// NonceReport is the hot wallets' nonce sequences (added up over the wallets) as the chain and the database see it.
type NonceReport struct {
	Mined, Pending  uint64
	Recorded        int      // distinct nonces in sent_transactions
	Holes           []uint64 // nonces below the highest recorded or mined one that nothing was recorded for
	Unmined         []uint64 // recorded nonces at or above the mined nonce: waiting behind a hole, or stuck
	Foreign         []uint64 // mined nonces whose recorded transaction has no receipt under any attempt
	Injected        []uint64 // nonces the harness's own foreign transaction took (RecoveryFaults.ForeignNonces): not gaps
	Orphans         int      // recorded transactions no withdrawal points at
	StuckInPool     uint64   // pending − mined after the wait
	AttemptsPerSent float64
	Leases          string // the Redis allocator's leases left over, for diagnosing holes
	sent            int    // recorded transactions (one wallet's), to weigh AttemptsPerSent
}

// QueueReport is what the consumers' logs and the queue tables say.
type QueueReport struct {
	Redeliveries   map[string]int // by queue
	DeadLettered   map[string]int // by queue (distinct messages the consumers dead-lettered)
	DLQDepth       map[string]int // messages left in each DLQ (MySQL backend)
	Retries        int            // "handler failed; will retry" lines
	Panics         int
	AlreadySigned  int // the signer found a redelivered request already signed
	SignDuplicates int // the signer found its allocated nonce already recorded
}

// Violated reports whether the run found money paid twice, lost, a nonce gap or a duplicate withdrawal.
func (res *Result) Violated() bool {
	return res.PaidTwice > 0 || res.Lost > 0 || res.NonceGaps > 0 || res.Duplicates > 0 || res.KeyHits > 0 || res.Recovery.DLQLeft > 0 ||
		res.DoubleTopUps > 0
}

// Summary is the one-line result.
func (res *Result) Summary() string {
	return fmt.Sprintf("withdrawals %d, instances %d, confirmed %d, failed %d, canceled %d, paid twice %d, lost %d, kills %d, redeliveries %d, "+
		"rpc faults %d, nonce gaps %d, key hits %d, bumped %d, resent %d, gaps filled %d, reorged %d, dlq left %d, topups %d, double topups %d, duration %ds",
		res.Withdrawals, res.Instances, res.Confirmed, res.Failed, res.Canceled, res.PaidTwice, res.Lost, res.Kills, res.Redeliveries, res.RPCFaults,
		res.NonceGaps, res.KeyHits, res.Recovery.Bumped, res.Recovery.Resent, res.Recovery.GapsFilled, res.Recovery.Reorged,
		res.Recovery.DLQLeft, res.TopUps, res.DoubleTopUps, int(res.Duration.Round(time.Second).Seconds()))
}

// Breakdown is the human-readable detail printed before the summary.
func (res *Result) Breakdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "run dir      %s (config, keystore, logs/)   seed %d\n", res.Dir, res.Seed)
	fmt.Fprintf(&b, "rpc faults   %s (of %d requests)\n", FormatCounts(res.FaultsBy, FaultKinds), res.RPCRequests)
	fmt.Fprintf(&b, "kills        %s\n", FormatCounts(res.KillsBy, services))
	fmt.Fprintf(&b, "redeliveries %s\n", orNone(res.Queue.Redeliveries))
	fmt.Fprintf(&b, "queues       retries %d, dead-lettered %s, DLQ depth %s, panics %d, signer found request already signed %d, nonce already recorded %d\n",
		res.Queue.Retries, orNone(res.Queue.DeadLettered), orNone(res.Queue.DLQDepth), res.Queue.Panics, res.Queue.AlreadySigned, res.Queue.SignDuplicates)
	fmt.Fprintf(&b, "replays      sequential %d, concurrent %d, duplicates %d\n", res.Replays.Sequential, res.Replays.Concurrent, res.Duplicates)
	fmt.Fprintf(&b, "resent       withdrawal requests: %s\n", res.Resent)
	if res.Cancels != nil {
		fmt.Fprintf(&b, "cancels      %s\n", res.Cancels)
	}
	n := res.Nonce
	fmt.Fprintf(&b, "nonces       mined %d, pending %d, recorded %d, holes %s, unmined %s, foreign %s, injected foreign %s, orphan txs %d, attempts/tx %.2f\n",
		n.Mined, n.Pending, n.Recorded, short(n.Holes), short(n.Unmined), short(n.Foreign), short(n.Injected), n.Orphans, n.AttemptsPerSent)
	if n.Leases != "" {
		fmt.Fprintf(&b, "nonce leases %s\n", n.Leases)
	}
	fmt.Fprintf(&b, "key scan     %s\n", res.KeyScan)
	fmt.Fprintf(&b, "recovery     faults: %s; bumped %d, resent %d, gaps filled %d, reorged %d (metrics and database), dlq left %d, parked %d\n",
		res.Injected, res.Recovery.Bumped, res.Recovery.Resent, res.Recovery.GapsFilled, res.Recovery.Reorged, res.Recovery.DLQLeft, len(res.Recovery.Parked))
	for _, p := range res.Recovery.Parked {
		fmt.Fprintf(&b, "parked       %s\n", p)
	}
	fmt.Fprintf(&b, "withdrawals  confirmed %d, failed %d, canceled %d, not terminal %d, lost by status %s\n", res.Confirmed, res.Failed,
		res.Canceled, res.Withdrawals-res.Confirmed-res.Failed-res.Canceled, orNone(res.LostBy))
	for _, s := range res.Incomplete {
		fmt.Fprintf(&b, "INCOMPLETE   %s\n", s)
	}
	for _, c := range res.Crashes {
		fmt.Fprintf(&b, "crash        %s\n", c)
	}
	for i, p := range res.Problems {
		if i == 30 {
			fmt.Fprintf(&b, "... and %d more problems\n", len(res.Problems)-30)
			break
		}
		fmt.Fprintf(&b, "PROBLEM      %s\n", p)
	}
	return b.String()
}

func orNone(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	return FormatCounts(m, nil)
}

func short(ns []uint64) string {
	if len(ns) == 0 {
		return "none"
	}
	var parts []string
	for i, n := range ns {
		if i == 10 {
			parts = append(parts, fmt.Sprintf("…(%d)", len(ns)))
			break
		}
		parts = append(parts, fmt.Sprint(n))
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// exercise posts the withdrawals while killing services, waits for them to end and checks the chain.
func (r *run) exercise(ctx context.Context) (*Result, error) {
	o := r.o
	c := &apiClient{bases: r.apiURLs, key: r.apiKey, hc: &httpClient}
	specs := r.makeSpecs()
	rr := &replayReport{}

	postFor := time.Duration(float64(len(specs)) / o.PostRate * float64(time.Second))
	gap := time.Second
	if o.Kills > 0 {
		gap = max(time.Second, postFor/time.Duration(o.Kills))
	}
	plan := killSchedule(o.Seed, o.Kills, o.KillServices, o.Instances, gap)
	killsDone := make(chan struct{})
	killCtx, stopKills := context.WithCancel(ctx)
	defer stopKills()

	r.logf("posting %d withdrawals at %.0f/s (%.0f%% replayed, %.0f%% resent once signed); %d kills, one every ~%s", len(specs),
		o.PostRate, 100*o.ReplayShare, 100*o.ResendShare, o.Kills, gap.Round(100*time.Millisecond))
	r.logf("kill schedule (from the seed; times after the first post): %s", formatSchedule(plan, o.Instances))
	faultPlan := recoverySchedule(o.Seed, o.Recovery, postFor)
	r.logf("recovery faults (from the seed; times after the first post): %s; %d sends silently dropped at most",
		formatFaultPlan(faultPlan), o.Recovery.DroppedSends)
	faultsDone := make(chan struct{})
	postStart := time.Now()
	go r.killLoop(killCtx, plan, postStart, killsDone)
	go r.faultLoop(killCtx, faultPlan, postStart, faultsDone)
	var resent ResendReport
	resendDone := make(chan struct{})
	resendCtx, stopResend := context.WithCancel(ctx)
	defer stopResend()
	go r.resendLoop(resendCtx, specs, &resent, resendDone)
	cancels := &CancelReport{}
	cancelDone := make(chan struct{})
	go r.cancelLoop(resendCtx, c, specs, cancels, cancelDone)
	r.postAll(ctx, c, specs, rr)
	r.logf("all posted")
	<-killsDone
	r.logf("kills done: %s", FormatCounts(r.kills, services))
	<-faultsDone
	for _, p := range r.allProcs() {
		if !p.running() {
			if err := p.start(); err != nil {
				r.logf("start %s: %v", p.name, err)
			}
		}
	}
	byID, err := r.waitTerminal(ctx, c, specs, time.Now().Add(o.Timeout))
	stopResend()
	<-resendDone
	<-cancelDone
	if err != nil {
		return nil, err
	}

	res := &Result{Withdrawals: len(specs), Instances: o.Instances, Dir: o.Dir, Seed: o.Seed, KillsBy: map[string]int{}, LostBy: map[string]int{},
		Resent: resent, Cancels: cancels}
	if cancels.Planned > 0 && cancels.ByMoment[cancelSigned]+cancels.ByMoment[cancelBroadcast]+cancels.ByMoment[cancelBatch] == 0 {
		res.Incomplete = append(res.Incomplete, fmt.Sprintf("no withdrawal was canceled after signing (%s)", cancels))
	}
	if resent.Planned > 0 && resent.Signed == 0 {
		res.Incomplete = append(res.Incomplete, fmt.Sprintf("no withdrawal request was resent while signed (%s)", resent))
	}
	res.Replays.Sequential, res.Replays.Concurrent = rr.sequential, rr.concurrent
	res.Problems = append(res.Problems, rr.problems...)
	for _, p := range rr.problems {
		if strings.Contains(p, "two withdrawals") || strings.Contains(p, "returned withdrawal") || strings.Contains(p, "both concurrent") {
			res.Duplicates++
		}
	}
	if r.stalled {
		res.Problems = append(res.Problems, fmt.Sprintf("note: the wait ended early: no withdrawal changed status for %s", o.Stall))
	}
	if r.progressing {
		res.Problems = append(res.Problems, fmt.Sprintf("note: withdrawals were still reaching a terminal state when the %s wait ended: "+
			"some of the lost ones may only be slow (try a longer --timeout)", o.Timeout))
	}
	r.checkListing(specs, byID, res)
	if err := r.checkBalances(ctx, specs, byID, res); err != nil {
		return nil, err
	}
	if err := r.checkNonces(ctx, res); err != nil {
		return nil, err
	}
	if err := r.checkTopUps(ctx, res); err != nil {
		return nil, err
	}
	cancels.Outcomes = r.cancelOutcomes(ctx)
	// The last metrics scrape, then stop the services before reading their logs, so that every line
	// is written.
	scrapes := r.scrapeMetrics(ctx)
	r.stopServices()
	for _, p := range r.allProcs() {
		res.Crashes = append(res.Crashes, p.crashes...)
	}
	if err := r.scanLogs(res); err != nil {
		return nil, err
	}
	res.Queue.DLQDepth = r.dlqDepth(ctx)
	if res.Recovery, err = r.recoveryCounts(ctx, scrapes, res.Queue.DLQDepth); err != nil {
		return nil, err
	}
	if res.Recovery.DLQLeft > 0 {
		res.Problems = append(res.Problems, fmt.Sprintf("dlq left: %d messages still in a DLQ at the end (%s): recovery did not drain them",
			res.Recovery.DLQLeft, orNone(res.Queue.DLQDepth)))
	}
	r.inj.mu.Lock()
	res.Injected = fmt.Sprintf("fee surges %d, silently dropped sends %d, foreign nonces %d (wallet unfrozen %d), reorgs %d (%d txs in dropped blocks)",
		r.inj.surges, r.proxy.Counts()[FaultSendSilentlyDropped], len(r.inj.foreign), r.inj.unfrozen, r.inj.reorgs, r.inj.reorgedTxs)
	res.Incomplete = append(res.Incomplete, r.inj.incomplete...)
	res.Problems = append(res.Problems, r.inj.problems...)
	r.inj.mu.Unlock()
	if res.KeyScan, err = r.scanForKeys(ctx, scrapes); err != nil {
		return nil, err
	}
	res.KeyHits = len(res.KeyScan.Hits)
	// First, so that the breakdown never cuts them off.
	var keyLines []string
	for _, h := range res.KeyScan.Hits {
		keyLines = append(keyLines, "KEY MATERIAL: "+h)
	}
	res.Problems = append(keyLines, res.Problems...)
	r.killsMu.Lock()
	for k, v := range r.kills {
		res.KillsBy[k] = v
		res.Kills += v
	}
	r.killsMu.Unlock()
	if res.Kills < len(plan) {
		res.Incomplete = append(res.Incomplete, fmt.Sprintf("%d of %d planned kills were carried out", res.Kills, len(plan)))
	}
	for _, name := range o.KillServices {
		if len(plan) >= len(o.KillServices) && res.KillsBy[name] == 0 {
			res.Incomplete = append(res.Incomplete, fmt.Sprintf("%s was never killed", name))
		}
	}
	res.FaultsBy = r.proxy.Counts()
	res.RPCFaults = r.proxy.Total()
	res.RPCRequests = r.proxy.Requests()
	res.SendDrops = res.FaultsBy[FaultSendAcceptedDropped]
	res.Duration = time.Since(r.start)
	if !res.Violated() && !o.KeepDB {
		r.dropDatabase()
	} else {
		r.logf("database %s kept for inspection", r.dbName)
	}
	return res, nil
}

// checkListing compares what the API lists with what was posted: one withdrawal per external_id.
func (r *run) checkListing(specs []*spec, byID map[string]apiWithdrawal, res *Result) {
	want := map[string]*spec{}
	for _, s := range specs {
		want[s.ext] = s
	}
	seen := map[string]string{}
	for _, w := range byID {
		s, ok := want[w.ExternalID]
		if !ok {
			res.Duplicates++
			res.Problems = append(res.Problems, fmt.Sprintf("withdrawal %s (external_id %q) was never posted", w.ID, w.ExternalID))
			continue
		}
		if prev, dup := seen[w.ExternalID]; dup {
			res.Duplicates++
			res.Problems = append(res.Problems, fmt.Sprintf("external_id %s has two withdrawals: %s and %s", w.ExternalID, prev, w.ID))
		}
		seen[w.ExternalID] = w.ID
		if s.id != "" && s.id != w.ID {
			res.Duplicates++
			res.Problems = append(res.Problems, fmt.Sprintf("external_id %s: posted as %s, listed as %s", w.ExternalID, s.id, w.ID))
		}
	}
}

// checkBalances reads every recipient's balance on chain (straight from the node) and compares it with
// what the withdrawal's final status promises.
func (r *run) checkBalances(ctx context.Context, specs []*spec, byID map[string]apiWithdrawal, res *Result) error {
	for _, s := range specs {
		w, ok := byID[s.id]
		if !ok {
			w = apiWithdrawal{Status: "MISSING"}
		}
		bal, err := r.balance(ctx, s.asset, s.to)
		if err != nil {
			return err
		}
		desc := func() string {
			d := fmt.Sprintf("%s %s %s %s to %s", s.ext, w.Status, s.amountStr, s.asset, s.to.Hex())
			if w.Nonce != nil {
				d += fmt.Sprintf(" nonce %d", *w.Nonce)
			}
			if w.TxHash != nil {
				d += " tx " + *w.TxHash
			}
			if w.Error != nil {
				d += fmt.Sprintf(" error %s: %s", w.Error.Type, w.Error.Message)
			}
			return d
		}
		switch w.Status {
		case "CONFIRMED":
			res.Confirmed++
			switch bal.Cmp(s.amount) {
			case 1:
				res.PaidTwice++
				res.Problems = append(res.Problems, fmt.Sprintf("paid twice: %s; recipient holds %s base units", desc(), bal))
			case -1:
				res.Lost++
				res.LostBy["CONFIRMED but unpaid"]++
				res.Problems = append(res.Problems, fmt.Sprintf("lost: %s; recipient holds %s base units", desc(), bal))
			}
		case "FAILED", "CANCELED":
			if w.Status == "FAILED" {
				res.Failed++
			} else {
				res.Canceled++
			}
			if bal.Sign() > 0 {
				res.PaidTwice++ // the exchange re-issues a failed withdrawal: paid, it would be paid again
				res.Problems = append(res.Problems, fmt.Sprintf("paid although %s: %s; recipient holds %s base units", w.Status, desc(), bal))
			} else if w.Status == "FAILED" {
				res.Problems = append(res.Problems, fmt.Sprintf("note (not a violation): failed: %s", desc()))
			}
		default:
			res.Lost++
			res.LostBy[w.Status]++
			if bal.Cmp(s.amount) > 0 {
				res.PaidTwice++
			}
			res.Problems = append(res.Problems, fmt.Sprintf("lost (not terminal after the wait): %s; recipient holds %s base units", desc(), bal))
		}
	}
	return nil
}

func (r *run) balance(ctx context.Context, asset string, who common.Address) (*big.Int, error) {
	if asset == "POL" {
		return r.eth.BalanceAt(ctx, who, nil)
	}
	return contracts.TokenBalance(ctx, r.eth, r.addrs.USDT, who)
}

// checkNonces compares the hot wallet's nonces on chain with sent_transactions: every nonce below the
// mined one is a recorded transaction mined under one of its attempts, nothing recorded is left
// unmined, no nonce was skipped, and the node's pool holds nothing more.
func (r *run) checkNonces(ctx context.Context, res *Result) error {
	// Every hot wallet has its own nonce sequence; the report adds them up. Only the first wallet gets
	// the harness's foreign transactions (RecoveryFaults.ForeignNonces).
	total := &res.Nonce
	var attempts, sent float64
	for i, hot := range r.hots {
		var injected map[uint64]common.Hash
		if i == 0 {
			r.inj.mu.Lock()
			injected = maps.Clone(r.inj.foreign)
			r.inj.mu.Unlock()
		}
		var n NonceReport
		if err := r.checkWalletNonces(ctx, res, hot, injected, &n); err != nil {
			return err
		}
		total.Mined += n.Mined
		total.Pending += n.Pending
		total.Recorded += n.Recorded
		total.Holes = append(total.Holes, n.Holes...)
		total.Unmined = append(total.Unmined, n.Unmined...)
		total.Foreign = append(total.Foreign, n.Foreign...)
		total.Injected = append(total.Injected, n.Injected...)
		total.StuckInPool += n.StuckInPool
		if n.Leases != "" {
			total.Leases = strings.TrimPrefix(total.Leases+"; "+hot.Hex()+": "+n.Leases, "; ")
		}
		attempts += n.AttemptsPerSent * float64(n.sent)
		sent += float64(n.sent)
	}
	if sent > 0 {
		total.AttemptsPerSent = attempts / sent
	}
	return r.db.DB.QueryRowContext(ctx, `SELECT COUNT(*) FROM sent_transactions t
		WHERE NOT EXISTS (SELECT 1 FROM withdrawals w WHERE w.sent_tx_id = t.id)`).Scan(&total.Orphans)
}

// checkWalletNonces is checkNonces for one hot wallet; injectedAt are the harness's own transactions at
// its nonces. Gaps are added to res.NonceGaps and problems to res.Problems.
func (r *run) checkWalletNonces(ctx context.Context, res *Result, hot common.Address, injectedAt map[uint64]common.Hash, n *NonceReport) error {
	var err error
	if n.Mined, err = r.eth.NonceAt(ctx, hot, nil); err != nil {
		return err
	}
	if n.Pending, err = r.eth.PendingNonceAt(ctx, hot); err != nil {
		return err
	}
	rows, err := r.db.DB.QueryContext(ctx, `SELECT t.id, t.nonce, a.tx_hash FROM sent_transactions t
		JOIN tx_attempts a ON a.sent_tx_id = t.id WHERE t.from_address = ? ORDER BY t.nonce, a.id`, hot.Hex())
	if err != nil {
		return fmt.Errorf("read sent_transactions: %w", err)
	}
	hashes := map[uint64][]string{}
	sent := map[int64]bool{}
	attempts := 0
	for rows.Next() {
		var (
			id    int64
			nonce uint64
			hash  string
		)
		if err := rows.Scan(&id, &nonce, &hash); err != nil {
			rows.Close()
			return err
		}
		hashes[nonce] = append(hashes[nonce], hash)
		sent[id] = true
		attempts++
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	n.Recorded, n.sent = len(hashes), len(sent)
	if len(sent) > 0 {
		n.AttemptsPerSent = float64(attempts) / float64(len(sent))
	}
	top := n.Mined
	for nonce := range hashes {
		top = max(top, nonce+1)
	}
	for nonce := uint64(0); nonce < top; nonce++ {
		hs, ok := hashes[nonce]
		if h, inj := injectedAt[nonce]; inj && nonce < n.Mined {
			// The harness's own transaction, not Sluice's: whatever Sluice recorded at this nonce could
			// never mine. It is accounted for only if it is what the chain holds.
			if _, err := r.eth.TransactionReceipt(ctx, h); err == nil {
				n.Injected = append(n.Injected, nonce)
				continue
			}
		}
		switch {
		case !ok:
			n.Holes = append(n.Holes, nonce)
		case nonce >= n.Mined:
			n.Unmined = append(n.Unmined, nonce)
		default:
			found := false
			for _, h := range hs {
				if _, err := r.eth.TransactionReceipt(ctx, common.HexToHash(h)); err == nil {
					found = true
					break
				}
			}
			if !found {
				n.Foreign = append(n.Foreign, nonce)
			}
		}
	}
	if n.Pending > n.Mined {
		n.StuckInPool = n.Pending - n.Mined
	}
	res.NonceGaps += len(n.Holes) + len(n.Unmined) + len(n.Foreign)
	if extra := int(n.StuckInPool) - len(n.Unmined); extra > 0 {
		res.NonceGaps += extra // the pool holds nonces nothing recorded
	}
	if st, err := nonce.New(r.redis).Peek(ctx, r.chainID.Uint64(), hot); err == nil && len(st.Leases) > 0 {
		var parts []string
		for i, l := range st.Leases {
			if i == 12 {
				parts = append(parts, fmt.Sprintf("…(%d)", len(st.Leases)))
				break
			}
			state := "live until " + l.Expires.UTC().Format("15:04:05")
			if l.Expires.IsZero() {
				state = "released"
			} else if l.Expired {
				state = "expired at " + l.Expires.UTC().Format("15:04:05") + ", not handed out again"
			}
			parts = append(parts, fmt.Sprintf("%d %s", l.Nonce, state))
		}
		n.Leases = fmt.Sprintf("counter %d; %s", st.Next, strings.Join(parts, "; "))
	}
	for _, h := range n.Holes {
		res.Problems = append(res.Problems, fmt.Sprintf("nonce gap: nonce %d of %s was never recorded (mined nonce %d, highest recorded %d)",
			h, hot.Hex(), n.Mined, top-1))
	}
	if len(n.Unmined) > 0 {
		res.Problems = append(res.Problems, fmt.Sprintf("nonce stuck: %d recorded nonces of %s at or above the mined nonce %d are not mined: %s",
			len(n.Unmined), hot.Hex(), n.Mined, short(n.Unmined)))
	}
	for _, f := range n.Foreign {
		res.Problems = append(res.Problems, fmt.Sprintf("nonce %d of %s was mined, but no recorded attempt of it has a receipt", f, hot.Hex()))
	}
	if n.Pending != n.Mined {
		res.Problems = append(res.Problems, fmt.Sprintf("pending nonce %d != latest nonce %d of %s after the wait", n.Pending, n.Mined, hot.Hex()))
	}
	return nil
}

// logLine is the part of a service's JSON log line the run reads.
type logLine struct {
	Msg          string  `json:"msg"`
	Queue        string  `json:"queue"`
	MessageID    string  `json:"message_id"`
	ReceiveCount float64 `json:"receive_count"`
}

// scanLogs counts redeliveries — deliveries with a receive count above 1 — from the consumers' logs.
// Every line a consumer writes about a delivery (handled at debug level, retried, dead-lettered,
// released) names the queue, the message id and its receive count; a delivery counts once however many
// lines it wrote. A delivery cut short by SIGKILL writes nothing, but the redelivery that follows it
// does: redeliveries caused by kills, by handler retries and by visibility timeouts are all counted.
func (r *run) scanLogs(res *Result) error {
	res.Queue.Redeliveries = map[string]int{}
	res.Queue.DeadLettered = map[string]int{}
	seen := map[string]bool{}
	dead := map[string]bool{}
	for _, p := range r.allProcs() {
		f, err := os.Open(p.logPath)
		if err != nil {
			return err
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		for sc.Scan() {
			line := sc.Bytes()
			if len(line) == 0 || line[0] != '{' {
				continue
			}
			var l logLine
			if json.Unmarshal(line, &l) != nil {
				continue // a line cut by SIGKILL
			}
			switch l.Msg {
			case "handler failed; will retry":
				res.Queue.Retries++
			case "handler panicked":
				res.Queue.Panics++
			case "already signed, re-queueing the recorded transaction":
				res.Queue.AlreadySigned++
			case "allocated nonce already recorded; allocating again":
				res.Queue.SignDuplicates++
			}
			if l.Queue == "" || l.MessageID == "" {
				continue
			}
			if l.Msg == "message dead-lettered" && !dead[l.Queue+"/"+l.MessageID] {
				dead[l.Queue+"/"+l.MessageID] = true
				res.Queue.DeadLettered[l.Queue]++
			}
			if l.ReceiveCount > 1 {
				k := fmt.Sprintf("%s/%s/%d", l.Queue, l.MessageID, int(l.ReceiveCount))
				if !seen[k] {
					seen[k] = true
					res.Queue.Redeliveries[l.Queue]++
					res.Redeliveries++
				}
			}
		}
		err = sc.Err()
		f.Close()
		if err != nil {
			return err
		}
	}
	if len(dead) > 0 {
		var qs []string
		for q := range res.Queue.DeadLettered {
			qs = append(qs, q)
		}
		sort.Strings(qs)
		res.Problems = append(res.Problems, fmt.Sprintf("note: messages were dead-lettered (%s); see the logs", strings.Join(qs, ", ")))
	}
	return nil
}

func (r *run) dlqDepth(ctx context.Context) map[string]int {
	out := map[string]int{}
	if r.sqs != nil {
		for _, q := range []string{queue.RequestDLQ, queue.SignedTxDLQ, queue.BroadcastTxDLQ} {
			if n, err := r.sqs.Depth(ctx, q); err == nil && n > 0 {
				out[q] = n
			}
		}
		return out
	}
	rows, err := r.db.DB.QueryContext(ctx, `SELECT queue, COUNT(*) FROM queue_messages WHERE queue LIKE '%dlq' GROUP BY queue`)
	if err != nil {
		return out
	}
	defer rows.Close()
	for rows.Next() {
		var (
			q string
			n int
		)
		if rows.Scan(&q, &n) == nil {
			out[q] = n
		}
	}
	return out
}
