package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sluice-custody/sluice/internal/store"
	"github.com/sluice-custody/sluice/internal/testenv"
)

// The test harness: a Server on a fresh MariaDB database and the test Redis (a prefix of its own), a
// clock the test moves, the slog output captured, and a fake action ("test.poke") whose Do counts its
// calls per request id. Every response env.do receives is validated against openapi.json.

const testKey = "0123456789abcdef0123456789abcdef-test-key"

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// fakeAction is the test's ActionSpec: target "" is refused, params two=true makes it two-person,
// Do counts per request id and fails (not a refusal: an outage) while failDo is set.
type fakeAction struct {
	mu     sync.Mutex
	calls  map[string]int
	by     map[string]string
	failDo atomic.Bool
	gone   atomic.Bool // Plan refuses: the target changed since the request
	refuse atomic.Bool // Do refuses (an *Error): the target changed between Plan and Do
}

func (f *fakeAction) spec() ActionSpec {
	return ActionSpec{
		Name:      "test.poke",
		Role:      RoleOperator,
		TwoPerson: func(req ActionRequest) bool { return req.Params["two"] == "true" },
		Validate: func(_ context.Context, req ActionRequest) error {
			if req.Target == "" {
				return unprocessable(CodeRequired, "target", "target is required")
			}
			return nil
		},
		Plan: func(_ context.Context, req ActionRequest) (Plan, error) {
			if f.gone.Load() {
				return Plan{}, conflict(CodeConflict, "target "+req.Target+" is terminal")
			}
			return Plan{Summary: "poke " + req.Target, Rows: []RowChange{{Table: "pokes", Key: req.Target, Change: "count +1"}}}, nil
		},
		Do: func(_ context.Context, req ActionRequest, by string) (map[string]any, error) {
			if f.failDo.Load() {
				return nil, errors.New("node unreachable (injected)")
			}
			if f.refuse.Load() {
				return nil, conflict(CodeConflict, "target "+req.Target+" became terminal")
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			f.calls[req.RequestID]++
			f.by[req.RequestID] = by
			return map[string]any{"poked": req.Target}, nil
		},
	}
}

func (f *fakeAction) count(id string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[id]
}

type env struct {
	t    *testing.T
	st   *store.Store
	srv  *Server
	ts   *httptest.Server
	logs *syncBuf
	now  atomic.Pointer[time.Time]
	fake *fakeAction
	// secrets are strings that must never appear in the logs.
	secretsMu sync.Mutex
	secrets   []string
}

func newEnv(t *testing.T, tweak ...func(*Deps)) *env {
	t.Helper()
	st, _ := testenv.Store(t)
	return newEnvOn(t, st, testenv.Redis(t), tweak...)
}

// newEnvOn is newEnv on a given database and Redis (the embedded ones of `sluice dev`).
func newEnvOn(t *testing.T, st *store.Store, rdb redis.Cmdable, tweak ...func(*Deps)) *env {
	t.Helper()
	e := &env{t: t, st: st, logs: &syncBuf{}, fake: &fakeAction{calls: map[string]int{}, by: map[string]string{}}}
	start := time.Now().UTC()
	e.now.Store(&start)
	d := Deps{Store: st, Redis: rdb, JWTKey: []byte(testKey), RedisPrefix: "test:" + testenv.UniqueName(t) + ":",
		Now: func() time.Time { return *e.now.Load() }}
	for _, f := range tweak {
		f(&d)
	}
	log := slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv, err := newServer(d, log, NopMetrics(), []ActionSpec{e.fake.spec()})
	if err != nil {
		t.Fatal(err)
	}
	e.srv = srv
	e.ts = httptest.NewServer(srv.Handler())
	t.Cleanup(e.ts.Close)
	t.Cleanup(func() {
		logs := e.logs.String()
		e.secretsMu.Lock()
		defer e.secretsMu.Unlock()
		for _, s := range e.secrets {
			if s != "" && strings.Contains(logs, s) {
				t.Errorf("a secret (%.6s…) appears in the logs", s)
			}
		}
		if t.Failed() && testing.Verbose() {
			t.Logf("logs:\n%s", logs)
		}
	})
	return e
}

func (e *env) secret(s ...string) {
	e.secretsMu.Lock()
	defer e.secretsMu.Unlock()
	e.secrets = append(e.secrets, s...)
}

func (e *env) advance(d time.Duration) {
	t := e.now.Load().Add(d)
	e.now.Store(&t)
}

// addOperator creates an operator straight in the database (as `sluice ops operator add` does).
func (e *env) addOperator(name string, role Role) string {
	e.t.Helper()
	pw := "pw-" + name + "-" + strings.Repeat("x", 12)
	if _, err := AddOperator(context.Background(), e.st, Actor{Operator: "cli:test", Remote: "local"}, name, pw, role); err != nil {
		e.t.Fatal(err)
	}
	e.secret(pw)
	return pw
}

type resp struct {
	status int
	header http.Header
	raw    []byte
}

func (r resp) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.raw, v); err != nil {
		t.Fatalf("response %d: %v: %s", r.status, err, r.raw)
	}
}

func (r resp) errorOf(t *testing.T) *Error {
	t.Helper()
	var b struct{ Error *Error }
	r.json(t, &b)
	if b.Error == nil || b.Error.Code == "" || b.Error.Message == "" {
		t.Fatalf("not an error response: %d %s", r.status, r.raw)
	}
	return b.Error
}

// auth is how a request authenticates: a bearer token, or the dashboard's cookies (csrf "" sends no header).
type auth struct {
	bearer        string
	session, csrf string
	csrfHeader    string
}

func bearer(tok string) auth { return auth{bearer: tok} }

func (e *env) do(method, path string, a auth, body any) resp {
	e.t.Helper()
	var raw []byte
	switch b := body.(type) {
	case nil:
	case string:
		raw = []byte(b)
	default:
		var err error
		if raw, err = json.Marshal(b); err != nil {
			e.t.Fatal(err)
		}
	}
	req, err := http.NewRequest(method, e.ts.URL+path, bytes.NewReader(raw))
	if err != nil {
		e.t.Fatal(err)
	}
	if raw != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if a.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+a.bearer)
	}
	if a.session != "" {
		req.AddCookie(&http.Cookie{Name: CookieSession, Value: a.session})
		req.AddCookie(&http.Cookie{Name: CookieCSRF, Value: a.csrf})
	}
	if a.csrfHeader != "" {
		req.Header.Set(HeaderCSRF, a.csrfHeader)
	}
	res, err := e.ts.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	out, _ := io.ReadAll(res.Body)
	if res.StatusCode >= 500 && res.StatusCode != http.StatusInternalServerError {
		e.t.Errorf("%s %s → %d", method, path, res.StatusCode)
	}
	checkAgainstSpec(e.t, req, raw, res, out)
	for _, h := range []string{"Content-Security-Policy", "X-Content-Type-Options", "X-Frame-Options"} {
		if res.Header.Get(h) == "" {
			e.t.Errorf("%s %s: no %s header", method, path, h)
		}
	}
	return resp{status: res.StatusCode, header: res.Header, raw: out}
}

// login logs in over the API and returns the tokens (their secrets registered).
func (e *env) login(user, pw string) Tokens {
	e.t.Helper()
	r := e.do("POST", "/admin/v1/auth/login", auth{}, LoginRequest{Username: user, Password: pw})
	if r.status != http.StatusOK {
		e.t.Fatalf("login %s: %d %s", user, r.status, r.raw)
	}
	var tok Tokens
	r.json(e.t, &tok)
	e.secret(tok.AccessToken, tok.RefreshToken)
	return tok
}

func (e *env) want(r resp, status int, code string) *Error {
	e.t.Helper()
	if r.status != status {
		e.t.Fatalf("status %d, want %d: %s", r.status, status, r.raw)
	}
	if code == "" {
		return nil
	}
	er := r.errorOf(e.t)
	if er.Code != code {
		e.t.Fatalf("code %q, want %q: %s", er.Code, code, r.raw)
	}
	return er
}

// OpenAPI validation of every response (like api/openapi_validate_test.go).

// spec is admin/openapi.json, loaded once for the package's tests.
var spec = sync.OnceValues(func() (*testenv.OpenAPI, error) {
	return testenv.NewOpenAPI("admin/openapi.json", openAPIDoc)
})

func checkAgainstSpec(t testing.TB, req *http.Request, reqBody []byte, res *http.Response, raw []byte) {
	t.Helper()
	o, err := spec()
	if err != nil {
		t.Fatal(err)
	}
	o.Check(t, req, reqBody, res.StatusCode, res.Header, raw)
}

func specError(req *http.Request, reqBody []byte, status int, h http.Header, raw []byte) (bool, error) {
	o, err := spec()
	if err != nil {
		return false, err
	}
	return o.Validate(req, reqBody, status, h, raw)
}

func TestSpecValidationBites(t *testing.T) {
	req, _ := http.NewRequest(http.MethodPost, "http://x/admin/v1/actions", nil)
	h := http.Header{"Content-Type": {"application/json"}}
	for _, c := range []struct {
		status int
		body   string
	}{
		{200, `{}`},
		{418, `{"error":{"code":"internal","message":"x"}}`},
		{422, `{"error":{"code":"Not A Code","message":"x"}}`},
		{422, `{"error":{"code":"invalid"}}`},
		{200, `{"request_id":"a","action":"x","target":"t","status":"nope","plan":{"summary":"s"},"requested_by":"u"}`},
	} {
		checked, err := specError(req, nil, c.status, h, []byte(c.body))
		if !checked || err == nil {
			t.Errorf("%d %s passed validation", c.status, c.body)
		}
	}
	checked, err := specError(req, nil, 422, h, []byte(`{"error":{"code":"unknown_action","field":"action","message":"x"}}`))
	if !checked || err != nil {
		t.Errorf("a valid 422: %v", err)
	}
}

func TestMain(m *testing.M) {
	code := m.Run()
	if o, err := spec(); err == nil {
		fmt.Fprintf(os.Stderr, "admin tests: %d responses validated against openapi.json\n", o.Checked())
	}
	os.Exit(code)
}
