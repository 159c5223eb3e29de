// Command bench measures Sluice on this machine: the same workload with batching on and off on an
// embedded chain (2 s blocks, 30M gas), and the API's intake alone. It needs a MariaDB and a Redis
// (SLUICE_TEST_MYSQL_DSN, SLUICE_TEST_REDIS_ADDR; bench/run.sh starts both) and prints human-readable
// figures, then `RESULT {json}` as its last line.
package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"database/sql"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/go-sql-driver/mysql"

	"github.com/sluice-custody/sluice/contracts"
	"github.com/sluice-custody/sluice/internal/app"
	"github.com/sluice-custody/sluice/internal/devchain"
	"github.com/sluice-custody/sluice/internal/queue"
	"github.com/sluice-custody/sluice/multicall"
	"github.com/sluice-custody/sluice/signer"
)

var (
	transfers   = flag.Int("n", 2000, "transfers per mode (half USDT to new holders, half POL to funded accounts)")
	apiRequests = flag.Int("api-n", 4000, "POST /v1/withdrawals requests for the intake measurement")
	apiConc     = flag.Int("api-concurrency", 32, "concurrent API clients")
	blockTime   = flag.Duration("block-time", 2*time.Second, "block interval")
	gasLimit    = flag.Uint64("gas-limit", 30_000_000, "block gas limit")
	modeTimeout = flag.Duration("mode-timeout", 5*time.Minute, "give up on a mode after this long")
	verbose     = flag.Bool("v", false, "log the services at info level")
)

func main() {
	flag.Parse()
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

type modeResult struct {
	Batching        bool
	Transfers       int
	Confirmed       int
	Failed          int
	GasPerERC20     float64
	GasPerNative    float64
	Batches         int
	ApproveGas      uint64
	Seconds         float64
	IncludedPerSec  float64
	SubmitSeconds   float64
	Blocks          int
	MaxBlockGasUsed uint64
}

func run() error {
	dsn, redisAddr := os.Getenv("SLUICE_TEST_MYSQL_DSN"), os.Getenv("SLUICE_TEST_REDIS_ADDR")
	if dsn == "" || redisAddr == "" {
		return fmt.Errorf("SLUICE_TEST_MYSQL_DSN and SLUICE_TEST_REDIS_ADDR must be set (bench/run.sh does it)")
	}
	level := slog.LevelError
	if *verbose {
		level = slog.LevelInfo
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	funder, _ := crypto.GenerateKey()
	ch, err := devchain.Start(devchain.Options{Addr: freeAddr(), BlockInterval: *blockTime, GasLimit: *gasLimit, Alloc: types.GenesisAlloc{
		crypto.PubkeyToAddress(funder.PublicKey): {Balance: new(big.Int).Mul(big.NewInt(1e9), big.NewInt(1e18))},
	}})
	if err != nil {
		return err
	}
	defer ch.Close()
	fmt.Printf("chain: %s, block time %s, block gas limit %d\n", ch.URL, *blockTime, *gasLimit)

	ctx := context.Background()
	apiRes, err := apiBench(ctx, log, ch, funder, dsn, redisAddr)
	if err != nil {
		return fmt.Errorf("api: %w", err)
	}
	fmt.Printf("API intake: %d POST /v1/withdrawals at concurrency %d: %.0f req/s, p50 %.1f ms, p99 %.1f ms (%d non-2xx)\n",
		apiRes.n, *apiConc, apiRes.perSec, apiRes.p50, apiRes.p99, apiRes.errors)

	off, err := runMode(ctx, log, ch, funder, dsn, redisAddr, false)
	if err != nil {
		return fmt.Errorf("batching off: %w", err)
	}
	printMode(off)
	on, err := runMode(ctx, log, ch, funder, dsn, redisAddr, true)
	if err != nil {
		return fmt.Errorf("batching on: %w", err)
	}
	printMode(on)

	// The workload is half ERC-20, half native: its ceiling uses the mean batched gas per transfer.
	ceiling := float64(*gasLimit) / ((on.GasPerERC20 + on.GasPerNative) / 2) / blockTime.Seconds()
	ceilingERC20 := float64(*gasLimit) / on.GasPerERC20 / blockTime.Seconds()
	ceilingNative := float64(*gasLimit) / on.GasPerNative / blockTime.Seconds()
	fmt.Printf("chain ceiling (block gas / batched gas per transfer / block time): this mix %.0f/s; ERC-20 only %.0f/s, native only %.0f/s\n",
		ceiling, ceilingERC20, ceilingNative)
	fmt.Printf("gas per transfer: ERC-20 %.0f batched vs %.0f single (%.0f%% less); native %.0f batched vs %.0f single (%.0f%% less)\n",
		on.GasPerERC20, off.GasPerERC20, 100*(1-on.GasPerERC20/off.GasPerERC20),
		on.GasPerNative, off.GasPerNative, 100*(1-on.GasPerNative/off.GasPerNative))
	fmt.Printf("inclusion: %.1f transfers/s batched vs %.1f/s one tx per withdrawal (x%.1f)\n",
		on.IncludedPerSec, off.IncludedPerSec, on.IncludedPerSec/off.IncludedPerSec)
	res := map[string]any{
		"transfers":                         on.Transfers,
		"gas_per_transfer_erc20":            round(on.GasPerERC20),
		"unbatched_gas_per_transfer_erc20":  round(off.GasPerERC20),
		"gas_per_transfer_native":           round(on.GasPerNative),
		"unbatched_gas_per_transfer_native": round(off.GasPerNative),
		"included_per_sec":                  round1(on.IncludedPerSec),
		"unbatched_included_per_sec":        round1(off.IncludedPerSec),
		"chain_ceiling_per_sec":             round1(ceiling),
		"chain_ceiling_erc20_per_sec":       round1(ceilingERC20),
		"chain_ceiling_native_per_sec":      round1(ceilingNative),
		"batches":                           on.Batches,
		"failed":                            on.Failed + off.Failed,
		"api_req_per_sec":                   round1(apiRes.perSec),
		"api_p50_ms":                        round1(apiRes.p50),
		"api_p99_ms":                        round1(apiRes.p99),
		"block_time_s":                      blockTime.Seconds(),
		"block_gas_limit":                   *gasLimit,
	}
	b, _ := json.Marshal(res)
	fmt.Printf("RESULT %s\n", b)
	return nil
}

func round(f float64) int64    { return int64(f + 0.5) }
func round1(f float64) float64 { return float64(int64(f*10+0.5)) / 10 }

func printMode(m modeResult) {
	name := "one tx per withdrawal"
	if m.Batching {
		name = fmt.Sprintf("batching on (%d batches)", m.Batches)
	}
	fmt.Printf("%s: %d transfers, %d confirmed, %d failed; gas/transfer ERC-20 %.0f, native %.0f; accepted in %.1fs; "+
		"first accept → last inclusion %.1fs = %.1f transfers/s over %d blocks (fullest block %d gas)\n",
		name, m.Transfers, m.Confirmed, m.Failed, m.GasPerERC20, m.GasPerNative, m.SubmitSeconds, m.Seconds, m.IncludedPerSec, m.Blocks, m.MaxBlockGasUsed)
	if m.ApproveGas > 0 {
		fmt.Printf("  (plus %d gas of bounded approves for the batch contract, not counted per transfer)\n", m.ApproveGas)
	}
}

func freeAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func withDB(dsn, name string) string {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		panic(err)
	}
	cfg.DBName = name
	return cfg.FormatDSN()
}

// stack starts a Sluice dev stack on the shared chain, with its own database and hot wallet.
func stack(ctx context.Context, log *slog.Logger, ch *devchain.Chain, funder *ecdsa.PrivateKey, dsn, redisAddr, db string) (*app.DevStack, error) {
	return app.StartDev(ctx, app.DevOptions{RPC: ch.URL, FundingKey: funder, APIAddr: freeAddr(), BlockTime: *blockTime,
		Confirmations: 1, DatabaseDSN: withDB(dsn, db), RedisAddr: redisAddr, APIKey: "sk_bench_" + strings.Repeat("0", 24),
		Concurrency: 8}, log)
}

type apiResult struct {
	n, errors     int
	perSec        float64
	p50, p99      float64
	firstAccepted time.Time
}

func apiBench(ctx context.Context, log *slog.Logger, ch *devchain.Chain, funder *ecdsa.PrivateKey, dsn, redisAddr string) (apiResult, error) {
	st, err := stack(ctx, log, ch, funder, dsn, redisAddr, "sluice_bench_api")
	if err != nil {
		return apiResult{}, err
	}
	defer st.Close()
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- st.App.Run(wctx, "api") }()
	defer func() { cancel(); <-done }()
	if err := waitAPI(st); err != nil {
		return apiResult{}, err
	}
	reqs := make([]request, *apiRequests)
	for i := range reqs {
		reqs[i] = request{asset: app.DevToken, to: randomAddr(), amount: "1.5"}
		if i%2 == 1 {
			reqs[i] = request{asset: app.DevNative, to: randomAddr(), amount: "0.001"}
		}
	}
	return post(st, "api", reqs)
}

type request struct {
	asset  string
	to     common.Address
	amount string
}

func randomAddr() common.Address {
	k, _ := crypto.GenerateKey()
	return crypto.PubkeyToAddress(k.PublicKey)
}

var httpClient = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 256, MaxConnsPerHost: 256}}

func waitAPI(st *app.DevStack) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		req, _ := http.NewRequest("GET", st.APIURL+"/v1/chains", nil)
		req.Header.Set("Authorization", "Bearer "+st.APIKey)
		if resp, err := httpClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("API at %s never answered", st.APIURL)
}

// post sends every request with *apiConc clients and measures the latencies of the accepted ones.
func post(st *app.DevStack, prefix string, reqs []request) (apiResult, error) {
	var (
		next     atomic.Int64
		mu       sync.Mutex
		lat      []time.Duration
		errs     int
		first    time.Time
		firstErr error
		wg       sync.WaitGroup
	)
	start := time.Now()
	for c := 0; c < *apiConc; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(reqs) {
					return
				}
				r := reqs[i]
				body, _ := json.Marshal(map[string]string{"external_id": fmt.Sprintf("%s-%d", prefix, i), "chain": "local",
					"asset": r.asset, "to": r.to.Hex(), "amount": r.amount})
				for attempt := 0; ; attempt++ {
					t0 := time.Now()
					req, _ := http.NewRequest("POST", st.APIURL+"/v1/withdrawals", bytes.NewReader(body))
					req.Header.Set("Authorization", "Bearer "+st.APIKey)
					req.Header.Set("Content-Type", "application/json")
					resp, err := httpClient.Do(req)
					d := time.Since(t0)
					code := 0
					var msg []byte
					if err == nil {
						code = resp.StatusCode
						msg, _ = io.ReadAll(resp.Body)
						resp.Body.Close()
					}
					mu.Lock()
					if code == 201 || code == 200 {
						lat = append(lat, d)
						if first.IsZero() || t0.Add(d).Before(first) {
							first = t0.Add(d)
						}
						mu.Unlock()
						break
					}
					errs++
					if firstErr == nil {
						firstErr = fmt.Errorf("POST: %d %s %v", code, msg, err)
					}
					mu.Unlock()
					if attempt >= 5 {
						break
					}
					time.Sleep(time.Duration(attempt+1) * 50 * time.Millisecond)
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if len(lat) < len(reqs) {
		return apiResult{}, fmt.Errorf("%d of %d requests never accepted (first error: %v)", len(reqs)-len(lat), len(reqs), firstErr)
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	ms := func(q float64) float64 { return float64(lat[int(q*float64(len(lat)-1))].Microseconds()) / 1000 }
	return apiResult{n: len(lat), errors: errs, perSec: float64(len(lat)) / elapsed.Seconds(), p50: ms(0.50), p99: ms(0.99), firstAccepted: first}, nil
}

// fundAccounts gives each address 1 wei from the funder through atomic Multicall3 batches, so the
// native workload pays existing accounts.
func fundAccounts(ctx context.Context, eth *ethclient.Client, funder *ecdsa.PrivateKey, chainID *big.Int, mc3 common.Address, to []common.Address) error {
	const chunk = 350 // ~37k gas each to a new account: under the EIP-7825 per-tx cap
	for i := 0; i < len(to); i += chunk {
		var ts []multicall.Transfer
		for _, a := range to[i:min(i+chunk, len(to))] {
			ts = append(ts, multicall.Transfer{To: a, Amount: big.NewInt(1)})
		}
		data, value, err := multicall.NativeBatchAtomic(ts)
		if err != nil {
			return err
		}
		if _, err := contracts.Transact(ctx, eth, funder, chainID, mc3, value, data, 0); err != nil {
			return fmt.Errorf("fund recipients: %w", err)
		}
	}
	return nil
}

func runMode(ctx context.Context, log *slog.Logger, ch *devchain.Chain, funder *ecdsa.PrivateKey, dsn, redisAddr string, batching bool) (modeResult, error) {
	db := "sluice_bench_single"
	if batching {
		db = "sluice_bench_batch"
	}
	st, err := stack(ctx, log, ch, funder, dsn, redisAddr, db)
	if err != nil {
		return modeResult{}, err
	}
	defer st.Close()
	cfg := &st.Config.Chains[0]
	cfg.Batching.Enabled = &batching
	eth, err := ethclient.DialContext(ctx, ch.URL)
	if err != nil {
		return modeResult{}, err
	}
	defer eth.Close()

	n := *transfers
	reqs := make([]request, n)
	var nativeTo []common.Address
	for i := range reqs {
		if i%2 == 0 {
			reqs[i] = request{asset: app.DevToken, to: randomAddr(), amount: "1.5"}
		} else {
			reqs[i] = request{asset: app.DevNative, to: randomAddr(), amount: "0.001"}
			nativeTo = append(nativeTo, reqs[i].to)
		}
	}
	if err := fundAccounts(ctx, eth, funder, ch.ChainID, st.Contracts.Multicall3, nativeTo); err != nil {
		return modeResult{}, err
	}

	// Every block's first sighting, to time inclusion on the wall clock.
	wctx, cancel := context.WithCancel(ctx)
	var (
		seenMu sync.Mutex
		seen   = map[uint64]time.Time{}
	)
	go func() {
		for wctx.Err() == nil {
			if h, err := eth.BlockNumber(wctx); err == nil {
				seenMu.Lock()
				if _, ok := seen[h]; !ok {
					seen[h] = time.Now()
				}
				seenMu.Unlock()
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	a := st.App
	s := &signer.Signer{Store: a.Store, Queue: a.Sender, Keys: a.Keys, Nonces: a.Nonces, Log: log.With("service", "signer"),
		Chains: map[string]signer.ChainDeps{cfg.Name: {Config: *cfg, Client: a.Chains[cfg.Name]}}}
	consumer := &queue.Consumer{Queue: a.Queue, Name: queue.TxRequest, Handler: s.Handle, Concurrency: 8,
		Visibility: 30 * time.Second, Wait: time.Second, Logger: log}
	var wg sync.WaitGroup
	start := func(f func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(wctx); err != nil && wctx.Err() == nil {
				fmt.Fprintln(os.Stderr, "worker:", err)
			}
		}()
	}
	start(func(ctx context.Context) error { return a.Run(ctx, "api", "broadcaster", "monitor") })
	start(consumer.Run)
	if batching {
		start(s.RunBatcher)
	}
	defer func() { cancel(); wg.Wait() }()
	if err := waitAPI(st); err != nil {
		return modeResult{}, err
	}
	t0 := time.Now()
	pr, err := post(st, db, reqs)
	if err != nil {
		return modeResult{}, err
	}
	submit := time.Since(t0)

	deadline := time.Now().Add(*modeTimeout)
	var open int
	for {
		if err := a.Store.DB.QueryRowContext(ctx, `SELECT COUNT(*) FROM withdrawals WHERE status NOT IN ('CONFIRMED','FAILED','CANCELED')`).Scan(&open); err != nil {
			return modeResult{}, err
		}
		if open == 0 {
			break
		}
		if time.Now().After(deadline) {
			return modeResult{}, fmt.Errorf("%d withdrawals still open after %s", open, *modeTimeout)
		}
		time.Sleep(250 * time.Millisecond)
	}
	m := modeResult{Batching: batching, Transfers: n}
	q := a.Store.DB
	if err := q.QueryRowContext(ctx, `SELECT COALESCE(SUM(status='CONFIRMED'),0), COALESCE(SUM(status='FAILED'),0) FROM withdrawals`).Scan(&m.Confirmed, &m.Failed); err != nil {
		return m, err
	}
	var lastBlock, firstBlock uint64
	if err := q.QueryRowContext(ctx, `SELECT MIN(block_number), MAX(block_number) FROM sent_transactions WHERE kind IN ('withdrawal','batch')`).Scan(&firstBlock, &lastBlock); err != nil {
		return m, err
	}
	seenMu.Lock()
	last, ok := seen[lastBlock]
	seenMu.Unlock()
	if !ok {
		return m, fmt.Errorf("block %d was never seen", lastBlock)
	}
	m.Seconds = last.Sub(pr.firstAccepted).Seconds()
	m.IncludedPerSec = float64(m.Confirmed) / m.Seconds
	m.SubmitSeconds = submit.Seconds()
	m.Blocks = int(lastBlock - firstBlock + 1)
	for b := firstBlock; b <= lastBlock; b++ {
		if h, err := eth.HeaderByNumber(ctx, new(big.Int).SetUint64(b)); err == nil && h.GasUsed > m.MaxBlockGasUsed {
			m.MaxBlockGasUsed = h.GasUsed
		}
	}
	// Gas per transfer, per asset, over every transaction that paid withdrawals (batches and any singles).
	rows, err := q.QueryContext(ctx, `SELECT w.asset, COUNT(*), t.id, t.gas_used FROM withdrawals w JOIN sent_transactions t ON t.id = w.sent_tx_id
		WHERE w.status = 'CONFIRMED' GROUP BY w.asset, t.id, t.gas_used`)
	if err != nil {
		return m, err
	}
	gas, count := map[string]float64{}, map[string]float64{}
	for rows.Next() {
		var (
			asset string
			c     int
			id    int64
			used  sql.NullInt64
		)
		if err := rows.Scan(&asset, &c, &id, &used); err != nil {
			rows.Close()
			return m, err
		}
		gas[asset] += float64(used.Int64)
		count[asset] += float64(c)
	}
	rows.Close()
	m.GasPerERC20 = gas[app.DevToken] / count[app.DevToken]
	m.GasPerNative = gas[app.DevNative] / count[app.DevNative]
	_ = q.QueryRowContext(ctx, `SELECT COUNT(*) FROM batches`).Scan(&m.Batches)
	var approve sql.NullInt64
	_ = q.QueryRowContext(ctx, `SELECT SUM(gas_used) FROM sent_transactions WHERE kind = 'approve'`).Scan(&approve)
	m.ApproveGas = uint64(approve.Int64)
	return m, nil
}
