// Package txsend is the one path from a transaction candidate to a recorded, queued signed transaction:
// take a nonce (a lease, or the one the candidate fixes), sign, and in one database transaction record
// the sent transaction, run the caller's own writes (a withdrawal's move to SIGNED, a batch row) and
// queue the signed-tx message; then commit the lease, or release it when nothing was persisted. A nonce
// found already recorded is leased again, so two payloads can never share a nonce.
package txsend

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"math/big"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/sluice-custody/sluice/internal/fees"
	"github.com/sluice-custody/sluice/internal/keys"
	"github.com/sluice-custody/sluice/internal/nonce"
	"github.com/sluice-custody/sluice/internal/queue"
	"github.com/sluice-custody/sluice/internal/store"
	"github.com/sluice-custody/sluice/internal/txerr"
)

// Node is what choosing a nonce asks of a node.
type Node interface {
	NonceAt(ctx context.Context, account common.Address) (uint64, error)
	PendingNonceAt(ctx context.Context, account common.Address) (uint64, error)
}

// Keys hands out signers; the keys themselves never leave it.
type Keys interface {
	Signer(ctx context.Context, addr common.Address) (keys.Signer, error)
}

// Nonces allocates nonce leases: committed once the tx using one is persisted, released if nothing was.
type Nonces interface {
	// AllocateFor returns holder's earlier uncommitted lease when there is one, so a retry after a
	// crash reuses its nonce instead of leaving a hole.
	AllocateFor(ctx context.Context, chainID uint64, addr common.Address, f nonce.Floors, holder string) (nonce.Lease, error)
}

// Candidate is a transaction to sign and record.
type Candidate struct {
	Chain   string // configured name
	ChainID uint64
	// Node gives the nonce floors when a nonce is leased; unused when Nonce or Replaces fixes it.
	Node  Node
	From  common.Address
	To    common.Address
	Value *big.Int // nil is zero
	Data  []byte
	Gas   uint64
	Fees  fees.Fees

	Kind          string // sent_transactions.kind: withdrawal, batch, approve, nonce_fill
	Source        string // the service signing
	RequestID     string // the queue message that asked for it, when one did
	CorrelationID string

	// Nonce fixes the nonce (a gap fill): no lease is taken, and a nonce already recorded is
	// store.ErrNonceTaken, not a reason to take another.
	Nonce *uint64
	// Replaces, when set, makes this a new attempt of that recorded transaction (same nonce, higher
	// fees): the row is updated and the attempt added, ErrConflict if its current attempt is no longer
	// Replaces.Hash or its status no longer Replaces.Status (SIGNED or BROADCASTED). Kind and Source are
	// then the row's.
	Replaces *store.SentTx
	// Unqueued records the transaction without a signed-tx message: the caller sends it itself (a fee
	// bump of a transaction already broadcast, which the broadcaster would only find "already broadcast").
	Unqueued bool
	// LeaseHolder names who holds the lease (a withdrawal id), so a retry after a crash gets the same
	// nonce back; empty for a fresh lease each time.
	LeaseHolder string

	// Lock runs first in the database transaction, before a nonce is leased: it locks and checks what
	// the transaction is for, so racing deliveries of one request queue up there and only one signs.
	Lock func(ctx context.Context, tx *sql.Tx) error
	// Record runs in the same database transaction after the sent transaction is recorded (st.ID set):
	// the caller's own writes, which commit with it or not at all.
	Record func(ctx context.Context, tx *sql.Tx, st *store.SentTx) error
}

// Deps are the collaborators a Sender cannot work without. Nonces may be nil when every candidate fixes
// its nonce.
type Deps struct {
	Store  *store.Store
	Queue  queue.TxSender
	Keys   Keys
	Nonces Nonces
	// MainAccounts are the chains' main accounts (by chain name): their keys sign only what
	// MainAccountKinds lists, never a withdrawal. Optional.
	MainAccounts map[string]common.Address
}

// MainAccountKinds are the only transactions a main account signs: top-ups, the approve its token
// top-up batches need, and what keeps its own nonce stream whole (a gap fill).
var MainAccountKinds = map[string]bool{"top_up": true, "approve": true, "nonce_fill": true}

// Sender signs and records candidates.
type Sender struct {
	d   Deps
	log *slog.Logger
}

// New checks d and builds a Sender. A nil log discards.
func New(d Deps, log *slog.Logger) (*Sender, error) {
	switch {
	case d.Store == nil:
		return nil, errors.New("txsend: no store")
	case d.Queue == nil:
		return nil, errors.New("txsend: no queue")
	case d.Keys == nil:
		return nil, errors.New("txsend: no keys")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Sender{d: d, log: log}, nil
}

// maxNonceRetries bounds how often a send leases again after finding its nonce already recorded.
const maxNonceRetries = 5

// errNonceRecorded says the leased nonce was recorded meanwhile (a lease reclaimed from a holder that
// was slow, not dead): lease another.
var errNonceRecorded = errors.New("leased nonce already recorded")

// Send signs c and records it with its signed-tx message; it returns the recorded transaction.
// Errors from Lock and Record come back as they are (wrapped), so a caller can tell its own conflicts.
func (s *Sender) Send(ctx context.Context, c Candidate) (*store.SentTx, error) {
	if c.Replaces != nil {
		n := c.Replaces.Nonce
		c.Nonce, c.Kind, c.Source = &n, c.Replaces.Kind, c.Replaces.Source
		if c.CorrelationID == "" {
			c.CorrelationID = c.Replaces.CorrelationID
		}
	}
	if main, ok := s.d.MainAccounts[c.Chain]; ok && main == c.From && !MainAccountKinds[c.Kind] {
		return nil, txerr.Permanentf(txerr.InvalidTransaction, "%s from %s on %s refused: the main account signs only top-ups",
			c.Kind, c.From, c.Chain)
	}
	if c.Nonce == nil && (s.d.Nonces == nil || c.Node == nil) {
		return nil, fmt.Errorf("txsend: %s from %s needs a nonce allocator and a node", c.Kind, c.From)
	}
	if c.Value == nil {
		c.Value = new(big.Int)
	}
	signer, err := s.d.Keys.Signer(ctx, c.From)
	if err != nil {
		return nil, fmt.Errorf("signer for %s: %w", c.From, err)
	}
	if c.Nonce != nil {
		return s.once(ctx, c, signer, nonce.Floors{})
	}
	for attempt := 0; attempt <= maxNonceRetries; attempt++ {
		floors, err := s.floors(ctx, c)
		if err != nil {
			return nil, err
		}
		st, err := s.once(ctx, c, signer, floors)
		if !errors.Is(err, errNonceRecorded) {
			return st, err
		}
	}
	return nil, txerr.New(txerr.NonceTooLow, "nonce_retries", fmt.Errorf("%s from %s: every allocated nonce was already recorded", c.Kind, c.From))
}

// floors is what a new nonce of c.From must not go below: the chain's mined count, and the next nonce
// after both the node's pending pool and our own recorded transactions.
func (s *Sender) floors(ctx context.Context, c Candidate) (nonce.Floors, error) {
	mined, err := c.Node.NonceAt(ctx, c.From)
	if err != nil {
		return nonce.Floors{}, fmt.Errorf("mined nonce of %s: %w", c.From, err)
	}
	pending, err := c.Node.PendingNonceAt(ctx, c.From)
	if err != nil {
		return nonce.Floors{}, fmt.Errorf("pending nonce of %s: %w", c.From, err)
	}
	recorded, err := s.d.Store.NextNonce(ctx, c.ChainID, c.From.Hex())
	if err != nil {
		return nonce.Floors{}, err
	}
	return nonce.Floors{Mined: mined, Next: max(pending, recorded)}, nil
}

// once runs one database transaction: lock, lease (unless the nonce is fixed), sign, record, queue.
func (s *Sender) once(ctx context.Context, c Candidate, signer keys.Signer, floors nonce.Floors) (*store.SentTx, error) {
	var (
		lease     *nonce.Lease
		st        *store.SentTx
		persisted bool
	)
	defer func() {
		if lease != nil && !persisted {
			if err := lease.Release(context.WithoutCancel(ctx)); err != nil {
				s.log.Warn("release nonce lease", "nonce", lease.Nonce, "err", err)
			}
		}
	}()
	chainID := new(big.Int).SetUint64(c.ChainID)
	err := s.d.Store.InTx(ctx, func(dbtx *sql.Tx) error {
		if c.Lock != nil {
			if err := c.Lock(ctx, dbtx); err != nil {
				return err
			}
		}
		var n uint64
		switch {
		case c.Nonce != nil:
			n = *c.Nonce
		case lease != nil: // kept across a deadlock retry of this transaction
			n = lease.Nonce
		default:
			l, err := s.d.Nonces.AllocateFor(ctx, c.ChainID, c.From, floors, c.LeaseHolder)
			if err != nil {
				return fmt.Errorf("allocate nonce for %s: %w", c.From, err)
			}
			lease, n = &l, l.Nonce
		}
		tx, err := signer.SignTx(ctx, types.NewTx(&types.DynamicFeeTx{
			ChainID: chainID, Nonce: n, GasTipCap: c.Fees.MaxPriorityFee, GasFeeCap: c.Fees.MaxFeePerGas,
			Gas: c.Gas, To: &c.To, Value: c.Value, Data: c.Data,
		}), chainID)
		if err != nil {
			return fmt.Errorf("sign %s from %s nonce %d: %w", c.Kind, c.From, n, err)
		}
		raw, err := tx.MarshalBinary()
		if err != nil {
			return fmt.Errorf("encode tx %s: %w", tx.Hash(), err)
		}
		st = &store.SentTx{
			Chain: c.Chain, ChainID: c.ChainID, From: c.From.Hex(), Nonce: n, To: c.To.Hex(),
			Hash: tx.Hash().Hex(), Raw: raw, GasLimit: c.Gas, MaxFeePerGas: c.Fees.MaxFeePerGas, MaxPriorityFee: c.Fees.MaxPriorityFee,
			Kind: c.Kind, Source: c.Source, RequestID: c.RequestID, CorrelationID: c.CorrelationID,
		}
		if c.Replaces != nil {
			st.ID = c.Replaces.ID
			if err := s.d.Store.ReplaceAttempt(ctx, dbtx, st, c.Replaces.Hash, c.Replaces.Status); err != nil {
				return err
			}
		} else if _, err := s.d.Store.InsertSentTx(ctx, dbtx, st); err != nil {
			return err
		}
		if c.Record != nil {
			if err := c.Record(ctx, dbtx, st); err != nil {
				return err
			}
		}
		if c.Unqueued {
			return nil
		}
		return QueueSigned(ctx, s.d.Queue, dbtx, st)
	})
	switch {
	case err == nil:
		persisted = true
		if lease != nil {
			if err := lease.Commit(ctx); err != nil {
				// The row is persisted: a reclaim of this lease fails on the unique nonce and is committed then.
				s.log.Warn("commit nonce lease", "nonce", st.Nonce, "err", err)
			}
		}
		return st, nil
	case errors.Is(err, store.ErrNonceTaken) && lease != nil:
		persisted = true // the nonce is used by a recorded tx: it must not be handed out again
		if err := lease.Commit(ctx); err != nil {
			s.log.Warn("commit nonce lease of a recorded nonce", "nonce", lease.Nonce, "err", err)
		}
		s.log.Warn("allocated nonce already recorded; allocating again", "nonce", lease.Nonce, "from", c.From)
		return nil, errNonceRecorded
	}
	return nil, err
}

// QueueSigned queues the signed-tx message of st inside tx, in its address's ordering group.
func QueueSigned(ctx context.Context, q queue.TxSender, tx *sql.Tx, st *store.SentTx) error {
	body, err := queue.NewEnvelope(ctx, queue.TypeTxSigned, queue.NewID(), st.CorrelationID, queue.TxSigned{
		SentTxID: st.ID, Chain: st.Chain, From: st.From, Nonce: st.Nonce, Hash: st.Hash,
	})
	if err != nil {
		return err
	}
	return q.SendTx(ctx, tx, queue.SignedTx, body, queue.SendOptions{GroupID: queue.GroupID(st.Chain, st.From)})
}

// ReplacementOf is the candidate of a new attempt of st with fees f: the same sender, nonce, call and gas,
// read back from the recorded raw transaction.
func ReplacementOf(st *store.SentTx, f fees.Fees) (Candidate, error) {
	tx := new(types.Transaction)
	if err := tx.UnmarshalBinary(st.Raw); err != nil {
		return Candidate{}, txerr.New(txerr.InvalidTransaction, "bad_raw_tx", fmt.Errorf("decode sent tx %d: %w", st.ID, err))
	}
	if tx.To() == nil {
		return Candidate{}, txerr.Permanentf(txerr.InvalidTransaction, "sent tx %d creates a contract: not replaced", st.ID)
	}
	if tx.Nonce() != st.Nonce {
		return Candidate{}, txerr.Permanentf(txerr.InvalidTransaction, "sent tx %d: raw nonce %d, recorded %d", st.ID, tx.Nonce(), st.Nonce)
	}
	return Candidate{
		Chain: st.Chain, ChainID: st.ChainID, From: common.HexToAddress(st.From), To: *tx.To(), Value: tx.Value(),
		Data: tx.Data(), Gas: tx.Gas(), Fees: f, CorrelationID: st.CorrelationID, Replaces: st,
	}, nil
}
