// Package devmode is `sluice dev`: the whole engine in one process on an embedded chain (internal/devchain)
// with its contracts deployed, an embedded MySQL-protocol database and Redis (internal/embedded), or on an
// outside node such as Hardhat's. It is its own package so that the release binary does not link the
// embedded chain and database: only a dev build (`make dev-build`, tag sluicedev) and tests import it.
package devmode

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/ethereum/go-ethereum/rpc"
	"github.com/go-sql-driver/mysql"

	"github.com/sluice-custody/sluice/admin"
	"github.com/sluice-custody/sluice/contracts"
	"github.com/sluice-custody/sluice/internal/app"
	"github.com/sluice-custody/sluice/internal/config"
	"github.com/sluice-custody/sluice/internal/devchain"
	"github.com/sluice-custody/sluice/internal/embedded"
	"github.com/sluice-custody/sluice/internal/keys"
	"github.com/sluice-custody/sluice/internal/store"
)

// Options configure a local engine with its own chain.
type Options struct {
	RPCAddr       string        // the chain's JSON-RPC address
	APIAddr       string        // the API's address
	AdminAddr     string        // the admin API's and dashboard's address (a free port when empty)
	BlockTime     time.Duration // a block at this interval
	Confirmations uint64
	DatabaseDSN   string // a MySQL/MariaDB server (its database is created afresh); embedded when empty
	RedisAddr     string // embedded when empty
	APIKey        string // generated when empty
	KeystoreDir   string // a temporary directory when empty
	Concurrency   int
	Queue         config.Queue // the MySQL queue when zero
	// RPC, when set, is an outside node (a Hardhat node, say) used instead of the embedded chain;
	// FundingKey is then a funded account there that deploys the contracts and funds the hot wallet.
	RPC        string
	FundingKey *ecdsa.PrivateKey
	// AppOptions are passed to app.Open (tests hand in a tracer provider with an in-memory exporter).
	AppOptions []app.Option
}

// Flags registers the options on fs, with environment defaults.
func (o *Options) Flags(fs *flag.FlagSet) {
	fs.StringVar(&o.RPCAddr, "rpc-addr", "127.0.0.1:8545", "address of the embedded chain's JSON-RPC")
	fs.StringVar(&o.APIAddr, "api-addr", "127.0.0.1:3000", "address of the API")
	fs.StringVar(&o.AdminAddr, "admin-addr", "127.0.0.1:3001", "address of the admin API and the ops dashboard")
	fs.DurationVar(&o.BlockTime, "block-time", 2*time.Second, "block interval")
	fs.Uint64Var(&o.Confirmations, "confirmations", 12, "confirmations before CONFIRMED")
	fs.StringVar(&o.DatabaseDSN, "database", os.Getenv("SLUICE_DATABASE_DSN"), "MySQL/MariaDB DSN (database sluice_dev by default); an embedded server when empty")
	fs.StringVar(&o.RedisAddr, "redis", os.Getenv("SLUICE_REDIS_ADDR"), "Redis address; an embedded server when empty")
	fs.StringVar(&o.RPC, "rpc", "", "use this node (e.g. http://127.0.0.1:8545 of `npx hardhat node`) instead of the embedded chain")
	fs.Func("funding-key", "hex private key of a funded account on --rpc (default: Hardhat's account #0)", func(v string) error {
		k, err := crypto.HexToECDSA(strings.TrimPrefix(v, "0x"))
		o.FundingKey = k
		return err
	})
	o.APIKey = os.Getenv("SLUICE_API_KEY")
}

// Stack is a started local engine: a chain with contracts, a funded hot wallet, a fresh database and
// the configuration that points every service at them.
type Stack struct {
	App       *app.App
	Chain     *devchain.Chain // nil when running against an outside node
	RPCURL    string
	ChainID   *big.Int
	Config    *config.Config
	APIKey    string
	APIURL    string
	HotWallet common.Address
	Contracts contracts.Addresses
	mysql     *embedded.MySQL
	redis     *embedded.Redis
	tmpKeys   string // the keystore directory Start made, removed on Close

	// AdminURL is the admin API's and dashboard's base URL; AdminPassword is the password of the first
	// operator, "admin" (role admin), made afresh at each start.
	AdminURL      string
	AdminPassword string
}

// Native and token asset symbols of the dev chain.
const (
	Native = "POL"
	Token  = "USDT"
)

// Start boots the chain, deploys the contracts, funds the hot wallet, prepares the database and opens
// the app. Run the services with stack.App.Run(ctx, app.Services...) and Close the stack after.
func Start(ctx context.Context, o Options, log *slog.Logger) (*Stack, error) {
	if o.BlockTime == 0 {
		o.BlockTime = 2 * time.Second
	}
	if o.Confirmations == 0 {
		o.Confirmations = 12
	}
	if o.APIKey == "" {
		o.APIKey = "sk_dev_" + randomHex(16)
	} else if err := app.CheckAPIKey(o.APIKey); err != nil {
		return nil, fmt.Errorf("SLUICE_API_KEY: %w", err)
	}
	// A taken API port fails now, naming itself, rather than after the chain and contracts are up.
	l, err := net.Listen("tcp", o.APIAddr)
	if err != nil {
		return nil, fmt.Errorf("API address %s is taken: %w", o.APIAddr, err)
	}
	l.Close()
	if o.AdminAddr == "" {
		if o.AdminAddr, err = freeAddr(); err != nil {
			return nil, err
		}
	} else if l, err := net.Listen("tcp", o.AdminAddr); err != nil {
		return nil, fmt.Errorf("admin address %s is taken: %w", o.AdminAddr, err)
	} else {
		l.Close()
	}
	hotKey, err := crypto.GenerateKey()
	if err != nil {
		return nil, err
	}
	hot := crypto.PubkeyToAddress(hotKey.PublicKey)
	st := &Stack{APIKey: o.APIKey, HotWallet: hot}
	ok := false
	defer func() {
		if !ok {
			st.Close()
		}
	}()
	// The embedded servers speak the MySQL and Redis protocols: the same drivers, SQL and Lua as
	// production run against them, only the addresses differ.
	if o.DatabaseDSN == "" {
		if st.mysql, err = embedded.StartMySQL(ctx, embedded.MySQLOptions{}); err != nil {
			return nil, err
		}
		o.DatabaseDSN = st.mysql.DSN()
	}
	if o.RedisAddr == "" {
		if st.redis, err = embedded.StartRedis(embedded.RedisOptions{}); err != nil {
			return nil, err
		}
		o.RedisAddr = st.redis.Addr()
	}
	funder := o.FundingKey
	if o.RPC == "" {
		if funder, err = crypto.GenerateKey(); err != nil {
			return nil, err
		}
		// Fast blocks while the contracts deploy, then the configured block time.
		if st.Chain, err = devchain.Start(devchain.Options{Addr: o.RPCAddr, BlockInterval: min(o.BlockTime, 100*time.Millisecond),
			Alloc: types.GenesisAlloc{crypto.PubkeyToAddress(funder.PublicKey): {Balance: coins(2_000_000, 18)}}}); err != nil {
			return nil, err
		}
		defer st.Chain.SealEvery(o.BlockTime)
		st.RPCURL = st.Chain.URL
		log.Info("embedded chain started", "rpc", st.RPCURL)
	} else {
		st.RPCURL = o.RPC
		if funder == nil {
			funder, _ = crypto.HexToECDSA(hardhatAccount0)
		}
	}
	// Its own transport, closed before the chain stops: a call canceled by Ctrl-C while dialing leaves a
	// connection that never sent a request, and the node's HTTP server waits 5 s for it to speak.
	hc := &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	defer hc.CloseIdleConnections()
	rc, err := rpc.DialOptions(ctx, st.RPCURL, rpc.WithHTTPClient(hc))
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", st.RPCURL, err)
	}
	client := ethclient.NewClient(rc)
	defer client.Close()
	if st.ChainID, err = client.ChainID(ctx); err != nil {
		return nil, fmt.Errorf("chain id of %s: %w", st.RPCURL, err)
	}
	if st.Contracts, err = contracts.DeployAll(ctx, client, funder, st.ChainID); err != nil {
		return nil, err
	}
	log.Info("contracts deployed", "multicall3", st.Contracts.Multicall3, "batch", st.Contracts.BatchTransfer, "usdt", st.Contracts.USDT)
	if err := contracts.Mint(ctx, client, funder, st.ChainID, st.Contracts.USDT, hot, coins(1_000_000_000, 6)); err != nil {
		return nil, fmt.Errorf("mint USDT to the hot wallet: %w", err)
	}
	// Half of what the funder holds, up to a million coins: stock Hardhat and Anvil accounts hold 10,000.
	funds, err := client.BalanceAt(ctx, crypto.PubkeyToAddress(funder.PublicKey), nil)
	if err != nil {
		return nil, fmt.Errorf("balance of the funding account: %w", err)
	}
	grant := new(big.Int).Div(funds, big.NewInt(2))
	if limit := coins(1_000_000, 18); grant.Cmp(limit) > 0 {
		grant = limit
	}
	if _, err := contracts.Transact(ctx, client, funder, st.ChainID, hot, grant, nil, 21000); err != nil {
		return nil, fmt.Errorf("fund the hot wallet: %w", err)
	}

	ksDir := o.KeystoreDir
	if ksDir == "" {
		if ksDir, err = os.MkdirTemp("", "sluice-dev-keys-"); err != nil {
			return nil, err
		}
		st.tmpKeys = ksDir
	}
	password := randomHex(16)
	ks, err := keys.NewKeystore(ksDir, password, keys.WithLightScrypt())
	if err != nil {
		return nil, err
	}
	if _, err := ks.ImportECDSA(hotKey); err != nil {
		return nil, fmt.Errorf("import hot wallet key: %w", err)
	}

	dsn, err := freshDatabase(ctx, o.DatabaseDSN)
	if err != nil {
		return nil, err
	}
	cfg := &config.Config{
		Database: config.Database{DSN: dsn},
		Redis:    config.Redis{Addr: o.RedisAddr},
		Queue:    o.Queue,
		API:      config.API{Listen: o.APIAddr, AdminListen: o.AdminAddr},
		Chains: []config.Chain{{
			Name: "local", ChainID: st.ChainID.Uint64(), RPC: []string{st.RPCURL}, Confirmations: o.Confirmations,
			BlockTime:     config.Duration{Duration: o.BlockTime},
			Multicall3:    config.Address(st.Contracts.Multicall3),
			BatchContract: config.Address(st.Contracts.BatchTransfer),
			Assets: []config.Asset{
				{Symbol: Native, Decimals: 18},
				{Symbol: Token, Decimals: 6, Address: config.Address(st.Contracts.USDT)},
			},
			HotWallets: []config.Address{config.Address(hot)},
		}},
	}
	if err := cfg.Finish(); err != nil {
		return nil, err
	}
	if o.Concurrency > 0 {
		for n, s := range cfg.Services {
			s.Concurrency = o.Concurrency
			cfg.Services[n] = s
		}
	}
	st.Config = cfg
	if st.App, err = app.Open(ctx, cfg, log, o.AppOptions...); err != nil {
		return nil, err
	}
	st.App.Keys = ks
	// A fresh JWT key each start (no variable to set): tokens of a previous run stop working with it.
	st.App.AdminJWTKey = []byte(randomHex(32))
	if err := st.App.Store.Migrate(ctx); err != nil {
		return nil, err
	}
	if _, err := st.App.Store.EnsureAPIClient(ctx, "default", o.APIKey); err != nil {
		return nil, err
	}
	st.AdminPassword = randomHex(12)
	if _, err := admin.AddOperator(ctx, st.App.Store, admin.Actor{Operator: "cli:sluice-dev", Remote: "local"}, "admin",
		st.AdminPassword, admin.RoleAdmin); err != nil {
		return nil, fmt.Errorf("create the first admin: %w", err)
	}
	st.APIURL = "http://" + o.APIAddr
	st.AdminURL = "http://" + o.AdminAddr
	ok = true
	return st, nil
}

// hardhatAccount0 is the private key of the first account of every Hardhat and Anvil node: public, funded
// with test coin only, and used only when --rpc names such a node.
const hardhatAccount0 = "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"

// Close closes the app, stops the chain and the embedded servers, and removes a keystore Start made.
func (s *Stack) Close() {
	if s.App != nil {
		s.App.Close()
	}
	if s.Chain != nil {
		s.Chain.Close()
	}
	if s.redis != nil {
		s.redis.Close()
	}
	if s.mysql != nil {
		s.mysql.Close()
	}
	if s.tmpKeys != "" {
		_ = os.RemoveAll(s.tmpKeys)
	}
}

// Banner is what `sluice dev` prints once ready.
func (s *Stack) Banner() string {
	var b strings.Builder
	fmt.Fprintf(&b, "\nSluice dev is ready.\n\n")
	fmt.Fprintf(&b, "  API        %s   (OpenAPI: %s/openapi.json)\n", s.APIURL, s.APIURL)
	fmt.Fprintf(&b, "  API key    %s\n", s.APIKey)
	fmt.Fprintf(&b, "  Dashboard  %s/ops/   (admin API: %s/admin/v1)\n", s.AdminURL, s.AdminURL)
	fmt.Fprintf(&b, "  Operator   admin / %s   (role admin; sluice ops login --url %s)\n", s.AdminPassword, s.AdminURL)
	fmt.Fprintf(&b, "  RPC        %s   (chain local, id %s)\n", s.RPCURL, s.ChainID)
	fmt.Fprintf(&b, "  Assets     %s (native, 18 decimals)\n", Native)
	fmt.Fprintf(&b, "             %s (6 decimals) at %s\n", Token, s.Contracts.USDT.Hex())
	fmt.Fprintf(&b, "  Multicall3 %s\n  Batch      %s\n", s.Contracts.Multicall3.Hex(), s.Contracts.BatchTransfer.Hex())
	fmt.Fprintf(&b, "  Hot wallet %s\n\n", s.HotWallet.Hex())
	fmt.Fprintf(&b, "Try:\n  curl -s -X POST %s/v1/withdrawals \\\n    -H 'Authorization: Bearer %s' -H 'Content-Type: application/json' \\\n"+
		"    -d '{\"external_id\":\"demo-1\",\"chain\":\"local\",\"asset\":\"%s\",\"to\":\"0x000000000000000000000000000000000000dEaD\",\"amount\":\"12.5\"}'\n\n",
		s.APIURL, s.APIKey, Token)
	ch := s.Config.Chains[0]
	fmt.Fprintf(&b, "Then follow it to CONFIRMED (%d blocks, about %s):\n  curl -s '%s/v1/withdrawals?external_id=demo-1' -H 'Authorization: Bearer %s'\n\n",
		ch.Confirmations, (time.Duration(ch.Confirmations) * ch.BlockTime.Duration).Round(time.Second), s.APIURL, s.APIKey)
	return b.String()
}

// Run runs `sluice dev` until ctx is canceled.
func Run(ctx context.Context, o Options, log *slog.Logger) error {
	st, err := Start(ctx, o, log)
	if err != nil {
		if ctx.Err() != nil {
			log.Info("stopped during start-up", "at", err)
			return nil
		}
		return err
	}
	defer st.Close()
	errc := make(chan error, 1)
	go func() { errc <- st.App.Run(ctx, app.Services...) }()
	listening, err := waitListening(ctx, o.APIAddr, 10*time.Second, errc)
	if err != nil {
		return err
	}
	if listening {
		fmt.Print(st.Banner())
	}
	return <-errc
}

// waitListening waits for addr to accept connections. An engine that stops first returns its own error:
// that, not a timeout, is what tells the user what went wrong. Ctrl-C while waiting is no error: the
// caller still waits for the engine to stop cleanly.
func waitListening(ctx context.Context, addr string, d time.Duration, stopped <-chan error) (bool, error) {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return true, nil
		}
		select {
		case <-ctx.Done():
			return false, nil
		case err := <-stopped:
			return false, fmt.Errorf("engine stopped before the API listened on %s: %w", addr, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
	return false, fmt.Errorf("API did not listen on %s within %s", addr, d)
}

// freshDatabase drops and creates the DSN's database (sluice_dev when it names none): every dev start
// is a new chain, so state from a previous one would only point at transactions that no longer exist.
func freshDatabase(ctx context.Context, dsn string) (string, error) {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return "", fmt.Errorf("dev database dsn: %w", err)
	}
	name := cfg.DBName
	if name == "" {
		name = "sluice_dev"
	}
	cfg.DBName = ""
	s, err := store.Open(ctx, cfg.FormatDSN(), 1)
	if err != nil {
		return "", err
	}
	defer s.Close()
	for _, stmt := range []string{"DROP DATABASE IF EXISTS `" + name + "`", "CREATE DATABASE `" + name + "`"} {
		if _, err := s.DB.ExecContext(ctx, stmt); err != nil {
			return "", fmt.Errorf("create dev database %s: %w", name, err)
		}
	}
	cfg.DBName = name
	return cfg.FormatDSN(), nil
}

// freeAddr is a loopback address nothing listens on now.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func coins(n int64, decimals int) *big.Int {
	return new(big.Int).Mul(big.NewInt(n), new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(decimals)), nil))
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}
