package chaos

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// fakeNode answers every JSON-RPC call (single or batch) with result "0x1" and counts what it got.
type fakeNode struct {
	calls atomic.Int64
	sends atomic.Int64
}

func (n *fakeNode) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	reqs, batch, ok := parseRPC(body)
	if !ok {
		http.Error(w, "bad json", http.StatusBadRequest)
		return
	}
	type resp struct {
		JSONRPC string          `json:"jsonrpc"`
		ID      json.RawMessage `json:"id"`
		Result  string          `json:"result"`
	}
	out := make([]resp, len(reqs))
	for i, q := range reqs {
		n.calls.Add(1)
		if q.Method == "eth_sendRawTransaction" {
			n.sends.Add(1)
		}
		out[i] = resp{JSONRPC: "2.0", ID: q.ID, Result: "0x1"}
	}
	w.Header().Set("Content-Type", "application/json")
	if batch {
		_ = json.NewEncoder(w).Encode(out)
	} else {
		_ = json.NewEncoder(w).Encode(out[0])
	}
}

func startProxy(t *testing.T, node *fakeNode, o ProxyOptions) *FaultProxy {
	t.Helper()
	up := httptest.NewServer(node)
	t.Cleanup(up.Close)
	o.Target = up.URL
	p := NewFaultProxy(o)
	if err := p.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// call posts one JSON-RPC request and reports whether a well-formed successful answer came back.
func call(t *testing.T, c *http.Client, url, method string, id int) bool {
	t.Helper()
	body := fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":%q,"params":[]}`, id, method)
	resp, err := c.Post(url, "application/json", bytes.NewBufferString(body))
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	var out struct {
		Result *string         `json:"result"`
		Error  json.RawMessage `json:"error"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&out) != nil {
		return false
	}
	return out.Result != nil && len(out.Error) == 0
}

func TestProxyForwardsWithoutFaults(t *testing.T) {
	node := &fakeNode{}
	p := startProxy(t, node, ProxyOptions{Rate: 0, SendRate: -1})
	c := &http.Client{Timeout: 5 * time.Second}
	for i := 0; i < 50; i++ {
		if !call(t, c, p.URL, "eth_blockNumber", i) {
			t.Fatalf("call %d failed through a proxy without faults", i)
		}
	}
	// A batch goes through as one request.
	resp, err := c.Post(p.URL, "application/json", bytes.NewBufferString(
		`[{"jsonrpc":"2.0","id":1,"method":"eth_chainId"},{"jsonrpc":"2.0","id":2,"method":"eth_blockNumber"}]`))
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || len(out) != 2 {
		t.Fatalf("batch answer %v (%v)", out, err)
	}
	resp.Body.Close()
	if got := node.calls.Load(); got != 52 {
		t.Fatalf("node saw %d calls, want 52", got)
	}
	if p.Total() != 0 {
		t.Fatalf("faults injected at rate 0: %v", p.Counts())
	}
}

// faultSequence runs n sequential calls and returns which failed.
func faultSequence(t *testing.T, seed uint64, n int) ([]bool, *FaultProxy, *fakeNode) {
	node := &fakeNode{}
	p := startProxy(t, node, ProxyOptions{Rate: 0.3, SendRate: -1, Seed: seed,
		DelayMin: time.Millisecond, DelayMax: 5 * time.Millisecond})
	c := &http.Client{Timeout: 5 * time.Second}
	failed := make([]bool, n)
	for i := range failed {
		failed[i] = !call(t, c, p.URL, "eth_getTransactionReceipt", i)
	}
	return failed, p, node
}

func TestProxyFaultsAtRateWithSeed(t *testing.T) {
	const n = 400
	failed, p, node := faultSequence(t, 42, n)
	counts := p.Counts()
	total := p.Total()
	// 30% of 400 is 120; a seeded run is deterministic, but allow the binomial spread anyway.
	if total < 85 || total > 155 {
		t.Fatalf("%d faults in %d calls at rate 0.3: %v", total, n, counts)
	}
	for _, k := range []string{FaultDrop, FaultDelay, FaultHTTP503, FaultRPCError} {
		if counts[k] == 0 {
			t.Errorf("no %s fault in %d calls: %v", k, n, counts)
		}
	}
	if counts[FaultSendAcceptedDropped] != 0 {
		t.Errorf("send fault on calls that send nothing: %v", counts)
	}
	// Every call fails exactly when it got a fault other than a delay.
	nFailed := 0
	for _, f := range failed {
		if f {
			nFailed++
		}
	}
	if want := total - counts[FaultDelay]; nFailed != want {
		t.Errorf("%d calls failed, want %d (faults %v)", nFailed, want, counts)
	}
	// Only delayed calls reached the node among the faulted ones.
	if got, want := node.calls.Load(), int64(n-total+counts[FaultDelay]); got != want {
		t.Errorf("node saw %d calls, want %d", got, want)
	}
	// The same seed gives the same faults.
	again, _, _ := faultSequence(t, 42, n)
	for i := range failed {
		if failed[i] != again[i] {
			t.Fatalf("seed 42 gave a different fault at call %d", i)
		}
	}
}

func TestProxyDropsSendResponseAfterForwarding(t *testing.T) {
	node := &fakeNode{}
	p := startProxy(t, node, ProxyOptions{Rate: 0, SendRate: 1, Seed: 7,
		DelayMin: time.Millisecond, DelayMax: 2 * time.Millisecond})
	c := &http.Client{Timeout: 5 * time.Second}
	const n = 60
	for i := 0; i < n; i++ {
		call(t, c, p.URL, "eth_sendRawTransaction", i)
	}
	counts := p.Counts()
	dropped := counts[FaultSendAcceptedDropped]
	if dropped < n/4 {
		t.Fatalf("only %d of %d sends had their response dropped: %v", dropped, n, counts)
	}
	// The node received every send whose response was dropped (and the delayed ones), never the others.
	if got, want := node.sends.Load(), int64(dropped+counts[FaultDelay]); got != want {
		t.Fatalf("node received %d sends, want %d (%v)", got, want, counts)
	}
	// And the caller of such a send saw a failure: at SendRate 1 only delayed sends succeed.
	ok := 0
	for i := 0; i < 20; i++ {
		if call(t, c, p.URL, "eth_sendRawTransaction", n+i) {
			ok++
		}
	}
	if delayed := p.Counts()[FaultDelay] - counts[FaultDelay]; ok != delayed {
		t.Fatalf("%d of 20 sends succeeded, want only the %d delayed ones", ok, delayed)
	}
	// Calls that send nothing are not faulted at Rate 0.
	if !call(t, c, p.URL, "eth_blockNumber", 999) {
		t.Fatal("a read failed at Rate 0")
	}
}

// A request's fault depends on the seed, the request and how many identical ones came before, not on
// what other requests arrived in between: the services' calls interleave differently in every run.
func TestProxyFaultsDoNotDependOnInterleaving(t *testing.T) {
	const n = 200
	run := func(interleave bool) []bool {
		node := &fakeNode{}
		p := startProxy(t, node, ProxyOptions{Rate: 0.3, SendRate: -1, Seed: 9,
			DelayMin: time.Millisecond, DelayMax: 2 * time.Millisecond})
		c := &http.Client{Timeout: 5 * time.Second}
		failed := make([]bool, n)
		for i := range failed {
			if interleave && i%3 == 0 {
				call(t, c, p.URL, "eth_blockNumber", 10_000+i)
			}
			failed[i] = !call(t, c, p.URL, "eth_getTransactionReceipt", i)
		}
		return failed
	}
	alone, mixed := run(false), run(true)
	faulted := 0
	for i := range alone {
		if alone[i] != mixed[i] {
			t.Fatalf("receipt call %d: failed=%v alone, %v among other calls", i, alone[i], mixed[i])
		}
		if alone[i] {
			faulted++
		}
	}
	if faulted == 0 || faulted == n {
		t.Fatalf("%d of %d calls failed at rate 0.3", faulted, n)
	}
}
