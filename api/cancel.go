package api

// Actions on a withdrawal already signed. The API holds no keys: it records the request (tx_actions)
// against the transaction's current attempt, and recovery, which signs, performs it on its next sweep
// of the chain (recovery/actions.go). The answer is 202: the outcome is reported like any other state.

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/sluice-custody/sluice/internal/store"
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
		Kind: store.ActionSpeedUp, BaseHash: st.Hash})
	if err != nil {
		return err
	}
	state(c).log.Info("speed-up requested", "withdrawal_id", w.ID, "external_id", w.ExternalID, "action_id", a.ID,
		"tx_hash", st.Hash, "new", created)
	return c.JSON(http.StatusAccepted, s.render(w))
}
