package accountmgr_test

import (
	"context"
	"errors"
	"math/big"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/ethereum/go-ethereum/common"

	"github.com/sluice-custody/sluice/internal/config"
	"github.com/sluice-custody/sluice/internal/keys"
	"github.com/sluice-custody/sluice/internal/keys/keyscli"
	"github.com/sluice-custody/sluice/internal/keys/kms"
	"github.com/sluice-custody/sluice/internal/keys/kmstest"
	"github.com/sluice-custody/sluice/internal/queue"
	"github.com/sluice-custody/sluice/internal/store"
	"github.com/sluice-custody/sluice/internal/testenv"
)

// signWithdrawals handles every tx-request with a signer on the current configuration.
func (e *env) signWithdrawals() {
	e.T.Helper()
	s := e.Signer()
	for _, m := range e.Receive(queue.TxRequest) {
		if err := s.Handle(e.Ctx, m); err != nil {
			e.T.Fatal(err)
		}
		_ = e.Queue.Delete(e.Ctx, queue.TxRequest, m)
	}
}

// confirmWithdrawals broadcasts and monitors until every withdrawal in ids is CONFIRMED.
func (e *env) confirmWithdrawals(ids []string) {
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
		for _, id := range ids {
			if e.Get(id).Status != store.Confirmed {
				open++
			}
		}
		if open == 0 {
			return
		}
		if time.Now().After(deadline) {
			e.T.Fatalf("%d withdrawals never confirmed", open)
		}
		time.Sleep(150 * time.Millisecond)
	}
}

// checkNonces fails unless from's transactions in sent_transactions use nonces 0..n-1, one each, every
// one CONFIRMED, and the chain has mined exactly n.
func (e *env) checkNonces(from common.Address) int {
	e.T.Helper()
	rows, err := e.Store.DB.QueryContext(e.Ctx, `SELECT nonce, status FROM sent_transactions WHERE LOWER(from_address) = LOWER(?) ORDER BY nonce`, from.Hex())
	if err != nil {
		e.T.Fatal(err)
	}
	defer rows.Close()
	n := uint64(0)
	for rows.Next() {
		var (
			nonce  uint64
			status string
		)
		if err := rows.Scan(&nonce, &status); err != nil {
			e.T.Fatal(err)
		}
		if nonce != n || status != store.TxConfirmed {
			e.T.Fatalf("%s: transaction %d has nonce %d (%s): want %d, CONFIRMED", from.Hex(), n, nonce, status, n)
		}
		n++
	}
	mined, err := e.Client.NonceAt(e.Ctx, from)
	if err != nil || mined != n {
		e.T.Fatalf("%s: mined nonce %d (%v), want %d (no gap, nothing foreign)", from.Hex(), mined, err, n)
	}
	return int(n)
}

// Rotating hot wallet A to a new wallet B while withdrawals flow: A's signed withdrawals confirm after
// draining starts, every later one is paid by B, A gets no top-up, and once A is idle accountmgr sweeps
// its token and then its coin (less the sweep reserve) to the main account; retire refuses until then.
// Every withdrawal is paid once and no nonce of A or B is skipped.
func TestRotateDrainsSweepsAndRetires(t *testing.T) {
	e := newEnv(t, 0, 1e16, func(c *config.Chain) {
		setBand(c, usdt, band("100000000000000", "500000000000000", ""))
		setBand(c, "POL", band("1 ether", "2 ether", ""))
	})
	a := e.Hot
	// B: the new wallet, created empty (what `sluice keys rotate` makes), its key in the keystore.
	b := testenv.NewAccount(t)
	if _, err := e.Keys.ImportECDSA(b.Key); err != nil {
		t.Fatal(err)
	}
	paid := map[string]int64{}
	var before, after []string
	withdraw := func(ids *[]string, n int) {
		for i := 0; i < n; i++ {
			to := testenv.NewAccount(t).Address
			amount := int64(1000 + i)
			*ids = append(*ids, e.Withdraw(usdt, to, amount).ID)
			paid[to.Hex()] = amount
		}
	}
	// Before the rotation: A pays three; they are signed, not broadcast yet (in flight).
	withdraw(&before, 3)
	e.signWithdrawals()
	for _, id := range before {
		if w := e.Get(id); w.Status != store.Signed || !strings.EqualFold(w.From, a.Address.Hex()) {
			t.Fatalf("withdrawal %s before the rotation: %s from %s, want SIGNED from A", id, w.Status, w.From)
		}
	}
	// The configuration change `sluice keys rotate` prints: B added, A draining.
	e.Config.HotWallets = append(e.Config.HotWallets, config.Address(b.Address))
	e.Config.DrainingWallets = []config.Address{config.Address(a.Address)}
	if err := (&config.Config{Chains: []config.Chain{e.Config}}).Finish(); err != nil {
		t.Fatalf("configuration with A draining: %v", err)
	}
	retire := func() error {
		return keyscli.RetireCheck(e.Ctx, e.Store, e.Client, e.Config, config.Address(a.Address))
	}
	if err := retire(); !errors.Is(err, keyscli.ErrNotRetirable) || !strings.Contains(err.Error(), "3 transactions unconfirmed") {
		t.Fatalf("retire with A's withdrawals in flight: %v, want refused naming them", err)
	}
	// accountmgr: B is topped up; A, busy, gets neither a top-up nor a sweep.
	e.round(e.manager())
	for _, tr := range e.transfers() {
		if tr.Kind != store.TransferTopUp || !strings.EqualFold(tr.To, b.Address.Hex()) {
			t.Fatalf("transfer %s %s from %s to %s while A is in flight: want only top-ups of B", tr.Kind, tr.Asset, tr.From, tr.To)
		}
	}
	e.sign(e.Signer())
	e.settle()
	// More withdrawals while A's are still unconfirmed: every one goes to B.
	withdraw(&after, 4)
	e.signWithdrawals()
	for _, id := range after {
		if w := e.Get(id); w.Status != store.Signed || !strings.EqualFold(w.From, b.Address.Hex()) {
			t.Fatalf("withdrawal %s after draining started: %s from %s, want SIGNED from B", id, w.Status, w.From)
		}
	}
	e.confirmWithdrawals(append(append([]string(nil), before...), after...))
	// A is idle: its USDT goes first, its coin only once no token is left to pay gas for.
	aUSDT := e.balance(usdt, a.Address)
	e.round(e.manager())
	var sweeps []*store.BalanceTransfer
	for _, tr := range e.transfers() {
		if tr.Kind == store.TransferSweep {
			sweeps = append(sweeps, tr)
		}
	}
	if len(sweeps) != 1 || sweeps[0].Asset != usdt || sweeps[0].Amount.Cmp(aUSDT) != 0 || !strings.EqualFold(sweeps[0].From, a.Address.Hex()) {
		t.Fatalf("sweeps %+v: want one of A's whole %s USDT", sweeps, aUSDT)
	}
	if err := retire(); !errors.Is(err, keyscli.ErrNotRetirable) {
		t.Fatalf("retire with A's sweep queued: %v, want refused", err)
	}
	e.sign(e.Signer())
	e.settle()
	e.round(e.manager())
	e.sign(e.Signer())
	e.settle()
	if got := e.balance(usdt, a.Address); got.Sign() != 0 {
		t.Fatalf("A holds %s USDT after the drain, want 0", got)
	}
	reserve := new(big.Int).Mul(big.NewInt(21_000), e.Config.Fees.MaxFeePerGas.Int())
	if got := e.balance("POL", a.Address); got.Cmp(reserve) > 0 {
		t.Fatalf("A holds %s wei after the drain, want at most the sweep reserve %s", got, reserve)
	}
	n := len(e.transfers())
	e.round(e.manager()) // drained: nothing more
	if got := len(e.transfers()); got != n {
		t.Fatalf("%d transfers after A was drained, want %d", got, n)
	}
	if err := retire(); err != nil {
		t.Fatalf("retire after the drain: %v", err)
	}
	// Paid once each, to the right recipient.
	for to, amount := range paid {
		if got := e.balance(usdt, common.HexToAddress(to)); got.Int64() != amount {
			t.Fatalf("recipient %s holds %s, want %d (paid once)", to, got, amount)
		}
	}
	var sent int
	if err := e.Store.DB.QueryRowContext(e.Ctx, `SELECT COUNT(DISTINCT sent_tx_id) FROM withdrawals WHERE sent_tx_id IS NOT NULL`).Scan(&sent); err != nil {
		t.Fatal(err)
	}
	if sent != len(before)+len(after) {
		t.Fatalf("%d withdrawal transactions, want %d", sent, len(before)+len(after))
	}
	na, nb := e.checkNonces(a.Address), e.checkNonces(b.Address)
	t.Logf("A: %d transactions (3 withdrawals, 2 sweeps), B: %d", na, nb)
	if na != 5 || nb != len(after) {
		t.Fatalf("A sent %d, B sent %d: want 5 and %d", na, nb, len(after))
	}
}

// countingKMS counts the signatures KMS makes.
type countingKMS struct {
	kms.API
	signs atomic.Int32
}

func (c *countingKMS) Sign(ctx context.Context, in *awskms.SignInput, opts ...func(*awskms.Options)) (*awskms.SignOutput, error) {
	c.signs.Add(1)
	return c.API.Sign(ctx, in, opts...)
}

// The main account's key lives in local-kms (the kms backend: it never leaves KMS): accountmgr's top-up
// is signed by KMS and mined on the dev chain. The signer's keys route the main account to KMS only, so
// a signature from anywhere else would fail.
func TestTopUpSignedByKMS(t *testing.T) {
	e := newEnv(t, 0, 1e16, func(c *config.Chain) { setBand(c, usdt, band("2000000000000000", "3000000000000000", "")) })
	srv := kmstest.Start(t)
	keyID := srv.ImportSecp256k1(t, e.main.Key)
	a := keys.AWS{Region: "us-east-1", Endpoint: srv.URL, StaticKeyID: "test", StaticSecret: "test"}
	awsCfg, err := a.Config(e.Ctx)
	if err != nil {
		t.Fatal(err)
	}
	api := &countingKMS{API: awskms.NewFromConfig(awsCfg, func(o *awskms.Options) { o.BaseEndpoint = a.BaseEndpoint() })}
	kp, err := kms.New(kms.Deps{KMS: api, Wallets: []kms.Wallet{{Address: e.main.Address, KeyID: keyID}}}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	router, err := keys.NewRouter(map[common.Address]keys.Route{
		e.Hot.Address:  {Backend: config.KeyBackendKeystore, Provider: e.Keys},
		e.main.Address: {Backend: config.KeyBackendKMS, Provider: kp},
	})
	if err != nil {
		t.Fatal(err)
	}
	e.round(e.manager())
	if ts := e.transfers(); len(ts) != 1 || ts[0].Kind != store.TransferTopUp {
		t.Fatalf("transfers %+v: want one top-up", ts)
	}
	d := e.SignerDeps()
	d.Keys = router
	e.sign(e.NewSigner(d))
	e.settle()
	if n := api.signs.Load(); n < 1 {
		t.Fatalf("KMS made %d signatures, want the top-up's (and its approve's)", n)
	}
	if got := e.balance(usdt, e.Hot.Address); got.String() != "3000000000000000" {
		t.Fatalf("hot wallet holds %s USDT, want the target 3000000000000000", got)
	}
	n := e.checkNonces(e.main.Address)
	t.Logf("main account: %d transactions signed by KMS (%d KMS signatures), all mined", n, api.signs.Load())
	if int(api.signs.Load()) < n {
		t.Fatalf("%d KMS signatures for %d main-account transactions", api.signs.Load(), n)
	}
}
