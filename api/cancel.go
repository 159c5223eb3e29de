package api

// Actions on a withdrawal already signed (speed-up; cancel once SIGNED or BROADCASTED, alone or in a batch). The API holds no keys: it records the request (tx_actions)
// against the transaction's current attempt, and recovery, which signs, performs it on its next sweep
// of the chain (recovery/actions.go). The answer is 202: the outcome is reported like any other state.

import (
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/sluice-custody/sluice/internal/store"
)

// Error codes of these routes (their statuses are in codeStatus with the others).
const (
	CodeTerminal      = "terminal"                      // 409: speed-up of a CONFIRMED, FAILED or CANCELED withdrawal
	CodeCancelInBatch = "cancel_not_supported_in_batch" // 409: cancel inside a batch whose call cannot be rebuilt item by item
	CodeNotSigned     = "not_signed"                    // 422: speed-up of a withdrawal with no signed transaction yet
)

// speedUpWithdrawal asks recovery to replace the withdrawal's transaction now, at the same nonce with
// the same payload and higher fees. Idempotent per attempt: asked twice before the bump, one bump.
func (s *Server) speedUpWithdrawal(c echo.Context) error {
	w, err := s.loadOwned(c)
	if err != nil {
		return err
	}
	if w.Status.Terminal() {
		return newErr(CodeTerminal, "", "withdrawal is "+string(w.Status)+"; there is nothing to speed up")
	}
	if w.SentTxID == nil || w.Status == store.Pending || w.Status == store.Signing {
		return newErr(CodeNotSigned, "", "withdrawal is "+string(w.Status)+" and has no signed transaction yet; there is nothing to speed up")
	}
	ctx := c.Request().Context()
	st, err := s.st.GetSentTx(ctx, *w.SentTxID)
	if err != nil {
		return err
	}
	if st.Status != store.TxSigned && st.Status != store.TxBroadcasted {
		// Mined since the withdrawal was read: the monitor is settling it.
		return newErr(CodeTerminal, "", "the withdrawal's transaction is "+st.Status+"; there is nothing to speed up")
	}
	a, created, err := s.st.RequestTxAction(ctx, store.TxAction{WithdrawalID: w.ID, SentTxID: st.ID, Chain: st.Chain,
		Kind: store.ActionSpeedUp, BaseHash: st.Hash}, "", "", "")
	if err != nil {
		return err
	}
	state(c).log.Info("speed-up requested", "withdrawal_id", w.ID, "external_id", w.ExternalID, "action_id", a.ID,
		"tx_hash", st.Hash, "new", created)
	return c.JSON(http.StatusAccepted, s.render(w))
}

// cancelJSON is the answer to a cancel after signing: the withdrawal as it is, and the cancel's state.
type cancelJSON struct {
	*withdrawalJSON
	Cancel string `json:"cancel"`
}

// cancelSigned asks recovery to replace the withdrawal's transaction at the same nonce and higher fees:
// alone in it, by a zero-value self-transfer; inside a batch, by the batch without this payment.
// Whichever attempt mines decides: the cancel → CANCELED, the payment → CONFIRMED as usual (history says
// the cancel lost the race). One cancel per withdrawal and transaction: asked again, the same request.
func (s *Server) cancelSigned(c echo.Context, w *store.Withdrawal) error {
	if w.SentTxID == nil {
		return newErr(CodeNotCancelable, "", "withdrawal is "+string(w.Status)+" without a recorded transaction")
	}
	ctx := c.Request().Context()
	st, err := s.st.GetSentTx(ctx, *w.SentTxID)
	if err != nil {
		return err
	}
	if st.Status != store.TxSigned && st.Status != store.TxBroadcasted {
		return newErr(CodeNotCancelable, "", "the withdrawal's transaction is "+st.Status+"; it can no longer be canceled")
	}
	kind := store.ActionCancel
	if w.BatchID != "" {
		// One payment out of a batch: recovery replaces the batch at its nonce by the same batch without
		// it. That needs a batch whose call it can rebuild item by item; anything else keeps the 409.
		b, err := s.st.BatchBySentTx(ctx, s.st.DB, st.ID)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		if b == nil || b.ID != w.BatchID || (b.Mode != store.BatchMulticall3 && b.Mode != store.BatchERC20) {
			mode := "unknown"
			if b != nil {
				mode = b.Mode
			}
			return newErr(CodeCancelInBatch, "", "withdrawal is "+string(w.Status)+" inside batch "+w.BatchID+" (mode "+mode+
				"); only multicall3 and batch_erc20 batches can have one payment canceled out of them")
		}
		kind = store.ActionCancelItem
	}
	a, created, err := s.st.RequestTxAction(ctx, store.TxAction{WithdrawalID: w.ID, SentTxID: st.ID, Chain: st.Chain,
		Kind: kind}, store.ReasonCancelRequested, w.Status, store.ActorAPI)
	if err != nil {
		return err
	}
	state(c).log.Info("cancel requested", "withdrawal_id", w.ID, "external_id", w.ExternalID, "action_id", a.ID,
		"tx_hash", st.Hash, "batch_id", w.BatchID, "new", created)
	return c.JSON(http.StatusAccepted, cancelJSON{withdrawalJSON: s.render(w), Cancel: store.ReasonCancelRequested})
}
