package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"
)

// Status is a withdrawal's lifecycle state.
type Status string

// The lifecycle: [AWAITING_APPROVAL →] PENDING → SIGNING → SIGNED → BROADCASTED → CONFIRMED, or FAILED /
// CANCELED. A withdrawal the policy holds (internal/policy) starts in AWAITING_APPROVAL, with no tx-request
// message: approvers release it to PENDING (and the message is sent then) or reject it to CANCELED.
// One transition leaves CONFIRMED: CONFIRMED → BROADCASTED (reason "reorged: …", by recovery), when the
// confirming block left the canonical chain deeper than the confirmation depth (ReopenReorged, the
// only writer of that transition); the transaction is then followed to depth again.
const (
	AwaitingApproval Status = "AWAITING_APPROVAL"
	Pending          Status = "PENDING"
	Signing          Status = "SIGNING"
	Signed           Status = "SIGNED"
	Broadcasted      Status = "BROADCASTED"
	Confirmed        Status = "CONFIRMED"
	Failed           Status = "FAILED"
	Canceled         Status = "CANCELED"
)

// Terminal reports whether no further transition can happen, but for a deep reorg re-opening a
// CONFIRMED withdrawal (ReopenReorged).
func (s Status) Terminal() bool { return s == Confirmed || s == Failed || s == Canceled }

// ValidStatus reports whether s names a status.
func ValidStatus(s string) bool {
	switch Status(s) {
	case AwaitingApproval, Pending, Signing, Signed, Broadcasted, Confirmed, Failed, Canceled:
		return true
	}
	return false
}

// Withdrawal is a withdrawal row, with the nonce and hash of the transaction paying it when there is one.
type Withdrawal struct {
	ID            string
	ClientID      int64
	ExternalID    string
	RequestHash   []byte
	Chain         string
	Asset         string
	To            string
	Amount        *big.Int // base units
	Status        Status
	Version       int
	From          string
	SentTxID      *int64
	BatchID       string
	BlockNumber   *uint64
	ErrorType     string
	ErrorMessage  string
	CorrelationID string
	// Traceparent is the W3C trace context of the request that accepted the withdrawal; empty when
	// tracing was off.
	Traceparent string
	// Waiting says why a PENDING withdrawal is not being signed when the cause is outside Sluice
	// (WaitingAwaitingFunds), "" otherwise; WaitingSince is when that wait began. Both are cleared
	// when the withdrawal is signed or ends.
	Waiting      string
	WaitingSince *time.Time
	CreatedAt    time.Time
	UpdatedAt    time.Time

	Nonce  *uint64
	TxHash string
}

const withdrawalCols = `w.id, w.client_id, w.external_id, w.request_hash, w.chain, w.asset, w.to_address, w.amount,
	w.status, w.version, w.from_address, w.sent_tx_id, w.batch_id, w.block_number, w.error_type, w.error_message,
	w.correlation_id, w.traceparent, w.waiting, w.waiting_since, w.created_at, w.updated_at, t.nonce, t.tx_hash`

const withdrawalFrom = ` FROM withdrawals w LEFT JOIN sent_transactions t ON t.id = w.sent_tx_id`

type scanner interface{ Scan(...any) error }

func scanWithdrawal(r scanner) (*Withdrawal, error) {
	var (
		w                                  Withdrawal
		amount                             string
		from, batch, errType, errMsg, hash sql.NullString
		traceparent, waiting               sql.NullString
		waitingSince                       sql.NullTime
		sentTx                             sql.NullInt64
		block, nonce                       sql.NullInt64
	)
	if err := r.Scan(&w.ID, &w.ClientID, &w.ExternalID, &w.RequestHash, &w.Chain, &w.Asset, &w.To, &amount,
		&w.Status, &w.Version, &from, &sentTx, &batch, &block, &errType, &errMsg,
		&w.CorrelationID, &traceparent, &waiting, &waitingSince, &w.CreatedAt, &w.UpdatedAt, &nonce, &hash); err != nil {
		return nil, err
	}
	var ok bool
	if w.Amount, ok = new(big.Int).SetString(amount, 10); !ok {
		return nil, fmt.Errorf("withdrawal %s: bad stored amount %q", w.ID, amount)
	}
	w.From, w.BatchID, w.ErrorType, w.ErrorMessage, w.TxHash = from.String, batch.String, errType.String, errMsg.String, hash.String
	w.Traceparent, w.Waiting = traceparent.String, waiting.String
	if waitingSince.Valid {
		t := waitingSince.Time
		w.WaitingSince = &t
	}
	if sentTx.Valid {
		w.SentTxID = &sentTx.Int64
	}
	if block.Valid {
		b := uint64(block.Int64)
		w.BlockNumber = &b
	}
	if nonce.Valid {
		n := uint64(nonce.Int64)
		w.Nonce = &n
	}
	return &w, nil
}

// CreateWithdrawal inserts w as PENDING with its first history row and, in the same transaction, calls
// enqueue so the tx-request message commits with the row. When (client, external_id) exists already it
// returns that withdrawal and created=false; concurrent identical posts thus make one withdrawal.
func (s *Store) CreateWithdrawal(ctx context.Context, w *Withdrawal, enqueue func(tx *sql.Tx) error) (*Withdrawal, bool, error) {
	return s.CreateWithdrawalChecked(ctx, w, nil, func(tx *sql.Tx, _ Status) error { return enqueue(tx) })
}

// Admission is what the policy decides for a new withdrawal: the status it starts in (PENDING, or
// AWAITING_APPROVAL with the reason and the number of distinct approvers that release it).
type Admission struct {
	Status            Status
	Reason            string
	RequiredApprovals int
	// Finish, when set, runs last in the create transaction, after the withdrawal, its history and its
	// message are written: what it locks (a policy row, to consume a limit) is then held only for its own
	// statements and the commit. An error from it rolls everything back as admit's would; ErrStale has
	// the whole create run again from admit.
	Finish func(tx *sql.Tx) error
}

// ErrStale is returned by an Admission's Finish when what admit decided on changed before Finish
// locked it: the create is run again from the start.
var ErrStale = errors.New("admission decided on stale data")

// CreateWithdrawalChecked is CreateWithdrawal with admit run first inside the transaction (nil admits
// as PENDING) and its Admission's Finish run last: together they may lock rows to consume limits
// atomically with the insert, and their error rolls everything back and is returned as is (wrapped),
// unless (client, external_id) exists already, which is a replay and returns that withdrawal,
// created=false. enqueue is told the admitted status.
func (s *Store) CreateWithdrawalChecked(ctx context.Context, w *Withdrawal, admit func(tx *sql.Tx) (Admission, error),
	enqueue func(tx *sql.Tx, st Status) error) (*Withdrawal, bool, error) {
	for attempt := 0; ; attempt++ {
		got, created, err := s.createChecked(ctx, w, admit, enqueue)
		if errors.Is(err, ErrStale) && attempt < 3 {
			continue
		}
		return got, created, err
	}
}

func (s *Store) createChecked(ctx context.Context, w *Withdrawal, admit func(tx *sql.Tx) (Admission, error),
	enqueue func(tx *sql.Tx, st Status) error) (*Withdrawal, bool, error) {
	// The row is fully known here (timestamps included), so a new withdrawal is returned as inserted
	// without reading it back: the create path is the API's hot path.
	now := time.Now().UTC().Truncate(time.Microsecond)
	adm := Admission{Status: Pending}
	var admitErr error
	err := s.InTx(ctx, func(tx *sql.Tx) error {
		admitErr = nil
		if admit != nil {
			a, err := admit(tx)
			if err != nil {
				admitErr = err
				return err
			}
			adm = a
		}
		if adm.Status != Pending && adm.Status != AwaitingApproval {
			return fmt.Errorf("admission to %s: a withdrawal starts PENDING or AWAITING_APPROVAL", adm.Status)
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO withdrawals (id, client_id, external_id, request_hash, chain, asset,
			to_address, to_edge, amount, status, correlation_id, traceparent, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,NULLIF(?, ''),?,?)`,
			w.ID, w.ClientID, w.ExternalID, w.RequestHash, w.Chain, w.Asset, w.To, AddressEdge(w.To), w.Amount.String(), adm.Status, w.CorrelationID, w.Traceparent, now, now)
		if err != nil {
			return err
		}
		reason := "accepted"
		if adm.Status == AwaitingApproval {
			reason = "held for approval: " + adm.Reason
			if _, err := tx.ExecContext(ctx, `INSERT INTO withdrawal_holds (withdrawal_id, required_approvals, reason) VALUES (?,?,?)`,
				w.ID, max(adm.RequiredApprovals, 1), truncate(adm.Reason, 255)); err != nil {
				return fmt.Errorf("hold of %s: %w", w.ID, err)
			}
		}
		if err := s.addHistory(ctx, tx, w.ID, "", adm.Status, reason, ActorAPI,
			&Transitioned{Chain: w.Chain, Asset: w.Asset, CreatedAt: now}); err != nil {
			return err
		}
		if adm.Status == AwaitingApproval {
			if err := emitEvent(ctx, tx, w.ID, "", adm.Status, adm.Reason); err != nil {
				return err
			}
		}
		if err := enqueue(tx, adm.Status); err != nil {
			return err
		}
		if adm.Finish != nil {
			if err := adm.Finish(tx); err != nil {
				admitErr = err
				return err
			}
		}
		return nil
	})
	if err == nil {
		created := *w
		created.Status, created.Version, created.CreatedAt, created.UpdatedAt = adm.Status, 0, now, now
		return &created, true, nil
	}
	if errors.Is(err, ErrStale) {
		return nil, false, err
	}
	if admitErr != nil {
		// A refused replay of an accepted withdrawal is still a replay: the limits it consumed are its own.
		if got, gerr := s.WithdrawalByExternalID(ctx, w.ClientID, w.ExternalID); gerr == nil {
			return got, false, nil
		}
		return nil, false, fmt.Errorf("admit withdrawal %s: %w", w.ExternalID, err)
	}
	if !IsDuplicate(err) {
		return nil, false, fmt.Errorf("create withdrawal %s: %w", w.ExternalID, err)
	}
	got, err := s.WithdrawalByExternalID(ctx, w.ClientID, w.ExternalID)
	if err != nil {
		return nil, false, fmt.Errorf("load replayed withdrawal %s: %w", w.ExternalID, err)
	}
	return got, false, nil
}

// AddressEdge is the first and last four hex characters of a 0x address, lower-cased (withdrawals.to_edge,
// which the address-poisoning check looks up); "" for anything else.
func AddressEdge(a string) string {
	if len(a) != 42 {
		return ""
	}
	return strings.ToLower(a[2:6] + a[38:])
}

// GetWithdrawal loads one withdrawal by id.
func (s *Store) GetWithdrawal(ctx context.Context, id string) (*Withdrawal, error) {
	return s.oneWithdrawal(ctx, s.DB, ` WHERE w.id = ?`, id)
}

// WithdrawalByExternalID loads a client's withdrawal by its external id.
func (s *Store) WithdrawalByExternalID(ctx context.Context, clientID int64, externalID string) (*Withdrawal, error) {
	return s.oneWithdrawal(ctx, s.DB, ` WHERE w.client_id = ? AND w.external_id = ?`, clientID, externalID)
}

// LockWithdrawal loads a withdrawal inside tx with a row lock, for read-modify-write sequences.
func (s *Store) LockWithdrawal(ctx context.Context, tx *sql.Tx, id string) (*Withdrawal, error) {
	return s.oneWithdrawal(ctx, tx, ` WHERE w.id = ? FOR UPDATE`, id)
}

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

func (s *Store) oneWithdrawal(ctx context.Context, q querier, where string, args ...any) (*Withdrawal, error) {
	w, err := scanWithdrawal(q.QueryRowContext(ctx, `SELECT `+withdrawalCols+withdrawalFrom+where, args...))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("load withdrawal: %w", err)
	}
	return w, nil
}

// ListFilter selects withdrawals for listing. Cursor is the id of the last row of the previous page.
type ListFilter struct {
	ClientID int64
	Status   Status
	Chain    string
	Asset    string
	// CreatedFrom (inclusive) and CreatedTo (exclusive) bound created_at; zero is unbounded.
	CreatedFrom time.Time
	CreatedTo   time.Time
	Limit       int
	Cursor      string
}

// ListWithdrawals returns a page of a client's withdrawals, newest first.
func (s *Store) ListWithdrawals(ctx context.Context, f ListFilter) ([]*Withdrawal, error) {
	where := []string{"w.client_id = ?"}
	args := []any{f.ClientID}
	if f.Status != "" {
		where = append(where, "w.status = ?")
		args = append(args, f.Status)
	}
	if f.Chain != "" {
		where = append(where, "w.chain = ?")
		args = append(args, f.Chain)
	}
	if f.Asset != "" {
		where = append(where, "w.asset = ?")
		args = append(args, f.Asset)
	}
	if !f.CreatedFrom.IsZero() {
		where = append(where, "w.created_at >= ?")
		args = append(args, f.CreatedFrom.UTC())
	}
	if !f.CreatedTo.IsZero() {
		where = append(where, "w.created_at < ?")
		args = append(args, f.CreatedTo.UTC())
	}
	if f.Cursor != "" {
		// ids are time-ordered (UUIDv7), so id order is creation order.
		where = append(where, "w.id < ?")
		args = append(args, f.Cursor)
	}
	args = append(args, f.Limit)
	rows, err := s.DB.QueryContext(ctx, `SELECT `+withdrawalCols+withdrawalFrom+` WHERE `+strings.Join(where, " AND ")+
		` ORDER BY w.id DESC LIMIT ?`, args...)
	if err != nil {
		return nil, fmt.Errorf("list withdrawals: %w", err)
	}
	defer rows.Close()
	var out []*Withdrawal
	for rows.Next() {
		w, err := scanWithdrawal(rows)
		if err != nil {
			return nil, fmt.Errorf("list withdrawals: %w", err)
		}
		out = append(out, w)
	}
	return out, rows.Err()
}

// Change is what a transition sets besides the status. Nil fields are left as they are.
type Change struct {
	From         *string
	SentTxID     *int64
	BatchID      *string
	BlockNumber  *uint64
	ErrorType    *string
	ErrorMessage *string
	// ClearBlock empties block_number: the block it named left the chain (a deep reorg).
	ClearBlock bool
}

// Actor is who made a withdrawal's change, as its history records it: a service or an operator.
type Actor string

// The actors.
const (
	ActorAPI         Actor = "api"
	ActorSigner      Actor = "signer"
	ActorBroadcaster Actor = "broadcaster"
	ActorMonitor     Actor = "monitor"
	ActorRecovery    Actor = "recovery"
	ActorOperator    Actor = "operator"
	// ActorApprover is an API key with the withdrawals:approve scope releasing or rejecting a held
	// withdrawal; the history reason names the key.
	ActorApprover Actor = "approver"
)

// Transition moves withdrawal id from status from to status to inside tx, only if it is still in from,
// and records the reason and, for the changes clients hear of, the webhook event (the outbox: it commits
// with the change or not at all). It returns ErrConflict when another worker moved it first.
func (s *Store) Transition(ctx context.Context, tx *sql.Tx, id string, from, to Status, reason string, actor Actor, c Change) error {
	set := []string{"status = ?", "version = version + 1"}
	args := []any{to}
	add := func(col string, v any) {
		set = append(set, col+" = ?")
		args = append(args, v)
	}
	if c.From != nil {
		add("from_address", *c.From)
	}
	if c.SentTxID != nil {
		add("sent_tx_id", *c.SentTxID)
	}
	if c.BatchID != nil {
		add("batch_id", *c.BatchID)
	}
	if c.BlockNumber != nil {
		add("block_number", *c.BlockNumber)
	}
	if c.ClearBlock {
		add("block_number", nil)
	}
	if to != Pending && to != Signing {
		// Signed or ended: whatever it waited for is over (a claim keeps it: a released claim waits on).
		add("waiting", nil)
		add("waiting_since", nil)
	}
	if c.ErrorType != nil {
		add("error_type", *c.ErrorType)
	}
	if c.ErrorMessage != nil {
		add("error_message", *c.ErrorMessage)
	}
	args = append(args, id, from)
	res, err := tx.ExecContext(ctx, `UPDATE withdrawals SET `+strings.Join(set, ", ")+` WHERE id = ? AND status = ?`, args...)
	if err != nil {
		return fmt.Errorf("withdrawal %s %s→%s: %w", id, from, to, err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return fmt.Errorf("withdrawal %s %s→%s: %w", id, from, to, ErrConflict)
	}
	if err := s.addHistory(ctx, tx, id, from, to, reason, actor, nil); err != nil {
		return err
	}
	if to == Failed || to == Canceled {
		if err := releaseLimits(ctx, tx, id); err != nil {
			return err
		}
	}
	return emitEvent(ctx, tx, id, from, to, reason)
}

// releaseLimits gives back what withdrawal id took of its client's rolling 24 h total (internal/policy)
// when it fails or is canceled: nothing was paid, so nothing counts. The consumption row is deleted, so a
// withdrawal is released at most once.
func releaseLimits(ctx context.Context, tx *sql.Tx, id string) error {
	var (
		client               int64
		chain, asset, amount string
		bucket               time.Time
	)
	err := tx.QueryRowContext(ctx, `SELECT client_id, chain, asset, bucket, CAST(amount AS CHAR) FROM policy_consumptions
		WHERE withdrawal_id = ? FOR UPDATE`, id).Scan(&client, &chain, &asset, &bucket, &amount)
	if errors.Is(err, sql.ErrNoRows) {
		return nil // it took nothing: created before its client had limits
	}
	if err != nil {
		return fmt.Errorf("release limits of %s: %w", id, err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE policy_usage SET amount = amount - CAST(? AS DECIMAL(65,0)) WHERE client_id = ? AND chain = ? AND asset = ? AND bucket = ?`,
		amount, client, chain, asset, bucket); err != nil {
		return fmt.Errorf("release limits of %s: %w", id, err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM policy_consumptions WHERE withdrawal_id = ?`, id); err != nil {
		return fmt.Errorf("release limits of %s: %w", id, err)
	}
	return nil
}

// addHistory records a status change of withdrawal id made in tx: every change passes here, so it is
// also where the change is noted for the Observer (known: the withdrawal's labels, when at hand).
func (s *Store) addHistory(ctx context.Context, tx *sql.Tx, id string, from, to Status, reason string, actor Actor, known *Transitioned) error {
	var f any
	if from != "" {
		f = from
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO withdrawal_history (withdrawal_id, from_status, to_status, reason, actor)
		VALUES (?,?,?,?,?)`, id, f, to, reason, actor); err != nil {
		return fmt.Errorf("history of %s: %w", id, err)
	}
	return s.note(ctx, tx, id, from, to, known)
}

// HistoryEntry is one recorded transition.
type HistoryEntry struct {
	From      Status
	To        Status
	Reason    string
	Actor     Actor
	CreatedAt time.Time
}

// History returns a withdrawal's transitions, oldest first.
func (s *Store) History(ctx context.Context, id string) ([]HistoryEntry, error) {
	rows, err := s.DB.QueryContext(ctx, `SELECT COALESCE(from_status,''), to_status, reason, actor, created_at
		FROM withdrawal_history WHERE withdrawal_id = ? ORDER BY id`, id)
	if err != nil {
		return nil, fmt.Errorf("history of %s: %w", id, err)
	}
	defer rows.Close()
	var out []HistoryEntry
	for rows.Next() {
		var h HistoryEntry
		if err := rows.Scan(&h.From, &h.To, &h.Reason, &h.Actor, &h.CreatedAt); err != nil {
			return nil, err
		}
		out = append(out, h)
	}
	return out, rows.Err()
}

// WithdrawalsBySentTx returns the withdrawals a sent transaction pays.
func (s *Store) WithdrawalsBySentTx(ctx context.Context, q querier, sentTxID int64) ([]*Withdrawal, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+withdrawalCols+withdrawalFrom+` WHERE w.sent_tx_id = ? ORDER BY w.id`, sentTxID)
	if err != nil {
		return nil, fmt.Errorf("withdrawals of tx %d: %w", sentTxID, err)
	}
	defer rows.Close()
	var out []*Withdrawal
	for rows.Next() {
		w, err := scanWithdrawal(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, w)
	}
	return out, rows.Err()
}
