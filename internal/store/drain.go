package store

import (
	"context"
	"fmt"
)

// WalletBusy is what a wallet still has under way, counted by DrainState.
type WalletBusy struct {
	// SentTxs are its transactions signed and not yet CONFIRMED or FAILED (withdrawals, batches, sweeps,
	// approvals, nonce fills): recovery still bumps them, so its key is still needed.
	SentTxs int
	// Signing are withdrawals in SIGNING that already name it. The signer writes from_address with the
	// signature today, so this is 0 in practice; it is counted so that a path recording the wallet at
	// assignment can never let a sweep race a payment.
	Signing int
	// Transfers are balance transfers from it (sweeps) not yet signed.
	Transfers int
}

// Idle reports whether nothing is under way.
func (b WalletBusy) Idle() bool { return b.SentTxs == 0 && b.Signing == 0 && b.Transfers == 0 }

func (b WalletBusy) String() string {
	return fmt.Sprintf("%d transactions unconfirmed, %d withdrawals being signed, %d sweeps queued", b.SentTxs, b.Signing, b.Transfers)
}

// DrainState counts what wallet from of chain still has under way: what must finish before a draining
// wallet is swept and its key retired. Addresses are compared case-insensitively (stored checksummed
// or lower-case).
func (s *Store) DrainState(ctx context.Context, chain string, from string) (WalletBusy, error) {
	var b WalletBusy
	err := s.DB.QueryRowContext(ctx, `
		SELECT
		  (SELECT COUNT(*) FROM sent_transactions WHERE chain = ? AND LOWER(from_address) = LOWER(?) AND status NOT IN (?, ?)),
		  (SELECT COUNT(*) FROM withdrawals WHERE chain = ? AND LOWER(from_address) = LOWER(?) AND status = ?),
		  (SELECT COUNT(*) FROM balance_transfers WHERE chain = ? AND LOWER(from_address) = LOWER(?) AND status = ?)`,
		chain, from, TxConfirmed, TxFailed,
		chain, from, Signing,
		chain, from, TransferPending).Scan(&b.SentTxs, &b.Signing, &b.Transfers)
	if err != nil {
		return b, fmt.Errorf("drain state of %s on %s: %w", from, chain, err)
	}
	return b, nil
}
