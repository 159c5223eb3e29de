package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
)

// Fault kinds the proxy injects.
const (
	// FaultDrop closes the connection without forwarding the request or answering.
	FaultDrop = "drop"
	// FaultDelay holds the request for a random delay, then forwards it normally.
	FaultDelay = "delay"
	// FaultHTTP503 answers 503 Service Unavailable without forwarding.
	FaultHTTP503 = "http_503"
	// FaultRPCError answers a JSON-RPC error (a provider's rate limit or timeout) without forwarding.
	FaultRPCError = "rpc_error"
	// FaultSendAcceptedDropped forwards an eth_sendRawTransaction, lets the node accept it, and then
	// closes the connection instead of answering: the caller sees a failure for a transaction the node has.
	FaultSendAcceptedDropped = "send_accepted_response_dropped"
	// FaultSendSilentlyDropped answers an eth_sendRawTransaction with the transaction's hash, as a node
	// that accepted it would, without forwarding it: the node never hears of it (RecoveryFaults.DroppedSends).
	FaultSendSilentlyDropped = "send_silently_dropped"
)

// FaultKinds lists every kind, in report order.
var FaultKinds = []string{FaultDrop, FaultDelay, FaultHTTP503, FaultRPCError, FaultSendAcceptedDropped, FaultSendSilentlyDropped}

// ProxyOptions configure a FaultProxy.
type ProxyOptions struct {
	// Target is the node's JSON-RPC URL.
	Target string
	// Rate is the share of HTTP requests (0..1) that get a fault.
	Rate float64
	// SendRate is the share of requests carrying eth_sendRawTransaction that get a fault; negative
	// means Rate. Half of these faults are FaultSendAcceptedDropped, the rest spread over the others.
	SendRate float64
	// DelayMin and DelayMax bound FaultDelay (default 0.5 s and 3 s).
	DelayMin, DelayMax time.Duration
	// Seed seeds the fault decisions. A request's fault is drawn from the seed, the request itself (its
	// methods and parameters, not its id) and how many identical requests came before it, never from the
	// order in which different requests arrive: the same transaction's send gets the same fault in
	// every run with the seed, however the services' other calls interleave with it.
	Seed uint64
	// SilentDrops is how many single eth_sendRawTransaction requests, at most, are answered with the
	// transaction's hash and never forwarded; SilentDropRate is the share of the sends the other faults
	// left alone that are drawn for it, until the budget is spent. Drawn from a stream of their own, so
	// that turning them on does not move any other fault.
	SilentDrops    int
	SilentDropRate float64
	// Client forwards requests (default: a client with a 30 s timeout).
	Client *http.Client
}

// rpcErrors are the JSON-RPC errors FaultRPCError answers with: what hosted providers send when they
// are overloaded. Both are transient by any reading (rate limit, provider-side timeout).
var rpcErrors = []struct {
	code int
	msg  string
}{
	{-32005, "limit exceeded"},
	{-32603, "request timed out"},
}

// FaultProxy is an HTTP JSON-RPC proxy that injects faults. A fault applies to a whole HTTP request,
// so a JSON-RPC batch fails or succeeds as one.
type FaultProxy struct {
	opts ProxyOptions
	srv  *http.Server
	ln   net.Listener
	URL  string

	mu       sync.Mutex
	seen     map[uint64]uint64 // requests seen, by requestKey
	requests int
	calls    map[string]int // JSON-RPC calls forwarded or faulted, by method
	faults   map[string]int
	byMethod map[string]map[string]int // kind → method → count
	silent   int                       // sends answered without forwarding so far
}

// NewFaultProxy makes a proxy; Start it to listen.
func NewFaultProxy(o ProxyOptions) *FaultProxy {
	if o.SendRate < 0 {
		o.SendRate = o.Rate
	}
	if o.DelayMin <= 0 {
		o.DelayMin = 500 * time.Millisecond
	}
	if o.DelayMax < o.DelayMin {
		o.DelayMax = max(o.DelayMin, 3*time.Second)
	}
	if o.Client == nil {
		o.Client = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	}
	return &FaultProxy{
		opts:     o,
		seen:     map[uint64]uint64{},
		calls:    map[string]int{},
		faults:   map[string]int{},
		byMethod: map[string]map[string]int{},
	}
}

// Start listens on addr (127.0.0.1:0 for a free port) and serves in the background.
func (p *FaultProxy) Start(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("fault proxy: listen %s: %w", addr, err)
	}
	p.ln = ln
	p.URL = "http://" + ln.Addr().String()
	p.srv = &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = p.srv.Serve(ln) }()
	return nil
}

// Close stops the proxy.
func (p *FaultProxy) Close() error {
	if p.srv == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := p.srv.Shutdown(ctx)
	if err != nil {
		err = p.srv.Close()
	}
	return err
}

// Counts returns the faults injected so far, by kind.
func (p *FaultProxy) Counts() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]int, len(p.faults))
	for k, v := range p.faults {
		out[k] = v
	}
	return out
}

// Total is the number of faults injected so far.
func (p *FaultProxy) Total() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, v := range p.faults {
		n += v
	}
	return n
}

// Requests is the number of HTTP requests seen so far.
func (p *FaultProxy) Requests() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.requests
}

// FaultsByMethod reports, for one kind, how many faults hit each JSON-RPC method ("batch" for batches).
func (p *FaultProxy) FaultsByMethod(kind string) map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[string]int{}
	for m, n := range p.byMethod[kind] {
		out[m] = n
	}
	return out
}

// rpcReq is the part of a JSON-RPC request the proxy reads.
type rpcReq struct {
	ID     json.RawMessage `json:"id"`
	Method string          `json:"method"`
	Params json.RawMessage `json:"params"`
}

// requestKey identifies what a request asks, whoever asks it and under whatever id.
func requestKey(reqs []rpcReq) uint64 {
	h := fnv.New64a()
	for _, r := range reqs {
		h.Write([]byte(r.Method))
		h.Write([]byte{0})
		h.Write(bytes.TrimSpace(r.Params))
		h.Write([]byte{0})
	}
	return h.Sum64()
}

// fault is what the proxy does to one request.
type fault struct {
	kind   string // empty: forward it untouched
	delay  time.Duration
	rpcErr int // index into rpcErrors
}

// parseRPC reads a single request or a batch. ok is false for a body that is neither.
func parseRPC(body []byte) (reqs []rpcReq, batch bool, ok bool) {
	b := bytes.TrimSpace(body)
	if len(b) > 0 && b[0] == '[' {
		if err := json.Unmarshal(b, &reqs); err != nil {
			return nil, true, false
		}
		return reqs, true, true
	}
	var r rpcReq
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, false, false
	}
	return []rpcReq{r}, false, true
}

// decide picks the fault for a request from its own random stream: the seed, what it asks and how
// many identical requests came before it.
func (p *FaultProxy) decide(reqs []rpcReq, batch bool) fault {
	sends := false
	label := "batch"
	if !batch && len(reqs) == 1 {
		label = reqs[0].Method
	}
	key := requestKey(reqs)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.requests++
	for _, r := range reqs {
		p.calls[r.Method]++
		sends = sends || r.Method == "eth_sendRawTransaction"
	}
	rng := rand.New(rand.NewPCG(p.opts.Seed^key, p.seen[key]))
	silentRng := rand.New(rand.NewPCG(p.opts.Seed^key^streamSilentDrops, p.seen[key]))
	p.seen[key]++
	rate := p.opts.Rate
	if sends {
		rate = p.opts.SendRate
	}
	if rate <= 0 || rng.Float64() >= rate {
		if sends && !batch && p.silent < p.opts.SilentDrops && silentRng.Float64() < p.opts.SilentDropRate {
			p.silent++
			p.count(FaultSendSilentlyDropped, label)
			return fault{kind: FaultSendSilentlyDropped}
		}
		return fault{}
	}
	var f fault
	others := []string{FaultDrop, FaultDelay, FaultHTTP503, FaultRPCError}
	if sends && rng.IntN(2) == 0 {
		f.kind = FaultSendAcceptedDropped
	} else {
		f.kind = others[rng.IntN(len(others))]
	}
	switch f.kind {
	case FaultDelay:
		f.delay = p.opts.DelayMin
		if span := p.opts.DelayMax - p.opts.DelayMin; span > 0 {
			f.delay += time.Duration(rng.Int64N(int64(span)))
		}
	case FaultRPCError:
		f.rpcErr = rng.IntN(len(rpcErrors))
	}
	p.count(f.kind, label)
	return f
}

// count records one fault; p.mu is held.
func (p *FaultProxy) count(kind, label string) {
	p.faults[kind]++
	if p.byMethod[kind] == nil {
		p.byMethod[kind] = map[string]int{}
	}
	p.byMethod[kind][label]++
}

// streamSilentDrops keeps the silent-drop draws apart from the other faults' draws.
const streamSilentDrops = 0x73696c656e746472

// answerSent answers a send with the hash of the transaction it carries, as a node that took it would.
// A body it cannot read is forwarded after all (ok false).
func answerSent(w http.ResponseWriter, req rpcReq) (ok bool) {
	var params []string
	if json.Unmarshal(req.Params, &params) != nil || len(params) != 1 {
		return false
	}
	raw, err := hexutil.Decode(params[0])
	if err != nil {
		return false
	}
	var tx types.Transaction
	if tx.UnmarshalBinary(raw) != nil {
		return false
	}
	id := req.ID
	if len(id) == 0 {
		id = json.RawMessage("null")
	}
	b, _ := json.Marshal(struct {
		JSONRPC string          `json:"jsonrpc"`
		ID      json.RawMessage `json:"id"`
		Result  string          `json:"result"`
	}{"2.0", id, tx.Hash().Hex()})
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
	return true
}

// ServeHTTP forwards one HTTP request, or injects a fault.
func (p *FaultProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 32<<20))
	if err != nil {
		http.Error(w, "read request: "+err.Error(), http.StatusBadRequest)
		return
	}
	reqs, batch, ok := parseRPC(body)
	var f fault
	if ok && r.Method == http.MethodPost {
		f = p.decide(reqs, batch)
	}
	kind := f.kind
	switch kind {
	case FaultSendSilentlyDropped:
		if answerSent(w, reqs[0]) {
			return
		}
	case FaultDrop:
		hangUp(w)
		return
	case FaultHTTP503:
		http.Error(w, "service unavailable (injected)", http.StatusServiceUnavailable)
		return
	case FaultRPCError:
		e := rpcErrors[f.rpcErr]
		writeRPCErrors(w, reqs, batch, e.code, e.msg)
		return
	case FaultDelay:
		t := time.NewTimer(f.delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	status, header, respBody, err := p.forward(r, body)
	if err != nil {
		http.Error(w, "upstream: "+err.Error(), http.StatusBadGateway)
		return
	}
	if kind == FaultSendAcceptedDropped {
		// The node has answered (and accepted or refused the transaction); the caller never hears it.
		hangUp(w)
		return
	}
	for k, vs := range header {
		if strings.EqualFold(k, "Content-Length") || strings.EqualFold(k, "Connection") {
			continue
		}
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	w.WriteHeader(status)
	_, _ = w.Write(respBody)
}

func (p *FaultProxy) forward(r *http.Request, body []byte) (int, http.Header, []byte, error) {
	req, err := http.NewRequestWithContext(r.Context(), http.MethodPost, p.opts.Target, bytes.NewReader(body))
	if err != nil {
		return 0, nil, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := p.opts.Client.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, nil, err
	}
	return resp.StatusCode, resp.Header, b, nil
}

// hangUp closes the client's connection without an answer.
func hangUp(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler) // net/http closes the connection without answering
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0) // a reset, as a crashed or overloaded load balancer would do
	}
	_ = conn.Close()
}

func writeRPCErrors(w http.ResponseWriter, reqs []rpcReq, batch bool, code int, msg string) {
	type rpcErr struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	}
	type resp struct {
		JSONRPC string          `json:"jsonrpc"`
		ID      json.RawMessage `json:"id"`
		Error   rpcErr          `json:"error"`
	}
	out := make([]resp, len(reqs))
	for i, r := range reqs {
		id := r.ID
		if len(id) == 0 {
			id = json.RawMessage("null")
		}
		out[i] = resp{JSONRPC: "2.0", ID: id, Error: rpcErr{Code: code, Message: msg}}
	}
	w.Header().Set("Content-Type", "application/json")
	var b []byte
	if batch {
		b, _ = json.Marshal(out)
	} else if len(out) == 1 {
		b, _ = json.Marshal(out[0])
	}
	_, _ = w.Write(b)
}

// FormatCounts renders counts as "k1 n1, k2 n2" in the given key order, then any other keys sorted.
func FormatCounts(m map[string]int, order []string) string {
	seen := map[string]bool{}
	var parts []string
	for _, k := range order {
		seen[k] = true
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	var rest []string
	for k := range m {
		if !seen[k] {
			rest = append(rest, k)
		}
	}
	sort.Strings(rest)
	for _, k := range rest {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}
