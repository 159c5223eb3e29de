package chaos

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/big"
	mrand "math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/go-sql-driver/mysql"
	"github.com/redis/go-redis/v9"
	"gopkg.in/yaml.v3"

	"github.com/sluice-custody/sluice/contracts"
	"github.com/sluice-custody/sluice/internal/config"
	"github.com/sluice-custody/sluice/internal/devchain"
	"github.com/sluice-custody/sluice/internal/keys"
	"github.com/sluice-custody/sluice/internal/queue/sqsq"
	"github.com/sluice-custody/sluice/internal/store"
)

// Options configure a chaos run. Profile gives the options of a named run size.
type Options struct {
	Profile       string        // the profile the options came from, for the log and the replay command
	Withdrawals   int           // withdrawals posted
	Kills         int           // services SIGKILLed (and restarted) while they flow
	FaultRate     float64       // share of JSON-RPC requests the proxy faults
	SendFaultRate float64       // share of eth_sendRawTransaction requests faulted; negative: FaultRate
	Confirmations uint64        // confirmations before CONFIRMED
	Queue         string        // mysql or sqs
	Seed          uint64        // seeds amounts, replays, kills and faults
	Timeout       time.Duration // how long to wait, after the last post, for every withdrawal to end
	Stall         time.Duration // stop waiting early when no withdrawal changed status for this long (0: never)
	ReplayShare   float64       // share of withdrawals posted twice (sequentially or concurrently)
	ResendShare   float64       // share of withdrawals whose withdrawal.requested is sent again once signed
	PostRate      float64       // withdrawals posted per second
	Visibility    time.Duration // queue visibility timeout (short, to force redeliveries)
	BlockTime     time.Duration
	Concurrency   int      // per service; 0 keeps the defaults
	Instances     int      // processes per service, all on the same database, Redis, queue and chain
	KillServices  []string // the services kills choose from (default: all four)
	Recovery      RecoveryFaults

	Dir         string // run directory: config, keystore, logs
	Bin         string // the sluice binary
	MySQLDSN    string // a MariaDB server (root DSN); a fresh database is created in it
	RedisAddr   string
	SQSEndpoint string
	KeepDB      bool // keep the run's database even when the run passed

	Out io.Writer // progress and report (os.Stderr when nil)
}

func (o *Options) defaults() {
	if o.Withdrawals <= 0 {
		o.Withdrawals = 500
	}
	if o.Confirmations == 0 {
		o.Confirmations = 12
	}
	if o.Queue == "" {
		o.Queue = "mysql"
	}
	if o.Timeout <= 0 {
		o.Timeout = 4 * time.Minute
	}
	if o.PostRate <= 0 {
		o.PostRate = 10
	}
	if o.Visibility <= 0 {
		o.Visibility = 3 * time.Second
	}
	if o.BlockTime <= 0 {
		o.BlockTime = time.Second
	}
	if o.Out == nil {
		o.Out = os.Stderr
	}
	if len(o.KillServices) == 0 {
		o.KillServices = services
	}
	if o.Instances <= 0 {
		o.Instances = DefaultInstances
	}
}

// DefaultInstances is how many processes of each service a run starts unless told otherwise: two, the
// smallest number at which instances can race each other.
const DefaultInstances = 2

// services are the services a run starts, Options.Instances processes of each. A service added to
// Sluice (recovery, accountmgr) is added here: it is started, killed and scanned like the others. "api"
// must stay first: its instances are the ones the client talks to.
var services = []string{"api", "signer", "broadcaster", "monitor", "recovery"}

// run is the state of one chaos run.
type run struct {
	o     Options
	start time.Time
	rng   *mrand.Rand
	logMu sync.Mutex

	chain   *devchain.Chain
	eth     *ethclient.Client // straight to the node, never through the proxy
	proxy   *FaultProxy
	hot     common.Address
	hotKey  *ecdsa.PrivateKey // the harness signs the foreign transaction with it (RecoveryFaults.ForeignNonces)
	inj     injected
	addrs   contracts.Addresses
	chainID *big.Int
	dbName  string
	dsn     string
	rootDSN string
	db      *store.Store
	redis   *redis.Client
	sqs     *sqsq.Queue // the run's SQS queues (--queue sqs), to read DLQ depths
	apiURLs []string    // one per API instance; the client goes round them
	apiKey  string
	procs   map[string][]*proc // by service, one per instance
	keys    []secretKey        // the private keys the run made: none may show up anywhere

	progressing bool // withdrawals were still ending in the last 30 s of the wait
	stalled     bool // the wait ended because nothing moved for Options.Stall

	killsMu sync.Mutex
	kills   map[string]int
}

func newRun(o Options) *run {
	return &run{o: o, start: time.Now(), rng: mrand.New(mrand.NewPCG(o.Seed, streamWorkload)), procs: map[string][]*proc{}, kills: map[string]int{},
		inj: injected{foreign: map[uint64]common.Hash{}}}
}

func (r *run) logf(format string, args ...any) {
	r.logMu.Lock()
	defer r.logMu.Unlock()
	fmt.Fprintf(r.o.Out, "chaos %6.1fs  %s\n", time.Since(r.start).Seconds(), fmt.Sprintf(format, args...))
}

// Run performs a chaos run and returns its result. An error means the run could not be carried out
// (setup failed); violations are in the result.
func Run(ctx context.Context, o Options) (*Result, error) {
	o.defaults()
	if o.Queue != "mysql" && o.Queue != "sqs" {
		return nil, fmt.Errorf("--queue %q: mysql or sqs", o.Queue)
	}
	if o.Recovery.Cancels > 0 {
		return nil, fmt.Errorf("recovery faults: %d cancels asked for; the harness does not inject cancels yet", o.Recovery.Cancels)
	}
	if o.Recovery.Reorgs > 0 && o.Confirmations <= reorgDepth {
		return nil, fmt.Errorf("--reorgs: a reorg is %d blocks deep, below the confirmations; --confirmations %d leaves no room", reorgDepth, o.Confirmations)
	}
	for _, k := range o.KillServices {
		if !slices.Contains(services, k) {
			return nil, fmt.Errorf("--kill-services: %q is not one of %v", k, services)
		}
	}
	if o.MySQLDSN == "" || o.RedisAddr == "" || (o.Queue == "sqs" && o.SQSEndpoint == "") {
		return nil, errors.New("a MariaDB DSN and a Redis address are needed (and an SQS endpoint for --queue sqs): " +
			"run scripts/chaos.sh, or source the env file of scripts/services.sh")
	}
	r := newRun(o)
	defer r.teardown()
	r.logf("recovery faults: %d fee surges, %d silently dropped sends, %d foreign nonces, %d reorgs of %d blocks",
		o.Recovery.FeeSurges, o.Recovery.DroppedSends, o.Recovery.ForeignNonces, o.Recovery.Reorgs, reorgDepth)
	r.logf("seed %d; profile %s; run dir %s; queue %s; %d withdrawals, %d instances of each service, %d kills, fault rate %.2f, %d confirmations",
		o.Seed, o.Profile, o.Dir, o.Queue, o.Withdrawals, o.Instances, o.Kills, o.FaultRate, o.Confirmations)
	if err := r.setup(ctx); err != nil {
		return nil, err
	}
	res, err := r.exercise(ctx)
	if err != nil {
		return nil, err
	}
	return res, nil
}

func (r *run) setup(ctx context.Context) error {
	o := r.o
	for _, d := range []string{"logs", "keystore"} {
		if err := os.MkdirAll(filepath.Join(o.Dir, d), 0o700); err != nil {
			return err
		}
	}
	// The chain: one funder in genesis; it deploys the contracts and funds a fresh hot wallet. Both keys
	// come from the seed, so a replay has the same addresses (and the same contract addresses).
	funder, err := seededKey(o.Seed, "funder")
	if err != nil {
		return err
	}
	hotKey, err := seededKey(o.Seed, "hot wallet")
	if err != nil {
		return err
	}
	r.hot = crypto.PubkeyToAddress(hotKey.PublicKey)
	r.hotKey = hotKey
	r.keys = []secretKey{{"funder", crypto.FromECDSA(funder)}, {"hot wallet", crypto.FromECDSA(hotKey)}}
	r.chain, err = devchain.Start(devchain.Options{ChainID: 31337, BlockInterval: o.BlockTime, GasLimit: 30_000_000,
		Alloc: types.GenesisAlloc{crypto.PubkeyToAddress(funder.PublicKey): {Balance: units(2_000_000, 18)}}})
	if err != nil {
		return err
	}
	if r.eth, err = ethclient.DialContext(ctx, r.chain.URL); err != nil {
		return err
	}
	r.chainID = r.chain.ChainID
	if r.addrs, err = contracts.DeployAll(ctx, r.eth, funder, r.chainID); err != nil {
		return err
	}
	if err := contracts.Mint(ctx, r.eth, funder, r.chainID, r.addrs.USDT, r.hot, units(1_000_000_000, 6)); err != nil {
		return fmt.Errorf("mint USDT to the hot wallet: %w", err)
	}
	if _, err := contracts.Transact(ctx, r.eth, funder, r.chainID, r.hot, units(1_000_000, 18), nil, 21000); err != nil {
		return fmt.Errorf("fund the hot wallet: %w", err)
	}
	r.logf("chain %s (id %s, %s blocks); hot wallet %s; USDT %s", r.chain.URL, r.chainID, o.BlockTime, r.hot.Hex(), r.addrs.USDT.Hex())

	// The key, in an encrypted keystore the signer opens with a password from its environment.
	password := randomHex(16)
	freezeOnConflict := true
	ks, err := keys.NewKeystore(filepath.Join(o.Dir, "keystore"), password, keys.WithLightScrypt())
	if err != nil {
		return err
	}
	if _, err := ks.ImportECDSA(hotKey); err != nil {
		return fmt.Errorf("import the hot wallet key: %w", err)
	}
	ks.Close()

	// The fault proxy in front of the node: every service talks to the chain through it.
	r.proxy = NewFaultProxy(ProxyOptions{Target: r.chain.URL, Rate: o.FaultRate, SendRate: o.SendFaultRate, Seed: o.Seed,
		SilentDrops: o.Recovery.DroppedSends, SilentDropRate: silentDropRate})
	if err := r.proxy.Start("127.0.0.1:0"); err != nil {
		return err
	}
	r.logf("fault proxy %s: %.0f%% of requests faulted (%.0f%% of sends)", r.proxy.URL, 100*o.FaultRate, 100*r.proxy.opts.SendRate)

	// A fresh database.
	if err := r.freshDatabase(ctx); err != nil {
		return err
	}

	// The configuration: one file per instance, the same but for the ports every process listens on.
	ports, err := freePorts(o.Instances * len(services))
	if err != nil {
		return err
	}
	r.apiKey = "sk_chaos_" + randomHex(16)
	cfg := config.Config{
		Database: config.Database{DSN: r.dsn, MaxOpenConns: 20},
		Redis:    config.Redis{Addr: o.RedisAddr},
		Queue: config.Queue{Backend: o.Queue, VisibilityTimeout: config.Duration{Duration: o.Visibility},
			WaitTime: config.Duration{Duration: 500 * time.Millisecond}},
		Keys: config.Keys{Backend: "keystore", Dir: filepath.Join(o.Dir, "keystore"), PasswordEnv: "SLUICE_KEYSTORE_PASSWORD"},
		// The admin API is not what chaos exercises, and its instances would share one address.
		API: config.API{BootstrapKeyEnv: "SLUICE_API_KEY", AdminListen: config.AdminOff},
		Chains: []config.Chain{{
			Name: "local", ChainID: r.chainID.Uint64(), RPC: []string{r.proxy.URL}, Confirmations: o.Confirmations,
			BlockTime: config.Duration{Duration: o.BlockTime}, RPCTimeout: config.Duration{Duration: 10 * time.Second},
			Multicall3: config.Address(r.addrs.Multicall3), BatchContract: config.Address(r.addrs.BatchTransfer),
			Assets: []config.Asset{
				{Symbol: "POL", Decimals: 18},
				{Symbol: "USDT", Decimals: 6, Address: config.Address(r.addrs.USDT)},
			},
			HotWallets: []config.Address{config.Address(r.hot)},
			// The production default, kept: the foreign transaction freezes the wallet and the harness
			// lifts the freeze as an operator would, once the alert is open (foreignNonce).
			Recovery: config.Recovery{FreezeOnConflict: &freezeOnConflict},
		}},
	}
	if o.Queue == "sqs" {
		cfg.Queue.SQS = config.SQS{Region: "us-east-1", Endpoint: o.SQSEndpoint, Prefix: r.dbName + "-"}
	}
	cfgPaths := make([]string, o.Instances)
	listen := map[string][]string{} // service -> address of each instance
	for i := range o.Instances {
		cfg.Services = map[string]config.Service{}
		for j, name := range services {
			addr := ports[i*len(services)+j]
			listen[name] = append(listen[name], addr)
			if name == "api" {
				cfg.API.Listen = addr
				r.apiURLs = append(r.apiURLs, "http://"+addr)
				continue
			}
			cfg.Services[name] = config.Service{Listen: addr, Concurrency: o.Concurrency}
		}
		b, err := yaml.Marshal(&cfg)
		if err != nil {
			return err
		}
		cfgPaths[i] = filepath.Join(o.Dir, fmt.Sprintf("sluice-%d.yaml", i+1))
		if err := os.WriteFile(cfgPaths[i], b, 0o600); err != nil {
			return err
		}
	}
	cfgPath := cfgPaths[0]
	env := serviceEnv(password, r.apiKey)

	// Migrations, by the binary itself.
	migrate := exec.CommandContext(ctx, o.Bin, "migrate", "--config", cfgPath)
	migrate.Env = env
	if out, err := migrate.CombinedOutput(); err != nil {
		return fmt.Errorf("sluice migrate: %w\n%s", err, out)
	}
	if r.db, err = store.Open(ctx, r.dsn, 4); err != nil {
		return err
	}
	r.redis = redis.NewClient(&redis.Options{Addr: o.RedisAddr})
	if o.Queue == "sqs" {
		q, err := sqsq.New(ctx, sqsq.Config{Region: "us-east-1", Endpoint: o.SQSEndpoint, Prefix: r.dbName + "-",
			AccessKeyID: "local", SecretAccessKey: "local", VisibilityTimeout: o.Visibility})
		if err != nil {
			return err
		}
		if err := q.Setup(ctx); err != nil {
			return fmt.Errorf("sqs queue setup: %w", err)
		}
		r.sqs = q
	}

	// The services, Instances processes each, all started before any is waited for.
	for _, name := range services {
		for i := range o.Instances {
			addr := listen[name][i]
			p := &proc{name: instanceName(name, i, o.Instances), service: name, bin: o.Bin,
				args: []string{name, "--config", cfgPaths[i], "--log-level", "debug"}, env: env,
				logPath: filepath.Join(o.Dir, "logs", instanceName(name, i, o.Instances)+".log"),
				readyz:  "http://" + addr + "/readyz", metrics: "http://" + addr + "/metrics", logf: r.logf}
			r.procs[name] = append(r.procs[name], p)
			if err := p.start(); err != nil {
				return err
			}
		}
	}
	for _, p := range r.allProcs() {
		if err := p.waitReady(ctx, 60*time.Second); err != nil {
			return err
		}
	}
	var up []string
	for _, name := range services {
		up = append(up, fmt.Sprintf("%s %s", name, strings.Join(listen[name], " ")))
	}
	r.logf("services up: %s (logs in %s)", strings.Join(up, "; "), filepath.Join(o.Dir, "logs"))
	return nil
}

// instanceName names instance i (from 0) of a service in logs and file names: "signer-2". A run with
// one instance per service keeps the bare service names.
func instanceName(service string, i, n int) string {
	if n == 1 {
		return service
	}
	return fmt.Sprintf("%s-%d", service, i+1)
}

// allProcs lists every process of the run, service by service.
func (r *run) allProcs() []*proc {
	var out []*proc
	for _, name := range services {
		out = append(out, r.procs[name]...)
	}
	return out
}

// serviceEnv is the harness's environment without any SLUICE_ override (the config file is the whole
// truth), plus the keystore password and the API key.
func serviceEnv(password, apiKey string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "SLUICE_") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "SLUICE_KEYSTORE_PASSWORD="+password, "SLUICE_API_KEY="+apiKey)
}

func (r *run) freshDatabase(ctx context.Context) error {
	cfg, err := mysql.ParseDSN(r.o.MySQLDSN)
	if err != nil {
		return fmt.Errorf("mysql dsn: %w", err)
	}
	cfg.DBName = ""
	r.rootDSN = cfg.FormatDSN()
	r.dbName = fmt.Sprintf("chaos_%d_%d", time.Now().Unix(), os.Getpid())
	s, err := store.Open(ctx, r.rootDSN, 1)
	if err != nil {
		return err
	}
	defer s.Close()
	if _, err := s.DB.ExecContext(ctx, "CREATE DATABASE `"+r.dbName+"`"); err != nil {
		return fmt.Errorf("create database %s: %w", r.dbName, err)
	}
	cfg.DBName = r.dbName
	r.dsn = cfg.FormatDSN()
	return nil
}

func (r *run) dropDatabase() {
	s, err := store.Open(context.Background(), r.rootDSN, 1)
	if err != nil {
		return
	}
	defer s.Close()
	_, _ = s.DB.Exec("DROP DATABASE IF EXISTS `" + r.dbName + "`")
}

// stopServices stops every service gracefully (SIGTERM; SIGKILL after the grace).
func (r *run) stopServices() {
	var wg sync.WaitGroup
	for _, p := range r.allProcs() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.stop(30 * time.Second)
		}()
	}
	wg.Wait()
}

func (r *run) teardown() {
	r.stopServices()
	if r.db != nil {
		r.db.Close()
	}
	if r.redis != nil {
		r.redis.Close()
	}
	if r.proxy != nil {
		r.proxy.Close()
	}
	if r.eth != nil {
		r.eth.Close()
	}
	if r.chain != nil {
		r.chain.Close()
	}
}

func freePorts(n int) ([]string, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var out []string
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		out = append(out, l.Addr().String())
	}
	return out, nil
}

// The seed's independent random streams: what one part of the run draws never shifts another's draws.
const (
	streamWorkload = 0x776f726b6c6f6164 // recipients, amounts, assets, replays
	streamKills    = 0x6b696c6c73636864 // the kill schedule
	streamRecovery = 0x7265636f76657279 // the recovery faults' schedule
)

// seededKey derives a private key from the seed: chaos keys only ever hold dev-chain money.
func seededKey(seed uint64, what string) (*ecdsa.PrivateKey, error) {
	k, err := crypto.ToECDSA(crypto.Keccak256([]byte(fmt.Sprintf("sluice chaos %s key, seed %d", what, seed))))
	if err != nil {
		return nil, fmt.Errorf("%s key from seed %d: %w", what, seed, err)
	}
	return k, nil
}

func units(n int64, decimals int) *big.Int {
	return new(big.Int).Mul(big.NewInt(n), new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(decimals)), nil))
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}
