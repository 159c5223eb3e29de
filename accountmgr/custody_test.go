package accountmgr_test

import (
	"bytes"
	"encoding/hex"
	"log/slog"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/sluice-custody/sluice/internal/config"
	"github.com/sluice-custody/sluice/internal/keys/keystest"
	"github.com/sluice-custody/sluice/internal/keys/source"
	"github.com/sluice-custody/sluice/internal/queue"
	"github.com/sluice-custody/sluice/internal/store"
	"github.com/sluice-custody/sluice/internal/testenv"
)

// lockedBuffer collects the log lines of the signer's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Production custody end to end: every hot wallet's key is in Secrets Manager (the in-repo stand-in,
// keystest: no Secrets Manager emulator is reachable from here; the real aws-sdk-go-v2 client talks to
// it), doubly encrypted under a local-kms master key, and the main account's key is in local-kms, where
// it never leaves. Keys are opened from configuration exactly as `sluice signer` opens them
// (source.Open). A POL and a USDT withdrawal are signed from Secrets Manager and mined; accountmgr's
// top-up of both wallets is signed by KMS and mined; and no log line or database row carries any key.
func TestFleetInSecretsManagerMainAccountInKMS(t *testing.T) {
	e := newEnv(t, 1, 1e16, func(c *config.Chain) { setBand(c, usdt, band("2000000000000000", "3000000000000000", "")) })
	logs := &lockedBuffer{}
	e.Log = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	custody := keystest.Start(t)
	cfg := &config.Config{Chains: []config.Chain{e.Config}}
	custody.Configure(cfg)
	cfg.Keys.Wallets = []config.WalletKey{
		custody.SecretsManagerWallet(t, "local", e.Config.ChainID, "sluice/test/hot-1", e.Hot.Key),
		custody.SecretsManagerWallet(t, "local", e.Config.ChainID, "sluice/test/hot-2", e.extra[0].Key),
		custody.KMSWallet(t, "local", e.main.Key),
	}
	if err := cfg.Finish(); err != nil {
		t.Fatal(err)
	}
	set, err := source.Open(e.Ctx, cfg, e.Log, nil, source.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer set.Close()
	d := e.SignerDeps()
	d.Keys = set
	s := e.NewSigner(d)

	polTo, usdtTo := testenv.NewAccount(t).Address, testenv.NewAccount(t).Address
	ws := []*store.Withdrawal{e.Withdraw("POL", polTo, 1e15), e.Withdraw("USDT", usdtTo, 5_000_000)}
	for _, m := range e.Receive(queue.TxRequest) {
		if err := s.Handle(e.Ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	b, mo := e.Broadcaster(), e.Monitor()
	deadline := time.Now().Add(60 * time.Second)
	for !e.Get(ws[0].ID).Status.Terminal() || !e.Get(ws[1].ID).Status.Terminal() {
		if time.Now().After(deadline) {
			t.Fatalf("withdrawals %s, %s never settled", e.Get(ws[0].ID).Status, e.Get(ws[1].ID).Status)
		}
		for _, m := range e.Receive(queue.SignedTx) {
			if err := b.Handle(e.Ctx, m); err != nil {
				t.Fatal(err)
			}
			_ = e.Queue.Delete(e.Ctx, queue.SignedTx, m)
		}
		for _, m := range e.Receive(queue.TxMonitor) {
			if err := mo.Handle(e.Ctx, m); err != nil {
				t.Fatal(err)
			}
			_ = e.Queue.Delete(e.Ctx, queue.TxMonitor, m)
		}
		time.Sleep(150 * time.Millisecond)
	}
	for _, w := range ws {
		if got := e.Get(w.ID); got.Status != store.Confirmed {
			t.Fatalf("%s withdrawal %s (%v)", w.Asset, got.Status, got.ErrorMessage)
		}
	}
	if bal := e.balance("POL", polTo); bal.Cmp(big.NewInt(1e15)) != 0 {
		t.Fatalf("POL recipient holds %s, want one payment", bal)
	}
	if bal := e.balance(usdt, usdtTo); bal.Cmp(big.NewInt(5_000_000)) != 0 {
		t.Fatalf("USDT recipient holds %s, want one payment", bal)
	}

	e.round(e.manager())
	if ts := e.transfers(); len(ts) != 2 {
		t.Fatalf("transfers %d, want a top-up of each wallet", len(ts))
	}
	e.sign(s)
	e.settle()
	if got := e.balance(usdt, e.extra[0].Address); got.String() != "3000000000000000" {
		t.Fatalf("second wallet holds %s USDT, want the target 3000000000000000", got)
	}
	if got := e.balance(usdt, e.Hot.Address); got.String() != "3000000000000000" {
		t.Fatalf("first wallet holds %s USDT, want the target 3000000000000000", got)
	}
	n := e.checkNonces(e.main.Address)
	t.Logf("2 withdrawals signed from Secrets Manager, %d main-account transactions signed by KMS, all mined", n)

	// Key-material scan: no log line and no database row holds any of the three keys.
	var dump strings.Builder
	dump.WriteString(strings.ToLower(logs.String()))
	for _, q := range []string{`SELECT CAST(raw_tx AS CHAR) FROM sent_transactions`, `SELECT CONCAT_WS(' ', reason, actor) FROM withdrawal_history`,
		`SELECT CONCAT_WS(' ', id, reason) FROM balance_transfers`} {
		rows, err := e.Store.DB.QueryContext(e.Ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var v []byte
			if err := rows.Scan(&v); err != nil {
				t.Fatal(err)
			}
			dump.WriteString(strings.ToLower(string(v)) + "\n")
		}
		rows.Close()
	}
	for _, k := range []string{hex.EncodeToString(crypto.FromECDSA(e.Hot.Key)), hex.EncodeToString(crypto.FromECDSA(e.extra[0].Key)),
		hex.EncodeToString(crypto.FromECDSA(e.main.Key))} {
		if strings.Contains(dump.String(), k) {
			t.Fatal("a private key appears in the logs or the database")
		}
	}
}
