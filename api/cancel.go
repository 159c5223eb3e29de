package api

// Actions on a withdrawal already signed (speed-up; cancel once SIGNED or BROADCASTED). The API holds no keys: it records the request (tx_actions)
// against the transaction's current attempt, and recovery, which signs, performs it on its next sweep
// of the chain (recovery/actions.go). The answer is 202: the outcome is reported like any other state.

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/sluice-custody/sluice/internal/store"
)

// Error codes of these routes (their statuses are in codeStatus with the others).
const (
	CodeTerminal      = "terminal"                      // 409: speed-up of a CONFIRMED, FAILED or CANCELED withdrawal
	CodeCancelInBatch = "cancel_not_supported_in_batch" // 409: cancel of a signed withdrawal paid inside a batch
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

// cancelSigned asks recovery to replace the withdrawal's transaction with a zero-value self-transfer
// at the same nonce and higher fees. Whichever of the two mines decides: the cancel → CANCELED, the
// payment → CONFIRMED as usual. One cancel per transaction: asked again, it is the same request.
func (s *Server) cancelSigned(c echo.Context, w *store.Withdrawal) error {
	if w.BatchID != "" {
		// Replacing a batch by one without this item is not built: the item would be paid with the
		// others unless the whole batch were canceled, which would cancel other clients' payments.
		return newErr(CodeCancelInBatch, "", "withdrawal is "+string(w.Status)+" inside batch "+w.BatchID+
			"; canceling one payment out of a signed batch is not supported")
	}
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
	a, created, err := s.st.RequestTxAction(ctx, store.TxAction{WithdrawalID: w.ID, SentTxID: st.ID, Chain: st.Chain,
		Kind: store.ActionCancel}, store.ReasonCancelRequested, w.Status, store.ActorAPI)
	if err != nil {
		return err
	}
	state(c).log.Info("cancel requested", "withdrawal_id", w.ID, "external_id", w.ExternalID, "action_id", a.ID,
		"tx_hash", st.Hash, "new", created)
	return c.JSON(http.StatusAccepted, cancelJSON{withdrawalJSON: s.render(w), Cancel: store.ReasonCancelRequested})
}
