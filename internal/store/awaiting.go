package store

import (
	"context"
	"database/sql"
	"fmt"
	"math/big"
	"strings"
	"time"
)

// WaitingAwaitingFunds is withdrawals.waiting of a PENDING withdrawal no hot wallet of its chain can
// fund yet: it is paid once one can (a top-up, a deposit), or FAILS with INSUFFICIENT_FUNDS after the
// chain's funds_deadline.
const WaitingAwaitingFunds = "awaiting_funds"

// Candidate is a claimable withdrawal as the signer's wallet choice sees it, before claiming it.
type Candidate struct {
	ID           string
	Amount       *big.Int
	CreatedAt    time.Time
	Waiting      string
	WaitingSince *time.Time
}

// Candidates lists up to limit claimable withdrawals of (chain, asset) (PENDING, or SIGNING with a claim
// older than staleAfter) that are not waiting, and up to limit that are, oldest first. The two windows
// keep a run of withdrawals too large to fund from hiding newer ones that can be paid, and the waiting
// ones from being starved by a steady stream of new ones.
func (s *Store) Candidates(ctx context.Context, chain, asset string, limit int, staleAfter time.Duration) ([]Candidate, error) {
	stale := time.Now().UTC().Add(-staleAfter)
	var out []Candidate
	for _, cond := range []string{"w.waiting IS NULL", "w.waiting IS NOT NULL"} {
		rows, err := s.DB.QueryContext(ctx, `SELECT w.id, w.amount, w.created_at, w.waiting, w.waiting_since FROM withdrawals w
			WHERE w.chain = ? AND w.asset = ? AND (w.status = ? OR (w.status = ? AND w.updated_at < ?)) AND `+cond+`
			ORDER BY w.created_at, w.id LIMIT ?`, chain, asset, Pending, Signing, stale, limit)
		if err != nil {
			return nil, fmt.Errorf("candidates of %s/%s: %w", chain, asset, err)
		}
		for rows.Next() {
			var (
				c       Candidate
				amount  string
				waiting sql.NullString
				since   sql.NullTime
			)
			if err := rows.Scan(&c.ID, &amount, &c.CreatedAt, &waiting, &since); err != nil {
				rows.Close()
				return nil, fmt.Errorf("candidates of %s/%s: %w", chain, asset, err)
			}
			v, ok := new(big.Int).SetString(amount, 10)
			if !ok {
				rows.Close()
				return nil, fmt.Errorf("candidate %s: bad stored amount %q", c.ID, amount)
			}
			c.Amount, c.Waiting = v, waiting.String
			if since.Valid {
				t := since.Time
				c.WaitingSince = &t
			}
			out = append(out, c)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("candidates of %s/%s: %w", chain, asset, err)
		}
	}
	// Oldest first across both windows.
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j].CreatedAt.Before(out[j-1].CreatedAt); j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out, nil
}

// NoteAwaitingFunds marks the PENDING withdrawals among ids as awaiting funds: for each not already
// marked, one PENDING → PENDING history row with reason, the waiting column (and waiting_since, kept from
// an earlier wait of the same withdrawal) and the withdrawal.awaiting_funds webhook event, in one
// transaction. One wait writes one row and one event however many rounds it lasts. It returns the ids
// it marked.
func (s *Store) NoteAwaitingFunds(ctx context.Context, ids []string, reason string, actor Actor) ([]string, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	var marked []string
	err := s.InTx(ctx, func(tx *sql.Tx) error {
		marked = marked[:0]
		args := []any{Pending, WaitingAwaitingFunds}
		for _, id := range ids {
			args = append(args, id)
		}
		rows, err := tx.QueryContext(ctx, `SELECT id FROM withdrawals WHERE status = ? AND (waiting IS NULL OR waiting <> ?)
			AND id IN (?`+strings.Repeat(",?", len(ids)-1)+`) ORDER BY id FOR UPDATE SKIP LOCKED`, args...)
		if err != nil {
			return fmt.Errorf("note awaiting funds: %w", err)
		}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return err
			}
			marked = append(marked, id)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, id := range marked {
			if _, err := tx.ExecContext(ctx, `UPDATE withdrawals SET waiting = ?, waiting_since = COALESCE(waiting_since, UTC_TIMESTAMP(6)),
				version = version + 1 WHERE id = ? AND status = ?`, WaitingAwaitingFunds, id, Pending); err != nil {
				return fmt.Errorf("note awaiting funds of %s: %w", id, err)
			}
			// PENDING → PENDING is no status change: written directly, not counted by the Observer.
			if _, err := tx.ExecContext(ctx, `INSERT INTO withdrawal_history (withdrawal_id, from_status, to_status, reason, actor)
				VALUES (?,?,?,?,?)`, id, Pending, Pending, truncate(reason, 500), actor); err != nil {
				return fmt.Errorf("history of %s: %w", id, err)
			}
			if err := emitTyped(ctx, tx, id, EventAwaitingFunds, Pending, reason); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return marked, nil
}

// ClaimByID moves the withdrawals among ids of (chain, asset) that are still claimable (PENDING, or
// SIGNING with a claim older than staleAfter) to SIGNING, like ClaimForBatch, and returns them; rows
// locked by another claimer or moved meanwhile are left out.
func (s *Store) ClaimByID(ctx context.Context, chain, asset string, ids []string, staleAfter time.Duration, actor Actor) ([]*Withdrawal, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	return s.claim(ctx, chain, asset, ` AND id IN (?`+strings.Repeat(",?", len(ids)-1)+`)`, args, len(ids), staleAfter, actor)
}
