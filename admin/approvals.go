package admin

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/sluice-custody/sluice/internal/store"
)

// The actions endpoint and two-person approvals.
//
// A request id is recorded (action_requests) before anything is done, with the hash of what was asked
// and who asked it; the response given is stored with it, and the same id sent again gets that response
// again without anything being done. Performing is "record (status doing, with a lease), commit, Do,
// record the outcome": a crash between Do and the outcome leaves the row doing, and once the lease has
// passed the same request id (or, for a two-person request, the approval) calls Do again, which every
// ActionSpec makes idempotent on the request id. So an action is done once, even across a crash,
// provided Do is — and the framework never calls it for one request id twice at the same time.
//
// Dry runs change nothing and are not recorded under their request id (only audited).

// Action request states in action_requests (ActionResult.Status plus "doing").
const statusDoing = "doing"

// Approval states.
const (
	ApprovalPending  = "pending"
	ApprovalApproved = "approved"
	ApprovalRejected = "rejected"
	ApprovalExpired  = "expired"
)

// checkRequestID accepts 1–64 characters of [A-Za-z0-9._:-] (a UUID, typically).
func checkRequestID(id string) error {
	if id == "" {
		return unprocessable(CodeRequired, "request_id", "request_id is required (a UUID the client makes, so a retry does nothing twice)")
	}
	if len(id) > 64 {
		return unprocessable(CodeInvalid, "request_id", "request_id must be at most 64 characters")
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == ':' || c == '-') {
			return unprocessable(CodeInvalid, "request_id", "request_id may contain only letters, digits, '.', '_', ':' and '-'")
		}
	}
	return nil
}

// bodyHash identifies what was asked, by whom: the same request id with another hash is a conflict.
func bodyHash(req ActionRequest, by string) []byte {
	b, _ := json.Marshal(struct {
		ActionRequest
		By string `json:"by"`
	}{req, by})
	h := sha256.Sum256(b)
	return h[:]
}

// planDetail is an audit detail holding the request and its plan.
func planDetail(req ActionRequest, p *Plan) map[string]any {
	d := map[string]any{"request_id": req.RequestID, "action": req.Action, "target": req.Target}
	if len(req.Params) > 0 {
		d["params"] = req.Params
	}
	if req.Reason != "" {
		d["reason"] = req.Reason
	}
	if p != nil {
		d["plan"] = p
	}
	return d
}

// storedAction is a row of action_requests.
type storedAction struct {
	req         ActionRequest
	hash        []byte
	by          string
	status      string
	httpStatus  int
	response    []byte
	leaseActive bool
}

func readAction(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, requestID string, now time.Time, forUpdate bool) (*storedAction, error) {
	stmt := `SELECT request, body_hash, requested_by, status, http_status, response, lease_until FROM action_requests WHERE request_id = ?`
	if forUpdate {
		stmt += ` FOR UPDATE`
	}
	var a storedAction
	var reqJSON string
	var resp sql.NullString
	var lease sql.NullTime
	err := q.QueryRowContext(ctx, stmt, requestID).Scan(&reqJSON, &a.hash, &a.by, &a.status, &a.httpStatus, &resp, &lease)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read action request %s: %w", requestID, err)
	}
	if err := json.Unmarshal([]byte(reqJSON), &a.req); err != nil {
		return nil, fmt.Errorf("decode action request %s: %w", requestID, err)
	}
	if resp.Valid {
		a.response = []byte(resp.String)
	}
	a.leaseActive = lease.Valid && lease.Time.After(now)
	return &a, nil
}

func (a *storedAction) result() ActionResult {
	var r ActionResult
	_ = json.Unmarshal(a.response, &r)
	return r
}

func (s *Server) postAction(c echo.Context) error {
	ctx := c.Request().Context()
	var req ActionRequest
	if err := bind(c, &req); err != nil {
		return err
	}
	if req.Action == "" {
		return unprocessable(CodeRequired, "action", "action is required")
	}
	spec, ok := s.specs[req.Action]
	if !ok {
		return unprocessable(CodeUnknownAction, "action", fmt.Sprintf("unknown action %q", clip(req.Action, 64)))
	}
	if err := checkRole(c, spec.Role); err != nil {
		return err
	}
	if !req.DryRun || req.RequestID != "" {
		if err := checkRequestID(req.RequestID); err != nil {
			return err
		}
	}
	if len(req.Target) > 255 {
		return unprocessable(CodeInvalid, "target", "target must be at most 255 characters")
	}
	if len(req.Reason) > 1024 {
		return unprocessable(CodeInvalid, "reason", "reason must be at most 1024 characters")
	}
	by := who(c)
	if !req.DryRun {
		// A request id seen before: its stored answer, or a conflict. Nothing is validated or planned
		// again (the world may have moved on since).
		if done, err := s.replay(c, spec, req, by); done || err != nil {
			return err
		}
	}
	if err := spec.Validate(ctx, req); err != nil {
		return err
	}
	plan, err := spec.Plan(ctx, req)
	if err != nil {
		return err
	}
	res := ActionResult{RequestID: req.RequestID, Action: req.Action, Target: req.Target, Plan: plan, RequestedBy: by}
	remote := c.RealIP()
	if req.DryRun {
		res.Status = ActionPlanned
		s.met.Action(req.Action, ActionPlanned)
		if err := s.audit(ctx, auditRecord{Operator: by, Remote: remote, Kind: KindAction, What: req.Action + " " + req.Target,
			Detail: planDetail(req, &plan), Outcome: ActionPlanned}); err != nil {
			return err
		}
		return c.JSON(http.StatusOK, res)
	}
	reqJSON, err := json.Marshal(req)
	if err != nil {
		return err
	}
	now := s.now().UTC()
	if spec.TwoPerson != nil && spec.TwoPerson(req) {
		exp := now.Add(s.d.ApprovalTTL)
		res.Status, res.ExpiresAt = ActionAwaitingApproval, &exp
		resp, _ := json.Marshal(res)
		err := s.auditTx(ctx, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, `INSERT INTO action_requests (request_id, body_hash, action, target, requested_by, status,
				request, http_status, response, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
				req.RequestID, bodyHash(req, by), req.Action, req.Target, by, ActionAwaitingApproval, string(reqJSON),
				http.StatusAccepted, string(resp), now, now); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO approval_requests (id, request_id, status, requested_by, created_at, expires_at)
				VALUES (?, ?, ?, ?, ?, ?)`, uuid.NewString(), req.RequestID, ApprovalPending, by, now, exp); err != nil {
				return fmt.Errorf("record approval request: %w", err)
			}
			return appendAudit(ctx, tx, auditRecord{Operator: by, Remote: remote, Kind: KindAction, What: req.Action + " " + req.Target,
				Detail: planDetail(req, &plan), Outcome: ActionAwaitingApproval})
		})
		if isDuplicate(err) { // the same id, concurrently: answer as its replay
			_, err = s.replay(c, spec, req, by)
			return err
		}
		if err != nil {
			return err
		}
		s.met.Action(req.Action, ActionAwaitingApproval)
		return c.JSON(http.StatusAccepted, res)
	}
	err = s.auditTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO action_requests (request_id, body_hash, action, target, requested_by, status,
			request, lease_until, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			req.RequestID, bodyHash(req, by), req.Action, req.Target, by, statusDoing, string(reqJSON), now.Add(actionLease), now, now); err != nil {
			return err
		}
		return appendAudit(ctx, tx, auditRecord{Operator: by, Remote: remote, Kind: KindAction, What: req.Action + " " + req.Target,
			Detail: planDetail(req, &plan), Outcome: "requested"})
	})
	if isDuplicate(err) {
		_, err = s.replay(c, spec, req, by)
		return err
	}
	if err != nil {
		return err
	}
	return s.perform(c, spec, req, res, by)
}

func isDuplicate(err error) bool { return err != nil && store.IsDuplicate(err) }

// replay answers a request id already recorded: the stored response, 409 when the body differs, and
// for a request left doing by a crash (its lease passed) it performs it again (Do is idempotent).
func (s *Server) replay(c echo.Context, spec ActionSpec, req ActionRequest, by string) (bool, error) {
	ctx := c.Request().Context()
	a, err := readAction(ctx, s.st.DB, req.RequestID, s.now(), false)
	if err != nil || a == nil {
		return false, err
	}
	if string(a.hash) != string(bodyHash(req, by)) {
		return true, conflict(CodeRequestIDConflict, "request_id "+req.RequestID+" was used for another request; use a new id")
	}
	if a.status != statusDoing {
		if a.response == nil {
			return true, fmt.Errorf("action request %s has no stored response", req.RequestID)
		}
		return true, c.JSONBlob(a.httpStatus, a.response)
	}
	if a.leaseActive {
		return true, conflict(CodeInProgress, "request "+req.RequestID+" is being performed; ask again in a minute")
	}
	// Left doing by a crash: take the lease and perform it again.
	performer, ok, err := s.takeLease(ctx, req.RequestID)
	if err != nil {
		return true, err
	}
	if !ok {
		return true, conflict(CodeInProgress, "request "+req.RequestID+" is being performed; ask again in a minute")
	}
	plan, err := spec.Plan(ctx, req)
	if err != nil {
		return true, s.recordFailure(c, req, ActionResult{RequestID: req.RequestID, Action: req.Action, Target: req.Target, RequestedBy: a.by}, err)
	}
	res := ActionResult{RequestID: req.RequestID, Action: req.Action, Target: req.Target, Plan: plan, RequestedBy: a.by}
	if i := strings.IndexByte(performer, '+'); i > 0 {
		res.RequestedBy, res.ApprovedBy = performer[:i], performer[i+1:]
	}
	return true, s.perform(c, spec, req, res, performer)
}

// takeLease claims a doing request whose lease has passed; by is whom to perform it for.
func (s *Server) takeLease(ctx context.Context, requestID string) (by string, ok bool, err error) {
	now := s.now().UTC()
	res, err := s.st.DB.ExecContext(ctx, `UPDATE action_requests SET lease_until = ?, updated_at = ?
		WHERE request_id = ? AND status = ? AND (lease_until IS NULL OR lease_until < ?)`, now.Add(actionLease), now, requestID, statusDoing, now)
	if err != nil {
		return "", false, fmt.Errorf("lease action request: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return "", false, nil
	}
	var performer string
	if err := s.st.DB.QueryRowContext(ctx, `SELECT requested_by FROM action_requests WHERE request_id = ?`, requestID).Scan(&performer); err != nil {
		return "", false, err
	}
	// A two-person request is performed for requester+approver: the approval names the approver.
	var approver string
	err = s.st.DB.QueryRowContext(ctx, `SELECT decided_by FROM approval_requests WHERE request_id = ? AND status = ?`, requestID, ApprovalApproved).Scan(&approver)
	if err == nil && approver != "" {
		performer += "+" + approver
	} else if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return "", false, err
	}
	return performer, true, nil
}

// perform calls Do for a recorded (doing, leased) request and records its outcome and response.
func (s *Server) perform(c echo.Context, spec ActionSpec, req ActionRequest, res ActionResult, by string) error {
	ctx := c.Request().Context()
	out, err := spec.Do(ctx, req, by)
	if err != nil {
		var ae *Error
		if !errors.As(err, &ae) {
			// Not a refusal: something failed on the way (the database, a node). The request stays doing;
			// once its lease passes, the same request id performs it again.
			return fmt.Errorf("perform %s %s: %w", req.Action, req.RequestID, err)
		}
		return s.recordFailure(c, req, res, err)
	}
	res.Status, res.Result = ActionDone, out
	return s.recordOutcome(c, req, res, http.StatusOK, nil)
}

// recordFailure records an action refused on the way (an *Error from Plan or Do: the target changed
// since): the request is failed, and its replay gets the same error.
func (s *Server) recordFailure(c echo.Context, req ActionRequest, res ActionResult, err error) error {
	var ae *Error
	if !errors.As(err, &ae) {
		return err
	}
	res.Status, res.Error = ActionFailed, ae.Message
	return s.recordOutcome(c, req, res, ae.Status, ae)
}

func (s *Server) recordOutcome(c echo.Context, req ActionRequest, res ActionResult, status int, ae *Error) error {
	ctx := c.Request().Context()
	var body []byte
	if ae != nil {
		body, _ = json.Marshal(errBody{Error: ae})
	} else {
		body, _ = json.Marshal(res)
	}
	detail := planDetail(req, &res.Plan)
	if res.Result != nil {
		detail["result"] = res.Result
	}
	if res.Error != "" {
		detail["error"] = res.Error
	}
	if res.ApprovedBy != "" {
		detail["approved_by"] = res.ApprovedBy
	}
	now := s.now().UTC()
	err := s.auditTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE action_requests SET status = ?, http_status = ?, response = ?, lease_until = NULL, updated_at = ?
			WHERE request_id = ?`, res.Status, status, string(body), now, req.RequestID); err != nil {
			return fmt.Errorf("record action outcome: %w", err)
		}
		return appendAudit(ctx, tx, auditRecord{Operator: who(c), Remote: c.RealIP(), Kind: KindAction, What: req.Action + " " + req.Target,
			Detail: detail, Outcome: res.Status})
	})
	if err != nil {
		// Done but not recorded: the request stays doing and its replay performs it again (idempotent Do).
		return fmt.Errorf("action %s %s performed, outcome not recorded: %w", req.Action, req.RequestID, err)
	}
	s.met.Action(req.Action, res.Status)
	return c.JSONBlob(status, body)
}

// Approvals.

const approvalCols = `id, request_id, status, requested_by, created_at, expires_at, decided_by, decided_at, reason`

type approvalRow struct {
	Approval
	requestID   string
	requestedBy string
}

func scanApproval(sc interface{ Scan(...any) error }) (*approvalRow, error) {
	var a approvalRow
	var decided sql.NullTime
	if err := sc.Scan(&a.ID, &a.requestID, &a.Status, &a.requestedBy, &a.CreatedAt, &a.ExpiresAt, &a.DecidedBy, &decided, &a.Reason); err != nil {
		return nil, err
	}
	if decided.Valid {
		t := decided.Time
		a.DecidedAt = &t
	}
	return &a, nil
}

// view completes an approval with its action (the stored response) and shows a pending one past its
// expiry as expired.
func (s *Server) view(ctx context.Context, a *approvalRow) (Approval, error) {
	st, err := readAction(ctx, s.st.DB, a.requestID, s.now(), false)
	if err != nil {
		return Approval{}, err
	}
	out := a.Approval
	if st != nil {
		out.Action = st.result()
		if out.Action.RequestID == "" { // an error response: rebuild the action's identity
			out.Action = ActionResult{RequestID: a.requestID, Action: st.req.Action, Target: st.req.Target, RequestedBy: st.by}
			var eb struct{ Error Error }
			if json.Unmarshal(st.response, &eb) == nil {
				out.Action.Error = eb.Error.Message
			}
		}
		if st.status == statusDoing {
			out.Action.Status = statusDoing
		} else {
			out.Action.Status = st.status
		}
	}
	if out.Status == ApprovalPending && !s.now().Before(out.ExpiresAt) {
		out.Status = ApprovalExpired
		out.Action.Status = ActionExpired
	}
	return out, nil
}

func (s *Server) listApprovals(c echo.Context) error {
	ctx := c.Request().Context()
	q := `SELECT ` + approvalCols + ` FROM approval_requests`
	var args []any
	switch c.QueryParam("status") {
	case "", ApprovalPending:
		q += ` WHERE status = ? AND expires_at > ?`
		args = append(args, ApprovalPending, s.now().UTC())
	case "all":
	default:
		return badParam("status", "status must be pending or all")
	}
	q += ` ORDER BY created_at DESC LIMIT 500`
	rows, err := s.st.DB.QueryContext(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("list approvals: %w", err)
	}
	var raw []*approvalRow
	for rows.Next() {
		a, err := scanApproval(rows)
		if err != nil {
			rows.Close()
			return fmt.Errorf("list approvals: %w", err)
		}
		raw = append(raw, a)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("list approvals: %w", err)
	}
	out := make([]Approval, 0, len(raw))
	for _, a := range raw {
		v, err := s.view(ctx, a)
		if err != nil {
			return err
		}
		out = append(out, v)
	}
	return c.JSON(http.StatusOK, out)
}

func (s *Server) approvalByID(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, id string, forUpdate bool) (*approvalRow, error) {
	if _, err := uuid.Parse(id); err != nil {
		return nil, badParam("id", "id is not an approval id (a UUID)")
	}
	stmt := `SELECT ` + approvalCols + ` FROM approval_requests WHERE id = ?`
	if forUpdate {
		stmt += ` FOR UPDATE`
	}
	a, err := scanApproval(q.QueryRowContext(ctx, stmt, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("no approval request " + id)
	}
	if err != nil {
		return nil, fmt.Errorf("read approval %s: %w", id, err)
	}
	return a, nil
}

func (s *Server) getApproval(c echo.Context) error {
	ctx := c.Request().Context()
	a, err := s.approvalByID(ctx, s.st.DB, c.Param("id"), false)
	if err != nil {
		return err
	}
	v, err := s.view(ctx, a)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, v)
}

func (s *Server) approve(c echo.Context) error {
	ctx := c.Request().Context()
	id := c.Param("id")
	me := who(c)
	remote := c.RealIP()
	var a *approvalRow
	var act *storedAction
	resume := false  // approved before, action left doing by a crash: perform it again
	expired := false // found expired: the new state commits, then 409
	err := s.auditTx(ctx, func(tx *sql.Tx) error {
		resume, expired = false, false
		var err error
		if a, err = s.approvalByID(ctx, tx, id, true); err != nil {
			return err
		}
		if act, err = readAction(ctx, tx, a.requestID, s.now(), true); err != nil {
			return err
		}
		if act == nil {
			return fmt.Errorf("approval %s has no action request %s", id, a.requestID)
		}
		if a.requestedBy == me {
			return newError(http.StatusForbidden, CodeSelfApproval, "", "nobody approves their own request: another approver must")
		}
		switch a.Status {
		case ApprovalPending:
		case ApprovalApproved:
			if act.status == statusDoing && a.DecidedBy == me {
				resume = true
				return nil
			}
			return conflict(CodeNotPending, "approval "+id+" was already approved by "+a.DecidedBy)
		case ApprovalExpired:
			return conflict(CodeExpired, "approval "+id+" expired at "+a.ExpiresAt.UTC().Format(time.RFC3339)+"; request the action again")
		default:
			return conflict(CodeNotPending, "approval "+id+" is "+a.Status)
		}
		now := s.now().UTC()
		if !now.Before(a.ExpiresAt) {
			expired = true
			return s.expire(ctx, tx, a, act, me, remote)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE approval_requests SET status = ?, decided_by = ?, decided_at = ? WHERE id = ?`,
			ApprovalApproved, me, now, id); err != nil {
			return fmt.Errorf("approve: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE action_requests SET status = ?, lease_until = ?, updated_at = ? WHERE request_id = ?`,
			statusDoing, now.Add(actionLease), now, a.requestID); err != nil {
			return fmt.Errorf("approve: %w", err)
		}
		return appendAudit(ctx, tx, auditRecord{Operator: me, Remote: remote, Kind: KindApproval, What: "approve " + act.req.Action + " " + act.req.Target,
			Detail: map[string]any{"approval_id": id, "request_id": a.requestID, "requested_by": a.requestedBy}, Outcome: ApprovalApproved})
	})
	if err != nil {
		return err
	}
	if expired {
		return conflict(CodeExpired, "approval "+id+" expired at "+a.ExpiresAt.UTC().Format(time.RFC3339)+"; request the action again")
	}
	spec, ok := s.specs[act.req.Action]
	if !ok {
		return conflict(CodeConflict, "action "+act.req.Action+" is no longer known to this server")
	}
	if resume {
		if _, ok, err := s.takeLease(ctx, a.requestID); err != nil {
			return err
		} else if !ok {
			return conflict(CodeInProgress, "the approved action is being performed; ask again in a minute")
		}
	}
	req := act.req
	res := ActionResult{RequestID: req.RequestID, Action: req.Action, Target: req.Target, RequestedBy: a.requestedBy, ApprovedBy: me}
	// The plan approved was computed when it was requested: it is computed again now, and Do acts on now.
	plan, err := spec.Plan(ctx, req)
	if err != nil {
		return s.recordFailure(c, req, res, err)
	}
	res.Plan = plan
	return s.perform(c, spec, req, res, a.requestedBy+"+"+me)
}

// expire marks a pending approval past its expiry as expired (and its action), in tx.
func (s *Server) expire(ctx context.Context, tx *sql.Tx, a *approvalRow, act *storedAction, by, remote string) error {
	now := s.now().UTC()
	if _, err := tx.ExecContext(ctx, `UPDATE approval_requests SET status = ? WHERE id = ? AND status = ?`, ApprovalExpired, a.ID, ApprovalPending); err != nil {
		return fmt.Errorf("expire approval: %w", err)
	}
	res := act.result()
	res.Status = ActionExpired
	body, _ := json.Marshal(res)
	if _, err := tx.ExecContext(ctx, `UPDATE action_requests SET status = ?, http_status = ?, response = ?, updated_at = ? WHERE request_id = ?`,
		ActionExpired, http.StatusOK, string(body), now, a.requestID); err != nil {
		return fmt.Errorf("expire action request: %w", err)
	}
	s.met.Action(act.req.Action, ActionExpired)
	return appendAudit(ctx, tx, auditRecord{Operator: by, Remote: remote, Kind: KindApproval, What: "approve " + act.req.Action + " " + act.req.Target,
		Detail: map[string]any{"approval_id": a.ID, "request_id": a.requestID, "requested_by": a.requestedBy}, Outcome: ApprovalExpired})
}

type rejectRequest struct {
	Reason string `json:"reason"`
}

func (s *Server) reject(c echo.Context) error {
	ctx := c.Request().Context()
	var req rejectRequest
	if c.Request().ContentLength != 0 {
		if err := bind(c, &req); err != nil {
			return err
		}
	}
	if len(req.Reason) > 1024 {
		return unprocessable(CodeInvalid, "reason", "reason must be at most 1024 characters")
	}
	id := c.Param("id")
	me := who(c)
	remote := c.RealIP()
	var a *approvalRow
	expired := false
	err := s.auditTx(ctx, func(tx *sql.Tx) error {
		expired = false
		var err error
		if a, err = s.approvalByID(ctx, tx, id, true); err != nil {
			return err
		}
		act, err := readAction(ctx, tx, a.requestID, s.now(), true)
		if err != nil {
			return err
		}
		if act == nil {
			return fmt.Errorf("approval %s has no action request %s", id, a.requestID)
		}
		if a.Status != ApprovalPending {
			return conflict(CodeNotPending, "approval "+id+" is "+a.Status)
		}
		now := s.now().UTC()
		if !now.Before(a.ExpiresAt) {
			expired = true
			return s.expire(ctx, tx, a, act, me, remote)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE approval_requests SET status = ?, decided_by = ?, decided_at = ?, reason = ? WHERE id = ?`,
			ApprovalRejected, me, now, req.Reason, id); err != nil {
			return fmt.Errorf("reject: %w", err)
		}
		res := act.result()
		res.Status, res.Error = ActionRejected, "rejected by "+me
		if req.Reason != "" {
			res.Error += ": " + req.Reason
		}
		body, _ := json.Marshal(res)
		if _, err := tx.ExecContext(ctx, `UPDATE action_requests SET status = ?, http_status = ?, response = ?, updated_at = ? WHERE request_id = ?`,
			ActionRejected, http.StatusOK, string(body), now, a.requestID); err != nil {
			return fmt.Errorf("reject: %w", err)
		}
		s.met.Action(act.req.Action, ActionRejected)
		return appendAudit(ctx, tx, auditRecord{Operator: me, Remote: remote, Kind: KindApproval, What: "reject " + act.req.Action + " " + act.req.Target,
			Detail: map[string]any{"approval_id": id, "request_id": a.requestID, "requested_by": a.requestedBy, "reason": req.Reason}, Outcome: ApprovalRejected})
	})
	if err != nil {
		return err
	}
	if expired {
		return conflict(CodeExpired, "approval "+id+" expired at "+a.ExpiresAt.UTC().Format(time.RFC3339))
	}
	a, err = s.approvalByID(ctx, s.st.DB, id, false)
	if err != nil {
		return err
	}
	v, err := s.view(ctx, a)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, v)
}
