package signer_test

import (
	"context"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"

	"github.com/sluice-custody/sluice/contracts"
	"github.com/sluice-custody/sluice/contracts/bindings"
	"github.com/sluice-custody/sluice/internal/config"
	"github.com/sluice-custody/sluice/internal/pipelinetest"
	"github.com/sluice-custody/sluice/internal/queue"
	"github.com/sluice-custody/sluice/internal/store"
	"github.com/sluice-custody/sluice/internal/testenv"
	"github.com/sluice-custody/sluice/internal/txerr"
	"github.com/sluice-custody/sluice/signer"
)

// batchEnv is a pipeline with the batch contracts configured.
func batchEnv(t *testing.T, prefer string) *pipelinetest.Env {
	e := pipelinetest.New(t, pipelinetest.Options{Confirmations: 2})
	e.Config.Multicall3 = config.Address(e.Contracts.Multicall3)
	e.Config.BatchContract = config.Address(e.Contracts.BatchTransfer)
	e.Config.Batching.Prefer = prefer
	e.Receive(queue.TxRequest) // nothing yet; keeps the helper symmetric
	return e
}

// drive broadcasts every queued signed tx and runs the monitor until every withdrawal is terminal.
func drive(t *testing.T, e *pipelinetest.Env, ids ...string) {
	t.Helper()
	driveUntil(t, e, func() bool {
		for _, id := range ids {
			if !e.Get(id).Status.Terminal() {
				return false
			}
		}
		return true
	})
}

// driveUntil broadcasts every queued signed tx and runs the monitor until done holds.
func driveUntil(t *testing.T, e *pipelinetest.Env, done func() bool) {
	t.Helper()
	b, mo := e.Broadcaster(), e.Monitor()
	deadline := time.Now().Add(60 * time.Second)
	for {
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
		if done() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("never settled")
		}
		time.Sleep(150 * time.Millisecond)
	}
}

func batchOnce(t *testing.T, s *signer.Signer, e *pipelinetest.Env) int {
	t.Helper()
	n, err := s.BatchOnce(e.Ctx)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// A native batch with a recipient that rejects coin: the simulation drops it (FAILED with the reason),
// the others go out in one atomic Multicall3 transaction and are confirmed, and no coin stays behind
// in Multicall3.
func TestNativeBatchDropsRejectingRecipient(t *testing.T) {
	e := batchEnv(t, "throughput")
	eth, err := e.Chain.Client(e.Ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer eth.Close()
	rejecter, err := contracts.Deploy(e.Ctx, eth, e.Funder.Key, e.Chain.ChainID, &bindings.RejectingReceiverMetaData)
	if err != nil {
		t.Fatal(err)
	}
	var ws []*store.Withdrawal
	for i := 0; i < 5; i++ {
		ws = append(ws, e.Withdraw("POL", testenv.NewAccount(t).Address, 1e15+int64(i)))
	}
	bad := e.Withdraw("POL", rejecter, 1e15)
	s := e.Signer()
	if n := batchOnce(t, s, e); n != 6 {
		t.Fatalf("batch round moved %d withdrawals, want 6", n)
	}
	if got := e.Get(bad.ID); got.Status != store.Failed || got.ErrorType != string(txerr.ExecutionReverted) || !strings.Contains(got.ErrorMessage, "rejected") {
		t.Fatalf("rejecting recipient: %s %s %q", got.Status, got.ErrorType, got.ErrorMessage)
	}
	if n := e.CountSent(); n != 1 {
		t.Fatalf("%d transactions for one batch", n)
	}
	first := e.Get(ws[0].ID)
	if first.BatchID == "" || first.SentTxID == nil {
		t.Fatalf("not batched: %+v", first)
	}
	ids := []string{bad.ID}
	for _, w := range ws {
		got := e.Get(w.ID)
		if got.Status != store.Signed || got.BatchID != first.BatchID || *got.SentTxID != *first.SentTxID {
			t.Fatalf("withdrawal %s: %s batch %q", w.ID, got.Status, got.BatchID)
		}
		ids = append(ids, w.ID)
	}
	drive(t, e, ids...)
	for _, w := range ws {
		got := e.Get(w.ID)
		if got.Status != store.Confirmed {
			t.Fatalf("withdrawal %s: %s %q", w.ID, got.Status, got.ErrorMessage)
		}
		bal, err := e.Client.BalanceAt(e.Ctx, common.HexToAddress(w.To))
		if err != nil || bal.Cmp(w.Amount) != 0 {
			t.Fatalf("recipient %s holds %v (%v), want %s", w.To, bal, err, w.Amount)
		}
	}
	if bal, err := e.Client.BalanceAt(e.Ctx, e.Contracts.Multicall3); err != nil || bal.Sign() != 0 {
		t.Fatalf("Multicall3 holds %v (%v), want 0", bal, err)
	}
	var reason string
	if err := e.Store.DB.QueryRow(`SELECT reason FROM batches WHERE id = ?`, first.BatchID).Scan(&reason); err != nil || reason == "" {
		t.Fatalf("batch reason %q (%v)", reason, err)
	}
}

// Preferring gas, native payments to empty accounts go out one by one (a batched payment to a new
// account costs more than a plain transfer), and those to funded accounts are batched.
func TestNativeBatchPreferGasSkipsEmptyAccounts(t *testing.T) {
	e := batchEnv(t, "gas")
	eth, err := e.Chain.Client(e.Ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer eth.Close()
	var funded []*store.Withdrawal
	for i := 0; i < 4; i++ {
		to := testenv.NewAccount(t).Address
		if _, err := contracts.Transact(e.Ctx, eth, e.Funder.Key, e.Chain.ChainID, to, big.NewInt(1), nil, 21000); err != nil {
			t.Fatal(err)
		}
		funded = append(funded, e.Withdraw("POL", to, 1e12))
	}
	empty := e.Withdraw("POL", testenv.NewAccount(t).Address, 1e12)
	if n := batchOnce(t, e.Signer(), e); n != 5 {
		t.Fatalf("moved %d, want 5", n)
	}
	if n := e.CountSent(); n != 2 {
		t.Fatalf("%d transactions, want one batch and one single", n)
	}
	if got := e.Get(empty.ID); got.Status != store.Signed || got.BatchID != "" {
		t.Fatalf("empty-account withdrawal: %s batch %q, want a single", got.Status, got.BatchID)
	}
	for _, w := range funded {
		if got := e.Get(w.ID); got.BatchID == "" {
			t.Fatalf("funded recipient not batched")
		}
	}
}

// A token batch first gets a bounded allowance for the batch contract (its own recorded transaction),
// then pays everyone in one transaction; a recipient blocked after signing fails alone, from its
// TransferResult event, and the others are paid.
func TestTokenBatchRevertingItemFailsAlone(t *testing.T) {
	e := batchEnv(t, "gas")
	var ws []*store.Withdrawal
	for i := 0; i < 5; i++ {
		ws = append(ws, e.Withdraw("USDT", testenv.NewAccount(t).Address, 1_000_000+int64(i)))
	}
	blockedEarly := testenv.NewAccount(t).Address
	e.BlockToken(blockedEarly)
	early := e.Withdraw("USDT", blockedEarly, 2_000_000)
	s := e.Signer()
	if n := batchOnce(t, s, e); n != 0 {
		t.Fatalf("signed %d before the allowance exists", n)
	}
	approve := e.One(queue.SignedTx) // the approve
	if err := e.Broadcaster().Handle(e.Ctx, approve); err != nil {
		t.Fatal(err)
	}
	_ = e.Queue.Delete(e.Ctx, queue.SignedTx, approve)
	e.WaitMinedNonce(1)
	var kind, data string
	if err := e.Store.DB.QueryRow(`SELECT kind, to_address FROM sent_transactions WHERE nonce = 0`).Scan(&kind, &data); err != nil || kind != "approve" || !strings.EqualFold(data, e.Contracts.USDT.Hex()) {
		t.Fatalf("first tx %s to %s (%v), want an approve on the token", kind, data, err)
	}
	allowance := tokenAllowance(t, e)
	if allowance.Sign() == 0 || allowance.Cmp(big.NewInt(1e15)) >= 0 {
		t.Fatalf("allowance %s: want bounded and non-zero", allowance)
	}
	if n := batchOnce(t, s, e); n != 6 {
		t.Fatalf("batch moved %d, want 6", n)
	}
	if got := e.Get(early.ID); got.Status != store.Failed || got.ErrorType != string(txerr.ExecutionReverted) {
		t.Fatalf("blocked-before-signing recipient: %s %s", got.Status, got.ErrorType)
	}
	late := ws[2]
	e.BlockToken(common.HexToAddress(late.To)) // after the simulation: its item fails on chain
	ids := []string{early.ID}
	for _, w := range ws {
		ids = append(ids, w.ID)
	}
	drive(t, e, ids...)
	for _, w := range ws {
		got := e.Get(w.ID)
		bal, err := e.Client.TokenBalance(e.Ctx, e.Contracts.USDT, common.HexToAddress(w.To))
		if err != nil {
			t.Fatal(err)
		}
		if w.ID == late.ID {
			if got.Status != store.Failed || got.ErrorType != string(txerr.ExecutionReverted) || !strings.Contains(got.ErrorMessage, "batch") || bal.Sign() != 0 {
				t.Fatalf("blocked item: %s %s %q balance %s", got.Status, got.ErrorType, got.ErrorMessage, bal)
			}
			continue
		}
		if got.Status != store.Confirmed || bal.Cmp(w.Amount) != 0 {
			t.Fatalf("withdrawal %s: %s, recipient holds %s want %s", w.ID, got.Status, bal, w.Amount)
		}
	}
	if n := e.CountSent(); n != 2 {
		t.Fatalf("%d transactions, want the approve and one batch", n)
	}
}

func tokenAllowance(t *testing.T, e *pipelinetest.Env) *big.Int {
	t.Helper()
	tok := bindings.NewTestToken()
	out, err := e.Client.CallContract(e.Ctx, callMsg(e.Hot.Address, e.Contracts.USDT, tok.PackAllowance(e.Hot.Address, e.Contracts.BatchTransfer)), nil)
	if err != nil {
		t.Fatal(err)
	}
	a, err := tok.UnpackAllowance(out)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// A tx-request redelivered after its withdrawal was signed into a batch re-queues the batch's recorded
// transaction: no second nonce, and every recipient is paid once.
func TestBatchRedeliveredAfterSigningPaysOnce(t *testing.T) {
	e := batchEnv(t, "throughput")
	var ws []*store.Withdrawal
	for i := 0; i < 5; i++ {
		ws = append(ws, e.Withdraw("POL", testenv.NewAccount(t).Address, 1e15))
	}
	reqs := e.Receive(queue.TxRequest)
	if len(reqs) != 5 {
		t.Fatalf("%d requests", len(reqs))
	}
	s := e.Signer()
	if n := batchOnce(t, s, e); n != 5 {
		t.Fatalf("moved %d", n)
	}
	for _, m := range reqs { // every request delivered (again) after the batch was signed
		if err := s.Handle(e.Ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	if n := batchOnce(t, s, e); n != 0 {
		t.Fatalf("second round moved %d", n)
	}
	if n := e.CountSent(); n != 1 {
		t.Fatalf("%d transactions after redeliveries, want 1", n)
	}
	ids := make([]string, len(ws))
	for i, w := range ws {
		ids[i] = w.ID
	}
	drive(t, e, ids...)
	for _, w := range ws {
		bal, err := e.Client.BalanceAt(e.Ctx, common.HexToAddress(w.To))
		if err != nil || bal.Cmp(w.Amount) != 0 || e.Get(w.ID).Status != store.Confirmed {
			t.Fatalf("recipient %s holds %v (%v), status %s", w.To, bal, err, e.Get(w.ID).Status)
		}
	}
	if got, err := e.Client.NonceAt(e.Ctx, e.Hot.Address); err != nil || got != 1 {
		t.Fatalf("hot wallet nonce %d (%v), want 1", got, err)
	}
}

// Below the per-token threshold, claimed withdrawals go out one transaction each.
func TestSmallGroupGoesSingle(t *testing.T) {
	e := batchEnv(t, "throughput")
	e.Config.Batching.MaxWait.Duration = time.Millisecond
	a := e.Withdraw("POL", testenv.NewAccount(t).Address, 1e15)
	b := e.Withdraw("POL", testenv.NewAccount(t).Address, 1e15)
	time.Sleep(5 * time.Millisecond)
	if n := batchOnce(t, e.Signer(), e); n != 2 {
		t.Fatalf("moved %d", n)
	}
	if n := e.CountSent(); n != 2 || e.Get(a.ID).BatchID != "" || e.Get(b.ID).BatchID != "" {
		t.Fatalf("%d txs; want two singles", n)
	}
}

func callMsg(from, to common.Address, data []byte) ethereum.CallMsg {
	return ethereum.CallMsg{From: from, To: &to, Data: data}
}

// An atomic native batch that reverts on chain paid no one: once the revert is final the monitor gives
// its withdrawals back to PENDING (with the reason in their history), and the next round pays them,
// dropping the recipient that made it revert.
func TestRevertedNativeBatchReturnsToPending(t *testing.T) {
	e := batchEnv(t, "throughput")
	eth, err := e.Chain.Client(e.Ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer eth.Close()
	rejecter, err := contracts.Deploy(e.Ctx, eth, e.Funder.Key, e.Chain.ChainID, &bindings.RejectingReceiverMetaData)
	if err != nil {
		t.Fatal(err)
	}
	var good []*store.Withdrawal
	for i := 0; i < 4; i++ {
		good = append(good, e.Withdraw("POL", testenv.NewAccount(t).Address, 1e15))
	}
	bad := e.Withdraw("POL", rejecter, 1e15)
	claimed, err := e.Store.ClaimForBatch(e.Ctx, "local", "POL", 10, time.Minute, "test")
	if err != nil || len(claimed) != 5 {
		t.Fatalf("claimed %d (%v)", len(claimed), err)
	}
	s := e.Signer()
	if err := s.SignUnsimulatedNativeBatch(e.Ctx, "local", claimed, 500_000); err != nil {
		t.Fatal(err)
	}
	sentID := *e.Get(bad.ID).SentTxID
	driveUntil(t, e, func() bool {
		st, err := e.Store.GetSentTx(e.Ctx, sentID)
		if err != nil {
			t.Fatal(err)
		}
		return st.Status == store.TxFailed
	})
	for _, w := range append(good, bad) {
		got := e.Get(w.ID)
		if got.Status != store.Pending || got.SentTxID != nil || got.BatchID != "" {
			t.Fatalf("after the revert: %s sent %v batch %q, want PENDING and detached", got.Status, got.SentTxID, got.BatchID)
		}
		h, err := e.Store.History(e.Ctx, w.ID)
		if err != nil || !strings.Contains(h[len(h)-1].Reason, "reverted") || h[len(h)-1].Actor != "monitor" {
			t.Fatalf("history %+v (%v)", h, err)
		}
	}
	if bal, _ := e.Client.BalanceAt(e.Ctx, e.Contracts.Multicall3); bal.Sign() != 0 {
		t.Fatalf("Multicall3 holds %s", bal)
	}
	if got := len(e.Receive(queue.TxRequest)); got != 5+5 {
		t.Fatalf("%d tx-requests, want the 5 originals and 5 re-requests", got)
	}
	if n := batchOnce(t, s, e); n != 5 {
		t.Fatalf("second round moved %d", n)
	}
	ids := []string{bad.ID}
	for _, w := range good {
		ids = append(ids, w.ID)
	}
	drive(t, e, ids...)
	if got := e.Get(bad.ID); got.Status != store.Failed {
		t.Fatalf("rejecting recipient %s", got.Status)
	}
	for _, w := range good {
		bal, _ := e.Client.BalanceAt(e.Ctx, common.HexToAddress(w.To))
		if got := e.Get(w.ID); got.Status != store.Confirmed || bal.Cmp(w.Amount) != 0 {
			t.Fatalf("withdrawal %s %s, recipient holds %s", w.ID, got.Status, bal)
		}
	}
}

// While the batcher runs, tx-requests of PENDING withdrawals are left to it, and it batches them.
func TestRunBatcherTakesOverRequests(t *testing.T) {
	e := batchEnv(t, "throughput")
	s := e.Signer()
	ctx, cancel := context.WithCancel(e.Ctx)
	done := make(chan error, 1)
	var ws []*store.Withdrawal
	for i := 0; i < 6; i++ {
		ws = append(ws, e.Withdraw("POL", testenv.NewAccount(t).Address, 1e15))
	}
	reqs := e.Receive(queue.TxRequest)
	go func() { done <- s.RunBatcher(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	deadline := time.Now().Add(20 * time.Second)
	for e.Get(ws[5].ID).Status == store.Pending {
		for _, m := range reqs {
			if err := s.Handle(e.Ctx, m); err != nil {
				t.Fatal(err)
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("batcher never signed")
		}
		time.Sleep(50 * time.Millisecond)
	}
	deadline = time.Now().Add(20 * time.Second)
	for e.Get(ws[5].ID).Status != store.Signed {
		if time.Now().After(deadline) {
			t.Fatalf("status %s", e.Get(ws[5].ID).Status)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n := e.CountSent(); n != 1 {
		t.Fatalf("%d transactions, want one batch", n)
	}
	for _, w := range ws {
		if got := e.Get(w.ID); got.Status != store.Signed || got.BatchID == "" {
			t.Fatalf("withdrawal %s %s batch %q", w.ID, got.Status, got.BatchID)
		}
	}
}

// A claim whose signer died (SIGNING, nothing recorded, older than the claim timeout) is taken over.
func TestStaleClaimIsReclaimed(t *testing.T) {
	e := batchEnv(t, "throughput")
	e.Config.Batching.MaxWait.Duration = time.Hour // only min_batch makes a group ready here
	var ws []*store.Withdrawal
	for i := 0; i < 5; i++ {
		ws = append(ws, e.Withdraw("POL", testenv.NewAccount(t).Address, 1e15))
	}
	if _, err := e.Store.ClaimForBatch(e.Ctx, "local", "POL", 3, time.Minute, "crashed-signer"); err != nil {
		t.Fatal(err)
	}
	if n := batchOnce(t, e.Signer(), e); n != 0 {
		t.Fatalf("a fresh claim was taken over (%d moved)", n) // only 2 claimable: below min_batch
	}
	if _, err := e.Store.DB.Exec(`UPDATE withdrawals SET updated_at = NOW(6) - INTERVAL 10 MINUTE`); err != nil {
		t.Fatal(err)
	}
	if n := batchOnce(t, e.Signer(), e); n != 5 {
		t.Fatalf("moved %d, want the 3 stale claims and the 2 pending", n)
	}
	if n := e.CountSent(); n != 1 {
		t.Fatalf("%d transactions", n)
	}
	h, err := e.Store.History(e.Ctx, ws[0].ID)
	if err != nil || !strings.Contains(h[len(h)-2].Reason, "reclaimed") {
		t.Fatalf("history %+v (%v)", h, err)
	}
}

// allowanceGone is the node just after a reorg dropped the approve: the allowance read when the round
// starts covers the batch, then it is gone, so the simulation's transferFroms all fail.
type allowanceGone struct {
	signer.Chain
	batch    common.Address
	n        int
	simulate int
}

func (c *allowanceGone) CallContract(ctx context.Context, msg ethereum.CallMsg, block *big.Int) ([]byte, error) {
	if msg.To != nil && *msg.To == c.batch {
		c.simulate++
		args, err := bindings.NewBatchTransfer().GetABI().Methods["batchTransfer"].Inputs.Unpack(msg.Data[4:])
		if err != nil {
			return nil, err
		}
		return bindings.NewBatchTransfer().GetABI().Methods["batchTransfer"].Outputs.Pack(make([]bool, len(args[1].([]common.Address))))
	}
	if len(msg.Data) >= 4 && common.Bytes2Hex(msg.Data[:4]) == "dd62ed3e" { // allowance(owner, spender)
		c.n++
		if c.n > 1 {
			return make([]byte, 32), nil
		}
	}
	return c.Chain.CallContract(ctx, msg, block)
}

// A simulation in which every transferFrom fails for want of allowance (the approve was reorged out
// between the round's allowance check and the simulation) fails nobody: the round gives the
// withdrawals back to PENDING, to be batched once the allowance is there.
func TestTokenBatchWithoutAllowanceFailsNobody(t *testing.T) {
	e := batchEnv(t, "gas")
	var ws []*store.Withdrawal
	for i := 0; i < 5; i++ { // min_batch: batched at once
		ws = append(ws, e.Withdraw("USDT", testenv.NewAccount(t).Address, 1_000_000+int64(i)))
	}
	s := e.Signer()
	if n := batchOnce(t, s, e); n != 0 { // the approve
		t.Fatalf("signed %d before the allowance exists", n)
	}
	approve := e.One(queue.SignedTx)
	if err := e.Broadcaster().Handle(e.Ctx, approve); err != nil {
		t.Fatal(err)
	}
	_ = e.Queue.Delete(e.Ctx, queue.SignedTx, approve)
	e.WaitMinedNonce(1)

	d := e.SignerDeps()
	gone := &allowanceGone{Chain: e.Client, batch: e.Contracts.BatchTransfer}
	cd := d.Chains["local"]
	cd.Client = gone
	d.Chains["local"] = cd
	if n, err := e.NewSigner(d).BatchOnce(e.Ctx); err == nil || n != 0 || !txerr.IsRetryable(err) {
		t.Fatalf("batch round: %d signed, err %v; want nothing signed and a retryable error", n, err)
	}
	if gone.simulate == 0 {
		t.Fatal("the batch was never simulated: the test did not reach the path it is for")
	}
	for _, w := range ws {
		if got := e.Get(w.ID); got.Status != store.Pending {
			t.Fatalf("withdrawal %s is %s (%s), want PENDING", w.ID, got.Status, got.ErrorMessage)
		}
	}
	// With the allowance back, the same withdrawals are batched and paid.
	if n := batchOnce(t, s, e); n != len(ws) {
		t.Fatalf("batch moved %d, want %d", n, len(ws))
	}
}

// A reverted batch gives its withdrawals back only once the revert is reorg_watch_blocks deep (4 here:
// twice the 2 confirmations), not at the confirmations alone: a reorg between the two could still mine
// the old batch successfully, and they would be paid twice. The return is recorded (batch_returns) for
// the reorg watch, which keeps watching the reverted transaction after that.
func TestRevertedBatchReturnsOnlyPastTheReorgWatch(t *testing.T) {
	e := batchEnv(t, "throughput")
	eth, err := e.Chain.Client(e.Ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer eth.Close()
	rejecter, err := contracts.Deploy(e.Ctx, eth, e.Funder.Key, e.Chain.ChainID, &bindings.RejectingReceiverMetaData)
	if err != nil {
		t.Fatal(err)
	}
	ws := []*store.Withdrawal{e.Withdraw("POL", testenv.NewAccount(t).Address, 1e15), e.Withdraw("POL", rejecter, 1e15)}
	claimed, err := e.Store.ClaimForBatch(e.Ctx, "local", "POL", 10, time.Minute, "test")
	if err != nil || len(claimed) != 2 {
		t.Fatalf("claimed %d (%v)", len(claimed), err)
	}
	if err := e.Signer().SignUnsimulatedNativeBatch(e.Ctx, "local", claimed, 500_000); err != nil {
		t.Fatal(err)
	}
	e.Chain.SealEvery(time.Hour)
	if err := e.Broadcaster().Handle(e.Ctx, e.One(queue.SignedTx)); err != nil {
		t.Fatal(err)
	}
	m := e.One(queue.TxMonitor)
	mo := e.Monitor()
	sentID := *e.Get(ws[0].ID).SentTxID
	watch := e.Config.Recovery.ReorgWatchBlocks
	if watch != 2*e.Config.Confirmations {
		t.Fatalf("reorg_watch_blocks %d, want the default 2 × %d", watch, e.Config.Confirmations)
	}
	for confs := uint64(1); confs <= watch; confs++ {
		e.Chain.Commit()
		if err := mo.Handle(e.Ctx, m); err != nil {
			t.Fatal(err)
		}
		st, err := e.Store.GetSentTx(e.Ctx, sentID)
		if err != nil {
			t.Fatal(err)
		}
		if confs < watch && (st.Status != store.TxBroadcasted || e.Get(ws[0].ID).Status != store.Broadcasted) {
			t.Fatalf("at %d confirmations: tx %s, withdrawal %s; want both still in flight until %d", confs, st.Status, e.Get(ws[0].ID).Status, watch)
		}
		if confs == watch && (st.Status != store.TxFailed || st.ReceiptStatus == nil || *st.ReceiptStatus != 0) {
			t.Fatalf("at %d confirmations: tx %s, want FAILED (reverted)", confs, st.Status)
		}
	}
	var returned int
	if err := e.Store.DB.QueryRowContext(e.Ctx, `SELECT COUNT(*) FROM batch_returns WHERE sent_tx_id = ?`, sentID).Scan(&returned); err != nil {
		t.Fatal(err)
	}
	for _, w := range ws {
		if got := e.Get(w.ID); got.Status != store.Pending {
			t.Fatalf("withdrawal %s after the revert, want PENDING", got.Status)
		}
	}
	if returned != 2 {
		t.Fatalf("%d returns recorded, want 2", returned)
	}
}
