// Package keyspipeline_test runs the real signer and broadcaster (internal/pipelinetest: MariaDB, the
// MySQL queue, Redis, an embedded chain) with the hot wallet's key where production keeps it: in the
// Secrets Manager stand-in (smstub: no Secrets Manager emulator is reachable from here) wrapped by a
// local-kms master key, or behind local-kms itself. POL and USDT withdrawals are signed and mined; a
// tampered secret leaves the withdrawal waiting (retryable), never FAILED; and no log line, queue
// message or database row carries the key.
package keyspipeline_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	sm "github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/sluice-custody/sluice/internal/config"
	"github.com/sluice-custody/sluice/internal/keys"
	"github.com/sluice-custody/sluice/internal/keys/keystest"
	"github.com/sluice-custody/sluice/internal/keys/secretsmanager"
	"github.com/sluice-custody/sluice/internal/keys/source"
	"github.com/sluice-custody/sluice/internal/pipelinetest"
	"github.com/sluice-custody/sluice/internal/queue"
	"github.com/sluice-custody/sluice/internal/store"
	"github.com/sluice-custody/sluice/internal/testenv"
	"github.com/sluice-custody/sluice/internal/txerr"
)

type loads struct {
	mu     sync.Mutex
	ok, ko int
}

func (l *loads) Load(_ string, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if ok {
		l.ok++
	} else {
		l.ko++
	}
}

type rig struct {
	e       *pipelinetest.Env
	custody *keystest.Custody
	cfg     *config.Config
	logs    *bytes.Buffer
	loads   *loads
}

// newRig assembles the pipeline and moves its hot wallet's key to backend.
func newRig(t *testing.T, backend string) *rig {
	e := pipelinetest.New(t, pipelinetest.Options{Confirmations: 1})
	r := &rig{e: e, custody: keystest.Start(t), logs: &bytes.Buffer{}, loads: &loads{}}
	e.Log = slog.New(slog.NewJSONHandler(syncWriter{w: r.logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	r.cfg = &config.Config{Chains: []config.Chain{e.Config}}
	r.custody.Configure(r.cfg)
	var w config.WalletKey
	switch backend {
	case "secretsmanager":
		w = r.custody.SecretsManagerWallet(t, "local", e.Config.ChainID, "sluice/test/hot", e.Hot.Key)
	case "kms":
		w = r.custody.KMSWallet(t, "local", e.Hot.Key)
	}
	r.cfg.Keys.Wallets = []config.WalletKey{w}
	if err := r.cfg.Finish(); err != nil {
		t.Fatal(err)
	}
	return r
}

// syncWriter serialises log writes from the signer's goroutines into one buffer.
type syncWriter struct{ w *bytes.Buffer }

var logMu sync.Mutex

func (s syncWriter) Write(p []byte) (int, error) {
	logMu.Lock()
	defer logMu.Unlock()
	return s.w.Write(p)
}

func (r *rig) open(t *testing.T) *source.Set {
	set, err := source.Open(r.e.Ctx, r.cfg, r.e.Log, r.loads, source.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { set.Close() })
	return set
}

func TestWithdrawalsSignedFromCustody(t *testing.T) {
	for _, backend := range []string{"secretsmanager", "kms"} {
		t.Run(backend, func(t *testing.T) {
			r := newRig(t, backend)
			e := r.e
			d := e.SignerDeps()
			d.Keys = r.open(t)
			s := e.NewSigner(d)
			polTo, usdtTo := testenv.NewAccount(t).Address, testenv.NewAccount(t).Address
			wPOL := e.Withdraw("POL", polTo, 1e15)
			wUSDT := e.Withdraw("USDT", usdtTo, 5_000_000)
			for _, m := range e.Receive(queue.TxRequest) {
				if err := s.Handle(e.Ctx, m); err != nil {
					t.Fatal(err)
				}
			}
			for _, w := range []*store.Withdrawal{wPOL, wUSDT} {
				if got := e.Get(w.ID); got.Status != store.Signed {
					t.Fatalf("%s: status %s", w.Asset, got.Status)
				}
			}
			b := e.Broadcaster()
			for range 2 {
				m := e.One(queue.SignedTx)
				if err := b.Handle(e.Ctx, m); err != nil {
					t.Fatal(err)
				}
				if err := e.Queue.Delete(e.Ctx, queue.SignedTx, m); err != nil {
					t.Fatal(err)
				}
			}
			e.WaitMinedNonce(2)
			if bal, err := e.Client.BalanceAt(e.Ctx, polTo); err != nil || bal.Cmp(big.NewInt(1e15)) != 0 {
				t.Fatalf("POL recipient holds %v (%v)", bal, err)
			}
			if bal, err := e.Client.TokenBalance(e.Ctx, e.Contracts.USDT, usdtTo); err != nil || bal.Cmp(big.NewInt(5_000_000)) != 0 {
				t.Fatalf("USDT recipient holds %v (%v)", bal, err)
			}
			if r.loads.ok != 1 || r.loads.ko != 0 {
				t.Fatalf("key loads ok %d, failed %d: want one load for both withdrawals", r.loads.ok, r.loads.ko)
			}
			scan(t, r)
		})
	}
}

// A tampered secret: the withdrawal is not signed, not FAILED, holds no nonce; the error is the
// retryable key_unavailable one and is counted; after the last delivery it goes back to PENDING.
func TestTamperedKeyLeavesWithdrawalWaiting(t *testing.T) {
	r := newRig(t, "secretsmanager")
	e := r.e
	api := r.custody.SecretsManagerClient(t)
	v, err := api.GetSecretValue(e.Ctx, &sm.GetSecretValueInput{SecretId: aws.String("sluice/test/hot")})
	if err != nil {
		t.Fatal(err)
	}
	var env secretsmanager.Envelope
	if err := json.Unmarshal([]byte(*v.SecretString), &env); err != nil {
		t.Fatal(err)
	}
	env.Ciphertext[7] ^= 0x40
	raw, _ := json.Marshal(env)
	if _, err := api.PutSecretValue(e.Ctx, &sm.PutSecretValueInput{SecretId: aws.String("sluice/test/hot"), SecretString: aws.String(string(raw))}); err != nil {
		t.Fatal(err)
	}
	d := e.SignerDeps()
	d.Keys = r.open(t)
	s := e.NewSigner(d)
	w := e.Withdraw("POL", testenv.NewAccount(t).Address, 1e15)
	m := e.One(queue.TxRequest)
	err = s.Handle(e.Ctx, m)
	if !errors.Is(err, keys.ErrKeyUnavailable) || !txerr.IsRetryable(err) || txerr.CodeOf(err) != keys.CodeKeyUnavailable {
		t.Fatalf("handle: %v: want the retryable key_unavailable error", err)
	}
	if got := e.Get(w.ID); got.Status == store.Failed || got.Status == store.Signed {
		t.Fatalf("status %s after an unavailable key", got.Status)
	}
	if n := e.CountSent(); n != 0 {
		t.Fatalf("%d transactions recorded", n)
	}
	st, err := e.Nonces.Peek(e.Ctx, e.Config.ChainID, e.Hot.Address)
	if err != nil || len(st.Leases) != 0 {
		t.Fatalf("nonce state %+v (%v): a key failure must not hold a nonce", st, err)
	}
	// The last delivery: back to PENDING for a later retry, still not FAILED.
	m.ReceiveCount = queue.MaxReceiveCount
	if err := s.Handle(e.Ctx, m); err != nil {
		t.Fatalf("last delivery: %v", err)
	}
	if got := e.Get(w.ID); got.Status != store.Pending {
		t.Fatalf("status %s after the last delivery, want PENDING", got.Status)
	}
	if r.loads.ko != 2 || r.loads.ok != 0 {
		t.Fatalf("loads ok %d failed %d: every failed load is counted (the alert)", r.loads.ok, r.loads.ko)
	}
	if !strings.Contains(r.logs.String(), "wallet key unavailable") {
		t.Fatalf("no log line says the key is unavailable:\n%s", r.logs.String())
	}
	scan(t, r)
}

// scan searches every log line, queue message and database row for the hot wallet's key.
func scan(t *testing.T, r *rig) {
	t.Helper()
	key := crypto.FromECDSA(r.e.Hot.Key)
	h := hex.EncodeToString(key)
	encs := []string{h, "0x" + h, strings.ToUpper(h), base64.StdEncoding.EncodeToString(key), base64.RawStdEncoding.EncodeToString(key),
		base64.URLEncoding.EncodeToString(key), r.e.Hot.Key.D.String()}
	var all strings.Builder
	logMu.Lock()
	all.WriteString(r.logs.String())
	logMu.Unlock()
	rows := dumpDatabase(t, r.e.Store.DB)
	all.WriteString(rows)
	for _, enc := range encs {
		if strings.Contains(all.String(), enc) {
			t.Fatalf("key material (%s…) found in logs or database", enc[:6])
		}
		if strings.Contains(strings.ToLower(all.String()), strings.ToLower(enc)) && len(enc) == 64 {
			t.Fatalf("key material (hex, any case) found")
		}
	}
	if !strings.Contains(rows, r.e.Hot.Address.Hex()) && !strings.Contains(strings.ToLower(rows), strings.ToLower(r.e.Hot.Address.Hex()[2:])) {
		t.Fatalf("the database dump does not even name the hot wallet: the scan looked at nothing")
	}
}

// dumpDatabase renders every row of every table (queue messages included: the MySQL queue lives
// there), hex-encoding binary columns as well as showing them raw.
func dumpDatabase(t *testing.T, db *sql.DB) string {
	t.Helper()
	ctx := context.Background()
	tables, err := db.QueryContext(ctx, `SHOW TABLES`)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for tables.Next() {
		var n string
		if err := tables.Scan(&n); err != nil {
			t.Fatal(err)
		}
		names = append(names, n)
	}
	tables.Close()
	var out strings.Builder
	for _, n := range names {
		rows, err := db.QueryContext(ctx, "SELECT * FROM `"+n+"`")
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			for _, v := range vals {
				if b, ok := v.([]byte); ok {
					fmt.Fprintf(&out, "%s|%x|", b, b)
				} else {
					fmt.Fprintf(&out, "%v|", v)
				}
			}
			out.WriteString("\n")
		}
		rows.Close()
	}
	return out.String()
}
