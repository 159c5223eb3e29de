package ops_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-custody/sluice/admin"
	"github.com/sluice-custody/sluice/internal/alert"
	"github.com/sluice-custody/sluice/internal/config"
	"github.com/sluice-custody/sluice/internal/pipelinetest"
	"github.com/sluice-custody/sluice/internal/queue"
	"github.com/sluice-custody/sluice/internal/store"
	"github.com/sluice-custody/sluice/internal/testenv"
	"github.com/sluice-custody/sluice/recovery"
)

// buildSluice builds the real binary into a temporary directory: the CLI is tested as the on-call
// engineer runs it.
func buildSluice(t *testing.T) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	bin := filepath.Join(t.TempDir(), "sluice")
	cmd := exec.Command(goBin, "build", "-o", bin, "github.com/sluice-custody/sluice/cmd/sluice")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// specCheck validates every answer the admin API gives the CLI against admin/openapi.json, from inside
// the server's handler (where a test cannot fail), keeping what it finds for report.
type specCheck struct {
	doc      *testenv.OpenAPI
	mu       sync.Mutex
	checked  int
	failures []string
}

func newSpecCheck(t *testing.T) *specCheck {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "admin", "openapi.json"))
	if err != nil {
		t.Fatal(err)
	}
	doc, err := testenv.NewOpenAPI("admin/openapi.json", raw)
	if err != nil {
		t.Fatal(err)
	}
	return &specCheck{doc: doc}
}

func (s *specCheck) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())

		documented, err := s.doc.Validate(r, body, rec.Code, rec.Header(), rec.Body.Bytes())
		s.mu.Lock()
		defer s.mu.Unlock()
		switch {
		case !documented:
			s.failures = append(s.failures, fmt.Sprintf("%s %s is not in admin/openapi.json", r.Method, r.URL.Path))
			return
		case err != nil:
			s.failures = append(s.failures, fmt.Sprintf("%s %s → %d: %v\nbody: %.300s", r.Method, r.URL.Path, rec.Code, err, rec.Body.Bytes()))
		}
		s.checked++
	})
}

// report fails the test for each answer the document does not describe, and if fewer than min were seen.
func (s *specCheck) report(t *testing.T, min int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range s.failures {
		t.Errorf("answer does not match admin/openapi.json: %s", f)
	}
	if s.checked < min {
		t.Errorf("%d answers checked against admin/openapi.json, want at least %d", s.checked, min)
	}
	t.Logf("%d admin API answers validated against admin/openapi.json", s.checked)
}

// oncall is one operator at their own terminal: their own config dir (token file), the admin API's URL.
type oncall struct {
	t    *testing.T
	bin  string
	url  string
	home string
}

func (o oncall) run(stdin string, args ...string) (int, string, string) {
	o.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, o.bin, append([]string{"ops"}, args...)...)
	cmd.Env = []string{"XDG_CONFIG_HOME=" + o.home, "HOME=" + o.home, "SLUICE_OPS_URL=" + o.url, "PATH=" + os.Getenv("PATH")}
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		o.t.Fatalf("run sluice ops %v: %v", args, err)
	}
	return code, out.String(), errb.String()
}

// must runs a command that has to exit with want.
func (o oncall) must(want int, stdin string, args ...string) (string, string) {
	o.t.Helper()
	code, out, errs := o.run(stdin, args...)
	if code != want {
		o.t.Fatalf("sluice ops %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, want, out, errs)
	}
	return out, errs
}

// The end-to-end test, through the real binary against a real admin API on MariaDB, Redis and
// a chain: log in; status shows a stuck transaction; speed-up --dry-run prints the plan and the real
// speed-up mines it; a DLQ redrive asked by one operator waits (exit 3) and is approved by another;
// self-approval is refused; a viewer's action is refused (403); the audit chain verifies, and a row
// edited by SQL is named by audit verify.
func TestOnCallThroughTheBinary(t *testing.T) {
	bin := buildSluice(t)
	e := pipelinetest.New(t, pipelinetest.Options{})
	ctx := e.Ctx
	cfg := e.Config
	cfg.Recovery.StuckAfterBlocks = 1 // a fresh chain is a few blocks high

	boot := admin.Actor{Operator: "cli:test", Remote: "local"}
	passwords := map[string]string{}
	for _, op := range []struct {
		name string
		role admin.Role
	}{{"bob", admin.RoleOperator}, {"carol", admin.RoleApprover}, {"vic", admin.RoleViewer}} {
		passwords[op.name] = op.name + "-correct-horse"
		if _, err := admin.AddOperator(ctx, e.Store, boot, op.name, passwords[op.name], op.role); err != nil {
			t.Fatal(err)
		}
	}
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	srv, err := admin.New(admin.Deps{Store: e.Store, Redis: testenv.Redis(t), JWTKey: key, Chains: []config.Chain{cfg},
		RedisPrefix: "test:" + testenv.UniqueName(t) + ":",
		Ops: admin.OpsDeps{Queue: e.Queue, Queues: e.Queue, Nonces: e.Nonces,
			Chains: map[string]admin.ChainDeps{"local": {Config: cfg, Client: e.Client}}}}, nil, admin.NopMetrics())
	if err != nil {
		t.Fatal(err)
	}
	spec := newSpecCheck(t)
	hs := httptest.NewServer(spec.wrap(srv.Handler()))
	t.Cleanup(hs.Close)
	t.Cleanup(func() { spec.report(t, 25) })
	rec, err := recovery.New(recovery.Deps{Store: e.Store, Queue: e.Queue, Keys: e.Keys, Leases: e.Nonces, Alerts: alert.Nop{},
		Chains: map[string]recovery.ChainDeps{"local": {Config: e.Config, Client: e.Client}}}, e.Log, recovery.NopMetrics())
	if err != nil {
		t.Fatal(err)
	}
	users := map[string]oncall{}
	for name := range passwords {
		users[name] = oncall{t: t, bin: bin, url: hs.URL, home: t.TempDir()}
		users[name].must(0, passwords[name]+"\n", "login", "--username", name, "--password-stdin")
		fi, err := os.Stat(filepath.Join(users[name].home, "sluice", "ops-token.json"))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s's token file: %v %v, want mode 0600", name, fi, err)
		}
	}
	bob, carol, vic := users["bob"], users["carol"], users["vic"]
	if out, _ := bob.must(0, "", "whoami"); !strings.HasPrefix(out, "bob (operator)") {
		t.Fatalf("whoami: %q", out)
	}

	// A withdrawal broadcast while the chain does not seal, made to look stuck.
	w := e.Withdraw("POL", testenv.NewAccount(t).Address, 1e15)
	if err := e.Signer().Handle(ctx, e.One(queue.TxRequest)); err != nil {
		t.Fatal(err)
	}
	signed := e.One(queue.SignedTx)
	e.Chain.SealEvery(time.Hour)
	if err := e.Broadcaster().Handle(ctx, signed); err != nil {
		t.Fatal(err)
	}
	if err := e.Queue.Delete(ctx, queue.SignedTx, signed); err != nil {
		t.Fatal(err)
	}
	w = e.Get(w.ID)
	if w.Status != store.Broadcasted {
		t.Fatalf("withdrawal %s after broadcast", w.Status)
	}
	if _, err := e.Store.DB.ExecContext(ctx, `UPDATE sent_transactions SET attempt_block = 0 WHERE id = ?`, *w.SentTxID); err != nil {
		t.Fatal(err)
	}
	st, err := e.Store.GetSentTx(ctx, *w.SentTxID)
	if err != nil {
		t.Fatal(err)
	}
	mon := e.One(queue.TxMonitor)

	out, _ := bob.must(0, "", "status")
	t.Logf("sluice ops status:\n%s", out)
	if !strings.Contains(out, st.Hash) || !strings.Contains(out, "sluice ops withdrawals speed-up "+w.ID) || !strings.Contains(out, "stuck_tx") {
		t.Fatalf("status does not show the stuck transaction %s with its fix:\n%s", st.Hash, out)
	}
	out, _ = bob.must(0, "", "stuck", "list")
	if !strings.Contains(out, st.Hash) || !strings.Contains(out, w.ID) {
		t.Fatalf("stuck list:\n%s", out)
	}
	out, _ = bob.must(0, "", "withdrawals", "show", w.ID)
	if !strings.Contains(out, "BROADCASTED") || !strings.Contains(out, st.Hash) {
		t.Fatalf("withdrawals show:\n%s", out)
	}

	// The dry run prints the replacement at the same nonce with its fees in gwei, and records nothing.
	out, _ = bob.must(0, "", "withdrawals", "speed-up", w.ID, "--dry-run")
	t.Logf("sluice ops withdrawals speed-up --dry-run:\n%s", out)
	nonceCell := regexp.MustCompile(`replacement\s+local\s+\S+\s+` + strconv.FormatUint(st.Nonce, 10) + `\s`)
	if !nonceCell.MatchString(out) || !strings.Contains(out, " gwei") || !strings.Contains(out, st.Hash) || !strings.Contains(out, "dry run: nothing was changed") {
		t.Fatalf("speed-up --dry-run does not show the replacement at nonce %d with fees:\n%s", st.Nonce, out)
	}
	if n := e.CountSent(); n != 1 {
		t.Fatalf("the dry run recorded something: %d sent transactions", n)
	}
	// Not on a terminal and no --yes: refused, nothing asked of the API.
	if code, _, errs := bob.run("", "withdrawals", "speed-up", w.ID); code != 2 || !strings.Contains(errs, "--yes") {
		t.Fatalf("speed-up without --yes off a terminal: exit %d %q", code, errs)
	}
	out, _ = bob.must(0, "", "withdrawals", "speed-up", w.ID, "--yes", "--reason", "stuck in the test")
	if !strings.Contains(out, "done: withdrawal.speed-up "+w.ID) {
		t.Fatalf("speed-up:\n%s", out)
	}
	got, err := rec.PerformActions(ctx, "local")
	if err != nil || got.Bumped != 1 {
		t.Fatalf("recovery performed %+v (%v), want the one bump the operator asked for", got, err)
	}
	e.Chain.SealEvery(100 * time.Millisecond)
	mo := e.Monitor()
	deadline := time.Now().Add(60 * time.Second)
	for !e.Get(w.ID).Status.Terminal() {
		if time.Now().After(deadline) {
			t.Fatalf("the sped-up withdrawal never settled (%s)", e.Get(w.ID).Status)
		}
		if err := mo.Handle(ctx, mon); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if s := e.Get(w.ID).Status; s != store.Confirmed {
		t.Fatalf("withdrawal %s, want CONFIRMED", s)
	}
	var detail admin.WithdrawalDetail
	out, _ = bob.must(0, "", "withdrawals", "show", w.ID, "--json")
	if err := json.Unmarshal([]byte(out), &detail); err != nil || len(detail.Attempts) != 2 || detail.Attempts[1].Status != "mined" {
		t.Fatalf("after the speed-up, withdrawals show --json: %v\n%s", err, out)
	}
	var status admin.Status
	out, _ = bob.must(0, "", "status", "--json")
	if err := json.Unmarshal([]byte(out), &status); err != nil {
		t.Fatal(err)
	}
	for _, p := range status.Problems {
		if p.Kind == "stuck_tx" {
			t.Fatalf("status still shows a stuck transaction: %+v", p)
		}
	}

	// A parked DLQ message: bob asks for the redrive (exit 3), cannot approve it himself, carol approves.
	w2 := e.Withdraw("POL", testenv.NewAccount(t).Address, 1e15)
	orig := e.One(queue.TxRequest)
	if err := e.Queue.Delete(ctx, queue.TxRequest, orig); err != nil {
		t.Fatal(err)
	}
	body, err := queue.DeadLetterFor(orig, queue.TxRequest, errors.New("mystery"), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Store.InTx(ctx, func(tx *sql.Tx) error {
		return e.Store.Park(ctx, tx, store.Parked{Queue: queue.RequestDLQ, MessageID: "m-1", Body: body, ErrorType: "UNKNOWN", Reason: "nobody classified it"})
	}); err != nil {
		t.Fatal(err)
	}
	var parked admin.Page[admin.DLQMessage]
	out, _ = bob.must(0, "", "dlq", "list", "--json")
	if err := json.Unmarshal([]byte(out), &parked); err != nil || len(parked.Items) != 1 || parked.Items[0].WithdrawalID == nil || *parked.Items[0].WithdrawalID != w2.ID {
		t.Fatalf("dlq list --json: %v\n%s", err, out)
	}
	msgID := parked.Items[0].ID
	out, _ = bob.must(3, "", "dlq", "redrive", msgID, "--yes")
	m := regexp.MustCompile(`sluice ops approvals approve (\S+)`).FindStringSubmatch(out)
	if m == nil || !strings.Contains(out, "awaiting_approval") {
		t.Fatalf("redrive did not say what to approve:\n%s", out)
	}
	approvalID := m[1]
	if ms := e.Receive(queue.TxRequest); len(ms) != 0 {
		t.Fatalf("the redrive took effect before its approval: %d messages", len(ms))
	}
	out, _ = carol.must(0, "", "approvals", "list")
	if !strings.Contains(out, approvalID) || !strings.Contains(out, "dlq.redrive") || !strings.Contains(out, "bob") {
		t.Fatalf("approvals list:\n%s", out)
	}
	// bob is no approver: 403 for the role. carol cannot approve her own either (below).
	if _, errs := bob.must(1, "", "approvals", "approve", approvalID, "--yes"); !strings.Contains(errs, "approver") {
		t.Fatalf("bob approving: %q", errs)
	}
	out, _ = carol.must(0, "", "approvals", "approve", approvalID, "--yes")
	if !strings.Contains(out, "done: dlq.redrive "+msgID) || !strings.Contains(out, "approved by carol") {
		t.Fatalf("carol's approval:\n%s", out)
	}
	if ms := e.Receive(queue.TxRequest); len(ms) != 1 {
		t.Fatalf("tx-request holds %d messages after the approved redrive, want 1", len(ms))
	}

	// Self-approval: carol asks (a two-person freeze-lift needs a frozen wallet first) and cannot approve.
	target := "local/" + e.Hot.Address.Hex()
	carol.must(0, "", "wallets", "freeze", target, "--reason", "drill", "--yes")
	carol.must(3, "", "wallets", "unfreeze", target, "--yes")
	var pending []admin.Approval
	out, _ = carol.must(0, "", "approvals", "list", "--json")
	if err := json.Unmarshal([]byte(out), &pending); err != nil || len(pending) != 1 {
		t.Fatalf("approvals list --json: %v\n%s", err, out)
	}
	if _, errs := carol.must(1, "", "approvals", "approve", pending[0].ID, "--yes"); !strings.Contains(errs, "own request") {
		t.Fatalf("self-approval: %q", errs)
	}

	// A viewer reads but cannot act: the API's 403 names the role needed.
	vic.must(0, "", "wallets", "list")
	if _, errs := vic.must(1, "", "wallets", "freeze", target, "--reason", "curious", "--yes"); !strings.Contains(errs, "operator role") {
		t.Fatalf("viewer's action: %q", errs)
	}

	// The audit chain verifies; a row edited by SQL is named.
	if out, _ := vic.must(0, "", "audit", "verify"); !strings.HasPrefix(out, "ok: the audit chain verifies") {
		t.Fatalf("audit verify: %q", out)
	}
	var audit admin.Page[admin.AuditEntry]
	out, _ = vic.must(0, "", "audit", "list", "--json", "--limit", "100")
	if err := json.Unmarshal([]byte(out), &audit); err != nil || len(audit.Items) < 10 {
		t.Fatalf("audit list --json: %v, %d rows", err, len(audit.Items))
	}
	var edited int64
	for _, a := range audit.Items {
		if a.Kind == "action" && strings.HasPrefix(a.What, admin.ActionWithdrawalSpeedUp) && a.Outcome != admin.ActionPlanned {
			edited = a.ID
			break
		}
	}
	if edited == 0 {
		t.Fatalf("no speed-up in the audit log: %+v", audit.Items)
	}
	if _, err := e.Store.DB.ExecContext(ctx, `UPDATE audit_log SET operator = 'mallory' WHERE id = ?`, edited); err != nil {
		t.Fatal(err)
	}
	_, errs := vic.must(1, "", "audit", "verify")
	t.Logf("after editing row %d, sluice ops audit verify: %s", edited, errs)
	if !strings.Contains(errs, "broken at row "+strconv.FormatInt(edited, 10)+":") {
		t.Fatalf("audit verify after editing row %d: %q", edited, errs)
	}

	// Logging out revokes the token: the kept file no longer holds it and the CLI says to log in.
	bob.must(0, "", "logout")
	if _, errs := bob.must(1, "", "status"); !strings.Contains(errs, "sluice ops login") {
		t.Fatalf("after logout: %q", errs)
	}
}
