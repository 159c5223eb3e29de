package app_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/sluice-custody/sluice/internal/config"
	"github.com/sluice-custody/sluice/internal/devmode"
	"github.com/sluice-custody/sluice/internal/testenv"
)

// TestRecipientChecksConfigured: the actions in recipient_checks reach the API's checks. The API runs on
// the dev chain twice, first with the defaults, then with a file saying `native_to_contract: reject` and
// `address_poisoning: allow`: a native withdrawal to a contract is held, then refused with 422 naming the
// rule and nothing written; a look-alike of a recent destination is held, then accepted PENDING with no
// hold; a rule the file does not list (own_wallet) keeps its default, reject.
func TestRecipientChecksConfigured(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	st, err := devmode.Start(ctx, devmode.Options{
		RPCAddr: "127.0.0.1:0", APIAddr: testenv.FreeAddr(t), BlockTime: 200 * time.Millisecond, Confirmations: 1,
		DatabaseDSN: testenv.MySQLDSN(t), RedisAddr: testenv.RedisAddr(t), KeystoreDir: t.TempDir(),
	}, log)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	defer st.Close()
	if err := st.App.Queue.Setup(ctx); err != nil {
		t.Fatalf("queue setup: %v", err)
	}
	// Only the API runs: accepted withdrawals stay as the checks left them.
	runAPI := func() (stop func()) {
		runCtx, cancel := context.WithCancel(ctx)
		runErr := make(chan error, 1)
		go func() { runErr <- st.App.Run(runCtx, "api") }()
		testenv.WaitReady(t, st.APIURL, runErr)
		return func() {
			cancel()
			if err := <-runErr; err != nil {
				t.Errorf("api stopped with %v", err)
			}
		}
	}
	api := testenv.API{T: t, Base: st.APIURL, Key: st.APIKey}
	type reply struct {
		status int
		body   map[string]any
		raw    string
	}
	post := func(id, asset string, to common.Address) reply {
		t.Helper()
		amount := "1"
		if asset == devmode.Native {
			amount = "0.001"
		}
		code, raw := api.Do("POST", "/v1/withdrawals", map[string]string{"external_id": id, "chain": "local", "asset": asset,
			"amount": amount, "to": to.Hex()}, nil)
		var body map[string]any
		if err := json.Unmarshal(raw, &body); err != nil {
			t.Fatalf("%s: %d %s: %v", id, code, raw, err)
		}
		return reply{code, body, string(raw)}
	}
	// row is the withdrawal's status and hold reason in the database ("" for none).
	row := func(id string) (status, hold string, found bool) {
		t.Helper()
		var reason sql.NullString
		err := st.App.Store.DB.QueryRowContext(ctx, `SELECT w.status, h.reason FROM withdrawals w
			LEFT JOIN withdrawal_holds h ON h.withdrawal_id = w.id WHERE w.external_id = ?`, id).Scan(&status, &reason)
		if errors.Is(err, sql.ErrNoRows) {
			return "", "", false
		}
		if err != nil {
			t.Fatalf("row of %s: %v", id, err)
		}
		return status, reason.String, true
	}
	accepted := func(id, asset string, to common.Address, status, rule string) {
		t.Helper()
		r := post(id, asset, to)
		if r.status != http.StatusCreated || r.body["status"] != status {
			t.Fatalf("%s: %d %s, want 201 %s", id, r.status, r.raw, status)
		}
		got, hold, found := row(id)
		if !found || got != status {
			t.Fatalf("%s: database status %q (found %v), want %s", id, got, found, status)
		}
		if rule == "" && hold != "" || rule != "" && !strings.Contains(hold, "(rule "+rule+")") {
			t.Fatalf("%s: hold %q, want rule %q", id, hold, rule)
		}
	}
	refused := func(id, asset string, to common.Address, rule string) {
		t.Helper()
		r := post(id, asset, to)
		e, _ := r.body["error"].(map[string]any)
		msg, _ := e["message"].(string)
		if r.status != http.StatusUnprocessableEntity || e["code"] != "recipient_refused" || e["field"] != "to" ||
			!strings.Contains(msg, "(rule "+rule+")") {
			t.Fatalf("%s: %d %s, want 422 recipient_refused on to naming rule %s", id, r.status, r.raw, rule)
		}
		if status, _, found := row(id); found {
			t.Fatalf("%s: refused, yet written (%s)", id, status)
		}
	}
	// Look-alikes of a fresh destination: its first and last four hex characters, another middle.
	dest := testenv.NewAccount(t).Address
	lookalike := func(mid string) common.Address {
		h := strings.ToLower(dest.Hex())
		a := common.HexToAddress(h[:6] + strings.Repeat(mid, 32) + h[38:])
		if a == dest {
			t.Fatal("the look-alike is the destination")
		}
		return a
	}

	// The defaults: both rules hold.
	stop := runAPI()
	accepted("native-contract-default", devmode.Native, st.Contracts.Multicall3, "AWAITING_APPROVAL", "native_to_contract")
	accepted("first", devmode.Token, dest, "PENDING", "")
	accepted("lookalike-default", devmode.Token, lookalike("1"), "AWAITING_APPROVAL", "address_poisoning")
	stop()

	// The file's actions, as an operator writes them.
	p := filepath.Join(t.TempDir(), "sluice.yaml")
	if err := os.WriteFile(p, []byte("recipient_checks:\n  actions:\n    native_to_contract: reject\n    address_poisoning: allow\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	file, err := config.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	st.Config.RecipientChecks = file.RecipientChecks
	stop = runAPI()
	defer stop()
	refused("native-contract-configured", devmode.Native, st.Contracts.BatchTransfer, "native_to_contract")
	accepted("lookalike-configured", devmode.Token, lookalike("2"), "PENDING", "")
	refused("own-wallet", devmode.Token, st.HotWallet, "own_wallet")
}
