package accountmgr_test

import (
	"context"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/sluice-custody/sluice/accountmgr"
	"github.com/sluice-custody/sluice/contracts"
	"github.com/sluice-custody/sluice/internal/alert"
	"github.com/sluice-custody/sluice/internal/config"
	"github.com/sluice-custody/sluice/internal/pipelinetest"
	"github.com/sluice-custody/sluice/internal/queue"
	"github.com/sluice-custody/sluice/internal/store"
	"github.com/sluice-custody/sluice/internal/testenv"
	"github.com/sluice-custody/sluice/internal/txerr"
	"github.com/sluice-custody/sluice/signer"
)

// notifier records open alerts.
type notifier struct {
	mu   sync.Mutex
	open map[string]alert.Alert
}

func (n *notifier) Fire(_ context.Context, a alert.Alert) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.open[a.Key] = a
}

func (n *notifier) Resolve(_ context.Context, key string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.open, key)
}

func (n *notifier) get(key string) (alert.Alert, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	a, ok := n.open[key]
	return a, ok
}

type env struct {
	*pipelinetest.Env
	main   testenv.Account
	extra  []testenv.Account // hot wallets beyond e.Hot, empty at start
	alerts *notifier
}

const usdt = "USDT"

// newEnv is a pipeline whose chain has a main account (1000 coins for gas and top-ups, mainUSDT base
// units of USDT) and extra empty hot wallets besides the funded one; set configures the bands.
func newEnv(t *testing.T, extra int, mainUSDT int64, set func(c *config.Chain)) *env {
	t.Helper()
	e := &env{Env: pipelinetest.New(t, pipelinetest.Options{Confirmations: 2}), main: testenv.NewAccount(t),
		alerts: &notifier{open: map[string]alert.Alert{}}}
	eth, err := e.Chain.Client(e.Ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer eth.Close()
	if _, err := contracts.Transact(e.Ctx, eth, e.Funder.Key, e.Chain.ChainID, e.main.Address, testenv.Ether(1000), nil, 21_000); err != nil {
		t.Fatalf("fund main account: %v", err)
	}
	if mainUSDT > 0 {
		e.mint(e.main.Address, mainUSDT)
	}
	if _, err := e.Keys.ImportECDSA(e.main.Key); err != nil {
		t.Fatal(err)
	}
	e.Config.MainAccount = config.Address(e.main.Address)
	e.Config.Multicall3, e.Config.BatchContract = config.Address(e.Contracts.Multicall3), config.Address(e.Contracts.BatchTransfer)
	for i := 0; i < extra; i++ {
		a := testenv.NewAccount(t)
		if _, err := e.Keys.ImportECDSA(a.Key); err != nil {
			t.Fatal(err)
		}
		e.extra = append(e.extra, a)
		e.Config.HotWallets = append(e.Config.HotWallets, config.Address(a.Address))
	}
	set(&e.Config)
	full := &config.Config{Chains: []config.Chain{e.Config}}
	if err := full.Finish(); err != nil {
		t.Fatalf("configuration: %v", err)
	}
	return e
}

func (e *env) mint(to common.Address, amount int64) {
	e.T.Helper()
	eth, err := e.Chain.Client(e.Ctx)
	if err != nil {
		e.T.Fatal(err)
	}
	defer eth.Close()
	if err := contracts.Mint(e.Ctx, eth, e.Funder.Key, e.Chain.ChainID, e.Contracts.USDT, to, big.NewInt(amount)); err != nil {
		e.T.Fatalf("mint: %v", err)
	}
}

func band(min, target, max string) config.TopUp {
	w := func(s string) config.Wei {
		if s == "" {
			return config.Wei{}
		}
		v, err := config.ParseWei(s)
		if err != nil {
			panic(err)
		}
		return v
	}
	return config.TopUp{Min: w(min), Target: w(target), Max: w(max)}
}

func setBand(c *config.Chain, asset string, t config.TopUp) {
	for i := range c.Assets {
		if c.Assets[i].Symbol == asset {
			c.Assets[i].TopUp = t
		}
	}
}

// manager is a fresh accountmgr instance (a restart is a new one).
func (e *env) manager() *accountmgr.Manager {
	e.T.Helper()
	m, err := accountmgr.New(accountmgr.Deps{Store: e.Store, Queue: e.Queue, Sender: e.Queue, Alerts: e.alerts,
		Chains:     map[string]accountmgr.ChainDeps{"local": {Config: e.Config, Client: e.Client}},
		StaleAfter: 300 * time.Millisecond}, e.Log, accountmgr.NopMetrics())
	if err != nil {
		e.T.Fatal(err)
	}
	return m
}

// round runs a round and handles every balance-check it queued; it returns those messages.
func (e *env) round(m *accountmgr.Manager) []queue.Message {
	e.T.Helper()
	if err := m.CheckOnce(e.Ctx); err != nil {
		e.T.Fatal(err)
	}
	checks := e.Receive(queue.BalanceCheck)
	for _, c := range checks {
		if err := m.Handle(e.Ctx, c); err != nil {
			e.T.Fatal(err)
		}
		_ = e.Queue.Delete(e.Ctx, queue.BalanceCheck, c)
	}
	return checks
}

func (e *env) transfers() []*store.BalanceTransfer {
	e.T.Helper()
	rows, err := e.Store.DB.QueryContext(e.Ctx, `SELECT id FROM balance_transfers ORDER BY created_at, id`)
	if err != nil {
		e.T.Fatal(err)
	}
	defer rows.Close()
	var out []*store.BalanceTransfer
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			e.T.Fatal(err)
		}
		t, err := e.Store.GetBalanceTransfer(e.Ctx, id)
		if err != nil {
			e.T.Fatal(err)
		}
		out = append(out, t)
	}
	return out
}

func (e *env) countSentOfKind(kind string) int {
	e.T.Helper()
	var n int
	if err := e.Store.DB.QueryRowContext(e.Ctx, `SELECT COUNT(*) FROM sent_transactions WHERE kind = ?`, kind).Scan(&n); err != nil {
		e.T.Fatal(err)
	}
	return n
}

// sign handles balance-transfer messages (the delayed ones too) until no transfer is PENDING,
// broadcasting what is signed meanwhile (a token batch waits for its approve to be mined).
func (e *env) sign(s *signer.Signer) []queue.Message {
	e.T.Helper()
	var seen []queue.Message
	deadline := time.Now().Add(30 * time.Second)
	b := e.Broadcaster()
	for {
		for _, m := range e.Receive(queue.SignedTx) {
			if err := b.Handle(e.Ctx, m); err != nil {
				e.T.Fatal(err)
			}
			_ = e.Queue.Delete(e.Ctx, queue.SignedTx, m)
		}
		for _, m := range e.Receive(queue.BalanceTransfer) {
			if err := s.HandleBalanceTransfer(e.Ctx, m); err != nil {
				e.T.Fatal(err)
			}
			_ = e.Queue.Delete(e.Ctx, queue.BalanceTransfer, m)
			seen = append(seen, m)
		}
		pending := 0
		for _, t := range e.transfers() {
			if t.Status == store.TransferPending {
				pending++
			}
		}
		if pending == 0 {
			return seen
		}
		if time.Now().After(deadline) {
			e.T.Fatalf("%d transfers still pending", pending)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// settle broadcasts and monitors until every transfer is CONFIRMED or FAILED.
func (e *env) settle() {
	e.T.Helper()
	b, mo := e.Broadcaster(), e.Monitor()
	deadline := time.Now().Add(60 * time.Second)
	for {
		for _, m := range e.Receive(queue.SignedTx) {
			if err := b.Handle(e.Ctx, m); err != nil {
				e.T.Fatal(err)
			}
			_ = e.Queue.Delete(e.Ctx, queue.SignedTx, m)
		}
		for _, m := range e.Receive(queue.TxMonitor) {
			if err := mo.Handle(e.Ctx, m); err != nil {
				e.T.Fatal(err)
			}
			_ = e.Queue.Delete(e.Ctx, queue.TxMonitor, m)
		}
		open := 0
		for _, t := range e.transfers() {
			if t.Status != store.TransferConfirmed && t.Status != store.TransferFailed {
				open++
			}
		}
		if open == 0 {
			return
		}
		if time.Now().After(deadline) {
			e.T.Fatalf("%d transfers never settled", open)
		}
		time.Sleep(150 * time.Millisecond)
	}
}

func (e *env) balance(asset string, who common.Address) *big.Int {
	e.T.Helper()
	var (
		v   *big.Int
		err error
	)
	if asset == usdt {
		v, err = e.Client.TokenBalance(e.Ctx, e.Contracts.USDT, who)
	} else {
		v, err = e.Client.BalanceAt(e.Ctx, who)
	}
	if err != nil {
		e.T.Fatal(err)
	}
	return v
}

// One wallet below min is topped up exactly once, to its target, though every balance-check is handled
// twice, a restarted accountmgr handles it again and runs another round, and the balance-transfer
// message is redelivered to a restarted signer after it was signed.
func TestDeficitIsToppedUpOnce(t *testing.T) {
	e := newEnv(t, 0, 1e16, func(c *config.Chain) { setBand(c, usdt, band("2000000000000000", "3000000000000000", "")) })
	am := e.manager()
	if err := am.CheckOnce(e.Ctx); err != nil {
		t.Fatal(err)
	}
	check := e.One(queue.BalanceCheck)
	for _, m := range []*accountmgr.Manager{am, am, e.manager()} { // a redelivery, then a restarted instance
		if err := m.Handle(e.Ctx, check); err != nil {
			t.Fatal(err)
		}
	}
	e.round(e.manager()) // the next round, on yet another instance, sees the top-up in flight
	ts := e.transfers()
	if len(ts) != 1 {
		t.Fatalf("%d balance transfers, want 1", len(ts))
	}
	top := ts[0]
	if top.Kind != store.TransferTopUp || top.Amount.String() != "2000000000000000" || top.Status != store.TransferPending ||
		!strings.EqualFold(top.To, e.Hot.Address.Hex()) || !strings.EqualFold(top.From, e.main.Address.Hex()) {
		t.Fatalf("transfer %+v", top)
	}
	if want := store.TransferKey(store.TransferTopUp, "local", e.Hot.Address.Hex(), usdt, 0); top.Key != want {
		t.Fatalf("idempotency key %q, want %q", top.Key, want)
	}
	msgs := e.sign(e.Signer())
	// Redelivered to a restarted signer, and again to another, after it was signed: nothing new.
	for _, s := range []*signer.Signer{e.Signer(), e.Signer()} {
		m := msgs[0]
		m.ReceiveCount = 2
		if err := s.HandleBalanceTransfer(e.Ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	if n := e.countSentOfKind(store.TransferTopUp); n != 1 {
		t.Fatalf("%d top-up transactions, want 1", n)
	}
	e.settle()
	top, err := e.Store.GetBalanceTransfer(e.Ctx, top.ID)
	if err != nil || top.Status != store.TransferConfirmed || top.SentTxID == nil {
		t.Fatalf("transfer after settling: %+v %v", top, err)
	}
	if got := e.balance(usdt, e.Hot.Address); got.String() != "3000000000000000" {
		t.Fatalf("hot wallet holds %s USDT, want the target 3000000000000000", got)
	}
	if got := e.balance(usdt, e.main.Address); got.String() != "8000000000000000" {
		t.Fatalf("main account holds %s USDT, want 8000000000000000", got)
	}
	e.round(e.manager()) // within the band now
	if n := len(e.transfers()); n != 1 {
		t.Fatalf("%d balance transfers after the wallet reached its target, want 1", n)
	}
	st, err := e.Nonces.Peek(e.Ctx, e.Config.ChainID, e.main.Address)
	if err != nil || st.Next != 1 || len(st.Leases) != 0 {
		t.Fatalf("main account nonce state %+v (%v): want counter 1, no lease", st, err)
	}
}

// Three wallets short of USDT and two short of the coin: one batched top-up transaction per asset
// (Multicall3 for the coin, the batch contract for the token, after one approve), each wallet at its
// target after.
func TestSeveralDeficitsOneBatchPerAsset(t *testing.T) {
	e := newEnv(t, 2, 1e16, func(c *config.Chain) {
		setBand(c, usdt, band("2000000000000000", "3000000000000000", ""))
		setBand(c, "POL", band("10 ether", "20 ether", ""))
	})
	e.round(e.manager())
	ts := e.transfers()
	if len(ts) != 5 {
		t.Fatalf("%d balance transfers, want 5 (3 USDT, 2 POL)", len(ts))
	}
	e.sign(e.Signer())
	e.settle()
	if n := e.countSentOfKind(store.TransferTopUp); n != 2 {
		t.Fatalf("%d top-up transactions, want 2 (one per asset)", n)
	}
	txOf := map[string]map[int64]bool{}
	for _, tr := range e.transfers() {
		if tr.Status != store.TransferConfirmed || tr.SentTxID == nil {
			t.Fatalf("transfer %s to %s: %s (%s)", tr.Asset, tr.To, tr.Status, tr.Reason)
		}
		if txOf[tr.Asset] == nil {
			txOf[tr.Asset] = map[int64]bool{}
		}
		txOf[tr.Asset][*tr.SentTxID] = true
	}
	if len(txOf[usdt]) != 1 || len(txOf["POL"]) != 1 {
		t.Fatalf("transactions per asset %v: want one each", txOf)
	}
	for _, a := range append([]testenv.Account{e.Hot}, e.extra...) {
		if got := e.balance(usdt, a.Address); got.String() != "3000000000000000" {
			t.Fatalf("%s holds %s USDT, want 3000000000000000", a.Address, got)
		}
	}
	for _, a := range e.extra {
		if got := e.balance("POL", a.Address); got.Cmp(testenv.Ether(20)) != 0 {
			t.Fatalf("%s holds %s wei, want 20 coins", a.Address, got)
		}
	}
}

// An empty main account: main_account_low says what is missing and nothing is queued; once the main
// account is funded, the alert resolves and the wallet is topped up once.
func TestMainAccountEmptyAlertsThenTopsUp(t *testing.T) {
	e := newEnv(t, 0, 0, func(c *config.Chain) { setBand(c, usdt, band("2000000000000000", "3000000000000000", "")) })
	am := e.manager()
	e.round(am)
	key := accountmgr.AlertMainAccountLow + ":local:" + usdt
	a, ok := e.alerts.get(key)
	if !ok {
		t.Fatal("no main_account_low alert")
	}
	if a.Kind != accountmgr.AlertMainAccountLow || a.Details["missing"] != "2000000000000000" {
		t.Fatalf("alert %+v: want missing 2000000000000000", a)
	}
	if n := len(e.transfers()); n != 0 {
		t.Fatalf("%d transfers queued from an empty main account, want 0", n)
	}
	e.mint(e.main.Address, 5e15)
	e.round(am)
	if _, ok := e.alerts.get(key); ok {
		t.Fatal("alert still open after the main account was funded")
	}
	e.sign(e.Signer())
	e.settle()
	if n := e.countSentOfKind(store.TransferTopUp); n != 1 {
		t.Fatalf("%d top-up transactions, want 1", n)
	}
	if got := e.balance(usdt, e.Hot.Address); got.String() != "3000000000000000" {
		t.Fatalf("hot wallet holds %s, want 3000000000000000", got)
	}
}

// Two deficits the main account can cover only one of: the more urgent is paid in full, the other is
// not queued at all (never in part), and the alert says what is missing for both.
func TestMainAccountCoversTheMostUrgentFully(t *testing.T) {
	e := newEnv(t, 1, 3_500_000_000_000_000, func(c *config.Chain) {
		setBand(c, usdt, band("2000000000000000", "3000000000000000", ""))
	})
	// e.Hot holds 1e15 (needs 2e15), the extra wallet 0 (needs 3e15, more urgent): 3.5e15 covers it alone.
	e.round(e.manager())
	ts := e.transfers()
	if len(ts) != 1 || !strings.EqualFold(ts[0].To, e.extra[0].Address.Hex()) || ts[0].Amount.String() != "3000000000000000" {
		t.Fatalf("transfers %+v: want only the empty wallet's 3e15", ts)
	}
	a, ok := e.alerts.get(accountmgr.AlertMainAccountLow + ":local:" + usdt)
	if !ok || a.Details["missing"] != "1500000000000000" {
		t.Fatalf("alert %+v (open %v): want missing 1500000000000000", a, ok)
	}
}

// Above max, the excess goes back to the main account once, signed by the hot wallet.
func TestSweepAboveMax(t *testing.T) {
	e := newEnv(t, 0, 0, func(c *config.Chain) {
		setBand(c, usdt, band("100000000000000", "500000000000000", "800000000000000"))
	})
	am := e.manager()
	e.round(am)
	e.round(e.manager())
	ts := e.transfers()
	if len(ts) != 1 || ts[0].Kind != store.TransferSweep || ts[0].Amount.String() != "500000000000000" ||
		!strings.EqualFold(ts[0].From, e.Hot.Address.Hex()) {
		t.Fatalf("transfers %+v: want one sweep of 5e14 from the hot wallet", ts)
	}
	e.sign(e.Signer())
	e.settle()
	if got := e.balance(usdt, e.Hot.Address); got.String() != "500000000000000" {
		t.Fatalf("hot wallet holds %s, want the target 500000000000000", got)
	}
	if got := e.balance(usdt, e.main.Address); got.String() != "500000000000000" {
		t.Fatalf("main account holds %s, want the swept 500000000000000", got)
	}
	e.round(am)
	if n := len(e.transfers()); n != 1 {
		t.Fatalf("%d transfers after the sweep, want 1", n)
	}
}

// The main account's key never signs a withdrawal, even when a configuration lists it as a hot wallet:
// the withdrawal fails with nothing signed.
func TestMainAccountNeverSignsAWithdrawal(t *testing.T) {
	e := newEnv(t, 0, 1e16, func(c *config.Chain) {})
	e.Config.HotWallets = []config.Address{config.Address(e.main.Address)}
	w := e.Withdraw(usdt, testenv.NewAccount(t).Address, 1000)
	if err := e.Signer().Handle(e.Ctx, e.One(queue.TxRequest)); err != nil {
		t.Fatal(err)
	}
	got := e.Get(w.ID)
	if got.Status != store.Failed || got.ErrorType != string(txerr.InvalidTransaction) || !strings.Contains(got.ErrorMessage, "main account") {
		t.Fatalf("withdrawal from the main account: %s %s %q", got.Status, got.ErrorType, got.ErrorMessage)
	}
	if n := e.CountSent(); n != 0 {
		t.Fatalf("%d transactions signed, want 0", n)
	}
}

// Signers racing for the same top-ups (instances, a redelivery, one killed and restarted) sign one
// transaction: the others find the main account busy or the rows signed, and no nonce is left behind.
func TestRacingSignersSignOneTopUp(t *testing.T) {
	e := newEnv(t, 1, 1e16, func(c *config.Chain) { setBand(c, usdt, band("2000000000000000", "3000000000000000", "")) })
	e.round(e.manager())
	if n := len(e.transfers()); n != 2 {
		t.Fatalf("%d transfers, want 2", n)
	}
	time.Sleep(2 * e.Config.BlockTime.Duration) // past the gather window
	var wg sync.WaitGroup
	for i := 0; i < 6; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := e.Signer().SignTopUps(e.Ctx, "local", usdt); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	e.sign(e.Signer()) // whatever the race left (the approve first, then the batch)
	e.settle()
	if n := e.countSentOfKind(store.TransferTopUp); n != 1 {
		t.Fatalf("%d top-up transactions, want 1", n)
	}
	for _, tr := range e.transfers() {
		if tr.Status != store.TransferConfirmed {
			t.Fatalf("transfer to %s: %s (%s)", tr.To, tr.Status, tr.Reason)
		}
	}
	st, err := e.Nonces.Peek(e.Ctx, e.Config.ChainID, e.main.Address)
	if err != nil || st.Next != 2 || len(st.Leases) != 0 { // the approve and the batch
		t.Fatalf("main account nonce state %+v (%v): want counter 2, no lease", st, err)
	}
	mined, err := e.Client.NonceAt(e.Ctx, e.main.Address)
	if err != nil || mined != 2 {
		t.Fatalf("main account mined nonce %d (%v), want 2", mined, err)
	}
}
