package store

// Reads of the operators' API (admin): searches across every client, a withdrawal's attempts, the
// pipeline summary, parked DLQ messages, alerts and the activity charts. Nothing here writes but the
// resolution of a parked message and the wallet actions, which recovery performs.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"time"
)

// AdminFilter selects withdrawals across clients. Cursor is the id of the last row of the previous page.
type AdminFilter struct {
	ID, ExternalID, Address, TxHash string
	Status                          Status
	Chain, Asset                    string
	Since, Until                    time.Time // created_at in [Since, Until); zero is unbounded
	Cursor                          string
	Limit                           int
}

// AdminWithdrawal is a withdrawal with its client's name.
type AdminWithdrawal struct {
	*Withdrawal
	Client string
}

// SearchWithdrawals returns a page of withdrawals of every client matching f, newest first.
func (s *Store) SearchWithdrawals(ctx context.Context, f AdminFilter) ([]AdminWithdrawal, error) {
	where := []string{"1=1"}
	var args []any
	add := func(cond string, v ...any) { where = append(where, cond); args = append(args, v...) }
	if f.ID != "" {
		add("w.id = ?", f.ID)
	}
	if f.ExternalID != "" {
		add("w.external_id = ?", f.ExternalID)
	}
	if f.Address != "" {
		add("(LOWER(w.to_address) = LOWER(?) OR LOWER(w.from_address) = LOWER(?))", f.Address, f.Address)
	}
	if f.TxHash != "" {
		add("w.sent_tx_id IN (SELECT sent_tx_id FROM tx_attempts WHERE tx_hash = ?)", strings.ToLower(f.TxHash))
	}
	if f.Status != "" {
		add("w.status = ?", f.Status)
	}
	if f.Chain != "" {
		add("w.chain = ?", f.Chain)
	}
	if f.Asset != "" {
		add("w.asset = ?", f.Asset)
	}
	if !f.Since.IsZero() {
		add("w.created_at >= ?", f.Since.UTC())
	}
	if !f.Until.IsZero() {
		add("w.created_at < ?", f.Until.UTC())
	}
	if f.Cursor != "" {
		add("w.id < ?", f.Cursor) // ids are UUIDv7: id order is creation order
	}
	args = append(args, f.Limit)
	rows, err := s.DB.QueryContext(ctx, `SELECT `+withdrawalCols+`, c.name`+withdrawalFrom+` JOIN api_clients c ON c.id = w.client_id
		WHERE `+strings.Join(where, " AND ")+` ORDER BY w.id DESC LIMIT ?`, args...)
	if err != nil {
		return nil, fmt.Errorf("search withdrawals: %w", err)
	}
	defer rows.Close()
	var out []AdminWithdrawal
	for rows.Next() {
		var name string
		w, err := scanWithdrawal(withExtra{rows, &name})
		if err != nil {
			return nil, fmt.Errorf("search withdrawals: %w", err)
		}
		out = append(out, AdminWithdrawal{Withdrawal: w, Client: name})
	}
	return out, rows.Err()
}

// withExtra scans a withdrawal row followed by more columns.
type withExtra struct {
	r     scanner
	extra *string
}

func (w withExtra) Scan(dest ...any) error { return w.r.Scan(append(dest, w.extra)...) }

// ClientName is the name of API client id ("" when unknown).
func (s *Store) ClientName(ctx context.Context, id int64) (string, error) {
	var n string
	err := s.DB.QueryRowContext(ctx, `SELECT name FROM api_clients WHERE id = ?`, id).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return n, err
}

// Attempt is one signed attempt of a sent transaction, with its transaction's settlement.
type Attempt struct {
	Hash              string
	Nonce             uint64
	From              string
	Kind              string // payment, cancel
	Status            string // signed, mined, replaced
	MaxFeePerGas      string
	MaxPriorityFee    string
	GasUsed           *uint64   // the mined attempt only
	EffectiveGasPrice *big.Int  // the mined attempt only, when recorded
	CreatedAt         time.Time //
}

// Attempts lists every attempt of sent transaction id, oldest first.
func (s *Store) Attempts(ctx context.Context, id int64) ([]Attempt, error) {
	rows, err := s.DB.QueryContext(ctx, `SELECT a.tx_hash, t.nonce, t.from_address, a.kind, a.status, a.max_fee_per_gas, a.max_priority_fee,
		t.gas_used, COALESCE(t.effective_gas_price, ''), a.created_at
		FROM tx_attempts a JOIN sent_transactions t ON t.id = a.sent_tx_id WHERE a.sent_tx_id = ? ORDER BY a.id`, id)
	if err != nil {
		return nil, fmt.Errorf("attempts of %d: %w", id, err)
	}
	defer rows.Close()
	var out []Attempt
	for rows.Next() {
		var (
			a     Attempt
			gas   sql.NullInt64
			price string
		)
		if err := rows.Scan(&a.Hash, &a.Nonce, &a.From, &a.Kind, &a.Status, &a.MaxFeePerGas, &a.MaxPriorityFee, &gas, &price, &a.CreatedAt); err != nil {
			return nil, err
		}
		if a.Status == AttemptMined {
			if gas.Valid {
				g := uint64(gas.Int64)
				a.GasUsed = &g
			}
			a.EffectiveGasPrice, _ = new(big.Int).SetString(price, 10)
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// BatchInfo is a batch and the withdrawals it pays.
type BatchInfo struct {
	ID, TxHash    string
	Size          int
	WithdrawalIDs []string
}

// BatchOf returns batch id with its withdrawals; ErrNotFound when it does not exist.
func (s *Store) BatchOf(ctx context.Context, id string) (*BatchInfo, error) {
	b := BatchInfo{ID: id}
	var hash sql.NullString
	err := s.DB.QueryRowContext(ctx, `SELECT b.size, t.tx_hash FROM batches b LEFT JOIN sent_transactions t ON t.id = b.sent_tx_id
		WHERE b.id = ?`, id).Scan(&b.Size, &hash)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("batch %s: %w", id, err)
	}
	b.TxHash = hash.String
	rows, err := s.DB.QueryContext(ctx, `SELECT id FROM withdrawals WHERE batch_id = ? ORDER BY id`, id)
	if err != nil {
		return nil, fmt.Errorf("withdrawals of batch %s: %w", id, err)
	}
	defer rows.Close()
	for rows.Next() {
		var w string
		if err := rows.Scan(&w); err != nil {
			return nil, err
		}
		b.WithdrawalIDs = append(b.WithdrawalIDs, w)
	}
	return &b, rows.Err()
}

// ChainSummary is one chain's withdrawals by status and the age of its oldest non-terminal one.
type ChainSummary struct {
	Chain      string
	Counts     map[string]int
	OldestOpen time.Time // zero when none is open
}

// Summary counts withdrawals by chain and status, by chain name.
func (s *Store) Summary(ctx context.Context) ([]ChainSummary, error) {
	rows, err := s.DB.QueryContext(ctx, `SELECT chain, status, COUNT(*), MIN(CASE WHEN status NOT IN (?,?,?) THEN created_at END)
		FROM withdrawals GROUP BY chain, status ORDER BY chain, status`, Confirmed, Failed, Canceled)
	if err != nil {
		return nil, fmt.Errorf("summary: %w", err)
	}
	defer rows.Close()
	var out []ChainSummary
	for rows.Next() {
		var (
			chain, status string
			n             int
			oldest        sql.NullTime
		)
		if err := rows.Scan(&chain, &status, &n, &oldest); err != nil {
			return nil, err
		}
		if len(out) == 0 || out[len(out)-1].Chain != chain {
			out = append(out, ChainSummary{Chain: chain, Counts: map[string]int{}})
		}
		c := &out[len(out)-1]
		c.Counts[status] = n
		if oldest.Valid && (c.OldestOpen.IsZero() || oldest.Time.Before(c.OldestOpen)) {
			c.OldestOpen = oldest.Time
		}
	}
	return out, rows.Err()
}

// OpenSince returns the withdrawals in status st created before before, oldest first (at most limit).
func (s *Store) OpenSince(ctx context.Context, st Status, before time.Time, limit int) ([]*Withdrawal, error) {
	rows, err := s.DB.QueryContext(ctx, `SELECT `+withdrawalCols+withdrawalFrom+` WHERE w.status = ? AND w.created_at < ?
		ORDER BY w.created_at LIMIT ?`, st, before.UTC(), limit)
	if err != nil {
		return nil, fmt.Errorf("%s withdrawals: %w", st, err)
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

// ParkedMessage is a parked DLQ message with its resolution.
type ParkedMessage struct {
	Parked
	Resolution, ResolvedBy string
}

// ParkedList lists parked messages, oldest first: unresolved only unless all; queue and class filter
// when set (class is the error type).
func (s *Store) ParkedList(ctx context.Context, queueName, class string, all bool, afterID int64, limit int) ([]ParkedMessage, error) {
	where, args := []string{"id > ?"}, []any{afterID}
	if !all {
		where = append(where, "resolved_at IS NULL")
	}
	if queueName != "" {
		where, args = append(where, "queue = ?"), append(args, queueName)
	}
	if class != "" {
		where, args = append(where, "error_type = ?"), append(args, class)
	}
	args = append(args, limit)
	return s.scanParked(ctx, ` WHERE `+strings.Join(where, " AND ")+` ORDER BY id LIMIT ?`, args...)
}

// ParkedByID loads parked message id; ErrNotFound when none.
func (s *Store) ParkedByID(ctx context.Context, id int64) (*ParkedMessage, error) {
	ps, err := s.scanParked(ctx, ` WHERE id = ?`, id)
	if err != nil {
		return nil, err
	}
	if len(ps) == 0 {
		return nil, ErrNotFound
	}
	return &ps[0], nil
}

func (s *Store) scanParked(ctx context.Context, where string, args ...any) ([]ParkedMessage, error) {
	rows, err := s.DB.QueryContext(ctx, `SELECT id, queue, message_id, body, error_type, reason, created_at, resolved_at,
		COALESCE(resolution, ''), COALESCE(resolved_by, '') FROM dlq_parked`+where, args...)
	if err != nil {
		return nil, fmt.Errorf("parked messages: %w", err)
	}
	defer rows.Close()
	var out []ParkedMessage
	for rows.Next() {
		var (
			p   ParkedMessage
			res sql.NullTime
		)
		if err := rows.Scan(&p.ID, &p.Queue, &p.MessageID, &p.Body, &p.ErrorType, &p.Reason, &p.CreatedAt, &res, &p.Resolution, &p.ResolvedBy); err != nil {
			return nil, err
		}
		if res.Valid {
			p.ResolvedAt = &res.Time
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// ResolveParked marks parked message id resolved (resolution: redriven or discarded) by by, inside tx;
// false when it was resolved already (the same decision replayed, or another one first).
func (s *Store) ResolveParked(ctx context.Context, tx *sql.Tx, id int64, resolution, by string) (bool, error) {
	res, err := tx.ExecContext(ctx, `UPDATE dlq_parked SET resolved_at = UTC_TIMESTAMP(6), resolution = ?, resolved_by = LEFT(?, 128)
		WHERE id = ? AND resolved_at IS NULL`, resolution, by, id)
	if err != nil {
		return false, fmt.Errorf("resolve parked message %d: %w", id, err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// AlertRow is an alert, open or resolved.
type AlertRow struct {
	Key, Kind, Severity, Summary, Details string
	OpenedAt                              time.Time
	ResolvedAt                            *time.Time
}

// Alerts lists the open alerts (all: also the resolved ones, newest first, at most limit).
func (s *Store) Alerts(ctx context.Context, all bool, limit int) ([]AlertRow, error) {
	where := ` WHERE resolved_at IS NULL`
	if all {
		where = ``
	}
	rows, err := s.DB.QueryContext(ctx, `SELECT alert_key, kind, severity, summary, details, opened_at, resolved_at FROM alerts`+where+
		` ORDER BY id DESC LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("alerts: %w", err)
	}
	defer rows.Close()
	var out []AlertRow
	for rows.Next() {
		var (
			a   AlertRow
			res sql.NullTime
		)
		if err := rows.Scan(&a.Key, &a.Kind, &a.Severity, &a.Summary, &a.Details, &a.OpenedAt, &res); err != nil {
			return nil, err
		}
		if res.Valid {
			a.ResolvedAt = &res.Time
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// InFlightCount counts the unsettled (SIGNED or BROADCASTED) transactions of (chainID, from).
func (s *Store) InFlightCount(ctx context.Context, chainID uint64, from string) (int, error) {
	var n int
	err := s.DB.QueryRowContext(ctx, `SELECT COUNT(*) FROM sent_transactions WHERE chain_id = ? AND from_address = ? AND status IN (?, ?)`,
		chainID, from, TxSigned, TxBroadcasted).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("in-flight count of %s: %w", from, err)
	}
	return n, nil
}

// Bucket is one minute of activity.
type Bucket struct {
	T           time.Time
	Created     int
	Confirmed   int
	AvgConfirmS float64
}

// Activity counts withdrawals created and confirmed per minute since since (UTC minutes, oldest
// first; minutes without activity are left out), with the average time from creation to confirmation.
func (s *Store) Activity(ctx context.Context, since time.Time) ([]Bucket, error) {
	byMin := map[time.Time]*Bucket{}
	get := func(t time.Time) *Bucket {
		t = t.UTC().Truncate(time.Minute)
		if b := byMin[t]; b != nil {
			return b
		}
		b := &Bucket{T: t}
		byMin[t] = b
		return b
	}
	rows, err := s.DB.QueryContext(ctx, `SELECT DATE_FORMAT(created_at, '%Y-%m-%d %H:%i:00'), COUNT(*), NULL FROM withdrawals
		WHERE created_at >= ? GROUP BY 1`, since.UTC())
	if err != nil {
		return nil, fmt.Errorf("activity: %w", err)
	}
	if err := scanBuckets(rows, func(t time.Time, n int, _ float64) { get(t).Created = n }); err != nil {
		return nil, err
	}
	rows, err = s.DB.QueryContext(ctx, `SELECT DATE_FORMAT(h.created_at, '%Y-%m-%d %H:%i:00'), COUNT(*),
		AVG(TIMESTAMPDIFF(MICROSECOND, w.created_at, h.created_at)) / 1e6
		FROM withdrawal_history h JOIN withdrawals w ON w.id = h.withdrawal_id
		WHERE h.to_status = ? AND h.from_status <> h.to_status AND h.created_at >= ? GROUP BY 1`, Confirmed, since.UTC())
	if err != nil {
		return nil, fmt.Errorf("activity: %w", err)
	}
	if err := scanBuckets(rows, func(t time.Time, n int, avg float64) { b := get(t); b.Confirmed, b.AvgConfirmS = n, avg }); err != nil {
		return nil, err
	}
	out := make([]Bucket, 0, len(byMin))
	for _, b := range byMin {
		out = append(out, *b)
	}
	sortBuckets(out)
	return out, nil
}

func scanBuckets(rows *sql.Rows, set func(time.Time, int, float64)) error {
	defer rows.Close()
	for rows.Next() {
		var (
			ts  string
			n   int
			avg sql.NullFloat64
		)
		if err := rows.Scan(&ts, &n, &avg); err != nil {
			return fmt.Errorf("activity bucket: %w", err)
		}
		t, err := time.ParseInLocation("2006-01-02 15:04:05", ts, time.UTC)
		if err != nil {
			return fmt.Errorf("activity bucket %q: %w", ts, err)
		}
		set(t, n, avg.Float64)
	}
	return rows.Err()
}

func sortBuckets(b []Bucket) {
	slices.SortFunc(b, func(x, y Bucket) int { return x.T.Compare(y.T) })
}

// GasSpent is what one chain's mined transactions used and paid since a time.
type GasSpent struct {
	Chain   string
	GasUsed uint64
	FeeWei  *big.Int
}

// GasSince sums the gas used and the fees paid (gas used × effective gas price, where recorded) by the
// transactions of each chain mined (CONFIRMED or FAILED: a revert pays too) since since.
func (s *Store) GasSince(ctx context.Context, since time.Time) ([]GasSpent, error) {
	rows, err := s.DB.QueryContext(ctx, `SELECT chain, gas_used, COALESCE(effective_gas_price, '0') FROM sent_transactions
		WHERE status IN (?, ?) AND gas_used IS NOT NULL AND updated_at >= ? ORDER BY chain`, TxConfirmed, TxFailed, since.UTC())
	if err != nil {
		return nil, fmt.Errorf("gas since %s: %w", since, err)
	}
	defer rows.Close()
	var out []GasSpent
	for rows.Next() {
		var (
			chain, price string
			gas          uint64
		)
		if err := rows.Scan(&chain, &gas, &price); err != nil {
			return nil, err
		}
		if len(out) == 0 || out[len(out)-1].Chain != chain {
			out = append(out, GasSpent{Chain: chain, FeeWei: new(big.Int)})
		}
		g := &out[len(out)-1]
		g.GasUsed += gas
		if p, ok := new(big.Int).SetString(price, 10); ok {
			g.FeeWei.Add(g.FeeWei, new(big.Int).Mul(p, new(big.Int).SetUint64(gas)))
		}
	}
	return out, rows.Err()
}

// WalletAction is an operator's wallet action waiting for recovery (wallet_actions).
type WalletAction struct {
	ID          int64
	RequestID   string
	Chain       string
	Address     string
	Kind        string
	Nonces      []uint64
	RequestedBy string
	Status      string
	Result      string
}

// WalletActionFillGap is the kind of an operator's gap fill.
const WalletActionFillGap = "fill_gap"

// RequestWalletAction records a; the same request id again is the earlier row (created false).
func (s *Store) RequestWalletAction(ctx context.Context, a WalletAction) (*WalletAction, bool, error) {
	ns := make([]string, len(a.Nonces))
	for i, n := range a.Nonces {
		ns[i] = strconv.FormatUint(n, 10)
	}
	res, err := s.DB.ExecContext(ctx, `INSERT IGNORE INTO wallet_actions (request_id, chain, address, kind, nonces, requested_by)
		VALUES (?,?,?,?,?,LEFT(?, 128))`, a.RequestID, a.Chain, a.Address, a.Kind, strings.Join(ns, ","), a.RequestedBy)
	if err != nil {
		return nil, false, fmt.Errorf("record wallet action %s: %w", a.RequestID, err)
	}
	n, _ := res.RowsAffected()
	got, err := s.scanWalletActions(ctx, ` WHERE request_id = ?`, a.RequestID)
	if err != nil {
		return nil, false, err
	}
	if len(got) != 1 {
		return nil, false, fmt.Errorf("wallet action %s: recorded row not found", a.RequestID)
	}
	return &got[0], n == 1, nil
}

// PendingWalletActions lists the pending wallet actions of a chain, oldest first.
func (s *Store) PendingWalletActions(ctx context.Context, chain string) ([]WalletAction, error) {
	return s.scanWalletActions(ctx, ` WHERE chain = ? AND status = ? ORDER BY id LIMIT 100`, chain, ActionPending)
}

// FinishWalletAction marks a pending wallet action done with its result; false when it was not
// pending any more.
func (s *Store) FinishWalletAction(ctx context.Context, id int64, result string) (bool, error) {
	res, err := s.DB.ExecContext(ctx, `UPDATE wallet_actions SET status = ?, result = LEFT(?, 255), done_at = UTC_TIMESTAMP(6)
		WHERE id = ? AND status = ?`, ActionDone, result, id, ActionPending)
	if err != nil {
		return false, fmt.Errorf("finish wallet action %d: %w", id, err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

func (s *Store) scanWalletActions(ctx context.Context, where string, args ...any) ([]WalletAction, error) {
	rows, err := s.DB.QueryContext(ctx, `SELECT id, request_id, chain, address, kind, nonces, requested_by, status, result FROM wallet_actions`+where, args...)
	if err != nil {
		return nil, fmt.Errorf("wallet actions: %w", err)
	}
	defer rows.Close()
	var out []WalletAction
	for rows.Next() {
		var (
			a  WalletAction
			ns string
		)
		if err := rows.Scan(&a.ID, &a.RequestID, &a.Chain, &a.Address, &a.Kind, &ns, &a.RequestedBy, &a.Status, &a.Result); err != nil {
			return nil, err
		}
		for _, f := range strings.Split(ns, ",") {
			if n, err := strconv.ParseUint(f, 10, 64); err == nil {
				a.Nonces = append(a.Nonces, n)
			}
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// ActiveFreezes lists the frozen wallets, oldest freeze first.
func (s *Store) ActiveFreezes(ctx context.Context) ([]Freeze, error) {
	rows, err := s.DB.QueryContext(ctx, `SELECT id, chain, address, reason, frozen_at, frozen_by FROM wallet_freezes WHERE active = 1 ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("frozen wallets: %w", err)
	}
	defer rows.Close()
	var out []Freeze
	for rows.Next() {
		var f Freeze
		if err := rows.Scan(&f.ID, &f.Chain, &f.Address, &f.Reason, &f.FrozenAt, &f.FrozenBy); err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	return out, rows.Err()
}

// NoteHistory writes a history row of withdrawal id in its current status at (a note, not a change)
// inside tx: an operator's retry, say.
func (s *Store) NoteHistory(ctx context.Context, tx *sql.Tx, id string, at Status, reason string, actor Actor) error {
	if _, err := tx.ExecContext(ctx, `INSERT INTO withdrawal_history (withdrawal_id, from_status, to_status, reason, actor)
		VALUES (?,?,?,?,?)`, id, at, at, reason, actor); err != nil {
		return fmt.Errorf("history of %s: %w", id, err)
	}
	return nil
}
