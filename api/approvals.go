package api

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/sluice-custody/sluice/internal/policy"
	"github.com/sluice-custody/sluice/internal/queue"
	"github.com/sluice-custody/sluice/internal/store"
)

// breachErr turns a policy refusal into its 422 (limit_exceeded for limits and lists, recipient_refused
// for recipient checks); other errors pass through.
func breachErr(err error) error {
	var b *policy.Breach
	if !errors.As(err, &b) {
		return err
	}
	code := CodeLimitExceeded
	switch b.Rule {
	case policy.RuleOwnWallet, policy.RuleReserved, policy.RuleTokenSelf, policy.RuleContract, policy.RuleBlacklisted, policy.RulePoisoning:
		code = CodeRecipientRefused
	}
	return newErr(code, b.Field, b.Error())
}

// approvalJSON is the approval state of a held withdrawal.
type approvalJSON struct {
	WithdrawalID string   `json:"withdrawal_id"`
	Status       string   `json:"status"`
	Reason       string   `json:"reason"`
	Required     int      `json:"required_approvals"`
	Approvers    []string `json:"approvers"`
}

func (s *Server) loadHeld(c echo.Context) (*store.Withdrawal, error) {
	w, err := s.loadOwned(c)
	if err != nil {
		return nil, err
	}
	if w.Status != store.AwaitingApproval {
		return nil, newErr(CodeNotAwaitingApproval, "", "withdrawal is "+string(w.Status)+", not AWAITING_APPROVAL")
	}
	return w, nil
}

// approveWithdrawal records the caller's approval; the last approval needed moves the withdrawal to
// PENDING and sends its tx-request message in the same transaction. The answer is the approval state.
func (s *Server) approveWithdrawal(c echo.Context) error {
	w, err := s.loadHeld(c)
	if err != nil {
		return err
	}
	rs := state(c)
	ctx := c.Request().Context()
	msgID, err := uuid.NewV7()
	if err != nil {
		return err
	}
	env, err := queue.NewEnvelope(ctx, queue.TypeWithdrawalRequested, msgID.String(), w.CorrelationID, queue.WithdrawalRequested{WithdrawalID: w.ID})
	if err != nil {
		return err
	}
	h, released, err := s.st.Approve(ctx, w.ID, rs.client.Actor(), func(tx *sql.Tx) error {
		return s.q.SendTx(ctx, tx, queue.TxRequest, env, queue.SendOptions{})
	})
	switch {
	case errors.Is(err, store.ErrAlreadyApproved):
		return newErr(CodeAlreadyApproved, "", "this approver has approved this withdrawal already; another approver is needed")
	case errors.Is(err, store.ErrConflict):
		return newErr(CodeNotAwaitingApproval, "", "withdrawal is no longer AWAITING_APPROVAL")
	case err != nil:
		return err
	}
	out := approvalJSON{WithdrawalID: w.ID, Status: string(store.AwaitingApproval), Reason: h.Reason, Required: h.RequiredApprovals, Approvers: h.Approvers}
	if released {
		out.Status = string(store.Pending)
	}
	rs.log.Info("withdrawal approved", "withdrawal_id", w.ID, "approver", rs.client.Actor(), "released", released)
	return c.JSON(http.StatusOK, out)
}

type rejectRequest struct {
	Reason string `json:"reason"`
}

// rejectWithdrawal cancels a held withdrawal with the approver's reason.
func (s *Server) rejectWithdrawal(c echo.Context) error {
	w, err := s.loadHeld(c)
	if err != nil {
		return err
	}
	var req rejectRequest
	var buf bytes.Buffer
	if err := readBody(c, &buf); err != nil {
		return err
	}
	if len(bytes.TrimSpace(buf.Bytes())) > 0 {
		if err := json.Unmarshal(buf.Bytes(), &req); err != nil {
			return newErr(CodeInvalidJSON, "", "body must be a JSON object {\"reason\": string}")
		}
	}
	if len(req.Reason) > 500 {
		return newErr(CodeInvalidParameter, "reason", "reason must be at most 500 characters")
	}
	rs := state(c)
	ctx := c.Request().Context()
	if err := s.st.Reject(ctx, w.ID, rs.client.Actor(), req.Reason); errors.Is(err, store.ErrConflict) {
		return newErr(CodeNotAwaitingApproval, "", "withdrawal is no longer AWAITING_APPROVAL")
	} else if err != nil {
		return err
	}
	w, err = s.st.GetWithdrawal(ctx, w.ID)
	if err != nil {
		return err
	}
	rs.log.Info("withdrawal rejected", "withdrawal_id", w.ID, "approver", rs.client.Actor())
	return c.JSON(http.StatusOK, s.render(w))
}
