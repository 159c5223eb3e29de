package admin

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestLogin(t *testing.T) {
	e := newEnv(t)
	pw := e.addOperator("alice", RoleOperator)

	tok := e.login("alice", pw)
	if tok.AccessToken == "" || tok.RefreshToken == "" || tok.Operator.Username != "alice" || tok.Operator.Role != RoleOperator {
		t.Fatalf("tokens: %+v", tok)
	}
	if d := tok.ExpiresAt.Sub(*e.now.Load()); d < 14*time.Minute || d > 16*time.Minute {
		t.Errorf("access token lives %s, want 15 min", d)
	}
	var me Operator
	r := e.do("GET", "/admin/v1/me", bearer(tok.AccessToken), nil)
	e.want(r, 200, "")
	r.json(t, &me)
	if me.Username != "alice" || me.LastLogin == nil {
		t.Errorf("me: %+v", me)
	}

	e.want(e.do("POST", "/admin/v1/auth/login", auth{}, LoginRequest{Username: "alice", Password: pw + "x"}), 401, CodeUnauthorized)
	e.want(e.do("POST", "/admin/v1/auth/login", auth{}, LoginRequest{Username: "nobody", Password: pw}), 401, CodeUnauthorized)
	er := e.want(e.do("POST", "/admin/v1/auth/login", auth{}, `{"username":"alice"}`), 422, CodeRequired)
	if er.Field != "password" {
		t.Errorf("field %q, want password", er.Field)
	}
	e.want(e.do("POST", "/admin/v1/auth/login", auth{}, `{"username":`), 400, CodeInvalidJSON)
	e.want(e.do("POST", "/admin/v1/auth/login", auth{}, `{"username":"a","password":"b","extra":1}`), 400, CodeInvalidJSON)
	e.want(e.do("GET", "/admin/v1/me", auth{}, nil), 401, CodeUnauthorized)
	e.want(e.do("GET", "/admin/v1/me", bearer("not.a.jwt"), nil), 401, CodeUnauthorized)

	// The audit log has the success and both failures, and no password.
	var page Page[AuditEntry]
	e.do("GET", "/admin/v1/audit?limit=10", bearer(tok.AccessToken), nil).json(t, &page)
	kinds := map[string]int{}
	for _, it := range page.Items {
		kinds[it.Kind]++
	}
	if kinds[KindLogin] != 1 || kinds[KindLoginFailed] != 2 {
		t.Errorf("audit kinds %v, want 1 login and 2 login_failed", kinds)
	}
	var n int
	if err := e.st.DB.QueryRow(`SELECT COUNT(*) FROM audit_log WHERE detail LIKE ? OR what LIKE ?`, "%"+pw+"%", "%"+pw+"%").Scan(&n); err != nil || n != 0 {
		t.Errorf("a password in the audit log: %d rows (%v)", n, err)
	}
}

func TestLockoutAndRateLimit(t *testing.T) {
	t.Run("lock-out per account", func(t *testing.T) {
		e := newEnv(t)
		pw := e.addOperator("bob", RoleViewer)
		for i := 0; i < DefaultLockoutFailures; i++ {
			e.want(e.do("POST", "/admin/v1/auth/login", auth{}, LoginRequest{Username: "bob", Password: "wrong-password-" + strconv.Itoa(i)}), 401, CodeUnauthorized)
		}
		// Locked now, even with the right password.
		r := e.do("POST", "/admin/v1/auth/login", auth{}, LoginRequest{Username: "bob", Password: pw})
		e.want(r, 429, CodeLocked)
		ra, err := strconv.Atoi(r.header.Get("Retry-After"))
		if err != nil || ra < 60 || ra > int(DefaultLockoutWindow.Seconds()) {
			t.Errorf("Retry-After %q, want the lock's remaining seconds", r.header.Get("Retry-After"))
		}
		// Another account is not locked.
		pw2 := e.addOperator("carol", RoleViewer)
		e.login("carol", pw2)
		var n int
		if err := e.st.DB.QueryRow(`SELECT COUNT(*) FROM audit_log WHERE kind = 'login_failed' AND outcome = 'locked' AND operator = 'bob'`).Scan(&n); err != nil || n != 1 {
			t.Errorf("locked attempt audited %d times (%v), want 1", n, err)
		}
	})
	t.Run("rate limit per address", func(t *testing.T) {
		e := newEnv(t, func(d *Deps) { d.LoginLimit = 3 })
		pw := e.addOperator("dave", RoleViewer)
		for i := 0; i < 3; i++ {
			e.login("dave", pw)
		}
		r := e.do("POST", "/admin/v1/auth/login", auth{}, LoginRequest{Username: "dave", Password: pw})
		e.want(r, 429, CodeRateLimited)
		if ra, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || ra < 1 || ra > 60 {
			t.Errorf("Retry-After %q", r.header.Get("Retry-After"))
		}
	})
}

func TestTokens(t *testing.T) {
	e := newEnv(t)
	pw := e.addOperator("erin", RoleViewer)

	t.Run("expired", func(t *testing.T) {
		tok := e.login("erin", pw)
		e.want(e.do("GET", "/admin/v1/me", bearer(tok.AccessToken), nil), 200, "")
		e.advance(16 * time.Minute)
		e.want(e.do("GET", "/admin/v1/me", bearer(tok.AccessToken), nil), 401, CodeUnauthorized)
	})
	t.Run("revoked by logout", func(t *testing.T) {
		tok := e.login("erin", pw)
		e.want(e.do("POST", "/admin/v1/auth/logout", bearer(tok.AccessToken), nil), 204, "")
		e.want(e.do("GET", "/admin/v1/me", bearer(tok.AccessToken), nil), 401, CodeUnauthorized)
	})
	t.Run("signed with another key", func(t *testing.T) {
		other, err := newServer(Deps{Store: e.st, Redis: e.srv.rdb, JWTKey: []byte(strings.Repeat("k", 32)), Now: e.srv.now}, nil, NopMetrics(), nil)
		if err != nil {
			t.Fatal(err)
		}
		forged, _, err := other.issueAccess(&Operator{Username: "erin", Role: RoleAdmin}, "")
		if err != nil {
			t.Fatal(err)
		}
		e.want(e.do("GET", "/admin/v1/me", bearer(forged), nil), 401, CodeUnauthorized)
	})
	t.Run("refresh rotates; a reused refresh token revokes its family", func(t *testing.T) {
		tok := e.login("erin", pw)
		r := e.do("POST", "/admin/v1/auth/refresh", auth{}, map[string]string{"refresh_token": tok.RefreshToken})
		e.want(r, 200, "")
		var next Tokens
		r.json(t, &next)
		e.secret(next.AccessToken, next.RefreshToken)
		if next.RefreshToken == tok.RefreshToken || next.AccessToken == "" {
			t.Fatal("refresh did not rotate")
		}
		e.want(e.do("GET", "/admin/v1/me", bearer(next.AccessToken), nil), 200, "")
		// The old one again: refused, and the new one is revoked with it.
		e.want(e.do("POST", "/admin/v1/auth/refresh", auth{}, map[string]string{"refresh_token": tok.RefreshToken}), 401, CodeUnauthorized)
		e.want(e.do("POST", "/admin/v1/auth/refresh", auth{}, map[string]string{"refresh_token": next.RefreshToken}), 401, CodeUnauthorized)
		e.want(e.do("POST", "/admin/v1/auth/refresh", auth{}, map[string]string{"refresh_token": "srt_nonsense"}), 401, CodeUnauthorized)
		e.want(e.do("POST", "/admin/v1/auth/refresh", auth{}, map[string]string{}), 422, CodeRequired)
	})
}

func TestRoles(t *testing.T) {
	e := newEnv(t)
	vpw := e.addOperator("victor", RoleViewer)
	apw := e.addOperator("root", RoleAdmin)
	viewer := e.login("victor", vpw)
	admin := e.login("root", apw)

	er := e.want(e.do("POST", "/admin/v1/actions", bearer(viewer.AccessToken),
		ActionRequest{Action: "test.poke", Target: "w1", RequestID: "r-viewer"}), 403, CodeForbidden)
	if !strings.Contains(er.Message, "operator role") {
		t.Errorf("403 message %q does not name the role needed", er.Message)
	}
	if e.fake.count("r-viewer") != 0 {
		t.Error("a viewer's action was performed")
	}
	er = e.want(e.do("GET", "/admin/v1/operators", bearer(viewer.AccessToken), nil), 403, CodeForbidden)
	if !strings.Contains(er.Message, "admin role") {
		t.Errorf("403 message %q does not name the role needed", er.Message)
	}
	e.want(e.do("POST", "/admin/v1/approvals/"+"00000000-0000-0000-0000-000000000000"+"/approve", bearer(viewer.AccessToken), nil), 403, CodeForbidden)

	// Operators: create, refuse a duplicate and a weak password, reset, disable.
	r := e.do("POST", "/admin/v1/operators", bearer(admin.AccessToken), map[string]string{"username": "olga", "password": "olga-password-1", "role": "operator"})
	e.want(r, 201, "")
	e.secret("olga-password-1", "olga-password-2")
	e.want(e.do("POST", "/admin/v1/operators", bearer(admin.AccessToken), map[string]string{"username": "olga", "password": "olga-password-1", "role": "operator"}), 409, CodeOperatorExists)
	er = e.want(e.do("POST", "/admin/v1/operators", bearer(admin.AccessToken), map[string]string{"username": "pat", "password": "short", "role": "viewer"}), 422, CodeWeakPassword)
	if er.Field != "password" {
		t.Errorf("field %q", er.Field)
	}
	er = e.want(e.do("POST", "/admin/v1/operators", bearer(admin.AccessToken), map[string]string{"username": "pat", "password": "long-enough-pw", "role": "god"}), 422, CodeInvalid)
	if er.Field != "role" {
		t.Errorf("field %q", er.Field)
	}
	var ops []Operator
	e.do("GET", "/admin/v1/operators", bearer(admin.AccessToken), nil).json(t, &ops)
	if len(ops) != 3 {
		t.Errorf("operators: %+v", ops)
	}
	olga := e.login("olga", "olga-password-1")
	e.want(e.do("POST", "/admin/v1/operators/olga/reset", bearer(admin.AccessToken), map[string]string{"password": "olga-password-2"}), 200, "")
	e.want(e.do("POST", "/admin/v1/auth/login", auth{}, LoginRequest{Username: "olga", Password: "olga-password-1"}), 401, CodeUnauthorized)
	e.login("olga", "olga-password-2")
	e.want(e.do("POST", "/admin/v1/operators/nobody/disable", bearer(admin.AccessToken), nil), 404, CodeNotFound)

	// Disabled: the next request with a token issued before is refused (the role cache is dropped on
	// this server; another instance's within RoleCacheTTL).
	e.want(e.do("GET", "/admin/v1/me", bearer(olga.AccessToken), nil), 200, "")
	e.want(e.do("POST", "/admin/v1/operators/olga/disable", bearer(admin.AccessToken), nil), 200, "")
	e.want(e.do("GET", "/admin/v1/me", bearer(olga.AccessToken), nil), 401, CodeUnauthorized)
	e.want(e.do("POST", "/admin/v1/auth/login", auth{}, LoginRequest{Username: "olga", Password: "olga-password-2"}), 401, CodeUnauthorized)
}

func TestDisabledElsewhereBitesWithinCacheTTL(t *testing.T) {
	e := newEnv(t)
	pw := e.addOperator("quinn", RoleOperator)
	tok := e.login("quinn", pw)
	e.want(e.do("GET", "/admin/v1/me", bearer(tok.AccessToken), nil), 200, "")
	// Disabled by another process (the CLI): this server's cache still holds quinn for up to 5 s.
	if _, err := DisableOperator(context.Background(), e.st, Actor{Operator: "cli:test", Remote: "local"}, "quinn"); err != nil {
		t.Fatal(err)
	}
	e.advance(DefaultRoleCacheTTL + time.Second)
	e.want(e.do("GET", "/admin/v1/me", bearer(tok.AccessToken), nil), 401, CodeUnauthorized)
}

func TestCookieSession(t *testing.T) {
	e := newEnv(t)
	pw := e.addOperator("dash", RoleOperator)
	r := e.do("POST", "/admin/v1/auth/login", auth{}, LoginRequest{Username: "dash", Password: pw, Session: "cookie"})
	e.want(r, 200, "")
	var tok Tokens
	r.json(t, &tok)
	if tok.AccessToken != "" || tok.RefreshToken != "" || tok.CSRFToken == "" {
		t.Fatalf("cookie login body: %s", r.raw)
	}
	var session, csrf string
	for _, c := range (&http.Response{Header: r.header}).Cookies() {
		switch c.Name {
		case CookieSession:
			session = c.Value
			if !c.HttpOnly || !c.Secure || c.SameSite != http.SameSiteStrictMode || c.Path != "/" {
				t.Errorf("session cookie %+v: want HttpOnly, Secure, SameSite=Strict, Path=/", c)
			}
		case CookieCSRF:
			csrf = c.Value
			if c.HttpOnly || !c.Secure || c.SameSite != http.SameSiteStrictMode {
				t.Errorf("CSRF cookie %+v: want readable, Secure, SameSite=Strict", c)
			}
		}
	}
	if session == "" || csrf != tok.CSRFToken {
		t.Fatalf("cookies: session %v, csrf %q vs %q", session != "", csrf, tok.CSRFToken)
	}
	e.secret(session, csrf)
	a := auth{session: session, csrf: csrf}
	e.want(e.do("GET", "/admin/v1/me", a, nil), 200, "")
	poke := ActionRequest{Action: "test.poke", Target: "w", RequestID: "cookie-1"}
	e.want(e.do("POST", "/admin/v1/actions", a, poke), 403, CodeCSRF)
	a.csrfHeader = "forged"
	e.want(e.do("POST", "/admin/v1/actions", a, poke), 403, CodeCSRF)
	// A CSRF cookie and header planted together (not the session's token) do not pass either.
	e.want(e.do("POST", "/admin/v1/actions", auth{session: session, csrf: "planted", csrfHeader: "planted"}, poke), 403, CodeCSRF)
	if e.fake.count("cookie-1") != 0 {
		t.Fatal("an action without the CSRF header was performed")
	}
	a.csrfHeader = csrf
	e.want(e.do("POST", "/admin/v1/actions", a, poke), 200, "")

	// Refresh with the cookie: new cookies, the old session revoked.
	r = e.do("POST", "/admin/v1/auth/refresh", a, nil)
	e.want(r, 200, "")
	var next Tokens
	r.json(t, &next)
	var session2 string
	for _, c := range (&http.Response{Header: r.header}).Cookies() {
		if c.Name == CookieSession {
			session2 = c.Value
		}
	}
	e.secret(session2, next.CSRFToken)
	e.want(e.do("GET", "/admin/v1/me", a, nil), 401, CodeUnauthorized)
	a2 := auth{session: session2, csrf: next.CSRFToken, csrfHeader: next.CSRFToken}
	e.want(e.do("GET", "/admin/v1/me", a2, nil), 200, "")
	e.want(e.do("POST", "/admin/v1/auth/logout", a2, nil), 204, "")
	e.want(e.do("GET", "/admin/v1/me", a2, nil), 401, CodeUnauthorized)
}

func TestActions(t *testing.T) {
	e := newEnv(t)
	pw := e.addOperator("oscar", RoleOperator)
	tok := bearer(e.login("oscar", pw).AccessToken)

	er := e.want(e.do("POST", "/admin/v1/actions", tok, ActionRequest{Action: "no.such", Target: "x", RequestID: "r0"}), 422, CodeUnknownAction)
	if er.Field != "action" {
		t.Errorf("field %q, want action", er.Field)
	}
	er = e.want(e.do("POST", "/admin/v1/actions", tok, ActionRequest{Action: "test.poke", RequestID: "r0"}), 422, CodeRequired)
	if er.Field != "target" {
		t.Errorf("field %q, want target", er.Field)
	}
	er = e.want(e.do("POST", "/admin/v1/actions", tok, ActionRequest{Action: "test.poke", Target: "x"}), 422, CodeRequired)
	if er.Field != "request_id" {
		t.Errorf("field %q, want request_id", er.Field)
	}
	e.want(e.do("POST", "/admin/v1/actions", tok, ActionRequest{Action: "test.poke", Target: "x", RequestID: "bad id!"}), 422, CodeInvalid)
	e.want(e.do("POST", "/admin/v1/actions", tok, `{"action":"test.poke","dry_run":"yes"}`), 400, CodeInvalidJSON)

	// Dry run: the plan, nothing done.
	r := e.do("POST", "/admin/v1/actions", tok, ActionRequest{Action: "test.poke", Target: "w1", DryRun: true})
	e.want(r, 200, "")
	var res ActionResult
	r.json(t, &res)
	if res.Status != ActionPlanned || res.Plan.Summary != "poke w1" || len(res.Plan.Rows) != 1 {
		t.Errorf("dry run: %+v", res)
	}
	if e.fake.count("") != 0 {
		t.Error("a dry run performed the action")
	}

	// Done once; the same request id again returns the same result and does nothing.
	req := ActionRequest{Action: "test.poke", Target: "w1", RequestID: "r1", Reason: "stuck"}
	r1 := e.do("POST", "/admin/v1/actions", tok, req)
	e.want(r1, 200, "")
	r1.json(t, &res)
	if res.Status != ActionDone || res.Result["poked"] != "w1" || res.RequestedBy != "oscar" {
		t.Errorf("done: %s", r1.raw)
	}
	r2 := e.do("POST", "/admin/v1/actions", tok, req)
	e.want(r2, 200, "")
	if string(r2.raw) != string(r1.raw) {
		t.Errorf("replay answered %s, first answer %s", r2.raw, r1.raw)
	}
	if n := e.fake.count("r1"); n != 1 {
		t.Errorf("Do called %d times for one request id", n)
	}
	if by := e.fake.by["r1"]; by != "oscar" {
		t.Errorf("Do by %q", by)
	}
	req.Target = "w2"
	e.want(e.do("POST", "/admin/v1/actions", tok, req), 409, CodeRequestIDConflict)

	// A refusal at plan time does nothing and records nothing: the same id performs once the target allows.
	e.fake.gone.Store(true)
	e.want(e.do("POST", "/admin/v1/actions", tok, ActionRequest{Action: "test.poke", Target: "w3", RequestID: "r3"}), 409, CodeConflict)
	e.fake.gone.Store(false)
	e.want(e.do("POST", "/admin/v1/actions", tok, ActionRequest{Action: "test.poke", Target: "w3", RequestID: "r3"}), 200, "")
	// A refusal by Do (the target changed after the plan) is recorded: its replay gets the same 409.
	e.fake.refuse.Store(true)
	e.want(e.do("POST", "/admin/v1/actions", tok, ActionRequest{Action: "test.poke", Target: "w4", RequestID: "r4"}), 409, CodeConflict)
	e.fake.refuse.Store(false)
	e.want(e.do("POST", "/admin/v1/actions", tok, ActionRequest{Action: "test.poke", Target: "w4", RequestID: "r4"}), 409, CodeConflict)
	if e.fake.count("r4") != 0 {
		t.Error("a refused action was performed")
	}
	var status string
	if err := e.st.DB.QueryRow(`SELECT status FROM action_requests WHERE request_id = 'r4'`).Scan(&status); err != nil || status != ActionFailed {
		t.Errorf("refused request recorded as %q (%v)", status, err)
	}
}

func TestActionSurvivesACrash(t *testing.T) {
	e := newEnv(t)
	pw := e.addOperator("oscar", RoleOperator)
	tok := bearer(e.login("oscar", pw).AccessToken)
	req := ActionRequest{Action: "test.poke", Target: "w1", RequestID: "crash-1"}

	// Do fails on the way (as a crash after recording would leave it): the request stays doing.
	e.fake.failDo.Store(true)
	e.want(e.do("POST", "/admin/v1/actions", tok, req), 500, CodeInternal)
	e.fake.failDo.Store(false)
	var status string
	if err := e.st.DB.QueryRow(`SELECT status FROM action_requests WHERE request_id = 'crash-1'`).Scan(&status); err != nil || status != statusDoing {
		t.Fatalf("after a failed Do the request is %q (%v), want doing", status, err)
	}
	// Within its lease, nobody performs it again.
	e.want(e.do("POST", "/admin/v1/actions", tok, req), 409, CodeInProgress)
	// After it, the same request id performs it, once.
	e.advance(actionLease + time.Second)
	tok = bearer(e.login("oscar", pw).AccessToken)
	r := e.do("POST", "/admin/v1/actions", tok, req)
	e.want(r, 200, "")
	e.want(e.do("POST", "/admin/v1/actions", tok, req), 200, "")
	if n := e.fake.count("crash-1"); n != 1 {
		t.Errorf("Do succeeded %d times, want 1", n)
	}
}

func TestTwoPersonApproval(t *testing.T) {
	e := newEnv(t)
	opw := e.addOperator("oscar", RoleOperator)
	a1pw := e.addOperator("amy", RoleApprover)
	a2pw := e.addOperator("ben", RoleApprover)
	oscar := bearer(e.login("oscar", opw).AccessToken)
	amy := bearer(e.login("amy", a1pw).AccessToken)
	ben := bearer(e.login("ben", a2pw).AccessToken)

	req := ActionRequest{Action: "test.poke", Target: "dlq-7", Params: map[string]string{"two": "true"}, RequestID: "two-1"}
	r := e.do("POST", "/admin/v1/actions", oscar, req)
	e.want(r, 202, "")
	var res ActionResult
	r.json(t, &res)
	if res.Status != ActionAwaitingApproval || res.ExpiresAt == nil || res.Plan.Summary != "poke dlq-7" {
		t.Fatalf("two-person request: %s", r.raw)
	}
	if e.fake.count("two-1") != 0 {
		t.Fatal("performed before approval")
	}
	// Replayed while waiting: the same 202, still nothing done.
	e.want(e.do("POST", "/admin/v1/actions", oscar, req), 202, "")

	var list []Approval
	e.do("GET", "/admin/v1/approvals", amy, nil).json(t, &list)
	if len(list) != 1 || list[0].Status != ApprovalPending || list[0].Action.RequestID != "two-1" || list[0].Action.RequestedBy != "oscar" {
		t.Fatalf("approvals: %+v", list)
	}
	id := list[0].ID
	e.want(e.do("POST", "/admin/v1/approvals/"+id+"/approve", oscar, nil), 403, CodeForbidden) // an operator cannot approve

	// An approver's own request cannot be approved by them.
	own := ActionRequest{Action: "test.poke", Target: "dlq-8", Params: map[string]string{"two": "true"}, RequestID: "two-own"}
	e.want(e.do("POST", "/admin/v1/actions", amy, own), 202, "")
	e.do("GET", "/admin/v1/approvals", amy, nil).json(t, &list)
	var ownID string
	for _, a := range list {
		if a.Action.RequestID == "two-own" {
			ownID = a.ID
		}
	}
	e.want(e.do("POST", "/admin/v1/approvals/"+ownID+"/approve", amy, nil), 403, CodeSelfApproval)
	if e.fake.count("two-own") != 0 {
		t.Fatal("a self-approved action was performed")
	}

	// Another approver: performed once, by requester+approver.
	r = e.do("POST", "/admin/v1/approvals/"+id+"/approve", amy, nil)
	e.want(r, 200, "")
	r.json(t, &res)
	if res.Status != ActionDone || res.ApprovedBy != "amy" || res.RequestedBy != "oscar" {
		t.Errorf("approved: %s", r.raw)
	}
	if n, by := e.fake.count("two-1"), e.fake.by["two-1"]; n != 1 || by != "oscar+amy" {
		t.Errorf("Do called %d times by %q, want once by oscar+amy", n, by)
	}
	e.want(e.do("POST", "/admin/v1/approvals/"+id+"/approve", ben, nil), 409, CodeNotPending)
	e.want(e.do("POST", "/admin/v1/approvals/"+id+"/approve", amy, nil), 409, CodeNotPending)
	r = e.do("POST", "/admin/v1/actions", oscar, req)
	e.want(r, 200, "")
	r.json(t, &res)
	if res.Status != ActionDone {
		t.Errorf("replay after approval: %s", r.raw)
	}
	if n := e.fake.count("two-1"); n != 1 {
		t.Errorf("Do called %d times", n)
	}
	var got Approval
	e.do("GET", "/admin/v1/approvals/"+id, oscar, nil).json(t, &got)
	if got.Status != ApprovalApproved || got.DecidedBy != "amy" || got.Action.Status != ActionDone {
		t.Errorf("approval after: %+v", got)
	}

	// Reject: the action is not performed, and the request's replay says rejected.
	r = e.do("POST", "/admin/v1/approvals/"+ownID+"/reject", ben, map[string]string{"reason": "not now"})
	e.want(r, 200, "")
	r.json(t, &got)
	if got.Status != ApprovalRejected || got.DecidedBy != "ben" || got.Reason != "not now" || got.Action.Status != ActionRejected {
		t.Errorf("rejected: %s", r.raw)
	}
	e.want(e.do("POST", "/admin/v1/approvals/"+ownID+"/approve", ben, nil), 409, CodeNotPending)
	if e.fake.count("two-own") != 0 {
		t.Error("a rejected action was performed")
	}
	e.want(e.do("GET", "/admin/v1/approvals/not-a-uuid", ben, nil), 400, CodeInvalidParameter)
	e.want(e.do("GET", "/admin/v1/approvals/00000000-0000-0000-0000-000000000000", ben, nil), 404, CodeNotFound)
	e.want(e.do("GET", "/admin/v1/approvals?status=weird", ben, nil), 400, CodeInvalidParameter)
	var all []Approval
	e.do("GET", "/admin/v1/approvals?status=all", ben, nil).json(t, &all)
	if len(all) != 2 {
		t.Errorf("%d approvals in all, want 2", len(all))
	}
}

func TestApprovalExpires(t *testing.T) {
	e := newEnv(t, func(d *Deps) { d.ApprovalTTL = 10 * time.Minute })
	opw := e.addOperator("oscar", RoleOperator)
	apw := e.addOperator("amy", RoleApprover)
	oscar := bearer(e.login("oscar", opw).AccessToken)
	req := ActionRequest{Action: "test.poke", Target: "w", Params: map[string]string{"two": "true"}, RequestID: "exp-1"}
	e.want(e.do("POST", "/admin/v1/actions", oscar, req), 202, "")
	var list []Approval
	e.do("GET", "/admin/v1/approvals", oscar, nil).json(t, &list)
	if len(list) != 1 {
		t.Fatalf("approvals: %+v", list)
	}
	e.advance(11 * time.Minute)
	amy := bearer(e.login("amy", apw).AccessToken)
	e.do("GET", "/admin/v1/approvals", amy, nil).json(t, &list)
	if len(list) != 0 {
		t.Errorf("an expired request is still pending: %+v", list)
	}
	e.want(e.do("POST", "/admin/v1/approvals/"+list0(t, e, amy)+"/approve", amy, nil), 409, CodeExpired)
	if e.fake.count("exp-1") != 0 {
		t.Error("an expired request was performed")
	}
	var res ActionResult
	oscar = bearer(e.login("oscar", opw).AccessToken)
	e.do("POST", "/admin/v1/actions", oscar, req).json(t, &res)
	if res.Status != ActionExpired {
		t.Errorf("replay of an expired request: %+v", res)
	}
}

func list0(t *testing.T, e *env, a auth) string {
	var all []Approval
	e.do("GET", "/admin/v1/approvals?status=all", a, nil).json(t, &all)
	if len(all) == 0 {
		t.Fatal("no approvals")
	}
	if all[0].Status != ApprovalExpired {
		t.Errorf("approval shown as %s, want expired", all[0].Status)
	}
	return all[0].ID
}

func TestAuditChain(t *testing.T) {
	e := newEnv(t)
	pw := e.addOperator("ivy", RoleOperator)
	tok := bearer(e.login("ivy", pw).AccessToken)
	for i := 0; i < 3; i++ {
		e.want(e.do("POST", "/admin/v1/actions", tok, ActionRequest{Action: "test.poke", Target: "w", RequestID: "a" + strconv.Itoa(i)}), 200, "")
	}
	e.do("POST", "/admin/v1/auth/login", auth{}, LoginRequest{Username: "ivy", Password: "wrong-password-x"})
	var v AuditVerify
	e.do("GET", "/admin/v1/audit/verify", tok, nil).json(t, &v)
	if !v.OK || v.Rows < 9 {
		t.Fatalf("verify of an untouched log: %+v", v)
	}
	// Pagination, newest first.
	var p1, p2 Page[AuditEntry]
	e.do("GET", "/admin/v1/audit?limit=4", tok, nil).json(t, &p1)
	if len(p1.Items) != 4 || p1.NextCursor == "" || p1.Items[0].ID <= p1.Items[1].ID {
		t.Fatalf("page 1: %+v", p1)
	}
	e.do("GET", "/admin/v1/audit?limit=4&cursor="+p1.NextCursor, tok, nil).json(t, &p2)
	if len(p2.Items) == 0 || p2.Items[0].ID != p1.Items[3].ID-1 {
		t.Fatalf("page 2 starts at %+v after %d", p2.Items, p1.Items[3].ID)
	}
	if p1.Items[0].PrevHash != p1.Items[1].Hash {
		t.Errorf("row %d's prev_hash is not row %d's hash", p1.Items[0].ID, p1.Items[1].ID)
	}
	var only Page[AuditEntry]
	e.do("GET", "/admin/v1/audit?kind=login_failed", tok, nil).json(t, &only)
	if len(only.Items) != 1 || only.Items[0].Operator != "ivy" {
		t.Errorf("kind filter: %+v", only)
	}
	e.want(e.do("GET", "/admin/v1/audit?cursor=abc", tok, nil), 400, CodeInvalidParameter)
	e.want(e.do("GET", "/admin/v1/audit?limit=0", tok, nil), 400, CodeInvalidParameter)
	e.want(e.do("GET", "/admin/v1/audit?kind=nope", tok, nil), 400, CodeInvalidParameter)

	ctx := context.Background()
	// An edited row is named.
	if _, err := e.st.DB.Exec(`UPDATE audit_log SET outcome = 'ok' WHERE id = 5`); err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.DB.Exec(`UPDATE audit_log SET what = CONCAT(what, ' ') WHERE id = 4`); err != nil {
		t.Fatal(err)
	}
	v, err := VerifyAudit(ctx, e.st)
	if err != nil || v.OK || v.FirstBrokenID != 4 || !strings.Contains(v.Reason, "changed") {
		t.Fatalf("verify after editing rows 4 and 5: %+v %v", v, err)
	}
	e.do("GET", "/admin/v1/audit/verify", tok, nil).json(t, &v)
	if v.OK || v.FirstBrokenID != 4 {
		t.Errorf("GET /audit/verify after the edit: %+v", v)
	}
	mustVerify := func(wantID int64, what string) {
		t.Helper()
		v, err := VerifyAudit(ctx, e.st)
		if err != nil || v.OK || v.FirstBrokenID != wantID {
			t.Errorf("%s: verify %+v %v, want row %d named", what, v, err, wantID)
		}
	}
	// Fresh chains for the other tamperings: a deleted row, a deleted tail, two rows swapped.
	reset := func() {
		t.Helper()
		if _, err := e.st.DB.Exec(`DELETE FROM audit_log`); err != nil {
			t.Fatal(err)
		}
		if _, err := e.st.DB.Exec(`UPDATE audit_head SET last_id = 0, last_hash = ''`); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 6; i++ {
			if err := e.srv.audit(ctx, auditRecord{Operator: "ivy", Remote: "127.0.0.1", Kind: KindRead, What: "row " + strconv.Itoa(i+1), Outcome: "ok",
				Detail: map[string]any{"n": i, "nested": map[string]any{"b": 1, "a": "x"}}}); err != nil {
				t.Fatal(err)
			}
		}
		if v, err := VerifyAudit(ctx, e.st); err != nil || !v.OK || v.Rows != 6 {
			t.Fatalf("fresh chain: %+v %v", v, err)
		}
	}
	reset()
	if _, err := e.st.DB.Exec(`DELETE FROM audit_log WHERE id = 3`); err != nil {
		t.Fatal(err)
	}
	mustVerify(3, "row 3 deleted")
	reset()
	if _, err := e.st.DB.Exec(`DELETE FROM audit_log WHERE id >= 5`); err != nil {
		t.Fatal(err)
	}
	mustVerify(5, "rows 5-6 deleted")
	reset()
	// Swap rows 2 and 3 (contents moved, ids kept): row 2 no longer recomputes.
	if _, err := e.st.DB.Exec(`UPDATE audit_log a JOIN audit_log b ON a.id = 2 AND b.id = 3
		SET a.what = b.what, b.what = a.what, a.hash = b.hash, b.hash = a.hash, a.prev_hash = b.prev_hash, b.prev_hash = a.prev_hash`); err != nil {
		t.Fatal(err)
	}
	mustVerify(2, "rows 2 and 3 swapped")
}

func TestHeadersAndErrors(t *testing.T) {
	e := newEnv(t)
	r := e.do("GET", "/admin/v1/nothing-here", auth{}, nil)
	e.want(r, 404, CodeNotFound)
	if csp := r.header.Get("Content-Security-Policy"); csp != CSP {
		t.Errorf("CSP %q", csp)
	}
	e.want(e.do("DELETE", "/admin/v1/me", auth{}, nil), 405, CodeMethodNotAllowed)
	r = e.do("GET", "/admin/openapi.json", auth{}, nil)
	e.want(r, 200, "")
	if !strings.Contains(string(r.raw), `"openapi": "3.1.0"`) {
		t.Errorf("openapi: %.100s", r.raw)
	}
	r = e.do("GET", "/ops/", auth{}, nil)
	if r.status != 200 || r.header.Get("Content-Security-Policy") != CSP || !strings.Contains(string(r.raw), "<html") {
		t.Errorf("/ops/: %d %q", r.status, r.header.Get("Content-Security-Policy"))
	}
	e.want(e.do("POST", "/admin/v1/auth/login", auth{}, `{"username":"`+strings.Repeat("a", 70<<10)+`","password":"x"}`), 413, "body_too_large")
}

func TestSecretsNeverLogged(t *testing.T) {
	e := newEnv(t)
	pw := e.addOperator("sam", RoleApprover)
	e.do("POST", "/admin/v1/auth/login", auth{}, LoginRequest{Username: "sam", Password: pw + "-wrong"})
	e.secret(pw + "-wrong")
	tok := e.login("sam", pw)
	e.do("POST", "/admin/v1/auth/refresh", auth{}, map[string]string{"refresh_token": tok.RefreshToken})
	e.do("POST", "/admin/v1/auth/refresh", auth{}, map[string]string{"refresh_token": tok.RefreshToken}) // reuse
	e.do("POST", "/admin/v1/operators", bearer(tok.AccessToken), map[string]string{"username": "x", "password": "secret-password-99", "role": "viewer"})
	e.secret("secret-password-99")
	// A request that fails inside (500) logs its error: still no secret.
	e.fake.failDo.Store(true)
	e.do("POST", "/admin/v1/actions", bearer(tok.AccessToken), ActionRequest{Action: "test.poke", Target: "w", RequestID: "z"})
	logs := e.logs.String()
	if !strings.Contains(logs, `"msg":"admin request"`) || !strings.Contains(logs, "admin request failed") {
		t.Fatalf("the logs were not captured: %.300s", logs)
	}
	// newEnv's cleanup checks every registered secret against the logs; check here too, to fail by name.
	for _, s := range []string{pw, tok.AccessToken, tok.RefreshToken, "secret-password-99"} {
		if strings.Contains(logs, s) {
			t.Errorf("secret %.6s… logged", s)
		}
	}
	var n int
	if err := e.st.DB.QueryRow(`SELECT COUNT(*) FROM audit_log WHERE detail LIKE '%secret-password-99%' OR detail LIKE ?`, "%"+pw+"%").Scan(&n); err != nil || n != 0 {
		t.Errorf("a password in the audit log (%d rows, %v)", n, err)
	}
}

func TestPasswordHash(t *testing.T) {
	h, err := HashPassword("correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Errorf("PHC string %q", h)
	}
	if !checkPassword(h, "correct horse battery") || checkPassword(h, "correct horse batterx") || checkPassword("$argon2id$garbage", "x") {
		t.Error("checkPassword")
	}
	h2, _ := HashPassword("correct horse battery")
	if h == h2 {
		t.Error("no salt")
	}
}

// TestAuditAppendsSerialize appends from two servers (two processes' worth: each has its own mutex) on one
// database at once: the audit_head lock keeps the ids contiguous and the chain whole.
func TestAuditAppendsSerialize(t *testing.T) {
	e := newEnv(t)
	other, err := newServer(Deps{Store: e.st, Redis: e.srv.rdb, JWTKey: []byte(testKey)}, nil, NopMetrics(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	errs := make(chan error, 40)
	for i := 0; i < 40; i++ {
		srv := e.srv
		if i%2 == 1 {
			srv = other
		}
		go func() {
			errs <- srv.audit(ctx, auditRecord{Operator: "x", Remote: "local", Kind: KindRead, What: "n " + strconv.Itoa(i), Outcome: "ok"})
		}()
	}
	for i := 0; i < 40; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	v, err := VerifyAudit(ctx, e.st)
	if err != nil || !v.OK || v.Rows != 40 {
		t.Fatalf("after 40 concurrent appends: %+v %v", v, err)
	}
}

// TestApprovedButRefused: the target changed between request and approval; the plan computed again at
// approval refuses, nothing is done, and the approval shows the action failed with the reason.
func TestApprovedButRefused(t *testing.T) {
	e := newEnv(t)
	oscar := bearer(e.login("oscar", e.addOperator("oscar", RoleOperator)).AccessToken)
	amy := bearer(e.login("amy", e.addOperator("amy", RoleApprover)).AccessToken)
	req := ActionRequest{Action: "test.poke", Target: "w9", Params: map[string]string{"two": "true"}, RequestID: "late-1"}
	e.want(e.do("POST", "/admin/v1/actions", oscar, req), 202, "")
	var list []Approval
	e.do("GET", "/admin/v1/approvals", amy, nil).json(t, &list)
	e.fake.gone.Store(true)
	e.want(e.do("POST", "/admin/v1/approvals/"+list[0].ID+"/approve", amy, nil), 409, CodeConflict)
	e.fake.gone.Store(false)
	var got Approval
	e.do("GET", "/admin/v1/approvals/"+list[0].ID, oscar, nil).json(t, &got)
	if got.Status != ApprovalApproved || got.Action.Status != ActionFailed || !strings.Contains(got.Action.Error, "terminal") || got.Action.RequestID != "late-1" {
		t.Errorf("approval after a refused plan: %+v", got)
	}
	e.want(e.do("POST", "/admin/v1/actions", oscar, req), 409, CodeConflict) // the replay: the same refusal
	if e.fake.count("late-1") != 0 {
		t.Error("a refused action was performed")
	}
}
