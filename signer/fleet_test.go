package signer_test

import (
	"database/sql"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/sluice-custody/sluice/internal/config"
	"github.com/sluice-custody/sluice/internal/pipelinetest"
	"github.com/sluice-custody/sluice/internal/queue"
	"github.com/sluice-custody/sluice/internal/store"
	"github.com/sluice-custody/sluice/internal/testenv"
	"github.com/sluice-custody/sluice/internal/txerr"
	"github.com/sluice-custody/sluice/signer"
)

// fleetEnv is a pipeline with n hot wallets and the batch contracts configured.
func fleetEnv(t *testing.T, n int, tweak func(*config.Chain)) *pipelinetest.Env {
	e := pipelinetest.New(t, pipelinetest.Options{Confirmations: 2, Wallets: n, Chain: tweak})
	e.Config.Multicall3 = config.Address(e.Contracts.Multicall3)
	e.Config.BatchContract = config.Address(e.Contracts.BatchTransfer)
	e.Config.Batching.Prefer = "throughput"
	e.Receive(queue.TxRequest) // the batcher claims from the database; the messages are not needed
	return e
}

// rounds runs the batcher until cond holds (or fails the test after a while), driving broadcaster and
// monitor in between so that approves and batches get mined.
func rounds(t *testing.T, e *pipelinetest.Env, s *signer.Signer, cond func() bool) {
	t.Helper()
	b, mo := e.Broadcaster(), e.Monitor()
	deadline := time.Now().Add(90 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition never met")
		}
		if _, err := s.BatchOnce(e.Ctx); err != nil {
			t.Logf("batch round: %v", err) // an approve not mined yet, say: the next round goes on
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
		time.Sleep(100 * time.Millisecond)
	}
}

func countRows(t *testing.T, e *pipelinetest.Env, q string, args ...any) int {
	t.Helper()
	var n int
	if err := e.Store.DB.QueryRowContext(e.Ctx, q, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func tokenBalance(t *testing.T, e *pipelinetest.Env, who common.Address) *big.Int {
	t.Helper()
	b, err := e.Client.TokenBalance(e.Ctx, e.Contracts.USDT, who)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// noNonceGaps checks every wallet's recorded transactions: nonces 0..n-1, each once, all mined.
func noNonceGaps(t *testing.T, e *pipelinetest.Env) map[common.Address]int {
	t.Helper()
	out := map[common.Address]int{}
	for _, w := range e.Wallets {
		rows, err := e.Store.DB.QueryContext(e.Ctx, `SELECT nonce FROM sent_transactions WHERE from_address = ? ORDER BY nonce`, w.Address.Hex())
		if err != nil {
			t.Fatal(err)
		}
		var want uint64
		for rows.Next() {
			var n uint64
			if err := rows.Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n != want {
				t.Fatalf("wallet %s: nonce %d recorded where %d was next (gap or reuse)", w.Address, n, want)
			}
			want++
		}
		rows.Close()
		mined, err := e.Client.NonceAt(e.Ctx, w.Address)
		if err != nil || mined != want {
			t.Fatalf("wallet %s: mined nonce %d (%v), %d recorded", w.Address, mined, err, want)
		}
		out[w.Address] = int(want)
	}
	return out
}

// A withdrawal larger than any wallet holds waits PENDING awaiting_funds (one history row, one webhook
// event, the waiting column, however many rounds pass), and is paid exactly once when a wallet is
// funded; meanwhile smaller withdrawals are paid.
func TestAwaitingFundsThenPaidOnce(t *testing.T) {
	e := fleetEnv(t, 2, nil)
	if _, err := e.Store.AddWebhookEndpoint(e.Ctx, e.ClientID, "https://example.com/hook", "secret"); err != nil {
		t.Fatal(err)
	}
	to := testenv.NewAccount(t).Address
	big1 := e.Withdraw("USDT", to, 2e15) // each wallet holds 1e15
	small := e.Withdraw("USDT", testenv.NewAccount(t).Address, 1_000_000)
	s := e.Signer()
	rounds(t, e, s, func() bool { return e.Get(small.ID).Status == store.Confirmed })
	for i := 0; i < 5; i++ {
		if _, err := s.BatchOnce(e.Ctx); err != nil {
			t.Fatal(err)
		}
	}
	got := e.Get(big1.ID)
	if got.Status != store.Pending || got.Waiting != store.WaitingAwaitingFunds || got.WaitingSince == nil {
		t.Fatalf("big withdrawal %s waiting %q since %v, want PENDING awaiting_funds", got.Status, got.Waiting, got.WaitingSince)
	}
	if n := countRows(t, e, `SELECT COUNT(*) FROM withdrawal_history WHERE withdrawal_id = ? AND reason LIKE 'awaiting_funds%'`, big1.ID); n != 1 {
		t.Fatalf("%d awaiting_funds history rows after several rounds, want 1", n)
	}
	if n := countRows(t, e, `SELECT COUNT(*) FROM webhook_events WHERE withdrawal_id = ? AND type = ?`, big1.ID, store.EventAwaitingFunds); n != 1 {
		t.Fatalf("%d withdrawal.awaiting_funds events, want 1", n)
	}
	if n := countRows(t, e, `SELECT COUNT(*) FROM webhook_events WHERE withdrawal_id = ? AND type = 'withdrawal.failed'`, big1.ID); n != 0 {
		t.Fatal("the waiting withdrawal failed")
	}

	// A top-up lands on the second wallet: the next rounds pay it, once.
	e.MintUSDT(e.Wallets[1].Address, big.NewInt(2e15))
	rounds(t, e, s, func() bool { return e.Get(big1.ID).Status == store.Confirmed })
	got = e.Get(big1.ID)
	if got.Waiting != "" || got.WaitingSince != nil || !strings.EqualFold(got.From, e.Wallets[1].Address.Hex()) {
		t.Fatalf("paid withdrawal waiting %q from %s, want cleared and paid by the funded wallet", got.Waiting, got.From)
	}
	if b := tokenBalance(t, e, to); b.Cmp(big.NewInt(2e15)) != 0 {
		t.Fatalf("recipient holds %s, want 2e15 (paid exactly once)", b)
	}
	if n := countRows(t, e, `SELECT COUNT(*) FROM sent_transactions WHERE kind IN ('withdrawal','batch') AND id IN
		(SELECT sent_tx_id FROM withdrawals WHERE id = ?)`, big1.ID); n != 1 {
		t.Fatalf("%d paying transactions", n)
	}
	noNonceGaps(t, e)
}

// Past the chain's funds_deadline a waiting withdrawal FAILS with INSUFFICIENT_FUNDS, on the batcher and
// on the single path alike; one above max_withdrawal (stored before the maximum was configured) fails at
// once. Nothing is signed for them.
func TestAwaitingFundsDeadline(t *testing.T) {
	e := fleetEnv(t, 1, func(c *config.Chain) {
		c.FundsDeadline = config.Duration{Duration: time.Second}
		c.Assets[0].MaxWithdrawal = config.NewWei(big.NewInt(5e18)) // POL
	})
	w := e.Withdraw("USDT", testenv.NewAccount(t).Address, 2e15)
	tooBig := e.Withdraw("POL", testenv.NewAccount(t).Address, 6e18)
	s := e.Signer()
	time.Sleep(200 * time.Millisecond) // past max_wait
	if _, err := s.BatchOnce(e.Ctx); err != nil {
		t.Fatal(err)
	}
	if got := e.Get(w.ID); got.Status != store.Pending || got.Waiting != store.WaitingAwaitingFunds {
		t.Fatalf("first round: %s %q, want PENDING awaiting_funds", got.Status, got.Waiting)
	}
	if got := e.Get(tooBig.ID); got.Status != store.Failed || got.ErrorType != string(txerr.InsufficientFunds) || !strings.Contains(got.ErrorMessage, "max_withdrawal") {
		t.Fatalf("above max_withdrawal: %s %s %q, want FAILED INSUFFICIENT_FUNDS naming max_withdrawal", got.Status, got.ErrorType, got.ErrorMessage)
	}
	time.Sleep(1300 * time.Millisecond) // past the deadline, and past the batcher's rest of a waiting group
	if _, err := s.BatchOnce(e.Ctx); err != nil {
		t.Fatal(err)
	}
	got := e.Get(w.ID)
	if got.Status != store.Failed || got.ErrorType != string(txerr.InsufficientFunds) || !strings.Contains(got.ErrorMessage, "funds_deadline") {
		t.Fatalf("after the deadline: %s %s %q, want FAILED INSUFFICIENT_FUNDS naming funds_deadline", got.Status, got.ErrorType, got.ErrorMessage)
	}

	// The single path (no batcher): waits, is asked for again later, then fails at the deadline.
	e.Receive(queue.TxRequest) // the requests of the withdrawals above
	w2 := e.Withdraw("USDT", testenv.NewAccount(t).Address, 2e15)
	m := e.One(queue.TxRequest)
	for i := 0; i < 2; i++ {
		if err := s.Handle(e.Ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	if got := e.Get(w2.ID); got.Status != store.Pending || got.Waiting != store.WaitingAwaitingFunds {
		t.Fatalf("single path: %s %q, want PENDING awaiting_funds", got.Status, got.Waiting)
	}
	if n := countRows(t, e, `SELECT COUNT(*) FROM withdrawal_history WHERE withdrawal_id = ?`, w2.ID); n != 2 {
		t.Fatalf("single path: %d history rows, want accepted + one awaiting_funds", n)
	}
	if d, err := e.Queue.Depth(e.Ctx, queue.TxRequest); err != nil || d < 2 {
		t.Fatalf("tx-request depth %d (%v), want delayed re-requests", d, err)
	}
	time.Sleep(1100 * time.Millisecond)
	if err := s.Handle(e.Ctx, m); err != nil {
		t.Fatal(err)
	}
	if got := e.Get(w2.ID); got.Status != store.Failed || got.ErrorType != string(txerr.InsufficientFunds) {
		t.Fatalf("single path after the deadline: %s %s", got.Status, got.ErrorType)
	}
	if n := countRows(t, e, `SELECT COUNT(*) FROM sent_transactions WHERE kind IN ('withdrawal','batch')`); n != 0 {
		t.Fatalf("%d payments signed for withdrawals that cannot be paid", n)
	}
}

// Four wallets: a burst of token and native withdrawals is spread over all four (each pays a share),
// every withdrawal is paid once, and no wallet has a nonce gap.
func TestFleetSpreadsBurst(t *testing.T) {
	e := fleetEnv(t, 4, nil)
	type paid struct {
		id     string
		to     common.Address
		amount int64
	}
	var ws []paid
	for i := 0; i < 40; i++ {
		to := testenv.NewAccount(t).Address
		w := e.Withdraw("USDT", to, int64(1_000_000+i))
		ws = append(ws, paid{w.ID, to, int64(1_000_000 + i)})
	}
	for i := 0; i < 20; i++ {
		e.Withdraw("POL", testenv.NewAccount(t).Address, 1e15)
	}
	s := e.Signer()
	rounds(t, e, s, func() bool {
		return countRows(t, e, `SELECT COUNT(*) FROM withdrawals WHERE status <> ?`, store.Confirmed) == 0
	})
	rows, err := e.Store.DB.QueryContext(e.Ctx, `SELECT from_address, COUNT(*) FROM withdrawals GROUP BY from_address`)
	if err != nil {
		t.Fatal(err)
	}
	share := map[string]int{}
	for rows.Next() {
		var from string
		var n int
		if err := rows.Scan(&from, &n); err != nil {
			t.Fatal(err)
		}
		share[strings.ToLower(from)] = n
	}
	rows.Close()
	for _, w := range e.Wallets {
		if share[strings.ToLower(w.Address.Hex())] == 0 {
			t.Fatalf("wallet %s paid nothing; shares %v", w.Address, share)
		}
	}
	t.Logf("shares %v", share)
	for _, p := range ws {
		if b := tokenBalance(t, e, p.to); b.Int64() != p.amount {
			t.Fatalf("recipient of %s holds %s, want %d (paid once)", p.id, b, p.amount)
		}
	}
	noNonceGaps(t, e)
}

// A frozen wallet gets nothing; the chain's other wallet pays everything.
func TestFrozenWalletGetsNothing(t *testing.T) {
	e := fleetEnv(t, 2, nil)
	frozen := e.Wallets[0].Address
	if err := e.Store.InTx(e.Ctx, func(tx *sql.Tx) error {
		_, err := e.Store.FreezeWallet(e.Ctx, tx, "local", frozen.Hex(), "test: foreign transaction", "test")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		e.Withdraw("POL", testenv.NewAccount(t).Address, 1e15)
		e.Withdraw("USDT", testenv.NewAccount(t).Address, 1_000_000)
	}
	s := e.Signer()
	rounds(t, e, s, func() bool {
		return countRows(t, e, `SELECT COUNT(*) FROM withdrawals WHERE status <> ?`, store.Confirmed) == 0
	})
	if n := countRows(t, e, `SELECT COUNT(*) FROM sent_transactions WHERE from_address = ?`, frozen.Hex()); n != 0 {
		t.Fatalf("%d transactions signed by the frozen wallet", n)
	}
	if n := countRows(t, e, `SELECT COUNT(*) FROM withdrawals WHERE from_address = ?`, e.Wallets[1].Address.Hex()); n != 20 {
		t.Fatalf("the unfrozen wallet paid %d of 20", n)
	}
	noNonceGaps(t, e)
}
