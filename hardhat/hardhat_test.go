//go:build unix

package hardhat_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
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

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/ethclient"

	"github.com/sluice-custody/sluice/internal/app"
	"github.com/sluice-custody/sluice/internal/config"
	"github.com/sluice-custody/sluice/internal/devmode"
	"github.com/sluice-custody/sluice/internal/nonce"
	"github.com/sluice-custody/sluice/internal/testenv"
)

// hardhatAccount1 is the default hot wallet of scripts/deploy.js and sluice.hardhat.yaml.
var hardhatAccount1 = common.HexToAddress("0x70997970C51812dc3A010C7d01b50e0d17dc79C8")

// deployments is what scripts/deploy.js writes.
type deployments struct {
	ChainID      uint64 `json:"chainId"`
	HotWallet    string `json:"hotWallet"`
	KeystoreFile string `json:"keystoreFile"`
	Contracts    struct {
		Multicall3    string `json:"Multicall3"`
		BatchTransfer string `json:"BatchTransfer"`
		USDT          string `json:"USDT"`
	} `json:"contracts"`
}

// TestHardhat runs the README's steps: `npx hardhat node`, the deploy script, then Sluice against the node
// twice: as `sluice dev --rpc` does (devmode.Start deploys its own contracts with account #0), and as
// `sluice all --config sluice.hardhat.yaml` does (the committed config, the script's contracts and the
// hot wallet key file it wrote). Each takes one USDT and one POL withdrawal to CONFIRMED over HTTP, and
// the recipients' balances are read back from the node.
func TestHardhat(t *testing.T) {
	dir, err := os.Getwd() // go test runs in the package directory: hardhat/
	if err != nil {
		t.Fatal(err)
	}
	npmCI(t, dir)

	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	url := startNode(t, dir)
	eth, err := ethclient.DialContext(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer eth.Close()

	// scripts/deploy.js with its defaults (hot wallet = account #1), its outputs sent to temporary files.
	depFile := filepath.Join(t.TempDir(), "deployments.json")
	ksDir := t.TempDir()
	ksPassword := randomHex(t, 8)
	out := runHardhat(t, ctx, dir, []string{
		"HARDHAT_RPC_URL=" + url, "SLUICE_DEPLOYMENTS_FILE=" + depFile, "SLUICE_KEYSTORE_DIR=" + ksDir,
		"SLUICE_KEYSTORE_PASSWORD=" + ksPassword,
		"SLUICE_HOT_WALLET=", "SLUICE_HOT_WALLET_KEY=", "SLUICE_USDT_MINT=", "SLUICE_NATIVE_FUND=",
	}, "run", "scripts/deploy.js", "--network", "localhost")
	if !strings.Contains(out, "chain_id: 31337") {
		t.Fatalf("deploy.js printed no Sluice chain block:\n%s", out)
	}
	var dep deployments
	readJSON(t, depFile, &dep)
	if dep.ChainID != 31337 || common.HexToAddress(dep.HotWallet) != hardhatAccount1 {
		t.Fatalf("deployments: chain %d, hot wallet %s; want 31337, %s", dep.ChainID, dep.HotWallet, hardhatAccount1)
	}
	for name, a := range map[string]string{"Multicall3": dep.Contracts.Multicall3, "BatchTransfer": dep.Contracts.BatchTransfer, "USDT": dep.Contracts.USDT} {
		if !common.IsHexAddress(a) {
			t.Fatalf("deployments: %s address %q", name, a)
		}
		code, err := eth.CodeAt(ctx, common.HexToAddress(a), nil)
		if err != nil || len(code) == 0 {
			t.Fatalf("no code at %s %s (%v)", name, a, err)
		}
	}
	usdt := common.HexToAddress(dep.Contracts.USDT)
	if got := mustTokenBalance(t, ctx, eth, usdt, hardhatAccount1); got.Cmp(units(1_000_000, 6)) != 0 {
		t.Fatalf("hot wallet holds %s USDT base units after deploy, want 1e12", got)
	}
	// One source of truth: Hardhat's compilation of ../contracts/src (solc-js from npm) must give the
	// very bytecode contracts/build.js gives, from which the Go bindings are generated.
	for _, name := range []string{"Multicall3", "BatchTransfer", "TestToken", "NoReturnToken", "RejectingReceiver"} {
		var art struct {
			Bytecode string `json:"bytecode"`
		}
		readJSON(t, filepath.Join(dir, "artifacts", "contracts", name+".sol", name+".json"), &art)
		want, err := os.ReadFile(filepath.Join(dir, "..", "contracts", "build", name+".bin"))
		if err != nil {
			t.Fatal(err)
		}
		if strings.TrimPrefix(art.Bytecode, "0x") != strings.TrimSpace(string(want)) {
			t.Fatalf("%s: Hardhat's bytecode differs from contracts/build/%s.bin: compiler settings drifted", name, name)
		}
	}

	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	queue := config.Queue{Backend: "mysql", VisibilityTimeout: config.Duration{Duration: 10 * time.Second},
		WaitTime: config.Duration{Duration: 200 * time.Millisecond}}

	t.Run("dev", func(t *testing.T) {
		st, err := devmode.Start(ctx, devmode.Options{
			RPC: url, APIAddr: testenv.FreeAddr(t), BlockTime: 200 * time.Millisecond, Confirmations: 3,
			DatabaseDSN: testenv.MySQLDSN(t), RedisAddr: testenv.RedisAddr(t), KeystoreDir: t.TempDir(), Queue: queue,
		}, log)
		if err != nil {
			t.Fatalf("devmode.Start against the Hardhat node: %v", err)
		}
		defer st.Close()
		if st.ChainID.Uint64() != 31337 || st.Chain != nil {
			t.Fatalf("devmode.Start used chain %s (embedded: %v), not the Hardhat node", st.ChainID, st.Chain != nil)
		}
		runEngine(t, ctx, eth, st.App, st.APIURL, st.APIKey, st.Contracts.USDT, 3)
	})

	t.Run("config", func(t *testing.T) {
		cfgPath := filepath.Join(dir, "sluice.hardhat.yaml")
		apiAddr, apiKey := testenv.FreeAddr(t), "sk_hardhat_"+randomHex(t, 12)
		for k, v := range map[string]string{
			"SLUICE_DATABASE_DSN": testenv.MySQLDSN(t), "SLUICE_REDIS_ADDR": testenv.RedisAddr(t),
			"SLUICE_CHAIN_LOCAL_RPC": url, "SLUICE_API_LISTEN": apiAddr, "SLUICE_QUEUE_BACKEND": "mysql",
			"SLUICE_KEYSTORE_DIR": ksDir, "SLUICE_KEYSTORE_PASSWORD": ksPassword, "SLUICE_API_KEY": apiKey,
			"SLUICE_API_ADMIN_LISTEN": testenv.FreeAddr(t), "SLUICE_ADMIN_JWT_KEY": randomHex(t, 32),
		} {
			t.Setenv(k, v)
		}
		cfg, err := config.Load(cfgPath)
		if err != nil {
			t.Fatalf("load %s: %v", cfgPath, err)
		}
		if len(cfg.Chains) != 1 {
			t.Fatalf("sluice.hardhat.yaml: %d chains, want 1", len(cfg.Chains))
		}
		ch := &cfg.Chains[0]
		var yamlUSDT config.Address
		for _, a := range ch.Assets {
			if a.Symbol == "USDT" {
				yamlUSDT = a.Address
			}
		}
		// The committed addresses are those of a fresh node, which this one is.
		if len(ch.HotWallets) != 1 {
			t.Fatalf("sluice.hardhat.yaml: hot_wallets %v, want one", ch.HotWallets)
		}
		for _, c := range []struct {
			what     string
			yaml     config.Address
			deployed string
		}{
			{"multicall3", ch.Multicall3, dep.Contracts.Multicall3},
			{"batch_contract", ch.BatchContract, dep.Contracts.BatchTransfer},
			{"USDT address", yamlUSDT, dep.Contracts.USDT},
			{"hot_wallets[0]", ch.HotWallets[0], dep.HotWallet},
		} {
			if c.yaml.IsZero() || c.yaml.Common() != common.HexToAddress(c.deployed) {
				t.Fatalf("sluice.hardhat.yaml: %s is %q, but deploy.js on a fresh node gives %s", c.what, c.yaml, c.deployed)
			}
		}
		if ch.Name != "local" || ch.ChainID != 31337 {
			t.Fatalf("sluice.hardhat.yaml: chain %s/%d, want local/31337", ch.Name, ch.ChainID)
		}
		ch.BlockTime.Duration = 200 * time.Millisecond // the node mines every 200ms here, not every 2s
		cfg.Queue = queue

		// What `sluice migrate` then `sluice all` do.
		a, err := app.Open(ctx, cfg, log)
		if err != nil {
			t.Fatalf("open with %s: %v", cfgPath, err)
		}
		defer a.Close()
		if err := a.Store.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		// The shared test Redis may hold nonce counters of account #1 on chain 31337 from an earlier
		// node; a fresh node starts it at nonce 0 again, so this run keeps its counters apart.
		a.Nonces = nonce.New(a.Redis, nonce.WithPrefix("sluice:nonce:"+testenv.UniqueName(t)))
		runEngine(t, ctx, eth, a, "http://"+apiAddr, apiKey, usdt, ch.Confirmations)
	})
}

// runEngine runs the services of a, posts one USDT and one POL withdrawal, waits until both are
// CONFIRMED with at least confirmations blocks, checks the recipients' balances and stops the services.
func runEngine(t *testing.T, ctx context.Context, eth *ethclient.Client, a *app.App, apiURL, apiKey string, usdt common.Address, confirmations uint64) {
	t.Helper()
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	runErr := make(chan error, 1)
	go func() { runErr <- a.Run(runCtx, app.Services...) }()
	testenv.WaitReady(t, apiURL, runErr)

	api := testenv.API{T: t, Base: apiURL, Key: apiKey}
	type posted struct {
		id, asset string
		to        common.Address
		want      *big.Int
	}
	var all []posted
	for i, w := range []struct{ asset, amount string }{{"USDT", "12.5"}, {"POL", "0.25"}} {
		to := testenv.NewAccount(t).Address
		var got withdrawal
		body := map[string]string{"external_id": fmt.Sprintf("hardhat-%s-%d", randomHex(t, 6), i), "chain": "local",
			"asset": w.asset, "to": to.Hex(), "amount": w.amount}
		if code, raw := api.Do("POST", "/v1/withdrawals", body, &got); code != http.StatusCreated {
			t.Fatalf("post %s withdrawal: status %d: %s", w.asset, code, raw)
		}
		want := big.NewInt(12_500_000) // 12.5 USDT
		if w.asset == "POL" {
			want = big.NewInt(250_000_000_000_000_000) // 0.25 POL
		}
		all = append(all, posted{id: got.ID, asset: w.asset, to: to, want: want})
	}

	deadline := time.Now().Add(90 * time.Second)
	for _, p := range all {
		for {
			var w withdrawal
			if code, raw := api.Do("GET", "/v1/withdrawals/"+p.id, nil, &w); code != http.StatusOK {
				t.Fatalf("get %s: status %d: %s", p.id, code, raw)
			}
			if w.Status == "CONFIRMED" {
				if w.TxHash == nil || w.BlockNumber == nil {
					t.Fatalf("confirmed %s withdrawal lacks its transaction: %+v", p.asset, w)
				}
				head, err := eth.BlockNumber(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if head+1-*w.BlockNumber < confirmations {
					t.Fatalf("%s withdrawal CONFIRMED at %d confirmations, want %d", p.asset, head+1-*w.BlockNumber, confirmations)
				}
				rcpt, err := eth.TransactionReceipt(ctx, common.HexToHash(*w.TxHash))
				if err != nil || rcpt.Status != 1 {
					t.Fatalf("%s withdrawal tx %s: receipt %+v, %v", p.asset, *w.TxHash, rcpt, err)
				}
				break
			}
			if w.Status == "FAILED" || w.Status == "CANCELED" {
				t.Fatalf("%s withdrawal ended %s: %+v", p.asset, w.Status, w.Error)
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s withdrawal still %s after 90s", p.asset, w.Status)
			}
			select {
			case err := <-runErr:
				t.Fatalf("services stopped: %v", err)
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	for _, p := range all {
		var got *big.Int
		if p.asset == "POL" {
			b, err := eth.BalanceAt(ctx, p.to, nil)
			if err != nil {
				t.Fatal(err)
			}
			got = b
		} else {
			got = mustTokenBalance(t, ctx, eth, usdt, p.to)
		}
		if got.Cmp(p.want) != 0 {
			t.Fatalf("recipient %s holds %s %s base units, want %s", p.to, got, p.asset, p.want)
		}
	}

	stop()
	select {
	case err := <-runErr:
		if err != nil {
			t.Fatalf("services stopped with %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("services did not stop within 30s of cancel")
	}
}

// npmCI installs the project's npm packages (package-lock.json) unless node_modules already matches it.
func npmCI(t *testing.T, dir string) {
	t.Helper()
	for _, tool := range []string{"node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not on PATH: the Hardhat test needs Node.js 20+ and npm (apt-get install nodejs npm, or nodejs.org)", tool)
		}
	}
	lock, err := os.Stat(filepath.Join(dir, "package-lock.json"))
	if err != nil {
		t.Fatalf("hardhat/package-lock.json: %v", err)
	}
	// npm writes node_modules/.package-lock.json at every install: older than the lock file means stale.
	if inst, err := os.Stat(filepath.Join(dir, "node_modules", ".package-lock.json")); err == nil && !inst.ModTime().Before(lock.ModTime()) {
		if _, err := os.Stat(filepath.Join(dir, "node_modules", ".bin", "hardhat")); err == nil {
			return
		}
	}
	start := time.Now()
	cmd := exec.Command("npm", "ci", "--no-audit", "--no-fund")
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("npm ci in %s: %v\n%s", dir, err, out)
	}
	t.Logf("npm ci: %s", time.Since(start).Round(time.Second))
}

// startNode starts `hardhat node` on a free port, a block every 200ms, in its own process group (killed at
// cleanup, with the node process npx/the launcher starts), and waits until its JSON-RPC answers.
func startNode(t *testing.T, dir string) string {
	t.Helper()
	_, port, _ := net.SplitHostPort(testenv.FreeAddr(t))
	url := "http://127.0.0.1:" + port
	out := &syncBuffer{}
	cmd := exec.Command(filepath.Join(dir, "node_modules", ".bin", "hardhat"), "node", "--hostname", "127.0.0.1", "--port", port)
	cmd.Dir = dir
	// Interval mining, as on a real chain, fast enough for confirmations to come quickly. (Not automine:
	// Hardhat then rejects a nonce sent before its predecessor, which a real node would queue.)
	cmd.Env = append(os.Environ(), "HARDHAT_BLOCK_TIME=200")
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start hardhat node: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
		if t.Failed() {
			t.Logf("hardhat node output (last 4 KB):\n%s", out.tail(4096))
		}
	})
	start := time.Now()
	for {
		body := `{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}`
		resp, err := http.Post(url, "application/json", strings.NewReader(body))
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && strings.Contains(string(b), `"0x7a69"`) {
				t.Logf("hardhat node ready at %s in %s", url, time.Since(start).Round(10*time.Millisecond))
				return url
			}
			t.Fatalf("%s answered eth_chainId with %d %s, want 0x7a69 (31337)", url, resp.StatusCode, b)
		}
		select {
		case err := <-exited:
			t.Fatalf("hardhat node exited (%v) before answering:\n%s", err, out.tail(4096))
		case <-time.After(100 * time.Millisecond):
		}
		if time.Since(start) > 60*time.Second {
			t.Fatalf("hardhat node did not answer on %s within 60s:\n%s", url, out.tail(4096))
		}
	}
}

// runHardhat runs a hardhat command in dir with extra environment and returns its output.
func runHardhat(t *testing.T, ctx context.Context, dir string, env []string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(dir, "node_modules", ".bin", "hardhat"), args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("hardhat %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	t.Logf("hardhat %s: %s", strings.Join(args, " "), time.Since(start).Round(10*time.Millisecond))
	return string(out)
}

type withdrawal struct {
	ID          string  `json:"id"`
	Status      string  `json:"status"`
	TxHash      *string `json:"tx_hash"`
	BlockNumber *uint64 `json:"block_number"`
	Error       *struct {
		Type    string `json:"type"`
		Message string `json:"message"`
	} `json:"error"`
}

func units(n int64, decimals int64) *big.Int {
	return new(big.Int).Mul(big.NewInt(n), new(big.Int).Exp(big.NewInt(10), big.NewInt(decimals), nil))
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func randomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// syncBuffer collects a child process's output from its copying goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) tail(n int) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.b.Bytes()
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

func mustTokenBalance(t *testing.T, ctx context.Context, eth *ethclient.Client, token, who common.Address) *big.Int {
	t.Helper()
	b, err := contracts.TokenBalance(ctx, eth, token, who)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
