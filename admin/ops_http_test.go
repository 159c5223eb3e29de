package admin

import (
	"net/http"
	"strings"
	"testing"

	"github.com/sluice-custody/sluice/internal/alert"
	"github.com/sluice-custody/sluice/internal/pipelinetest"
	"github.com/sluice-custody/sluice/internal/queue"
	"github.com/sluice-custody/sluice/internal/store"
	"github.com/sluice-custody/sluice/internal/testenv"
	"github.com/sluice-custody/sluice/recovery"
)

// newOpsHTTP is the framework's test server (env: login, roles, audit, approvals, every response
// validated against openapi.json) with the real reads and actions on a pipeline.
func newOpsHTTP(t *testing.T) (*env, *pipelinetest.Env, *recovery.Service) {
	t.Helper()
	pe := pipelinetest.New(t, pipelinetest.Options{})
	cfg := pe.Config
	cfg.Recovery.StuckAfterBlocks = 1 // a fresh chain is a few blocks high
	cfg.ExplorerURL = "https://explorer.example/tx/{hash}"
	e := newEnv(t, func(d *Deps) {
		d.Store = pe.Store
		d.Ops = OpsDeps{Queue: pe.Queue, Queues: pe.Queue, Nonces: pe.Nonces,
			Chains: map[string]ChainDeps{"local": {Config: cfg, Client: pe.Client}}}
	})
	e.st = pe.Store // operators go where the server reads them
	rec, err := recovery.New(recovery.Deps{Store: pe.Store, Queue: pe.Queue, Keys: pe.Keys, Leases: pe.Nonces, Alerts: alert.Nop{},
		Chains: map[string]recovery.ChainDeps{"local": {Config: pe.Config, Client: pe.Client}}}, pe.Log, recovery.NopMetrics())
	if err != nil {
		t.Fatal(err)
	}
	return e, pe, rec
}

// The scenario through HTTP: an operator logs in; status shows the stuck transaction the test
// created; the speed-up's dry run returns the plan; the real speed-up is performed by recovery and
// mines. A parked DLQ message is redriven by one operator and approved by another (not by the
// requester); a viewer's action is refused with 403 naming the role; the reads answer (and validate
// against openapi.json); the audit chain verifies with the reads and actions in it.
func TestOpsScenarioHTTP(t *testing.T) {
	e, pe, rec := newOpsHTTP(t)
	alice := bearer(e.login("alice", e.addOperator("alice", RoleOperator)).AccessToken)
	bob := bearer(e.login("bob", e.addOperator("bob", RoleApprover)).AccessToken)
	victor := bearer(e.login("victor", e.addOperator("victor", RoleViewer)).AccessToken)

	w, st, mon := sendPaused(pe)
	var s Status
	e.do("GET", "/admin/v1/status", victor, nil).json(t, &s)
	if len(s.Problems) == 0 || s.Problems[0].Kind != "stuck_tx" || s.Problems[0].Hint != "sluice ops withdrawals speed-up "+w.ID {
		t.Fatalf("status %+v: want the stuck transaction first, with the speed-up hint", s.Problems)
	}

	req := ActionRequest{Action: ActionWithdrawalSpeedUp, Target: w.ID, DryRun: true, RequestID: "su-dry"}
	r := e.do("POST", "/admin/v1/actions", alice, req)
	e.want(r, 200, "")
	var res ActionResult
	r.json(t, &res)
	if res.Status != ActionPlanned || len(res.Plan.Transactions) != 1 || res.Plan.Transactions[0].Nonce != st.Nonce ||
		res.Plan.Transactions[0].Replaces != st.Hash {
		t.Fatalf("dry run: %s", r.raw)
	}
	req.DryRun, req.RequestID = false, "su-1"
	e.want(e.do("POST", "/admin/v1/actions", victor, req), http.StatusForbidden, CodeForbidden) // a viewer cannot act
	r = e.do("POST", "/admin/v1/actions", alice, req)
	e.want(r, 200, "")
	r.json(t, &res)
	if res.Status != ActionDone || res.Result["new"] != true {
		t.Fatalf("speed-up: %s", r.raw)
	}
	e.want(e.do("POST", "/admin/v1/actions", alice, req), 200, "") // replayed: the stored result
	if got, err := rec.PerformActions(pe.Ctx, "local"); err != nil || got.Bumped != 1 {
		t.Fatalf("recovery: %+v %v, want one bump (one action for a replayed request)", got, err)
	}
	if got := settle(pe, w.ID, mon); got.Status != store.Confirmed {
		t.Fatalf("withdrawal %s, want CONFIRMED", got.Status)
	}
	var d WithdrawalDetail
	e.want(e.do("GET", "/admin/v1/withdrawals/"+w.ID, victor, nil), 200, "")
	e.do("GET", "/admin/v1/withdrawals/"+w.ID, victor, nil).json(t, &d)
	if len(d.Attempts) != 2 || d.Withdrawal.Status != "CONFIRMED" || !strings.HasPrefix(d.ExplorerURL, "https://explorer.example/tx/0x") {
		t.Fatalf("detail %+v", d)
	}

	// A parked DLQ message: redrive requested by alice, approved by bob.
	w2 := pe.Withdraw("POL", testenv.NewAccount(t).Address, 1e15)
	park(pe, "m-7")
	var page Page[DLQMessage]
	e.do("GET", "/admin/v1/dlq", victor, nil).json(t, &page)
	if len(page.Items) != 1 || *page.Items[0].WithdrawalID != w2.ID {
		t.Fatalf("dlq: %+v", page)
	}
	rd := ActionRequest{Action: ActionDLQRedrive, Target: page.Items[0].ID, RequestID: "rd-1", Reason: "classified by hand"}
	e.want(e.do("POST", "/admin/v1/actions", alice, rd), http.StatusAccepted, "")
	var list []Approval
	e.do("GET", "/admin/v1/approvals", bob, nil).json(t, &list)
	if len(list) != 1 || list[0].Action.Action != ActionDLQRedrive {
		t.Fatalf("approvals %+v", list)
	}
	if n := len(pe.Receive(queue.TxRequest)); n != 0 {
		t.Fatalf("redriven before approval: %d messages", n)
	}
	r = e.do("POST", "/admin/v1/approvals/"+list[0].ID+"/approve", bob, nil)
	e.want(r, 200, "")
	r.json(t, &res)
	if res.Status != ActionDone || res.ApprovedBy != "bob" || res.Result["queue"] != queue.TxRequest {
		t.Fatalf("approved redrive: %s", r.raw)
	}
	ms := pe.Receive(queue.TxRequest)
	if len(ms) != 1 {
		t.Fatalf("tx-request holds %d messages after the redrive, want 1", len(ms))
	}
	if err := pe.Signer().Handle(pe.Ctx, ms[0]); err != nil {
		t.Fatal(err)
	}
	if got := pe.Get(w2.ID); got.Status != store.Signed {
		t.Fatalf("redriven withdrawal %s, want SIGNED", got.Status)
	}
	var one DLQMessage
	e.do("GET", "/admin/v1/dlq/"+page.Items[0].ID, victor, nil).json(t, &one)
	if one.Resolution != "redriven" || one.ResolvedBy != "alice+bob" {
		t.Fatalf("resolved message %+v", one)
	}

	// Bad input through HTTP: a 4xx naming the field.
	er := e.want(e.do("POST", "/admin/v1/actions", alice, ActionRequest{Action: ActionWithdrawalFail, Target: w2.ID, RequestID: "f-1"}), 422, CodeRequired)
	if er.Field != "reason" {
		t.Fatalf("fail without a reason: field %q", er.Field)
	}
	er = e.want(e.do("GET", "/admin/v1/withdrawals?state=nope", victor, nil), 400, CodeInvalidParameter)
	if er.Field != "state" {
		t.Fatalf("bad state: field %q", er.Field)
	}
	// Every read answers (and validates against openapi.json).
	for _, p := range []string{"/summary", "/withdrawals?limit=1", "/queues", "/wallets", "/wallets/local/" + pe.Hot.Address.Hex(),
		"/nonces", "/stuck", "/alerts?state=all", "/activity"} {
		e.want(e.do("GET", "/admin/v1"+p, victor, nil), 200, "")
	}
	var v AuditVerify
	e.do("GET", "/admin/v1/audit/verify", victor, nil).json(t, &v)
	if !v.OK || v.Rows < 6 {
		t.Fatalf("audit %+v", v)
	}
	var audit Page[AuditEntry]
	e.do("GET", "/admin/v1/audit?kind=read", victor, nil).json(t, &audit)
	found := false
	for _, a := range audit.Items {
		found = found || (a.Operator == "victor" && a.What == "withdrawals/"+w.ID)
	}
	if !found {
		t.Fatalf("the detail read is not audited: %+v", audit.Items)
	}
}
