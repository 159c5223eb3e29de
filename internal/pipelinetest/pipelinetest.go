// Package pipelinetest assembles the real parts of the withdrawal pipeline for component tests: a fresh
// MariaDB database, the MySQL queue, Redis, an embedded chain with the contracts deployed, an encrypted
// keystore holding a funded hot wallet, and the signer, broadcaster and monitor wired to them. Tests drive
// the handlers message by message, so each exactly-once rule can be exercised on its own.
package pipelinetest

import (
	"context"
	"database/sql"
	"log/slog"
	"math/big"
	"os"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/sluice-custody/sluice/broadcaster"
	"github.com/sluice-custody/sluice/contracts"
	"github.com/sluice-custody/sluice/contracts/bindings"
	"github.com/sluice-custody/sluice/internal/chain"
	"github.com/sluice-custody/sluice/internal/config"
	"github.com/sluice-custody/sluice/internal/devchain"
	"github.com/sluice-custody/sluice/internal/keys"
	"github.com/sluice-custody/sluice/internal/nonce"
	"github.com/sluice-custody/sluice/internal/queue"
	"github.com/sluice-custody/sluice/internal/queue/mysqlq"
	"github.com/sluice-custody/sluice/internal/store"
	"github.com/sluice-custody/sluice/internal/testenv"
	"github.com/sluice-custody/sluice/internal/webhook"
	"github.com/sluice-custody/sluice/monitor"
	"github.com/sluice-custody/sluice/signer"
)

// Env is one assembled pipeline.
type Env struct {
	T      testing.TB
	Ctx    context.Context
	Store  *store.Store
	Queue  *mysqlq.Queue
	Chain  *devchain.Chain
	Client *chain.Client
	Keys   *keys.Keystore
	Nonces *nonce.Allocator
	Config config.Chain
	Hot    testenv.Account
	// Wallets are the chain's hot wallets, Hot first; each is funded and has its key in Keys.
	Wallets   []testenv.Account
	Funder    testenv.Account
	Contracts contracts.Addresses
	ClientID  int64
	Log       *slog.Logger
}

// Options tune an Env.
type Options struct {
	Confirmations uint64        // default 3
	NonceTTL      time.Duration // default nonce.DefaultTTL
	// Wallets is how many hot wallets the chain has (default 1), each funded alike.
	Wallets int
	// Chain, when set, changes the chain's configuration before defaults are applied.
	Chain func(*config.Chain)
}

// New assembles an Env; everything is torn down at test cleanup.
func New(t testing.TB, o Options) *Env {
	t.Helper()
	if o.Confirmations == 0 {
		o.Confirmations = 3
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	e := &Env{T: t, Ctx: ctx, Hot: testenv.NewAccount(t), Funder: testenv.NewAccount(t),
		Log: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	e.Store, _ = testenv.Store(t)
	e.Queue = mysqlq.New(e.Store.DB, mysqlq.Options{})
	e.Wallets = []testenv.Account{e.Hot}
	for len(e.Wallets) < max(o.Wallets, 1) {
		e.Wallets = append(e.Wallets, testenv.NewAccount(t))
	}
	funded := []common.Address{e.Funder.Address}
	hot := make([]config.Address, len(e.Wallets))
	for i, w := range e.Wallets {
		funded, hot[i] = append(funded, w.Address), config.Address(w.Address)
	}
	e.Chain = testenv.Chain(t, 100*time.Millisecond, funded...)
	eth, err := e.Chain.Client(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer eth.Close()
	if e.Contracts, err = contracts.DeployAll(ctx, eth, e.Funder.Key, e.Chain.ChainID); err != nil {
		t.Fatalf("deploy: %v", err)
	}
	for _, w := range e.Wallets {
		if err := contracts.Mint(ctx, eth, e.Funder.Key, e.Chain.ChainID, e.Contracts.USDT, w.Address, big.NewInt(1e15)); err != nil {
			t.Fatalf("mint: %v", err)
		}
	}
	e.Config = config.Chain{Name: "local", ChainID: e.Chain.ChainID.Uint64(), RPC: []string{e.Chain.URL},
		Confirmations: o.Confirmations, BlockTime: config.Duration{Duration: 100 * time.Millisecond},
		Assets:     []config.Asset{{Symbol: "POL", Decimals: 18}, {Symbol: "USDT", Decimals: 6, Address: config.Address(e.Contracts.USDT)}},
		HotWallets: hot}
	if o.Chain != nil {
		o.Chain(&e.Config)
	}
	full := &config.Config{Chains: []config.Chain{e.Config}}
	if err := full.Finish(); err != nil {
		t.Fatal(err)
	}
	e.Config = full.Chains[0]
	if e.Client, err = chain.Dial(ctx, "local", e.Config.ChainID, e.Config.RPC, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Client.Close)
	if e.Keys, err = keys.NewKeystore(t.TempDir(), "test-password", keys.WithLightScrypt()); err != nil {
		t.Fatal(err)
	}
	for _, w := range e.Wallets {
		if _, err := e.Keys.ImportECDSA(w.Key); err != nil {
			t.Fatal(err)
		}
	}
	opts := []nonce.Option{nonce.WithPrefix("test:" + testenv.UniqueName(t))}
	if o.NonceTTL > 0 {
		opts = append(opts, nonce.WithTTL(o.NonceTTL))
	}
	e.Nonces = nonce.New(testenv.Redis(t), opts...)
	c, err := e.Store.EnsureAPIClient(ctx, "test", "test-key-"+testenv.UniqueName(t))
	if err != nil {
		t.Fatal(err)
	}
	e.ClientID = c.ID
	return e
}

// SignerDeps are the signer's collaborators on the Env, for a test to change one before signer.New.
func (e *Env) SignerDeps() signer.Deps {
	return signer.Deps{Store: e.Store, Queue: e.Queue, Keys: e.Keys, Nonces: e.Nonces,
		Chains: map[string]signer.ChainDeps{"local": {Config: e.Config, Client: e.Client}}}
}

// NewSigner builds a signer on d with the Env's logger, failing the test if it cannot.
func (e *Env) NewSigner(d signer.Deps) *signer.Signer {
	e.T.Helper()
	s, err := signer.New(d, e.Log, signer.NopMetrics())
	if err != nil {
		e.T.Fatal(err)
	}
	return s
}

// Signer returns a signer on the Env.
func (e *Env) Signer() *signer.Signer { return e.NewSigner(e.SignerDeps()) }

// Broadcaster returns a broadcaster on the Env.
func (e *Env) Broadcaster() *broadcaster.Broadcaster {
	e.T.Helper()
	b, err := broadcaster.New(broadcaster.Deps{Store: e.Store, Queue: e.Queue, Chains: map[string]broadcaster.Chain{"local": e.Client}},
		e.Log, broadcaster.NopMetrics())
	if err != nil {
		e.T.Fatal(err)
	}
	return b
}

// Monitor returns a monitor on the Env.
func (e *Env) Monitor() *monitor.Monitor {
	e.T.Helper()
	m, err := monitor.New(monitor.Deps{Store: e.Store, Queue: e.Queue,
		Chains: map[string]monitor.ChainDeps{"local": {Config: e.Config, Client: e.Client}}}, e.Log, monitor.NopMetrics())
	if err != nil {
		e.T.Fatal(err)
	}
	return m
}

// Withdraw creates a PENDING withdrawal of amount base units and its tx-request message, as the API does.
func (e *Env) Withdraw(asset string, to common.Address, amount int64) *store.Withdrawal {
	e.T.Helper()
	id := queue.NewID()
	w := &store.Withdrawal{ID: id, ClientID: e.ClientID, ExternalID: "ext-" + id, RequestHash: make([]byte, 32),
		Chain: "local", Asset: asset, To: to.Hex(), Amount: big.NewInt(amount), CorrelationID: "corr-" + id}
	got, created, err := e.Store.CreateWithdrawal(e.Ctx, w, func(tx *sql.Tx) error {
		body, err := queue.NewEnvelope(e.Ctx, queue.TypeWithdrawalRequested, queue.NewID(), w.CorrelationID, queue.WithdrawalRequested{WithdrawalID: id})
		if err != nil {
			return err
		}
		return e.Queue.SendTx(e.Ctx, tx, queue.TxRequest, body, queue.SendOptions{})
	})
	if err != nil || !created {
		e.T.Fatalf("create withdrawal: %v (created %v)", err, created)
	}
	return got
}

// Receive takes every visible message of a queue (hidden for a minute).
func (e *Env) Receive(name string) []queue.Message {
	e.T.Helper()
	var out []queue.Message
	for {
		ms, err := e.Queue.Receive(e.Ctx, name, 10, time.Minute, 0)
		if err != nil {
			e.T.Fatalf("receive %s: %v", name, err)
		}
		if len(ms) == 0 {
			return out
		}
		out = append(out, ms...)
	}
}

// One receives exactly one message of a queue and fails the test otherwise.
func (e *Env) One(name string) queue.Message {
	e.T.Helper()
	ms := e.Receive(name)
	if len(ms) != 1 {
		e.T.Fatalf("%s holds %d messages, want 1", name, len(ms))
	}
	return ms[0]
}

// Get reloads a withdrawal.
func (e *Env) Get(id string) *store.Withdrawal {
	e.T.Helper()
	w, err := e.Store.GetWithdrawal(e.Ctx, id)
	if err != nil {
		e.T.Fatal(err)
	}
	return w
}

// CountSent counts recorded transactions.
func (e *Env) CountSent() int {
	e.T.Helper()
	var n int
	if err := e.Store.DB.QueryRowContext(e.Ctx, `SELECT COUNT(*) FROM sent_transactions`).Scan(&n); err != nil {
		e.T.Fatal(err)
	}
	return n
}

// BlockToken puts addr on the test token's blocklist: transfers to it revert from then on.
func (e *Env) BlockToken(addr common.Address) {
	e.T.Helper()
	data, err := bindings.NewTestToken().TryPackSetBlocked(addr, true)
	if err != nil {
		e.T.Fatal(err)
	}
	eth, err := e.Chain.Client(e.Ctx)
	if err != nil {
		e.T.Fatal(err)
	}
	defer eth.Close()
	if _, err := contracts.Transact(e.Ctx, eth, e.Funder.Key, e.Chain.ChainID, e.Contracts.USDT, nil, data, 0); err != nil {
		e.T.Fatalf("block %s: %v", addr, err)
	}
}

// MintUSDT mints amount base units of the test token to addr (a top-up, as far as the signer can tell).
func (e *Env) MintUSDT(addr common.Address, amount *big.Int) {
	e.T.Helper()
	eth, err := e.Chain.Client(e.Ctx)
	if err != nil {
		e.T.Fatal(err)
	}
	defer eth.Close()
	if err := contracts.Mint(e.Ctx, eth, e.Funder.Key, e.Chain.ChainID, e.Contracts.USDT, addr, amount); err != nil {
		e.T.Fatalf("mint to %s: %v", addr, err)
	}
}

// WaitMinedNonce waits until the hot wallet's mined nonce reaches n.
func (e *Env) WaitMinedNonce(n uint64) {
	e.T.Helper()
	for {
		got, err := e.Client.NonceAt(e.Ctx, e.Hot.Address)
		if err == nil && got >= n {
			return
		}
		if e.Ctx.Err() != nil {
			e.T.Fatalf("hot wallet nonce %d never reached %d (%v)", got, n, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Move takes withdrawal id through steps (each a status) by store.Transition, as the services would,
// writing the history and webhook events of each change.
func (e *Env) Move(id string, steps ...store.Status) {
	e.T.Helper()
	for i := 0; i+1 < len(steps); i++ {
		if err := e.Store.InTx(e.Ctx, func(tx *sql.Tx) error {
			return e.Store.Transition(e.Ctx, tx, id, steps[i], steps[i+1], "test", store.ActorSigner, store.Change{})
		}); err != nil {
			e.T.Fatal(err)
		}
	}
}

// RunWebhooks runs a webhook dispatcher on the env's store until the test ends, retrying quickly and
// dead-lettering a delivery deadAfter after its first attempt (the tests of dead letters).
func (e *Env) RunWebhooks(deadAfter time.Duration) {
	e.T.Helper()
	p, err := webhook.New(webhook.Deps{Store: e.Store, AllowPrivate: true, DeadAfter: deadAfter,
		BaseBackoff: 10 * time.Millisecond, MaxBackoff: 40 * time.Millisecond, Poll: 10 * time.Millisecond}, nil, webhook.NopMetrics())
	if err != nil {
		e.T.Fatal(err)
	}
	ctx, cancel := context.WithCancel(e.Ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = p.Run(ctx) }()
	e.T.Cleanup(func() { cancel(); <-done })
}
