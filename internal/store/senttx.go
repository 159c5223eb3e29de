package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/big"
	"time"
)

// SentTx statuses.
const (
	TxSigned      = "SIGNED"
	TxBroadcasted = "BROADCASTED"
	TxConfirmed   = "CONFIRMED"
	TxFailed      = "FAILED"
)

// Attempt statuses (tx_attempts.status).
const (
	AttemptSigned   = "signed"   // in flight, or waiting to be
	AttemptMined    = "mined"    // the attempt whose receipt settled its transaction
	AttemptReplaced = "replaced" // another attempt of the same nonce was mined
)

// SentTx is a signed transaction as recorded before it leaves the process.
type SentTx struct {
	ID             int64
	Chain          string
	ChainID        uint64
	From           string
	Nonce          uint64
	To             string
	Hash           string
	Raw            []byte
	GasLimit       uint64
	MaxFeePerGas   *big.Int
	MaxPriorityFee *big.Int
	Kind           string
	Source         string
	RequestID      string
	Status         string
	BlockNumber    *uint64
	BlockHash      string
	ReceiptStatus  *int
	GasUsed        *uint64
	CorrelationID  string
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// ErrNonceTaken is returned (wrapped) when a transaction is already recorded at the nonce being recorded:
// the unique (chain, from, nonce) key refused a second payload for it.
var ErrNonceTaken = errors.New("nonce already recorded")

// InsertSentTx records t and its first attempt inside tx. A second payload for the same (chain, from,
// nonce) fails with ErrNonceTaken.
func (s *Store) InsertSentTx(ctx context.Context, tx *sql.Tx, t *SentTx) (int64, error) {
	var reqID any
	if t.RequestID != "" {
		reqID = t.RequestID
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO sent_transactions (chain, chain_id, from_address, nonce, to_address, tx_hash,
		raw_tx, gas_limit, max_fee_per_gas, max_priority_fee, kind, source, request_id, status, correlation_id)
		VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`,
		t.Chain, t.ChainID, t.From, t.Nonce, t.To, t.Hash, t.Raw, t.GasLimit, t.MaxFeePerGas.String(), t.MaxPriorityFee.String(),
		t.Kind, t.Source, reqID, TxSigned, t.CorrelationID)
	if IsDuplicate(err) {
		// The only unique key of sent_transactions besides the id is uq_sent_tx_nonce.
		return 0, fmt.Errorf("record tx %s/%d: %w: %w", t.From, t.Nonce, ErrNonceTaken, err)
	}
	if err != nil {
		return 0, fmt.Errorf("record tx %s/%d: %w", t.From, t.Nonce, err)
	}
	id, err := res.LastInsertId()
	if err != nil {
		return 0, err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO tx_attempts (sent_tx_id, tx_hash, raw_tx, max_fee_per_gas, max_priority_fee)
		VALUES (?,?,?,?,?)`, id, t.Hash, t.Raw, t.MaxFeePerGas.String(), t.MaxPriorityFee.String()); err != nil {
		return 0, fmt.Errorf("record attempt %s: %w", t.Hash, err)
	}
	t.ID, t.Status = id, TxSigned
	return id, nil
}

const sentTxCols = `id, chain, chain_id, from_address, nonce, to_address, tx_hash, raw_tx, gas_limit, max_fee_per_gas,
	max_priority_fee, kind, source, request_id, status, block_number, block_hash, receipt_status, gas_used,
	correlation_id, created_at, updated_at`

func scanSentTx(r scanner) (*SentTx, error) {
	var (
		t                    SentTx
		maxFee, tip          string
		reqID, blockHash     sql.NullString
		block, rstat, gasUse sql.NullInt64
	)
	if err := r.Scan(&t.ID, &t.Chain, &t.ChainID, &t.From, &t.Nonce, &t.To, &t.Hash, &t.Raw, &t.GasLimit, &maxFee, &tip,
		&t.Kind, &t.Source, &reqID, &t.Status, &block, &blockHash, &rstat, &gasUse, &t.CorrelationID, &t.CreatedAt, &t.UpdatedAt); err != nil {
		return nil, err
	}
	t.MaxFeePerGas, _ = new(big.Int).SetString(maxFee, 10)
	t.MaxPriorityFee, _ = new(big.Int).SetString(tip, 10)
	t.RequestID, t.BlockHash = reqID.String, blockHash.String
	if block.Valid {
		b := uint64(block.Int64)
		t.BlockNumber = &b
	}
	if rstat.Valid {
		r := int(rstat.Int64)
		t.ReceiptStatus = &r
	}
	if gasUse.Valid {
		g := uint64(gasUse.Int64)
		t.GasUsed = &g
	}
	return &t, nil
}

// GetSentTx loads a sent transaction by id.
func (s *Store) GetSentTx(ctx context.Context, id int64) (*SentTx, error) {
	t, err := scanSentTx(s.DB.QueryRowContext(ctx, `SELECT `+sentTxCols+` FROM sent_transactions WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("load sent tx %d: %w", id, err)
	}
	return t, nil
}

// ReplaceAttempt records t as the new current attempt of sent transaction t.ID (same nonce, new fees),
// replacing the attempt whose hash is prevHash while the row is still in prevStatus (SIGNED: a re-fee
// before the node took it; BROADCASTED: a fee bump of a transaction stuck in the pool), and keeps it in
// tx_attempts next to every earlier one. The status is kept, and the stuck clock (attempt_block)
// restarts. It returns ErrConflict when the row left prevStatus or its current attempt is no longer
// prevHash (replaced, sent or settled by someone else first): this compare-and-swap is what lets several
// workers or recovery instances race over one transaction and replace it only once.
func (s *Store) ReplaceAttempt(ctx context.Context, tx *sql.Tx, t *SentTx, prevHash, prevStatus string) error {
	if prevStatus != TxSigned && prevStatus != TxBroadcasted {
		return fmt.Errorf("replace attempt %s of sent tx %d in status %s: %w", prevHash, t.ID, prevStatus, ErrConflict)
	}
	res, err := tx.ExecContext(ctx, `UPDATE sent_transactions SET tx_hash = ?, raw_tx = ?, max_fee_per_gas = ?, max_priority_fee = ?,
		attempt_block = NULL WHERE id = ? AND tx_hash = ? AND status = ?`,
		t.Hash, t.Raw, t.MaxFeePerGas.String(), t.MaxPriorityFee.String(), t.ID, prevHash, prevStatus)
	if err != nil {
		return fmt.Errorf("replace attempt %s of sent tx %d: %w", prevHash, t.ID, err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return fmt.Errorf("replace attempt %s of sent tx %d: %w", prevHash, t.ID, ErrConflict)
	}
	// A bump keeps the kind of the attempt it replaces (a cancel bumped is still a cancel).
	kind := AttemptPayment
	if err := tx.QueryRowContext(ctx, `SELECT kind FROM tx_attempts WHERE tx_hash = ?`, prevHash).Scan(&kind); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("kind of attempt %s: %w", prevHash, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO tx_attempts (sent_tx_id, tx_hash, raw_tx, max_fee_per_gas, max_priority_fee, kind)
		VALUES (?,?,?,?,?,?)`, t.ID, t.Hash, t.Raw, t.MaxFeePerGas.String(), t.MaxPriorityFee.String(), kind); err != nil {
		return fmt.Errorf("record attempt %s: %w", t.Hash, err)
	}
	t.Status = prevStatus
	return nil
}

// AttemptHashes lists every hash ever signed for a sent transaction, newest first.
func (s *Store) AttemptHashes(ctx context.Context, sentTxID int64) ([]string, error) {
	rows, err := s.DB.QueryContext(ctx, `SELECT tx_hash FROM tx_attempts WHERE sent_tx_id = ? ORDER BY id DESC`, sentTxID)
	if err != nil {
		return nil, fmt.Errorf("attempts of %d: %w", sentTxID, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var h string
		if err := rows.Scan(&h); err != nil {
			return nil, err
		}
		out = append(out, h)
	}
	return out, rows.Err()
}

// NextNonce returns one past the highest nonce recorded for (chainID, from), or 0 when none is.
func (s *Store) NextNonce(ctx context.Context, chainID uint64, from string) (uint64, error) {
	var n sql.NullInt64
	if err := s.DB.QueryRowContext(ctx, `SELECT MAX(nonce) FROM sent_transactions WHERE chain_id = ? AND from_address = ?`,
		chainID, from).Scan(&n); err != nil {
		return 0, fmt.Errorf("max nonce of %s: %w", from, err)
	}
	if !n.Valid {
		return 0, nil
	}
	return uint64(n.Int64) + 1, nil
}

// NonceRecorded reports whether a transaction is recorded for (chainID, from, nonce).
func (s *Store) NonceRecorded(ctx context.Context, chainID uint64, from string, nonce uint64) (bool, error) {
	var one int
	err := s.DB.QueryRowContext(ctx, `SELECT 1 FROM sent_transactions WHERE chain_id = ? AND from_address = ? AND nonce = ?`,
		chainID, from, nonce).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

// SetSentTxStatus moves a sent transaction from one status to another; ErrConflict when it was not in from.
func (s *Store) SetSentTxStatus(ctx context.Context, tx *sql.Tx, id int64, from, to string) error {
	res, err := tx.ExecContext(ctx, `UPDATE sent_transactions SET status = ? WHERE id = ? AND status = ?`, to, id, from)
	if err != nil {
		return fmt.Errorf("sent tx %d %s→%s: %w", id, from, to, err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return fmt.Errorf("sent tx %d %s→%s: %w", id, from, to, ErrConflict)
	}
	return nil
}

// Receipt is what the monitor learned of a mined transaction.
type Receipt struct {
	Hash        string
	BlockNumber uint64
	BlockHash   string
	Status      int
	GasUsed     uint64
	// EffectiveGasPrice is what the mined attempt paid per gas; nil when the node did not say.
	EffectiveGasPrice *big.Int
}

// FinishSentTx records the final receipt and status of a sent transaction, from any non-final status.
func (s *Store) FinishSentTx(ctx context.Context, tx *sql.Tx, id int64, status string, r Receipt) error {
	var price any
	if r.EffectiveGasPrice != nil {
		price = r.EffectiveGasPrice.String()
	}
	res, err := tx.ExecContext(ctx, `UPDATE sent_transactions SET status = ?, tx_hash = ?, block_number = ?, block_hash = ?,
		receipt_status = ?, gas_used = ?, effective_gas_price = ? WHERE id = ? AND status IN (?, ?)`,
		status, r.Hash, r.BlockNumber, r.BlockHash, r.Status, r.GasUsed, price, id, TxSigned, TxBroadcasted)
	if err != nil {
		return fmt.Errorf("finish sent tx %d: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return fmt.Errorf("finish sent tx %d: %w", id, ErrConflict)
	}
	// Only one attempt of a nonce can be mined: the one the receipt names; the others were replaced.
	if _, err := tx.ExecContext(ctx, `UPDATE tx_attempts SET status = CASE WHEN tx_hash = ? THEN ? ELSE ? END WHERE sent_tx_id = ?`,
		r.Hash, AttemptMined, AttemptReplaced, id); err != nil {
		return fmt.Errorf("mark attempts of sent tx %d: %w", id, err)
	}
	return nil
}

// SignedBelow lists the transactions of (chainID, from) still waiting to be broadcast with a nonce below
// nonce, lowest first: they must reach the node before the one at nonce.
func (s *Store) SignedBelow(ctx context.Context, chainID uint64, from string, nonce uint64) ([]*SentTx, error) {
	rows, err := s.DB.QueryContext(ctx, `SELECT `+sentTxCols+` FROM sent_transactions
		WHERE chain_id = ? AND from_address = ? AND nonce < ? AND status = ? ORDER BY nonce`, chainID, from, nonce, TxSigned)
	if err != nil {
		return nil, fmt.Errorf("unsent txs of %s below %d: %w", from, nonce, err)
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

// UnrecordedNonces lists the nonces of (chainID, from) from start up to the highest recorded one that
// have no recorded transaction: gaps that later transactions of the address wait behind.
func (s *Store) UnrecordedNonces(ctx context.Context, chainID uint64, from string, start uint64) ([]uint64, error) {
	rows, err := s.DB.QueryContext(ctx, `SELECT nonce FROM sent_transactions WHERE chain_id = ? AND from_address = ? AND nonce >= ?
		ORDER BY nonce`, chainID, from, start)
	if err != nil {
		return nil, fmt.Errorf("recorded nonces of %s: %w", from, err)
	}
	defer rows.Close()
	var holes []uint64
	next := start
	for rows.Next() {
		var n uint64
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		for ; next < n; next++ {
			holes = append(holes, next)
		}
		next = n + 1
	}
	return holes, rows.Err()
}
