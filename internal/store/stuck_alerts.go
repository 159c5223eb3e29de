package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// InFlight is what the stuck-transaction scan needs of a broadcast transaction: no raw bytes, so that a
// scan over thousands of them stays cheap; the whole row is loaded only for the few it acts on.
type InFlight struct {
	ID           int64
	From         string
	Nonce        uint64
	Hash         string
	AttemptBlock *uint64 // nil until recovery first saw the current attempt
}

// InFlightTxs lists the BROADCASTED transactions of a chain, by address and nonce (idx_sent_tx_inflight).
func (s *Store) InFlightTxs(ctx context.Context, chainID uint64) ([]InFlight, error) {
	rows, err := s.DB.QueryContext(ctx, `SELECT id, from_address, nonce, tx_hash, attempt_block FROM sent_transactions
		WHERE status = ? AND chain_id = ? ORDER BY from_address, nonce`, TxBroadcasted, chainID)
	if err != nil {
		return nil, fmt.Errorf("in-flight txs of chain %d: %w", chainID, err)
	}
	defer rows.Close()
	var out []InFlight
	for rows.Next() {
		var (
			t InFlight
			b sql.NullInt64
		)
		if err := rows.Scan(&t.ID, &t.From, &t.Nonce, &t.Hash, &b); err != nil {
			return nil, err
		}
		if b.Valid {
			v := uint64(b.Int64)
			t.AttemptBlock = &v
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// MarkAttemptSeen starts the stuck clock of the given transactions at block head, for those whose
// clock has not started (a concurrent scan may have started it: the first one counts).
func (s *Store) MarkAttemptSeen(ctx context.Context, ids []int64, head uint64) error {
	for len(ids) > 0 {
		n := min(len(ids), 500)
		args := make([]any, 0, n+1)
		args = append(args, head)
		for _, id := range ids[:n] {
			args = append(args, id)
		}
		if _, err := s.DB.ExecContext(ctx, `UPDATE sent_transactions SET attempt_block = ? WHERE attempt_block IS NULL AND id IN (?`+
			strings.Repeat(",?", n-1)+`)`, args...); err != nil {
			return fmt.Errorf("start stuck clock of %d txs: %w", n, err)
		}
		ids = ids[n:]
	}
	return nil
}

// OpenAlert is an alert not yet resolved.
type OpenAlert struct {
	Key, Kind, Severity, Summary, Details string
	FiredCount                            int
	OpenedAt, LastSeenAt                  time.Time
}

// OpenAlert records an alert as open. It reports false when one with the same key is open already
// (fired before, by this or another instance): then only its count and last-seen time move.
func (s *Store) OpenAlert(ctx context.Context, key, kind, severity, summary, details string) (bool, error) {
	_, err := s.DB.ExecContext(ctx, `INSERT INTO alerts (alert_key, open_key, kind, severity, summary, details) VALUES (?,?,?,?,?,?)`,
		key, key, kind, severity, summary, details)
	if err == nil {
		return true, nil
	}
	if !IsDuplicate(err) {
		return false, fmt.Errorf("open alert %s: %w", key, err)
	}
	if _, err := s.DB.ExecContext(ctx, `UPDATE alerts SET fired_count = fired_count + 1, last_seen_at = CURRENT_TIMESTAMP(6)
		WHERE open_key = ?`, key); err != nil {
		return false, fmt.Errorf("touch alert %s: %w", key, err)
	}
	return false, nil
}

// ResolveAlert closes the open alert with this key and returns it; ErrNotFound when none is open (never
// fired, or resolved already by this or another instance).
func (s *Store) ResolveAlert(ctx context.Context, key string) (*OpenAlert, error) {
	var a *OpenAlert
	err := s.InTx(ctx, func(tx *sql.Tx) error {
		a = &OpenAlert{}
		err := tx.QueryRowContext(ctx, `SELECT alert_key, kind, severity, summary, details, fired_count, opened_at, last_seen_at
			FROM alerts WHERE open_key = ? FOR UPDATE`, key).Scan(&a.Key, &a.Kind, &a.Severity, &a.Summary, &a.Details, &a.FiredCount, &a.OpenedAt, &a.LastSeenAt)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE alerts SET open_key = NULL, resolved_at = CURRENT_TIMESTAMP(6) WHERE open_key = ?`, key)
		return err
	})
	if errors.Is(err, ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("resolve alert %s: %w", key, err)
	}
	return a, nil
}

// OpenAlerts lists the open alerts, of one kind unless kind is empty, oldest first.
func (s *Store) OpenAlerts(ctx context.Context, kind string) ([]OpenAlert, error) {
	q := `SELECT alert_key, kind, severity, summary, details, fired_count, opened_at, last_seen_at FROM alerts WHERE open_key IS NOT NULL`
	var args []any
	if kind != "" {
		q += ` AND kind = ?`
		args = append(args, kind)
	}
	rows, err := s.DB.QueryContext(ctx, q+` ORDER BY id`, args...)
	if err != nil {
		return nil, fmt.Errorf("open alerts: %w", err)
	}
	defer rows.Close()
	var out []OpenAlert
	for rows.Next() {
		var a OpenAlert
		if err := rows.Scan(&a.Key, &a.Kind, &a.Severity, &a.Summary, &a.Details, &a.FiredCount, &a.OpenedAt, &a.LastSeenAt); err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}
