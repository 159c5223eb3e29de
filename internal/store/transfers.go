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

// Balance transfer kinds (balance_transfers.kind, and the sent_transactions.kind of their transactions).
const (
	TransferTopUp = "top_up" // main account → hot wallet
	TransferSweep = "sweep"  // hot wallet → main account, the excess above the band's max
)

// Balance transfer statuses: PENDING (queued, not signed), SIGNED (in a recorded transaction, sent_tx_id
// set), then CONFIRMED or FAILED as the monitor settles that transaction.
const (
	TransferPending   = "PENDING"
	TransferSigned    = "SIGNED"
	TransferConfirmed = "CONFIRMED"
	TransferFailed    = "FAILED"
)

// BalanceTransfer is one row of balance_transfers.
type BalanceTransfer struct {
	ID        string
	Chain     string
	Asset     string
	Kind      string
	From      string
	To        string
	Amount    *big.Int
	Status    string
	Reason    string
	Key       string // idempotency key: the deficit (or excess) this transfer answers
	Epoch     int64
	SentTxID  *int64
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Account is the account a transfer manages: the hot wallet it tops up or sweeps.
func (t *BalanceTransfer) Account() string {
	if t.Kind == TransferSweep {
		return t.From
	}
	return t.To
}

// TransferKey is the idempotency key of kind's transfer for account's asset at epoch. Addresses are
// lower-cased so a checksummed and a lower-case spelling name one account.
func TransferKey(kind, chain, account, asset string, epoch int64) string {
	return fmt.Sprintf("%s:%s:%s:%s:%d", kind, chain, strings.ToLower(account), asset, epoch)
}

// InsertBalanceTransfer inserts t (PENDING) inside tx. created is false when a transfer with t.Key exists
// already: that deficit is being (or was) handled, and nothing was written.
func (s *Store) InsertBalanceTransfer(ctx context.Context, tx *sql.Tx, t *BalanceTransfer) (created bool, err error) {
	_, err = tx.ExecContext(ctx, `INSERT INTO balance_transfers
		(id, chain, asset, kind, from_address, to_address, amount, status, reason, idempotency_key, epoch)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		t.ID, t.Chain, t.Asset, t.Kind, t.From, t.To, t.Amount.String(), TransferPending, truncate(t.Reason, 255), t.Key, t.Epoch)
	if IsDuplicate(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("insert balance transfer %s: %w", t.Key, err)
	}
	return true, nil
}

const transferCols = `id, chain, asset, kind, from_address, to_address, amount, status, reason,
	COALESCE(idempotency_key, ''), epoch, sent_tx_id, created_at, updated_at`

func scanTransfer(sc interface{ Scan(...any) error }) (*BalanceTransfer, error) {
	var (
		t      BalanceTransfer
		amount string
		sent   sql.NullInt64
	)
	if err := sc.Scan(&t.ID, &t.Chain, &t.Asset, &t.Kind, &t.From, &t.To, &amount, &t.Status, &t.Reason, &t.Key, &t.Epoch,
		&sent, &t.CreatedAt, &t.UpdatedAt); err != nil {
		return nil, err
	}
	v, ok := new(big.Int).SetString(amount, 10)
	if !ok {
		return nil, fmt.Errorf("balance transfer %s: amount %q is not an integer", t.ID, amount)
	}
	t.Amount = v
	if sent.Valid {
		t.SentTxID = &sent.Int64
	}
	return &t, nil
}

func (s *Store) queryTransfers(ctx context.Context, q interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}, query string, args ...any) ([]*BalanceTransfer, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+transferCols+` FROM balance_transfers `+query, args...)
	if err != nil {
		return nil, fmt.Errorf("balance transfers: %w", err)
	}
	defer rows.Close()
	var out []*BalanceTransfer
	for rows.Next() {
		t, err := scanTransfer(rows)
		if err != nil {
			return nil, fmt.Errorf("balance transfers: %w", err)
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// GetBalanceTransfer loads one transfer; ErrNotFound when there is none.
func (s *Store) GetBalanceTransfer(ctx context.Context, id string) (*BalanceTransfer, error) {
	t, err := scanTransfer(s.DB.QueryRowContext(ctx, `SELECT `+transferCols+` FROM balance_transfers WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("balance transfer %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("balance transfer %s: %w", id, err)
	}
	return t, nil
}

// GetBalanceTransferByKey loads the transfer of an idempotency key; ErrNotFound when there is none.
func (s *Store) GetBalanceTransferByKey(ctx context.Context, key string) (*BalanceTransfer, error) {
	t, err := scanTransfer(s.DB.QueryRowContext(ctx, `SELECT `+transferCols+` FROM balance_transfers WHERE idempotency_key = ?`, key))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("balance transfer %s: %w", key, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("balance transfer %s: %w", key, err)
	}
	return t, nil
}

// PendingTransfers returns up to limit PENDING transfers of kind from one address in one asset, oldest
// first (the order they are paid in when the sender cannot pay them all).
func (s *Store) PendingTransfers(ctx context.Context, chain, kind, from, asset string, limit int) ([]*BalanceTransfer, error) {
	return s.queryTransfers(ctx, s.DB, `WHERE chain = ? AND status = ? AND kind = ? AND from_address = ? AND asset = ?
		ORDER BY created_at, id LIMIT ?`, chain, TransferPending, kind, from, asset, limit)
}

// StalePendingTransfers returns chain's transfers PENDING for longer than age: their balance-transfer
// message was lost, dead-lettered, or left to a signer that died.
func (s *Store) StalePendingTransfers(ctx context.Context, chain string, age time.Duration) ([]*BalanceTransfer, error) {
	return s.queryTransfers(ctx, s.DB, `WHERE chain = ? AND status = ? AND created_at < ? ORDER BY created_at, id LIMIT 100`,
		chain, TransferPending, time.Now().UTC().Add(-age))
}

// TransfersBySentTx returns the transfers paid by a sent transaction, in id order.
func (s *Store) TransfersBySentTx(ctx context.Context, tx *sql.Tx, sentTxID int64) ([]*BalanceTransfer, error) {
	return s.queryTransfers(ctx, tx, `WHERE sent_tx_id = ? ORDER BY id`, sentTxID)
}

// LockPendingTransfers locks the rows of ids inside tx and fails with ErrConflict unless every one is
// still PENDING: deliveries and signers racing for the same transfers queue up here, and only the first
// signs them.
func (s *Store) LockPendingTransfers(ctx context.Context, tx *sql.Tx, ids []string) error {
	if len(ids) == 0 {
		return errors.New("lock balance transfers: none given")
	}
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	rows, err := tx.QueryContext(ctx, `SELECT id, status FROM balance_transfers WHERE id IN (?`+strings.Repeat(", ?", len(ids)-1)+`)
		ORDER BY id FOR UPDATE`, args...)
	if err != nil {
		return fmt.Errorf("lock balance transfers: %w", err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var id, status string
		if err := rows.Scan(&id, &status); err != nil {
			return fmt.Errorf("lock balance transfers: %w", err)
		}
		if status != TransferPending {
			return fmt.Errorf("balance transfer %s is %s: %w", id, status, ErrConflict)
		}
		n++
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("lock balance transfers: %w", err)
	}
	if n != len(ids) {
		return fmt.Errorf("lock balance transfers: %d of %d found: %w", n, len(ids), ErrNotFound)
	}
	return nil
}

// MarkTransfersSigned moves PENDING transfers to SIGNED with the transaction that pays them, inside the
// transaction that records it; ErrConflict when one was no longer PENDING.
func (s *Store) MarkTransfersSigned(ctx context.Context, tx *sql.Tx, ids []string, sentTxID int64, reason string) error {
	for _, id := range ids {
		res, err := tx.ExecContext(ctx, `UPDATE balance_transfers SET status = ?, sent_tx_id = ?, reason = ? WHERE id = ? AND status = ?`,
			TransferSigned, sentTxID, truncate(reason, 255), id, TransferPending)
		if err != nil {
			return fmt.Errorf("mark balance transfer %s signed: %w", id, err)
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			return fmt.Errorf("balance transfer %s is no longer pending: %w", id, ErrConflict)
		}
	}
	return nil
}

// SettleTransfer moves one SIGNED transfer to CONFIRMED or FAILED with the reason; a transfer already
// settled is left as it is.
func (s *Store) SettleTransfer(ctx context.Context, tx *sql.Tx, id, status, reason string) error {
	if status != TransferConfirmed && status != TransferFailed {
		return fmt.Errorf("settle balance transfer %s: %q is not a final status", id, status)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE balance_transfers SET status = ?, reason = ? WHERE id = ? AND status = ?`,
		status, truncate(reason, 255), id, TransferSigned); err != nil {
		return fmt.Errorf("settle balance transfer %s: %w", id, err)
	}
	return nil
}

// OpenTransfer is a transfer not yet settled, with the nonce of its transaction when it is signed: the
// caller compares it with its sender's mined nonce to tell whether the chain's balances show it yet.
type OpenTransfer struct {
	Kind, From, To, Asset string
	Amount                *big.Int
	Nonce                 *uint64 // nil while PENDING
}

// TransferBook is what accountmgr reads of chain's transfers before it reads balances: every open
// transfer, and how many transfers each (kind, account, asset) has had, the epoch of its next deficit.
type TransferBook struct {
	Open   []OpenTransfer
	Counts map[string]int64 // by TransferKey(kind, chain, account, asset, 0) minus the epoch: see CountKey
}

// CountKey indexes TransferBook.Counts.
func CountKey(kind, account, asset string) string {
	return kind + ":" + strings.ToLower(account) + ":" + asset
}

// Epoch is the epoch the next transfer of kind for account's asset takes.
func (b TransferBook) Epoch(kind, account, asset string) int64 {
	return b.Counts[CountKey(kind, account, asset)]
}

// Transfers reads chain's TransferBook.
func (s *Store) Transfers(ctx context.Context, chain string) (TransferBook, error) {
	b := TransferBook{Counts: map[string]int64{}}
	rows, err := s.DB.QueryContext(ctx, `SELECT kind, from_address, to_address, asset, COUNT(*) FROM balance_transfers
		WHERE chain = ? GROUP BY kind, from_address, to_address, asset`, chain)
	if err != nil {
		return b, fmt.Errorf("count balance transfers of %s: %w", chain, err)
	}
	for rows.Next() {
		var kind, from, to, asset string
		var n int64
		if err := rows.Scan(&kind, &from, &to, &asset, &n); err != nil {
			rows.Close()
			return b, fmt.Errorf("count balance transfers of %s: %w", chain, err)
		}
		account := to
		if kind == TransferSweep {
			account = from
		}
		b.Counts[CountKey(kind, account, asset)] += n
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return b, fmt.Errorf("count balance transfers of %s: %w", chain, err)
	}
	rows, err = s.DB.QueryContext(ctx, `SELECT bt.kind, bt.from_address, bt.to_address, bt.asset, bt.amount, st.nonce
		FROM balance_transfers bt LEFT JOIN sent_transactions st ON st.id = bt.sent_tx_id
		WHERE bt.chain = ? AND bt.status IN (?, ?)`, chain, TransferPending, TransferSigned)
	if err != nil {
		return b, fmt.Errorf("open balance transfers of %s: %w", chain, err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			o      OpenTransfer
			amount string
			nonce  sql.NullInt64
		)
		if err := rows.Scan(&o.Kind, &o.From, &o.To, &o.Asset, &amount, &nonce); err != nil {
			return b, fmt.Errorf("open balance transfers of %s: %w", chain, err)
		}
		v, ok := new(big.Int).SetString(amount, 10)
		if !ok {
			return b, fmt.Errorf("open balance transfers of %s: amount %q is not an integer", chain, amount)
		}
		o.Amount = v
		if nonce.Valid {
			n := uint64(nonce.Int64)
			o.Nonce = &n
		}
		b.Open = append(b.Open, o)
	}
	return b, rows.Err()
}

// UnminedOutflows is Outflows restricted to one wallet's transactions at or above its mined nonce: what
// is signed out of from and that the chain's balance does not show yet. Outflows counts a transaction
// until it is confirmed; a balance read at the head already shows a mined one, so a deficit computed
// with Outflows would count those twice and top up too much.
func (s *Store) UnminedOutflows(ctx context.Context, chain, from string, minedNonce uint64) (map[string]*big.Int, error) {
	rows, err := s.DB.QueryContext(ctx, `
		SELECT w.asset, w.amount
		FROM withdrawals w JOIN sent_transactions st ON st.id = w.sent_tx_id
		WHERE w.chain = ? AND st.from_address = ? AND st.nonce >= ? AND st.status IN (?, ?)`,
		chain, from, minedNonce, TxSigned, TxBroadcasted)
	if err != nil {
		return nil, fmt.Errorf("unmined outflows of %s: %w", from, err)
	}
	defer rows.Close()
	out := map[string]*big.Int{}
	for rows.Next() {
		var asset, amount string
		if err := rows.Scan(&asset, &amount); err != nil {
			return nil, fmt.Errorf("unmined outflows of %s: %w", from, err)
		}
		v, ok := new(big.Int).SetString(amount, 10)
		if !ok {
			return nil, fmt.Errorf("unmined outflows of %s: amount %q is not an integer", from, amount)
		}
		if out[asset] == nil {
			out[asset] = new(big.Int)
		}
		out[asset].Add(out[asset], v)
	}
	return out, rows.Err()
}

// FailPendingTransfer moves a PENDING transfer that can never be signed (a sweep whose excess is gone)
// to FAILED with the reason; the next balance check answers the account's band afresh.
func (s *Store) FailPendingTransfer(ctx context.Context, id, reason string) error {
	if _, err := s.DB.ExecContext(ctx, `UPDATE balance_transfers SET status = ?, reason = ? WHERE id = ? AND status = ?`,
		TransferFailed, truncate(reason, 255), id, TransferPending); err != nil {
		return fmt.Errorf("fail balance transfer %s: %w", id, err)
	}
	return nil
}
