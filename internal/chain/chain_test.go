package chain_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/sluice-custody/sluice/internal/chain"
	"github.com/sluice-custody/sluice/internal/devchain"
	"github.com/sluice-custody/sluice/internal/testenv"
	"github.com/sluice-custody/sluice/internal/txerr"
)

const chainID = 31337

// Proxy modes.
const (
	forward = iota
	fail503
	fail429
	hang
)

// proxy is a counting HTTP proxy on loopback in front of a real node, which can be made to fail.
type proxy struct {
	srv    *httptest.Server
	mode   atomic.Int32
	target atomic.Pointer[url.URL]
	mu     sync.Mutex
	calls  map[string]int // JSON-RPC method -> requests that reached the proxy
	done   chan struct{}
}

func newProxy(t *testing.T, target string) *proxy {
	t.Helper()
	p := &proxy{calls: map[string]int{}, done: make(chan struct{})}
	p.setTarget(t, target)
	p.srv = httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(func() { close(p.done); p.srv.Close() })
	return p
}

func (p *proxy) setTarget(t *testing.T, target string) {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p.target.Store(u)
}

func (p *proxy) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var req struct {
		Method string `json:"method"`
	}
	_ = json.Unmarshal(body, &req)
	p.mu.Lock()
	p.calls[req.Method]++
	p.mu.Unlock()
	switch p.mode.Load() {
	case fail503:
		http.Error(w, "upstream unavailable", http.StatusServiceUnavailable)
	case fail429:
		http.Error(w, "slow down", http.StatusTooManyRequests)
	case hang:
		select {
		case <-r.Context().Done():
		case <-p.done:
		}
	default:
		r.Body = io.NopCloser(bytes.NewReader(body))
		httputil.NewSingleHostReverseProxy(p.target.Load()).ServeHTTP(w, r)
	}
}

func (p *proxy) hits(method string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if method != "" {
		return p.calls[method]
	}
	n := 0
	for _, c := range p.calls {
		n += c
	}
	return n
}

func (p *proxy) reset() {
	p.mu.Lock()
	p.calls = map[string]int{}
	p.mu.Unlock()
}

// deadURL is a loopback port nobody listens on.
func deadURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func dial(t *testing.T, urls []string, timeout time.Duration, opts ...chain.Option) *chain.Client {
	t.Helper()
	c, err := chain.Dial(testCtx(t), "local", chainID, urls, timeout, opts...)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

func transfer(t *testing.T, from testenv.Account, nonce uint64, value int64) *types.Transaction {
	t.Helper()
	to := common.HexToAddress("0x000000000000000000000000000000000000bEEF")
	tx, err := types.SignNewTx(from.Key, types.LatestSignerForChainID(big.NewInt(chainID)), &types.DynamicFeeTx{
		ChainID: big.NewInt(chainID), Nonce: nonce, GasTipCap: big.NewInt(1e9), GasFeeCap: big.NewInt(100e9),
		Gas: 21000, To: &to, Value: big.NewInt(value),
	})
	if err != nil {
		t.Fatal(err)
	}
	return tx
}

// mine seals blocks until tx has a receipt.
func mine(t *testing.T, node *devchain.Chain, c *chain.Client, tx *types.Transaction) *types.Receipt {
	t.Helper()
	ctx := testCtx(t)
	for i := 0; i < 50; i++ {
		node.Commit()
		r, err := c.TransactionReceipt(ctx, tx.Hash())
		if err == nil {
			return r
		}
		if !errors.Is(err, ethereum.NotFound) {
			t.Fatalf("receipt: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("tx %s not mined", tx.Hash())
	return nil
}

func startChain(t *testing.T, id uint64, alloc types.GenesisAlloc) *devchain.Chain {
	t.Helper()
	c, err := devchain.Start(devchain.Options{ChainID: id, BlockInterval: time.Hour, Alloc: alloc})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// Contract code for the token tests, in genesis. echoToken answers balanceOf(holder) with the holder's
// address as a number; reverter reverts every call.
var (
	echoToken = common.FromHex("0x60043560005260206000f3") // CALLDATALOAD(4); MSTORE(0); RETURN(0, 32)
	reverter  = common.FromHex("0x60006000fd")             // REVERT(0, 0)
	tokenAddr = common.HexToAddress("0x00000000000000000000000000000000000070cE")
	revAddr   = common.HexToAddress("0x000000000000000000000000000000000000dEAD")
)

func TestBasicCalls(t *testing.T) {
	from := testenv.NewAccount(t)
	node := startChain(t, chainID, types.GenesisAlloc{
		from.Address: {Balance: testenv.Ether(1_000_000)},
		tokenAddr:    {Code: echoToken, Balance: big.NewInt(0)},
		revAddr:      {Code: reverter, Balance: big.NewInt(0)},
	})
	c := dial(t, []string{node.URL}, 5*time.Second)
	ctx := testCtx(t)

	if id, err := c.ChainID(ctx); err != nil || id.Uint64() != chainID || c.ID() != chainID || c.Name() != "local" {
		t.Fatalf("chain id %v, %v", id, err)
	}
	if err := c.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	bal, err := c.BalanceAt(ctx, from.Address)
	if err != nil || bal.Cmp(testenv.Ether(1_000_000)) != 0 {
		t.Fatalf("balance %v, %v", bal, err)
	}
	tok, err := c.TokenBalance(ctx, tokenAddr, from.Address)
	if err != nil || tok.Cmp(new(big.Int).SetBytes(from.Address.Bytes())) != 0 {
		t.Fatalf("token balance %v, %v", tok, err)
	}
	if _, err := c.TokenBalance(ctx, revAddr, from.Address); txerr.Classify(err) != txerr.ExecutionReverted {
		t.Fatalf("balanceOf on a reverting contract: %v (%s)", err, txerr.Classify(err))
	}
	if _, err := c.TokenBalance(ctx, common.HexToAddress("0x1234"), from.Address); txerr.CodeOf(err) != "bad_token_response" {
		t.Fatalf("balanceOf where there is no code: %v", err)
	}
	tip, err := c.SuggestGasTipCap(ctx)
	if err != nil || tip.Sign() < 0 {
		t.Fatalf("tip %v, %v", tip, err)
	}
	to := common.HexToAddress("0xbeef")
	gas, err := c.EstimateGas(ctx, ethereum.CallMsg{From: from.Address, To: &to, Value: big.NewInt(1)})
	if err != nil || gas != 21000 {
		t.Fatalf("estimate %d, %v", gas, err)
	}

	tx := transfer(t, from, 0, 1000)
	if err := c.SendTransaction(ctx, tx); err != nil {
		t.Fatal(err)
	}
	// Sending the very same signed tx again is harmless and reported as success.
	if err := c.SendTransaction(ctx, tx); err != nil {
		t.Fatalf("re-send of a known tx: %v", err)
	}
	if n, err := c.PendingNonceAt(ctx, from.Address); err != nil || n != 1 {
		t.Fatalf("pending nonce %d, %v", n, err)
	}
	if n, err := c.NonceAt(ctx, from.Address); err != nil || n != 0 {
		t.Fatalf("latest nonce before mining %d, %v", n, err)
	}
	if got, pending, err := c.TransactionByHash(ctx, tx.Hash()); err != nil || !pending || got.Hash() != tx.Hash() {
		t.Fatalf("tx by hash: pending=%v %v", pending, err)
	}
	r := mine(t, node, c, tx)
	if r.Status != types.ReceiptStatusSuccessful {
		t.Fatalf("receipt status %d", r.Status)
	}
	if _, pending, err := c.TransactionByHash(ctx, tx.Hash()); err != nil || pending {
		t.Fatalf("tx by hash after mining: pending=%v %v", pending, err)
	}
	if n, err := c.NonceAt(ctx, from.Address); err != nil || n != 1 {
		t.Fatalf("latest nonce %d, %v", n, err)
	}
	head, err := c.HeaderByNumber(ctx, nil)
	if err != nil || head.Number.Sign() <= 0 {
		t.Fatalf("head %v, %v", head, err)
	}
	bn, err := c.BlockNumber(ctx)
	if err != nil || bn != head.Number.Uint64() {
		t.Fatalf("block number %d, %v; head %d", bn, err, head.Number)
	}
	if _, err := c.HeaderByNumber(ctx, big.NewInt(1_000_000)); !errors.Is(err, ethereum.NotFound) {
		t.Fatalf("future header: %v, want NotFound", err)
	}
}

func TestFailoverFromDeadEndpoint(t *testing.T) {
	node := testenv.Chain(t, time.Hour)
	c := dial(t, []string{deadURL(t), node.URL}, 2*time.Second)
	ctx := testCtx(t)
	for i := 0; i < 3; i++ {
		if _, err := c.BlockNumber(ctx); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	st := c.Endpoints()
	if st[0].Verified || st[0].ConsecutiveFailures == 0 || !st[1].Verified || st[1].ConsecutiveFailures != 0 {
		t.Fatalf("endpoints %+v", st)
	}

	// With every endpoint dead the error is a retryable network error naming neither URL's secrets.
	c2 := dial(t, []string{deadURL(t), deadURL(t)}, 2*time.Second)
	_, err := c2.BlockNumber(ctx)
	if txerr.Classify(err) != txerr.Network || txerr.CodeOf(err) != "all_endpoints_failed" {
		t.Fatalf("all dead: %v (%s)", err, txerr.Classify(err))
	}
	if c2.Ready(ctx) == nil {
		t.Fatal("ready with every endpoint dead")
	}
}

// After enough endpoint failures the breaker opens and calls go straight to the next endpoint: the
// dead one sees no more requests (so no call waits for its timeout). After the open period one probe
// goes through, and the endpoint is back once it answers.
func TestBreakerOpensAndSkipsEndpoint(t *testing.T) {
	node := testenv.Chain(t, time.Hour)
	for _, tc := range []struct {
		name string
		mode int32
	}{{"hang", hang}, {"503", fail503}, {"429", fail429}} {
		t.Run(tc.name, func(t *testing.T) {
			p := newProxy(t, node.URL)
			const failures, openFor = 3, 400 * time.Millisecond
			c := dial(t, []string{p.srv.URL, node.URL}, 300*time.Millisecond, chain.WithBreaker(failures, openFor))
			ctx := testCtx(t)
			p.reset()
			p.mode.Store(tc.mode)
			for i := 0; i < failures; i++ {
				if _, err := c.BlockNumber(ctx); err != nil {
					t.Fatalf("call %d should fail over: %v", i, err)
				}
			}
			if got := p.hits(""); got != failures {
				t.Fatalf("proxy saw %d requests, want %d", got, failures)
			}
			if st := c.Endpoints()[0]; st.Breaker != "open" {
				t.Fatalf("breaker %+v, want open", st)
			}
			for i := 0; i < 10; i++ {
				if _, err := c.BlockNumber(ctx); err != nil {
					t.Fatal(err)
				}
			}
			if got := p.hits(""); got != failures {
				t.Fatalf("open breaker let %d requests through to the failing endpoint", got-failures)
			}

			// Recovery: the endpoint answers again; after openFor one probe reaches it and closes the breaker.
			p.mode.Store(forward)
			time.Sleep(openFor + 100*time.Millisecond)
			if _, err := c.BlockNumber(ctx); err != nil {
				t.Fatal(err)
			}
			if got := p.hits(""); got != failures+1 {
				t.Fatalf("probe: proxy saw %d requests, want %d", got, failures+1)
			}
			if st := c.Endpoints()[0]; st.Breaker != "closed" {
				t.Fatalf("breaker %+v, want closed after a good probe", st)
			}
		})
	}
}

// A node's answer is about the request: it is classified, returned at once, never retried on another
// endpoint, and never held against the endpoint.
func TestNodeAnswersDoNotFailOver(t *testing.T) {
	from := testenv.NewAccount(t)
	node := startChain(t, chainID, types.GenesisAlloc{
		from.Address: {Balance: testenv.Ether(1_000_000)},
		revAddr:      {Code: reverter, Balance: big.NewInt(0)},
	})
	a, b := newProxy(t, node.URL), newProxy(t, node.URL)
	c := dial(t, []string{a.srv.URL, b.srv.URL}, 5*time.Second, chain.WithBreaker(2, time.Minute))
	ctx := testCtx(t)
	b.reset()

	tx := transfer(t, from, 0, 1)
	if err := c.SendTransaction(ctx, tx); err != nil {
		t.Fatal(err)
	}
	mine(t, node, c, tx)
	for i := 0; i < 5; i++ { // more than the breaker's threshold
		err := c.SendTransaction(ctx, transfer(t, from, 0, int64(2+i)))
		if txerr.Classify(err) != txerr.NonceTooLow {
			t.Fatalf("reused nonce: %v (%s), want NONCE_TOO_LOW", err, txerr.Classify(err))
		}
		if !strings.Contains(err.Error(), "local eth_sendRawTransaction") {
			t.Fatalf("error %q does not name the chain and method", err)
		}
	}
	if got := a.hits("eth_sendRawTransaction"); got != 6 {
		t.Fatalf("first endpoint saw %d sends, want 6", got)
	}

	// Not found stays errors.Is(NotFound), unclassified.
	_, err := c.TransactionReceipt(ctx, common.HexToHash("0x1234"))
	if !errors.Is(err, ethereum.NotFound) {
		t.Fatalf("receipt of unknown tx: %v, want NotFound", err)
	}
	var te *txerr.Error
	if errors.As(err, &te) {
		t.Fatalf("NotFound was classified: %v", err)
	}
	if _, _, err := c.TransactionByHash(ctx, common.HexToHash("0x1234")); !errors.Is(err, ethereum.NotFound) {
		t.Fatalf("unknown tx by hash: %v", err)
	}

	// A revert is an answer too.
	for i := 0; i < 3; i++ {
		_, err = c.CallContract(ctx, ethereum.CallMsg{To: &revAddr}, nil)
		if txerr.Classify(err) != txerr.ExecutionReverted {
			t.Fatalf("call of reverting contract: %v (%s)", err, txerr.Classify(err))
		}
	}
	if _, err := c.EstimateGas(ctx, ethereum.CallMsg{From: from.Address, To: &revAddr}); txerr.Classify(err) != txerr.ExecutionReverted {
		t.Fatalf("estimate of reverting call: %v (%s)", err, txerr.Classify(err))
	}
	// Insufficient funds.
	poor := testenv.NewAccount(t)
	if err := c.SendTransaction(ctx, transfer(t, poor, 0, 1)); txerr.Classify(err) != txerr.InsufficientFunds {
		t.Fatalf("send without funds: %v (%s)", err, txerr.Classify(err))
	}

	if got := b.hits(""); got != 0 {
		t.Fatalf("answers failed over: second endpoint saw %d requests", got)
	}
	if st := c.Endpoints()[0]; st.Breaker != "closed" || st.ConsecutiveFailures != 0 {
		t.Fatalf("answers counted against the endpoint: %+v", st)
	}
}

func TestWrongChainEndpoint(t *testing.T) {
	good := testenv.Chain(t, time.Hour)
	other := startChain(t, 1337, nil)
	ctx := testCtx(t)

	_, err := chain.Dial(ctx, "local", chainID, []string{good.URL, other.URL}, 5*time.Second)
	if err == nil || !strings.Contains(err.Error(), "1337") || !strings.Contains(err.Error(), "#1") {
		t.Fatalf("dial with a wrong-chain endpoint: %v", err)
	}
	if _, err := chain.Dial(ctx, "local", 1, []string{good.URL}, 5*time.Second); err == nil {
		t.Fatal("dial of a chain-31337 node as chain 1 succeeded")
	}

	// An endpoint that was down at Dial and comes back on the wrong chain is checked before use and
	// taken out of service; calls go to the right chain.
	p := newProxy(t, other.URL)
	p.mode.Store(fail503)
	c := dial(t, []string{p.srv.URL, good.URL}, 5*time.Second)
	p.mode.Store(forward)
	p.reset()
	for i := 0; i < 3; i++ {
		id, err := c.ChainID(ctx)
		if err != nil || id.Uint64() != chainID {
			t.Fatalf("chain id %v, %v", id, err)
		}
	}
	if st := c.Endpoints()[0]; !st.WrongChain {
		t.Fatalf("endpoint %+v not marked wrong-chain", st)
	}
	if got := p.hits(""); got != 1 {
		t.Fatalf("wrong-chain endpoint saw %d requests, want only the chain id check", got)
	}
}

// Endpoint URLs carry API keys: no error or status shows more than scheme and host.
func TestEndpointSecretsNeverPrinted(t *testing.T) {
	u, _ := url.Parse(deadURL(t))
	secretURL := "http://user:hunter2@" + u.Host + "/v3/APIKEY123?key=QUERYSECRET"
	c := dial(t, []string{secretURL}, time.Second)
	_, err := c.BlockNumber(testCtx(t))
	if err == nil {
		t.Fatal("call to a dead endpoint succeeded")
	}
	st, _ := json.Marshal(c.Endpoints())
	for _, s := range []string{err.Error(), string(st)} {
		for _, secret := range []string{"hunter2", "APIKEY123", "QUERYSECRET"} {
			if strings.Contains(s, secret) {
				t.Fatalf("%q shows %s", s, secret)
			}
		}
	}
	if !strings.Contains(err.Error(), u.Host) {
		t.Fatalf("error %q does not name the endpoint's host", err)
	}
}

// The caller's cancellation is not the endpoint's fault, and it is retryable.
func TestCallerCancellation(t *testing.T) {
	node := testenv.Chain(t, time.Hour)
	p := newProxy(t, node.URL)
	c := dial(t, []string{p.srv.URL, node.URL}, 10*time.Second, chain.WithBreaker(1, time.Minute))
	p.mode.Store(hang)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := c.BlockNumber(ctx)
	if !errors.Is(err, context.DeadlineExceeded) || !txerr.IsRetryable(err) {
		t.Fatalf("cancelled call: %v", err)
	}
	if st := c.Endpoints()[0]; st.Breaker != "closed" {
		t.Fatalf("caller's deadline tripped the breaker: %+v", st)
	}
	ctx2, cancel2 := context.WithCancel(context.Background())
	cancel2()
	if _, err := c.BlockNumber(ctx2); !errors.Is(err, context.Canceled) || !txerr.IsRetryable(err) {
		t.Fatalf("cancelled call: %v", err)
	}
}

// flaky wraps a proxy so that its first n requests fail with 503.
func flaky(t *testing.T, p *proxy, n int) {
	var left atomic.Int32
	left.Store(int32(n))
	inner := p.srv.Config.Handler
	p.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if left.Add(-1) >= 0 {
			http.Error(w, "blip", http.StatusServiceUnavailable)
			return
		}
		inner.ServeHTTP(w, r)
	})
}

// With a single endpoint, a blip (two failed requests) does not fail the call: the endpoint gets more
// rounds. When it keeps failing, the call fails retryable after DefaultRounds attempts.
func TestSingleEndpointBlipIsRetried(t *testing.T) {
	node := testenv.Chain(t, time.Hour)
	p := newProxy(t, node.URL)
	c := dial(t, []string{p.srv.URL}, time.Second)
	ctx := testCtx(t)
	p.reset()
	flaky(t, p, 2)
	if _, err := c.BlockNumber(ctx); err != nil {
		t.Fatalf("call failed on a two-request blip: %v", err)
	}
	p.reset()
	p.mode.Store(fail503)
	_, err := c.BlockNumber(ctx)
	if err == nil || !txerr.IsRetryable(err) {
		t.Fatalf("err %v, want a retryable failure", err)
	}
	if got := p.hits("eth_blockNumber"); got != chain.DefaultRounds {
		t.Fatalf("endpoint tried %d times, want %d", got, chain.DefaultRounds)
	}
}

// The client keeps its connections for reuse while workers call it in parallel, and closes them all with
// Close: a pool left open holds sockets on the node (and a node shutting down waits for them).
func TestConnectionsAreReusedAndClosed(t *testing.T) {
	node := startChain(t, chainID, nil)
	target, err := url.Parse(node.URL)
	if err != nil {
		t.Fatal(err)
	}
	var opened, open atomic.Int32
	srv := httptest.NewUnstartedServer(httputil.NewSingleHostReverseProxy(target))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			opened.Add(1)
			open.Add(1)
		case http.StateClosed, http.StateHijacked:
			open.Add(-1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)

	c, err := chain.Dial(testCtx(t), "local", chainID, []string{srv.URL}, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	const workers, rounds = 8, 5
	for r := 0; r < rounds; r++ {
		var wg sync.WaitGroup
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := c.BlockNumber(testCtx(t)); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
	}
	// The shared default pool keeps 2 per host and would open about 6 new connections every round.
	if n := opened.Load(); n > workers+2 {
		t.Errorf("%d connections opened for %d rounds of %d parallel calls, want at most %d", n, rounds, workers, workers+2)
	}
	c.Close()
	deadline := time.Now().Add(5 * time.Second)
	for open.Load() > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := open.Load(); n != 0 {
		t.Fatalf("%d connections still open after Close", n)
	}
}
