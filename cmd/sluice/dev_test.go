package main_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-custody/sluice/contracts"
	"github.com/sluice-custody/sluice/internal/testenv"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/ethclient"
)

// devBin is the binary `make dev` runs, built the way it builds it.
var devBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "sluice-dev-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	devBin = filepath.Join(dir, "sluice-dev")
	code := 1
	if out, err := exec.Command("make", "-s", "-C", "../..", "dev-build", "DEV_BIN="+devBin).CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "make dev-build: %v\n%s", err, out)
	} else {
		code = m.Run()
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

// devCommand is `sluice dev` on free ports with the embedded database and Redis, and its own TMPDIR so a
// test can see what it leaves behind.
func devCommand(t *testing.T, key string, args ...string) (cmd *exec.Cmd, apiAddr, rpcAddr, tmp string) {
	apiAddr, rpcAddr, tmp = testenv.FreeAddr(t), testenv.FreeAddr(t), t.TempDir()
	cmd = exec.Command(devBin, append([]string{"dev", "--api-addr", apiAddr, "--rpc-addr", rpcAddr, "--admin-addr", testenv.FreeAddr(t)}, args...)...)
	cmd.Env = append(os.Environ(), "SLUICE_API_KEY="+key, "SLUICE_DATABASE_DSN=", "SLUICE_REDIS_ADDR=", "TMPDIR="+tmp)
	return cmd, apiAddr, rpcAddr, tmp
}

// TestDevMode runs `sluice dev` as a user does (the built binary, embedded chain, database and Redis,
// nothing else) and treats it as an integrator would: 40 quick withdrawals of both assets to fresh
// recipients, some replayed, some invalid, one with a wrong key; every valid one must be CONFIRMED
// with the recipient holding exactly its amount, and Ctrl-C must stop it cleanly.
func TestDevMode(t *testing.T) {
	const key = "sk_test_dev_mode_0123456789"
	cmd, apiAddr, rpcAddr, tmp := devCommand(t, key, "--block-time", "200ms")
	stdout, _ := cmd.StdoutPipe()
	var logs bytes.Buffer
	cmd.Stderr = &logs
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		_ = cmd.Process.Kill()
		if t.Failed() {
			t.Logf("sluice dev logs (tail):\n%s", tail(logs.String(), 4000))
		}
	}()
	banner := readBanner(t, stdout)
	for _, want := range []string{"http://" + apiAddr, key, "http://" + rpcAddr, "USDT", "POL", "curl"} {
		if !strings.Contains(banner, want) {
			t.Fatalf("banner lacks %q:\n%s", want, banner)
		}
	}
	t.Logf("ready after %s", time.Since(start).Round(time.Millisecond))
	checkDevAdmin(t, banner)
	base := "http://" + apiAddr
	api := testenv.API{T: t, Base: base, Key: key}

	var chains struct {
		Chains []struct {
			Assets []struct {
				Symbol   string  `json:"symbol"`
				Decimals int     `json:"decimals"`
				Address  *string `json:"address"`
			} `json:"assets"`
		} `json:"chains"`
	}
	if code, body := api.Do("GET", "/v1/chains", nil, nil); code != 200 || json.Unmarshal(body, &chains) != nil {
		t.Fatalf("chains: %d %s", code, body)
	}
	var usdt common.Address
	for _, a := range chains.Chains[0].Assets {
		if a.Symbol == "USDT" && a.Address != nil {
			usdt = common.HexToAddress(*a.Address)
		}
	}

	wrongKey := testenv.API{T: t, Base: base, Key: "sk_wrong_key_000000000"}
	if code, _ := wrongKey.Do("POST", "/v1/withdrawals", `{}`, nil); code != 401 {
		t.Fatalf("wrong key: %d, want 401", code)
	}
	type want struct {
		id, asset string
		to        common.Address
		amount    *big.Int
	}
	var (
		mu    sync.Mutex
		wants = map[string]want{}
		wg    sync.WaitGroup
	)
	for i := 0; i < 40; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			to := newAddr(t)
			asset, amount, base10 := "POL", fmt.Sprintf("0.%04d", i+1), new(big.Int).Mul(big.NewInt(int64(i+1)), big.NewInt(1e14))
			if i%2 == 1 {
				asset, amount, base10 = "USDT", fmt.Sprintf("%d.5", i), big.NewInt(int64(i)*1_000_000+500_000)
			}
			body := fmt.Sprintf(`{"external_id":"dev-%d","chain":"local","asset":"%s","to":"%s","amount":"%s"}`, i, asset, to.Hex(), amount)
			code, resp := api.Do("POST", "/v1/withdrawals", body, nil)
			if code != 201 {
				t.Errorf("post %d: %d %s", i, code, resp)
				return
			}
			var w struct{ ID string }
			_ = json.Unmarshal(resp, &w)
			if i%5 == 0 { // replayed: the same withdrawal back, nothing new
				code, again := api.Do("POST", "/v1/withdrawals", body, nil)
				var w2 struct{ ID string }
				_ = json.Unmarshal(again, &w2)
				if code != 200 || w2.ID != w.ID {
					t.Errorf("replay %d: %d id %s, want 200 id %s", i, code, w2.ID, w.ID)
				}
			}
			mu.Lock()
			wants[w.ID] = want{id: w.ID, asset: asset, to: to, amount: base10}
			mu.Unlock()
		}(i)
	}
	bad := []struct{ body, field string }{
		{`{"external_id":"bad-1","chain":"local","asset":"POL","to":"0x123","amount":"1"}`, "to"},
		{`{"external_id":"bad-2","chain":"local","asset":"USDT","to":"0x000000000000000000000000000000000000dEaD","amount":"1.1234567"}`, "amount"},
		{`{"external_id":"bad-3","chain":"mars","asset":"POL","to":"0x000000000000000000000000000000000000dEaD","amount":"1"}`, "chain"},
		{`{"external_id":"bad-4","chain":"local","asset":"POL","to":"0x000000000000000000000000000000000000dEaD","amount":"-1"}`, "amount"},
		{`{"chain":"local","asset":"POL","to":"0x000000000000000000000000000000000000dEaD","amount":"1"}`, "external_id"},
		{`{"external_id":"dev-0","chain":"local","asset":"POL","to":"0x000000000000000000000000000000000000dEaD","amount":"9"}`, "external_id"},
	}
	wg.Wait()
	for _, b := range bad {
		code, resp := api.Do("POST", "/v1/withdrawals", b.body, nil)
		if code < 400 || code >= 500 || !strings.Contains(string(resp), `"field":"`+b.field+`"`) {
			t.Errorf("bad input %s: %d %s, want a 4xx naming %s", b.body, code, resp, b.field)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	if len(wants) != 40 {
		t.Fatalf("%d distinct withdrawals, want 40", len(wants))
	}

	deadline := time.Now().Add(2 * time.Minute)
	for id := range wants {
		for {
			_, body := api.Do("GET", "/v1/withdrawals/"+id, nil, nil)
			var w struct{ Status string }
			_ = json.Unmarshal(body, &w)
			if w.Status == "CONFIRMED" {
				break
			}
			if w.Status == "FAILED" || time.Now().After(deadline) {
				t.Fatalf("withdrawal %s: %s", id, body)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	eth, err := ethclient.DialContext(ctx, "http://"+rpcAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer eth.Close()
	for _, w := range wants {
		var got *big.Int
		if w.asset == "POL" {
			got, err = eth.BalanceAt(ctx, w.to, nil)
		} else {
			got, err = contracts.TokenBalance(ctx, eth, usdt, w.to)
		}
		if err != nil || got.Cmp(w.amount) != 0 {
			t.Fatalf("recipient %s holds %v %s (%v), want %s", w.to, got, w.asset, err, w.amount)
		}
	}

	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("sluice dev exited with %v after Ctrl-C", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("sluice dev did not stop within 20s of Ctrl-C")
	}
	if left, _ := filepath.Glob(filepath.Join(tmp, "sluice-dev-keys-*")); len(left) != 0 {
		t.Fatalf("the temporary keystore outlived the engine: %v", left)
	}
	// Every log line is one JSON object with each key once: log pipelines keep only one of two.
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		if err := checkLogLine(line); err != nil {
			t.Errorf("log line %s: %v", line, err)
		}
	}
}

// checkLogLine says why line is not a JSON object with distinct top-level keys.
func checkLogLine(line string) error {
	dec := json.NewDecoder(strings.NewReader(line))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return fmt.Errorf("not a JSON object (%v)", err)
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		key := tok.(string)
		if seen[key] {
			return fmt.Errorf("key %q twice", key)
		}
		seen[key] = true
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return err
		}
	}
	return nil
}

// What would stop the engine later is refused at once, named, before the chain starts.
func TestDevModeRefusesAtStart(t *testing.T) {
	for _, tc := range []struct {
		name, key string
		takeAPI   bool
		wantInErr func(apiAddr string) string
	}{
		{"short key", "sk_short", false, func(string) string { return "SLUICE_API_KEY: API key must be at least 16 characters" }},
		{"taken API port", "sk_test_dev_mode_0123456789", true, func(a string) string { return "API address " + a + " is taken" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd, apiAddr, _, _ := devCommand(t, tc.key)
			if tc.takeAPI {
				l, err := net.Listen("tcp", apiAddr)
				if err != nil {
					t.Fatal(err)
				}
				defer l.Close()
			}
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 1 {
				t.Fatalf("exit %v, want status 1\n%s", err, out)
			}
			if want := tc.wantInErr(apiAddr); !strings.Contains(string(out), want) {
				t.Fatalf("the error does not say %q:\n%s", want, out)
			}
			if strings.Contains(string(out), "embedded chain started") {
				t.Fatalf("the chain started before the check:\n%s", out)
			}
		})
	}
}

// -h is an answer, not a failure.
func TestDevHelp(t *testing.T) {
	out, err := exec.Command(devBin, "dev", "-h").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "-api-addr") || strings.Contains(string(out), "ERROR") {
		t.Fatalf("dev -h: %v\n%s", err, out)
	}
}

// Ctrl-C while the chain is up but contracts are still deploying is a clean stop, not a failure.
func TestDevModeCtrlCDuringStartUp(t *testing.T) {
	cmd, _, _, tmp := devCommand(t, "sk_test_dev_mode_0123456789")
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	var (
		logs        strings.Builder
		interrupted time.Time
	)
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		logs.WriteString(sc.Text() + "\n")
		if strings.Contains(sc.Text(), "embedded chain started") {
			if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
				t.Fatal(err)
			}
			interrupted = time.Now()
			break
		}
	}
	drained := make(chan struct{}) // Wait closes the pipe, so every read comes first
	go func() {
		for sc.Scan() {
			logs.WriteString(sc.Text() + "\n")
		}
		close(drained)
	}()
	select {
	case <-drained:
	case <-time.After(20 * time.Second):
		t.Fatal("sluice dev did not stop within 20s of Ctrl-C")
	}
	if err := cmd.Wait(); err != nil || strings.Contains(logs.String(), `"level":"ERROR"`) {
		t.Fatalf("exit %v after Ctrl-C during start-up, want a clean stop; logs:\n%s", err, logs.String())
	}
	// It takes milliseconds; 5 s is the chain's HTTP server waiting on a connection nobody closed.
	if took := time.Since(interrupted); took > 3*time.Second {
		t.Fatalf("stopping took %s after Ctrl-C; logs:\n%s", took, logs.String())
	}
	if !strings.Contains(logs.String(), "embedded chain started") {
		t.Fatalf("never saw the chain start:\n%s", logs.String())
	}
	if left, _ := filepath.Glob(filepath.Join(tmp, "sluice-dev-keys-*")); len(left) != 0 {
		t.Fatalf("the temporary keystore outlived the engine: %v", left)
	}
}

func readBanner(t *testing.T, r io.Reader) string {
	t.Helper()
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var b strings.Builder
	timeout := time.After(60 * time.Second)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("sluice dev exited before it was ready; printed:\n%s", b.String())
			}
			b.WriteString(l + "\n")
			if strings.Contains(l, "external_id=demo-1") { // the follow-up curl ends the banner
				go func() {
					for range lines {
					}
				}()
				return b.String()
			}
		case <-timeout:
			t.Fatalf("no banner within 60s; printed:\n%s", b.String())
		}
	}
}

// checkDevAdmin logs in to the admin API as the first admin the banner names.
func checkDevAdmin(t *testing.T, banner string) {
	t.Helper()
	var adminURL, password string
	for _, l := range strings.Split(banner, "\n") {
		f := strings.Fields(l)
		switch {
		case len(f) >= 2 && f[0] == "Dashboard":
			adminURL = strings.TrimSuffix(f[1], "/ops/")
		case len(f) >= 4 && f[0] == "Operator" && f[1] == "admin" && f[2] == "/":
			password = f[3]
		}
	}
	if adminURL == "" || len(password) < 12 {
		t.Fatalf("the banner names no dashboard or first admin:\n%s", banner)
	}
	body := fmt.Sprintf(`{"username":"admin","password":%q}`, password)
	var res *http.Response
	var err error
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if res, err = http.Post(adminURL+"/admin/v1/auth/login", "application/json", strings.NewReader(body)); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("admin login: %v", err)
	}
	defer res.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
		Operator    struct {
			Role string `json:"role"`
		} `json:"operator"`
	}
	if res.StatusCode != 200 || json.NewDecoder(res.Body).Decode(&tok) != nil || tok.AccessToken == "" || tok.Operator.Role != "admin" {
		t.Fatalf("admin login: %d %+v", res.StatusCode, tok)
	}
	if res.Header.Get("Content-Security-Policy") == "" {
		t.Error("the admin API sends no Content-Security-Policy")
	}
	// The operators' reads run on the embedded database, Redis and chain.
	for _, path := range []string{"/status", "/summary", "/withdrawals", "/queues", "/dlq", "/wallets", "/nonces", "/stuck", "/alerts", "/activity"} {
		req, _ := http.NewRequest(http.MethodGet, adminURL+"/admin/v1"+path, nil)
		req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		r, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		raw, _ := io.ReadAll(r.Body)
		r.Body.Close()
		if r.StatusCode != 200 || (path == "/wallets" && (!strings.Contains(string(raw), `"role":"hot"`) || strings.Contains(string(raw), `"latest":null`))) {
			t.Errorf("GET /admin/v1%s: %d %.300s", path, r.StatusCode, raw)
		}
	}
}

func newAddr(t *testing.T) common.Address {
	k, err := crypto.GenerateKey()
	if err != nil {
		t.Error(err)
		return common.Address{}
	}
	return crypto.PubkeyToAddress(k.PublicKey)
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
