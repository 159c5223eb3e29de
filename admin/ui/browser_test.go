package ui_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/sluice-custody/sluice/admin"
	"github.com/sluice-custody/sluice/admin/ui"
	"github.com/sluice-custody/sluice/internal/app"
	"github.com/sluice-custody/sluice/internal/devmode"
	"github.com/sluice-custody/sluice/internal/queue"
	"github.com/sluice-custody/sluice/internal/store"
	"github.com/sluice-custody/sluice/internal/testenv"
)

// The dashboard tested as a person uses it: a headless Chromium (Debian's chromium, started by the test)
// drives the real pages against a whole engine (the dev chain, real MariaDB and Redis, the API, the
// admin API, signer, broadcaster, monitor and recovery). Each step saves a screenshot of the page it
// checks under the test's artifact directory ($SLUICE_TEST_ARTIFACTS/<test>, or `go test -artifacts`);
// with SLUICE_UPDATE_DOCS_IMG=1 it also refreshes docs/img/ops-<page>.png.

const pw = "correct horse battery staple"

// recordCSP runs in every page before its own scripts (DevTools-injected, so the page's CSP does not
// apply to it): it keeps each Content-Security-Policy violation for the test to read.
const recordCSP = `window.__csp = [];
document.addEventListener('securitypolicyviolation', (e) => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));`

type harness struct {
	t        *testing.T
	base     string // the admin listener, http://127.0.0.1:port
	stack    *devmode.Stack
	api      testenv.API
	browser  context.Context
	mu       sync.Mutex
	problems []string // JavaScript exceptions and CSP reports seen by any browser
	// deadHook is a dead-lettered webhook delivery left for the viewer's page (0: none).
	deadHook int64
}

func TestDashboard(t *testing.T) {
	chrome := chromium(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	st, err := devmode.Start(ctx, devmode.Options{
		RPCAddr: "127.0.0.1:0", APIAddr: testenv.FreeAddr(t), AdminAddr: testenv.FreeAddr(t), BlockTime: 250 * time.Millisecond,
		Confirmations: 3, DatabaseDSN: testenv.MySQLDSN(t), RedisAddr: testenv.RedisAddr(t), KeystoreDir: t.TempDir(),
	}, log)
	if err != nil {
		t.Fatalf("start the engine: %v", err)
	}
	defer st.Close()
	if err := st.App.Queue.Setup(ctx); err != nil {
		t.Fatalf("queue setup: %v", err)
	}
	runCtx, stop := context.WithCancel(ctx)
	runErr := make(chan error, 1)
	go func() { runErr <- st.App.Run(runCtx, app.Services...) }()
	defer func() {
		stop()
		if err := <-runErr; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("services: %v", err)
		}
	}()
	testenv.WaitReady(t, st.APIURL, runErr)
	waitOK(t, st.AdminURL+"/ops/")

	by := admin.Actor{Operator: "cli:test", Remote: "local"}
	for user, role := range map[string]admin.Role{"alice": admin.RoleOperator, "bob": admin.RoleApprover, "victor": admin.RoleViewer} {
		if _, err := admin.AddOperator(ctx, st.App.Store, by, user, pw, role); err != nil {
			t.Fatalf("add operator %s: %v", user, err)
		}
	}

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chrome), chromedp.NoSandbox,
		chromedp.Flag("headless", "new"), chromedp.WindowSize(1280, 900))
	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	defer cancelAlloc()
	// The browser itself, in whose contexts each operator gets a session of their own.
	browser, cancelBrowser := chromedp.NewContext(alloc)
	defer cancelBrowser()
	if err := chromedp.Do(browser); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	h := &harness{t: t, base: st.AdminURL, stack: st, api: testenv.API{T: t, Base: st.APIURL, Key: st.APIKey}, browser: browser}

	var ids []string
	t.Run("login", func(t *testing.T) { h.testLogin(t) })
	t.Run("withdrawals_reach_confirmed", func(t *testing.T) { ids = h.testConfirmed(t) })
	t.Run("dlq_redrive_two_person", func(t *testing.T) { h.testRedrive(t) })
	t.Run("webhook_redeliver", func(t *testing.T) { h.testWebhookRedeliver(t) })
	t.Run("viewer_has_no_actions", func(t *testing.T) { h.testViewer(t, ids) })
	t.Run("pages", func(t *testing.T) { h.testPages(t, ids) })
	t.Run("csp_weight_render", func(t *testing.T) { h.testCSPAndWeight(t) })

	h.mu.Lock()
	defer h.mu.Unlock()
	for _, p := range h.problems {
		t.Errorf("browser: %s", p)
	}
}

// chromium finds Debian's chromium (scripts/services.sh installs it); the test needs it and never skips.
func chromium(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("no chromium on PATH: install Debian's chromium package (scripts/services.sh does)")
	return ""
}

func waitOK(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready: %v", url, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// tab is one browser context (its own cookie jar: one operator's session) with one page.
type tab struct {
	t   *testing.T
	h   *harness
	ctx context.Context
}

func (h *harness) newTab(t *testing.T) *tab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(h.browser, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start the browser: %v", err)
	}
	if _, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: recordCSP}); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Listen(ctx, func(ev any) {
		switch e := ev.(type) {
		case *runtime.EventExceptionThrown:
			h.problem("exception: %s %s", e.ExceptionDetails.Text, describe(e.ExceptionDetails.Exception))
		case *cdplog.EventEntryAdded:
			if strings.Contains(e.Entry.Text, "Content Security Policy") || e.Entry.Source == "security" || e.Entry.Source == "violation" {
				h.problem("console %s/%s: %s", e.Entry.Source, e.Entry.Level, e.Entry.Text)
			}
		case *runtime.EventConsoleAPICalled:
			if e.Type == "error" {
				var parts []string
				for _, a := range e.Args {
					parts = append(parts, describe(a))
				}
				h.problem("console.error: %s", strings.Join(parts, " "))
			}
		}
	}); err != nil {
		t.Fatal(err)
	}
	return &tab{t: t, h: h, ctx: ctx}
}

func describe(o *runtime.RemoteObject) string {
	if o == nil {
		return ""
	}
	if o.Description != "" {
		return o.Description
	}
	return string(o.Value)
}

func (h *harness) problem(format string, a ...any) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.problems = append(h.problems, fmt.Sprintf(format, a...))
}

func (b *tab) do(steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 60*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.fail(err)
	}
}

// fail saves what the page showed, then fails the test.
func (b *tab) fail(err error) {
	b.t.Helper()
	b.shot("failure")
	text, _ := chromedp.Run(b.ctx, chromedp.Evaluate[string](`location.href + "\n" + document.body.innerText`))
	b.t.Fatalf("%v\npage: %s", err, text)
}

// waitFor polls a JavaScript predicate in the page (the dashboard refreshes itself every 5 s).
func (b *tab) waitFor(what, js string, d time.Duration) {
	b.t.Helper()
	deadline := time.Now().Add(d)
	for {
		ctx, cancel := context.WithTimeout(b.ctx, time.Until(deadline)+5*time.Second)
		_, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](js, chromedp.WithPollingTimeout(time.Until(deadline)), chromedp.WithPollingInterval(100*time.Millisecond)))
		cancel()
		if err == nil {
			return
		}
		// A navigation (a reload, the login's redirect) ends the poll's page: poll the new one.
		if time.Now().Before(deadline) && strings.Contains(err.Error(), "navigated or closed") {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		b.fail(fmt.Errorf("waiting for %s: %w", what, err))
	}
}

func eval[T any](b *tab, js string) T {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[T](js, chromedp.EvalAwaitPromise))
	if err != nil {
		b.fail(fmt.Errorf("evaluate %s: %w", js, err))
	}
	return v
}

// open shows a page of the dashboard by its route (a fragment change, as clicking the menu does) and
// waits until it has drawn its data.
func (b *tab) open(route string) {
	b.t.Helper()
	page := strings.SplitN(strings.SplitN(route, "?", 2)[0], "/", 2)[0]
	if strings.HasPrefix(route, "withdrawals/") {
		page = "detail"
	}
	// The page in place is removed by the route change, so the one found loaded is the new one.
	eval[chromedp.Void](b, fmt.Sprintf(`location.hash = %q`, "#/"+route))
	b.waitFor("page "+route, fmt.Sprintf(`!!document.querySelector('main > .page[data-page=%q][data-loaded]')`, page), 20*time.Second)
}

func (b *tab) login(user, password string) {
	b.t.Helper()
	b.do(chromedp.Navigate(b.h.base+"/ops/login"),
		chromedp.WaitVisible(chromedp.CSS(`input[name=username]`)),
		chromedp.SendKeys(chromedp.CSS(`input[name=username]`), user),
		chromedp.SendKeys(chromedp.CSS(`input[name=password]`), password),
		chromedp.Click(chromedp.CSS(`form.login button[type=submit]`)))
	b.waitFor("the overview after login", `!!document.querySelector('[data-page=overview] [data-tile=confirmed]')`, 20*time.Second)
}

// shot saves a PNG of the whole page as <artifacts>/<name>.png (and docs/img/ops-<name>.png when asked).
func (b *tab) shot(name string) {
	b.t.Helper()
	buf, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Errorf("screenshot %s: %v", name, err)
		return
	}
	dir := artifacts(b.t)
	p := filepath.Join(dir, name+".png")
	if err := os.WriteFile(p, buf, 0o644); err != nil {
		b.t.Errorf("save screenshot: %v", err)
		return
	}
	b.t.Logf("screenshot %s", p)
	if os.Getenv("SLUICE_UPDATE_DOCS_IMG") == "1" && name != "failure" && name != "overview-cold" {
		d := filepath.Join("..", "..", "docs", "img", "ops-"+name+".png")
		if err := os.WriteFile(d, buf, 0o644); err != nil {
			b.t.Errorf("save %s: %v", d, err)
		}
	}
}

func artifacts(t *testing.T) string {
	if d := os.Getenv("SLUICE_TEST_ARTIFACTS"); d != "" {
		d = filepath.Join(d, strings.ReplaceAll(t.Name(), "/", "_"))
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.ArtifactDir()
}

// Log in: a wrong password is refused on the page; the right one shows the overview with the operator's
// name and role; the session cookie is HttpOnly (the page's script cannot read it) and the CSRF one is not.
func (h *harness) testLogin(t *testing.T) {
	b := h.newTab(t)
	b.do(chromedp.Navigate(h.base+"/ops/login"), chromedp.WaitVisible(chromedp.CSS(`input[name=username]`)))
	b.shot("login")
	b.do(chromedp.SendKeys(chromedp.CSS(`input[name=username]`), "admin"),
		chromedp.SendKeys(chromedp.CSS(`input[name=password]`), "not-the-password"),
		chromedp.Click(chromedp.CSS(`form.login button[type=submit]`)))
	b.waitFor("the refusal", `/Wrong username or password/.test(document.querySelector('form.login [role=alert]').textContent)`, 10*time.Second)
	if u := eval[string](b, `location.href`); strings.Contains(u, "password") {
		t.Fatalf("the password went into the URL: %s", u)
	}
	b.login("admin", h.stack.AdminPassword)
	if who := eval[string](b, `document.querySelector('#who').textContent`); !strings.Contains(who, "admin") {
		t.Errorf("header shows %q, want the operator admin", who)
	}
	cookies := eval[string](b, `document.cookie`)
	if strings.Contains(cookies, "sluice_ops_session") || !strings.Contains(cookies, "sluice_ops_csrf") {
		t.Errorf("document.cookie = %q: want the CSRF cookie only (the session cookie is HttpOnly)", cookies)
	}
	if body := eval[string](b, `document.body.innerText`); strings.Contains(body, h.stack.AdminPassword) || strings.Contains(body, h.stack.APIKey) {
		t.Error("a secret is rendered on the page")
	}
	// Logging out ends the session on the server too: the page shows the login form, and the API
	// answers the old cookie with 401.
	b.do(chromedp.Click(chromedp.CSS(`#logout`)))
	b.waitFor("the login form after logout", `!!document.querySelector('form.login') && document.querySelector('#top').hidden`, 10*time.Second)
	if code := eval[int](b, `fetch('/admin/v1/me', { credentials: 'same-origin' }).then((r) => r.status)`); code != http.StatusUnauthorized {
		t.Errorf("GET /me after logout: %d, want 401", code)
	}
}

type withdrawalJSON struct {
	ID     string `json:"id"`
	Status string `json:"status"`
}

// Withdrawals posted through the public API: the overview counts them CONFIRMED, and a detail page,
// left open, moves to CONFIRMED by itself with the attempt's fee and the timeline.
func (h *harness) testConfirmed(t *testing.T) []string {
	b := h.newTab(t)
	b.login("admin", h.stack.AdminPassword)
	var ids []string
	for i := range 4 {
		var w withdrawalJSON
		code, raw := h.api.Do("POST", "/v1/withdrawals", map[string]string{
			"external_id": fmt.Sprintf("dash-%d", i), "chain": "local", "asset": devmode.Native,
			"to": testenv.NewAccount(t).Address.Hex(), "amount": "0.25",
		}, &w)
		if code != 201 && code != 200 && code != 202 {
			t.Fatalf("post withdrawal: %d %s", code, raw)
		}
		ids = append(ids, w.ID)
	}
	b.open("withdrawals/" + ids[0])
	b.waitFor("the detail page at CONFIRMED", `!!document.querySelector('[data-page=detail] [data-status=CONFIRMED]')`, 90*time.Second)
	b.waitFor("the attempt with its fee", `[...document.querySelectorAll('[data-page=detail] td')].some((td) => / POL$/.test(td.textContent))`, 10*time.Second)
	b.shot("detail")
	if n := eval[int](b, `document.querySelectorAll('.timeline li').length`); n < 3 {
		t.Errorf("timeline has %d entries, want the history up to CONFIRMED", n)
	}
	b.open("overview")
	b.waitFor("4 CONFIRMED on the overview", `(() => { const c = document.querySelector('[data-section=pipeline] tr[data-chain=local] td[data-state=CONFIRMED]');
		return !!c && Number(c.textContent.replace(/,/g, '')) >= 4; })()`, 90*time.Second)
	b.waitFor("the throughput chart", `!!document.querySelector('svg.chart rect.s2')`, 15*time.Second)
	b.shot("overview")
	b.open("withdrawals?state=CONFIRMED")
	b.waitFor("the confirmed withdrawals listed", fmt.Sprintf(`!!document.querySelector('tr[data-id=%q][data-state=CONFIRMED]')`, ids[3]), 30*time.Second)
	b.shot("withdrawals")
	return ids
}

// A DLQ message: alice (operator) asks for its redrive after the dry run's preview; it waits for a second
// person (the message stays parked); bob (approver, another browser session) approves it; the message
// goes back on tx-request and the signer consumes it, and the withdrawal it carried is paid once. (The
// signer's batcher also claims PENDING withdrawals from the database, so the payment itself does not wait
// for the redrive; what the test checks is that the message is handled and nothing is paid twice.)
func (h *harness) testRedrive(t *testing.T) {
	ctx := context.Background()
	st := h.stack.App.Store
	client, err := st.EnsureAPIClient(ctx, "default", h.stack.APIKey)
	if err != nil {
		t.Fatal(err)
	}
	// The withdrawal's tx-request message is parked in request-dlq as the DLQ drain parks what nobody
	// could classify.
	id := queue.NewID()
	msgID := queue.NewID()
	w := &store.Withdrawal{ID: id, ClientID: client.ID, ExternalID: "dash-dlq", RequestHash: make([]byte, 32), Chain: "local",
		Asset: devmode.Native, To: testenv.NewAccount(t).Address.Hex(), Amount: big.NewInt(1e15), CorrelationID: "corr-" + id}
	if _, _, err := st.CreateWithdrawal(ctx, w, func(tx *sql.Tx) error {
		env, err := queue.NewEnvelope(ctx, queue.TypeWithdrawalRequested, msgID, w.CorrelationID, queue.WithdrawalRequested{WithdrawalID: id})
		if err != nil {
			return err
		}
		body, err := queue.DeadLetterFor(queue.Message{ID: msgID, Body: env, ReceiveCount: 5}, queue.TxRequest, errors.New("node said: mystery"), time.Now())
		if err != nil {
			return err
		}
		return st.Park(ctx, tx, store.Parked{Queue: queue.RequestDLQ, MessageID: msgID, Body: body, ErrorType: "UNKNOWN", Reason: "nobody classified it"})
	}); err != nil {
		t.Fatal(err)
	}

	alice := h.newTab(t)
	alice.login("alice", pw)
	alice.open("stuck")
	row := fmt.Sprintf(`tr[data-dlq-id] a[href="#/withdrawals/%s"]`, id)
	alice.waitFor("the parked message", fmt.Sprintf(`!!document.querySelector(%q)`, row), 15*time.Second)
	btn := fmt.Sprintf(`(() => { const a = document.querySelector(%q); return a.closest('tr').querySelector('button[data-action="dlq.redrive"]'); })()`, row)
	eval[chromedp.Void](alice, btn+`.click()`)
	alice.waitFor("the dry run's plan", `!!document.querySelector('dialog[open] .plan') && !document.querySelector('dialog[open] button[data-confirm]').disabled`, 15*time.Second)
	alice.shot("dlq-preview")
	alice.do(chromedp.SendKeys(chromedp.CSS(`dialog[open] input[name=reason]`), "transient node fault, classified by hand"),
		chromedp.Click(chromedp.CSS(`dialog[open] button[data-confirm]`)))
	alice.waitFor("awaiting approval", `!!document.querySelector('dialog[open] [data-result=awaiting_approval]')`, 15*time.Second)
	alice.shot("dlq-awaiting")
	token := h.adminToken(t, "bob")
	var parked struct {
		Items []admin.DLQMessage `json:"items"`
	}
	h.adminGet(t, token, "/admin/v1/dlq", &parked)
	var msg *admin.DLQMessage
	for i := range parked.Items {
		if m := parked.Items[i]; m.WithdrawalID != nil && *m.WithdrawalID == id {
			msg = &parked.Items[i]
		}
	}
	if msg == nil || msg.Resolution != "" {
		t.Fatalf("before the approval the message must still be parked: %+v", parked.Items)
	}
	alice.do(chromedp.Click(chromedp.CSS(`dialog[open] .dlg-actions button:not([data-confirm])`)))
	alice.waitFor("the row marked awaiting approval", `!!document.querySelector('[data-awaiting="dlq.redrive"]')`, 15*time.Second)
	alice.shot("stuck")
	alice.open("approvals")
	alice.waitFor("alice's own request", `!!document.querySelector('[data-approval][data-action="dlq.redrive"] [data-own]')`, 15*time.Second)
	if n := eval[int](alice, `document.querySelectorAll('[data-approve]').length`); n != 0 {
		t.Errorf("alice sees %d approve buttons on her own request", n)
	}

	bob := h.newTab(t)
	bob.login("bob", pw)
	bob.open("approvals")
	bob.waitFor("the request to approve", `!!document.querySelector('[data-approval][data-action="dlq.redrive"] [data-approve]')`, 15*time.Second)
	bob.shot("approvals")
	bob.do(chromedp.Click(chromedp.CSS(`[data-approval][data-action="dlq.redrive"] [data-approve]`)))
	bob.waitFor("the approval done", `document.querySelector('main [role=status]').dataset.result === 'done'`, 20*time.Second)

	var one admin.DLQMessage
	h.adminGet(t, token, "/admin/v1/dlq/"+msg.ID, &one)
	if one.Resolution != "redriven" || one.ResolvedBy != "alice+bob" {
		t.Errorf("after the approval: resolution %q by %q, want redriven by alice+bob", one.Resolution, one.ResolvedBy)
	}
	// Handled: the redriven message leaves tx-request (the signer took it) and the withdrawal is paid,
	// once.
	deadline := time.Now().Add(90 * time.Second)
	for {
		var qs []admin.QueueView
		h.adminGet(t, token, "/admin/v1/queues", &qs)
		depth := -1
		for _, q := range qs {
			if q.Name == queue.TxRequest {
				depth = q.Depth
			}
		}
		got := h.withdrawal(t, id)
		if got.Status == "CONFIRMED" && depth == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the redrive: withdrawal %s, tx-request depth %d; want CONFIRMED and the message consumed", got.Status, depth)
		}
		time.Sleep(250 * time.Millisecond)
	}
	var d admin.WithdrawalDetail
	h.adminGet(t, token, "/admin/v1/withdrawals/"+id, &d)
	if len(d.Attempts) != 1 {
		t.Errorf("the redriven withdrawal has %d transaction attempts, want 1 (paid once)", len(d.Attempts))
	}
	bob.open("stuck")
	bob.waitFor("the message gone from the DLQ", fmt.Sprintf(`!document.querySelector(%q)`, row), 15*time.Second)
}

// Two webhook deliveries of an endpoint are dead-lettered; alice redelivers one from the Stuck & DLQ
// page (dry-run preview, then confirm) and the admin API shows it pending again, asked by her; the
// other stays for the viewer's page, which must show it without a button.
func (h *harness) testWebhookRedeliver(t *testing.T) {
	ctx := context.Background()
	st := h.stack.App.Store
	c, err := st.EnsureAPIClient(ctx, "dash-hooks", "sk_dash_hooks_"+queue.NewID())
	if err != nil {
		t.Fatal(err)
	}
	ep, err := st.AddWebhookEndpoint(ctx, c.ID, "https://hooks.example.invalid/sluice", "whsec_dash")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		id := queue.NewID()
		w := &store.Withdrawal{ID: id, ClientID: c.ID, ExternalID: fmt.Sprintf("dash-hook-%d", i), RequestHash: make([]byte, 32), Chain: "local",
			Asset: devmode.Native, To: testenv.NewAccount(t).Address.Hex(), Amount: big.NewInt(1), CorrelationID: "corr-" + id}
		if _, _, err := st.CreateWithdrawal(ctx, w, func(*sql.Tx) error { return nil }); err != nil {
			t.Fatal(err)
		}
		if err := st.InTx(ctx, func(tx *sql.Tx) error {
			return st.Transition(ctx, tx, id, store.Pending, store.Canceled, "test", store.ActorSigner, store.Change{})
		}); err != nil {
			t.Fatal(err)
		}
	}
	// As the dispatcher leaves them after 24 h of failures (the endpoint's name does not resolve).
	if _, err := st.DB.ExecContext(ctx, `UPDATE webhook_deliveries SET state = 'dead', attempts = attempts + 1, last_error = 'no such host' WHERE endpoint_id = ?`, ep.ID); err != nil {
		t.Fatal(err)
	}
	dead, err := st.DeadWebhookDeliveries(ctx, store.DeadLetterFilter{EndpointID: ep.ID})
	if err != nil || len(dead) != 2 {
		t.Fatalf("%d dead deliveries (%v), want 2", len(dead), err)
	}
	target, left := dead[1].ID, dead[0].ID

	alice := h.newTab(t)
	alice.login("alice", pw)
	alice.open("stuck")
	row := fmt.Sprintf(`tr[data-delivery-id="%d"]`, target)
	alice.waitFor("the dead webhook delivery", fmt.Sprintf(`!!document.querySelector(%q)`, row), 15*time.Second)
	eval[chromedp.Void](alice, fmt.Sprintf(`document.querySelector(%q).querySelector('button[data-action="webhook.redeliver"]').click()`, row))
	alice.waitFor("the dry run's plan", `!!document.querySelector('dialog[open] .plan') && !document.querySelector('dialog[open] button[data-confirm]').disabled`, 15*time.Second)
	if plan := eval[string](alice, `document.querySelector('dialog[open] .plan').textContent`); !strings.Contains(plan, "dead → pending") {
		t.Errorf("the redeliver's plan does not show the row it changes: %q", plan)
	}
	if d, err := st.WebhookDeliveryByID(ctx, 0, 0, target); err != nil || d.State != "dead" {
		t.Fatalf("after the preview: %+v %v, want still dead", d, err)
	}
	alice.do(chromedp.Click(chromedp.CSS(`dialog[open] button[data-confirm]`)))
	alice.waitFor("the redelivery done", `!!document.querySelector('dialog[open] [data-result=done]')`, 15*time.Second)
	alice.shot("webhook-redeliver")
	var det admin.WebhookDeliveryDetail
	h.adminGet(t, h.adminToken(t, "bob"), fmt.Sprintf("/admin/v1/webhooks/deliveries/%d", target), &det)
	if det.Delivery.State == "dead" || det.Delivery.Redeliveries != 1 || det.Delivery.RedeliveredBy != "operator:alice" {
		t.Fatalf("after the redelivery: %+v", det.Delivery)
	}
	alice.do(chromedp.Click(chromedp.CSS(`dialog[open] .dlg-actions button:not([data-confirm])`)))
	alice.waitFor("the row gone", fmt.Sprintf(`!document.querySelector(%q)`, row), 15*time.Second)
	h.deadHook = left
}

// adminToken logs user in through the admin API (a bearer token, as `sluice ops` does).
func (h *harness) adminToken(t *testing.T, user string) string {
	t.Helper()
	body, _ := json.Marshal(admin.LoginRequest{Username: user, Password: pw})
	resp, err := http.Post(h.base+"/admin/v1/auth/login", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tok admin.Tokens
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || resp.StatusCode != 200 || tok.AccessToken == "" {
		t.Fatalf("login %s: %d %v", user, resp.StatusCode, err)
	}
	return tok.AccessToken
}

func (h *harness) adminGet(t *testing.T, token, path string, out any) {
	t.Helper()
	req, _ := http.NewRequest("GET", h.base+path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, raw)
	}
	if err := json.Unmarshal(raw, out); err != nil {
		t.Fatalf("GET %s: %v in %s", path, err, raw)
	}
}

func (h *harness) withdrawal(t *testing.T, id string) withdrawalJSON {
	t.Helper()
	var w withdrawalJSON
	if code, raw := h.api.Do("GET", "/v1/withdrawals/"+id, nil, &w); code != 200 {
		t.Fatalf("get withdrawal: %d %s", code, raw)
	}
	return w
}

// A viewer sees the pages without a single action button, and the request a forged page would send
// with the viewer's own cookie and CSRF token is refused: 403 naming the role (the server decides).
func (h *harness) testViewer(t *testing.T, ids []string) {
	b := h.newTab(t)
	b.login("victor", pw)
	const buttons = `document.querySelectorAll('button[data-action], [data-approve], [data-reject], button[data-confirm]').length`
	routes := []string{"stuck", "wallets", "approvals"}
	if len(ids) > 0 {
		routes = append(routes, "withdrawals/"+ids[0])
	}
	for _, r := range routes {
		b.open(r)
		if r == "stuck" && h.deadHook != 0 {
			b.waitFor("the dead webhook delivery", fmt.Sprintf(`!!document.querySelector('tr[data-delivery-id="%d"]')`, h.deadHook), 15*time.Second)
		}
		if n := eval[int](b, buttons); n != 0 {
			t.Errorf("viewer sees %d action buttons on %s", n, r)
		}
	}
	b.open("wallets")
	b.shot("viewer-wallets")
	type forged struct {
		Status   int    `json:"status"`
		Code     string `json:"code"`
		Message  string `json:"message"`
		HadToken bool   `json:"hadToken"`
	}
	const js = `(async () => {
		const c = document.cookie.split('; ').find((x) => x.startsWith('sluice_ops_csrf='));
		const tok = c ? decodeURIComponent(c.slice('sluice_ops_csrf='.length)) : '';
		const r = await fetch('/admin/v1/actions', { method: 'POST', credentials: 'same-origin',
			headers: { 'Content-Type': 'application/json', %s },
			body: JSON.stringify({ action: 'wallet.freeze', target: 'local/0x0000000000000000000000000000000000000001', reason: 'forged', request_id: crypto.randomUUID() }) });
		const b = await r.json().catch(() => ({}));
		return { status: r.status, code: (b.error || {}).code || '', message: (b.error || {}).message || '', hadToken: !!tok };
	})()`
	f := eval[forged](b, fmt.Sprintf(js, `'X-CSRF-Token': tok`))
	if f.Status != http.StatusForbidden || !f.HadToken || f.Code == "csrf" || !strings.Contains(f.Message, "operator") {
		t.Errorf("viewer's forged action with its cookie and CSRF token: %+v, want 403 naming the role operator", f)
	}
	t.Logf("viewer's forged action: %d %s %q", f.Status, f.Code, f.Message)
	f = eval[forged](b, fmt.Sprintf(js, `'X-Requested-With': 'x'`))
	if f.Status != http.StatusForbidden || f.Code != "csrf" {
		t.Errorf("an action without the CSRF header: %+v, want 403 csrf", f)
	}
}

// The remaining pages, each with its screenshot: hot wallets, audit (its hash chain verified), a phone-
// width overview.
func (h *harness) testPages(t *testing.T, ids []string) {
	b := h.newTab(t)
	b.login("admin", h.stack.AdminPassword)
	b.open("wallets")
	b.waitFor("the hot wallet", fmt.Sprintf(`!!document.querySelector('[data-wallet="local/%s"]')`, h.stack.HotWallet.Hex()), 15*time.Second)
	if n := eval[int](b, `document.querySelectorAll('[data-wallet] button[data-action="wallet.freeze"]').length`); n == 0 {
		t.Error("admin sees no freeze button on the hot wallets")
	}
	b.shot("wallets")
	b.open("audit")
	b.waitFor("the audit chain verified", `!!document.querySelector('[data-verify=ok]')`, 15*time.Second)
	if n := eval[int](b, `document.querySelectorAll('tr[data-audit]').length`); n < 5 {
		t.Errorf("audit page lists %d entries, want the logins and actions of this test", n)
	}
	b.shot("audit")
	// Dark mode follows the system's preference.
	if _, err := chromedp.Call(b.ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
		Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}}}); err != nil {
		t.Fatal(err)
	}
	b.open("overview")
	if bg := eval[string](b, `getComputedStyle(document.body).backgroundColor`); bg != "rgb(13, 17, 23)" {
		t.Errorf("dark mode: body background %s, want the dark one", bg)
	}
	b.shot("overview-dark")
	if _, err := chromedp.Call(b.ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{}); err != nil {
		t.Fatal(err)
	}
	b.open("audit")
	b.do(chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile))
	b.open("overview")
	if w := eval[int](b, `document.documentElement.scrollWidth`); w > 400 {
		t.Errorf("the overview is %d px wide on a 390 px phone (it must reflow, tables scroll inside their box)", w)
	}
	b.shot("overview-phone")
}

type weight struct {
	Transfer   int     `json:"transfer"`
	Decoded    int     `json:"decoded"`
	Requests   int     `json:"requests"`
	VisibleMS  float64 `json:"-"`
	DCLMS      float64 `json:"dcl"`
	Uncached   int     `json:"uncached"`
	Largest    string  `json:"largest"`
	LargestLen int     `json:"largestLen"`
}

// The CSP header on the pages and the API; no violation reported; the overview's weight (every byte
// transferred for it, assets and API answers, from a cold cache) under 300 KB; its render time reported.
func (h *harness) testCSPAndWeight(t *testing.T) {
	for _, p := range []string{"/ops/", "/ops/login", "/ops/js/app.js", "/ops/app.css", "/admin/v1/me"} {
		resp, err := http.Get(h.base + p)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		if got := resp.Header.Get("Content-Security-Policy"); got != ui.CSP {
			t.Errorf("%s: Content-Security-Policy %q, want %q", p, got, ui.CSP)
		}
	}
	b := h.newTab(t)
	b.login("admin", h.stack.AdminPassword)
	csrfBefore := eval[string](b, `document.cookie`)
	// A new document (not a fragment change), from a cold cache, with the session cookie set.
	b.do(chromedp.Navigate("about:blank"))
	if _, err := chromedp.Call(b.ctx, network.ClearBrowserCache, cdp.Empty{}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	b.do(chromedp.Navigate(h.base + "/ops/#/overview"))
	// The moment the content is there, taken in the page at the DOM change that drew it (ms since the
	// navigation started).
	pctx, pcancel := context.WithTimeout(b.ctx, 30*time.Second)
	shown, err := chromedp.Run(pctx, chromedp.Poll[float64](`(document.querySelector('[data-section=pipeline] table') && document.querySelector('svg.chart')) ? performance.now() : 0`,
		chromedp.WithPollingMutation(), chromedp.WithPollingTimeout(20*time.Second)))
	pcancel()
	if err != nil {
		b.fail(fmt.Errorf("the overview drawn: %w", err))
	}
	visible := time.Since(start)
	w := eval[weight](b, `(() => {
		const nav = performance.getEntriesByType('navigation')[0];
		const res = performance.getEntriesByType('resource');
		let transfer = nav.transferSize, decoded = nav.decodedBodySize, uncached = nav.transferSize > 0 ? 1 : 0, largest = nav.name, largestLen = nav.transferSize;
		for (const r of res) {
			transfer += r.transferSize; decoded += r.decodedBodySize;
			if (r.transferSize > 0) uncached++;
			if (r.transferSize > largestLen) { largest = r.name; largestLen = r.transferSize; }
		}
		return { transfer, decoded, requests: res.length + 1, dcl: nav.domContentLoadedEventEnd, uncached, largest, largestLen };
	})()`)
	w.VisibleMS = shown
	b.shot("overview-cold")
	t.Logf("overview page weight: %d bytes transferred (%.1f KB), %d bytes decoded, %d requests (%d from the network); largest %s (%d B)",
		w.Transfer, float64(w.Transfer)/1024, w.Decoded, w.Requests, w.Uncached, w.Largest, w.LargestLen)
	t.Logf("overview render: navigation to content visible %.0f ms in the page (DOMContentLoaded %.0f ms), %d ms as the test saw it (navigation's load event included)",
		w.VisibleMS, w.DCLMS, visible.Milliseconds())
	fmt.Printf("BenchmarkOpsOverview\t1\t%d bytes_transferred\t%d bytes_decoded\t%.0f ms_to_visible\t%.0f ms_dcl\n",
		w.Transfer, w.Decoded, w.VisibleMS, w.DCLMS)
	if w.Transfer <= 0 || w.Uncached == 0 {
		t.Errorf("page weight %+v: nothing measured", w)
	}
	if w.Transfer >= 300*1024 {
		t.Errorf("overview page weight %d bytes, want under 300 KB", w.Transfer)
	}
	if csp := eval[[]string](b, `window.__csp`); len(csp) != 0 {
		t.Errorf("CSP violations on the overview: %q", csp)
	}
	// The reloaded page renews its session once drawn (it cannot know when the old one ends) and works on
	// with it.
	b.waitFor("the session renewed", fmt.Sprintf(`document.cookie !== %q && document.cookie.includes('sluice_ops_csrf=')`, csrfBefore), 10*time.Second)
	b.open("withdrawals")
}
