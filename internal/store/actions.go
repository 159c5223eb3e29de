package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// Attempt kinds (tx_attempts.kind).
const (
	AttemptPayment = "payment" // the transaction as first signed, or a fee bump of it
	AttemptCancel  = "cancel"  // a zero-value self-transfer at the same nonce, replacing the payment
)

// ReasonCancelRequested is the history reason of a cancel asked for after signing.
const ReasonCancelRequested = "cancel_requested"

// Tx action kinds and statuses (tx_actions).
const (
	ActionSpeedUp = "speed_up"
	ActionCancel  = "cancel"
	// ActionCancelItem cancels one withdrawal out of a batch: the batch is replaced at its nonce by one
	// without that payment.
	ActionCancelItem = "cancel_item"

	ActionPending = "pending"
	ActionDone    = "done"
)

// TxAction is a client's request against a signed transaction, performed by recovery (which holds the
// keys the API does not).
type TxAction struct {
	ID           int64
	WithdrawalID string
	SentTxID     int64
	Chain        string
	Kind         string
	// BaseHash is the attempt current when the request was made: the action is done once that attempt
	// is no longer current, whoever replaced it.
	BaseHash  string
	Status    string
	Result    string
	CreatedAt time.Time
}

// RequestTxAction records a; the same (transaction, kind, base attempt, withdrawal) again is the earlier row, with
// created false. When note is set, a new action also writes a history row of the withdrawal in its
// current status (at) with that reason, in the same database transaction.
func (s *Store) RequestTxAction(ctx context.Context, a TxAction, note string, at Status, actor Actor) (*TxAction, bool, error) {
	var n int64
	err := s.InTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT IGNORE INTO tx_actions (withdrawal_id, sent_tx_id, chain, kind, base_hash)
			VALUES (?, ?, ?, ?, ?)`, a.WithdrawalID, a.SentTxID, a.Chain, a.Kind, a.BaseHash)
		if err != nil {
			return fmt.Errorf("record %s of sent tx %d: %w", a.Kind, a.SentTxID, err)
		}
		if n, err = res.RowsAffected(); err != nil || n == 0 || note == "" {
			return err
		}
		// Not a change of status: written directly, not through addHistory (which notes transitions).
		if _, err := tx.ExecContext(ctx, `INSERT INTO withdrawal_history (withdrawal_id, from_status, to_status, reason, actor)
			VALUES (?,?,?,?,?)`, a.WithdrawalID, at, at, note, actor); err != nil {
			return fmt.Errorf("history of %s: %w", a.WithdrawalID, err)
		}
		return nil
	})
	if err != nil {
		return nil, false, err
	}
	got, err := s.scanTxActions(ctx, `WHERE sent_tx_id = ? AND kind = ? AND base_hash = ? AND withdrawal_id = ?`, a.SentTxID, a.Kind, a.BaseHash, a.WithdrawalID)
	if err != nil {
		return nil, false, err
	}
	if len(got) != 1 {
		return nil, false, fmt.Errorf("%s of sent tx %d: recorded row not found", a.Kind, a.SentTxID)
	}
	return got[0], n == 1, nil
}

// PendingTxActions lists the pending actions of a chain, oldest first.
func (s *Store) PendingTxActions(ctx context.Context, chain string) ([]*TxAction, error) {
	return s.scanTxActions(ctx, `WHERE chain = ? AND status = ? ORDER BY id LIMIT 500`, chain, ActionPending)
}

// FinishTxAction marks a pending action done with its result; false when it was not pending any more
// (another recovery instance finished it).
func (s *Store) FinishTxAction(ctx context.Context, id int64, result string) (bool, error) {
	res, err := s.DB.ExecContext(ctx, `UPDATE tx_actions SET status = ?, result = LEFT(?, 255), done_at = CURRENT_TIMESTAMP(6)
		WHERE id = ? AND status = ?`, ActionDone, result, id, ActionPending)
	if err != nil {
		return false, fmt.Errorf("finish tx action %d: %w", id, err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

func (s *Store) scanTxActions(ctx context.Context, where string, args ...any) ([]*TxAction, error) {
	rows, err := s.DB.QueryContext(ctx, `SELECT id, withdrawal_id, sent_tx_id, chain, kind, base_hash, status, result, created_at
		FROM tx_actions `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("tx actions: %w", err)
	}
	defer rows.Close()
	var out []*TxAction
	for rows.Next() {
		var a TxAction
		if err := rows.Scan(&a.ID, &a.WithdrawalID, &a.SentTxID, &a.Chain, &a.Kind, &a.BaseHash, &a.Status, &a.Result, &a.CreatedAt); err != nil {
			return nil, err
		}
		out = append(out, &a)
	}
	return out, rows.Err()
}

// AttemptKind is the kind of the attempt with hash h (AttemptPayment or AttemptCancel).
func (s *Store) AttemptKind(ctx context.Context, q RowQuerier, h string) (string, error) {
	var k string
	if err := q.QueryRowContext(ctx, `SELECT kind FROM tx_attempts WHERE tx_hash = ?`, h).Scan(&k); err != nil {
		return "", fmt.Errorf("kind of attempt %s: %w", h, err)
	}
	return k, nil
}

// MarkCancelAttempt marks the attempt h, just recorded inside tx, as a cancel.
func (s *Store) MarkCancelAttempt(ctx context.Context, tx *sql.Tx, h string) error {
	if _, err := tx.ExecContext(ctx, `UPDATE tx_attempts SET kind = ? WHERE tx_hash = ?`, AttemptCancel, h); err != nil {
		return fmt.Errorf("mark attempt %s a cancel: %w", h, err)
	}
	return nil
}

// AttemptDrops lists the withdrawals that the attempt h leaves out of its batch (canceled items).
func (s *Store) AttemptDrops(ctx context.Context, q querier, h string) (map[string]bool, error) {
	rows, err := q.QueryContext(ctx, `SELECT withdrawal_id FROM tx_attempt_drops WHERE tx_hash = ?`, h)
	if err != nil {
		return nil, fmt.Errorf("drops of attempt %s: %w", h, err)
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out[id] = true
	}
	return out, rows.Err()
}

// MarkDrop records, inside tx, that the attempt h (just recorded) leaves withdrawal id out of its batch.
func (s *Store) MarkDrop(ctx context.Context, tx *sql.Tx, h, id string) error {
	if _, err := tx.ExecContext(ctx, `INSERT IGNORE INTO tx_attempt_drops (tx_hash, withdrawal_id) VALUES (?, ?)`, h, id); err != nil {
		return fmt.Errorf("attempt %s leaves out %s: %w", h, id, err)
	}
	return nil
}

// CancelsRequested lists the withdrawals of sent transaction id whose client asked for a cancel after
// signing (the whole transaction, or one item of a batch), so a payment that mined anyway says in its
// history that the cancel lost the race.
func (s *Store) CancelsRequested(ctx context.Context, q querier, sentTxID int64) (map[string]bool, error) {
	rows, err := q.QueryContext(ctx, `SELECT withdrawal_id FROM tx_actions WHERE sent_tx_id = ? AND kind IN (?, ?)`,
		sentTxID, ActionCancel, ActionCancelItem)
	if err != nil {
		return nil, fmt.Errorf("cancels of sent tx %d: %w", sentTxID, err)
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out[id] = true
	}
	return out, rows.Err()
}
