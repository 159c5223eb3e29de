package store

import (
	"context"
	"database/sql"
	"fmt"
)

// MinedTx is a settled transaction as the reorg watch sees it: where its receipt put it.
type MinedTx struct {
	ID            int64
	Chain         string
	From          string
	Nonce         uint64
	Hash          string // the attempt that was mined
	BlockNumber   uint64
	BlockHash     string
	CorrelationID string
}

// ConfirmedSince lists the CONFIRMED transactions of a chain mined at block `from` or later, by block
// (idx_sent_tx_mined).
func (s *Store) ConfirmedSince(ctx context.Context, chainID, from uint64) ([]MinedTx, error) {
	rows, err := s.DB.QueryContext(ctx, `SELECT id, chain, from_address, nonce, tx_hash, block_number, block_hash, correlation_id
		FROM sent_transactions WHERE chain_id = ? AND status = ? AND block_number >= ? ORDER BY block_number, id`, chainID, TxConfirmed, from)
	if err != nil {
		return nil, fmt.Errorf("confirmed txs of chain %d since block %d: %w", chainID, from, err)
	}
	defer rows.Close()
	var out []MinedTx
	for rows.Next() {
		var (
			m    MinedTx
			hash sql.NullString
		)
		if err := rows.Scan(&m.ID, &m.Chain, &m.From, &m.Nonce, &m.Hash, &m.BlockNumber, &hash, &m.CorrelationID); err != nil {
			return nil, err
		}
		m.BlockHash = hash.String
		out = append(out, m)
	}
	return out, rows.Err()
}

// ReopenReorged is the one way back from CONFIRMED: the block that confirmed sent transaction id (its
// recorded hash blockHash) left the canonical chain after the confirmation depth. The transaction goes
// back to BROADCASTED with the bytes of the attempt that was mined (any attempt of the nonce pays the
// same; that one is known to be valid), its receipt and stuck clock cleared and its attempts in flight
// again; each of its CONFIRMED (or, by a mined cancel, CANCELED) withdrawals goes back to BROADCASTED with reason, by
// ActorRecovery. It returns the withdrawals re-opened.
//
// The update is conditional on the row being CONFIRMED in blockHash, so of several recovery instances
// that see the same reorg only one re-opens it; the others get ErrConflict. A transaction confirmed
// again (in another block) is a new fact and can be re-opened again if that block goes too.
func (s *Store) ReopenReorged(ctx context.Context, tx *sql.Tx, id int64, blockHash, reason string) ([]*Withdrawal, error) {
	res, err := tx.ExecContext(ctx, `UPDATE sent_transactions st JOIN tx_attempts a ON a.sent_tx_id = st.id AND a.tx_hash = st.tx_hash
		SET st.status = ?, st.raw_tx = a.raw_tx, st.max_fee_per_gas = a.max_fee_per_gas, st.max_priority_fee = a.max_priority_fee,
			st.block_number = NULL, st.block_hash = NULL, st.receipt_status = NULL, st.gas_used = NULL, st.attempt_block = NULL
		WHERE st.id = ? AND st.status = ? AND st.block_hash = ?`, TxBroadcasted, id, TxConfirmed, blockHash)
	if err != nil {
		return nil, fmt.Errorf("re-open reorged sent tx %d: %w", id, err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return nil, fmt.Errorf("re-open reorged sent tx %d: %w", id, ErrConflict)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE tx_attempts SET status = ? WHERE sent_tx_id = ?`, AttemptSigned, id); err != nil {
		return nil, fmt.Errorf("attempts of reorged sent tx %d: %w", id, err)
	}
	// Top-ups and sweeps it paid are open again too, until the monitor settles it afresh.
	if _, err := tx.ExecContext(ctx, `UPDATE balance_transfers SET status = ? WHERE sent_tx_id = ? AND status IN (?, ?)`,
		TransferSigned, id, TransferConfirmed, TransferFailed); err != nil {
		return nil, fmt.Errorf("balance transfers of reorged sent tx %d: %w", id, err)
	}
	ws, err := s.WithdrawalsBySentTx(ctx, tx, id)
	if err != nil {
		return nil, err
	}
	var out []*Withdrawal
	for _, w := range ws {
		// CANCELED here means a cancel attempt of this transaction mined (a withdrawal canceled before
		// signing has no transaction): with its block gone, the payment may mine instead, so it is
		// followed again too.
		if w.Status != Confirmed && w.Status != Canceled {
			continue // failed inside a batch, or never confirmed: not re-opened
		}
		if err := s.Transition(ctx, tx, w.ID, w.Status, Broadcasted, reason, ActorRecovery, Change{ClearBlock: true}); err != nil {
			return nil, err
		}
		w.Status, w.BlockNumber = Broadcasted, nil
		out = append(out, w)
	}
	return out, nil
}

// SentTxOfAttempt returns the sent transaction one of whose attempts has hash h.
func (s *Store) SentTxOfAttempt(ctx context.Context, h string) (*SentTx, error) {
	var id int64
	err := s.DB.QueryRowContext(ctx, `SELECT sent_tx_id FROM tx_attempts WHERE tx_hash = ?`, h).Scan(&id)
	if err == sql.ErrNoRows {
		return nil, fmt.Errorf("attempt %s: %w", h, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("attempt %s: %w", h, err)
	}
	return s.GetSentTx(ctx, id)
}

// RecordBatchReturn notes, inside tx, that withdrawal id was given back to be signed again after its
// batch, sent transaction sentTxID, reverted.
func (s *Store) RecordBatchReturn(ctx context.Context, tx *sql.Tx, sentTxID int64, id string) error {
	if _, err := tx.ExecContext(ctx, `INSERT IGNORE INTO batch_returns (sent_tx_id, withdrawal_id) VALUES (?, ?)`, sentTxID, id); err != nil {
		return fmt.Errorf("record return of %s from sent tx %d: %w", id, sentTxID, err)
	}
	return nil
}

// BatchReturns lists the withdrawals given back to be signed again when sent transaction sentTxID
// reverted.
func (s *Store) BatchReturns(ctx context.Context, sentTxID int64) ([]string, error) {
	rows, err := s.DB.QueryContext(ctx, `SELECT withdrawal_id FROM batch_returns WHERE sent_tx_id = ? ORDER BY withdrawal_id`, sentTxID)
	if err != nil {
		return nil, fmt.Errorf("returns of sent tx %d: %w", sentTxID, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, rows.Err()
}

// RevertedSince lists the FAILED transactions of a chain whose receipt (status 0, reverted) is in block
// `from` or later: a reorg could put them back and mine them successfully.
func (s *Store) RevertedSince(ctx context.Context, chainID, from uint64) ([]MinedTx, error) {
	rows, err := s.DB.QueryContext(ctx, `SELECT id, chain, from_address, nonce, tx_hash, block_number, block_hash, correlation_id
		FROM sent_transactions WHERE chain_id = ? AND status = ? AND receipt_status = 0 AND block_number >= ? ORDER BY block_number, id`,
		chainID, TxFailed, from)
	if err != nil {
		return nil, fmt.Errorf("reverted txs of chain %d since block %d: %w", chainID, from, err)
	}
	defer rows.Close()
	var out []MinedTx
	for rows.Next() {
		var (
			m    MinedTx
			hash sql.NullString
		)
		if err := rows.Scan(&m.ID, &m.Chain, &m.From, &m.Nonce, &m.Hash, &m.BlockNumber, &hash, &m.CorrelationID); err != nil {
			return nil, err
		}
		m.BlockHash = hash.String
		out = append(out, m)
	}
	return out, rows.Err()
}

// MoveReverted records that the reverted transaction id, recorded in block blockHash, is now in another
// block (r): reverted again there (status 0), or mined successfully (status 1, which a person must look
// at: it paid). Conditional on the recorded block, so of several recovery instances one records it.
func (s *Store) MoveReverted(ctx context.Context, tx *sql.Tx, id int64, blockHash string, r Receipt) error {
	res, err := tx.ExecContext(ctx, `UPDATE sent_transactions SET tx_hash = ?, block_number = ?, block_hash = ?, receipt_status = ?, gas_used = ?
		WHERE id = ? AND status = ? AND block_hash = ?`, r.Hash, r.BlockNumber, r.BlockHash, r.Status, r.GasUsed, id, TxFailed, blockHash)
	if err != nil {
		return fmt.Errorf("move reverted sent tx %d: %w", id, err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return fmt.Errorf("move reverted sent tx %d: %w", id, ErrConflict)
	}
	return nil
}

// NoteHistory writes a history row of withdrawal id in its current status (not a change of status),
// inside tx: a fact a person must see next to the withdrawal.
func (s *Store) NoteHistory(ctx context.Context, tx *sql.Tx, id, reason string, actor Actor) error {
	if _, err := tx.ExecContext(ctx, `INSERT INTO withdrawal_history (withdrawal_id, from_status, to_status, reason, actor)
		SELECT id, status, status, LEFT(?, 1000), ? FROM withdrawals WHERE id = ?`, reason, actor, id); err != nil {
		return fmt.Errorf("history note of %s: %w", id, err)
	}
	return nil
}
