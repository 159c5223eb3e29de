package api

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/sluice-custody/sluice/internal/config"
	"github.com/sluice-custody/sluice/internal/queue"
	"github.com/sluice-custody/sluice/internal/store"
	"github.com/sluice-custody/sluice/internal/testenv"
)

const (
	aliceKey = "sk_test_alice_0123456789abcdef0123456789"
	bobKey   = "sk_test_bob_0123456789abcdef0123456789abc"
	usdtAddr = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
	hotAddr  = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
	toAddr   = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
)

// outboxSender stands in for the MySQL queue, which is being built in parallel (migrations/00002_queue.sql
// and its backend are someone else's work in progress); the integration test wires the real one. What
// matters here is the contract of queue.TxSender: the message is written through the caller's
// transaction, so it commits with the withdrawal row and rolls back with it. It inserts into a table
// of the test database; fail makes it return an error after writing, to prove the rollback.
type outboxSender struct {
	fail atomic.Bool
}

func (o *outboxSender) SendTx(ctx context.Context, tx *sql.Tx, q string, body []byte, opts queue.SendOptions) error {
	if _, err := tx.ExecContext(ctx, `INSERT INTO test_outbox (queue, body) VALUES (?, ?)`, q, body); err != nil {
		return err
	}
	if o.fail.Load() {
		return errors.New("queue unavailable (injected)")
	}
	return nil
}

func testChains() []config.Chain {
	return []config.Chain{
		{
			Name: "local", ChainID: 31337, RPC: []string{"http://127.0.0.1:8545"}, Confirmations: 12,
			Assets: []config.Asset{
				{Symbol: "POL", Decimals: 18},
				// Configured in lower case: GET /v1/chains renders them checksummed.
				{Symbol: "USDT", Decimals: 6, Address: mustAddress(strings.ToLower(usdtAddr))},
			},
			HotWallets: []config.Address{mustAddress(strings.ToLower(hotAddr))},
		},
		{
			Name: "amoy", ChainID: 80002, RPC: []string{"http://127.0.0.1:1"}, Confirmations: 5,
			Assets: []config.Asset{{Symbol: "POL", Decimals: 18}},
		},
	}
}

func mustAddress(s string) config.Address {
	a, err := config.ParseAddress(s)
	if err != nil {
		panic(err)
	}
	return a
}

type env struct {
	t      testing.TB
	st     *store.Store
	srv    *Server
	ts     *httptest.Server
	sender *outboxSender
	alice  *store.APIClient
	bob    *store.APIClient
	ready  atomic.Value // error
}

func newEnv(t testing.TB, tweak ...func(*Deps)) *env {
	t.Helper()
	st := openStore(t)
	ctx := context.Background()
	if _, err := st.DB.ExecContext(ctx, `CREATE TABLE test_outbox (id BIGINT AUTO_INCREMENT PRIMARY KEY,
		queue VARCHAR(64) NOT NULL, body BLOB NOT NULL) ENGINE=InnoDB`); err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, st: st, sender: &outboxSender{}}
	var err error
	if e.alice, err = st.EnsureAPIClient(ctx, "alice", aliceKey); err != nil {
		t.Fatal(err)
	}
	if e.bob, err = st.EnsureAPIClient(ctx, "bob", bobKey); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector())
	d := Deps{
		Store:    st,
		Queue:    e.sender,
		Chains:   testChains(),
		Gatherer: reg,
		Ready: func(context.Context) error {
			if err, _ := e.ready.Load().(error); err != nil {
				return err
			}
			return nil
		},
	}
	var log *slog.Logger // discards
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	for _, f := range tweak {
		f(&d)
	}
	if e.srv, err = New(d, log, NewMetrics(reg)); err != nil {
		t.Fatal(err)
	}
	e.ts = httptest.NewServer(e.srv.Echo())
	t.Cleanup(e.ts.Close)
	return e
}

func openStore(t testing.TB) *store.Store {
	t.Helper()
	st, _ := testenv.Store(t)
	return st
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

type resp struct {
	status int
	header http.Header
	raw    []byte
}

func (r resp) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.raw, &m); err != nil {
		t.Fatalf("response %d is not a JSON object: %v: %s", r.status, err, r.raw)
	}
	return m
}

// errorOf returns the code and field of an error response.
func (r resp) errorOf(t *testing.T) (code string, field any) {
	t.Helper()
	e, ok := r.json(t)["error"].(map[string]any)
	if !ok {
		t.Fatalf("no error object in %d %s", r.status, r.raw)
	}
	if _, ok := e["message"].(string); !ok {
		t.Fatalf("error without message: %s", r.raw)
	}
	if _, ok := e["field"]; !ok {
		t.Fatalf("error without field key: %s", r.raw)
	}
	code, _ = e["code"].(string)
	return code, e["field"]
}

func (e *env) do(method, path, key string, body []byte, hdr ...string) resp {
	e.t.Helper()
	req, err := http.NewRequest(method, e.ts.URL+path, bytes.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := e.ts.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	checkAgainstSpec(e.t, req, body, res, raw)
	return resp{status: res.StatusCode, header: res.Header, raw: raw}
}

func (e *env) post(key string, body map[string]any, hdr ...string) resp {
	e.t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		e.t.Fatal(err)
	}
	return e.do(http.MethodPost, "/v1/withdrawals", key, b, hdr...)
}

func (e *env) count(table string) int {
	e.t.Helper()
	var n int
	if err := e.st.DB.QueryRow(`SELECT COUNT(*) FROM ` + table).Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	return n
}

func (e *env) expectNothingWritten() {
	e.t.Helper()
	if n := e.count("withdrawals"); n != 0 {
		e.t.Fatalf("%d withdrawals written", n)
	}
	if n := e.count("withdrawal_history"); n != 0 {
		e.t.Fatalf("%d history rows written", n)
	}
	if n := e.count("test_outbox"); n != 0 {
		e.t.Fatalf("%d messages sent", n)
	}
}

func body(ext string, kv ...any) map[string]any {
	m := map[string]any{"external_id": ext, "chain": "local", "asset": "USDT", "to": toAddr, "amount": "12.5"}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(m, kv[i].(string))
		} else {
			m[kv[i].(string)] = kv[i+1]
		}
	}
	return m
}

var withdrawalKeys = []string{"id", "external_id", "chain", "asset", "to", "amount", "status", "waiting", "from", "nonce",
	"tx_hash", "batch_id", "block_number", "confirmations", "error", "created_at", "updated_at"}

func checkWithdrawalShape(t *testing.T, m map[string]any) {
	t.Helper()
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	want := append([]string(nil), withdrawalKeys...)
	sort.Strings(want)
	if strings.Join(keys, ",") != strings.Join(want, ",") {
		t.Fatalf("withdrawal keys %v, want %v", keys, want)
	}
	for _, k := range []string{"created_at", "updated_at"} {
		s, _ := m[k].(string)
		ts, err := time.Parse(time.RFC3339, s)
		if err != nil || !strings.HasSuffix(s, "Z") || ts.Location() != time.UTC {
			t.Fatalf("%s = %q: not RFC 3339 UTC (%v)", k, s, err)
		}
	}
}

func TestCreateGetAndMessage(t *testing.T) {
	e := newEnv(t)
	r := e.post(aliceKey, body("wd-1", "to", strings.ToLower(toAddr)), "X-Correlation-ID", "corr-123:abc")
	if r.status != http.StatusCreated {
		t.Fatalf("create: %d %s", r.status, r.raw)
	}
	if got := r.header.Get("X-Correlation-ID"); got != "corr-123:abc" {
		t.Fatalf("correlation id header %q", got)
	}
	w := r.json(t)
	checkWithdrawalShape(t, w)
	id, _ := w["id"].(string)
	if r.header.Get("Location") != "/v1/withdrawals/"+id {
		t.Fatalf("Location %q", r.header.Get("Location"))
	}
	for k, want := range map[string]any{"external_id": "wd-1", "chain": "local", "asset": "USDT", "to": toAddr,
		"amount": "12.5", "status": "PENDING", "from": nil, "nonce": nil, "tx_hash": nil, "batch_id": nil,
		"block_number": nil, "confirmations": nil, "error": nil} {
		if w[k] != want {
			t.Errorf("%s = %#v, want %#v", k, w[k], want)
		}
	}

	// Stored in base units, with the request hash and correlation id.
	sw, err := e.st.GetWithdrawal(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if sw.Amount.String() != "12500000" || sw.To != toAddr || sw.CorrelationID != "corr-123:abc" || sw.ClientID != e.alice.ID || len(sw.RequestHash) != 32 {
		t.Fatalf("stored %+v", sw)
	}

	// Exactly one message, on tx-request, naming the withdrawal.
	var q string
	var msg []byte
	if err := e.st.DB.QueryRow(`SELECT queue, body FROM test_outbox`).Scan(&q, &msg); err != nil {
		t.Fatal(err)
	}
	if q != queue.TxRequest || e.count("test_outbox") != 1 {
		t.Fatalf("message on %q, %d messages", q, e.count("test_outbox"))
	}
	envl, err := queue.ParseEnvelope(msg, queue.TypeWithdrawalRequested)
	if err != nil {
		t.Fatal(err)
	}
	var p queue.WithdrawalRequested
	if err := json.Unmarshal(envl.Payload, &p); err != nil || p.WithdrawalID != id {
		t.Fatalf("payload %s: %v", envl.Payload, err)
	}
	if envl.CorrelationID != "corr-123:abc" || envl.ID == "" || envl.ID == id {
		t.Fatalf("envelope %+v", envl)
	}
	if string(envl.Payload) != `{"withdrawal_id":"`+id+`"}` {
		t.Fatalf("payload JSON %s", envl.Payload)
	}

	g := e.do(http.MethodGet, "/v1/withdrawals/"+id, aliceKey, nil)
	if g.status != http.StatusOK || !bytes.Equal(bytes.TrimSpace(g.raw), bytes.TrimSpace(r.raw)) {
		t.Fatalf("get: %d %s\nwant %s", g.status, g.raw, r.raw)
	}

	h := e.do(http.MethodGet, "/v1/withdrawals/"+id+"/history", aliceKey, nil)
	if h.status != http.StatusOK {
		t.Fatalf("history: %d %s", h.status, h.raw)
	}
	hist := h.json(t)
	entries, _ := hist["history"].([]any)
	if hist["withdrawal_id"] != id || len(entries) != 1 {
		t.Fatalf("history %s", h.raw)
	}
	first := entries[0].(map[string]any)
	if first["from"] != nil || first["to"] != "PENDING" || first["reason"] != "accepted" || first["actor"] != "api" {
		t.Fatalf("history entry %v", first)
	}

	// A 128-character external id and the native coin with 18 decimals.
	ext := strings.Repeat("é", 128)
	r = e.post(aliceKey, body(ext, "asset", "POL", "amount", "0.000000000000000001"))
	if r.status != http.StatusCreated || r.json(t)["amount"] != "0.000000000000000001" || r.json(t)["external_id"] != ext {
		t.Fatalf("create: %d %s", r.status, r.raw)
	}
}

func TestValidation(t *testing.T) {
	e := newEnv(t)
	const bad = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD" // last letter's case flipped
	tooBig := "115792089237316195423570985008687907853269984665640564039457584007913129639936"
	cases := []struct {
		name   string
		raw    string         // raw body, if set
		body   map[string]any // else this
		status int
		code   string
		field  any
	}{
		{name: "not json", raw: "hello", status: 400, code: CodeInvalidJSON},
		{name: "empty body", raw: "", status: 400, code: CodeInvalidJSON},
		{name: "array", raw: "[]", status: 400, code: CodeInvalidJSON},
		{name: "null", raw: "null", status: 400, code: CodeInvalidJSON},
		{name: "truncated", raw: `{"external_id":"a"`, status: 400, code: CodeInvalidJSON},
		{name: "trailing data", raw: `{"external_id":"a","chain":"local","asset":"USDT","to":"` + toAddr + `","amount":"1"} {}`, status: 400, code: CodeInvalidJSON},
		{name: "invalid utf8", raw: "{\"external_id\":\"a\xff\",\"chain\":\"local\",\"asset\":\"USDT\",\"to\":\"" + toAddr + "\",\"amount\":\"1\"}", status: 400, code: CodeInvalidJSON},
		{name: "unknown field", body: body("a", "memo", "hi"), status: 400, code: CodeInvalidJSON, field: "memo"},
		{name: "field case", raw: `{"External_ID":"a","chain":"local","asset":"USDT","to":"` + toAddr + `","amount":"1"}`, status: 400, code: CodeInvalidJSON, field: "External_ID"},
		{name: "duplicate field", raw: `{"external_id":"a","chain":"local","asset":"USDT","to":"` + toAddr + `","amount":"1","amount":"2"}`, status: 400, code: CodeInvalidJSON, field: "amount"},
		{name: "amount number", body: body("a", "amount", 12.5), status: 400, code: CodeInvalidJSON, field: "amount"},
		{name: "to object", body: body("a", "to", map[string]any{"x": 1}), status: 400, code: CodeInvalidJSON, field: "to"},
		{name: "external_id bool", body: body("a", "external_id", true), status: 400, code: CodeInvalidJSON, field: "external_id"},
		{name: "chain array", body: body("a", "chain", []any{"local"}), status: 400, code: CodeInvalidJSON, field: "chain"},

		{name: "missing external_id", body: body("a", "external_id", nil), status: 422, code: CodeRequired, field: "external_id"},
		{name: "empty external_id", body: body(""), status: 422, code: CodeRequired, field: "external_id"},
		{name: "null external_id", raw: `{"external_id":null,"chain":"local","asset":"USDT","to":"` + toAddr + `","amount":"1"}`, status: 422, code: CodeRequired, field: "external_id"},
		{name: "long external_id", body: body(strings.Repeat("x", 129)), status: 422, code: CodeInvalidExternalID, field: "external_id"},
		{name: "control char external_id", body: body("a\nb"), status: 422, code: CodeInvalidExternalID, field: "external_id"},
		{name: "NUL external_id", body: body("a\x00b"), status: 422, code: CodeInvalidExternalID, field: "external_id"},
		{name: "format char external_id", body: body("a\u202eb"), status: 422, code: CodeInvalidExternalID, field: "external_id"},
		{name: "missing chain", body: body("a", "chain", nil), status: 422, code: CodeRequired, field: "chain"},
		{name: "unknown chain", body: body("a", "chain", "mainnet"), status: 422, code: CodeUnknownChain, field: "chain"},
		{name: "missing asset", body: body("a", "asset", nil), status: 422, code: CodeRequired, field: "asset"},
		{name: "unknown asset", body: body("a", "asset", "DAI"), status: 422, code: CodeUnknownAsset, field: "asset"},
		{name: "asset of another chain", body: body("a", "chain", "amoy"), status: 422, code: CodeUnknownAsset, field: "asset"},
		{name: "asset case", body: body("a", "asset", "usdt"), status: 422, code: CodeUnknownAsset, field: "asset"},
		{name: "missing to", body: body("a", "to", nil), status: 422, code: CodeRequired, field: "to"},
		{name: "to not address", body: body("a", "to", "bob"), status: 422, code: CodeInvalidAddress, field: "to"},
		{name: "to short", body: body("a", "to", toAddr[:41]), status: 422, code: CodeInvalidAddress, field: "to"},
		{name: "to no prefix", body: body("a", "to", toAddr[2:]), status: 422, code: CodeInvalidAddress, field: "to"},
		{name: "to non-hex", body: body("a", "to", "0x"+strings.Repeat("g", 40)), status: 422, code: CodeInvalidAddress, field: "to"},
		{name: "to bad checksum", body: body("a", "to", bad), status: 422, code: CodeInvalidChecksum, field: "to"},
		{name: "to zero", body: body("a", "to", "0x0000000000000000000000000000000000000000"), status: 422, code: CodeInvalidAddress, field: "to"},
		{name: "missing amount", body: body("a", "amount", nil), status: 422, code: CodeRequired, field: "amount"},
		{name: "empty amount", body: body("a", "amount", ""), status: 422, code: CodeRequired, field: "amount"},
		{name: "amount exponent", body: body("a", "amount", "1e6"), status: 422, code: CodeInvalidAmount, field: "amount"},
		{name: "amount negative", body: body("a", "amount", "-1"), status: 422, code: CodeInvalidAmount, field: "amount"},
		{name: "amount plus", body: body("a", "amount", "+1"), status: 422, code: CodeInvalidAmount, field: "amount"},
		{name: "amount space", body: body("a", "amount", " 1"), status: 422, code: CodeInvalidAmount, field: "amount"},
		{name: "amount hex", body: body("a", "amount", "0x10"), status: 422, code: CodeInvalidAmount, field: "amount"},
		{name: "amount leading point", body: body("a", "amount", ".5"), status: 422, code: CodeInvalidAmount, field: "amount"},
		{name: "amount trailing point", body: body("a", "amount", "5."), status: 422, code: CodeInvalidAmount, field: "amount"},
		{name: "amount comma", body: body("a", "amount", "1,5"), status: 422, code: CodeInvalidAmount, field: "amount"},
		{name: "amount leading zero", body: body("a", "amount", "01"), status: 422, code: CodeInvalidAmount, field: "amount"},
		{name: "amount zero", body: body("a", "amount", "0"), status: 422, code: CodeAmountNotPositive, field: "amount"},
		{name: "amount zero decimals", body: body("a", "amount", "0.000000"), status: 422, code: CodeAmountNotPositive, field: "amount"},
		{name: "too many decimals", body: body("a", "amount", "0.0000001"), status: 422, code: CodeTooManyDecimals, field: "amount"},
		{name: "uint256 max + 1", body: body("a", "amount", tooBig, "asset", "POL", "chain", "amoy"), status: 422, code: CodeAmountTooLarge, field: "amount"},
		{name: "uint256 max + 1 with 18 decimals", body: body("a", "amount", "115792089237316195423570985008687907853269984665640564039457.584007913129639936", "asset", "POL"), status: 422, code: CodeAmountTooLarge, field: "amount"},
		{name: "too large base units", body: body("a", "amount", "115792089237316195423570985008687907853269984665640564039458", "asset", "POL"), status: 422, code: CodeAmountTooLarge, field: "amount"},
		{name: "too large huge", body: body("a", "amount", strings.Repeat("9", 1000)), status: 422, code: CodeAmountTooLarge, field: "amount"},
		{name: "body too large", body: body(strings.Repeat("x", 70000)), status: 413, code: CodeBodyTooLarge},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var raw []byte
			if tc.body != nil {
				var err error
				if raw, err = json.Marshal(tc.body); err != nil {
					t.Fatal(err)
				}
			} else {
				raw = []byte(tc.raw)
			}
			r := e.do(http.MethodPost, "/v1/withdrawals", aliceKey, raw)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.raw)
			}
			code, field := r.errorOf(t)
			if code != tc.code || field != tc.field {
				t.Fatalf("error %s/%v, want %s/%v: %s", code, field, tc.code, tc.field, r.raw)
			}
			if codeStatus[code] != r.status {
				t.Fatalf("code %s sent with %d, table says %d", code, r.status, codeStatus[code])
			}
			e.expectNothingWritten()
		})
	}
	// The exact limit: uint256 max in base units is accepted.
	r := e.post(aliceKey, body("max", "asset", "POL", "amount", "115792089237316195423570985008687907853269984665640564039457.584007913129639935"))
	if r.status != http.StatusCreated || r.json(t)["amount"] != "115792089237316195423570985008687907853269984665640564039457.584007913129639935" {
		t.Fatalf("max amount: %d %s", r.status, r.raw)
	}
}

func TestAuth(t *testing.T) {
	e := newEnv(t)
	routes := []struct{ method, path string }{
		{http.MethodPost, "/v1/withdrawals"},
		{http.MethodGet, "/v1/withdrawals"},
		{http.MethodGet, "/v1/withdrawals/0190b2f6-0000-7000-8000-000000000000"},
		{http.MethodPost, "/v1/withdrawals/0190b2f6-0000-7000-8000-000000000000/cancel"},
		{http.MethodGet, "/v1/withdrawals/0190b2f6-0000-7000-8000-000000000000/history"},
		{http.MethodGet, "/v1/chains"},
	}
	b, _ := json.Marshal(body("a"))
	for _, hdr := range []string{"", "Basic " + aliceKey, "Bearer", "Bearer ", "Bearer nope", "Bearer " + aliceKey + "x", "Token " + aliceKey, "Bearer " + strings.Repeat("k", 300)} {
		for _, rt := range routes {
			var r resp
			if hdr == "" {
				r = e.do(rt.method, rt.path, "", b)
			} else {
				r = e.do(rt.method, rt.path, "", b, "Authorization", hdr)
			}
			if r.status != http.StatusUnauthorized {
				t.Fatalf("%s %s with %q: %d %s", rt.method, rt.path, hdr, r.status, r.raw)
			}
			if code, _ := r.errorOf(t); code != CodeUnauthorized {
				t.Fatalf("code %s", code)
			}
		}
	}
	e.expectNothingWritten()
	// The scheme is case-insensitive.
	if r := e.do(http.MethodGet, "/v1/chains", "", nil, "Authorization", "bearer "+aliceKey); r.status != 200 {
		t.Fatalf("lower-case bearer: %d", r.status)
	}
	// A key unknown at first works once registered: misses are not cached for long.
	const carolKey = "sk_test_carol_0123456789abcdef0123456789"
	if r := e.do(http.MethodGet, "/v1/chains", carolKey, nil); r.status != 401 {
		t.Fatalf("unknown key: %d", r.status)
	}
	if _, err := e.st.EnsureAPIClient(context.Background(), "carol", carolKey); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(negAuthTTL + 3*time.Second)
	for {
		r := e.do(http.MethodGet, "/v1/chains", carolKey, nil)
		if r.status == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("registered key still refused: %d", r.status)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// Health, readiness, metrics and the document need no key.
	for _, p := range []string{"/healthz", "/readyz", "/metrics", "/openapi.json"} {
		if r := e.do(http.MethodGet, p, "", nil); r.status != 200 {
			t.Fatalf("%s: %d", p, r.status)
		}
	}
}

func TestAuthCacheAvoidsLookups(t *testing.T) {
	e := newEnv(t)
	if r := e.do(http.MethodGet, "/v1/chains", aliceKey, nil); r.status != 200 {
		t.Fatal(r.status)
	}
	// With the key cached, requests keep working while the client row is unreadable by key.
	if _, err := e.st.DB.Exec(`UPDATE api_clients SET key_hash = UNHEX(SHA2('other', 256)) WHERE name = 'alice'`); err != nil {
		t.Fatal(err)
	}
	if r := e.do(http.MethodGet, "/v1/chains", aliceKey, nil); r.status != 200 {
		t.Fatalf("cached key: %d", r.status)
	}
}

func TestIdempotency(t *testing.T) {
	e := newEnv(t)
	first := e.post(aliceKey, body("wd-7"))
	if first.status != http.StatusCreated {
		t.Fatalf("create: %d %s", first.status, first.raw)
	}
	id := first.json(t)["id"]
	// Same request, also in other spellings of the same values: 200 with the original.
	for _, b := range []map[string]any{
		body("wd-7"),
		body("wd-7", "amount", "12.50"),
		body("wd-7", "amount", "12.500000", "to", strings.ToLower(toAddr)),
		body("wd-7", "to", "0x"+strings.ToUpper(toAddr[2:])),
	} {
		r := e.post(aliceKey, b, "X-Correlation-ID", "replay")
		if r.status != http.StatusOK || r.json(t)["id"] != id {
			t.Fatalf("replay %v: %d %s", b, r.status, r.raw)
		}
		if !bytes.Equal(bytes.TrimSpace(r.raw), bytes.TrimSpace(first.raw)) {
			t.Fatalf("replay body differs:\n%s\n%s", r.raw, first.raw)
		}
	}
	// Different request with the same external_id: 409, nothing written.
	for _, b := range []map[string]any{
		body("wd-7", "amount", "12.6"),
		body("wd-7", "asset", "POL"),
		body("wd-7", "chain", "amoy", "asset", "POL"),
		body("wd-7", "to", "0x52908400098527886E0F7030069857D2E4169EE7"),
	} {
		r := e.post(aliceKey, b)
		if r.status != http.StatusConflict {
			t.Fatalf("conflict %v: %d %s", b, r.status, r.raw)
		}
		if code, field := r.errorOf(t); code != CodeIdempotencyConflict || field != "external_id" {
			t.Fatalf("conflict error %s/%v", code, field)
		}
	}
	if e.count("withdrawals") != 1 || e.count("test_outbox") != 1 || e.count("withdrawal_history") != 1 {
		t.Fatalf("rows %d, messages %d", e.count("withdrawals"), e.count("test_outbox"))
	}
	// external_id is per client: bob's wd-7 is another withdrawal.
	r := e.post(bobKey, body("wd-7"))
	if r.status != http.StatusCreated || r.json(t)["id"] == id {
		t.Fatalf("bob: %d %s", r.status, r.raw)
	}
	// The original's correlation id stays on it.
	w, err := e.st.GetWithdrawal(context.Background(), id.(string))
	if err != nil || w.CorrelationID == "replay" || w.CorrelationID == "" {
		t.Fatalf("correlation id %q after replays (%v)", w.CorrelationID, err)
	}
}

func TestConcurrentIdenticalPosts(t *testing.T) {
	e := newEnv(t)
	const n = 20
	b, _ := json.Marshal(body("wd-race"))
	var wg sync.WaitGroup
	start := make(chan struct{})
	results := make([]resp, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			<-start
			req, _ := http.NewRequest(http.MethodPost, e.ts.URL+"/v1/withdrawals", bytes.NewReader(b))
			req.Header.Set("Authorization", "Bearer "+aliceKey)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			raw, _ := io.ReadAll(res.Body)
			res.Body.Close()
			results[i] = resp{status: res.StatusCode, raw: raw}
		}(i)
	}
	close(start)
	wg.Wait()
	created, replayed := 0, 0
	ids := map[any]bool{}
	for _, r := range results {
		switch r.status {
		case http.StatusCreated:
			created++
		case http.StatusOK:
			replayed++
		default:
			t.Fatalf("status %d: %s", r.status, r.raw)
		}
		ids[r.json(t)["id"]] = true
	}
	if created != 1 || replayed != n-1 || len(ids) != 1 {
		t.Fatalf("created %d, replayed %d, ids %v", created, replayed, ids)
	}
	if e.count("withdrawals") != 1 || e.count("test_outbox") != 1 || e.count("withdrawal_history") != 1 {
		t.Fatalf("rows %d, messages %d, history %d", e.count("withdrawals"), e.count("test_outbox"), e.count("withdrawal_history"))
	}
}

func TestEnqueueFailureRollsBack(t *testing.T) {
	e := newEnv(t)
	e.sender.fail.Store(true)
	r := e.post(aliceKey, body("wd-q"), "X-Correlation-ID", "fails")
	if r.status != http.StatusInternalServerError {
		t.Fatalf("status %d %s", r.status, r.raw)
	}
	if code, _ := r.errorOf(t); code != CodeInternal {
		t.Fatalf("code %s", code)
	}
	if strings.Contains(string(r.raw), "injected") {
		t.Fatalf("internal error leaked: %s", r.raw)
	}
	// The sender had written its message inside the transaction: it is gone with the row.
	e.expectNothingWritten()
	e.sender.fail.Store(false)
	if r := e.post(aliceKey, body("wd-q")); r.status != http.StatusCreated {
		t.Fatalf("retry: %d %s", r.status, r.raw)
	}
	if e.count("withdrawals") != 1 || e.count("test_outbox") != 1 {
		t.Fatal("retry did not write one row and one message")
	}
}

func listPage(t *testing.T, e *env, key, query string) ([]map[string]any, any) {
	t.Helper()
	r := e.do(http.MethodGet, "/v1/withdrawals"+query, key, nil)
	if r.status != http.StatusOK {
		t.Fatalf("list %s: %d %s", query, r.status, r.raw)
	}
	m := r.json(t)
	if _, ok := m["next_cursor"]; !ok || len(m) != 2 {
		t.Fatalf("list shape: %s", r.raw)
	}
	ws, ok := m["withdrawals"].([]any)
	if !ok {
		t.Fatalf("withdrawals is not an array: %s", r.raw)
	}
	var out []map[string]any
	for _, w := range ws {
		out = append(out, w.(map[string]any))
		checkWithdrawalShape(t, w.(map[string]any))
	}
	return out, m["next_cursor"]
}

func TestListAndPagination(t *testing.T) {
	e := newEnv(t)
	var ids []string
	for i := 0; i < 7; i++ {
		r := e.post(aliceKey, body(fmt.Sprintf("a-%d", i)))
		if r.status != 201 {
			t.Fatal(r.status)
		}
		ids = append(ids, r.json(t)["id"].(string))
	}
	for i := 0; i < 2; i++ {
		if r := e.post(bobKey, body(fmt.Sprintf("b-%d", i))); r.status != 201 {
			t.Fatal(r.status)
		}
	}
	// Pages of 3, newest first, disjoint, then a null cursor.
	var seen []string
	cursor := ""
	for page := 0; ; page++ {
		q := "?limit=3"
		if cursor != "" {
			q += "&cursor=" + cursor
		}
		ws, next := listPage(t, e, aliceKey, q)
		for _, w := range ws {
			seen = append(seen, w["id"].(string))
		}
		if next == nil {
			if page != 2 || len(ws) != 1 {
				t.Fatalf("last page %d has %d", page, len(ws))
			}
			break
		}
		if len(ws) != 3 || next != ws[2]["id"] {
			t.Fatalf("page %d: %d items, next %v", page, len(ws), next)
		}
		cursor = next.(string)
	}
	if len(seen) != 7 {
		t.Fatalf("saw %d", len(seen))
	}
	for i := range seen {
		if seen[i] != ids[len(ids)-1-i] {
			t.Fatalf("order %v, want reverse of %v", seen, ids)
		}
	}
	// An exact page: no false next page.
	ws, next := listPage(t, e, aliceKey, "?limit=7")
	if len(ws) != 7 || next != nil {
		t.Fatalf("limit=7: %d, next %v", len(ws), next)
	}
	ws, next = listPage(t, e, aliceKey, "")
	if len(ws) != 7 || next != nil {
		t.Fatalf("default: %d, next %v", len(ws), next)
	}
	// By external id.
	ws, next = listPage(t, e, aliceKey, "?external_id=a-3")
	if len(ws) != 1 || ws[0]["id"] != ids[3] || next != nil {
		t.Fatalf("by external id: %v", ws)
	}
	if ws, _ = listPage(t, e, aliceKey, "?external_id=b-1"); len(ws) != 0 {
		t.Fatalf("bob's external id visible to alice: %v", ws)
	}
	if ws, _ = listPage(t, e, aliceKey, "?external_id=nope"); len(ws) != 0 {
		t.Fatal("unknown external id found")
	}
	// By status.
	if r := e.do(http.MethodPost, "/v1/withdrawals/"+ids[2]+"/cancel", aliceKey, nil); r.status != 200 {
		t.Fatalf("cancel: %d %s", r.status, r.raw)
	}
	if ws, _ = listPage(t, e, aliceKey, "?status=CANCELED"); len(ws) != 1 || ws[0]["id"] != ids[2] {
		t.Fatalf("canceled: %v", ws)
	}
	if ws, _ = listPage(t, e, aliceKey, "?status=pending"); len(ws) != 6 {
		t.Fatalf("pending: %d", len(ws))
	}
	if ws, _ = listPage(t, e, aliceKey, "?status=PENDING&external_id=a-2"); len(ws) != 0 {
		t.Fatalf("status and external id: %v", ws)
	}
	if ws, _ = listPage(t, e, bobKey, ""); len(ws) != 2 {
		t.Fatalf("bob sees %d", len(ws))
	}
	// Bad parameters.
	for q, field := range map[string]string{"?limit=0": "limit", "?limit=501": "limit", "?limit=x": "limit", "?limit=": "limit",
		"?status=DONE": "status", "?cursor=abc": "cursor", "?cursor=" + ids[0] + "x": "cursor",
		"?external_id=": "external_id", "?external_id=" + strings.Repeat("x", 129): "external_id"} {
		r := e.do(http.MethodGet, "/v1/withdrawals"+q, aliceKey, nil)
		if r.status != 400 {
			t.Fatalf("%s: %d %s", q, r.status, r.raw)
		}
		if code, f := r.errorOf(t); code != CodeInvalidParameter || f != field {
			t.Fatalf("%s: %s/%v", q, code, f)
		}
	}
	if ws, _ = listPage(t, e, aliceKey, "?limit=500"); len(ws) != 7 {
		t.Fatal("limit=500")
	}
}

func TestCancel(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	id := e.post(aliceKey, body("c-1")).json(t)["id"].(string)

	// Another client cannot cancel it (and cannot tell it exists).
	r := e.do(http.MethodPost, "/v1/withdrawals/"+id+"/cancel", bobKey, nil)
	if r.status != 404 {
		t.Fatalf("bob cancel: %d", r.status)
	}
	r = e.do(http.MethodPost, "/v1/withdrawals/"+id+"/cancel", aliceKey, nil)
	if r.status != 200 || r.json(t)["status"] != "CANCELED" {
		t.Fatalf("cancel: %d %s", r.status, r.raw)
	}
	checkWithdrawalShape(t, r.json(t))
	hs, err := e.st.History(ctx, id)
	if err != nil || len(hs) != 2 || hs[1].From != store.Pending || hs[1].To != store.Canceled || hs[1].Reason != "canceled by client" {
		t.Fatalf("history %+v %v", hs, err)
	}
	r = e.do(http.MethodPost, "/v1/withdrawals/"+id+"/cancel", aliceKey, nil)
	if code, _ := r.errorOf(t); r.status != 409 || code != CodeNotCancelable || !strings.Contains(string(r.raw), "CANCELED") {
		t.Fatalf("second cancel: %d %s", r.status, r.raw)
	}

	// While a signer has it (SIGNING, nothing recorded yet): the cancel wins the row, and the signer
	// then finds it CANCELED and records nothing (TestCancelRacesSigner races the two for real).
	id2 := e.post(aliceKey, body("c-2")).json(t)["id"].(string)
	if err := e.st.InTx(ctx, func(tx *sql.Tx) error {
		return e.st.Transition(ctx, tx, id2, store.Pending, store.Signing, "test", "signer", store.Change{})
	}); err != nil {
		t.Fatal(err)
	}
	r = e.do(http.MethodPost, "/v1/withdrawals/"+id2+"/cancel", aliceKey, nil)
	if r.status != 200 || r.json(t)["status"] != "CANCELED" {
		t.Fatalf("cancel signing: %d %s", r.status, r.raw)
	}
	if hs, err := e.st.History(ctx, id2); err != nil || hs[len(hs)-1].From != store.Signing || !strings.Contains(hs[len(hs)-1].Reason, "while signing") {
		t.Fatalf("history %+v %v", hs, err)
	}
	if r := e.do(http.MethodPost, "/v1/withdrawals/nope/cancel", aliceKey, nil); r.status != 404 {
		t.Fatalf("cancel unknown: %d", r.status)
	}
}

func TestOtherClientsAndUnknownIDs(t *testing.T) {
	e := newEnv(t)
	id := e.post(aliceKey, body("x-1")).json(t)["id"].(string)
	for _, p := range []string{"/v1/withdrawals/" + id, "/v1/withdrawals/" + id + "/history"} {
		r := e.do(http.MethodGet, p, bobKey, nil)
		if code, _ := r.errorOf(t); r.status != 404 || code != CodeNotFound {
			t.Fatalf("bob %s: %d %s", p, r.status, r.raw)
		}
		if r := e.do(http.MethodGet, p, aliceKey, nil); r.status != 200 {
			t.Fatalf("alice %s: %d", p, r.status)
		}
	}
	for _, p := range []string{"0190b2f6-0000-7000-8000-000000000000", "nope", strings.ToUpper(id), "%27%20OR%201=1", strings.Repeat("a", 300)} {
		if r := e.do(http.MethodGet, "/v1/withdrawals/"+p, aliceKey, nil); r.status != 404 {
			t.Fatalf("%s: %d", p, r.status)
		}
	}
	r := e.do(http.MethodGet, "/v1/nothing", aliceKey, nil)
	if code, _ := r.errorOf(t); r.status != 404 || code != CodeNotFound {
		t.Fatalf("unknown route: %d %s", r.status, r.raw)
	}
	r = e.do(http.MethodDelete, "/v1/withdrawals/"+id, aliceKey, nil)
	if code, _ := r.errorOf(t); r.status != 405 || code != CodeMethodNotAllowed {
		t.Fatalf("DELETE: %d %s", r.status, r.raw)
	}
}

func TestRenderLaterStates(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	id := e.post(aliceKey, body("r-1", "amount", "7")).json(t)["id"].(string)
	res, err := e.st.DB.ExecContext(ctx, `INSERT INTO sent_transactions (chain, chain_id, from_address, nonce, to_address,
		tx_hash, raw_tx, gas_limit, max_fee_per_gas, max_priority_fee, kind, source, status)
		VALUES ('local', 31337, ?, 42, ?, ?, x'00', 21000, '1', '1', 'withdrawal', 'signer', 'CONFIRMED')`,
		strings.ToLower(hotAddr), toAddr, "0x"+strings.Repeat("ab", 32))
	if err != nil {
		t.Fatal(err)
	}
	txID, _ := res.LastInsertId()
	if _, err := e.st.DB.ExecContext(ctx, `UPDATE withdrawals SET status = 'CONFIRMED', from_address = ?, sent_tx_id = ?,
		block_number = 1234 WHERE id = ?`, strings.ToLower(hotAddr), txID, id); err != nil {
		t.Fatal(err)
	}
	w := e.do(http.MethodGet, "/v1/withdrawals/"+id, aliceKey, nil).json(t)
	checkWithdrawalShape(t, w)
	for k, want := range map[string]any{"status": "CONFIRMED", "from": hotAddr, "nonce": 42.0, "tx_hash": "0x" + strings.Repeat("ab", 32),
		"block_number": 1234.0, "confirmations": 12.0, "error": nil, "amount": "7", "batch_id": nil} {
		if w[k] != want {
			t.Errorf("%s = %#v, want %#v", k, w[k], want)
		}
	}

	id2 := e.post(aliceKey, body("r-2")).json(t)["id"].(string)
	if err := e.st.InTx(ctx, func(tx *sql.Tx) error {
		typ, msg := "INSUFFICIENT_FUNDS", "hot wallet empty"
		return e.st.Transition(ctx, tx, id2, store.Pending, store.Failed, "permanent error", "signer", store.Change{ErrorType: &typ, ErrorMessage: &msg})
	}); err != nil {
		t.Fatal(err)
	}
	w = e.do(http.MethodGet, "/v1/withdrawals/"+id2, aliceKey, nil).json(t)
	ej, _ := w["error"].(map[string]any)
	if w["status"] != "FAILED" || ej["type"] != "INSUFFICIENT_FUNDS" || ej["message"] != "hot wallet empty" || len(ej) != 2 || w["confirmations"] != nil {
		t.Fatalf("failed withdrawal: %v", w)
	}
}

func TestChains(t *testing.T) {
	e := newEnv(t)
	r := e.do(http.MethodGet, "/v1/chains", aliceKey, nil)
	if r.status != 200 {
		t.Fatal(r.status)
	}
	var got any
	if err := json.Unmarshal(r.raw, &got); err != nil {
		t.Fatal(err)
	}
	var want any
	if err := json.Unmarshal([]byte(`{"chains":[
		{"name":"local","chain_id":31337,"confirmations":12,
		 "assets":[{"symbol":"POL","decimals":18,"address":null},{"symbol":"USDT","decimals":6,"address":"`+usdtAddr+`"}],
		 "hot_wallets":["`+hotAddr+`"]},
		{"name":"amoy","chain_id":80002,"confirmations":5,"assets":[{"symbol":"POL","decimals":18,"address":null}],"hot_wallets":[]}]}`), &want); err != nil {
		t.Fatal(err)
	}
	g, _ := json.Marshal(got)
	w, _ := json.Marshal(want)
	if !bytes.Equal(g, w) {
		t.Fatalf("chains\n got %s\nwant %s", g, w)
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("content type %q", ct)
	}
}

func TestOpenAPI(t *testing.T) {
	e := newEnv(t)
	r := e.do(http.MethodGet, "/openapi.json", "", nil)
	if r.status != 200 {
		t.Fatal(r.status)
	}
	var doc struct {
		OpenAPI    string                               `json:"openapi"`
		Paths      map[string]map[string]map[string]any `json:"paths"`
		Components struct {
			Schemas map[string]struct {
				Enum       []string       `json:"enum"`
				Properties map[string]any `json:"properties"`
				Required   []string       `json:"required"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(r.raw, &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.1.") {
		t.Fatalf("openapi %q", doc.OpenAPI)
	}
	// Every route served is documented, and every documented route is served.
	served := map[string]bool{}
	for _, rt := range e.srv.Echo().Routes() {
		if strings.Contains(rt.Path, "*") || rt.Method == "echo_route_any" {
			continue
		}
		p := rt.Path
		for _, seg := range strings.Split(p, "/") {
			if strings.HasPrefix(seg, ":") {
				p = strings.Replace(p, seg, "{"+seg[1:]+"}", 1)
			}
		}
		served[strings.ToLower(rt.Method)+" "+p] = true
	}
	documented := map[string]bool{}
	for p, ops := range doc.Paths {
		for m := range ops {
			if m == "parameters" {
				continue
			}
			documented[m+" "+p] = true
		}
	}
	for k := range served {
		if !documented[k] {
			t.Errorf("route %s is not in openapi.json", k)
		}
	}
	for k := range documented {
		if !served[k] {
			t.Errorf("openapi.json documents %s, which is not served", k)
		}
	}
	for _, want := range []string{"post /v1/withdrawals", "get /v1/withdrawals", "get /v1/withdrawals/{id}",
		"post /v1/withdrawals/{id}/cancel", "get /v1/withdrawals/{id}/history", "get /v1/chains", "get /healthz",
		"get /readyz", "get /metrics", "get /openapi.json"} {
		if !documented[want] {
			t.Errorf("%s missing", want)
		}
	}
	// The error codes documented are exactly the ones the server sends.
	enum := doc.Components.Schemas["ErrorCode"].Enum
	if len(enum) != len(codeStatus) {
		t.Errorf("ErrorCode enum has %d codes, server has %d", len(enum), len(codeStatus))
	}
	for _, c := range enum {
		st, ok := codeStatus[c]
		if !ok {
			t.Errorf("documented code %s is not sent", c)
		}
		if !strings.Contains(string(r.raw), fmt.Sprintf(`| %s | %d |`, c, st)) {
			t.Errorf("status table lacks | %s | %d |", c, st)
		}
	}
	// The withdrawal schema lists exactly the fields rendered.
	ws := doc.Components.Schemas["Withdrawal"]
	if len(ws.Properties) != len(withdrawalKeys) || len(ws.Required) != len(withdrawalKeys) {
		t.Errorf("Withdrawal schema has %d properties", len(ws.Properties))
	}
	for _, k := range withdrawalKeys {
		if _, ok := ws.Properties[k]; !ok {
			t.Errorf("Withdrawal schema lacks %s", k)
		}
	}
}

func TestHealthReadyMetrics(t *testing.T) {
	e := newEnv(t)
	if r := e.do(http.MethodGet, "/healthz", "", nil); r.status != 200 || r.json(t)["status"] != "ok" {
		t.Fatalf("healthz: %d %s", r.status, r.raw)
	}
	if r := e.do(http.MethodGet, "/readyz", "", nil); r.status != 200 {
		t.Fatalf("readyz: %d %s", r.status, r.raw)
	}
	e.ready.Store(errors.New("queue down"))
	if r := e.do(http.MethodGet, "/readyz", "", nil); r.status != 503 || !strings.Contains(string(r.raw), "queue down") {
		t.Fatalf("readyz with failing check: %d %s", r.status, r.raw)
	}
	e.post(aliceKey, body("m-1"))
	r := e.do(http.MethodGet, "/metrics", "", nil)
	for _, want := range []string{`sluice_api_requests_total{code="201",method="POST",route="/v1/withdrawals"} 1`,
		`sluice_api_withdrawals_created_total{asset="USDT",chain="local"} 1`, "sluice_api_request_duration_seconds_bucket", "go_goroutines"} {
		if !strings.Contains(string(r.raw), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// A missing dependency is an error naming it, not a panic or a server that fails later.
func TestNewNamesMissingDependency(t *testing.T) {
	st := openStore(t)
	full := Deps{Store: st, Queue: &outboxSender{}, Chains: testChains(), Gatherer: prometheus.NewRegistry()}
	for want, drop := range map[string]func(*Deps){
		"Store":    func(d *Deps) { d.Store = nil },
		"Queue":    func(d *Deps) { d.Queue = nil },
		"Chains":   func(d *Deps) { d.Chains = nil },
		"Gatherer": func(d *Deps) { d.Gatherer = nil },
	} {
		d := full
		drop(&d)
		if _, err := New(d, nil, NopMetrics()); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("without %s: %v, want an error naming it", want, err)
		}
	}
	if _, err := New(full, nil, nil); err == nil || !strings.Contains(err.Error(), "Metrics") {
		t.Errorf("without Metrics: %v", err)
	}
	if _, err := New(full, nil, NopMetrics()); err != nil {
		t.Errorf("complete deps, nil log: %v", err)
	}
}

func TestCorrelationID(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		hdr  []string
		want string // "" = generated
	}{
		{[]string{"X-Correlation-ID", "abc-123"}, "abc-123"},
		{[]string{"X-Request-ID", "req.42"}, "req.42"},
		{[]string{"X-Correlation-ID", "bad id!", "X-Request-ID", "fallback"}, "fallback"},
		{[]string{"X-Correlation-ID", strings.Repeat("a", 65)}, ""},
		{[]string{"X-Correlation-ID", "a\u00e9"}, ""},
		{nil, ""},
	} {
		r := e.do(http.MethodGet, "/v1/chains", aliceKey, nil, tc.hdr...)
		got := r.header.Get("X-Correlation-ID")
		if tc.want != "" && got != tc.want || tc.want == "" && (len(got) != 36 || !saneID(got)) {
			t.Errorf("%v: got %q", tc.hdr, got)
		}
	}
	// Also on errors.
	if r := e.do(http.MethodGet, "/v1/chains", "", nil, "X-Correlation-ID", "e-1"); r.header.Get("X-Correlation-ID") != "e-1" {
		t.Error("no correlation id on 401")
	}
}

func TestRateLimit(t *testing.T) {
	e := newEnv(t, func(d *Deps) { d.RateLimit, d.RateBurst = 0.5, 3 })
	for i := 0; i < 3; i++ {
		if r := e.do(http.MethodGet, "/v1/chains", aliceKey, nil); r.status != 200 {
			t.Fatalf("request %d: %d", i, r.status)
		}
	}
	r := e.do(http.MethodGet, "/v1/chains", aliceKey, nil)
	if code, _ := r.errorOf(t); r.status != 429 || code != CodeRateLimited || r.header.Get("Retry-After") == "" {
		t.Fatalf("over the limit: %d %s", r.status, r.raw)
	}
	// Per client: bob is unaffected.
	if r := e.do(http.MethodGet, "/v1/chains", bobKey, nil); r.status != 200 {
		t.Fatalf("bob: %d", r.status)
	}
}

func TestRunShutsDown(t *testing.T) {
	e := newEnv(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.srv.Serve(ctx, ln) }()
	res, err := http.Get("http://" + ln.Addr().String() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatal(res.StatusCode)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after cancel")
	}
	if _, err := http.Get("http://" + ln.Addr().String() + "/healthz"); err == nil {
		t.Fatal("still serving after shutdown")
	}
}
