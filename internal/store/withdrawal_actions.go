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

// CancelTarget says what a cancel of w would do: nil for a withdrawal not signed yet (it moves to
// CANCELED at once, or, while a signer holds it in SIGNING, whichever of the two commits first wins);
// for a SIGNED or BROADCASTED one, the transaction to replace at its nonce and the action kind:
// ActionCancel (a zero-value self-transfer) when the withdrawal is alone in it, ActionCancelItem (the
// same batch without this payment) inside a multicall3 or batch_erc20 batch; a *Refused otherwise.
func (s *Store) CancelTarget(ctx context.Context, w *Withdrawal) (*SentTx, string, error) {
	switch w.Status {
	case Pending, AwaitingApproval, Signing:
		return nil, "", nil
	case Signed, Broadcasted:
	default:
		return nil, "", &Refused{RefusedNotCancelable, "withdrawal is " + string(w.Status) + "; only AWAITING_APPROVAL, PENDING, SIGNING, SIGNED and BROADCASTED withdrawals can be canceled"}
	}
	if w.SentTxID == nil {
		return nil, "", &Refused{RefusedNotCancelable, "withdrawal is " + string(w.Status) + " without a recorded transaction"}
	}
	st, err := s.GetSentTx(ctx, *w.SentTxID)
	if err != nil {
		return nil, "", err
	}
	if st.Status != TxSigned && st.Status != TxBroadcasted {
		return nil, "", &Refused{RefusedNotCancelable, "the withdrawal's transaction is " + st.Status + "; it can no longer be canceled"}
	}
	kind := ActionCancel
	if w.BatchID != "" {
		// One payment out of a batch: recovery replaces the batch at its nonce by the same batch without
		// it. That needs a batch whose call it can rebuild item by item; anything else is refused.
		b, err := s.BatchBySentTx(ctx, s.DB, st.ID)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return nil, "", err
		}
		if b == nil || b.ID != w.BatchID || (b.Mode != BatchMulticall3 && b.Mode != BatchERC20) {
			mode := "unknown"
			if b != nil {
				mode = b.Mode
			}
			return nil, "", &Refused{RefusedCancelInBatch, "withdrawal is " + string(w.Status) + " inside batch " + w.BatchID +
				" (mode " + mode + "); only multicall3 and batch_erc20 batches can have one payment canceled out of them"}
		}
		kind = ActionCancelItem
	}
	return st, kind, nil
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
	// Status is the withdrawal's state the answer describes (SIGNED or BROADCASTED for a recorded cancel).
	Status Status
}

// RequestCancel cancels w: a withdrawal not signed yet moves to CANCELED now (reason, by actor); a
// signed one gets a cancel recorded for recovery (ActionCancel or ActionCancelItem, see CancelTarget;
// the monitor settles by whichever attempt mines).
//
// While a signer holds w in SIGNING, the row decides. The signer records a signature in the same
// database transaction as SIGNING → SIGNED, holding the row lock, and the lock below queues behind it:
// either the signature commits first and the cancel finds SIGNED (and becomes a cancel after signing),
// or the cancel commits first and the signer finds CANCELED and records nothing (its signed bytes are
// dropped unsent, its nonce lease released). Never both. A withdrawal a worker moved to a state with no
// cancel is a *Refused naming its state.
func (s *Store) RequestCancel(ctx context.Context, w *Withdrawal, reason string, actor Actor) (Cancel, error) {
	st, kind, err := s.CancelTarget(ctx, w)
	if err != nil {
		return Cancel{}, err
	}
	if st != nil {
		a, created, err := s.RequestTxAction(ctx, TxAction{WithdrawalID: w.ID, SentTxID: st.ID, Chain: st.Chain,
			Kind: kind}, ReasonCancelRequested, w.Status, actor)
		return Cancel{Action: a, SentTx: st, Created: created, Status: w.Status}, err
	}
	var now *Withdrawal
	err = s.InTx(ctx, func(tx *sql.Tx) error {
		cur, err := s.LockWithdrawal(ctx, tx, w.ID)
		if err != nil {
			return err
		}
		now = cur
		switch cur.Status {
		case Pending, AwaitingApproval, Signing:
			why := reason
			if cur.Status == Signing {
				why = reason + " while signing: no signature was recorded, so none can be sent"
			}
			return s.Transition(ctx, tx, cur.ID, cur.Status, Canceled, why, actor, Change{})
		}
		return ErrConflict
	})
	if errors.Is(err, ErrConflict) {
		if now != nil && (now.Status == Signed || now.Status == Broadcasted) {
			return s.RequestCancel(ctx, now, reason, actor) // the signature won the race: cancel after signing
		}
		st := w.Status
		if now != nil {
			st = now.Status
		}
		return Cancel{}, &Refused{RefusedNotCancelable, "withdrawal is " + string(st) +
			"; only AWAITING_APPROVAL, PENDING, SIGNING, SIGNED and BROADCASTED withdrawals can be canceled"}
	}
	if err != nil {
		return Cancel{}, fmt.Errorf("cancel %s: %w", w.ID, err)
	}
	return Cancel{Canceled: true, Status: Canceled}, nil
}
