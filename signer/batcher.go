package signer

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/sluice-custody/sluice/contracts/bindings"
	"github.com/sluice-custody/sluice/internal/config"
	"github.com/sluice-custody/sluice/internal/fees"
	"github.com/sluice-custody/sluice/internal/queue"
	"github.com/sluice-custody/sluice/internal/store"
	"github.com/sluice-custody/sluice/internal/txerr"
	"github.com/sluice-custody/sluice/internal/txsend"
	"github.com/sluice-custody/sluice/multicall"
)

// Gas model, measured on the dev chain under Osaka rules (see the contracts tests): gas per transfer.
const (
	GasNativeSingle        = 21_000 // a plain coin transfer, to any account
	GasNativeBatchedFunded = 11_900 // one Call3Value of aggregate3Value to an account that exists
	GasNativeBatchedNew    = 37_000 // the same to an empty account (25k new-account charge + cold access)
	GasERC20SingleNew      = 56_000 // transfer() to a holder with a zero balance
	GasERC20SingleExisting = 39_000 // transfer() to an existing holder
	GasERC20BatchedNew     = 33_000 // one batchTransfer item to a new holder
)

// Batcher tuning that is not configuration.
const (
	// claimStaleAfter is how old a SIGNING claim must be before another batcher takes the withdrawal
	// over: its signer died (a signer that recorded its signature moved the withdrawal to SIGNED in the
	// same transaction, so an old SIGNING claim has nothing persisted). Taking over from a signer that is
	// only slow is safe, since only one can move a withdrawal SIGNING → SIGNED, so this is set for
	// recovery speed: well above a normal round, well below the minutes a killed signer would cost.
	claimStaleAfter = 45 * time.Second
	// allowanceBatches is how many full batches one approve covers: bounded, never unlimited.
	allowanceBatches = 10
	// singlesParallel is how many single transfers of a round are signed at once: each waits mostly on
	// the node, and each locks its own withdrawal and leases its own nonce.
	singlesParallel = 8
	// batcherPoll is how often the batcher looks at the pending groups.
	batcherPoll = 200 * time.Millisecond
)

// batcherState says whether RunBatcher runs: the tx-request handler then leaves PENDING withdrawals of
// chains with batching on to the batcher instead of signing each at once.
type batcherState struct {
	running atomic.Int32

	mu      sync.Mutex
	retryAt map[string]time.Time // per chain/asset: a group whose round failed waits until then
	fails   map[string]int
	// primedAt is, per group, when primeAllowances last looked.
	primedAt map[string]time.Time
	// idleUntil is, per group, until when a round that found only withdrawals waiting for funds rests.
	idleUntil map[string]time.Time
}

// primeDue reports whether chain's allowances are due for a look, and if so starts the next period.
func (b *batcherState) primeDue(chain string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.primedAt == nil {
		b.primedAt = map[string]time.Time{}
	}
	if time.Since(b.primedAt[chain]) < primeEvery {
		return false
	}
	b.primedAt[chain] = time.Now()
	return true
}

// fundsRecheckBatch is how often the batcher looks again at a group whose withdrawals all wait for funds.
const fundsRecheckBatch = time.Second

// due reports whether the group may run now.
func (b *batcherState) due(key string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return time.Now().After(b.retryAt[key]) && time.Now().After(b.idleUntil[key])
}

// idle keeps the group from running for d (a round found nothing it could sign).
func (b *batcherState) idle(key string, d time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.idleUntil == nil {
		b.idleUntil = map[string]time.Time{}
	}
	b.idleUntil[key] = time.Now().Add(d)
}

// outcome records a group's round: failures back off exponentially (0.5 s … 30 s), so an outage does
// not churn claims and history rows every poll.
func (b *batcherState) outcome(key string, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.retryAt == nil {
		b.retryAt, b.fails = map[string]time.Time{}, map[string]int{}
	}
	if err == nil {
		delete(b.retryAt, key)
		delete(b.fails, key)
		return
	}
	b.fails[key]++
	d := min(500*time.Millisecond<<min(b.fails[key]-1, 6), 30*time.Second)
	b.retryAt[key] = time.Now().Add(d)
}

func (s *Signer) batchingActive(chain string) bool {
	cd, ok := s.chains[chain]
	return ok && cd.Config.Batching.On() && s.batcher.running.Load() > 0
}

// RunBatcher claims pending withdrawals from the database and signs them in batches (or one by one
// when a batch does not pay) until ctx ends. While it runs, Handle leaves PENDING withdrawals of chains
// with batching enabled to it. It returns nil when ctx is canceled.
func (s *Signer) RunBatcher(ctx context.Context) error {
	s.batcher.running.Add(1)
	defer s.batcher.running.Add(-1)
	t := time.NewTicker(batcherPoll)
	defer t.Stop()
	for {
		if _, err := s.BatchOnce(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("batch round", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// BatchOnce runs one round: for every chain with batching on and every asset whose group is ready (it
// reached min_batch, or its oldest withdrawal waited max_wait), it claims and signs. It returns how
// many withdrawals it moved on (signed or failed).
func (s *Signer) BatchOnce(ctx context.Context) (int, error) {
	var (
		total int
		errs  []error
	)
	for name, cd := range s.chains {
		b := cd.Config.Batching
		if !b.On() {
			continue
		}
		groups, err := s.store.PendingGroups(ctx, name, claimStaleAfter)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		ready := func(g store.PendingGroup) bool {
			return g.Count >= b.MinBatch || time.Since(g.Oldest) >= b.MaxWait.Duration
		}
		for _, g := range groups {
			if !ready(g) {
				// While the group fills, the wallets get the allowance its batch will need.
				if err := s.primeAllowances(ctx, cd, g.Asset); err != nil {
					errs = append(errs, fmt.Errorf("%s/%s: %w", name, g.Asset, err))
				}
			}
		}
		// The ready groups are drained in turn, one round of each per pass, not one group to the end
		// before the next: drained one after another, the first asset's batches went out ahead and the
		// last asset's alone at the end, in blocks that held only its (dearer) transfers, so the chain
		// carried less than it could. A group whose round failed or moved nothing rests until the
		// next call.
		stalled := map[string]bool{}
		for ctx.Err() == nil {
			progressed := false
			for _, g := range groups {
				key := name + "/" + g.Asset
				if stalled[key] || !ready(g) || !s.batcher.due(key) {
					continue
				}
				n, err := s.batchGroup(ctx, cd, g.Asset)
				total += n
				s.batcher.outcome(key, err)
				if err != nil {
					errs = append(errs, fmt.Errorf("%s/%s: %w", name, g.Asset, err))
				}
				if err != nil || n == 0 {
					stalled[key] = true
					continue
				}
				progressed = true
			}
			if !progressed {
				break
			}
			if groups, err = s.store.PendingGroups(ctx, name, claimStaleAfter); err != nil {
				break
			}
		}
	}
	return total, errors.Join(errs...)
}

// maxItems is how many transfers fit the gas budget with the gas model's worst case per item.
func maxItems(b config.Batching, native bool) int {
	per := uint64(GasERC20BatchedNew + GasERC20BatchedNew/4)
	if native {
		per = GasNativeBatchedNew + GasNativeBatchedNew/4
	}
	n := int((b.GasBudget - 50_000) / per)
	return max(1, min(n, b.MaxSize))
}

// batchGroup plans one round of (chain, asset): it reads every hot wallet (balance, what is in flight,
// frozen), places the claimable withdrawals on the wallets that can fund them (planWallets), marks those
// none can fund awaiting_funds (or fails them past the deadline or above max_withdrawal), then claims and
// signs each wallet's share: a batch per wallet (or singles), the wallets in parallel.
func (s *Signer) batchGroup(ctx context.Context, cd ChainDeps, assetSym string) (int, error) {
	log := s.log.With("chain", cd.Config.Name, "asset", assetSym, "component", "batcher")
	asset, ok := cd.Config.Asset(assetSym)
	if !ok || len(cd.Config.HotWallets) == 0 {
		// Not signable at all: the single path fails each with the reason.
		return s.claimAndSingle(ctx, log, cd, assetSym, 50)
	}
	limit := maxItems(cd.Config.Batching, asset.Native())
	tokenBatch := !asset.Native() && !cd.Config.BatchContract.IsZero()
	// The wallet choice, and a token group's allowance and funds checks, read state that the batches
	// signed meanwhile change: two signer instances deciding at once could each give the same wallet
	// the same funds, find the allowance enough for its own batch, or sign an approve sized without the
	// other's batch, and transactions would fail on chain. So one signer owns a group at a time; the
	// others leave it to the owner, which drains it, and take it over the moment its connection (or
	// process) goes.
	unlock, owner, err := s.store.TryLock(ctx, "batch/"+cd.Config.Name+"/"+assetSym)
	if err != nil {
		return 0, err
	}
	if !owner {
		return 0, nil
	}
	defer unlock()
	cands, err := s.store.Candidates(ctx, cd.Config.Name, assetSym, limit, claimStaleAfter)
	if err != nil || len(cands) == 0 {
		return 0, err
	}
	done := 0
	var items []fundItem
	byID := map[string]store.Candidate{}
	for _, c := range cands {
		if err := tooBig(asset, c.Amount); err != nil {
			if s.failPending(ctx, log, cd, c, err) {
				done++
			}
			continue
		}
		items = append(items, fundItem{ID: c.ID, Amount: c.Amount})
		byID[c.ID] = c
	}
	if len(items) == 0 {
		return done, nil
	}
	st, err := s.readWallets(ctx, cd, asset)
	if err != nil {
		return done, err
	}
	if allFrozen(st) {
		// Nothing can be signed on this chain: every withdrawal waits PENDING, noted once, until an
		// operator unfreezes a wallet.
		return done, s.store.NoteWaiting(ctx, cd.Config.Name, "", frozenReason(errAllFrozen), store.ActorSigner)
	}
	f, err := cd.Fees.New(ctx, nil)
	if err != nil {
		return done, err
	}
	plans, unfunded, _ := planWallets(st, items, batchCost(cd.Config, asset, f.MaxFeePerGas, limit, len(items)))
	done += s.unfunded(ctx, log, cd, asset, st, items, unfunded, byID)
	if len(plans) == 0 && len(unfunded) > 0 {
		// Only withdrawals waiting for funds: look again soon, but not every poll (each look reads every
		// wallet's balances).
		s.batcher.idle(cd.Config.Name+"/"+assetSym, fundsRecheckBatch)
	}
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
	)
	for _, p := range plans {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, err := s.signPlan(ctx, log.With("wallet", p.Wallet.Hex()), cd, asset, p, items, tokenBatch)
			mu.Lock()
			defer mu.Unlock()
			done += n
			if err != nil {
				errs = append(errs, fmt.Errorf("from %s: %w", p.Wallet.Hex(), err))
			}
		}()
	}
	wg.Wait()
	return done, errors.Join(errs...)
}

// batchCost is planCost for a round of n withdrawals that may go out as a batch: the dearer of the
// batched and single gas per transfer, so either way the wallet has the gas.
func batchCost(c config.Chain, asset *config.Asset, maxFee *big.Int, limit, n int) planCost {
	pc := singleCost(c, asset, maxFee)
	pc.MaxPerWallet, pc.MinShare = limit, c.Batching.MinBatch
	contract := c.BatchContract
	batched := uint64(GasERC20BatchedNew + GasERC20BatchedNew/4)
	if asset.Native() {
		contract, batched = c.Multicall3, GasNativeBatchedNew+GasNativeBatchedNew/4
	}
	if !contract.IsZero() && n >= c.Batching.PerTokenThreshold {
		pc.PerItem, pc.Fixed = max(pc.PerItem, batched), 60_000
	}
	return pc
}

// unfunded marks the withdrawals no wallet can fund awaiting_funds, or fails those whose wait passed the
// chain's funds_deadline; it returns how many it failed.
func (s *Signer) unfunded(ctx context.Context, log *slog.Logger, cd ChainDeps, asset *config.Asset, st []walletState,
	items []fundItem, idx []int, byID map[string]store.Candidate) int {
	failed := 0
	var wait []string
	var cause error
	for _, i := range idx {
		c := byID[items[i].ID]
		why := shortOf(asset, c.Amount, st)
		if err := pastDeadline(cd.Config, c.WaitingSince, why); err != nil {
			if s.failPending(ctx, log, cd, c, err) {
				failed++
			}
			continue
		}
		if c.Waiting != store.WaitingAwaitingFunds {
			wait, cause = append(wait, c.ID), why
		}
	}
	if len(wait) > 0 {
		marked, err := s.store.NoteAwaitingFunds(ctx, wait, awaitingReason(cause), store.ActorSigner)
		if err != nil {
			log.Warn("note awaiting funds", "err", err)
		}
		for range marked {
			s.m.AwaitingFunds(cd.Config.Name, asset.Symbol)
		}
		if len(marked) > 0 {
			log.Warn("withdrawals await funds", "count", len(marked), "why", cause)
		}
	}
	return failed
}

// failPending fails an unclaimed withdrawal for cause; it reports whether it moved it.
func (s *Signer) failPending(ctx context.Context, log *slog.Logger, cd ChainDeps, c store.Candidate, cause error) bool {
	w, err := s.store.GetWithdrawal(ctx, c.ID)
	if err != nil {
		log.Warn("load withdrawal to fail", "withdrawal_id", c.ID, "err", err)
		return false
	}
	if w.Status != store.Pending && w.Status != store.Signing {
		return false
	}
	if err := s.failFrom(ctx, w, w.Status, cause); err != nil {
		log.Warn("fail withdrawal", "withdrawal_id", c.ID, "err", err)
		return false
	}
	log.Warn("withdrawal failed", "withdrawal_id", c.ID, "chain", cd.Config.Name, "err", cause)
	return true
}

// signPlan claims one wallet's share of a round and signs it from that wallet.
func (s *Signer) signPlan(ctx context.Context, log *slog.Logger, cd ChainDeps, asset *config.Asset, p walletPlan, items []fundItem, tokenBatch bool) (int, error) {
	ids := make([]string, len(p.Items))
	need := new(big.Int)
	for i, j := range p.Items {
		ids[i] = items[j].ID
		need.Add(need, items[j].Amount)
	}
	if tokenBatch {
		ready, err := s.ensureAllowance(ctx, log, cd, asset, p.Wallet, need)
		if err != nil {
			return 0, err
		}
		if !ready {
			return 0, nil // an approve is on its way; the share waits for it
		}
	}
	ws, err := s.store.ClaimByID(ctx, cd.Config.Name, asset.Symbol, ids, claimStaleAfter, store.ActorSigner)
	if err != nil || len(ws) == 0 {
		return 0, err
	}
	ctx, end := s.traceClaim(ctx, ws)
	defer end()
	n, err := s.signGroup(ctx, log, cd, asset, p.Wallet, ws)
	if err != nil {
		// Nothing was recorded for the withdrawals still SIGNING: give them back at once.
		s.release(ctx, log, ws, err)
	}
	return n, err
}

// claimAndSingle claims withdrawals and signs each on its own.
func (s *Signer) claimAndSingle(ctx context.Context, log *slog.Logger, cd ChainDeps, assetSym string, limit int) (int, error) {
	ws, err := s.store.ClaimForBatch(ctx, cd.Config.Name, assetSym, limit, claimStaleAfter, store.ActorSigner)
	if err != nil || len(ws) == 0 {
		return 0, err
	}
	ctx, end := s.traceClaim(ctx, ws)
	defer end()
	return s.singles(ctx, log, common.Address{}, ws)
}

// traceClaim starts the span of signing claimed withdrawals: in the trace of the first (so a batch
// transaction's broadcast and monitoring, which carry this span's context on, stay in a withdrawal's
// trace), linked to the traces of the others. A no-op when tracing is off.
func (s *Signer) traceClaim(ctx context.Context, ws []*store.Withdrawal) (context.Context, func()) {
	if s.tracer == nil || len(ws) == 0 {
		return ctx, func() {}
	}
	var links []trace.Link
	for _, w := range ws[1:] {
		if sc := trace.SpanContextFromContext(queue.ExtractTrace(context.Background(), w.Traceparent)); sc.IsValid() {
			links = append(links, trace.Link{SpanContext: sc, Attributes: []attribute.KeyValue{attribute.String("withdrawal.id", w.ID)}})
		}
	}
	ctx, span := s.tracer.Start(queue.ExtractTrace(ctx, ws[0].Traceparent), "sign claimed",
		trace.WithLinks(links...), trace.WithAttributes(attribute.Int("withdrawals", len(ws)),
			attribute.String("chain", ws[0].Chain), attribute.String("asset", ws[0].Asset)))
	return ctx, func() { span.End() }
}

// traceOne starts the span of signing w on its own, in w's trace and linked to the claim's span.
func (s *Signer) traceOne(ctx context.Context, w *store.Withdrawal) (context.Context, func()) {
	if s.tracer == nil {
		return ctx, func() {}
	}
	claim := trace.SpanContextFromContext(ctx)
	ctx, span := s.tracer.Start(queue.ExtractTrace(ctx, w.Traceparent), "sign withdrawal",
		trace.WithLinks(trace.Link{SpanContext: claim}), trace.WithAttributes(attribute.String("withdrawal.id", w.ID)))
	return ctx, func() { span.End() }
}

// singles signs each claimed withdrawal with its own transaction from hot wallet from. One short of
// funds goes back to PENDING awaiting funds; one that cannot be paid at all fails.
func (s *Signer) singles(ctx context.Context, log *slog.Logger, from common.Address, ws []*store.Withdrawal) (int, error) {
	var (
		mu   sync.Mutex
		errs []error
		done int
		wg   sync.WaitGroup
		sem  = make(chan struct{}, singlesParallel)
	)
	for _, w := range ws {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			ctx, end := s.traceOne(ctx, w)
			defer end()
			err := s.sign(ctx, log.With("withdrawal_id", w.ID), w, from, "")
			if err != nil && txerr.Classify(err) == txerr.InsufficientFunds {
				s.awaitClaimed(ctx, log, []*store.Withdrawal{w}, err)
				return
			}
			if err != nil && permanent(err) {
				err = s.fail(ctx, w, err)
			}
			if err != nil {
				s.release(ctx, log, []*store.Withdrawal{w}, err)
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
			} else {
				done++
			}
		}()
	}
	wg.Wait()
	return done, errors.Join(errs...)
}

func (s *Signer) release(ctx context.Context, log *slog.Logger, ws []*store.Withdrawal, cause error) {
	ctx = context.WithoutCancel(ctx)
	reason := "batch attempt did not complete, back to pending: " + cause.Error()
	if len(reason) > 500 {
		reason = reason[:500]
	}
	for _, w := range ws {
		err := s.store.InTx(ctx, func(tx *sql.Tx) error {
			return s.store.Transition(ctx, tx, w.ID, store.Signing, store.Pending, reason, store.ActorSigner, store.Change{})
		})
		if err != nil && !errors.Is(err, store.ErrConflict) {
			log.Warn("release claimed withdrawal", "withdrawal_id", w.ID, "err", err)
		}
	}
}

// failOne fails one claimed withdrawal (still SIGNING) with a permanent reason.
func (s *Signer) failOne(ctx context.Context, w *store.Withdrawal, typ txerr.Type, msg string) error {
	return s.fail(ctx, w, txerr.New(typ, "batch_simulation", errors.New(msg)))
}

// batchPlan is a batch ready to sign.
type batchPlan struct {
	ws     []*store.Withdrawal
	to     common.Address
	value  *big.Int
	data   []byte
	gas    uint64
	mode   string
	reason string
}

// signGroup decides batch versus singles for claimed withdrawals, simulates, and signs.
func (s *Signer) signGroup(ctx context.Context, log *slog.Logger, cd ChainDeps, asset *config.Asset, from common.Address, ws []*store.Withdrawal) (int, error) {
	contract, batchable, single := route(cd.Config, asset, ws, func(ws []*store.Withdrawal) (funded, empty []*store.Withdrawal) {
		return s.splitByFunded(ctx, cd, ws)
	})
	done := 0
	var errs []error
	if len(single) > 0 {
		n, err := s.singles(ctx, log, from, single)
		done += n
		if err != nil {
			errs = append(errs, err)
		}
	}
	if len(batchable) > 0 {
		n, err := s.batch(ctx, log, cd, asset, from, contract, batchable)
		done += n
		if err != nil {
			errs = append(errs, err)
		}
	}
	return done, errors.Join(errs...)
}

// route decides how claimed withdrawals of one asset go out: those to batch through contract (Multicall3
// for the native coin, the batch contract for tokens) and those to sign alone. Without a contract, or
// with fewer than per_token_threshold to batch, all go alone. Under prefer "gas", native payments to
// empty accounts go alone too (split tells them apart): batched, they cost more than a plain transfer
// (~37k vs 21k gas).
func route(c config.Chain, asset *config.Asset, ws []*store.Withdrawal,
	split func([]*store.Withdrawal) (funded, empty []*store.Withdrawal)) (contract common.Address, batchable, single []*store.Withdrawal) {
	b := c.Batching
	addr := c.BatchContract
	if asset.Native() {
		addr = c.Multicall3
	}
	if addr.IsZero() || len(ws) < b.PerTokenThreshold {
		return common.Address{}, nil, ws
	}
	batchable = ws
	if asset.Native() && b.Prefer == "gas" {
		batchable, single = split(ws)
	}
	if len(batchable) < b.PerTokenThreshold {
		return common.Address{}, nil, ws
	}
	return addr.Common(), batchable, single
}

// splitByFunded separates recipients that exist (balance or nonce) from empty accounts.
// The lookups run lookupParallel at a time: one or two calls per recipient would otherwise make a large
// native round wait on the node one call after another.
func (s *Signer) splitByFunded(ctx context.Context, cd ChainDeps, ws []*store.Withdrawal) (funded, empty []*store.Withdrawal) {
	ok := make([]bool, len(ws))
	var wg sync.WaitGroup
	sem := make(chan struct{}, lookupParallel)
	for i, w := range ws {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			ok[i] = s.recipientFunded(ctx, cd, common.HexToAddress(w.To))
		}()
	}
	wg.Wait()
	for i, w := range ws {
		if ok[i] {
			funded = append(funded, w)
		} else {
			empty = append(empty, w)
		}
	}
	return funded, empty
}

// lookupParallel bounds the concurrent recipient lookups of one round.
const lookupParallel = 16

// recipientFunded reports whether to already exists on chain (a balance or a nonce), which makes a
// native transfer to it cheap inside a batch. One lookup per recipient: when the node cannot answer for
// one, it counts as empty, the costlier assumption, rather than hold back the whole group.
func (s *Signer) recipientFunded(ctx context.Context, cd ChainDeps, to common.Address) bool {
	bal, err := cd.Client.BalanceAt(ctx, to)
	if err == nil && bal.Sign() > 0 {
		return true
	}
	if err != nil {
		s.log.Debug("recipient balance unknown; treating it as a new account", "to", to, "err", err)
		return false
	}
	n, err := cd.Client.NonceAt(ctx, to)
	return err == nil && n > 0
}

type caller interface {
	CallContract(ctx context.Context, msg ethereum.CallMsg, block *big.Int) ([]byte, error)
}

// BuildNative simulates the native batch with allowFailure=true, and returns the atomic calldata for
// the transfers that succeeded and the indexes of those that failed.
func BuildNative(ctx context.Context, c caller, from, mc3 common.Address, transfers []multicall.Transfer) (data []byte, value *big.Int, failed []int, err error) {
	sim, total, err := multicall.NativeBatch(transfers)
	if err != nil {
		return nil, nil, nil, err
	}
	out, err := c.CallContract(ctx, ethereum.CallMsg{From: from, To: &mc3, Value: total, Data: sim}, nil)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("simulate native batch: %w", err)
	}
	res, err := multicall.DecodeResults(out)
	if err != nil {
		return nil, nil, nil, err
	}
	if len(res) != len(transfers) {
		return nil, nil, nil, fmt.Errorf("simulate native batch: %d results for %d transfers", len(res), len(transfers))
	}
	var keep []multicall.Transfer
	for i, r := range res {
		if r.Success {
			keep = append(keep, transfers[i])
		} else {
			failed = append(failed, i)
		}
	}
	if len(keep) == 0 {
		return nil, nil, failed, nil
	}
	data, value, err = multicall.NativeBatchAtomic(keep)
	return data, value, failed, err
}

// BuildERC20 simulates batchTransfer from the hot wallet (eth_call returns one bool per item) and
// returns the calldata for the items that succeed and the indexes of those that fail.
func BuildERC20(ctx context.Context, c caller, from, batch, token common.Address, transfers []multicall.Transfer) (data []byte, failed []int, err error) {
	sim, err := multicall.ERC20Batch(token, transfers)
	if err != nil {
		return nil, nil, err
	}
	out, err := c.CallContract(ctx, ethereum.CallMsg{From: from, To: &batch, Data: sim}, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("simulate token batch: %w", err)
	}
	oks, err := bindings.NewBatchTransfer().UnpackBatchTransfer(out)
	if err != nil {
		return nil, nil, fmt.Errorf("decode token batch simulation: %w", err)
	}
	if len(oks) != len(transfers) {
		return nil, nil, fmt.Errorf("simulate token batch: %d results for %d transfers", len(oks), len(transfers))
	}
	var keep []multicall.Transfer
	for i, ok := range oks {
		if ok {
			keep = append(keep, transfers[i])
		} else {
			failed = append(failed, i)
		}
	}
	if len(keep) == 0 {
		return nil, failed, nil
	}
	data, err = multicall.ERC20Batch(token, keep)
	return data, failed, err
}

func transfersOf(ws []*store.Withdrawal) []multicall.Transfer {
	ts := make([]multicall.Transfer, len(ws))
	for i, w := range ws {
		ts[i] = multicall.Transfer{To: common.HexToAddress(w.To), Amount: w.Amount}
	}
	return ts
}

// batch simulates, fails the items that would fail, and signs the rest as one transaction.
func (s *Signer) batch(ctx context.Context, log *slog.Logger, cd ChainDeps, asset *config.Asset, from, contract common.Address, ws []*store.Withdrawal) (int, error) {
	c := cd.Client
	b := cd.Config.Batching
	var (
		data    []byte
		value   = new(big.Int)
		failed  []int
		err     error
		mode    = store.BatchMulticall3
		failMsg string
	)
	if asset.Native() {
		data, value, failed, err = BuildNative(ctx, c, from, contract, transfersOf(ws))
		failMsg = "recipient rejected the native payment in the batch simulation (Multicall3 call failed)"
	} else {
		mode = store.BatchERC20
		token := asset.Address.Common()
		sum := new(big.Int)
		for _, w := range ws {
			sum.Add(sum, w.Amount)
		}
		// Batches signed but not mined yet will take their amounts first: count them, so no item of
		// this batch fails on chain for want of balance.
		mined, err := cd.Client.NonceAt(ctx, from)
		if err != nil {
			return 0, fmt.Errorf("mined nonce of %s: %w", from, err)
		}
		inflight, err := s.store.InFlightBatchAmount(ctx, cd.Config.ChainID, from.Hex(), asset.Symbol, mined)
		if err != nil {
			return 0, err
		}
		if err := s.checkTokenFunds(ctx, cd, asset, from, new(big.Int).Add(sum, inflight)); err != nil {
			// The wallet choice saw more than is there (a node behind, say): the batch waits for the
			// next round, which reads the balances again.
			s.awaitClaimed(ctx, log, ws, err)
			return 0, nil
		}
		data, failed, err = BuildERC20(ctx, c, from, contract, token, transfersOf(ws))
		failMsg = "token transfer to this recipient reverts (batch simulation: transferFrom failed)"
		if err == nil && len(failed) > 0 {
			// A transferFrom that fails in the simulation condemns its recipient only when the allowance
			// covers the batch. Just after a reorg drops the approve, or while it is not mined, every item
			// fails for want of allowance: failing them for good would be wrong, so the round gives them
			// back (retryable) and they are batched again once the allowance is there (chaos seed 502).
			if err := s.allowanceCovers(ctx, cd, from, token, contract, new(big.Int).Add(sum, inflight)); err != nil {
				return 0, err
			}
		}
	}
	if err != nil {
		return 0, err
	}
	done := 0
	drop := map[int]bool{}
	for _, i := range failed {
		drop[i] = true
		if err := s.failOne(ctx, ws[i], txerr.ExecutionReverted, failMsg); err != nil {
			return done, err
		}
		done++
	}
	var keep []*store.Withdrawal
	for i, w := range ws {
		if !drop[i] {
			keep = append(keep, w)
		}
	}
	if len(keep) == 0 {
		return done, nil
	}
	if len(keep) < b.PerTokenThreshold {
		n, err := s.singles(ctx, log, from, keep)
		return done + n, err
	}
	f, err := cd.Fees.New(ctx, nil)
	if err != nil {
		return done, err
	}
	est, err := cd.Client.EstimateGas(ctx, ethereum.CallMsg{From: from, To: &contract, Value: value, Data: data,
		GasFeeCap: f.MaxFeePerGas, GasTipCap: f.MaxPriorityFee})
	if err != nil {
		return done, fmt.Errorf("estimate batch of %d: %w", len(keep), err)
	}
	gas := withGasMargin(est, data)
	if gas > b.GasBudget {
		if len(keep) < 2 {
			return done, fmt.Errorf("one transfer needs %d gas, over the batch budget %d", gas, b.GasBudget)
		}
		// The model underestimated: halve and try each part.
		h := len(keep) / 2
		n1, err1 := s.batch(ctx, log, cd, asset, from, contract, keep[:h])
		n2, err2 := s.batch(ctx, log, cd, asset, from, contract, keep[h:])
		return done + n1 + n2, errors.Join(err1, err2)
	}
	if err := s.checkCoinFunds(ctx, cd, asset, from, value, gas, f.MaxFeePerGas); err != nil {
		s.awaitClaimed(ctx, log, keep, err)
		return done, nil
	}
	plan := batchPlan{ws: keep, to: contract, value: value, data: data, gas: gas, mode: mode,
		reason: decisionReason(asset.Native(), cd.Config.Batching.Prefer, len(keep), est)}
	if err := s.signBatch(ctx, log, cd, from, f, plan); err != nil {
		return done, err
	}
	return done + len(keep), nil
}

// decisionReason says why a batch was chosen and what it is expected to save against one
// transaction per withdrawal (the gas model's single-transfer cost).
func decisionReason(native bool, prefer string, n int, est uint64) string {
	single := uint64(n) * GasERC20SingleNew
	kind := "erc20 batchTransfer"
	if native {
		single = uint64(n) * GasNativeSingle
		kind = "native multicall3 aggregate3Value (atomic, simulated)"
	}
	saving := 0.0
	if single > 0 {
		saving = 100 * (float64(single) - float64(est)) / float64(single)
	}
	return fmt.Sprintf("%s of %d, prefer %s: estimated %d gas (%d/transfer) vs ~%d as singles: %.0f%% saved",
		kind, n, prefer, est, est/uint64(n), single, saving)
}

// signBatch signs the batch and records, in one database transaction, the batch, the sent transaction,
// every withdrawal's SIGNING → SIGNED move and the signed-tx message.
func (s *Signer) signBatch(ctx context.Context, log *slog.Logger, cd ChainDeps, from common.Address, f fees.Fees, p batchPlan) error {
	batchID := queue.NewID()
	fromHex := from.Hex()
	st, err := s.send.Send(ctx, txsend.Candidate{
		Chain: cd.Config.Name, ChainID: cd.Config.ChainID, Node: cd.Client, From: from, To: p.to, Value: p.value, Data: p.data,
		Gas: p.gas, Fees: f, Kind: "batch", Source: "signer", CorrelationID: "batch-" + batchID,
		Lock: func(ctx context.Context, dbtx *sql.Tx) error {
			return s.checkFrozen(ctx, dbtx, cd.Config.Name, fromHex)
		},
		Record: func(ctx context.Context, dbtx *sql.Tx, st *store.SentTx) error {
			if err := s.store.InsertBatch(ctx, dbtx, &store.Batch{ID: batchID, Chain: cd.Config.Name, Asset: p.ws[0].Asset,
				From: fromHex, Mode: p.mode, Size: len(p.ws), EstimatedGas: p.gas, Reason: p.reason, SentTxID: &st.ID}); err != nil {
				return err
			}
			for i, w := range p.ws {
				reason := fmt.Sprintf("signed in batch %s (item %d of %d): tx %s nonce %d from %s", batchID, i, len(p.ws), st.Hash, st.Nonce, fromHex)
				if err := s.store.Transition(ctx, dbtx, w.ID, store.Signing, store.Signed, reason, store.ActorSigner,
					store.Change{From: &fromHex, SentTxID: &st.ID, BatchID: &batchID}); err != nil {
					return err
				}
			}
			return nil
		},
	})
	if err != nil {
		return err
	}
	s.m.TransactionSigned(cd.Config.Name, "batch")
	for _, w := range p.ws {
		s.m.WithdrawalSigned(cd.Config.Name, w.Asset, time.Since(w.CreatedAt))
	}
	log.Info("batch signed", "batch_id", batchID, "size", len(p.ws), "tx_hash", st.Hash, "nonce", st.Nonce, "gas", p.gas, "reason", p.reason)
	return nil
}

// ensureAllowance makes sure from's allowance to the batch contract covers need (the batch about to be
// signed) on top of what its batches signed but not yet settled will still take. When it does not, it
// signs one bounded approve (enough for allowanceBatches batches of this size, at most the wallet's
// balance) as its own recorded transaction and reports not ready; while that approve is open it reports
// not ready. Ahead of need: when the allowance covers this batch but would not cover one more like it,
// the approve is signed now, before the batch (its lower nonce is mined first and sets the allowance for
// this batch and the next ones), so a later batch does not wait a block for it. The allowance is only
// ever given to BatchTransfer (which moves msg.sender's own tokens), never to Multicall3.
func (s *Signer) ensureAllowance(ctx context.Context, log *slog.Logger, cd ChainDeps, asset *config.Asset, from common.Address, need *big.Int) (bool, error) {
	batch := cd.Config.BatchContract.Common()
	token := asset.Address.Common()
	if batch == cd.Config.Multicall3.Common() {
		return false, txerr.Permanentf(txerr.InvalidTransaction, "batch_contract of %s is Multicall3: refusing to give it an allowance", cd.Config.Name)
	}
	if need.Sign() == 0 {
		return true, nil
	}
	mined, err := cd.Client.NonceAt(ctx, from)
	if err != nil {
		return false, fmt.Errorf("mined nonce of %s: %w", from, err)
	}
	open, err := s.store.UnminedSentTxOfKind(ctx, cd.Config.ChainID, from.Hex(), token.Hex(), "approve", mined)
	if err != nil {
		return false, err
	}
	if open {
		return false, nil // the approve is not mined yet: simulating against the old allowance would fail
	}
	inflight, err := s.store.InFlightBatchAmount(ctx, cd.Config.ChainID, from.Hex(), asset.Symbol, mined)
	if err != nil {
		return false, err
	}
	allowance, err := s.allowance(ctx, cd, from, token, batch)
	if err != nil {
		return false, err
	}
	left := new(big.Int).Sub(allowance, inflight)
	covers := left.Cmp(need) >= 0
	if covers && left.Cmp(new(big.Int).Mul(need, big.NewInt(2))) >= 0 {
		return true, nil
	}
	// An approve sets the allowance outright, and it is mined after every batch signed before it
	// (lower nonces), which the current allowance covers: the new amount is all for later batches,
	// this one included.
	bal, err := cd.Client.TokenBalance(ctx, token, from)
	if err != nil {
		return false, fmt.Errorf("%s balance of %s: %w", asset.Symbol, from, err)
	}
	target := new(big.Int).Mul(need, big.NewInt(allowanceBatches))
	if target.Cmp(bal) > 0 {
		target = bal
	}
	if target.Cmp(need) < 0 || (covers && target.Cmp(left) <= 0) {
		// Not enough tokens for the batch (signing then finds it short and it waits for funds), or an
		// approve would not raise what is left: nothing to gain from one now.
		return covers, nil
	}
	if err := s.approve(ctx, log, cd, from, token, batch, target); err != nil {
		if covers {
			log.Warn("approve ahead of need failed; the batch goes on with the allowance it has", "err", err)
			return true, nil
		}
		return false, err
	}
	return covers, nil
}

// allowance reads from's allowance of token to spender.
func (s *Signer) allowance(ctx context.Context, cd ChainDeps, from, token, spender common.Address) (*big.Int, error) {
	out, err := cd.Client.CallContract(ctx, ethereum.CallMsg{From: from, To: &token, Data: erc20Allowance(from, spender)}, nil)
	if err != nil {
		return nil, fmt.Errorf("allowance of %s to %s: %w", from, spender, err)
	}
	return decodeAllowance(out)
}

// primeEvery is how often the batcher looks, per token group, for hot wallets without an allowance.
const primeEvery = time.Second

// primeAllowances runs while a token group fills (before min_batch or max_wait make it ready): every
// unfrozen hot wallet holding the token with no allowance to the batch contract at all gets one, sized
// as ensureAllowance sizes it (allowanceBatches times what the group holds, at most the wallet's
// balance), so the group's first batch finds it mined instead of waiting a block for it. Under the
// group's lock, like the batches; at most every primeEvery per group.
func (s *Signer) primeAllowances(ctx context.Context, cd ChainDeps, assetSym string) error {
	c := cd.Config
	asset, ok := c.Asset(assetSym)
	if !ok || asset.Native() || c.BatchContract.IsZero() || c.BatchContract == c.Multicall3 || !s.batcher.primeDue(c.Name+"/"+assetSym) {
		return nil
	}
	batch, token := c.BatchContract.Common(), asset.Address.Common()
	unlock, owner, err := s.store.TryLock(ctx, "batch/"+c.Name+"/"+assetSym)
	if err != nil || !owner {
		return err
	}
	defer unlock()
	need, err := s.store.ClaimableAmount(ctx, c.Name, assetSym, maxItems(c.Batching, false), claimStaleAfter)
	if err != nil || need.Sign() == 0 {
		return err
	}
	var errs []error
	for _, from := range wallets(c) {
		if err := s.checkFrozen(ctx, s.store.DB, c.Name, from.Hex()); err != nil {
			continue
		}
		a, err := s.allowance(ctx, cd, from, token, batch)
		if err != nil || a.Sign() > 0 {
			errs = append(errs, err)
			continue
		}
		mined, err := cd.Client.NonceAt(ctx, from)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if open, err := s.store.UnminedSentTxOfKind(ctx, c.ChainID, from.Hex(), token.Hex(), "approve", mined); err != nil || open {
			errs = append(errs, err)
			continue
		}
		bal, err := cd.Client.TokenBalance(ctx, token, from)
		if err != nil || bal.Sign() == 0 {
			errs = append(errs, err)
			continue
		}
		target := new(big.Int).Mul(need, big.NewInt(allowanceBatches))
		if target.Cmp(bal) > 0 {
			target = bal
		}
		errs = append(errs, s.approve(ctx, s.log.With("chain", c.Name, "asset", assetSym, "wallet", from.Hex()), cd, from, token, batch, target))
	}
	return errors.Join(errs...)
}

// approve signs and records approve(spender, amount) from the hot wallet.
func (s *Signer) approve(ctx context.Context, log *slog.Logger, cd ChainDeps, from, token, spender common.Address, amount *big.Int) error {
	data := erc20Approve(spender, amount)
	f, err := cd.Fees.New(ctx, nil)
	if err != nil {
		return err
	}
	est, err := cd.Client.EstimateGas(ctx, ethereum.CallMsg{From: from, To: &token, Data: data})
	if err != nil {
		return fmt.Errorf("estimate approve: %w", err)
	}
	st, err := s.send.Send(ctx, txsend.Candidate{
		Chain: cd.Config.Name, ChainID: cd.Config.ChainID, Node: cd.Client, From: from, To: token, Data: data,
		Gas: withGasMargin(est, data), Fees: f, Kind: "approve", Source: "signer", CorrelationID: "approve-" + queue.NewID(),
	})
	if err != nil {
		return err
	}
	s.m.TransactionSigned(cd.Config.Name, "approve")
	log.Info("approve signed for the batch contract", "spender", spender, "amount", amount, "tx_hash", st.Hash, "nonce", st.Nonce)
	return nil
}

// allowanceCovers reports, as a retryable error, an allowance of from to the batch contract below need.
func (s *Signer) allowanceCovers(ctx context.Context, cd ChainDeps, from, token, batch common.Address, need *big.Int) error {
	out, err := cd.Client.CallContract(ctx, ethereum.CallMsg{From: from, To: &token, Data: erc20Allowance(from, batch)}, nil)
	if err != nil {
		return fmt.Errorf("allowance of %s to %s: %w", from, batch, err)
	}
	allowance, err := decodeAllowance(out)
	if err != nil {
		return err
	}
	if allowance.Cmp(need) < 0 {
		return txerr.New(txerr.Network, "allowance_not_ready", fmt.Errorf("allowance of %s to %s is %s, the batch and those in flight need %s: batching later",
			from, batch, allowance, need))
	}
	return nil
}
