package ops

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-custody/sluice/admin"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

// testNow is the clock of every test: the canned JSON's times are a few minutes before it.
var testNow = time.Date(2026, 11, 30, 3, 0, 0, 0, time.UTC)

// fakeAPI serves canned, contract-shaped answers (testdata/api) and records what the CLI sent.
type fakeAPI struct {
	t   *testing.T
	srv *httptest.Server

	mu       sync.Mutex
	requests []recorded
	// token is the access token the API accepts (a refresh makes it access-2).
	token     string
	refreshes int
	delay     time.Duration
}

type recorded struct {
	Method, Path, Query, Auth string
	Body                      []byte
}

func newFakeAPI(t *testing.T) *fakeAPI {
	f := &fakeAPI{t: t, token: "access-1"}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeAPI) sent() []recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]recorded(nil), f.requests...)
}

func (f *fakeAPI) sentTo(path string) []recorded {
	var out []recorded
	for _, r := range f.sent() {
		if r.Path == path {
			out = append(out, r)
		}
	}
	return out
}

// lastAction is the last ActionRequest the CLI sent.
func (f *fakeAPI) lastAction(t *testing.T) admin.ActionRequest {
	t.Helper()
	sent := f.sentTo("/admin/v1/actions")
	if len(sent) == 0 {
		t.Fatal("no action was sent")
	}
	var req admin.ActionRequest
	if err := json.Unmarshal(sent[len(sent)-1].Body, &req); err != nil {
		t.Fatal(err)
	}
	return req
}

func canned(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "api", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeErr(w http.ResponseWriter, status int, code, field, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]admin.Error{"error": {Code: code, Field: field, Message: msg}})
}

func (f *fakeAPI) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.requests = append(f.requests, recorded{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Get("Authorization"), body})
	token, delay := f.token, f.delay
	f.mu.Unlock()
	if delay > 0 {
		time.Sleep(delay)
	}
	ok := func(b []byte) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(b)
	}
	switch r.URL.Path {
	case "/admin/v1/auth/login":
		var req admin.LoginRequest
		_ = json.Unmarshal(body, &req)
		if req.Password != "correct horse battery" {
			writeErr(w, http.StatusUnauthorized, "unauthorized", "", "wrong username or password")
			return
		}
		b, _ := json.Marshal(admin.Tokens{AccessToken: "access-1", RefreshToken: "refresh-1", ExpiresAt: testNow.Add(15 * time.Minute),
			Operator: admin.Operator{Username: req.Username, Role: admin.RoleOperator}})
		ok(b)
		return
	case "/admin/v1/auth/refresh":
		var req map[string]string
		_ = json.Unmarshal(body, &req)
		if req["refresh_token"] != "refresh-1" {
			writeErr(w, http.StatusUnauthorized, "unauthorized", "refresh_token", "refresh token unknown or expired")
			return
		}
		f.mu.Lock()
		f.refreshes++
		f.token = "access-2"
		f.mu.Unlock()
		b, _ := json.Marshal(admin.Tokens{AccessToken: "access-2", RefreshToken: "refresh-2", ExpiresAt: testNow.Add(15 * time.Minute),
			Operator: admin.Operator{Username: "bob", Role: admin.RoleOperator}})
		ok(b)
		return
	}
	if r.Header.Get("Authorization") != "Bearer "+token {
		writeErr(w, http.StatusUnauthorized, "unauthorized", "", "token expired")
		return
	}
	switch r.Method + " " + r.URL.Path {
	case "POST /admin/v1/auth/logout":
		w.WriteHeader(http.StatusNoContent)
	case "GET /admin/v1/me":
		ok([]byte(`{"username":"bob","role":"operator","disabled":false,"created_at":"2026-11-01T00:00:00Z"}`))
	case "GET /admin/v1/status":
		ok(canned(f.t, "status.json"))
	case "GET /admin/v1/withdrawals":
		ok(canned(f.t, "withdrawals.json"))
	case "GET /admin/v1/withdrawals/0193a4c2-7d1e-7c3a-9b1f-2f5d6e7a8b90":
		ok(canned(f.t, "withdrawal.json"))
	case "GET /admin/v1/queues":
		ok(canned(f.t, "queues.json"))
	case "GET /admin/v1/dlq":
		ok(canned(f.t, "dlq.json"))
	case "GET /admin/v1/dlq/18":
		var page admin.Page[admin.DLQMessage]
		_ = json.Unmarshal(canned(f.t, "dlq.json"), &page)
		b, _ := json.Marshal(page.Items[1])
		ok(b)
	case "GET /admin/v1/wallets/sepolia/0x4a1bd0c93e2f1a7b8c9d0e1f2a3b4c5d6e7f8091":
		var ws []admin.WalletView
		_ = json.Unmarshal(canned(f.t, "wallets.json"), &ws)
		b, _ := json.Marshal(ws[1])
		ok(b)
	case "GET /admin/v1/wallets":
		ok(canned(f.t, "wallets.json"))
	case "GET /admin/v1/nonces":
		ok(canned(f.t, "nonces.json"))
	case "GET /admin/v1/stuck":
		ok(canned(f.t, "stuck.json"))
	case "GET /admin/v1/alerts":
		ok(canned(f.t, "alerts.json"))
	case "GET /admin/v1/approvals":
		ok(canned(f.t, "approvals.json"))
	case "GET /admin/v1/approvals/ap-01", "GET /admin/v1/approvals/ap-02":
		ok(canned(f.t, "approval.json"))
	case "POST /admin/v1/approvals/ap-01/approve":
		writeErr(w, http.StatusForbidden, "self_approval", "", "you cannot approve your own request")
	case "POST /admin/v1/approvals/ap-02/approve":
		res := admin.ActionResult{RequestID: "7b0e5d6c", Action: admin.ActionDLQRedrive, Target: "18", Status: admin.ActionDone,
			RequestedBy: "bob", ApprovedBy: "carol", Result: map[string]any{"queue": "tx-request"}}
		b, _ := json.Marshal(res)
		ok(b)
	case "GET /admin/v1/audit":
		ok(canned(f.t, "audit.json"))
	case "GET /admin/v1/webhooks/dead":
		ok(canned(f.t, "webhooks-dead.json"))
	case "GET /admin/v1/webhooks/deliveries/41":
		ok(canned(f.t, "webhook-delivery.json"))
	case "GET /admin/v1/audit/verify":
		ok([]byte(`{"ok":true,"rows":3}`))
	case "POST /admin/v1/actions":
		f.action(w, body)
	default:
		writeErr(w, http.StatusNotFound, "not_found", "", "no route "+r.Method+" "+r.URL.Path)
	}
}

// action answers POST /admin/v1/actions like the framework: a plan for a dry run, 202 for a two-person
// action, 409 for an action on a terminal withdrawal.
func (f *fakeAPI) action(w http.ResponseWriter, body []byte) {
	var req admin.ActionRequest
	if err := json.Unmarshal(body, &req); err != nil {
		writeErr(w, http.StatusBadRequest, "malformed", "", "malformed JSON")
		return
	}
	if req.Target == "0193a4c1-0000-7000-8000-000000000001" {
		writeErr(w, http.StatusConflict, "terminal", "target", "withdrawal is CONFIRMED: nothing to do")
		return
	}
	var res admin.ActionResult
	_ = json.Unmarshal(canned(f.t, "speedup-plan.json"), &res)
	res.RequestID, res.Action, res.Target = req.RequestID, req.Action, req.Target
	status := http.StatusOK
	switch {
	case req.DryRun:
		res.Status = admin.ActionPlanned
	case req.Action == admin.ActionDLQRedrive:
		res.Status = admin.ActionAwaitingApproval
		res.Plan = admin.Plan{Summary: "send parked message 18 back to tx-request"}
		exp := testNow.Add(time.Hour)
		res.ExpiresAt = &exp
		status = http.StatusAccepted
	default:
		res.Status = admin.ActionDone
		res.Result = map[string]any{"tx_hash": "0x77aa000000000000000000000000000000000000000000000000000000000042"}
	}
	b, _ := json.Marshal(res)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// cli is one test's view of a user: a config dir, a terminal or not, a fixed clock.
type cli struct {
	t         *testing.T
	api       *fakeAPI
	configDir string
	tty       bool // stdin and stdout are terminals
	env       map[string]string
}

func newCLI(t *testing.T, api *fakeAPI) *cli {
	return &cli{t: t, api: api, configDir: t.TempDir(), env: map[string]string{}}
}

// login writes a session straight into the token file (the login command has its own test).
func (c *cli) login(access, refresh string, expires time.Time) {
	c.t.Helper()
	r := c.runner("", io.Discard, io.Discard)
	tf := tokenFile{Sessions: map[string]session{r.baseURL(): {AccessToken: access, RefreshToken: refresh, ExpiresAt: expires, Operator: "bob", Role: admin.RoleOperator}}}
	if err := r.saveTokens(tf); err != nil {
		c.t.Fatal(err)
	}
}

func (c *cli) runner(stdin string, stdout, stderr io.Writer) *runner {
	env := func(k string) string {
		switch k {
		case "XDG_CONFIG_HOME":
			return c.configDir
		case "SLUICE_OPS_URL":
			if c.api != nil {
				return c.api.srv.URL
			}
		}
		return c.env[k]
	}
	r := newRunner(context.Background(), strings.NewReader(stdin), stdout, stderr, env)
	r.stdinTTY = func() bool { return c.tty }
	r.stdoutTTY = func() bool { return c.tty }
	r.now = func() time.Time { return testNow }
	n := 0
	r.newID = func() string { n++; return fmt.Sprintf("00000000-0000-4000-8000-%012d", n) }
	r.readPassword = func() ([]byte, error) { return []byte("correct horse battery"), nil }
	return r
}

func (c *cli) run(stdin string, args ...string) (int, string, string) {
	c.t.Helper()
	var out, errb bytes.Buffer
	code := c.runner(stdin, &out, &errb).main(args)
	return code, out.String(), errb.String()
}

// golden compares got with testdata/golden/name (rewritten with -update).
func golden(t *testing.T, name, got string) {
	t.Helper()
	p := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run go test ./ops -run %s -update)", err, t.Name())
	}
	if got != string(want) {
		t.Errorf("%s differs from the golden file (go test ./ops -update to accept):\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

func TestTablesMatchGoldenFiles(t *testing.T) {
	api := newFakeAPI(t)
	c := newCLI(t, api)
	c.login("access-1", "refresh-1", testNow.Add(10*time.Minute))
	cases := []struct {
		golden string
		args   []string
	}{
		{"status.txt", []string{"status"}},
		{"withdrawals-list.txt", []string{"withdrawals", "list", "--state", "BROADCASTED", "--tx-hash", "0x5e1f"}},
		{"withdrawals-show.txt", []string{"withdrawals", "show", "0193a4c2-7d1e-7c3a-9b1f-2f5d6e7a8b90"}},
		{"dlq-list.txt", []string{"dlq", "list"}},
		{"wallets-list.txt", []string{"wallets", "list"}},
		{"wallets-show.txt", []string{"wallets", "show", "sepolia/0x4a1bd0c93e2f1a7b8c9d0e1f2a3b4c5d6e7f8091"}},
		{"dlq-show.txt", []string{"dlq", "show", "18"}},
		{"nonces-show.txt", []string{"nonces", "show"}},
		{"stuck-list.txt", []string{"stuck", "list"}},
		{"alerts.txt", []string{"alerts"}},
		{"approvals-list.txt", []string{"approvals", "list"}},
		{"audit-list.txt", []string{"audit", "list"}},
		{"speed-up-dry-run.txt", []string{"withdrawals", "speed-up", "0193a4c2-7d1e-7c3a-9b1f-2f5d6e7a8b90", "--dry-run"}},
		{"speed-up-yes.txt", []string{"withdrawals", "speed-up", "--yes", "0193a4c2-7d1e-7c3a-9b1f-2f5d6e7a8b90"}},
		{"approve-dry-run.txt", []string{"approvals", "approve", "ap-01", "--dry-run"}},
		{"webhooks-dead.txt", []string{"webhooks", "dead", "--endpoint", "7"}},
		{"webhooks-show.txt", []string{"webhooks", "show", "41"}},
	}
	for _, tc := range cases {
		t.Run(tc.golden, func(t *testing.T) {
			code, out, errs := c.run("", tc.args...)
			if code != ExitOK {
				t.Fatalf("exit %d, stderr %q", code, errs)
			}
			golden(t, tc.golden, out)
		})
	}
	// The filter flags became the API's query parameters.
	list := api.sentTo("/admin/v1/withdrawals")
	if len(list) != 1 || list[0].Query != "state=BROADCASTED&tx_hash=0x5e1f" {
		t.Fatalf("withdrawals list sent %+v, want query state=BROADCASTED&tx_hash=0x5e1f", list)
	}
}

// The --json output is the API's answer: parsed back it equals the canned JSON.
func TestJSONIsTheAPIsAnswer(t *testing.T) {
	api := newFakeAPI(t)
	c := newCLI(t, api)
	c.login("access-1", "refresh-1", testNow.Add(10*time.Minute))
	for _, tc := range []struct {
		args   []string
		canned string
		into   func() any
	}{
		{[]string{"status", "--json"}, "status.json", func() any { return new(admin.Status) }},
		{[]string{"--json", "approvals", "list"}, "approvals.json", func() any { return new([]admin.Approval) }},
		{[]string{"audit", "list", "--json"}, "audit.json", func() any { return new(admin.Page[admin.AuditEntry]) }},
		{[]string{"stuck", "list", "--json"}, "stuck.json", func() any { return new([]map[string]any) }},
		{[]string{"withdrawals", "show", "--json", "0193a4c2-7d1e-7c3a-9b1f-2f5d6e7a8b90"}, "withdrawal.json", func() any { return new(map[string]any) }},
	} {
		code, out, errs := c.run("", tc.args...)
		if code != ExitOK {
			t.Fatalf("%v: exit %d, stderr %q", tc.args, code, errs)
		}
		got, want := tc.into(), tc.into()
		if err := json.Unmarshal([]byte(out), got); err != nil {
			t.Fatalf("%v: output is not JSON: %v\n%s", tc.args, err, out)
		}
		if err := json.Unmarshal(canned(t, tc.canned), want); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%v: parsed back %+v, want %+v", tc.args, got, want)
		}
	}
	// An action's --json is its ActionResult.
	code, out, _ := c.run("", "withdrawals", "speed-up", "0193a4c2-7d1e-7c3a-9b1f-2f5d6e7a8b90", "--dry-run", "--json")
	var res admin.ActionResult
	if code != ExitOK || json.Unmarshal([]byte(out), &res) != nil || res.Status != admin.ActionPlanned || len(res.Plan.Transactions) != 1 || res.Plan.Transactions[0].Nonce != 41 {
		t.Fatalf("speed-up --dry-run --json: exit %d, %q", code, out)
	}
}

func TestLoginKeepsTokensPrivate(t *testing.T) {
	api := newFakeAPI(t)
	c := newCLI(t, api)

	// Not on a terminal and no --password-stdin: nobody to ask.
	if code, _, errs := c.run("", "login", "--username", "bob"); code != ExitUsage || !strings.Contains(errs, "--password-stdin") {
		t.Fatalf("login without a terminal: exit %d, %q", code, errs)
	}
	code, out, errs := c.run("wrong password\n", "login", "--username", "bob", "--password-stdin")
	if code != ExitFailed || errs != "error: wrong username or password\n" {
		t.Fatalf("wrong password: exit %d, stderr %q", code, errs)
	}
	code, out, errs = c.run("correct horse battery\n", "login", "--username", "bob", "--password-stdin")
	if code != ExitOK {
		t.Fatalf("login: exit %d, %q", code, errs)
	}
	if strings.Contains(out+errs, "access-1") || strings.Contains(out+errs, "refresh-1") {
		t.Fatalf("login printed a token: %q %q", out, errs)
	}
	p := filepath.Join(c.configDir, "sluice", "ops-token.json")
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file mode %v, want 0600", fi.Mode().Perm())
	}
	b, _ := os.ReadFile(p)
	if !strings.Contains(string(b), `"access_token": "access-1"`) || !strings.Contains(string(b), api.srv.URL) {
		t.Fatalf("token file %s", b)
	}

	// On a terminal the username is asked for and the password read without echo (readPassword).
	c2 := newCLI(t, api)
	c2.tty = true
	if code, _, errs := c2.run("bob\n", "login"); code != ExitOK || !strings.Contains(errs, "Password: ") {
		t.Fatalf("interactive login: exit %d, %q", code, errs)
	}

	// whoami uses the kept token; logout revokes it and forgets it.
	if code, out, _ := c.run("", "whoami"); code != ExitOK || out != "bob (operator) at "+api.srv.URL+"\n" {
		t.Fatalf("whoami: %d %q", code, out)
	}
	if code, _, errs := c.run("", "logout"); code != ExitOK {
		t.Fatalf("logout: %d %q", code, errs)
	}
	if len(api.sentTo("/admin/v1/auth/logout")) != 1 {
		t.Fatal("logout did not tell the API")
	}
	if code, _, errs := c.run("", "status"); code != ExitFailed || !strings.Contains(errs, "not logged in") {
		t.Fatalf("after logout: %d %q", code, errs)
	}
}

func TestExpiredTokenIsRefreshed(t *testing.T) {
	api := newFakeAPI(t)
	c := newCLI(t, api)
	c.login("access-1", "refresh-1", testNow.Add(-time.Minute))
	if code, _, errs := c.run("", "status"); code != ExitOK {
		t.Fatalf("status with an expired token: %d %q", code, errs)
	}
	if api.refreshes != 1 {
		t.Fatalf("refreshes %d, want 1", api.refreshes)
	}
	st := api.sentTo("/admin/v1/status")
	if len(st) != 1 || st[0].Auth != "Bearer access-2" {
		t.Fatalf("status sent with %+v, want the refreshed token", st)
	}
	b, _ := os.ReadFile(filepath.Join(c.configDir, "sluice", "ops-token.json"))
	if !strings.Contains(string(b), "refresh-2") {
		t.Fatalf("the rotated refresh token was not kept: %s", b)
	}

	// A token the API refuses although it has not expired by our clock: refreshed once, then retried.
	api2 := newFakeAPI(t)
	api2.token = "access-2"
	c2 := newCLI(t, api2)
	c2.login("access-1", "refresh-1", testNow.Add(10*time.Minute))
	if code, _, errs := c2.run("", "status"); code != ExitOK || api2.refreshes != 1 {
		t.Fatalf("401 then refresh: %d %q (refreshes %d)", code, errs, api2.refreshes)
	}

	// A refresh token the API no longer knows: log in again.
	api3 := newFakeAPI(t)
	c3 := newCLI(t, api3)
	c3.login("access-0", "refresh-0", testNow.Add(-time.Minute))
	if code, _, errs := c3.run("", "status"); code != ExitFailed || !strings.Contains(errs, "sluice ops login") {
		t.Fatalf("dead refresh token: %d %q", code, errs)
	}
}

func TestActions(t *testing.T) {
	api := newFakeAPI(t)
	c := newCLI(t, api)
	c.login("access-1", "refresh-1", testNow.Add(10*time.Minute))
	const wid = "0193a4c2-7d1e-7c3a-9b1f-2f5d6e7a8b90"

	// A dry run sends dry_run with a fresh UUID and changes nothing.
	if code, _, _ := c.run("", "withdrawals", "speed-up", wid, "--dry-run"); code != ExitOK {
		t.Fatalf("dry run: exit %d", code)
	}
	req := api.lastAction(t)
	if !req.DryRun || req.Action != admin.ActionWithdrawalSpeedUp || req.Target != wid ||
		!regexp.MustCompile(`^[0-9a-f-]{36}$`).MatchString(req.RequestID) {
		t.Fatalf("dry run sent %+v", req)
	}

	// Without --yes and without a terminal: refused before anything is sent.
	before := len(api.sentTo("/admin/v1/actions"))
	code, _, errs := c.run("", "withdrawals", "speed-up", wid)
	if code != ExitUsage || !strings.Contains(errs, "pass --yes") || len(api.sentTo("/admin/v1/actions")) != before {
		t.Fatalf("no terminal, no --yes: exit %d %q", code, errs)
	}

	// On a terminal: the plan, the question; "n" does nothing, "y" does it.
	c.tty = true
	code, out, errs := c.run("n\n", "withdrawals", "speed-up", wid)
	if code != ExitFailed || !strings.Contains(out, "47.52 gwei") || !strings.Contains(errs, "Proceed with withdrawal.speed-up") {
		t.Fatalf("answered n: exit %d\n%s\n%s", code, out, errs)
	}
	for _, r := range api.sentTo("/admin/v1/actions")[before:] {
		var q admin.ActionRequest
		_ = json.Unmarshal(r.Body, &q)
		if !q.DryRun {
			t.Fatalf("answered n, but a real request was sent: %s", r.Body)
		}
	}
	code, out, _ = c.run("y\n", "withdrawals", "speed-up", wid)
	if code != ExitOK || !strings.Contains(ansi.ReplaceAllString(out, ""), "done: withdrawal.speed-up") {
		t.Fatalf("answered y: exit %d\n%s", code, out)
	}
	c.tty = false

	// --request-id replays: that id is sent as it is.
	const rid = "5f1c2d3e-4a5b-4c6d-8e7f-8a9b0c1d2e3f"
	if code, _, _ := c.run("", "withdrawals", "retry", wid, "--yes", "--request-id", rid, "--reason", "node was down"); code != ExitOK {
		t.Fatalf("retry: exit %d", code)
	}
	req = api.lastAction(t)
	if req.RequestID != rid || req.Reason != "node was down" || req.DryRun {
		t.Fatalf("retry sent %+v", req)
	}

	// Two-person: 202 awaiting_approval is exit 3 and names the approval to approve.
	code, out, _ = c.run("", "dlq", "redrive", "18", "--yes", "--request-id", "7b0e5d6c-1f2a-4b3c-8d9e-0f1a2b3c4d5e")
	if code != ExitAwaiting || !strings.Contains(out, "sluice ops approvals approve ap-01") {
		t.Fatalf("redrive: exit %d\n%s", code, out)
	}

	// The API's refusal is printed with its field, exit 1.
	code, _, errs = c.run("", "withdrawals", "cancel", "0193a4c1-0000-7000-8000-000000000001", "--yes")
	if code != ExitFailed || errs != "error: withdrawal is CONFIRMED: nothing to do (field: target)\n" {
		t.Fatalf("terminal withdrawal: exit %d %q", code, errs)
	}

	// Wallet actions name the wallet chain/address; --force and --nonce become params.
	if code, _, errs := c.run("", "wallets", "resync", "sepolia/0x4a1bd0c93e2f1a7b8c9d0e1f2a3b4c5d6e7f8091", "--force", "--yes"); code != ExitOK {
		t.Fatalf("resync: %d %q", code, errs)
	}
	req = api.lastAction(t)
	if req.Target != "sepolia/0x4a1bd0c93e2f1a7b8c9d0e1f2a3b4c5d6e7f8091" || req.Params["force"] != "true" {
		t.Fatalf("resync sent %+v", req)
	}
	if code, _, _ := c.run("", "wallets", "fill-gap", "sepolia", "0x4a1bd0c93e2f1a7b8c9d0e1f2a3b4c5d6e7f8091", "--dry-run"); code != ExitOK {
		t.Fatalf("fill-gap: exit %d", code)
	}
	req = api.lastAction(t)
	if req.Params != nil || req.Action != admin.ActionWalletFillGap || req.Target != "sepolia/0x4a1bd0c93e2f1a7b8c9d0e1f2a3b4c5d6e7f8091" {
		t.Fatalf("fill-gap sent %+v", req)
	}
}

// webhooks redeliver: one action per delivery id, or one for every dead delivery of --endpoint with
// --since as a parameter; ids and --endpoint together, or --since without --endpoint, are usage errors.
func TestWebhookRedeliver(t *testing.T) {
	api := newFakeAPI(t)
	c := newCLI(t, api)
	c.login("access-1", "refresh-1", testNow.Add(10*time.Minute))
	before := len(api.sentTo("/admin/v1/actions"))
	if code, out, errs := c.run("", "webhooks", "redeliver", "41", "42", "--yes"); code != ExitOK || strings.Count(ansi.ReplaceAllString(out, ""), "done: webhook.redeliver") != 2 {
		t.Fatalf("redeliver 41 42: exit %d\n%s\n%s", code, out, errs)
	}
	var targets []string
	for _, r := range api.sentTo("/admin/v1/actions")[before:] {
		var q admin.ActionRequest
		_ = json.Unmarshal(r.Body, &q)
		if q.Action != admin.ActionWebhookRedeliver || q.DryRun || q.Params != nil {
			t.Fatalf("sent %s", r.Body)
		}
		targets = append(targets, q.Target)
	}
	if strings.Join(targets, ",") != "41,42" {
		t.Fatalf("targets %v, want 41,42", targets)
	}
	if code, _, errs := c.run("", "webhooks", "redeliver", "--endpoint", "7", "--since", "2026-11-29T00:00:00Z", "--dry-run"); code != ExitOK {
		t.Fatalf("redeliver --endpoint: exit %d %q", code, errs)
	}
	req := api.lastAction(t)
	if req.Target != "endpoint/7" || req.Params["since"] != "2026-11-29T00:00:00Z" || !req.DryRun {
		t.Fatalf("redeliver --endpoint sent %+v", req)
	}
	sent := len(api.sentTo("/admin/v1/actions"))
	for _, args := range [][]string{
		{"webhooks", "redeliver", "41", "--endpoint", "7", "--yes"},
		{"webhooks", "redeliver", "41", "--since", "2026-11-29T00:00:00Z", "--yes"},
		{"webhooks", "redeliver", "--yes"},
		{"webhooks", "redeliver", "41", "42", "--request-id", "r-1", "--yes"},
	} {
		if code, _, errs := c.run("", args...); code != ExitUsage || !strings.Contains(errs, "usage: sluice ops webhooks redeliver") {
			t.Errorf("%v: exit %d %q, want a usage error", args, code, errs)
		}
	}
	if n := len(api.sentTo("/admin/v1/actions")); n != sent {
		t.Fatalf("usage errors sent %d actions", n-sent)
	}
	if list := api.sentTo("/admin/v1/webhooks/dead"); len(list) != 0 {
		t.Fatalf("unexpected reads %+v", list)
	}
}

func TestApprovals(t *testing.T) {
	api := newFakeAPI(t)
	c := newCLI(t, api)
	c.login("access-1", "refresh-1", testNow.Add(10*time.Minute))

	code, _, errs := c.run("", "approvals", "approve", "ap-01", "--yes")
	if code != ExitFailed || errs != "error: you cannot approve your own request\n" {
		t.Fatalf("self-approval: exit %d %q", code, errs)
	}
	if code, _, errs := c.run("", "approvals", "approve", "ap-01"); code != ExitUsage {
		t.Fatalf("approve without --yes off a terminal: exit %d %q", code, errs)
	}
	code, out, errs := c.run("", "approvals", "approve", "ap-02", "--yes")
	if code != ExitOK || !strings.Contains(out, "done: dlq.redrive 18") || !strings.Contains(out, "approved by carol") {
		t.Fatalf("approve: exit %d %q %q", code, out, errs)
	}
}

func TestAuditVerify(t *testing.T) {
	api := newFakeAPI(t)
	c := newCLI(t, api)
	c.login("access-1", "refresh-1", testNow.Add(10*time.Minute))
	code, out, _ := c.run("", "audit", "verify")
	if code != ExitOK || out != "ok: the audit chain verifies (3 rows)\n" {
		t.Fatalf("verify: %d %q", code, out)
	}
	// A server answering ok=false: exit 1 naming the row.
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"ok":false,"rows":3,"first_broken_id":2,"reason":"hash does not match the row"}`))
	}))
	defer broken.Close()
	c2 := newCLI(t, nil)
	c2.env["SLUICE_OPS_URL"] = broken.URL
	c2.login("x", "y", testNow.Add(time.Hour))
	code, _, errs := c2.run("", "audit", "verify")
	if code != ExitFailed || errs != "error: the audit chain is broken at row 2: hash does not match the row (3 rows checked)\n" {
		t.Fatalf("broken chain: %d %q", code, errs)
	}
}

func TestUsageAndErrors(t *testing.T) {
	api := newFakeAPI(t)
	c := newCLI(t, api)
	c.login("access-1", "refresh-1", testNow.Add(10*time.Minute))
	for _, tc := range []struct {
		args []string
		code int
		errs string
	}{
		{nil, ExitUsage, "usage: sluice ops"},
		{[]string{"frobnicate"}, ExitUsage, `unknown command "frobnicate"`},
		{[]string{"withdrawals"}, ExitUsage, "sluice ops withdrawals show <id>"},
		{[]string{"withdrawals", "explode"}, ExitUsage, `unknown command "ops withdrawals explode"`},
		{[]string{"withdrawals", "show"}, ExitUsage, "takes 1 argument(s), got 0"},
		{[]string{"status", "--bogus"}, ExitUsage, "flag provided but not defined: -bogus"},
		{[]string{"wallets", "show", "sepolia"}, ExitUsage, "<chain>/<address>"},
		{[]string{"completion", "tcsh"}, ExitUsage, `unknown shell "tcsh"`},
		{[]string{"operator", "add", "alice"}, ExitUsage, "needs --config"},
		{[]string{"withdrawals", "show", "nope"}, ExitFailed, "error: no route GET /admin/v1/withdrawals/nope\n"},
	} {
		code, _, errs := c.run("", tc.args...)
		if code != tc.code || !strings.Contains(errs, tc.errs) {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", tc.args, code, errs, tc.code, tc.errs)
		}
	}
	for _, args := range [][]string{{"help"}, {"--help"}, {"help", "withdrawals", "speed-up"}, {"withdrawals", "speed-up", "--help"}, {"help", "dlq"}} {
		code, out, _ := c.run("", args...)
		if code != ExitOK || !strings.Contains(out, "sluice ops") {
			t.Errorf("%v: exit %d %q", args, code, out)
		}
	}
	_, out, _ := c.run("", "help", "withdrawals", "speed-up")
	if !strings.Contains(out, "--dry-run") || !strings.Contains(out, "exit codes") {
		t.Errorf("per-command help lacks the action flags: %q", out)
	}
}

func TestTimeoutAndUnreachable(t *testing.T) {
	api := newFakeAPI(t)
	api.delay = 2 * time.Second
	c := newCLI(t, api)
	c.login("access-1", "refresh-1", testNow.Add(10*time.Minute))
	start := time.Now()
	code, _, errs := c.run("", "status", "--timeout", "200ms")
	if code != ExitFailed || !strings.Contains(errs, "cannot reach the admin API") || time.Since(start) > 1500*time.Millisecond {
		t.Fatalf("slow API: exit %d %q after %v", code, errs, time.Since(start))
	}
	c2 := newCLI(t, nil)
	c2.env["SLUICE_OPS_URL"] = "http://127.0.0.1:1"
	c2.login("x", "y", testNow.Add(time.Hour))
	if code, _, errs := c2.run("", "status"); code != ExitFailed || !strings.Contains(errs, "cannot reach the admin API at http://127.0.0.1:1") {
		t.Fatalf("unreachable: %d %q", code, errs)
	}
	// A token is kept per URL: pointing --url elsewhere does not send it there.
	if code, _, errs := c2.run("", "status", "--url", api.srv.URL); code != ExitFailed || !strings.Contains(errs, "not logged in to "+api.srv.URL) {
		t.Fatalf("other URL: %d %q", code, errs)
	}
}

var ansi = regexp.MustCompile("\x1b\\[[0-9;]*m")

func TestColourOnlyOnATerminalWithoutNoColor(t *testing.T) {
	api := newFakeAPI(t)
	c := newCLI(t, api)
	c.login("access-1", "refresh-1", testNow.Add(10*time.Minute))
	_, plain, _ := c.run("", "status")
	if ansi.MatchString(plain) {
		t.Fatal("colour off a terminal")
	}
	c.tty = true
	_, coloured, _ := c.run("", "status")
	if !strings.Contains(coloured, ansiRed+"critical"+ansiReset) {
		t.Fatalf("no colour on a terminal:\n%s", coloured)
	}
	// The colour codes do not disturb the alignment: without them it is the plain table.
	if got := ansi.ReplaceAllString(coloured, ""); got != plain {
		t.Fatalf("coloured table misaligned:\n%s\nplain:\n%s", got, plain)
	}
	c.env["NO_COLOR"] = "1"
	if _, out, _ := c.run("", "status"); ansi.MatchString(out) {
		t.Fatal("colour despite NO_COLOR")
	}
}

func TestCompletionScripts(t *testing.T) {
	c := newCLI(t, nil)
	for _, shell := range []string{"bash", "zsh", "fish"} {
		code, out, errs := c.run("", "completion", shell)
		if code != ExitOK || !strings.Contains(out, "speed-up") || !strings.Contains(out, "fill-gap") {
			t.Fatalf("completion %s: %d %q", shell, code, errs)
		}
		if sh, err := exec.LookPath(shell); err == nil {
			p := filepath.Join(t.TempDir(), "c")
			_ = os.WriteFile(p, []byte(out), 0o644)
			if b, err := exec.Command(sh, "-n", p).CombinedOutput(); err != nil {
				t.Errorf("%s -n: %v %s", shell, err, b)
			}
		}
	}
	// bash: the script completes the subcommands of a group.
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Fatal("bash is needed to test the bash completion")
	}
	_, script, _ := c.run("", "completion", "bash")
	probe := script + `
COMP_WORDS=(sluice ops withdrawals sp); COMP_CWORD=3; _sluice_ops; echo "${COMPREPLY[@]}"
COMP_WORDS=(sluice ops st); COMP_CWORD=2; _sluice_ops; echo "${COMPREPLY[@]}"
`
	out, err := exec.Command(bash, "-c", probe).CombinedOutput()
	if err != nil || string(out) != "speed-up\nstatus stuck\n" {
		t.Fatalf("bash completion: %v %q", err, out)
	}
}

// Ctrl-C at the confirmation prompt (the binary cancels the context): nothing is done, and the CLI does
// not wait for a line that never comes.
func TestInterruptedPromptDoesNothing(t *testing.T) {
	api := newFakeAPI(t)
	c := newCLI(t, api)
	c.tty = true
	c.login("access-1", "refresh-1", testNow.Add(10*time.Minute))
	stdin, _ := io.Pipe() // never written: a person who does not answer
	ctx, cancel := context.WithCancel(context.Background())
	var out, errb bytes.Buffer
	r := c.runner("", &out, &errb)
	r.ctx, r.stdin = ctx, stdin
	go func() {
		// Cancel once the plan has been asked for: the prompt is then waiting.
		for len(api.sentTo("/admin/v1/actions")) == 0 {
			time.Sleep(5 * time.Millisecond)
		}
		time.Sleep(50 * time.Millisecond)
		cancel()
	}()
	done := make(chan int, 1)
	go func() { done <- r.main([]string{"withdrawals", "speed-up", "0193a4c2-7d1e-7c3a-9b1f-2f5d6e7a8b90"}) }()
	select {
	case code := <-done:
		if code != ExitFailed || !strings.Contains(errb.String(), "not confirmed") {
			t.Fatalf("interrupted prompt: exit %d, %q", code, errb.String())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the prompt ignored the cancelled context")
	}
	if req := api.lastAction(t); !req.DryRun {
		t.Fatalf("an interrupted prompt sent the action: %+v", req)
	}
}
