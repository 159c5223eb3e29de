package app_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluice-custody/sluice/contracts"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/ethclient"

	"github.com/sluice-custody/sluice/internal/app"
	"github.com/sluice-custody/sluice/internal/config"
	"github.com/sluice-custody/sluice/internal/devmode"
	"github.com/sluice-custody/sluice/internal/queue"
	"github.com/sluice-custody/sluice/internal/testenv"
)

type withdrawal struct {
	ID            string  `json:"id"`
	ExternalID    string  `json:"external_id"`
	Asset         string  `json:"asset"`
	To            string  `json:"to"`
	Amount        string  `json:"amount"`
	Status        string  `json:"status"`
	From          *string `json:"from"`
	Nonce         *uint64 `json:"nonce"`
	TxHash        *string `json:"tx_hash"`
	BlockNumber   *uint64 `json:"block_number"`
	Confirmations *uint64 `json:"confirmations"`
	Error         *struct {
		Type    string `json:"type"`
		Message string `json:"message"`
	} `json:"error"`
}

// TestEndToEnd posts withdrawals over HTTP, half native and half ERC-20 to fresh recipients, lets the
// real signer, broadcaster and monitor take them to 12 confirmations on a real node, and checks every
// recipient's balance on chain and the services' counters on /metrics, with each queue backend. The
// MySQL run is `sluice all` (every service in one process, one /metrics); the SQS run is one App per
// service, as separate processes are deployed, each with its own registry and health port.
func TestEndToEnd(t *testing.T) {
	for _, backend := range []string{"mysql", "sqs"} {
		t.Run(backend, func(t *testing.T) {
			q := config.Queue{Backend: backend, VisibilityTimeout: config.Duration{Duration: 10 * time.Second},
				WaitTime: config.Duration{Duration: 200 * time.Millisecond}}
			if backend == "sqs" {
				// The SQS emulator (npm local-aws-sqs) stands in for AWS; the outbox relays to it.
				q.SQS = config.SQS{Endpoint: testenv.SQSEndpoint(t), Region: "us-east-1", Prefix: testenv.UniqueName(t) + "-"}
			}
			runEndToEnd(t, q, 20, backend == "sqs")
		})
	}
}

// pipeline are the services whose counters the test checks against the withdrawals.
var pipeline = []string{"signer", "broadcaster", "monitor"}

func runEndToEnd(t *testing.T, q config.Queue, n int, split bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	st, err := devmode.Start(ctx, devmode.Options{
		RPCAddr: "127.0.0.1:0", APIAddr: testenv.FreeAddr(t), BlockTime: 200 * time.Millisecond, Confirmations: 12,
		DatabaseDSN: testenv.MySQLDSN(t), RedisAddr: testenv.RedisAddr(t), KeystoreDir: t.TempDir(), Queue: q,
	}, log)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	defer st.Close()
	if err := st.App.Queue.Setup(ctx); err != nil {
		t.Fatalf("queue setup: %v", err)
	}
	// The gauges are read often enough to be seen within the run.
	st.Config.Metrics.GaugeInterval = config.Duration{Duration: 200 * time.Millisecond}
	runCtx, stop := context.WithCancel(ctx)
	runErr := make(chan error, len(app.Services))
	running := 0
	metricsURL := map[string]string{} // service → where its counters are scraped
	var keyless []*app.App            // split mode: the processes that must never hold a key
	recoveryURL := st.APIURL          // where recovery's health and metrics are served
	if split {
		for _, name := range pipeline {
			svc := st.Config.Services[name]
			svc.Listen = testenv.FreeAddr(t)
			st.Config.Services[name] = svc
			metricsURL[name] = "http://" + svc.Listen + "/metrics"
		}
		go func() { runErr <- st.App.Run(runCtx, "api") }()
		running++
		// Only the signer holds keys. The broadcaster and monitor start with a key source that cannot
		// be opened (no keystore there, no password): were they to open keys, they would fail to start.
		noKeys := *st.Config
		noKeys.Keys.Dir = filepath.Join(t.TempDir(), "no-keystore-here")
		noKeys.Keys.PasswordEnv = "SLUICE_TEST_NO_SUCH_VARIABLE"
		for _, name := range pipeline {
			cfg := &noKeys
			if name == "signer" {
				cfg = st.Config
			}
			a, err := app.Open(ctx, cfg, log)
			if err != nil {
				t.Fatalf("open %s: %v", name, err)
			}
			defer a.Close()
			if name == "signer" {
				a.Keys = st.App.Keys
			} else {
				keyless = append(keyless, a)
			}
			go func() { runErr <- a.Run(runCtx, name) }()
			running++
		}
		// Recovery runs as its own process too: it has nothing to do on a healthy run but sweep.
		rsvc := st.Config.Services["recovery"]
		rsvc.Listen = testenv.FreeAddr(t)
		st.Config.Services["recovery"] = rsvc
		ra, err := app.Open(ctx, st.Config, log)
		if err != nil {
			t.Fatalf("open recovery: %v", err)
		}
		defer ra.Close()
		ra.Keys = st.App.Keys
		go func() { runErr <- ra.Run(runCtx, "recovery") }()
		running++
		recoveryURL = "http://" + rsvc.Listen
	} else {
		go func() { runErr <- st.App.Run(runCtx, app.Services...) }()
		running++
		for _, name := range pipeline {
			metricsURL[name] = st.APIURL + "/metrics" // the process's one registry
		}
	}
	api := testenv.API{T: t, Base: st.APIURL, Key: st.APIKey}
	testenv.WaitReady(t, st.APIURL, runErr)

	type posted struct {
		w      withdrawal
		to     common.Address
		amount *big.Int // base units
	}
	var all []posted
	for i := 0; i < n; i++ {
		to := testenv.NewAccount(t).Address
		body := map[string]string{"external_id": fmt.Sprintf("e2e-%d", i), "chain": "local", "to": to.Hex()}
		var amount *big.Int
		if i%2 == 0 {
			body["asset"], body["amount"] = devmode.Native, fmt.Sprintf("0.%03d5", i+1) // e.g. 0.0015 POL
			amount = new(big.Int).Mul(big.NewInt(int64((i+1)*10+5)), big.NewInt(1e14))
		} else {
			body["asset"], body["amount"] = devmode.Token, fmt.Sprintf("%d.25", i)
			amount = big.NewInt(int64(i)*1_000_000 + 250_000)
		}
		var w withdrawal
		if code, raw := api.Do("POST", "/v1/withdrawals", body, &w); code != http.StatusCreated {
			t.Fatalf("post %d: status %d: %s", i, code, raw)
		}
		if w.Status != "PENDING" && w.Status != "SIGNING" && w.Status != "SIGNED" {
			t.Fatalf("new withdrawal status %q", w.Status)
		}
		all = append(all, posted{w: w, to: to, amount: amount})
	}

	deadline := time.Now().Add(2 * time.Minute)
	for i := range all {
		for {
			var w withdrawal
			if code, raw := api.Do("GET", "/v1/withdrawals/"+all[i].w.ID, nil, &w); code != http.StatusOK {
				t.Fatalf("get %s: %d: %s", all[i].w.ID, code, raw)
			}
			all[i].w = w
			if w.Status == "CONFIRMED" {
				break
			}
			if w.Status == "FAILED" || w.Status == "CANCELED" {
				t.Fatalf("withdrawal %s ended %s: %+v", w.ExternalID, w.Status, w.Error)
			}
			if time.Now().After(deadline) {
				t.Fatalf("withdrawal %s still %s", w.ExternalID, w.Status)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	eth, err := ethclient.DialContext(ctx, st.Chain.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer eth.Close()
	head, err := eth.BlockNumber(ctx)
	if err != nil {
		t.Fatal(err)
	}
	type fromNonce struct {
		from  string
		nonce uint64
	}
	byNonce := map[fromNonce]string{} // withdrawals batched into one tx share its nonce and hash
	isHot := map[string]bool{}
	for _, h := range st.HotWallets {
		isHot[h.Hex()] = true
	}
	for _, p := range all {
		w := p.w
		if w.TxHash == nil || w.Nonce == nil || w.BlockNumber == nil || w.From == nil || !isHot[*w.From] {
			t.Fatalf("confirmed withdrawal %s lacks chain fields (or is not from a hot wallet): %+v", w.ExternalID, w)
		}
		if head-*w.BlockNumber+1 < 12 {
			t.Fatalf("withdrawal %s confirmed at %d confirmations", w.ExternalID, head-*w.BlockNumber+1)
		}
		k := fromNonce{*w.From, *w.Nonce}
		if h, ok := byNonce[k]; ok && h != *w.TxHash {
			t.Fatalf("nonce %d of %s carries two transactions: %s and %s", *w.Nonce, *w.From, h, *w.TxHash)
		}
		byNonce[k] = *w.TxHash
		got := balance(t, ctx, eth, st, w.Asset, p.to)
		if got.Cmp(p.amount) != 0 {
			t.Fatalf("recipient %s of %s holds %s %s, want %s", p.to, w.ExternalID, got, w.Asset, p.amount)
		}
	}
	// Every recorded transaction of every hot wallet (payouts, and the batch contract's allowance) is
	// mined, with nonces 0..n-1 and no gap.
	var recorded int64
	for _, hot := range st.HotWallets {
		var n, maxNonce int64
		if err := st.App.Store.DB.QueryRowContext(ctx, `SELECT COUNT(*), COALESCE(MAX(nonce), -1) FROM sent_transactions
			WHERE from_address = ?`, hot.Hex()).Scan(&n, &maxNonce); err != nil {
			t.Fatal(err)
		}
		mined, err := eth.NonceAt(ctx, hot, nil)
		if err != nil || int64(mined) != n || maxNonce != n-1 {
			t.Fatalf("hot wallet %s mined nonce %d (%v), %d recorded txs up to nonce %d: want all mined, no gap", hot, mined, err, n, maxNonce)
		}
		recorded += n
	}
	t.Logf("%d withdrawals paid in %d transactions", len(all), recorded)

	perAsset := map[string]float64{}
	for _, p := range all {
		perAsset[p.w.Asset]++
	}
	checkCounters(t, metricsURL, split, perAsset, float64(recorded))
	urls := []string{st.APIURL + "/metrics"} // the API's process (all of them when not split)
	if split {
		for _, name := range pipeline {
			urls = append(urls, metricsURL[name])
		}
	}
	checkPipelineMetrics(t, ctx, st, urls, metricsURL["monitor"], q.Backend, len(all))
	for _, a := range keyless {
		if a.Keys != nil {
			t.Errorf("a broadcaster or monitor process holds a key source: %v", a.Keys)
		}
	}
	if resp, err := http.Get(recoveryURL + "/readyz"); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("recovery /readyz: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	if got := scrape(t, recoveryURL+"/metrics")[`sluice_recovery_sweep_seconds_count{chain="local"}`]; got < 1 {
		t.Errorf("recovery /metrics: %v stuck-transaction sweeps, want some", got)
	}

	stop()
	for range running {
		select {
		case err := <-runErr:
			if err != nil {
				t.Fatalf("services stopped with %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("services did not stop within 30s of cancel")
		}
	}
}

// checkCounters scrapes each pipeline service's /metrics and checks its counters against what the
// chain and the database say happened: every withdrawal (perAsset of them per asset, all CONFIRMED)
// signed, broadcast and confirmed exactly once, every recorded transaction (sent of them) broadcast
// once, nothing failed. Split into one process per service, each endpoint must also show only its own
// service's metrics.
func checkCounters(t *testing.T, metricsURL map[string]string, split bool, perAsset map[string]float64, sent float64) {
	t.Helper()
	var total float64
	for _, n := range perAsset {
		total += n
	}
	scraped := map[string]map[string]float64{}
	for _, name := range pipeline {
		scraped[name] = scrape(t, metricsURL[name])
	}
	want := func(service, series string, v float64) {
		t.Helper()
		if got, ok := scraped[service][series]; !ok || got != v {
			t.Errorf("%s /metrics: %s = %v (exposed %v), want %v", service, series, got, ok, v)
		}
	}
	for asset, n := range perAsset {
		labels := fmt.Sprintf(`{asset=%q,chain="local"}`, asset)
		want("signer", "sluice_signer_withdrawals_signed_total"+labels, n)
		want("broadcaster", "sluice_broadcaster_withdrawals_broadcast_total"+labels, n)
		want("monitor", "sluice_monitor_withdrawals_confirmed_total"+labels, n)
	}
	want("broadcaster", `sluice_broadcaster_transactions_sent_total{chain="local"}`, sent)
	want("broadcaster", `sluice_broadcaster_broadcast_seconds_count{chain="local"}`, total)
	want("monitor", `sluice_monitor_confirm_seconds_count{chain="local"}`, total)
	for series := range scraped["monitor"] {
		if strings.HasPrefix(series, "sluice_monitor_withdrawals_failed_total") {
			t.Errorf("monitor /metrics: %s on a run where every withdrawal confirmed", series)
		}
	}
	for _, name := range pipeline {
		if _, ok := scraped[name]["go_goroutines"]; !ok {
			t.Errorf("%s /metrics lacks the Go collector", name)
		}
		if !split {
			continue
		}
		for series := range scraped[name] {
			for _, other := range append([]string{"api"}, pipeline...) {
				if other != name && strings.HasPrefix(series, "sluice_"+other+"_") {
					t.Errorf("%s /metrics shows %s: a process must show only its own service", name, series)
				}
			}
		}
	}
}

// checkPipelineMetrics checks the pipeline-wide metrics against the database and the chain: the
// transitions counter matches the withdrawals' history row for row, every stage was timed once per
// withdrawal, the queue, DLQ, wallet and nonce gauges exist with sane values, the RPC counters name
// their endpoint without its URL, and gas and fees were counted for the hot wallet. urls are every
// process's /metrics (summed); monitorURL is the process that runs the gauge worker.
func checkPipelineMetrics(t *testing.T, ctx context.Context, st *devmode.Stack, urls []string, monitorURL, backend string, n int) {
	t.Helper()
	type key struct{ from, to string }
	history := map[key]float64{}
	rows, err := st.App.Store.DB.QueryContext(ctx, `SELECT COALESCE(from_status, ''), to_status, COUNT(*) FROM withdrawal_history GROUP BY 1, 2`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var k key
		var c float64
		if err := rows.Scan(&k.from, &k.to, &c); err != nil {
			t.Fatal(err)
		}
		history[k] = c
	}
	rows.Close()
	if history[key{"BROADCASTED", "CONFIRMED"}] != float64(n) || history[key{"", "PENDING"}] != float64(n) {
		t.Fatalf("history %v: want %d accepted and %d confirmed", history, n, n)
	}
	hot := st.HotWallet.Hex()
	var problems []string
	// A transition is counted right after its commit; the last ones may trail the API's answer a little.
	deadline := time.Now().Add(10 * time.Second)
	for {
		problems = problems[:0]
		bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
		all := map[string]float64{}
		for _, u := range urls {
			for series, v := range scrape(t, u) {
				all[series] += v
			}
		}
		mon := scrape(t, monitorURL)
		counted := map[key]float64{}
		stages := map[string]float64{}
		for series, v := range all {
			name, labels := parseSeries(series)
			switch name {
			case "sluice_withdrawal_transitions_total":
				if labels["chain"] != "local" || (labels["asset"] != devmode.Native && labels["asset"] != devmode.Token) {
					bad("%s: unexpected labels", series)
				}
				counted[key{labels["from"], labels["to"]}] += v
			case "sluice_withdrawal_stage_seconds_count":
				stages[labels["stage"]] += v
			case "sluice_rpc_requests_total", "sluice_rpc_errors_total", "sluice_rpc_latency_seconds_count", "sluice_rpc_breaker_state":
				if labels["endpoint"] == "" || strings.Contains(labels["endpoint"], "http") || strings.Contains(labels["endpoint"], "/") {
					bad("%s: endpoint label is not a bare name", series)
				}
			}
		}
		for k, c := range history {
			if counted[k] != c {
				bad("transitions %q→%q counted %v, history has %v", k.from, k.to, counted[k], c)
			}
		}
		for k, c := range counted {
			if _, ok := history[k]; !ok {
				bad("transitions %q→%q counted %v, history has none", k.from, k.to, c)
			}
		}
		wantStages := map[string]float64{"signed": history[key{"SIGNING", "SIGNED"}], "broadcast": history[key{"SIGNED", "BROADCASTED"}],
			"mined": float64(n), "confirmed": float64(n)}
		for stage, want := range wantStages {
			if stages[stage] != want {
				bad("stage %s timed %v times, want %v", stage, stages[stage], want)
			}
		}
		var rpc, breakers float64
		for series, v := range all {
			if strings.HasPrefix(series, `sluice_rpc_requests_total{chain="local",`) {
				rpc += v
			}
			if strings.HasPrefix(series, `sluice_rpc_breaker_state{chain="local",`) {
				breakers++
				if v != 0 {
					bad("%s = %v, want 0 (closed)", series, v)
				}
			}
		}
		if rpc == 0 || breakers == 0 {
			bad("sluice_rpc_requests_total for chain local sum to %v, %v breaker gauges: want both > 0", rpc, breakers)
		}
		var gas, fees float64
		for _, h := range st.HotWallets {
			wl := fmt.Sprintf(`{chain="local",wallet=%q}`, h.Hex())
			gas, fees = gas+all["sluice_gas_used_total"+wl], fees+all["sluice_fees_paid_wei_total"+wl]
		}
		if gas <= 0 || fees <= 0 {
			bad("gas %v, fees %v for the hot wallets: want both > 0", gas, fees)
		}
		for _, q := range queue.AllQueues() {
			d, ok := mon[fmt.Sprintf(`sluice_queue_depth{queue=%q}`, q)]
			if !ok || d < 0 {
				bad("sluice_queue_depth of %s: %v (exposed %v)", q, d, ok)
			}
			if backend == "mysql" {
				if a, ok := mon[fmt.Sprintf(`sluice_queue_oldest_age_seconds{queue=%q}`, q)]; !ok || a < 0 {
					bad("sluice_queue_oldest_age_seconds of %s: %v (exposed %v)", q, a, ok)
				}
			}
		}
		for _, q := range queue.WorkQueues {
			if d, ok := mon[fmt.Sprintf(`sluice_dlq_depth{queue=%q}`, queue.DLQFor(q))]; !ok || d != 0 {
				bad("sluice_dlq_depth of %s: %v (exposed %v), want 0", queue.DLQFor(q), d, ok)
			}
		}
		for _, asset := range []string{devmode.Native, devmode.Token} {
			if b, ok := mon[fmt.Sprintf(`sluice_wallet_balance{asset=%q,chain="local",wallet=%q}`, asset, hot)]; !ok || b <= 0 {
				bad("sluice_wallet_balance of %s: %v (exposed %v), want > 0", asset, b, ok)
			}
		}
		for _, kind := range []string{"pending_minus_latest", "redis_minus_chain"} {
			if v, ok := mon[fmt.Sprintf(`sluice_nonce_lag{chain="local",kind=%q,wallet=%q}`, kind, hot)]; !ok || v < 0 {
				bad("sluice_nonce_lag %s: %v (exposed %v)", kind, v, ok)
			}
		}
		if len(problems) == 0 || time.Now().After(deadline) {
			t.Logf("transitions %v; stages timed %v; %v RPC requests; gas %v, fees %v wei", counted, stages, rpc,
				gas, fees)
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, p := range problems {
		t.Error(p)
	}
}

// parseSeries splits an exposed series into its name and labels (values without escapes, as ours are).
func parseSeries(series string) (string, map[string]string) {
	name, rest, ok := strings.Cut(series, "{")
	labels := map[string]string{}
	if !ok {
		return name, labels
	}
	for _, kv := range strings.Split(strings.TrimSuffix(rest, "}"), ",") {
		k, v, _ := strings.Cut(kv, "=")
		labels[k] = strings.Trim(v, `"`)
	}
	return name, labels
}

// scrape reads a Prometheus text exposition into series → value, a series written as exposed:
// name{label="value",…} with the labels in their exposed (sorted) order.
func scrape(t *testing.T, url string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("scrape %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape %s: %d %v", url, resp.StatusCode, err)
	}
	out := map[string]float64{}
	for _, line := range strings.Split(string(body), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			t.Fatalf("scrape %s: bad line %q", url, line)
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("scrape %s: bad value in %q: %v", url, line, err)
		}
		out[line[:i]] = v
	}
	return out
}

func balance(t *testing.T, ctx context.Context, eth *ethclient.Client, st *devmode.Stack, asset string, who common.Address) *big.Int {
	t.Helper()
	if asset == devmode.Native {
		b, err := eth.BalanceAt(ctx, who, nil)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	b, err := contracts.TokenBalance(ctx, eth, st.Contracts.USDT, who)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
