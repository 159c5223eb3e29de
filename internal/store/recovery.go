package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// TxConflicted is the status of a sent transaction whose nonce a transaction Sluice did not sign took,
// final at the confirmation depth: none of its attempts can ever be mined, so nothing resends it.
const TxConflicted = "CONFLICTED"

// Decision is one audited decision of the recovery service (recovery_decisions).
type Decision struct {
	Queue         string
	MessageID     string
	Action        string
	ErrorType     string
	ErrorCode     string
	Reason        string
	WithdrawalIDs []string
	SentTxID      *int64
	// Done marks the decision that finishes the DLQ message (Queue, MessageID): only one such decision
	// can be recorded per message; a second is ErrConflict.
	Done bool
}

// DoneKey is the done_key of the finishing decision of a DLQ message.
func DoneKey(queue, messageID string) string { return queue + ":" + messageID }

// RecordDecision writes d inside tx. A second finishing decision for the same message is ErrConflict.
func (s *Store) RecordDecision(ctx context.Context, tx *sql.Tx, d Decision) error {
	var done, ids any
	if d.Done {
		done = DoneKey(d.Queue, d.MessageID)
	}
	if len(d.WithdrawalIDs) > 0 {
		ids = strings.Join(d.WithdrawalIDs, ",")
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO recovery_decisions (queue, message_id, action, error_type, error_code, reason,
		withdrawal_ids, sent_tx_id, done_key) VALUES (?,?,?,?,?,?,?,?,?)`,
		d.Queue, d.MessageID, d.Action, d.ErrorType, d.ErrorCode, d.Reason, ids, d.SentTxID, done)
	if IsDuplicate(err) {
		return fmt.Errorf("decision %s on %s/%s: %w", d.Action, d.Queue, d.MessageID, ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("record decision %s on %s/%s: %w", d.Action, d.Queue, d.MessageID, err)
	}
	return nil
}

// DecisionTaken reports whether the finishing decision of DLQ message (queue, messageID) is recorded,
// and which action it was.
func (s *Store) DecisionTaken(ctx context.Context, queue, messageID string) (string, bool, error) {
	var action string
	err := s.DB.QueryRowContext(ctx, `SELECT action FROM recovery_decisions WHERE done_key = ?`, DoneKey(queue, messageID)).Scan(&action)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("decision on %s/%s: %w", queue, messageID, err)
	}
	return action, true, nil
}

// Decisions lists the decisions recorded about DLQ message (queue, messageID), oldest first; an empty
// messageID lists every decision of the queue.
func (s *Store) Decisions(ctx context.Context, queue, messageID string) ([]Decision, error) {
	q := `SELECT queue, message_id, action, error_type, error_code, reason, COALESCE(withdrawal_ids,''), sent_tx_id, done_key IS NOT NULL
		FROM recovery_decisions WHERE queue = ?`
	args := []any{queue}
	if messageID != "" {
		q += ` AND message_id = ?`
		args = append(args, messageID)
	}
	rows, err := s.DB.QueryContext(ctx, q+` ORDER BY id`, args...)
	if err != nil {
		return nil, fmt.Errorf("decisions on %s/%s: %w", queue, messageID, err)
	}
	defer rows.Close()
	var out []Decision
	for rows.Next() {
		var (
			d   Decision
			ids string
			st  sql.NullInt64
		)
		if err := rows.Scan(&d.Queue, &d.MessageID, &d.Action, &d.ErrorType, &d.ErrorCode, &d.Reason, &ids, &st, &d.Done); err != nil {
			return nil, err
		}
		if ids != "" {
			d.WithdrawalIDs = strings.Split(ids, ",")
		}
		if st.Valid {
			d.SentTxID = &st.Int64
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// Redrives returns how often the work message with envelope id envID was redriven from a DLQ, and when
// last (zero when never).
func (s *Store) Redrives(ctx context.Context, envID string) (int, time.Time, error) {
	var (
		n    int
		last time.Time
	)
	err := s.DB.QueryRowContext(ctx, `SELECT redrives, last_at FROM dlq_redrives WHERE envelope_id = ?`, envID).Scan(&n, &last)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, time.Time{}, nil
	}
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("redrives of %s: %w", envID, err)
	}
	return n, last, nil
}

// CountRedrive adds one redrive of envelope envID (to queue) inside tx.
func (s *Store) CountRedrive(ctx context.Context, tx *sql.Tx, envID, queue string) error {
	if _, err := tx.ExecContext(ctx, `INSERT INTO dlq_redrives (envelope_id, queue, redrives, last_at) VALUES (?,?,1,UTC_TIMESTAMP(6))
		ON DUPLICATE KEY UPDATE redrives = redrives + 1, last_at = UTC_TIMESTAMP(6)`, envID, queue); err != nil {
		return fmt.Errorf("count redrive of %s: %w", envID, err)
	}
	return nil
}

// Parked is a DLQ message left for a person.
type Parked struct {
	ID         int64
	Queue      string
	MessageID  string
	Body       []byte
	ErrorType  string
	Reason     string
	CreatedAt  time.Time
	ResolvedAt *time.Time
}

// Park keeps a DLQ message for a person inside tx; parking the same message again changes nothing.
func (s *Store) Park(ctx context.Context, tx *sql.Tx, p Parked) error {
	if _, err := tx.ExecContext(ctx, `INSERT INTO dlq_parked (queue, message_id, body, error_type, reason) VALUES (?,?,?,?,?)
		ON DUPLICATE KEY UPDATE id = id`, p.Queue, p.MessageID, p.Body, p.ErrorType, p.Reason); err != nil {
		return fmt.Errorf("park %s/%s: %w", p.Queue, p.MessageID, err)
	}
	return nil
}

// ParkedMessages lists the parked messages not yet resolved, oldest first.
func (s *Store) ParkedMessages(ctx context.Context) ([]Parked, error) {
	rows, err := s.DB.QueryContext(ctx, `SELECT id, queue, message_id, body, error_type, reason, created_at, resolved_at
		FROM dlq_parked WHERE resolved_at IS NULL ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("parked messages: %w", err)
	}
	defer rows.Close()
	var out []Parked
	for rows.Next() {
		var (
			p   Parked
			res sql.NullTime
		)
		if err := rows.Scan(&p.ID, &p.Queue, &p.MessageID, &p.Body, &p.ErrorType, &p.Reason, &p.CreatedAt, &res); err != nil {
			return nil, err
		}
		if res.Valid {
			p.ResolvedAt = &res.Time
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// LockSentTx loads a sent transaction inside tx with a row lock.
func (s *Store) LockSentTx(ctx context.Context, tx *sql.Tx, id int64) (*SentTx, error) {
	t, err := scanSentTx(tx.QueryRowContext(ctx, `SELECT `+sentTxCols+` FROM sent_transactions WHERE id = ? FOR UPDATE`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("lock sent tx %d: %w", id, err)
	}
	return t, nil
}

// InFlightBelow lists the sent transactions of (chainID, from) not yet settled (SIGNED or BROADCASTED)
// with a nonce below nonce, lowest first: with the chain's mined nonce past them, each was either mined
// (ours) or taken by something else.
func (s *Store) InFlightBelow(ctx context.Context, chainID uint64, from string, nonce uint64) ([]*SentTx, error) {
	rows, err := s.DB.QueryContext(ctx, `SELECT `+sentTxCols+` FROM sent_transactions
		WHERE chain_id = ? AND from_address = ? AND nonce < ? AND status IN (?, ?) ORDER BY nonce`, chainID, from, nonce, TxSigned, TxBroadcasted)
	if err != nil {
		return nil, fmt.Errorf("in-flight txs of %s below %d: %w", from, nonce, err)
	}
	defer rows.Close()
	var out []*SentTx
	for rows.Next() {
		t, err := scanSentTx(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// NonceConflict is a nonce of ours taken, for good, by a transaction Sluice did not sign.
type NonceConflict struct {
	Chain        string
	ChainID      uint64
	From         string
	Nonce        uint64
	SentTxID     int64
	ForeignHash  string
	ForeignBlock uint64
}

// RecordNonceConflict marks sent transaction c.SentTxID CONFLICTED (from SIGNED or BROADCASTED) and
// records the conflict, inside tx. ErrConflict when the transaction was settled or marked meanwhile.
func (s *Store) RecordNonceConflict(ctx context.Context, tx *sql.Tx, c NonceConflict) error {
	res, err := tx.ExecContext(ctx, `UPDATE sent_transactions SET status = ? WHERE id = ? AND status IN (?, ?)`,
		TxConflicted, c.SentTxID, TxSigned, TxBroadcasted)
	if err != nil {
		return fmt.Errorf("mark sent tx %d conflicted: %w", c.SentTxID, err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return fmt.Errorf("mark sent tx %d conflicted: %w", c.SentTxID, ErrConflict)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO nonce_conflicts (chain, chain_id, from_address, nonce, sent_tx_id, foreign_hash, foreign_block)
		VALUES (?,?,?,?,?,?,?)`, c.Chain, c.ChainID, c.From, c.Nonce, c.SentTxID, c.ForeignHash, c.ForeignBlock); err != nil {
		if IsDuplicate(err) {
			return fmt.Errorf("nonce conflict %s/%d: %w", c.From, c.Nonce, ErrConflict)
		}
		return fmt.Errorf("record nonce conflict %s/%d: %w", c.From, c.Nonce, err)
	}
	// A top-up or sweep it carried can never be paid by it now: FAILED, so the next balance check
	// answers the account's band afresh.
	if _, err := tx.ExecContext(ctx, `UPDATE balance_transfers SET status = ?, reason = ? WHERE sent_tx_id = ? AND status = ?`,
		TransferFailed, "nonce taken by foreign tx "+c.ForeignHash, c.SentTxID, TransferSigned); err != nil {
		return fmt.Errorf("balance transfers of conflicted sent tx %d: %w", c.SentTxID, err)
	}
	return nil
}

// RowQuerier reads one row: a *sql.DB or a *sql.Tx.
type RowQuerier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// Freeze is a hot wallet the signer must not use.
type Freeze struct {
	ID         int64
	Chain      string
	Address    string
	Reason     string
	FrozenAt   time.Time
	FrozenBy   string
	UnfrozenAt *time.Time
	UnfrozenBy string
}

// FreezeWallet freezes (chain, address) inside tx unless it is frozen already; it reports whether this
// call froze it.
func (s *Store) FreezeWallet(ctx context.Context, tx *sql.Tx, chain, address, reason, by string) (bool, error) {
	_, err := tx.ExecContext(ctx, `INSERT INTO wallet_freezes (chain, address, reason, frozen_by, active) VALUES (?,?,?,?,1)`,
		chain, address, reason, by)
	if IsDuplicate(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("freeze %s on %s: %w", address, chain, err)
	}
	return true, nil
}

// WalletFreeze returns the open freeze of (chain, address), or nil when the wallet is not frozen. q may
// be a transaction, so a signer checks in the transaction that records what it signs.
func (s *Store) WalletFreeze(ctx context.Context, q RowQuerier, chain, address string) (*Freeze, error) {
	var f Freeze
	err := q.QueryRowContext(ctx, `SELECT id, chain, address, reason, frozen_at, frozen_by FROM wallet_freezes
		WHERE chain = ? AND address = ? AND active = 1`, chain, address).Scan(&f.ID, &f.Chain, &f.Address, &f.Reason, &f.FrozenAt, &f.FrozenBy)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("freeze of %s on %s: %w", address, chain, err)
	}
	return &f, nil
}

// UnfreezeWallet lifts the open freeze of (chain, address), naming who did it and why; ErrNotFound when
// the wallet is not frozen. The withdrawals that waited are picked up again by the signer.
func (s *Store) UnfreezeWallet(ctx context.Context, chain, address, by, note string) error {
	res, err := s.DB.ExecContext(ctx, `UPDATE wallet_freezes SET active = NULL, unfrozen_at = UTC_TIMESTAMP(6), unfrozen_by = ?, unfreeze_note = ?
		WHERE chain = ? AND address = ? AND active = 1`, by, note, chain, address)
	if err != nil {
		return fmt.Errorf("unfreeze %s on %s: %w", address, chain, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("unfreeze %s on %s: %w", address, chain, ErrNotFound)
	}
	return nil
}

// NoteWaiting records, once, why PENDING withdrawals are not being signed (a PENDING → PENDING history
// row): withdrawal id of chain, or every PENDING withdrawal of chain when id is empty. A withdrawal whose
// latest history row already gives this reason gets nothing new, so a repeated wait writes one row.
func (s *Store) NoteWaiting(ctx context.Context, chain, id, reason string, actor Actor) error {
	q := `INSERT INTO withdrawal_history (withdrawal_id, from_status, to_status, reason, actor)
		SELECT w.id, ?, ?, ?, ? FROM withdrawals w WHERE w.chain = ? AND w.status = ?`
	args := []any{Pending, Pending, reason, actor, chain, Pending}
	if id != "" {
		q += ` AND w.id = ?`
		args = append(args, id)
	}
	q += ` AND NOT EXISTS (SELECT 1 FROM withdrawal_history h WHERE h.withdrawal_id = w.id AND h.reason = ?
		AND h.id = (SELECT MAX(h2.id) FROM withdrawal_history h2 WHERE h2.withdrawal_id = w.id))`
	args = append(args, reason)
	if _, err := s.DB.ExecContext(ctx, q, args...); err != nil {
		return fmt.Errorf("note why withdrawals of %s wait: %w", chain, err)
	}
	return nil
}
