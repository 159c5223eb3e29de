package chain_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/rpc"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sluice-custody/sluice/internal/chain"
	"github.com/sluice-custody/sluice/internal/devchain"
	"github.com/sluice-custody/sluice/internal/testenv"
	"github.com/sluice-custody/sluice/internal/txerr"
)

// blacklistCode is the runtime code of a minimal USDT-like token: isBlackListed(address) answers true
// for listed and false for any other address; every other call reverts.
//
//	PUSH1 0 CALLDATALOAD PUSH1 0xe0 SHR PUSH4 0xe47d6060 EQ PUSH1 0x13 JUMPI PUSH1 0 DUP1 REVERT
//	JUMPDEST PUSH1 4 CALLDATALOAD PUSH20 <listed> EQ PUSH1 0 MSTORE PUSH1 0x20 PUSH1 0 RETURN
func blacklistCode(listed common.Address) []byte {
	code := append(common.FromHex("0x60003560e01c63e47d606014601357600080fd5b60043573"), listed.Bytes()...)
	return append(code, common.FromHex("0x1460005260206000f3")...)
}

var (
	usdtAddr   = common.HexToAddress("0x00000000000000000000000000000000000075D7")
	listedAddr = common.HexToAddress("0x000000000000000000000000000000000000bAd1")
	// The selectors the recipient checks call: USDT's isBlackListed, USDC's isBlacklisted (which the
	// test token lacks: it reverts).
	isBlackListed = common.FromHex("0xe47d6060")
	isBlacklisted = common.FromHex("0xfe575a87")
)

// blacklistCall is the recipient check's eth_call of token's blacklist function sel about who.
func blacklistCall(token common.Address, sel []byte, who common.Address) ethereum.CallMsg {
	return ethereum.CallMsg{To: &token, Data: append(append([]byte{}, sel...), common.LeftPadBytes(who.Bytes(), 32)...)}
}

// coalesceChain is a node with an EOA holding coins, the echo token, a reverting contract and the
// blacklist token.
func coalesceChain(t testing.TB) (*devchain.Chain, common.Address) {
	t.Helper()
	eoa := common.HexToAddress("0x00000000000000000000000000000000000E0A01")
	c, err := devchain.Start(devchain.Options{ChainID: chainID, BlockInterval: time.Hour, Alloc: types.GenesisAlloc{
		eoa:       {Balance: testenv.Ether(1)},
		tokenAddr: {Code: echoToken, Balance: big.NewInt(0)},
		revAddr:   {Code: reverter, Balance: big.NewInt(0)},
		usdtAddr:  {Code: blacklistCode(listedAddr), Balance: big.NewInt(0)},
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, eoa
}

// recipientCall is one of the node calls a recipient check makes, and the answer it must get.
type recipientCall struct {
	name    string
	code    *common.Address  // eth_getCode of this address, or
	msg     ethereum.CallMsg // this eth_call
	want    []byte
	reverts bool
}

func (rc recipientCall) on(ctx context.Context, n interface {
	CodeAt(context.Context, common.Address, *big.Int) ([]byte, error)
	CallContract(context.Context, ethereum.CallMsg, *big.Int) ([]byte, error)
}) ([]byte, error) {
	if rc.code != nil {
		return n.CodeAt(ctx, *rc.code, nil)
	}
	return n.CallContract(ctx, rc.msg, nil)
}

// check fails unless out, err is rc's answer.
func (rc recipientCall) check(out []byte, err error) error {
	if rc.reverts {
		if txerr.Classify(err) != txerr.ExecutionReverted || out != nil {
			return fmt.Errorf("%s: %x, %v (%s); want a revert", rc.name, out, err, txerr.Classify(err))
		}
		return nil
	}
	if err != nil || !bytes.Equal(out, rc.want) || out == nil {
		return fmt.Errorf("%s: %x, %v; want %x", rc.name, out, err, rc.want)
	}
	return nil
}

func recipientCalls(eoa common.Address) []recipientCall {
	word := func(n int64) []byte { return common.LeftPadBytes(big.NewInt(n).Bytes(), 32) }
	random := common.HexToAddress("0x5eed00000000000000000000000000000000c0de")
	return []recipientCall{
		{name: "code of an EOA", code: &eoa, want: []byte{}},
		{name: "code of an address never seen", code: &random, want: []byte{}},
		{name: "code of a contract", code: &usdtAddr, want: blacklistCode(listedAddr)},
		{name: "blacklisted recipient", msg: blacklistCall(usdtAddr, isBlackListed, listedAddr), want: word(1)},
		{name: "recipient not blacklisted", msg: blacklistCall(usdtAddr, isBlackListed, eoa), want: word(0)},
		{name: "token lacking the function", msg: blacklistCall(usdtAddr, isBlacklisted, eoa), reverts: true},
		{name: "contract that always reverts", msg: blacklistCall(revAddr, isBlackListed, eoa), reverts: true},
		{name: "call answering its argument", msg: blacklistCall(tokenAddr, isBlackListed, eoa), want: common.LeftPadBytes(eoa.Bytes(), 32)},
	}
}

// The coalescer (idle: each call alone) and a batch of all the calls answer exactly what the client's
// own calls answer, errors included: a revert stays a classified revert, with the same text.
func TestCoalescedAnswersEqualDirect(t *testing.T) {
	node, eoa := coalesceChain(t)
	c := dial(t, []string{node.URL}, 5*time.Second)
	q := chain.NewCoalescer(c)
	ctx := testCtx(t)
	calls := recipientCalls(eoa)

	elems := make([]rpc.BatchElem, len(calls))
	outs := make([]hexutil.Bytes, len(calls))
	for i, rc := range calls {
		elems[i] = rpc.BatchElem{Method: "eth_getCode", Args: []any{rc.code, "latest"}, Result: &outs[i]}
		if rc.code == nil {
			elems[i] = rpc.BatchElem{Method: "eth_call", Args: []any{map[string]any{"to": rc.msg.To, "input": hexutil.Bytes(rc.msg.Data)}, "latest"},
				Result: &outs[i]}
		}
	}
	if err := c.BatchCall(ctx, elems); err != nil {
		t.Fatalf("batch: %v", err)
	}
	for i, rc := range calls {
		t.Run(rc.name, func(t *testing.T) {
			direct, derr := rc.on(ctx, c)
			if err := rc.check(direct, derr); err != nil {
				t.Fatalf("client: %v", err)
			}
			coalesced, cerr := rc.on(ctx, q)
			if err := rc.check(coalesced, cerr); err != nil {
				t.Fatalf("coalescer: %v", err)
			}
			var batched []byte
			if elems[i].Error == nil {
				batched = outs[i]
			}
			if err := rc.check(batched, elems[i].Error); err != nil {
				t.Fatalf("batch: %v", err)
			}
			if derr != nil && (derr.Error() != elems[i].Error.Error() || txerr.CodeOf(derr) != txerr.CodeOf(elems[i].Error)) {
				t.Fatalf("batch error %q (%s), client's %q (%s)", elems[i].Error, txerr.CodeOf(elems[i].Error), derr, txerr.CodeOf(derr))
			}
		})
	}
	// A call at a given block is not batched, and answers like the client's.
	if code, err := q.CodeAt(ctx, usdtAddr, big.NewInt(0)); err != nil || !bytes.Equal(code, blacklistCode(listedAddr)) {
		t.Fatalf("code at block 0: %x, %v", code, err)
	}
}

// countingTransport counts the HTTP requests to the node and the JSON-RPC calls in them.
type countingTransport struct {
	base     http.RoundTripper
	requests atomic.Int64
	calls    atomic.Int64
	batches  atomic.Int64
}

func (ct *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, err
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	ct.requests.Add(1)
	if n := batchLen(body); n > 0 {
		ct.batches.Add(1)
		ct.calls.Add(int64(n))
	} else {
		ct.calls.Add(1)
	}
	return ct.base.RoundTrip(r)
}

// batchLen is the number of calls in a batch request body, 0 for a single call.
func batchLen(body []byte) int {
	var batch []json.RawMessage
	if json.Unmarshal(body, &batch) != nil {
		return 0
	}
	return len(batch)
}

// 200 callers at once each get their own answer, over far fewer HTTP requests than calls.
func TestCoalescerConcurrentCallers(t *testing.T) {
	node, eoa := coalesceChain(t)
	ct := &countingTransport{base: http.DefaultTransport.(*http.Transport).Clone()}
	reg := prometheus.NewRegistry()
	c := dial(t, []string{node.URL}, 5*time.Second, chain.WithHTTPClient(&http.Client{Transport: ct}),
		chain.WithMetrics(chain.NewMetrics(reg)))
	q := chain.NewCoalescer(c, chain.WithInFlight(2), chain.WithMaxBatch(64))
	ctx := testCtx(t)
	ct.requests.Store(0)
	ct.calls.Store(0)

	// Random destinations: each caller asks about an address of its own, whose answer only it can check
	// (the echo token answers with the address asked about).
	const callers = 200
	kinds := recipientCalls(eoa)
	start := make(chan struct{})
	errs := make(chan error, callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			rc := kinds[i%len(kinds)]
			if i%3 == 0 {
				who := common.BigToAddress(big.NewInt(int64(1_000_000 + i)))
				rc = recipientCall{name: fmt.Sprintf("echo %d", i), msg: blacklistCall(tokenAddr, isBlackListed, who),
					want: common.LeftPadBytes(who.Bytes(), 32)}
			}
			out, err := rc.on(ctx, q)
			errs <- rc.check(out, err)
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	reqs, calls := ct.requests.Load(), ct.calls.Load()
	t.Logf("%d callers: %d HTTP requests (%d batches) carried %d calls", callers, reqs, ct.batches.Load(), calls)
	if calls != callers {
		t.Fatalf("the node saw %d calls, want %d (each caller's once)", calls, callers)
	}
	if reqs > callers/4 || ct.batches.Load() == 0 {
		t.Fatalf("%d HTTP requests (%d batches) for %d calls; want at most %d", reqs, ct.batches.Load(), callers, callers/4)
	}
	if n := testutil.CollectAndCount(reg, "sluice_rpc_batch_calls"); n != 1 {
		t.Fatalf("batch size histogram: %d series, want 1", n)
	}
	// Idle again: nothing queued, and a call goes out alone at once.
	if n := q.Queued(); n != 0 {
		t.Fatalf("%d calls still queued", n)
	}
	before := ct.batches.Load()
	if code, err := q.CodeAt(ctx, usdtAddr, nil); err != nil || len(code) == 0 {
		t.Fatalf("idle call: %x, %v", code, err)
	}
	if ct.batches.Load() != before {
		t.Fatal("an idle call waited for a batch")
	}
}

// gate holds the node's HTTP requests until released one by one (or all, while open).
type gate struct {
	base     http.RoundTripper
	open     atomic.Bool
	release  chan struct{}
	arrived  chan []byte // each held request's body
	canceled atomic.Int64
}

func newGate() *gate {
	g := &gate{base: http.DefaultTransport.(*http.Transport).Clone(), release: make(chan struct{}), arrived: make(chan []byte, 100)}
	g.open.Store(true)
	return g
}

func (g *gate) RoundTrip(r *http.Request) (*http.Response, error) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, err
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	if !g.open.Load() {
		g.arrived <- body
		select {
		case <-g.release:
		case <-r.Context().Done():
			g.canceled.Add(1)
			return nil, r.Context().Err()
		}
	}
	return g.base.RoundTrip(r)
}

func (g *gate) waitArrival(t *testing.T) []byte {
	t.Helper()
	select {
	case b := <-g.arrived:
		return b
	case <-time.After(5 * time.Second):
		t.Fatal("no request reached the node")
		return nil
	}
}

func waitQueued(t *testing.T, q *chain.Coalescer, n int) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); q.Queued() != n; {
		if time.Now().After(deadline) {
			t.Fatalf("%d calls queued, want %d", q.Queued(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

type answer struct {
	out []byte
	err error
}

func codeAt(ctx context.Context, q *chain.Coalescer, addr common.Address) chan answer {
	ch := make(chan answer, 1)
	go func() {
		out, err := q.CodeAt(ctx, addr, nil)
		ch <- answer{out, err}
	}()
	return ch
}

func await(t *testing.T, ch chan answer, within time.Duration) answer {
	t.Helper()
	select {
	case a := <-ch:
		return a
	case <-time.After(within):
		t.Fatalf("no answer within %v", within)
		return answer{}
	}
}

// A caller whose ctx ends while queued returns at once with its ctx's error; the others still get
// their answers, and a batch whose callers have all left is canceled rather than run to its timeout.
func TestCoalescerCallerLeavesQueue(t *testing.T) {
	node, eoa := coalesceChain(t)
	g := newGate()
	c := dial(t, []string{node.URL}, 20*time.Second, chain.WithHTTPClient(&http.Client{Transport: g}))
	q := chain.NewCoalescer(c, chain.WithInFlight(1), chain.WithBatchTimeout(time.Minute))
	ctx := testCtx(t)
	g.open.Store(false)

	a := codeAt(ctx, q, usdtAddr) // goes out alone, held at the gate
	if n := batchLen(g.waitArrival(t)); n != 0 {
		t.Fatalf("the first call went out in a batch of %d", n)
	}
	bctx, cancelB := context.WithCancel(ctx)
	b := codeAt(bctx, q, eoa)
	waitQueued(t, q, 1)
	c2 := codeAt(ctx, q, usdtAddr)
	waitQueued(t, q, 2)

	cancelB()
	got := await(t, b, time.Second)
	if !errors.Is(got.err, context.Canceled) || got.out != nil {
		t.Fatalf("canceled caller: %x, %v; want context.Canceled", got.out, got.err)
	}
	g.release <- struct{}{} // the first call answers; the queued one goes out as a batch, without B
	if got := await(t, a, 5*time.Second); got.err != nil || !bytes.Equal(got.out, blacklistCode(listedAddr)) {
		t.Fatalf("first caller: %x, %v", got.out, got.err)
	}
	if n := batchLen(g.waitArrival(t)); n != 1 {
		t.Fatalf("batch of %d calls, want 1 (the canceled caller's is dropped)", n)
	}
	g.release <- struct{}{}
	if got := await(t, c2, 5*time.Second); got.err != nil || !bytes.Equal(got.out, blacklistCode(listedAddr)) {
		t.Fatalf("queued caller: %x, %v", got.out, got.err)
	}

	// Every caller of a batch leaves: the batch is canceled at once, not after its minute.
	d := codeAt(ctx, q, usdtAddr)
	g.waitArrival(t)
	ectx, cancelE := context.WithCancel(ctx)
	e := codeAt(ectx, q, eoa)
	waitQueued(t, q, 1)
	g.release <- struct{}{}
	if got := await(t, d, 5*time.Second); got.err != nil {
		t.Fatal(got.err)
	}
	g.waitArrival(t) // E's batch, held
	cancelE()
	if got := await(t, e, time.Second); !errors.Is(got.err, context.Canceled) {
		t.Fatalf("canceled caller in a batch: %v", got.err)
	}
	for deadline := time.Now().Add(2 * time.Second); g.canceled.Load() != 1; {
		if time.Now().After(deadline) {
			t.Fatal("the batch nobody waits for was not canceled")
		}
		time.Sleep(time.Millisecond)
	}
	// The slot is free again: a call goes out alone.
	g.open.Store(true)
	if got := await(t, codeAt(ctx, q, eoa), 5*time.Second); got.err != nil || len(got.out) != 0 {
		t.Fatalf("after: %x, %v", got.out, got.err)
	}
}

// batchEndpoint is an endpoint on the right chain that forwards to a real node, answering each batch
// element that asks about flaky (anywhere in its params) with a scripted error instead, or leaving its
// response out when code is 0.
type batchEndpoint struct {
	srv     *httptest.Server
	node    string
	flaky   string
	code    int
	msg     string
	batches atomic.Int64
}

func newBatchEndpoint(t *testing.T, node string, flaky common.Address, code int, msg string) *batchEndpoint {
	t.Helper()
	be := &batchEndpoint{node: node, flaky: flaky.Hex(), code: code, msg: msg}
	be.srv = httptest.NewServer(http.HandlerFunc(be.serve))
	t.Cleanup(be.srv.Close)
	return be
}

func (be *batchEndpoint) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	resp, err := http.Post(be.node, "application/json", bytes.NewReader(body))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(resp.Body)
	var reqs []struct {
		ID     json.RawMessage `json:"id"`
		Params json.RawMessage `json:"params"`
	}
	var answers []map[string]any
	if json.Unmarshal(body, &reqs) != nil || json.Unmarshal(answer, &answers) != nil {
		_, _ = w.Write(answer) // a single call: as the node answered
		return
	}
	be.batches.Add(1)
	var out []map[string]any
	for i, a := range answers {
		if !bytes.Contains(bytes.ToLower(reqs[i].Params), bytes.ToLower([]byte(be.flaky))) {
			out = append(out, a)
			continue
		}
		if be.code != 0 {
			out = append(out, map[string]any{"jsonrpc": "2.0", "id": a["id"], "error": map[string]any{"code": be.code, "message": be.msg}})
		}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}

// An element the endpoint failed (a transient answer, a rate limit, a missing response) is retried
// alone on the next endpoint, like a single call; one the node answered (a revert) is not; the other
// elements keep the first endpoint's answers.
func TestBatchElementFailover(t *testing.T) {
	node, eoa := coalesceChain(t)
	flaky := common.HexToAddress("0x00000000000000000000000000000000000F1A4e")
	tests := []struct {
		name     string
		code     int
		msg      string
		failover bool
		want     txerr.Type // of the flaky element; "" for an answer
	}{
		{"transient answer", -32000, "header not found", true, ""},
		{"rate limit", -32005, "request rate limited", true, ""},
		{"missing response", 0, "", true, ""},
		{"revert", 3, "execution reverted", false, txerr.ExecutionReverted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			first, second := newBatchEndpoint(t, node.URL, flaky, tt.code, tt.msg), newBatchEndpoint(t, node.URL, common.Address{}, 0, "")
			c := dial(t, []string{first.srv.URL, second.srv.URL}, 5*time.Second, chain.WithRounds(1))
			var outs [3]hexutil.Bytes
			elems := []rpc.BatchElem{
				{Method: "eth_getCode", Args: []any{usdtAddr, "latest"}, Result: &outs[0]},
				{Method: "eth_getCode", Args: []any{flaky, "latest"}, Result: &outs[1]},
				{Method: "eth_getCode", Args: []any{eoa, "latest"}, Result: &outs[2]},
			}
			if err := c.BatchCall(testCtx(t), elems); err != nil {
				t.Fatalf("batch: %v", err)
			}
			if elems[0].Error != nil || !bytes.Equal(outs[0], blacklistCode(listedAddr)) || elems[2].Error != nil || outs[2] == nil || len(outs[2]) != 0 {
				t.Fatalf("the good elements: %x %v, %x %v", outs[0], elems[0].Error, outs[2], elems[2].Error)
			}
			if tt.want == "" && (elems[1].Error != nil || outs[1] == nil || len(outs[1]) != 0) {
				t.Fatalf("flaky element: %x, %v; want the second endpoint's answer", outs[1], elems[1].Error)
			}
			if tt.want != "" && txerr.Classify(elems[1].Error) != tt.want {
				t.Fatalf("flaky element: %v (%s), want %s", elems[1].Error, txerr.Classify(elems[1].Error), tt.want)
			}
			if got := second.batches.Load(); (got == 1) != tt.failover || got > 1 {
				t.Fatalf("second endpoint got %d batches, want failover %v", got, tt.failover)
			}
		})
	}
}

// A dead endpoint: batched calls fail over to the next one; with no endpoint left they fail with the
// client's own error for the call (txerr class and code), each caller its own.
func TestCoalescerFailover(t *testing.T) {
	node, eoa := coalesceChain(t)
	ctx := testCtx(t)
	run := func(q *chain.Coalescer) []error {
		const callers = 40
		errs := make([]error, callers)
		var wg sync.WaitGroup
		for i := range callers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rc := recipientCalls(eoa)[i%3] // the eth_getCode ones
				out, err := rc.on(ctx, q)
				if err == nil {
					err = rc.check(out, err)
				}
				errs[i] = err
			}()
		}
		wg.Wait()
		return errs
	}

	p := newProxy(t, node.URL)
	c := dial(t, []string{p.srv.URL, node.URL}, 2*time.Second, chain.WithRounds(1))
	p.mode.Store(fail503)
	p.reset()
	for i, err := range run(chain.NewCoalescer(c, chain.WithInFlight(1))) {
		if err != nil {
			t.Fatalf("caller %d behind a failing first endpoint: %v", i, err)
		}
	}
	if p.hits("") == 0 {
		t.Fatal("the failing endpoint was never tried")
	}

	down := dial(t, []string{deadURL(t), deadURL(t)}, time.Second, chain.WithRounds(1))
	_, want := down.CodeAt(ctx, eoa, nil)
	if want == nil {
		t.Fatal("a client with no live endpoint answered")
	}
	for i, err := range run(chain.NewCoalescer(down, chain.WithInFlight(1))) {
		if txerr.Classify(err) != txerr.Classify(want) || txerr.CodeOf(err) != txerr.CodeOf(want) {
			t.Fatalf("caller %d: %v (%s %s), want the client's %v (%s %s)", i, err, txerr.Classify(err), txerr.CodeOf(err),
				want, txerr.Classify(want), txerr.CodeOf(want))
		}
	}
}

// A full batch does not wait for a free slot: a slow node bounds the calls' latency, not their rate.
func TestCoalescerFullBatchGoesAtOnce(t *testing.T) {
	node, eoa := coalesceChain(t)
	g := newGate()
	c := dial(t, []string{node.URL}, 20*time.Second, chain.WithHTTPClient(&http.Client{Transport: g}))
	q := chain.NewCoalescer(c, chain.WithInFlight(1), chain.WithMaxBatch(4))
	ctx := testCtx(t)
	g.open.Store(false)

	first := codeAt(ctx, q, usdtAddr)
	g.waitArrival(t)
	var queued []chan answer
	for i := range 3 {
		queued = append(queued, codeAt(ctx, q, eoa))
		waitQueued(t, q, i+1)
	}
	select {
	case body := <-g.arrived:
		t.Fatalf("a batch of %d went out before it was full", batchLen(body))
	case <-time.After(100 * time.Millisecond):
	}
	queued = append(queued, codeAt(ctx, q, eoa))
	if n := batchLen(g.waitArrival(t)); n != 4 {
		t.Fatalf("batch of %d, want the full 4 while the first call is still out", n)
	}
	g.release <- struct{}{}
	g.release <- struct{}{}
	if got := await(t, first, 5*time.Second); got.err != nil || !bytes.Equal(got.out, blacklistCode(listedAddr)) {
		t.Fatalf("first: %x, %v", got.out, got.err)
	}
	for i, ch := range queued {
		if got := await(t, ch, 5*time.Second); got.err != nil || got.out == nil || len(got.out) != 0 {
			t.Fatalf("queued %d: %x, %v", i, got.out, got.err)
		}
	}
	// Both requests are back and their slots free: the next call goes out alone.
	last := codeAt(ctx, q, eoa)
	if n := batchLen(g.waitArrival(t)); n != 0 {
		t.Fatalf("after: a batch of %d, want a call alone", n)
	}
	g.release <- struct{}{}
	if got := await(t, last, 5*time.Second); got.err != nil {
		t.Fatal(got.err)
	}
}

// A provider that refuses batches (or caps them below ours) but answers single calls: every caller still
// gets its own answer, and calls go alone after the first refusal instead of failing batch after batch.
func TestCoalescerBatchRefused(t *testing.T) {
	node, eoa := coalesceChain(t)
	var batches, singles atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if bytes.HasPrefix(bytes.TrimSpace(body), []byte("[")) {
			batches.Add(1)
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"batch requests are not supported"}}`))
			return
		}
		singles.Add(1)
		resp, err := http.Post(node.URL, "application/json", bytes.NewReader(body))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.Copy(w, resp.Body)
	}))
	t.Cleanup(srv.Close)
	c := dial(t, []string{srv.URL}, 5*time.Second, chain.WithRounds(1))
	q := chain.NewCoalescer(c, chain.WithInFlight(1))
	ctx := testCtx(t)
	for round := range 3 {
		const callers = 60
		errs := make(chan error, callers)
		var wg sync.WaitGroup
		for i := range callers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rc := recipientCalls(eoa)[i%len(recipientCalls(eoa))]
				out, err := rc.on(ctx, q)
				errs <- rc.check(out, err)
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		}
	}
	t.Logf("180 calls: %d refused batches, %d single requests", batches.Load(), singles.Load())
	if batches.Load() == 0 {
		t.Fatal("no batch was tried: the test proves nothing")
	}
	if batches.Load() > 2 {
		t.Fatalf("%d batches refused: calls kept being batched after the endpoint refused one", batches.Load())
	}
}
