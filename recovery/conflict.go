package recovery

// Nonce conflicts: one of our nonces taken by a transaction Sluice did not sign (the hot key was used
// outside Sluice). None of our attempts at that nonce can ever be mined once the foreign transaction is
// final, so the withdrawals it carried are signed again at a new nonce; before it is final, a reorg
// could drop it and let one of ours be mined, and signing again then could pay twice — so nothing moves
// until the foreign transaction is at the chain's confirmation depth.

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
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluice-custody/sluice/internal/alert"
	"github.com/sluice-custody/sluice/internal/chain"
	"github.com/sluice-custody/sluice/internal/queue"
	"github.com/sluice-custody/sluice/internal/store"
)

// ConflictChain is what finding the transaction at a nonce asks of a node.
type ConflictChain interface {
	BlockNumber(ctx context.Context) (uint64, error)
	NonceAtBlock(ctx context.Context, account common.Address, number *big.Int) (uint64, error)
	BlockByNumber(ctx context.Context, number *big.Int) (*types.Block, error)
	TransactionReceipt(ctx context.Context, hash common.Hash) (*types.Receipt, error)
}

// ConflictChainDeps is one configured chain as conflict handling uses it (it pays no fees).
type ConflictChainDeps = chain.Deps[ConflictChain]

// ConflictMetrics is what conflict handling counts.
type ConflictMetrics interface {
	// Conflict counts a nonce taken for good by a foreign transaction; frozen says the wallet was frozen.
	Conflict(chain string, frozen bool)
}

// NewConflictMetrics registers sluice_recovery_nonce_conflicts_total on reg.
func NewConflictMetrics(reg prometheus.Registerer) ConflictMetrics {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sluice_recovery_nonce_conflicts_total",
		Help: "Nonces of a hot wallet taken, final at the confirmation depth, by a transaction Sluice did not sign, by chain and whether the wallet was frozen.",
	}, []string{"chain", "frozen"})
	reg.MustRegister(c)
	return promConflictMetrics{c}
}

type promConflictMetrics struct{ c *prometheus.CounterVec }

func (m promConflictMetrics) Conflict(chain string, frozen bool) {
	m.c.WithLabelValues(chain, fmt.Sprint(frozen)).Inc()
}

// NopConflictMetrics counts nothing, for tests.
func NopConflictMetrics() ConflictMetrics { return nopConflictMetrics{} }

type nopConflictMetrics struct{}

func (nopConflictMetrics) Conflict(string, bool) {}

// ConflictDeps are the collaborators a ConflictResolver cannot work without.
type ConflictDeps struct {
	Store *store.Store
	// Queue takes the fresh tx-request of each returned withdrawal and the monitor requests, in the
	// database transaction that records the decision.
	Queue  queue.TxSender
	Alerts alert.Notifier
	Chains map[string]ConflictChainDeps
	// Every is the time between sweeps of Run (30 s when zero).
	Every time.Duration
}

// ConflictResolver finds who took a nonce of ours and, when a foreign transaction did and is final,
// returns the withdrawals to PENDING, marks our transaction CONFLICTED, raises a critical alert and
// (per chain, by default) freezes the wallet.
type ConflictResolver struct {
	store  *store.Store
	queue  queue.TxSender
	alerts alert.Notifier
	chains map[string]ConflictChainDeps
	every  time.Duration
	log    *slog.Logger
	m      ConflictMetrics
}

// NewConflictResolver checks d (a missing dependency is an error naming it) and builds the resolver. A
// nil log discards; m may be NopConflictMetrics().
func NewConflictResolver(d ConflictDeps, log *slog.Logger, m ConflictMetrics) (*ConflictResolver, error) {
	switch {
	case d.Store == nil:
		return nil, errors.New("conflict resolver: Store is required")
	case d.Queue == nil:
		return nil, errors.New("conflict resolver: Queue is required")
	case d.Alerts == nil:
		return nil, errors.New("conflict resolver: Alerts is required (alert.Nop{} for none)")
	case len(d.Chains) == 0:
		return nil, errors.New("conflict resolver: Chains is required (no chain configured)")
	case m == nil:
		return nil, errors.New("conflict resolver: Metrics is required (NopConflictMetrics() for none)")
	}
	for name, cd := range d.Chains {
		if cd.Client == nil {
			return nil, fmt.Errorf("conflict resolver: Chains[%q] has no client", name)
		}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	every := d.Every
	if every <= 0 {
		every = 30 * time.Second
	}
	return &ConflictResolver{store: d.Store, queue: d.Queue, alerts: d.Alerts, chains: d.Chains, every: every,
		log: log.With("component", "nonce_conflicts"), m: m}, nil
}

// Verdict is who holds a nonce of ours on chain.
type Verdict int

const (
	// NotTaken: the chain's mined nonce has not passed ours; one of our attempts can still be mined.
	NotTaken Verdict = iota
	// OursMined: one of our attempts was mined at the nonce; the monitor settles it.
	OursMined
	// ForeignPending: a transaction we did not sign was mined at the nonce, not yet at the depth.
	ForeignPending
	// ForeignFinal: a transaction we did not sign was mined at the nonce and is at the depth.
	ForeignFinal
)

func (v Verdict) String() string {
	return [...]string{"not_taken", "ours_mined", "foreign_pending", "foreign_final"}[v]
}

// Finding is what Inspect learned: the verdict and, once the nonce is taken, the transaction that took it.
type Finding struct {
	Verdict Verdict
	Hash    string // the transaction mined at the nonce
	Block   uint64
	Confs   uint64
}

// Inspect finds who holds st's nonce on chain. It reads the chain (the block where the address's nonce
// passed st's, found by bisection over the nonce at past blocks, then the transaction in it) and st's
// recorded attempts; it changes nothing.
func (r *ConflictResolver) Inspect(ctx context.Context, st *store.SentTx) (Finding, error) {
	cd, ok := r.chains[st.Chain]
	if !ok {
		return Finding{}, fmt.Errorf("chain %q of sent tx %d is not configured", st.Chain, st.ID)
	}
	from := common.HexToAddress(st.From)
	head, err := cd.Client.BlockNumber(ctx)
	if err != nil {
		return Finding{}, fmt.Errorf("head of %s: %w", st.Chain, err)
	}
	past := func(b uint64) (bool, error) {
		n, err := cd.Client.NonceAtBlock(ctx, from, new(big.Int).SetUint64(b))
		if err != nil {
			return false, fmt.Errorf("nonce of %s at block %d: %w", from, b, err)
		}
		return n > st.Nonce, nil
	}
	taken, err := past(head)
	if err != nil || !taken {
		return Finding{Verdict: NotTaken}, err
	}
	block, err := firstBlock(head, past)
	if err != nil {
		return Finding{}, err
	}
	b, err := cd.Client.BlockByNumber(ctx, new(big.Int).SetUint64(block))
	if err != nil {
		return Finding{}, fmt.Errorf("block %d of %s: %w", block, st.Chain, err)
	}
	signer := types.LatestSignerForChainID(new(big.Int).SetUint64(cd.Config.ChainID))
	var hash string
	for _, tx := range b.Transactions() {
		if tx.Nonce() != st.Nonce {
			continue
		}
		if s, err := types.Sender(signer, tx); err == nil && s == from {
			hash = tx.Hash().Hex()
			break
		}
	}
	if hash == "" {
		return Finding{}, fmt.Errorf("block %d raised the nonce of %s past %d but holds no transaction of it at that nonce", block, from, st.Nonce)
	}
	f := Finding{Hash: hash, Block: block, Confs: head - block + 1}
	attempts, err := r.store.AttemptHashes(ctx, st.ID)
	if err != nil {
		return Finding{}, err
	}
	for _, a := range attempts {
		if strings.EqualFold(a, hash) {
			f.Verdict = OursMined
			return f, nil
		}
	}
	f.Verdict = ForeignPending
	if f.Confs >= cd.Config.Confirmations {
		f.Verdict = ForeignFinal
	}
	return f, nil
}

// firstBlock returns the lowest block at or below head for which past is true, given past(head): it
// looks back in growing steps (a conflict is usually recent, and a full node keeps only recent state)
// and then bisects.
func firstBlock(head uint64, past func(uint64) (bool, error)) (uint64, error) {
	hi, step := head, uint64(1)
	lo := uint64(0)
	for hi > 0 {
		cand := uint64(0)
		if hi > step {
			cand = hi - step
		}
		p, err := past(cand)
		if err != nil {
			return 0, err
		}
		if !p {
			lo = cand
			break
		}
		hi = cand
		if cand == 0 {
			return 0, nil
		}
		step *= 2
	}
	if hi == 0 {
		return 0, nil
	}
	// past(lo) is false and past(hi) true.
	for hi-lo > 1 {
		mid := lo + (hi-lo)/2
		p, err := past(mid)
		if err != nil {
			return 0, err
		}
		if p {
			hi = mid
		} else {
			lo = mid
		}
	}
	return hi, nil
}

// Apply settles a final foreign transaction at st's nonce (f.Verdict must be ForeignFinal) in one
// database transaction: st is marked CONFLICTED with the conflict recorded, every withdrawal it carried
// goes back to PENDING (history names the foreign hash) with a fresh tx-request, the wallet is frozen
// when the chain says so, and d (the caller's audit record, Action and Reason filled in here) is
// written. Then a critical alert fires. It reports false when st was settled or marked meanwhile
// (nothing changed then, and d is not written).
func (r *ConflictResolver) Apply(ctx context.Context, st *store.SentTx, f Finding, d store.Decision) (bool, error) {
	if f.Verdict != ForeignFinal {
		return false, fmt.Errorf("sent tx %d: nonce conflict not final (%s)", st.ID, f.Verdict)
	}
	cd := r.chains[st.Chain]
	freeze := cd.Config.Recovery.FreezesOnConflict()
	why := fmt.Sprintf("nonce %d of %s was taken by transaction %s, which Sluice did not sign (block %d, %d confirmations): the hot key was used outside Sluice",
		st.Nonce, st.From, f.Hash, f.Block, f.Confs)
	var (
		moved  []string
		frozen bool
	)
	err := r.store.InTx(ctx, func(tx *sql.Tx) error {
		moved, frozen = moved[:0], false
		cur, err := r.store.LockSentTx(ctx, tx, st.ID)
		if err != nil {
			return err
		}
		if cur.Status != store.TxSigned && cur.Status != store.TxBroadcasted {
			return store.ErrConflict
		}
		if err := r.store.RecordNonceConflict(ctx, tx, store.NonceConflict{Chain: st.Chain, ChainID: st.ChainID, From: st.From,
			Nonce: st.Nonce, SentTxID: st.ID, ForeignHash: f.Hash, ForeignBlock: f.Block}); err != nil {
			return err
		}
		ws, err := r.store.WithdrawalsBySentTx(ctx, tx, st.ID)
		if err != nil {
			return err
		}
		cancels, err := r.store.CancelsRequested(ctx, tx, st.ID)
		if err != nil {
			return err
		}
		for _, w := range ws {
			if w.Status.Terminal() {
				continue
			}
			if cancels[w.ID] {
				// Nothing of ours can mine at this nonce, so nothing was paid: the client's cancel stands
				// instead of a new signature.
				if err := r.store.Transition(ctx, tx, w.ID, w.Status, store.Canceled,
					fmt.Sprintf("%s; none of our attempts (tx %s) can be mined any more, so nothing was paid: the cancel requested stands", why, st.Hash),
					store.ActorRecovery, store.Change{}); err != nil {
					return err
				}
				continue
			}
			reason := fmt.Sprintf("%s; none of our attempts (tx %s) can be mined any more: back to pending, to be signed again at a new nonce", why, st.Hash)
			if err := r.store.ReturnToPending(ctx, tx, w.ID, w.Status, reason, store.ActorRecovery); err != nil {
				return err
			}
			body, err := queue.NewEnvelope(ctx, queue.TypeWithdrawalRequested, queue.NewID(), w.CorrelationID, queue.WithdrawalRequested{WithdrawalID: w.ID})
			if err != nil {
				return err
			}
			if err := r.queue.SendTx(ctx, tx, queue.TxRequest, body, queue.SendOptions{}); err != nil {
				return err
			}
			moved = append(moved, w.ID)
		}
		if freeze {
			if frozen, err = r.store.FreezeWallet(ctx, tx, st.Chain, common.HexToAddress(st.From).Hex(), why, "recovery"); err != nil {
				return err
			}
		}
		d.Action, d.SentTxID, d.WithdrawalIDs = "conflict", &st.ID, moved
		d.Reason = fmt.Sprintf("%s; sent tx %d marked CONFLICTED, %d withdrawals back to pending, wallet frozen: %v", why, st.ID, len(moved), freeze)
		return r.store.RecordDecision(ctx, tx, d)
	})
	if errors.Is(err, store.ErrConflict) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("apply nonce conflict of sent tx %d: %w", st.ID, err)
	}
	r.m.Conflict(st.Chain, freeze)
	summary := fmt.Sprintf("hot key of %s on %s was used outside Sluice: transaction %s took nonce %d", st.From, st.Chain, f.Hash, st.Nonce)
	if freeze {
		summary += "; the wallet is frozen until an operator unfreezes it"
	}
	r.alerts.Fire(ctx, alert.Alert{
		Key: fmt.Sprintf("nonce_conflict:%s:%s:%d", st.Chain, st.From, st.Nonce), Kind: "nonce_conflict", Severity: alert.Critical,
		Summary: summary,
		Labels:  map[string]string{"chain": st.Chain, "wallet": st.From},
		Details: map[string]any{"foreign_tx_hash": f.Hash, "foreign_block": f.Block, "nonce": st.Nonce, "sent_tx_id": st.ID,
			"our_tx_hash": st.Hash, "withdrawals_returned": moved, "wallet_frozen": freeze, "newly_frozen": frozen},
	})
	r.log.Error("nonce taken by a transaction Sluice did not sign; withdrawals returned to pending", "chain", st.Chain,
		"from", st.From, "nonce", st.Nonce, "foreign_tx_hash", f.Hash, "sent_tx_id", st.ID, "withdrawals", len(moved), "wallet_frozen", freeze)
	return true, nil
}

// Run sweeps every hot wallet each Every until ctx ends (see Once).
func (r *ConflictResolver) Run(ctx context.Context) error {
	t := time.NewTicker(r.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if _, err := r.Once(ctx); err != nil && ctx.Err() == nil {
				r.log.Warn("nonce conflict sweep", "err", err)
			}
		}
	}
}

// Once looks, for every hot wallet, at the transactions still in flight below the chain's mined nonce:
// each was mined (ours: the monitor settles it) or taken by a foreign transaction, which is applied
// once final. It returns how many conflicts it applied.
func (r *ConflictResolver) Once(ctx context.Context) (int, error) {
	applied := 0
	var errs []error
	for name, cd := range r.chains {
		head, err := cd.Client.BlockNumber(ctx)
		if err != nil {
			errs = append(errs, fmt.Errorf("head of %s: %w", name, err))
			continue
		}
		for _, hw := range cd.Config.HotWallets {
			from := hw.Common()
			mined, err := cd.Client.NonceAtBlock(ctx, from, new(big.Int).SetUint64(head))
			if err != nil {
				errs = append(errs, fmt.Errorf("nonce of %s on %s: %w", from, name, err))
				continue
			}
			sts, err := r.store.InFlightBelow(ctx, cd.Config.ChainID, from.Hex(), mined)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			for _, st := range sts {
				// Most transactions below the mined nonce are ours, mined and waiting for the monitor to
				// see them at depth: a receipt of one attempt says so without searching blocks.
				if mined, err := r.attemptMined(ctx, cd.Client, st); err != nil || mined {
					if err != nil {
						errs = append(errs, err)
					}
					continue
				}
				f, err := r.Inspect(ctx, st)
				if err != nil {
					errs = append(errs, err)
					continue
				}
				switch f.Verdict {
				case ForeignPending:
					r.log.Warn("nonce taken by a transaction Sluice did not sign; waiting for it to be final before acting",
						"chain", name, "from", st.From, "nonce", st.Nonce, "foreign_tx_hash", f.Hash, "confirmations", f.Confs,
						"needed", cd.Config.Confirmations)
				case ForeignFinal:
					ok, err := r.Apply(ctx, st, f, store.Decision{Queue: "", MessageID: "sweep"})
					if err != nil {
						errs = append(errs, err)
					} else if ok {
						applied++
					}
				}
			}
		}
	}
	return applied, errors.Join(errs...)
}

// attemptMined reports whether the node has a receipt for one of st's recorded attempts.
func (r *ConflictResolver) attemptMined(ctx context.Context, c ConflictChain, st *store.SentTx) (bool, error) {
	hashes, err := r.store.AttemptHashes(ctx, st.ID)
	if err != nil {
		return false, err
	}
	for _, h := range hashes {
		_, err := c.TransactionReceipt(ctx, common.HexToHash(h))
		if err == nil {
			return true, nil
		}
		if !errors.Is(err, ethereum.NotFound) {
			return false, fmt.Errorf("receipt of %s: %w", h, err)
		}
	}
	return false, nil
}
