package store

// The rules of a speed-up and a cancel, shared by the public API (a client's own withdrawal) and the
// admin API (an operator's): one place decides what can be sped up or canceled and records it, so the
// two can never disagree.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// Why a speed-up or a cancel is refused (Refused.Code); each API maps them to its own status.
const (
	RefusedTerminal      = "terminal"                      // nothing to act on: CONFIRMED, FAILED, CANCELED, or mined since
	RefusedNotSigned     = "not_signed"                    // speed-up before anything is signed
	RefusedCancelInBatch = "cancel_not_supported_in_batch" // one payment out of a signed batch
	RefusedNotCancelable = "not_cancelable"                // a cancel in a state that allows none
)

// Refused is a speed-up or cancel the rules do not allow, with the message for the caller.
type Refused struct {
	Code    string
	Message string
}

func (r *Refused) Error() string { return r.Message }

// SpeedUpTarget returns the signed transaction a speed-up of w would replace, or a *Refused.
func (s *Store) SpeedUpTarget(ctx context.Context, w *Withdrawal) (*SentTx, error) {
	if w.Status.Terminal() {
		return nil, &Refused{RefusedTerminal, "withdrawal is " + string(w.Status) + "; there is nothing to speed up"}
	}
	if w.SentTxID == nil || w.Status == Pending || w.Status == Signing || w.Status == AwaitingApproval {
		return nil, &Refused{RefusedNotSigned, "withdrawal is " + string(w.Status) + " and has no signed transaction yet; there is nothing to speed up"}
	}
	st, err := s.GetSentTx(ctx, *w.SentTxID)
	if err != nil {
		return nil, err
	}
	if st.Status != TxSigned && st.Status != TxBroadcasted {
		// Mined since the withdrawal was read: the monitor is settling it.
		return nil, &Refused{RefusedTerminal, "the withdrawal's transaction is " + st.Status + "; there is nothing to speed up"}
	}
	return st, nil
}

// RequestSpeedUp records a speed-up of w's transaction for recovery (which holds the keys): the same
// nonce, the same payload, higher fees. Idempotent per attempt: asked twice before the bump, one bump
// (created false the second time).
func (s *Store) RequestSpeedUp(ctx context.Context, w *Withdrawal) (*TxAction, *SentTx, bool, error) {
	st, err := s.SpeedUpTarget(ctx, w)
	if err != nil {
		return nil, nil, false, err
	}
	a, created, err := s.RequestTxAction(ctx, TxAction{WithdrawalID: w.ID, SentTxID: st.ID, Chain: st.Chain,
		Kind: ActionSpeedUp, BaseHash: st.Hash}, "", "", "")
	return a, st, created, err
}

// CancelTarget says what a cancel of w would do: nil, nil for a withdrawal not signed yet (it moves to
// CANCELED at once); the transaction a zero-value self-transfer would replace for a SIGNED or
// BROADCASTED one; a *Refused otherwise.
func (s *Store) CancelTarget(ctx context.Context, w *Withdrawal) (*SentTx, error) {
	switch w.Status {
	case Pending, AwaitingApproval:
		return nil, nil
	case Signed, Broadcasted:
	default:
		return nil, &Refused{RefusedNotCancelable, "withdrawal is " + string(w.Status) + "; only AWAITING_APPROVAL, PENDING, SIGNED and BROADCASTED withdrawals can be canceled"}
	}
	if w.BatchID != "" {
		// Replacing a batch by one without this item is not built: the item would be paid with the
		// others unless the whole batch were canceled, which would cancel other clients' payments.
		return nil, &Refused{RefusedCancelInBatch, "withdrawal is " + string(w.Status) + " inside batch " + w.BatchID +
			"; canceling one payment out of a signed batch is not supported"}
	}
	if w.SentTxID == nil {
		return nil, &Refused{RefusedNotCancelable, "withdrawal is " + string(w.Status) + " without a recorded transaction"}
	}
	st, err := s.GetSentTx(ctx, *w.SentTxID)
	if err != nil {
		return nil, err
	}
	if st.Status != TxSigned && st.Status != TxBroadcasted {
		return nil, &Refused{RefusedNotCancelable, "the withdrawal's transaction is " + st.Status + "; it can no longer be canceled"}
	}
	return st, nil
}

// Cancel is what RequestCancel did.
type Cancel struct {
	// Canceled: the withdrawal was not signed and is CANCELED now.
	Canceled bool
	// Action is the recorded cancel of the signed transaction (recovery performs it), Created false
	// when it was recorded before.
	Action  *TxAction
	SentTx  *SentTx
	Created bool
}

// RequestCancel cancels w: a withdrawal not signed yet moves to CANCELED now (reason, by actor); a
// signed one gets a cancel recorded for recovery (a zero-value self-transfer at the same nonce; the
// monitor settles by whichever mines). A withdrawal a worker moved first is a *Refused naming its state.
func (s *Store) RequestCancel(ctx context.Context, w *Withdrawal, reason string, actor Actor) (Cancel, error) {
	st, err := s.CancelTarget(ctx, w)
	if err != nil {
		return Cancel{}, err
	}
	if st != nil {
		a, created, err := s.RequestTxAction(ctx, TxAction{WithdrawalID: w.ID, SentTxID: st.ID, Chain: st.Chain,
			Kind: ActionCancel}, ReasonCancelRequested, w.Status, actor)
		return Cancel{Action: a, SentTx: st, Created: created}, err
	}
	err = s.InTx(ctx, func(tx *sql.Tx) error {
		return s.Transition(ctx, tx, w.ID, w.Status, Canceled, reason, actor, Change{})
	})
	if errors.Is(err, ErrConflict) {
		cur, gerr := s.GetWithdrawal(ctx, w.ID)
		if gerr != nil {
			return Cancel{}, gerr
		}
		return Cancel{}, &Refused{RefusedNotCancelable, "withdrawal is " + string(cur.Status) +
			"; only AWAITING_APPROVAL, PENDING, SIGNED and BROADCASTED withdrawals can be canceled"}
	}
	if err != nil {
		return Cancel{}, fmt.Errorf("cancel %s: %w", w.ID, err)
	}
	return Cancel{Canceled: true}, nil
}
