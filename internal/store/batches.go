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

// Batch is a batches row: one transaction paying several withdrawals of one (chain, asset).
type Batch struct {
	ID           string
	Chain        string
	Asset        string
	From         string
	Mode         string // single, multicall3, batch_erc20
	Size         int
	EstimatedGas uint64
	Reason       string
	SentTxID     *int64
	CreatedAt    time.Time
}

// Batch modes.
const (
	BatchMulticall3 = "multicall3"
	BatchERC20      = "batch_erc20"
)

// InsertBatch records b inside tx.
func (s *Store) InsertBatch(ctx context.Context, tx *sql.Tx, b *Batch) error {
	reason := b.Reason
	if len(reason) > 255 {
		reason = reason[:255]
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO batches (id, chain, asset, from_address, mode, size, estimated_gas, reason, sent_tx_id)
		VALUES (?,?,?,?,?,?,?,?,?)`, b.ID, b.Chain, b.Asset, b.From, b.Mode, b.Size, b.EstimatedGas, reason, b.SentTxID); err != nil {
		return fmt.Errorf("record batch %s: %w", b.ID, err)
	}
	return nil
}

// BatchBySentTx loads the batch a sent transaction carries; ErrNotFound when it carries none.
func (s *Store) BatchBySentTx(ctx context.Context, q querier, sentTxID int64) (*Batch, error) {
	var (
		b   Batch
		gas sql.NullInt64
		st  sql.NullInt64
	)
	err := q.QueryRowContext(ctx, `SELECT id, chain, asset, from_address, mode, size, estimated_gas, reason, sent_tx_id, created_at
		FROM batches WHERE sent_tx_id = ? LIMIT 1`, sentTxID).Scan(&b.ID, &b.Chain, &b.Asset, &b.From, &b.Mode, &b.Size, &gas, &b.Reason, &st, &b.CreatedAt)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("batch of tx %d: %w", sentTxID, err)
	}
	b.EstimatedGas = uint64(gas.Int64)
	if st.Valid {
		b.SentTxID = &st.Int64
	}
	return &b, nil
}

// ClaimForBatch moves up to limit withdrawals of (chain, asset) to SIGNING in one transaction, oldest
// first, and returns them: PENDING ones, and SIGNING ones whose claim is older than staleAfter (their
// signer died before recording anything: a recorded signature moves them to SIGNED in the same
// transaction). Rows locked by another claimer are skipped, so concurrent batchers never share a row.
func (s *Store) ClaimForBatch(ctx context.Context, chain, asset string, limit int, staleAfter time.Duration, actor Actor) ([]*Withdrawal, error) {
	return s.claim(ctx, chain, asset, "", nil, limit, staleAfter, actor)
}

// claim is ClaimForBatch restricted by the extra condition where (with its args).
func (s *Store) claim(ctx context.Context, chain, asset, where string, whereArgs []any, limit int, staleAfter time.Duration, actor Actor) ([]*Withdrawal, error) {
	var out []*Withdrawal
	err := s.InTx(ctx, func(tx *sql.Tx) error {
		out = out[:0]
		stale := time.Now().UTC().Add(-staleAfter)
		args := append([]any{chain, asset, Pending, Signing, stale}, whereArgs...)
		args = append(args, limit)
		rows, err := tx.QueryContext(ctx, `SELECT id, status, version, created_at FROM withdrawals
			WHERE chain = ? AND asset = ? AND (status = ? OR (status = ? AND updated_at < ?))`+where+`
			ORDER BY created_at, id LIMIT ? FOR UPDATE SKIP LOCKED`, args...)
		if err != nil {
			return fmt.Errorf("claim %s/%s: %w", chain, asset, err)
		}
		type row struct {
			id      string
			status  Status
			version int
			created time.Time
		}
		var rs []row
		for rows.Next() {
			var r row
			if err := rows.Scan(&r.id, &r.status, &r.version, &r.created); err != nil {
				rows.Close()
				return err
			}
			rs = append(rs, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if len(rs) == 0 {
			return nil
		}
		ids := make([]any, len(rs))
		for i, r := range rs {
			ids[i] = r.id
			reason := "claimed by batcher"
			if r.status == Signing {
				reason = "reclaimed by batcher: the previous claim expired without a recorded signature"
			}
			res, err := tx.ExecContext(ctx, `UPDATE withdrawals SET status = ?, version = version + 1, updated_at = CURRENT_TIMESTAMP(6)
				WHERE id = ? AND status = ? AND version = ?`, Signing, r.id, r.status, r.version)
			if err != nil {
				return fmt.Errorf("claim %s: %w", r.id, err)
			}
			if n, _ := res.RowsAffected(); n != 1 {
				return fmt.Errorf("claim %s: %w", r.id, ErrConflict)
			}
			if err := s.addHistory(ctx, tx, r.id, r.status, Signing, reason, actor,
				&Transitioned{Chain: chain, Asset: asset, CreatedAt: r.created}); err != nil {
				return err
			}
		}
		q := `SELECT ` + withdrawalCols + withdrawalFrom + ` WHERE w.id IN (?` + strings.Repeat(",?", len(ids)-1) + `) ORDER BY w.id`
		ws, err := tx.QueryContext(ctx, q, ids...)
		if err != nil {
			return err
		}
		defer ws.Close()
		for ws.Next() {
			w, err := scanWithdrawal(ws)
			if err != nil {
				return err
			}
			out = append(out, w)
		}
		return ws.Err()
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// PendingGroup summarises the claimable withdrawals of one (chain, asset).
type PendingGroup struct {
	Chain  string
	Asset  string
	Count  int
	Oldest time.Time
}

// PendingGroups lists, per (chain, asset), how many withdrawals are PENDING (or SIGNING with a claim
// older than staleAfter) and since when the oldest waits.
func (s *Store) PendingGroups(ctx context.Context, chain string, staleAfter time.Duration) ([]PendingGroup, error) {
	stale := time.Now().UTC().Add(-staleAfter)
	rows, err := s.DB.QueryContext(ctx, `SELECT asset, COUNT(*), MIN(created_at) FROM withdrawals
		WHERE chain = ? AND (status = ? OR (status = ? AND updated_at < ?)) GROUP BY asset`, chain, Pending, Signing, stale)
	if err != nil {
		return nil, fmt.Errorf("pending groups of %s: %w", chain, err)
	}
	defer rows.Close()
	var out []PendingGroup
	for rows.Next() {
		g := PendingGroup{Chain: chain}
		if err := rows.Scan(&g.Asset, &g.Count, &g.Oldest); err != nil {
			return nil, err
		}
		out = append(out, g)
	}
	return out, rows.Err()
}

// ReturnToPending moves withdrawal id from status from back to PENDING, detaching it from its
// transaction and batch, with the reason. Only for withdrawals whose transaction provably paid no one
// (a reverted atomic batch, final at the confirmation depth).
func (s *Store) ReturnToPending(ctx context.Context, tx *sql.Tx, id string, from Status, reason string, actor Actor) error {
	res, err := tx.ExecContext(ctx, `UPDATE withdrawals SET status = ?, version = version + 1, sent_tx_id = NULL, batch_id = NULL,
		from_address = NULL, block_number = NULL WHERE id = ? AND status = ?`, Pending, id, from)
	if err != nil {
		return fmt.Errorf("withdrawal %s %s→%s: %w", id, from, Pending, err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return fmt.Errorf("withdrawal %s %s→%s: %w", id, from, Pending, ErrConflict)
	}
	return s.addHistory(ctx, tx, id, from, Pending, reason, actor, nil)
}

// CountReturns counts how often a withdrawal was returned to PENDING after a reverted batch.
func (s *Store) CountReturns(ctx context.Context, q querier, id string) (int, error) {
	var n int
	err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM withdrawal_history WHERE withdrawal_id = ? AND to_status = ? AND from_status IS NOT NULL`,
		id, Pending).Scan(&n)
	return n, err
}

// ClaimableAmount sums the amounts of the next limit claimable withdrawals of (chain, asset), without
// claiming them.
func (s *Store) ClaimableAmount(ctx context.Context, chain, asset string, limit int, staleAfter time.Duration) (*big.Int, error) {
	stale := time.Now().UTC().Add(-staleAfter)
	rows, err := s.DB.QueryContext(ctx, `SELECT amount FROM withdrawals
		WHERE chain = ? AND asset = ? AND (status = ? OR (status = ? AND updated_at < ?))
		ORDER BY created_at, id LIMIT ?`, chain, asset, Pending, Signing, stale, limit)
	if err != nil {
		return nil, fmt.Errorf("claimable amount of %s/%s: %w", chain, asset, err)
	}
	defer rows.Close()
	return sumAmounts(rows)
}

// InFlightBatchAmount sums what the batch transactions of (chainID, from) for asset with a nonce at or
// above minedNonce (so not yet in the chain's latest state) will still pay.
func (s *Store) InFlightBatchAmount(ctx context.Context, chainID uint64, from, asset string, minedNonce uint64) (*big.Int, error) {
	rows, err := s.DB.QueryContext(ctx, `SELECT w.amount FROM sent_transactions t JOIN withdrawals w ON w.sent_tx_id = t.id
		WHERE t.chain_id = ? AND t.from_address = ? AND t.nonce >= ? AND t.kind = 'batch' AND w.asset = ?`,
		chainID, from, minedNonce, asset)
	if err != nil {
		return nil, fmt.Errorf("in-flight batch amount: %w", err)
	}
	defer rows.Close()
	return sumAmounts(rows)
}

// UnminedSentTxOfKind reports whether a transaction of kind from (chainID, from) to `to` is recorded
// with a nonce at or above minedNonce (not mined yet), and not failed.
func (s *Store) UnminedSentTxOfKind(ctx context.Context, chainID uint64, from, to, kind string, minedNonce uint64) (bool, error) {
	var one int
	err := s.DB.QueryRowContext(ctx, `SELECT 1 FROM sent_transactions WHERE chain_id = ? AND from_address = ? AND to_address = ?
		AND kind = ? AND nonce >= ? AND status <> ? LIMIT 1`, chainID, from, to, kind, minedNonce, TxFailed).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

func sumAmounts(rows *sql.Rows) (*big.Int, error) {
	sum := new(big.Int)
	for rows.Next() {
		var a string
		if err := rows.Scan(&a); err != nil {
			return nil, err
		}
		v, ok := new(big.Int).SetString(a, 10)
		if !ok {
			return nil, fmt.Errorf("bad stored amount %q", a)
		}
		sum.Add(sum, v)
	}
	return sum, rows.Err()
}
