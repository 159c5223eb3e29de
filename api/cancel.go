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
	CodeTerminal      = store.RefusedTerminal      // 409: speed-up of a CONFIRMED, FAILED or CANCELED withdrawal
	CodeCancelInBatch = store.RefusedCancelInBatch // 409: cancel inside a batch whose call cannot be rebuilt item by item
	CodeNotSigned     = store.RefusedNotSigned     // 422: speed-up of a withdrawal with no signed transaction yet
)

// refused maps the store's speed-up and cancel rules (store.Refused) to this API's error codes.
func refused(err error) error {
	var r *store.Refused
	if !errors.As(err, &r) {
		return err
	}
	return newErr(r.Code, "", r.Message)
}

// speedUpWithdrawal asks recovery to replace the withdrawal's transaction now, at the same nonce with
// the same payload and higher fees. Idempotent per attempt: asked twice before the bump, one bump.
func (s *Server) speedUpWithdrawal(c echo.Context) error {
	w, err := s.loadOwned(c)
	if err != nil {
		return err
	}
	a, st, created, err := s.st.RequestSpeedUp(c.Request().Context(), w)
	if err != nil {
		return refused(err)
	}
	state(c).log.Info("speed-up requested", "withdrawal_id", w.ID, "external_id", w.ExternalID, "action_id", a.ID,
		"tx_hash", st.Hash, "new", created)
	return c.JSON(http.StatusAccepted, s.render(w))
}

// cancelJSON is the answer to a cancel after signing: the withdrawal as it is, and the cancel's state.
type cancelJSON struct {
	*WithdrawalJSON
	Cancel string `json:"cancel"`
}
