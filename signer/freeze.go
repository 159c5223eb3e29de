package signer

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/sluice-custody/sluice/internal/queue"
	"github.com/sluice-custody/sluice/internal/store"
)

// A frozen hot wallet (wallet_freezes: its key was used outside Sluice, see recovery/conflict.go) is
// never signed with: the wallet choice gives it nothing and the chain's other wallets go on paying. When
// every wallet of a chain is frozen, its withdrawals wait PENDING, with a history row saying why, until
// an operator unfreezes one (store.UnfreezeWallet). They never fail for it.

// errWalletFrozen is returned (wrapped) when the wallet a withdrawal would be paid from is frozen.
var errWalletFrozen = errors.New("hot wallet frozen")

// frozenWait is how long a withdrawal whose wallet is frozen waits before its request is looked at again.
const frozenWait = time.Minute

// checkFrozen fails with errWalletFrozen when (chain, from) is frozen; q may be the transaction that
// records the signature, so a freeze committed before it is always seen.
func (s *Signer) checkFrozen(ctx context.Context, q store.RowQuerier, chain, from string) error {
	f, err := s.store.WalletFreeze(ctx, q, chain, from)
	if err != nil {
		return err
	}
	if f != nil {
		return fmt.Errorf("%w: %s on %s since %s by %s: %s", errWalletFrozen, from, chain, f.FrozenAt.Format(time.RFC3339), f.FrozenBy, f.Reason)
	}
	return nil
}

// frozenReason is the history reason of a withdrawal waiting for its wallet.
func frozenReason(cause error) string {
	return fmt.Sprintf("waiting: %v; the withdrawal is signed once an operator unfreezes the wallet", cause)
}

// holdFrozen keeps a withdrawal of a frozen wallet PENDING (moving it back from SIGNING when from is
// SIGNING), notes why once, and asks for it again after frozenWait.
func (s *Signer) holdFrozen(ctx context.Context, log *slog.Logger, w *store.Withdrawal, from store.Status, correlationID string, cause error) error {
	reason := frozenReason(cause)
	if from == store.Signing {
		err := s.store.InTx(ctx, func(tx *sql.Tx) error {
			return s.store.Transition(ctx, tx, w.ID, store.Signing, store.Pending, reason, store.ActorSigner, store.Change{})
		})
		if errors.Is(err, store.ErrConflict) {
			return nil // moved meanwhile; whoever moved it goes on from there
		}
		if err != nil {
			return err
		}
	} else if err := s.store.NoteWaiting(ctx, w.Chain, w.ID, reason, store.ActorSigner); err != nil {
		return err
	}
	body, err := queue.NewEnvelope(ctx, queue.TypeWithdrawalRequested, queue.NewID(), correlationID, queue.WithdrawalRequested{WithdrawalID: w.ID})
	if err != nil {
		return err
	}
	log.Warn("hot wallet frozen; withdrawal waits pending", "err", cause)
	return s.store.InTx(ctx, func(tx *sql.Tx) error {
		return s.queue.SendTx(ctx, tx, queue.TxRequest, body, queue.SendOptions{Delay: frozenWait})
	})
}
