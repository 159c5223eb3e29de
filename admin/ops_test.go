package admin

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/labstack/echo/v4"

	"github.com/sluice-custody/sluice/internal/alert"
	"github.com/sluice-custody/sluice/internal/pipelinetest"
	"github.com/sluice-custody/sluice/internal/queue"
	"github.com/sluice-custody/sluice/internal/store"
	"github.com/sluice-custody/sluice/internal/testenv"
	"github.com/sluice-custody/sluice/recovery"
)

// opsEnv is a pipeline with the operators' reads and actions on it, served by a bare echo (the
// framework's auth, roles and audit are tested with the framework).
type opsEnv struct {
	*pipelinetest.Env
	o   *ops
	srv *httptest.Server
	rec *recovery.Service
}

func newOpsEnv(t *testing.T) *opsEnv {
	t.Helper()
	e := pipelinetest.New(t, pipelinetest.Options{})
	cfg := e.Config
	cfg.ExplorerURL = "https://explorer.example/tx/{hash}"
	cfg.Recovery.StuckAfterBlocks = 1 // a fresh chain is a few blocks high
	o, err := newOps(OpsDeps{Store: e.Store, Queue: e.Queue, Queues: e.Queue, Nonces: e.Nonces,
		Chains: map[string]ChainDeps{"local": {Config: cfg, Client: e.Client}}})
	if err != nil {
		t.Fatal(err)
	}
	rec, err := recovery.New(recovery.Deps{Store: e.Store, Queue: e.Queue, Keys: e.Keys, Leases: e.Nonces, Alerts: alert.Nop{},
		Chains: map[string]recovery.ChainDeps{"local": {Config: e.Config, Client: e.Client}}}, e.Log, recovery.NopMetrics())
	if err != nil {
		t.Fatal(err)
	}
	ec := echo.New()
	ec.HTTPErrorHandler = func(err error, c echo.Context) {
		var ae *Error
		if errors.As(err, &ae) {
			_ = c.JSON(ae.Status, map[string]any{"error": ae})
			return
		}
		var he *echo.HTTPError
		if errors.As(err, &he) {
			_ = c.JSON(he.Code, map[string]any{"error": map[string]any{"code": "http", "message": fmt.Sprint(he.Message)}})
			return
		}
		_ = c.JSON(http.StatusInternalServerError, map[string]any{"error": map[string]any{"code": "internal", "message": err.Error()}})
	}
	g := ec.Group("/admin/v1")
	for _, r := range o.readRoutes() {
		g.GET(r.path, r.h)
	}
	srv := httptest.NewServer(ec)
	t.Cleanup(srv.Close)
	return &opsEnv{Env: e, o: o, srv: srv, rec: rec}
}

// get reads path into out (when not nil) and returns the status.
func (e *opsEnv) get(path string, out any) int {
	e.T.Helper()
	req, err := http.NewRequest(http.MethodGet, e.srv.URL+"/admin/v1"+path, nil)
	if err != nil {
		e.T.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.T.Fatal(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(resp.Body)
	checkAgainstSpec(e.T, req, nil, resp, buf.Bytes())
	if out != nil {
		if err := json.Unmarshal(buf.Bytes(), out); err != nil {
			e.T.Fatalf("GET %s: %d %s: %v", path, resp.StatusCode, buf.String(), err)
		}
	}
	return resp.StatusCode
}

// spec returns the action named name.
func (e *opsEnv) spec(name string) ActionSpec {
	for _, s := range e.o.specs() {
		if s.Name == name {
			return s
		}
	}
	e.T.Fatalf("no action %s", name)
	return ActionSpec{}
}

// plan validates and plans r.
func (e *opsEnv) plan(r ActionRequest) (Plan, error) {
	s := e.spec(r.Action)
	if err := s.Validate(e.Ctx, r); err != nil {
		return Plan{}, err
	}
	return s.Plan(e.Ctx, r)
}

// do validates, plans and performs r, as the framework does.
func (e *opsEnv) do(r ActionRequest) map[string]any {
	e.T.Helper()
	if _, err := e.plan(r); err != nil {
		e.T.Fatalf("%s %s: plan: %v", r.Action, r.Target, err)
	}
	out, err := e.spec(r.Action).Do(e.Ctx, r, "alice+bob")
	if err != nil {
		e.T.Fatalf("%s %s: do: %v", r.Action, r.Target, err)
	}
	return out
}

// wantErr checks err is an *Error with this status and field.
func wantErr(t *testing.T, err error, status int, field string) {
	t.Helper()
	var ae *Error
	if !errors.As(err, &ae) || ae.Status != status || ae.Field != field {
		t.Fatalf("error %v (%#v), want %d naming %q", err, ae, status, field)
	}
}

// sendPaused signs and broadcasts a native withdrawal with sealing stopped, so it sits in the pool, and
// makes it look stuck (its stuck clock started at block 0).
func (e *opsEnv) sendPaused() (*store.Withdrawal, *store.SentTx, queue.Message) {
	return sendPaused(e.Env)
}

func sendPaused(e *pipelinetest.Env) (*store.Withdrawal, *store.SentTx, queue.Message) {
	e.T.Helper()
	w := e.Withdraw("POL", testenv.NewAccount(e.T).Address, 1e15)
	if err := e.Signer().Handle(e.Ctx, e.One(queue.TxRequest)); err != nil {
		e.T.Fatal(err)
	}
	m := e.One(queue.SignedTx)
	e.Chain.SealEvery(time.Hour)
	if err := e.Broadcaster().Handle(e.Ctx, m); err != nil {
		e.T.Fatal(err)
	}
	if err := e.Queue.Delete(e.Ctx, queue.SignedTx, m); err != nil {
		e.T.Fatal(err)
	}
	w = e.Get(w.ID)
	if w.Status != store.Broadcasted {
		e.T.Fatalf("withdrawal %s after broadcast", w.Status)
	}
	if _, err := e.Store.DB.ExecContext(e.Ctx, `UPDATE sent_transactions SET attempt_block = 0 WHERE id = ?`, *w.SentTxID); err != nil {
		e.T.Fatal(err)
	}
	st, err := e.Store.GetSentTx(e.Ctx, *w.SentTxID)
	if err != nil {
		e.T.Fatal(err)
	}
	return w, st, e.One(queue.TxMonitor)
}

// settle resumes sealing and runs the monitor on mon until withdrawal id is terminal; it returns it.
func settle(e *pipelinetest.Env, id string, mon queue.Message) *store.Withdrawal {
	e.T.Helper()
	e.Chain.SealEvery(100 * time.Millisecond)
	mo := e.Monitor()
	deadline := time.Now().Add(45 * time.Second)
	for !e.Get(id).Status.Terminal() {
		if time.Now().After(deadline) {
			e.T.Fatalf("never settled: %s", e.Get(id).Status)
		}
		if err := mo.Handle(e.Ctx, mon); err != nil {
			e.T.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return e.Get(id)
}

// park parks a dead-lettered copy of the withdrawal's tx-request (taken off the queue) for a person.
func park(e *pipelinetest.Env, msgID string) {
	e.T.Helper()
	orig := e.One(queue.TxRequest)
	if err := e.Queue.Delete(e.Ctx, queue.TxRequest, orig); err != nil {
		e.T.Fatal(err)
	}
	body, err := queue.DeadLetterFor(orig, queue.TxRequest, errors.New("mystery"), time.Now())
	if err != nil {
		e.T.Fatal(err)
	}
	if err := e.Store.InTx(e.Ctx, func(tx *sql.Tx) error {
		return e.Store.Park(e.Ctx, tx, store.Parked{Queue: queue.RequestDLQ, MessageID: msgID, Body: body, ErrorType: "UNKNOWN", Reason: "nobody classified it"})
	}); err != nil {
		e.T.Fatal(err)
	}
}

// A stuck transaction: status and stuck show it with the speed-up hint; the withdrawal is found by its
// transaction's hash and its detail lists the attempt; failing it is refused (it can still mine); the
// speed-up's plan is the same nonce at fees at least 10% higher; performed, recovery signs that bump and
// it mines, and the detail then shows two attempts and the fee paid.
func TestStuckSpeedUp(t *testing.T) {
	e := newOpsEnv(t)
	w, st, mon := e.sendPaused()

	var s Status
	if code := e.get("/status", &s); code != 200 {
		t.Fatalf("status %d", code)
	}
	var found *Problem
	for i, p := range s.Problems {
		if p.Kind == "stuck_tx" && p.Subject == st.Hash {
			found = &s.Problems[i]
		}
	}
	if found == nil || found.Hint != "sluice ops withdrawals speed-up "+w.ID {
		t.Fatalf("status problems %+v: want the stuck tx with the speed-up hint", s.Problems)
	}
	if len(s.Summary) != 1 || s.Summary[0].Counts["BROADCASTED"] != 1 || s.Summary[0].OldestOpenAgeSec <= 0 {
		t.Fatalf("summary %+v", s.Summary)
	}
	var stuck []StuckTx
	e.get("/stuck", &stuck)
	if len(stuck) != 1 || stuck[0].Nonce != st.Nonce || stuck[0].WithdrawalIDs[0] != w.ID || stuck[0].BlocksWaiting == 0 || stuck[0].MarketTipWei == nil {
		t.Fatalf("stuck %+v", stuck)
	}
	var page Page[WithdrawalView]
	e.get("/withdrawals?tx_hash="+st.Hash, &page)
	if len(page.Items) != 1 || page.Items[0].ID != w.ID || page.Items[0].Client != "test" || *page.Items[0].Amount != "0.001" {
		t.Fatalf("search by hash: %+v", page)
	}

	_, err := e.plan(ActionRequest{Action: ActionWithdrawalFail, Target: w.ID, Reason: "give up", RequestID: "r-fail"})
	wantErr(t, err, http.StatusConflict, "target")
	if !strings.Contains(err.Error(), "can still be mined") {
		t.Fatalf("fail refused with %q: want it to say the transaction can still mine", err)
	}

	req := ActionRequest{Action: ActionWithdrawalSpeedUp, Target: w.ID, RequestID: "r-speed", DryRun: true}
	p, err := e.plan(req)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Transactions) != 1 {
		t.Fatalf("plan %+v", p)
	}
	tp := p.Transactions[0]
	tip, _ := new(big.Int).SetString(tp.MaxPriorityFeeWei, 10)
	fee, _ := new(big.Int).SetString(tp.MaxFeePerGasWei, 10)
	minTip := new(big.Int).Div(new(big.Int).Mul(st.MaxPriorityFee, big.NewInt(110)), big.NewInt(100))
	minFee := new(big.Int).Div(new(big.Int).Mul(st.MaxFeePerGas, big.NewInt(110)), big.NewInt(100))
	if tp.Nonce != st.Nonce || tp.Replaces != st.Hash || tp.Kind != "replacement" || tip.Cmp(minTip) < 0 || fee.Cmp(minFee) < 0 || tp.ValueWei != "1000000000000000" {
		t.Fatalf("speed-up plan %+v: want nonce %d, tip ≥ %s, fee ≥ %s", tp, st.Nonce, minTip, minFee)
	}
	if n := e.CountSent(); n != 1 {
		t.Fatalf("a plan recorded something: %d sent txs", n)
	}
	req.DryRun = false
	out := e.do(req)
	if out["new"] != true {
		t.Fatalf("speed-up result %v", out)
	}
	got, err := e.rec.PerformActions(e.Ctx, "local")
	if err != nil || got.Bumped != 1 {
		t.Fatalf("recovery actions %+v, %v: want one bump", got, err)
	}
	cur, err := e.Store.GetSentTx(e.Ctx, st.ID)
	if err != nil {
		t.Fatal(err)
	}
	if cur.Nonce != st.Nonce || cur.Hash == st.Hash || cur.MaxPriorityFee.Cmp(minTip) < 0 {
		t.Fatalf("after the bump: nonce %d hash %s tip %s", cur.Nonce, cur.Hash, cur.MaxPriorityFee)
	}
	if got := settle(e.Env, w.ID, mon); got.Status != store.Confirmed {
		t.Fatalf("withdrawal %s, want CONFIRMED", got.Status)
	}
	var d WithdrawalDetail
	if code := e.get("/withdrawals/"+w.ID, &d); code != 200 {
		t.Fatalf("detail %d", code)
	}
	if len(d.Attempts) != 2 || d.Attempts[1].Status != "mined" || d.Attempts[1].FeePaidWei == nil || d.FeesPaidWei == "0" ||
		d.ExplorerURL != "https://explorer.example/tx/"+cur.Hash || len(d.History) < 4 {
		t.Fatalf("detail %+v", d)
	}
	// Speed-up of a settled withdrawal: 409 naming the state.
	_, err = e.plan(ActionRequest{Action: ActionWithdrawalSpeedUp, Target: w.ID, RequestID: "r2"})
	wantErr(t, err, http.StatusConflict, "target")
	var act Activity
	e.get("/activity", &act)
	created, confirmed := 0, 0
	for _, b := range act.Buckets {
		created, confirmed = created+b.Created, confirmed+b.Confirmed
	}
	if len(act.Buckets) != 60 || created != 1 || confirmed != 1 || len(act.GasToday) != 1 || act.GasToday[0].GasUsed != 21000 || act.GasToday[0].FeeWei == "0" {
		t.Fatalf("activity: %d buckets, %d created, %d confirmed, gas %+v", len(act.Buckets), created, confirmed, act.GasToday)
	}
}

// Bad input is a 4xx naming the field, never a 5xx.
func TestBadInput(t *testing.T) {
	e := newOpsEnv(t)
	w := e.Withdraw("POL", testenv.NewAccount(t).Address, 1e15)
	for _, c := range []struct {
		r      ActionRequest
		status int
		field  string
	}{
		{ActionRequest{Action: ActionWithdrawalRetry, Target: "nope"}, 400, "target"},
		{ActionRequest{Action: ActionWithdrawalRetry, Target: "0190a0a0-0000-7000-8000-000000000000"}, 404, "target"},
		{ActionRequest{Action: ActionWithdrawalFail, Target: w.ID}, 422, "reason"},
		{ActionRequest{Action: ActionWithdrawalCancel, Target: w.ID, Params: map[string]string{"x": "true"}}, 422, "params.x"},
		{ActionRequest{Action: ActionWalletResync, Target: "local/" + e.Hot.Address.Hex(), Params: map[string]string{"force": "yes"}}, 422, "params.force"},
		{ActionRequest{Action: ActionWalletFreeze, Target: "local/" + e.Hot.Address.Hex()}, 422, "reason"},
		{ActionRequest{Action: ActionWalletFreeze, Target: "mars/" + e.Hot.Address.Hex(), Reason: "x"}, 422, "target"},
		{ActionRequest{Action: ActionWalletFreeze, Target: "local/0x12", Reason: "x"}, 400, "target"},
		{ActionRequest{Action: ActionWalletFreeze, Target: "local/" + common.HexToAddress("0x1").Hex(), Reason: "x"}, 422, "target"},
		{ActionRequest{Action: ActionDLQRedrive, Target: "abc"}, 400, "target"},
		{ActionRequest{Action: ActionDLQRedrive, Target: "999999"}, 404, "target"},
		{ActionRequest{Action: ActionWalletUnfreeze, Target: "local/" + e.Hot.Address.Hex()}, 409, "target"},
		{ActionRequest{Action: ActionWalletFillGap, Target: "local/" + e.Hot.Address.Hex()}, 409, "target"},
	} {
		_, err := e.plan(c.r)
		wantErr(t, err, c.status, c.field)
	}
	for path, field := range map[string]string{
		"/withdrawals?state=BOGUS": "state", "/withdrawals?limit=0": "limit", "/withdrawals?since=yesterday": "since",
		"/withdrawals?address=0x1": "address", "/withdrawals?cursor=x": "cursor", "/withdrawals/123": "id", "/dlq/x": "id",
		"/dlq?queue=tx-request": "queue", "/alerts?state=closed": "state", "/nonces?chain=mars": "chain",
		"/wallets/local/" + common.HexToAddress("0x1").Hex(): "address",
	} {
		var body struct{ Error Error }
		code := e.get(path, &body)
		if code < 400 || code >= 500 || body.Error.Field != field {
			t.Errorf("GET %s: %d %+v, want a 4xx naming %s", path, code, body.Error, field)
		}
	}
	// A retry of a PENDING withdrawal sends its tx-request again; a cancel cancels it; then both are 409.
	e.Receive(queue.TxRequest)
	if out := e.do(ActionRequest{Action: ActionWithdrawalRetry, Target: w.ID, RequestID: "r1"}); out["status"] != "PENDING" {
		t.Fatalf("retry: %v", out)
	}
	if ms := e.Receive(queue.TxRequest); len(ms) != 1 {
		t.Fatalf("tx-request holds %d messages after the retry", len(ms))
	}
	if out := e.do(ActionRequest{Action: ActionWithdrawalCancel, Target: w.ID, RequestID: "r2", Reason: "client asked"}); out["status"] != "CANCELED" {
		t.Fatalf("cancel: %v", out)
	}
	_, err := e.plan(ActionRequest{Action: ActionWithdrawalRetry, Target: w.ID})
	wantErr(t, err, 409, "target")
	if !strings.Contains(err.Error(), "CANCELED") {
		t.Fatalf("retry of a canceled withdrawal: %q should name the state", err)
	}
	hs, err := e.Store.History(e.Ctx, w.ID)
	if err != nil || hs[len(hs)-1].Actor != store.ActorOperator {
		t.Fatalf("history %+v %v: want the operator's cancel last", hs, err)
	}
}

// A parked DLQ message is listed with its withdrawal, redriven (once, however often Do runs) to its
// source queue, and the signer handles it; a wallet is frozen and unfrozen; a withdrawal with nothing
// signed is failed and its history says who.
func TestDLQFreezeFail(t *testing.T) {
	e := newOpsEnv(t)
	w := e.Withdraw("POL", testenv.NewAccount(t).Address, 1e15)
	park(e.Env, "m-1")
	var page Page[DLQMessage]
	e.get("/dlq?queue=request-dlq", &page)
	if len(page.Items) != 1 || page.Items[0].WithdrawalID == nil || *page.Items[0].WithdrawalID != w.ID || page.Items[0].Class != "UNKNOWN" {
		t.Fatalf("dlq %+v", page)
	}
	id := page.Items[0].ID
	var qs []QueueView
	e.get("/queues", &qs)
	if len(qs) != len(queue.WorkQueues) || qs[0].Name != queue.TxRequest || qs[0].DLQ.Parked != 1 {
		t.Fatalf("queues %+v", qs)
	}
	var s Status
	e.get("/status", &s)
	if !hasProblem(s, "dlq", "sluice ops dlq show "+id) {
		t.Fatalf("status %+v: want the parked message", s.Problems)
	}
	r := ActionRequest{Action: ActionDLQRedrive, Target: id, RequestID: "r-dlq"}
	p, err := e.plan(r)
	if err != nil || p.Rows[0].Table != "queue tx-request" {
		t.Fatalf("redrive plan %+v %v", p, err)
	}
	if out := e.do(r); out["queue"] != queue.TxRequest {
		t.Fatalf("redrive %v", out)
	}
	// Do again (the framework after a crash): nothing more is sent.
	if out, err := e.spec(ActionDLQRedrive).Do(e.Ctx, r, "alice+bob"); err != nil || out["resolution"] != "redriven" {
		t.Fatalf("replayed redrive %v %v", out, err)
	}
	_, err = e.plan(ActionRequest{Action: ActionDLQDiscard, Target: id, Reason: "x"})
	wantErr(t, err, 409, "target")
	ms := e.Receive(queue.TxRequest)
	if len(ms) != 1 {
		t.Fatalf("tx-request holds %d messages after the redrive, want 1", len(ms))
	}
	if err := e.Signer().Handle(e.Ctx, ms[0]); err != nil {
		t.Fatal(err)
	}
	if st := e.Get(w.ID).Status; st != store.Signed {
		t.Fatalf("redriven withdrawal %s, want SIGNED", st)
	}

	target := "local/" + e.Hot.Address.Hex()
	e.do(ActionRequest{Action: ActionWalletFreeze, Target: target, Reason: "key rotation", RequestID: "r-f"})
	var ws []WalletView
	e.get("/wallets", &ws)
	if len(ws) != 1 || ws[0].Frozen == nil || ws[0].Frozen.Reason != "key rotation" || ws[0].InFlight != 1 || len(ws[0].Balances) != 2 ||
		ws[0].Balances[0].Amount == nil || ws[0].Nonce.Latest == nil || ws[0].Error != "" {
		t.Fatalf("wallets %+v", ws)
	}
	e.get("/status", &s)
	if !hasProblem(s, "frozen_wallet", "sluice ops wallets unfreeze "+target) {
		t.Fatalf("status %+v: want the frozen wallet", s.Problems)
	}
	e.do(ActionRequest{Action: ActionWalletUnfreeze, Target: target, RequestID: "r-u"})
	var one WalletView
	if code := e.get("/wallets/"+target, &one); code != 200 || one.Frozen != nil {
		t.Fatalf("wallet %d %+v", code, one)
	}

	w2 := e.Withdraw("POL", testenv.NewAccount(t).Address, 1e15)
	r = ActionRequest{Action: ActionWithdrawalFail, Target: w2.ID, Reason: "recipient closed", RequestID: "r-fail"}
	e.do(r)
	if out, err := e.spec(ActionWithdrawalFail).Do(e.Ctx, r, "alice+bob"); err != nil || out["status"] != "FAILED" {
		t.Fatalf("replayed fail %v %v", out, err)
	}
	got := e.Get(w2.ID)
	if got.Status != store.Failed || got.ErrorType != ErrorTypeOperator || !strings.Contains(got.ErrorMessage, "alice+bob") {
		t.Fatalf("failed withdrawal %+v", got)
	}
	if _, err := e.Store.OpenAlert(e.Ctx, "k1", "insufficient_funds", "critical", "wallet cannot pay", `{"chain":"local"}`); err != nil {
		t.Fatal(err)
	}
	var as []AlertView
	e.get("/alerts", &as)
	if len(as) != 1 || as[0].Details["chain"] != "local" {
		t.Fatalf("alerts %+v", as)
	}
	e.get("/status", &s)
	if s.Problems[0].Severity != "critical" || s.Problems[0].Subject != "k1" {
		t.Fatalf("status %+v: the critical alert first", s.Problems)
	}
}

func hasProblem(s Status, kind, hint string) bool {
	for _, p := range s.Problems {
		if p.Kind == kind && p.Hint == hint {
			return true
		}
	}
	return false
}

// A nonce gap (a transaction recorded above an unrecorded nonce) shows in nonces and status; fill-gap
// plans a self-transfer at the gap with fees, records it, and recovery fills it. Resync refuses to go
// backwards without force, and with it sets the counter to the chain's and the database's next.
func TestNonceGapAndResync(t *testing.T) {
	e := newOpsEnv(t)
	mined, err := e.Client.NonceAt(e.Ctx, e.Hot.Address)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := types.NewTx(&types.DynamicFeeTx{Nonce: mined + 1}).MarshalBinary()
	if err := e.Store.InTx(e.Ctx, func(tx *sql.Tx) error {
		_, err := e.Store.InsertSentTx(e.Ctx, tx, &store.SentTx{Chain: "local", ChainID: e.Config.ChainID, From: e.Hot.Address.Hex(), Nonce: mined + 1,
			To: e.Hot.Address.Hex(), Hash: common.BytesToHash([]byte("above-the-gap")).Hex(), Raw: raw, GasLimit: 21000,
			MaxFeePerGas: big.NewInt(1), MaxPriorityFee: big.NewInt(1), Kind: "withdrawal", Source: "test"})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	var ns []NonceView
	e.get("/nonces?chain=local&address="+e.Hot.Address.Hex(), &ns)
	if len(ns) != 1 || len(ns[0].Gaps) != 1 || ns[0].Gaps[0] != mined || ns[0].DB != mined+2 {
		t.Fatalf("nonces %+v", ns)
	}
	target := "local/" + e.Hot.Address.Hex()
	var s Status
	e.get("/status", &s)
	if !hasProblem(s, "nonce_gap", "sluice ops wallets fill-gap "+target) {
		t.Fatalf("status %+v: want the gap", s.Problems)
	}
	r := ActionRequest{Action: ActionWalletFillGap, Target: target, RequestID: "r-gap"}
	p, err := e.plan(r)
	if err != nil || len(p.Transactions) != 1 || p.Transactions[0].Nonce != mined || p.Transactions[0].MaxFeePerGasWei == "" || p.Transactions[0].To != e.Hot.Address.Hex() {
		t.Fatalf("fill-gap plan %+v %v", p, err)
	}
	if out := e.do(r); out["recorded"] != true {
		t.Fatalf("fill-gap %v", out)
	}
	n, err := e.rec.PerformWalletActions(e.Ctx, "local")
	if err != nil || n != 1 {
		t.Fatalf("recovery filled %d (%v), want 1", n, err)
	}
	if ok, err := e.Store.NonceRecorded(e.Ctx, e.Config.ChainID, e.Hot.Address.Hex(), mined); err != nil || !ok {
		t.Fatalf("gap nonce recorded %v %v", ok, err)
	}
	if n, err := e.rec.PerformWalletActions(e.Ctx, "local"); err != nil || n != 0 {
		t.Fatalf("second round filled %d (%v)", n, err)
	}

	// The counter ahead of everything: lowering it needs force.
	if _, _, err := e.Nonces.Resync(e.Ctx, e.Config.ChainID, e.Hot.Address, mined+10); err != nil {
		t.Fatal(err)
	}
	r = ActionRequest{Action: ActionWalletResync, Target: target, RequestID: "r-rs"}
	_, err = e.plan(r)
	wantErr(t, err, 409, "params.force")
	r.Params = map[string]string{"force": "true"}
	if !e.spec(ActionWalletResync).TwoPerson(r) {
		t.Fatal("a forced resync must be two-person")
	}
	e.do(r)
	st, err := e.Nonces.Peek(e.Ctx, e.Config.ChainID, e.Hot.Address)
	if err != nil || st.Next != mined+2 {
		t.Fatalf("counter %d (%v), want %d", st.Next, err, mined+2)
	}
	if p, err := e.plan(r); err != nil || len(p.Rows) != 0 {
		t.Fatalf("resync again: %+v %v, want nothing to change", p, err)
	}
}

// A node that does not answer shows as an error in the wallet, not a 5xx.
func TestNodeDownIsAFieldNotA5xx(t *testing.T) {
	e := newOpsEnv(t)
	cfg := e.Config
	cfg.Name = "down"
	d := e.o.chains["local"]
	d.Config, d.Client = cfg, downChain{Chain: e.Client}
	e.o.chains["down"] = d
	var ws []WalletView
	if code := e.get("/wallets", &ws); code != 200 || len(ws) != 2 {
		t.Fatalf("wallets %d %+v", code, ws)
	}
	for _, w := range ws {
		if (w.Chain == "down") != (w.Error != "" && w.Nonce.Latest == nil && w.Balances[0].Amount == nil) {
			t.Fatalf("wallet %+v: want an error field exactly on the chain whose node is down", w)
		}
	}
}

type downChain struct{ Chain }

var errDown = errors.New("dial tcp: connection refused")

func (downChain) NonceAt(context.Context, common.Address) (uint64, error)        { return 0, errDown }
func (downChain) PendingNonceAt(context.Context, common.Address) (uint64, error) { return 0, errDown }
func (downChain) BalanceAt(context.Context, common.Address) (*big.Int, error)    { return nil, errDown }
func (downChain) TokenBalance(context.Context, common.Address, common.Address) (*big.Int, error) {
	return nil, errDown
}
