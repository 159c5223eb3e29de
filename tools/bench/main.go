// Command bench measures Sluice on this machine: the same mix with batching on (-n, 10,000 transfers, from
// -wallets, 4, hot wallets) and off (-n-unbatched, 2,000, from one wallet: the unbatched single-wallet
// figure) on an embedded chain (2 s blocks, 30M gas), and the API's intake alone; then intake and batched inclusion
// again with -instances (2) instances of every service on one database, Redis and chain, side by side
// with one, each mode's recipients' balances checked on chain. It needs a MariaDB and a Redis
// (SLUICE_TEST_MYSQL_DSN, SLUICE_TEST_REDIS_ADDR; bench/run.sh starts both) and prints human-readable
// figures, then `RESULT {json}` as its last line.
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"runtime/pprof"
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

	"github.com/sluice-custody/sluice/client"
	"github.com/sluice-custody/sluice/contracts"
	"github.com/sluice-custody/sluice/internal/app"
	"github.com/sluice-custody/sluice/internal/config"
	"github.com/sluice-custody/sluice/internal/devchain"
	"github.com/sluice-custody/sluice/internal/devmode"
	"github.com/sluice-custody/sluice/internal/queue"
	"github.com/sluice-custody/sluice/internal/store"
	"github.com/sluice-custody/sluice/multicall"
	"github.com/sluice-custody/sluice/signer"
)

var (
	transfers   = flag.Int("n", 10000, "transfers of the batched modes (half USDT to new holders, half POL to funded accounts)")
	unbatched   = flag.Int("n-unbatched", 2000, "transfers of the one-tx-per-withdrawal mode (same mix; its rate needs fewer)")
	wallets     = flag.Int("wallets", 4, "hot wallets of the batched modes (the unbatched mode uses one: the single-wallet figure)")
	apiRequests = flag.Int("api-n", 12000, "POST /v1/withdrawals requests for the intake measurement")
	apiConc     = flag.Int("api-concurrency", 32, "concurrent API clients")
	blockTime   = flag.Duration("block-time", 2*time.Second, "block interval")
	gasLimit    = flag.Uint64("gas-limit", 30_000_000, "block gas limit")
	modeTimeout = flag.Duration("mode-timeout", 5*time.Minute, "give up on a mode after this long")
	verbose     = flag.Bool("v", false, "log the services at info level")
	cpuProfile  = flag.String("cpuprofile", "", "write a CPU profile of the whole run (chain included: it runs in this process) to this file")
	intakeOnly  = flag.Bool("intake-only", false, "measure only the API's intake variants (-intake-variants), not inclusion")
	batchedOnly = flag.Bool("batched-only", false, "measure only batched inclusion with one instance (no intake, unbatched or instances modes): "+
		"for iterating on the batcher; its RESULT line has only that mode's fields")
	timeline  = flag.Bool("timeline", false, "print each inclusion mode's timeline per block interval: withdrawals accepted, claimed, signed, and included")
	instances = flag.Int("instances", 2, "also measure intake and batched inclusion with this many instances of every service "+
		"(API, signer with its batcher, broadcaster, monitor) on one database, Redis and chain; 1 skips it")
)

func main() {
	flag.Parse()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}
	if err := run(); err != nil {
		pprof.StopCPUProfile()
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

type modeResult struct {
	Batching        bool
	Instances       int
	Transfers       int
	Confirmed       int
	Failed          int
	Wallets         int
	AwaitingFundsS  float64 // the longest any withdrawal waited awaiting_funds before it was signed
	TopUps          int     // accountmgr's top-ups confirmed during the run (the dev stack's main account)
	GasPerERC20     float64
	GasPerNative    float64
	Batches         int
	ApproveGas      uint64
	Seconds         float64
	IncludedPerSec  float64
	SubmitSeconds   float64
	Blocks          int
	MaxBlockGasUsed uint64
	PaidTwice       int // recipients holding more than their one withdrawal
	Unpaid          int // recipients of a CONFIRMED withdrawal holding less
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
	if *intakeOnly {
		intake, err := intakeVariants(ctx, log, ch, funder, dsn, redisAddr)
		if err != nil {
			return err
		}
		res := map[string]any{}
		intake.addTo(res)
		b, _ := json.Marshal(res)
		fmt.Printf("RESULT %s\n", b)
		return nil
	}
	if *batchedOnly {
		on, err := runMode(ctx, log, ch, funder, dsn, redisAddr, true, 1, *wallets, *transfers)
		if err != nil {
			return fmt.Errorf("batching on: %w", err)
		}
		printMode(on)
		ceiling := float64(*gasLimit) / ((on.GasPerERC20 + on.GasPerNative) / 2) / blockTime.Seconds()
		b, _ := json.Marshal(map[string]any{"transfers": on.Transfers, "wallets": on.Wallets, "included_per_sec": round1(on.IncludedPerSec),
			"chain_ceiling_per_sec": round1(ceiling), "batches": on.Batches, "failed": on.Failed, "paid_twice": on.PaidTwice, "unpaid": on.Unpaid,
			"gas_per_transfer_erc20": round(on.GasPerERC20), "gas_per_transfer_native": round(on.GasPerNative), "submit_s": round1(on.SubmitSeconds)})
		fmt.Printf("RESULT %s\n", b)
		return nil
	}
	apiRes, err := apiBench(ctx, log, ch, funder, dsn, redisAddr, 1, intakeDefault)
	if err != nil {
		return fmt.Errorf("api: %w", err)
	}
	printAPI(apiRes)
	var apiN apiResult
	if *instances > 1 {
		if apiN, err = apiBench(ctx, log, ch, funder, dsn, redisAddr, *instances, intakeDefault); err != nil {
			return fmt.Errorf("api, %d instances: %w", *instances, err)
		}
		printAPI(apiN)
	}
	intake, err := intakeVariants(ctx, log, ch, funder, dsn, redisAddr)
	if err != nil {
		return err
	}

	off, err := runMode(ctx, log, ch, funder, dsn, redisAddr, false, 1, 1, *unbatched)
	if err != nil {
		return fmt.Errorf("batching off: %w", err)
	}
	printMode(off)
	on, err := runMode(ctx, log, ch, funder, dsn, redisAddr, true, 1, *wallets, *transfers)
	if err != nil {
		return fmt.Errorf("batching on: %w", err)
	}
	printMode(on)
	var onN modeResult
	if *instances > 1 {
		if onN, err = runMode(ctx, log, ch, funder, dsn, redisAddr, true, *instances, *wallets, *transfers); err != nil {
			return fmt.Errorf("batching on, %d instances: %w", *instances, err)
		}
		printMode(onN)
	}

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
	if *instances > 1 {
		fmt.Printf("instances (1 vs %d of every service): intake %.0f vs %.0f req/s (p99 %.1f vs %.1f ms); batched inclusion %.1f vs %.1f transfers/s; "+
			"paid twice %d vs %d, unpaid %d vs %d\n", *instances, apiRes.perSec, apiN.perSec, apiRes.p99, apiN.p99,
			on.IncludedPerSec, onN.IncludedPerSec, on.PaidTwice, onN.PaidTwice, on.Unpaid, onN.Unpaid)
	}
	res := map[string]any{
		"transfers":                         on.Transfers,
		"unbatched_transfers":               off.Transfers,
		"wallets":                           on.Wallets,
		"unbatched_wallets":                 off.Wallets,
		"awaiting_funds_max_s":              round1(max(on.AwaitingFundsS, off.AwaitingFundsS)),
		"topups":                            on.TopUps + off.TopUps,
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
		"paid_twice":                        on.PaidTwice + off.PaidTwice,
		"unpaid":                            on.Unpaid + off.Unpaid,
	}
	if *instances > 1 {
		res["instances"] = *instances
		res["instances_api_req_per_sec"] = round1(apiN.perSec)
		res["instances_api_p50_ms"] = round1(apiN.p50)
		res["instances_api_p99_ms"] = round1(apiN.p99)
		res["instances_included_per_sec"] = round1(onN.IncludedPerSec)
		res["instances_batches"] = onN.Batches
		res["instances_failed"] = onN.Failed
		res["instances_paid_twice"] = onN.PaidTwice
		res["instances_unpaid"] = onN.Unpaid
	}
	intake.addTo(res)
	b, _ := json.Marshal(res)
	fmt.Printf("RESULT %s\n", b)
	return nil
}

func round(f float64) int64    { return int64(f + 0.5) }
func round1(f float64) float64 { return float64(int64(f*10+0.5)) / 10 }

func printAPI(r apiResult) {
	fmt.Printf("API intake (%s), %d instance(s): %d POST /v1/withdrawals at concurrency %d: %.0f req/s, p50 %.1f ms, p99 %.1f ms (%d non-2xx); "+
		"CPU per request %.0f µs here + %.0f µs database\n",
		r.variant, r.instances, r.n, *apiConc, r.perSec, r.p50, r.p99, r.errors, r.cpuPerReq.self, r.cpuPerReq.db)
	if r.firstErr != nil {
		fmt.Printf("  the first of the %d retried requests: %v\n", r.errors, r.firstErr)
	}
	if r.node.calls > 0 {
		fmt.Printf("  node: %.0f calls in %.0f HTTP requests (%.1f a request)\n", r.node.calls, r.node.requests, r.node.calls/max(r.node.requests, 1))
	}
}

func printMode(m modeResult) {
	name := "one tx per withdrawal"
	if m.Batching {
		name = fmt.Sprintf("batching on (%d batches)", m.Batches)
	}
	name += fmt.Sprintf(", %d instance(s) of each service, %d hot wallet(s)", m.Instances, m.Wallets)
	fmt.Printf("%s: %d transfers, %d confirmed, %d failed; gas/transfer ERC-20 %.0f, native %.0f; accepted in %.1fs; "+
		"first accept → last inclusion %.1fs = %.1f transfers/s over %d blocks (fullest block %d gas)\n",
		name, m.Transfers, m.Confirmed, m.Failed, m.GasPerERC20, m.GasPerNative, m.SubmitSeconds, m.Seconds, m.IncludedPerSec, m.Blocks, m.MaxBlockGasUsed)
	fmt.Printf("  balances: paid twice %d, confirmed but unpaid %d; longest awaiting_funds wait %.1fs; top-ups %d\n", m.PaidTwice, m.Unpaid, m.AwaitingFundsS, m.TopUps)
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
func stack(ctx context.Context, log *slog.Logger, ch *devchain.Chain, funder *ecdsa.PrivateKey, dsn, redisAddr, db string,
	wallets int, opts ...app.Option) (*devmode.Stack, error) {
	return devmode.Start(ctx, devmode.Options{RPC: ch.URL, FundingKey: funder, APIAddr: freeAddr(), BlockTime: *blockTime,
		Confirmations: 1, DatabaseDSN: withDB(dsn, db), RedisAddr: redisAddr, APIKey: "sk_bench_" + strings.Repeat("0", 24),
		Concurrency: 8, Wallets: wallets, AppOptions: opts}, log)
}

type apiResult struct {
	variant       intakeVariant
	instances     int
	held          int // withdrawals created AWAITING_APPROVAL (policy+webhooks)
	delivered     int // their withdrawal.awaiting_approval events the local receiver got
	n, errors     int
	firstErr      error // of the retried requests (errors > 0)
	perSec        float64
	p50, p99      float64
	firstAccepted time.Time
	cpuPerReq     cpuUse // CPU per accepted request: this process (API, chain, clients) and the database server
	node          rpcUse // what the API asked of the node (the recipient checks)
}

// rpcUse is the node traffic of the apps: HTTP requests and the calls they carried.
type rpcUse struct{ requests, calls float64 }

func (u rpcUse) sub(o rpcUse) rpcUse { return rpcUse{u.requests - o.requests, u.calls - o.calls} }

// nodeUse reads the apps' node client metrics: a batch is one request (sluice_rpc_requests_total
// method "batch") carrying sluice_rpc_batch_calls calls; any other method is one request and one call.
func nodeUse(apps []*app.App) rpcUse {
	var u rpcUse
	for _, a := range apps {
		mfs, err := a.Registry.Gather()
		if err != nil {
			continue
		}
		for _, mf := range mfs {
			switch mf.GetName() {
			case "sluice_rpc_requests_total":
				for _, m := range mf.GetMetric() {
					u.requests += m.GetCounter().GetValue()
					batch := false
					for _, l := range m.GetLabel() {
						batch = batch || (l.GetName() == "method" && l.GetValue() == "batch")
					}
					if !batch {
						u.calls += m.GetCounter().GetValue()
					}
				}
			case "sluice_rpc_batch_calls":
				for _, m := range mf.GetMetric() {
					u.calls += m.GetHistogram().GetSampleSum()
				}
			}
		}
	}
	return u
}

func apiBench(ctx context.Context, log *slog.Logger, ch *devchain.Chain, funder *ecdsa.PrivateKey, dsn, redisAddr string, n int,
	variant intakeVariant) (apiResult, error) {
	db := "sluice_bench_api"
	if n > 1 {
		db = fmt.Sprintf("sluice_bench_api_%d", n)
	}
	if variant != intakeDefault {
		db += "_" + strings.ReplaceAll(string(variant), "+", "_")
	}
	var opts []app.Option
	if variant == intakePlain {
		opts = append(opts, app.WithoutPolicy())
	}
	st, err := stack(ctx, log, ch, funder, dsn, redisAddr, db, 1, opts...)
	if err != nil {
		return apiResult{}, err
	}
	defer st.Close()
	// The API's own per-client limit (2000/s, burst 4000 by default) would cap what is measured.
	st.Config.API.RateLimit = config.RateLimit{Off: true}
	var recv *receiver
	if variant == intakePolicyWebhooks || variant == intakePolicyDaily {
		if recv, err = policyAndWebhooks(ctx, st, variant == intakePolicyDaily); err != nil {
			return apiResult{}, err
		}
		defer recv.Close()
	}
	wctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	urls := []string{st.APIURL}
	apps := []*app.App{st.App}
	for range n - 1 {
		a, url, err := extraInstance(ctx, st, log, opts...)
		if err != nil {
			return apiResult{}, err
		}
		defer a.Close()
		apps, urls = append(apps, a), append(urls, url)
	}
	for _, a := range apps {
		wg.Add(1)
		go func() { defer wg.Done(); _ = a.Run(wctx, "api") }()
	}
	for _, u := range urls {
		if err := waitAPI(u, st.APIKey); err != nil {
			return apiResult{}, err
		}
	}
	reqs := make([]request, *apiRequests)
	randomAddr := addrs{}.next
	for i := range reqs {
		reqs[i] = request{asset: devmode.Token, to: randomAddr(), amount: "1.5"}
		if i%2 == 1 {
			reqs[i] = request{asset: devmode.Native, to: randomAddr(), amount: "0.001"}
		}
		if recv != nil && i%heldEvery == 0 {
			reqs[i].amount = heldAmount // above the approval threshold: held, and a webhook event
		}
	}
	before := nodeUse(apps)
	r, err := post(urls, st.APIKey, "api", reqs)
	r.variant = variant
	r.node = nodeUse(apps).sub(before)
	if err != nil || recv == nil {
		return r, err
	}
	r.held = (len(reqs) + heldEvery - 1) / heldEvery
	r.delivered, err = recv.wait(r.held, 60*time.Second)
	return r, err
}

// extraInstance opens one more instance of every service on st's database, Redis, queue and chain, as
// a second process would: its own connections, metrics and API port. It shares st's key handle: a
// second process would open the same keystore.
func extraInstance(ctx context.Context, st *devmode.Stack, log *slog.Logger, opts ...app.Option) (*app.App, string, error) {
	cfg := *st.Config
	cfg.API.Listen = freeAddr()
	cfg.API.AdminListen = freeAddr()
	a, err := app.Open(ctx, &cfg, log, opts...)
	if err != nil {
		return nil, "", fmt.Errorf("second instance: %w", err)
	}
	a.Keys, a.AdminJWTKey = st.App.Keys, st.App.AdminJWTKey
	return a, "http://" + cfg.API.Listen, nil
}

type request struct {
	asset  string
	to     common.Address
	amount string
}

// addrs hands out fresh addresses nobody holds a key of (random bytes: deriving one from a key cost the
// bench seconds of CPU per mode), no two sharing their first and last two bytes: the API holds a
// withdrawal whose destination matches a recent one's edges but not its middle (address poisoning), and
// among 10,000 random addresses such a pair turns up in about one run in a hundred, which held one
// withdrawal for approval and left the mode waiting for it until -mode-timeout.
type addrs map[[4]byte]bool

func (u addrs) next() common.Address {
	for {
		var a common.Address
		_, _ = rand.Read(a[:])
		edge := [4]byte{a[0], a[1], a[18], a[19]}
		if !u[edge] {
			u[edge] = true
			return a
		}
	}
}

var httpClient = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 256, MaxConnsPerHost: 256}}

func waitAPI(url, key string) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		req, _ := http.NewRequest("GET", url+"/v1/chains", nil)
		req.Header.Set("Authorization", "Bearer "+key)
		if resp, err := httpClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("API at %s never answered", url)
}

// post sends every request with *apiConc clients, request i to API instance i mod len(urls) (a round-robin
// load balancer), and measures the latencies of the accepted ones.
func post(urls []string, key, prefix string, reqs []request) (apiResult, error) {
	var (
		next     atomic.Int64
		mu       sync.Mutex
		lat      []time.Duration
		errs     int
		first    time.Time
		firstErr error
		wg       sync.WaitGroup
	)
	clients := make([]*client.Client, len(urls))
	for i, u := range urls {
		clients[i] = client.New(u, key, httpClient)
	}
	start, cpu0 := time.Now(), cpuNow()
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
				body := client.CreateWithdrawal{ExternalID: fmt.Sprintf("%s-%d", prefix, i), Chain: "local", Asset: r.asset,
					To: r.to.Hex(), Amount: r.amount}
				for attempt := 0; ; attempt++ {
					t0 := time.Now()
					// Through the Go client, as an exchange's backend would call the API.
					_, _, err := clients[(i+attempt)%len(clients)].CreateWithdrawal(context.Background(), body)
					d := time.Since(t0)
					mu.Lock()
					if err == nil { // 201, or 200 for a replay of a create whose answer was lost
						lat = append(lat, d)
						if first.IsZero() || t0.Add(d).Before(first) {
							first = t0.Add(d)
						}
						mu.Unlock()
						break
					}
					errs++
					if firstErr == nil {
						firstErr = err
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
	elapsed, cpu := time.Since(start), cpuNow().sub(cpu0)
	if len(lat) < len(reqs) {
		return apiResult{}, fmt.Errorf("%d of %d requests never accepted (first error: %v)", len(reqs)-len(lat), len(reqs), firstErr)
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	ms := func(q float64) float64 { return float64(lat[int(q*float64(len(lat)-1))].Microseconds()) / 1000 }
	return apiResult{instances: len(urls), n: len(lat), errors: errs, firstErr: firstErr, perSec: float64(len(lat)) / elapsed.Seconds(), p50: ms(0.50), p99: ms(0.99), firstAccepted: first,
		cpuPerReq: cpu.perReq(len(lat))}, nil
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

func runMode(ctx context.Context, log *slog.Logger, ch *devchain.Chain, funder *ecdsa.PrivateKey, dsn, redisAddr string, batching bool, n, wallets, transfers int) (modeResult, error) {
	db := "sluice_bench_single"
	if batching {
		db = "sluice_bench_batch"
	}
	if n > 1 {
		db += fmt.Sprintf("_%d", n)
	}
	st, err := stack(ctx, log, ch, funder, dsn, redisAddr, db, wallets)
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

	reqs := make([]request, transfers)
	randomAddr := addrs{}.next
	var nativeTo []common.Address
	for i := range reqs {
		if i%2 == 0 {
			reqs[i] = request{asset: devmode.Token, to: randomAddr(), amount: "1.5"}
		} else {
			reqs[i] = request{asset: devmode.Native, to: randomAddr(), amount: "0.001"}
			nativeTo = append(nativeTo, reqs[i].to)
		}
	}
	if err := fundAccounts(ctx, eth, funder, ch.ChainID, st.Contracts.Multicall3, nativeTo); err != nil {
		return modeResult{}, err
	}

	apps := []*app.App{st.App}
	urls := []string{st.APIURL}
	for range n - 1 {
		a, url, err := extraInstance(ctx, st, log)
		if err != nil {
			return modeResult{}, err
		}
		defer a.Close()
		apps, urls = append(apps, a), append(urls, url)
	}
	a := st.App
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
	// Every instance: the API, a signer (consumer and, batching, its batcher), a broadcaster and a monitor.
	for i, ia := range apps {
		s, err := signer.New(signer.Deps{Store: ia.Store, Queue: ia.Sender, Keys: ia.Keys, Nonces: ia.Nonces,
			Chains: map[string]signer.ChainDeps{cfg.Name: {Config: *cfg, Client: ia.Chains[cfg.Name]}}},
			log.With("service", "signer", "instance", i+1), signer.NopMetrics())
		if err != nil {
			cancel()
			return modeResult{}, err
		}
		consumer, err := queue.NewConsumer(queue.ConsumerDeps{Queue: ia.Queue, Name: queue.TxRequest, Handler: s.Handle, Concurrency: 8,
			Visibility: 30 * time.Second, Wait: time.Second}, log, queue.NopMetrics())
		if err != nil {
			cancel()
			return modeResult{}, err
		}
		start(func(ctx context.Context) error { return ia.Run(ctx, "api", "broadcaster", "monitor") })
		start(consumer.Run)
		if batching {
			start(s.RunBatcher)
		}
	}
	defer func() { cancel(); wg.Wait() }()
	for _, u := range urls {
		if err := waitAPI(u, st.APIKey); err != nil {
			return modeResult{}, err
		}
	}
	t0 := time.Now()
	pr, err := post(urls, st.APIKey, db, reqs)
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
	m := modeResult{Batching: batching, Instances: n, Transfers: len(reqs), Wallets: wallets}
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
	m.GasPerERC20 = gas[devmode.Token] / count[devmode.Token]
	m.GasPerNative = gas[devmode.Native] / count[devmode.Native]
	_ = q.QueryRowContext(ctx, `SELECT COUNT(*) FROM batches`).Scan(&m.Batches)
	var waited sql.NullFloat64
	if err := q.QueryRowContext(ctx, `SELECT MAX(TIMESTAMPDIFF(MICROSECOND, a.created_at, s.created_at)) / 1e6 FROM withdrawal_history a
		JOIN withdrawal_history s ON s.withdrawal_id = a.withdrawal_id AND s.to_status = 'SIGNED'
		WHERE a.from_status = 'PENDING' AND a.to_status = 'PENDING' AND a.reason LIKE 'awaiting_funds%'`).Scan(&waited); err != nil {
		return m, err
	}
	m.AwaitingFundsS = waited.Float64
	if err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM balance_transfers WHERE kind = ? AND status = ?`,
		store.TransferTopUp, store.TransferConfirmed).Scan(&m.TopUps); err != nil {
		return m, err
	}
	var approve sql.NullInt64
	_ = q.QueryRowContext(ctx, `SELECT SUM(gas_used) FROM sent_transactions WHERE kind = 'approve'`).Scan(&approve)
	m.ApproveGas = uint64(approve.Int64)
	if *timeline {
		seenMu.Lock()
		err := printTimeline(ctx, q, seen, pr.firstAccepted, firstBlock, lastBlock)
		seenMu.Unlock()
		if err != nil {
			return m, err
		}
	}
	if err := checkBalances(ctx, eth, st, reqs, &m); err != nil {
		return m, err
	}
	return m, nil
}

// checkBalances reads every recipient's balance on chain: each was posted one withdrawal (native
// recipients hold 1 wei from the funding before it), so more is a double payment and less, for a
// CONFIRMED withdrawal, a lost one.
func checkBalances(ctx context.Context, eth *ethclient.Client, st *devmode.Stack, reqs []request, m *modeResult) error {
	confirmed := map[common.Address]bool{}
	rows, err := st.App.Store.DB.QueryContext(ctx, `SELECT to_address FROM withdrawals WHERE status = 'CONFIRMED'`)
	if err != nil {
		return err
	}
	for rows.Next() {
		var a string
		if err := rows.Scan(&a); err != nil {
			rows.Close()
			return err
		}
		confirmed[common.HexToAddress(a)] = true
	}
	rows.Close()
	token := st.Config.Chains[0].Assets
	var tokenAddr common.Address
	for _, a := range token {
		if a.Symbol == devmode.Token {
			tokenAddr = a.Address.Common()
		}
	}
	for _, r := range reqs {
		var (
			got  *big.Int
			want *big.Int
			err  error
		)
		if r.asset == devmode.Token {
			got, err = contracts.TokenBalance(ctx, eth, tokenAddr, r.to)
			want = big.NewInt(1_500_000) // 1.5 at 6 decimals
		} else {
			got, err = eth.BalanceAt(ctx, r.to, nil)
			want = new(big.Int).Add(big.NewInt(1), big.NewInt(1e15)) // 1 wei funding + 0.001
		}
		if err != nil {
			return fmt.Errorf("balance of %s: %w", r.to, err)
		}
		switch c := got.Cmp(want); {
		case c > 0:
			m.PaidTwice++
		case c < 0 && confirmed[r.to]:
			m.Unpaid++
		}
	}
	return nil
}

// printTimeline prints, per block interval from the first accepted request, how many withdrawals were
// accepted, claimed (→ SIGNING), signed (→ SIGNED) and included (their transaction's block first seen),
// so the stage that falls behind shows. Database times are taken relative to the first withdrawal's
// created_at, the chain's to the first accepted request: the two origins differ by the request's
// latency, a few ms.
func printTimeline(ctx context.Context, q *sql.DB, seen map[uint64]time.Time, first time.Time, from, to uint64) error {
	slot := func(d float64) int { return int(d / blockTime.Seconds()) }
	type row struct{ acc, claim, sign, incl int }
	rows := map[int]*row{}
	at := func(i int) *row {
		if rows[i] == nil {
			rows[i] = &row{}
		}
		return rows[i]
	}
	var origin time.Time
	if err := q.QueryRowContext(ctx, `SELECT MIN(created_at) FROM withdrawals`).Scan(&origin); err != nil {
		return err
	}
	rs, err := q.QueryContext(ctx, `SELECT 'a', created_at FROM withdrawals
		UNION ALL SELECT IF(to_status = 'SIGNING', 'c', 's'), created_at FROM withdrawal_history WHERE to_status IN ('SIGNING','SIGNED')`)
	if err != nil {
		return err
	}
	for rs.Next() {
		var (
			k string
			t time.Time
		)
		if err := rs.Scan(&k, &t); err != nil {
			rs.Close()
			return err
		}
		r := at(slot(t.Sub(origin).Seconds()))
		switch k {
		case "a":
			r.acc++
		case "c":
			r.claim++
		default:
			r.sign++
		}
	}
	rs.Close()
	if err := rs.Err(); err != nil {
		return err
	}
	rs, err = q.QueryContext(ctx, `SELECT t.block_number, COUNT(*) FROM withdrawals w JOIN sent_transactions t ON t.id = w.sent_tx_id
		WHERE w.status = 'CONFIRMED' GROUP BY t.block_number`)
	if err != nil {
		return err
	}
	for rs.Next() {
		var b uint64
		var n int
		if err := rs.Scan(&b, &n); err != nil {
			rs.Close()
			return err
		}
		if t, ok := seen[b]; ok {
			at(slot(t.Sub(first).Seconds())).incl += n
		}
	}
	rs.Close()
	last := 0
	for i := range rows {
		last = max(last, i)
	}
	fmt.Printf("  timeline per %s (s: accepted, claimed, signed, included):", *blockTime)
	for i := 0; i <= last; i++ {
		r := at(i)
		fmt.Printf(" %.0f:%d/%d/%d/%d", float64(i)*blockTime.Seconds(), r.acc, r.claim, r.sign, r.incl)
	}
	fmt.Println()
	return nil
}
