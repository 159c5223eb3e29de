package deploy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image/png"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluice-custody/sluice/internal/app"
	"github.com/sluice-custody/sluice/internal/config"
	"github.com/sluice-custody/sluice/internal/devmode"
	"github.com/sluice-custody/sluice/internal/testenv"
)

// mustReturnData are the dashboard panels whose every query must return data once withdrawals have
// flowed: the pipeline's counters and latencies that exist today.
var mustReturnData = []string{
	"Withdrawals accepted / s",
	"Withdrawals signed / s",
	"Withdrawals broadcast / s",
	"Withdrawals confirmed / s",
	"Withdrawals confirmed (total)",
	"Transactions signed / s by kind",
	"Accepted → confirmed (p50, p99)",
	"Signing time (p99)",
	"Broadcast time (p99)",
	"Messages handled / s",
	"Handler time (p99)",
	"Transactions sent / s",
	"Processes up",
	"State transitions / s",
	"Time from accepted, per stage (p99)",
	"Time from accepted, per stage (p50)",
	"Queue depth",
	"Oldest message age",
	"DLQ depth",
	"Wallet balance",
	"Nonce lag",
	"RPC calls / s",
	"RPC latency (p99)",
	"Circuit breaker (0 closed, 1 half-open, 2 open)",
	"Gas used / s",
	"Fees paid per hour (native coin)",
}

// mustReturnDataAfterObs are the panels that need what a healthy run of this test does not make: a
// balance threshold for the dev wallet (the account manager's configuration) and RPC errors. They are
// only required to parse.
var mustReturnDataAfterObs = []string{
	"RPC error ratio",
	"Distance to threshold",
}

type dashPanel struct {
	Type    string      `json:"type"`
	Title   string      `json:"title"`
	Panels  []dashPanel `json:"panels"`
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
}

// dashboardPanels are the panels of deploy/grafana/sluice.json that query something, by title.
func dashboardPanels(t testing.TB) map[string][]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "deploy/grafana/sluice.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		UID    string      `json:"uid"`
		Panels []dashPanel `json:"panels"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("sluice.json: %v", err)
	}
	out := map[string][]string{}
	var walk func([]dashPanel)
	walk = func(ps []dashPanel) {
		for _, p := range ps {
			walk(p.Panels)
			if p.Type == "row" {
				continue
			}
			if _, dup := out[p.Title]; dup {
				t.Errorf("two panels are titled %q", p.Title)
			}
			for _, tg := range p.Targets {
				out[p.Title] = append(out[p.Title], tg.Expr)
			}
			if len(out[p.Title]) == 0 {
				t.Errorf("panel %q has no query", p.Title)
			}
		}
	}
	walk(d.Panels)
	return out
}

// promQL turns a dashboard query into plain PromQL: every chain ($chain's "All") and Grafana's rate
// interval.
func promQL(expr string) string {
	return strings.NewReplacer("$chain", ".*", "$__rate_interval", "30s").Replace(expr)
}

// prometheus is a real Prometheus server the test started.
type prometheus struct {
	t    testing.TB
	base string
}

// startPrometheus runs Prometheus scraping targets every second, with the alert rules loaded.
func startPrometheus(t testing.TB, targets ...string) *prometheus {
	t.Helper()
	bin := tool(t, "prometheus", "prometheus")
	dir, root := t.TempDir(), repoRoot(t)
	cfg := fmt.Sprintf(`global: {scrape_interval: 1s, evaluation_interval: 1s}
rule_files: [%q, %q]
scrape_configs:
  - job_name: sluice-all
    static_configs: [{targets: %q}]
`, filepath.Join(root, "deploy/prometheus/alerts.yml"), filepath.Join(root, "deploy/prometheus/thresholds.yml"), targets)
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := testenv.FreeAddr(t)
	cmd := exec.Command(bin, "--config.file="+cfgPath, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--log.level=warn")
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("start prometheus: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("prometheus log:\n%s", logs.String())
		}
	})
	p := &prometheus{t: t, base: "http://" + addr}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if resp, err := http.Get(p.base + "/-/ready"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("prometheus not ready in 30 s:\n%s", logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// apiAnswer is Prometheus' HTTP API envelope.
type apiAnswer struct {
	Status    string          `json:"status"`
	ErrorType string          `json:"errorType"`
	Error     string          `json:"error"`
	Data      json.RawMessage `json:"data"`
}

func (p *prometheus) get(path string, q url.Values) (apiAnswer, error) {
	resp, err := http.Get(p.base + path + "?" + q.Encode())
	if err != nil {
		return apiAnswer{}, err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var a apiAnswer
	if err := json.Unmarshal(raw, &a); err != nil {
		return apiAnswer{}, fmt.Errorf("%s: %v: %s", path, err, raw)
	}
	return a, nil
}

// query evaluates expr now: the number of series (or 1 for a scalar) and the error Prometheus gives.
func (p *prometheus) query(expr string) (int, error) {
	a, err := p.get("/api/v1/query", url.Values{"query": {expr}})
	if err != nil {
		return 0, err
	}
	if a.Status != "success" {
		return 0, fmt.Errorf("%s: %s", a.ErrorType, a.Error)
	}
	var d struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	}
	if err := json.Unmarshal(a.Data, &d); err != nil {
		return 0, err
	}
	if d.ResultType == "scalar" || d.ResultType == "string" {
		return 1, nil
	}
	var series []json.RawMessage
	if err := json.Unmarshal(d.Result, &series); err != nil {
		return 0, err
	}
	return len(series), nil
}

// TestDashboardAndAlertsAgainstPrometheus runs the dev stack (embedded chain, real MariaDB and Redis, every
// service in one process) with a real Prometheus scraping it, posts withdrawals, and evaluates every
// dashboard query and every alert expression through Prometheus' HTTP API: each must parse, and the
// pipeline panels must return data. Then it screenshots Prometheus' graph page in headless Chromium.
func TestDashboardAndAlertsAgainstPrometheus(t *testing.T) {
	t.Parallel()
	panels := dashboardPanels(t)
	for _, list := range [][]string{mustReturnData, mustReturnDataAfterObs} {
		for _, title := range list {
			if _, ok := panels[title]; !ok {
				t.Errorf("no panel titled %q in sluice.json", title)
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	st, err := devmode.Start(ctx, devmode.Options{
		RPCAddr: "127.0.0.1:0", APIAddr: testenv.FreeAddr(t), BlockTime: 200 * time.Millisecond, Confirmations: 3,
		DatabaseDSN: testenv.MySQLDSN(t), RedisAddr: testenv.RedisAddr(t), KeystoreDir: t.TempDir(),
		Queue: devQueue(),
	}, log)
	if err != nil {
		t.Fatalf("start dev stack: %v", err)
	}
	defer st.Close()
	if err := st.App.Queue.Setup(ctx); err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	runErr := make(chan error, 1)
	go func() { runErr <- st.App.Run(runCtx, app.Services...) }()
	defer func() { stop(); <-runErr }()
	testenv.WaitReady(t, st.APIURL, runErr)

	prom := startPrometheus(t, strings.TrimPrefix(st.APIURL, "http://"))
	api := testenv.API{T: t, Base: st.APIURL, Key: st.APIKey}
	const n = 6
	for i := range n {
		body := map[string]string{"external_id": fmt.Sprintf("dash-%d", i), "chain": "local",
			"to": testenv.NewAccount(t).Address.Hex(), "asset": devmode.Native, "amount": "0.01"}
		if i%2 == 1 {
			body["asset"], body["amount"] = devmode.Token, "1.5"
		}
		if code, raw := api.Do("POST", "/v1/withdrawals", body, nil); code != http.StatusCreated {
			t.Fatalf("post %d: %d %s", i, code, raw)
		}
	}
	// Prometheus itself must see them all confirmed; then two more scrapes so every rate has its samples.
	deadline := time.Now().Add(90 * time.Second)
	for {
		if k, err := prom.query(fmt.Sprintf("sum(sluice_monitor_withdrawals_confirmed_total) >= %d", n)); err == nil && k == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Prometheus did not see %d confirmed withdrawals in 90 s", n)
		}
		time.Sleep(250 * time.Millisecond)
	}
	time.Sleep(2500 * time.Millisecond)

	must := map[string]bool{}
	for _, title := range mustReturnData {
		must[title] = true
	}
	queries, empty := 0, 0
	for title, exprs := range panels {
		for _, e := range exprs {
			queries++
			k, err := prom.query(promQL(e))
			if err != nil {
				t.Errorf("panel %q: %s: %v", title, e, err)
				continue
			}
			if k == 0 {
				empty++
				if must[title] {
					t.Errorf("panel %q returns no data: %s", title, promQL(e))
				}
			}
		}
	}
	rules := alertRules(t)
	for _, r := range rules {
		if _, err := prom.query(r.Expr); err != nil {
			t.Errorf("alert %s: %v", r.Alert, err)
		}
	}
	checkRulesLoaded(t, prom, len(rules))
	t.Logf("%d dashboard queries in %d panels and %d alert expressions evaluated; %d queries returned no data (the obs metrics: %d panels listed to extend)",
		queries, len(panels), len(rules), empty, len(mustReturnDataAfterObs))

	screenshot(t, prom, `sum by (chain, asset) (sluice_monitor_withdrawals_confirmed_total)`)
}

// checkRulesLoaded: Prometheus loaded every alert of alerts.yml and evaluated each without error.
func checkRulesLoaded(t *testing.T, prom *prometheus, want int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		a, err := prom.get("/api/v1/rules", url.Values{"type": {"alert"}})
		if err != nil {
			t.Fatal(err)
		}
		var d struct {
			Groups []struct {
				Rules []struct {
					Name      string `json:"name"`
					Health    string `json:"health"`
					LastError string `json:"lastError"`
				} `json:"rules"`
			} `json:"groups"`
		}
		if err := json.Unmarshal(a.Data, &d); err != nil {
			t.Fatal(err)
		}
		got, ok, problems := 0, 0, []string{}
		for _, g := range d.Groups {
			for _, r := range g.Rules {
				got++
				if r.Health == "ok" {
					ok++
				} else {
					problems = append(problems, fmt.Sprintf("%s: %s %s", r.Name, r.Health, r.LastError))
				}
			}
		}
		if got == want && ok == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Prometheus loaded %d alert rules (%d healthy), want %d: %v", got, ok, want, problems)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// screenshot saves Prometheus' graph page for expr as a PNG, rendered by headless Chromium, into
// $SLUICE_SCREENSHOT_DIR (kept) or the test's temporary directory, and checks it is a real picture.
func screenshot(t *testing.T, prom *prometheus, expr string) {
	t.Helper()
	chromium := tool(t, "chromium", "chromium")
	dir := os.Getenv("SLUICE_SCREENSHOT_DIR")
	if dir == "" {
		dir = t.TempDir()
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "prometheus-graph.png")
	page := prom.base + "/graph?" + url.Values{"g0.expr": {expr}, "g0.tab": {"0"}, "g0.range_input": {"1m"}}.Encode()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
		"--user-data-dir="+t.TempDir(), "--virtual-time-budget=8000", "--hide-scrollbars",
		"--screenshot="+out, "--window-size=1400,900", page)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("chromium: %v\n%s", err, b)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatalf("no screenshot: %v", err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("screenshot is not a PNG: %v", err)
	}
	b := img.Bounds()
	if b.Dx() != 1400 || b.Dy() != 900 {
		t.Errorf("screenshot is %dx%d, want 1400x900", b.Dx(), b.Dy())
	}
	colors := map[uint32]bool{}
	for y := b.Min.Y; y < b.Max.Y; y += 7 {
		for x := b.Min.X; x < b.Max.X; x += 7 {
			r, g, bl, _ := img.At(x, y).RGBA()
			colors[r>>8<<16|g>>8<<8|bl>>8] = true
		}
	}
	if len(colors) < 8 {
		t.Errorf("screenshot has %d colours: a blank page", len(colors))
	}
	t.Logf("screenshot of Prometheus' graph page (%s): %s", expr, out)
}

// devQueue is the MySQL queue with short waits, so the pipeline moves in a few seconds.
func devQueue() config.Queue {
	return config.Queue{Backend: "mysql", VisibilityTimeout: config.Duration{Duration: 10 * time.Second},
		WaitTime: config.Duration{Duration: 200 * time.Millisecond}}
}
