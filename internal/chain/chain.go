// Package chain owns talking to nodes: one Client per chain over several JSON-RPC endpoints, each
// behind a circuit breaker, with failover.
//
// A call tries the endpoints in their configured order, skipping any whose breaker is open, and moves
// to the next only when the endpoint itself failed: a transport error, a timeout, an HTTP 5xx, 429 (or
// 401/403/404/408: an endpoint that is misconfigured or gone), a rate-limit answer, or a garbled
// response. Only those count against the endpoint's breaker. A node's answer — "nonce too low",
// "execution reverted", "insufficient funds", not found — is about the request, not the endpoint: it is
// returned at once, without failover and without touching the breaker.
//
// Errors are classified here with txerr (txerr.New(txerr.Classify(err), code, ...)), except
// ethereum.NotFound, which stays detectable with errors.Is and is not classified: check it first.
// Endpoint URLs often carry API keys, so errors and logs name an endpoint by scheme and host only.
//
// Every endpoint's chain id is checked against the configured one before the endpoint is used for
// anything: at Dial for the endpoints that answer (a wrong-chain endpoint fails Dial), and on first
// contact for those that did not (a wrong-chain endpoint is then taken out of service and logged).
//
// BatchCall sends JSON-RPC batches through the same path, and a Coalescer batches concurrent calls.
// Why: the API asks the node on every create (eth_getCode of the destination, a token's blacklist by
// eth_call), and one HTTP round trip per call was most of the recipient checks' CPU on a small
// machine (syscalls, HTTP framing and gzip, on both sides); the destinations all differ, so a cache
// cannot help, but many calls can share one request. A call goes out alone at once while no request
// is out (no timer, no added latency when idle); otherwise it waits and rides the next batch, sent
// when a request comes back or as soon as the batch is full. The invariant: a caller gets exactly its
// own answer, the one the Client's own call would have given (a revert is still a classified revert);
// a batch that fails as a whole on every endpoint is tried again call by call (some providers refuse
// batches or cap them below ours), and calls then go alone for BatchPause, so each caller ends with the
// answer or the classified error its own call gives; a caller whose ctx ends stops waiting at once.
package chain

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/ethereum/go-ethereum/rpc"
	"github.com/sony/gobreaker"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/sluice-custody/sluice/internal/txerr"
)

// Defaults for the breaker of each endpoint.
const (
	DefaultBreakerFailures = 5                // consecutive endpoint failures that open the breaker
	DefaultBreakerOpenFor  = 10 * time.Second // how long it stays open before one probe is let through
	DefaultTimeout         = 10 * time.Second // per call per endpoint, when Dial is given 0
)

// idleConnsPerHost is how many idle connections to one endpoint the client keeps: more than the signer,
// broadcaster and monitor workers of one process call at once.
const idleConnsPerHost = 64

// Client is one chain's JSON-RPC client. It is safe for concurrent use.
type Client struct {
	name    string
	chainID uint64
	timeout time.Duration
	rounds  int
	eps     []*endpoint
	log     *slog.Logger
	met     Metrics
	tracer  trace.Tracer // nil: calls are not traced
	// transport is the connection pool Dial made, closed with the client; nil when the caller passed
	// its own HTTP client.
	transport *http.Transport
}

type endpoint struct {
	index int
	label string // scheme://host: safe to print
	name  string // host[:port] (#index when two share it): the metrics label, never the URL
	url   string // may hold an API key: never printed
	// secrets are the parts of url that errors must not show.
	secrets []replacement
	rpc     *rpc.Client
	eth     *ethclient.Client
	cb      *gobreaker.CircuitBreaker

	verified   atomic.Bool
	wrongChain atomic.Bool
}

type settings struct {
	failures uint32
	openFor  time.Duration
	rounds   int
	http     *http.Client
	log      *slog.Logger
	met      Metrics
	tracer   trace.Tracer
}

// Option configures Dial.
type Option func(*settings)

// WithBreaker sets how many consecutive endpoint failures open an endpoint's breaker and how long it
// stays open before a probe request is let through.
func WithBreaker(failures uint32, openFor time.Duration) Option {
	return func(s *settings) {
		if failures > 0 {
			s.failures = failures
		}
		if openFor > 0 {
			s.openFor = openFor
		}
	}
}

// WithHTTPClient replaces the HTTP client (proxies, TLS settings).
func WithHTTPClient(c *http.Client) Option { return func(s *settings) { s.http = c } }

// DefaultRounds is how many times a call goes through the endpoints before it fails.
const DefaultRounds = 3

// WithRounds sets how many times a call tries every endpoint before it fails (DefaultRounds).
func WithRounds(n int) Option {
	return func(s *settings) {
		if n > 0 {
			s.rounds = n
		}
	}
}

// WithLogger sets where breaker state changes and endpoint problems are logged (slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(s *settings) { s.log = l } }

// WithMetrics reports every request, error, latency and breaker state to m (NewMetrics).
func WithMetrics(m Metrics) Option {
	return func(s *settings) {
		if m != nil {
			s.met = m
		}
	}
}

// WithTracer makes a span of every call made inside traced work (one span per call; each endpoint
// attempt, failovers included, is an event on it naming the endpoint).
func WithTracer(t trace.Tracer) Option { return func(s *settings) { s.tracer = t } }

// Dial makes a client for chain name (id chainID) over urls (http or https, tried in this order).
// timeout bounds every call to one endpoint. Endpoints that answer must be on chainID; endpoints that
// do not answer yet are checked on first contact.
func Dial(ctx context.Context, name string, chainID uint64, urls []string, timeout time.Duration, opts ...Option) (*Client, error) {
	if len(urls) == 0 {
		return nil, fmt.Errorf("chain %s: no RPC endpoints", name)
	}
	if chainID == 0 {
		return nil, fmt.Errorf("chain %s: chain id not set", name)
	}
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	s := settings{failures: DefaultBreakerFailures, openFor: DefaultBreakerOpenFor, rounds: DefaultRounds, log: slog.Default(),
		met: NopMetrics()}
	for _, o := range opts {
		o(&s)
	}
	c := &Client{name: name, chainID: chainID, timeout: timeout, rounds: s.rounds, log: s.log.With("chain", name),
		met: s.met, tracer: s.tracer}
	hosts := map[string]int{}
	for _, raw := range urls {
		if u, err := url.Parse(strings.TrimSpace(raw)); err == nil {
			hosts[u.Host]++
		}
	}
	if s.http == nil {
		// A pool of its own: the shared default keeps only 2 idle connections per host, so a worker pool
		// reconnects all the time, and a pool of our own can be closed with the client.
		c.transport = http.DefaultTransport.(*http.Transport).Clone()
		c.transport.MaxIdleConnsPerHost = idleConnsPerHost
		s.http = &http.Client{Transport: c.transport}
	}
	for i, raw := range urls {
		u, err := url.Parse(strings.TrimSpace(raw))
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			c.Close()
			return nil, fmt.Errorf("chain %s: endpoint #%d is not an http(s) URL", name, i)
		}
		ep := &endpoint{index: i, url: u.String(), label: fmt.Sprintf("#%d %s://%s", i, u.Scheme, u.Host), name: u.Host,
			secrets: secretsOf(u)}
		if hosts[u.Host] > 1 {
			ep.name = fmt.Sprintf("%s#%d", u.Host, i) // two endpoints of one provider, told apart by position
		}
		if ep.rpc, err = rpc.DialOptions(ctx, ep.url, rpc.WithHTTPClient(s.http)); err != nil {
			c.Close()
			return nil, fmt.Errorf("chain %s: endpoint %s: %w", name, ep.label, ep.scrub(err))
		}
		ep.eth = ethclient.NewClient(ep.rpc)
		failures, log, met, epName := s.failures, c.log, c.met, ep.name
		ep.cb = gobreaker.NewCircuitBreaker(gobreaker.Settings{
			Name:        ep.label,
			MaxRequests: 1,
			Timeout:     s.openFor,
			ReadyToTrip: func(n gobreaker.Counts) bool { return n.ConsecutiveFailures >= failures },
			OnStateChange: func(label string, from, to gobreaker.State) {
				log.Warn("rpc endpoint breaker", "endpoint", label, "from", from.String(), "to", to.String())
				met.Breaker(name, epName, breakerValue(to))
			},
		})
		c.met.Breaker(name, ep.name, breakerValue(gobreaker.StateClosed))
		c.eps = append(c.eps, ep)
	}

	// Check every endpoint's chain id at once; unreachable ones are checked on first contact.
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for _, ep := range c.eps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := c.verify(ctx, ep)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
			case ep.wrongChain.Load():
				errs = append(errs, err)
			default:
				c.log.Warn("rpc endpoint unreachable at start; its chain id is checked on first contact",
					"endpoint", ep.label, "err", err)
			}
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		c.Close()
		return nil, errors.Join(errs...)
	}
	return c, nil
}

// Close closes every endpoint's connection, and the connection pool when Dial made it.
func (c *Client) Close() {
	for _, ep := range c.eps {
		if ep.rpc != nil {
			ep.rpc.Close()
		}
	}
	if c.transport != nil {
		c.transport.CloseIdleConnections()
	}
}

// Name is the chain's configured name.
func (c *Client) Name() string { return c.name }

// ID is the configured chain id, which every endpoint in use has been checked against.
func (c *Client) ID() uint64 { return c.chainID }

// verify checks ep's chain id through ep's breaker; a mismatch takes ep out of service for good.
func (c *Client) verify(ctx context.Context, ep *endpoint) error {
	if ep.verified.Load() {
		return nil
	}
	var got *big.Int
	err := c.attempt(ctx, ep, "eth_chainId", func(ctx context.Context) (err error) {
		got, err = ep.eth.ChainID(ctx)
		return err
	})
	if err != nil {
		return fmt.Errorf("chain %s: endpoint %s: chain id: %w", c.name, ep.label, err)
	}
	if !got.IsUint64() || got.Uint64() != c.chainID {
		ep.wrongChain.Store(true)
		c.log.Error("rpc endpoint is on the wrong chain; not using it", "endpoint", ep.label, "chain_id", got, "want", c.chainID)
		return fmt.Errorf("chain %s: endpoint %s is on chain %s, want %d", c.name, ep.label, got, c.chainID)
	}
	ep.verified.Store(true)
	return nil
}

// errSkipped marks an endpoint passed over without a request (open breaker, wrong chain).
var errSkipped = errors.New("skipped")

// attempt runs one call on ep within the per-call timeout and through ep's breaker. Only endpoint
// faults count against the breaker; the caller's own cancellation counts as neither.
func (c *Client) attempt(ctx context.Context, ep *endpoint, method string, call func(context.Context) error) error {
	var callErr error
	_, berr := ep.cb.Execute(func() (any, error) {
		cctx, cancel := context.WithTimeout(ctx, c.timeout)
		defer cancel()
		start := time.Now()
		callErr = call(cctx)
		c.met.Request(c.name, ep.name, method, time.Since(start))
		outcome := "ok"
		if callErr != nil && !errors.Is(callErr, ethereum.NotFound) {
			outcome = string(txerr.Classify(callErr))
			c.met.Error(c.name, ep.name, outcome)
		}
		if span := trace.SpanFromContext(ctx); span.IsRecording() {
			span.AddEvent("rpc.attempt", trace.WithAttributes(attribute.String("endpoint", ep.name), attribute.String("outcome", outcome)))
		}
		if callErr != nil && ctx.Err() == nil && endpointFault(callErr) {
			return nil, callErr
		}
		return nil, nil
	})
	if errors.Is(berr, gobreaker.ErrOpenState) || errors.Is(berr, gobreaker.ErrTooManyRequests) {
		return fmt.Errorf("%w: circuit breaker is open", errSkipped)
	}
	if callErr != nil {
		return ep.scrub(callErr)
	}
	return nil
}

// do runs call on the first endpoint that can answer it, in a span of its own when it is part of a
// traced piece of work.
func (c *Client) do(ctx context.Context, method string, call func(ctx context.Context, eth *ethclient.Client) error) error {
	return c.doOn(ctx, method, func(ctx context.Context, ep *endpoint) error { return call(ctx, ep.eth) })
}

// doOn is do for calls that need the endpoint itself (its raw rpc client, its scrubber).
func (c *Client) doOn(ctx context.Context, method string, call func(ctx context.Context, ep *endpoint) error) (err error) {
	if c.tracer == nil || !trace.SpanContextFromContext(ctx).IsValid() {
		// Calls outside any traced work (gauges, polling) would each be a one-span trace: noise.
		return c.failover(ctx, method, call)
	}
	ctx, span := c.tracer.Start(ctx, "rpc "+method, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("rpc.system", "jsonrpc"), attribute.String("rpc.method", method),
			attribute.String("chain", c.name)))
	defer func() {
		// A node's "not found" is an answer (no receipt yet), not a failed call.
		if err != nil && !errors.Is(err, ethereum.NotFound) {
			span.RecordError(err)
			span.SetStatus(codes.Error, string(txerr.Classify(err)))
		}
		span.End()
	}()
	return c.failover(ctx, method, call)
}

// failover runs call on the first endpoint that can answer it. See the package doc for what fails over.
func (c *Client) failover(ctx context.Context, method string, call func(ctx context.Context, ep *endpoint) error) error {
	var failed []error
	allTimeouts := true
	// A faulty answer is most often a blip (a dropped connection, a 503 from a load balancer): every
	// endpoint gets a few rounds, with a short jittered pause between them, before the call fails. Only
	// endpoint faults are retried, never a node's answer, and every call here is idempotent (reads, or
	// sending the same signed bytes).
	for round := 0; round < c.rounds; round++ {
		if round > 0 {
			pause := time.Duration(50<<round)*time.Millisecond + time.Duration(rand.Int64N(int64(50*time.Millisecond)))
			select {
			case <-ctx.Done():
				return c.classify(method, ctx.Err())
			case <-time.After(pause):
			}
		}
		for _, ep := range c.eps {
			if err := ctx.Err(); err != nil {
				return c.classify(method, err)
			}
			if ep.wrongChain.Load() {
				failed = append(failed, fmt.Errorf("%s: wrong chain", ep.label))
				allTimeouts = false
				continue
			}
			if err := c.verify(ctx, ep); err != nil {
				if ctx.Err() != nil {
					return c.classify(method, ctx.Err())
				}
				failed = append(failed, err)
				allTimeouts = allTimeouts && errors.Is(err, context.DeadlineExceeded)
				continue
			}
			err := c.attempt(ctx, ep, method, func(ctx context.Context) error { return call(ctx, ep) })
			if err == nil {
				return nil
			}
			if ctx.Err() != nil {
				return c.classify(method, ctx.Err())
			}
			if !errors.Is(err, errSkipped) && !endpointFault(err) && !txerr.IsTransient(err) {
				return c.answer(method, err) // the node answered: not the endpoint's fault
			}
			failed = append(failed, fmt.Errorf("%s: %w", ep.label, err))
			allTimeouts = allTimeouts && errors.Is(err, context.DeadlineExceeded)
		}
	}
	t, code := txerr.Network, "all_endpoints_failed"
	if allTimeouts {
		t, code = txerr.Timeout, "all_endpoints_timed_out"
	}
	return txerr.New(t, code, fmt.Errorf("%s %s: all %d endpoints failed %d times: %w", c.name, method, len(c.eps), c.rounds, errors.Join(failed...)))
}

// answer classifies a node's answer.
func (c *Client) answer(method string, err error) error {
	wrapped := fmt.Errorf("%s %s: %w", c.name, method, err)
	if errors.Is(err, ethereum.NotFound) {
		return wrapped
	}
	t := txerr.Classify(err) // a transient answer (txerr.IsTransient) classifies retryable
	return txerr.New(t, answerCode(err, t), wrapped)
}

// classify wraps the caller's own context error. Cancellation (shutdown, say) is retryable: the work
// was interrupted, it did not fail.
func (c *Client) classify(method string, err error) error {
	t, code := txerr.Classify(err), "timeout"
	if errors.Is(err, context.Canceled) {
		t, code = txerr.Timeout, "canceled"
	}
	return txerr.New(t, code, fmt.Errorf("%s %s: %w", c.name, method, err))
}

// answerCode is a short machine-readable detail: the JSON-RPC error code or HTTP status when there is
// one, otherwise the class.
func answerCode(err error, t txerr.Type) string {
	var re rpc.Error
	if errors.As(err, &re) {
		return fmt.Sprintf("rpc%d", re.ErrorCode())
	}
	var he rpc.HTTPError
	if errors.As(err, &he) {
		return fmt.Sprintf("http%d", he.StatusCode)
	}
	return strings.ToLower(string(t))
}

// endpointFault reports whether err is the endpoint's failure rather than a node's answer.
func endpointFault(err error) bool {
	if errors.Is(err, ethereum.NotFound) {
		return false
	}
	// A batch answer without the response to one of its calls is a garbled response.
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, rpc.ErrMissingBatchResponse) {
		return true
	}
	var he rpc.HTTPError
	if errors.As(err, &he) {
		switch {
		case he.StatusCode >= 500, he.StatusCode == http.StatusTooManyRequests,
			he.StatusCode == http.StatusUnauthorized, he.StatusCode == http.StatusForbidden,
			he.StatusCode == http.StatusNotFound, he.StatusCode == http.StatusRequestTimeout:
			return true
		}
		return false
	}
	var re rpc.Error
	if errors.As(err, &re) {
		// A JSON-RPC answer is the endpoint's fault only when it is a rate limit (-32005, or in words).
		return txerr.IsRateLimited(err)
	}
	var (
		ne  net.Error
		ue  *url.Error
		se  *json.SyntaxError
		ute *json.UnmarshalTypeError
	)
	return errors.As(err, &ne) || errors.As(err, &ue) || errors.As(err, &se) || errors.As(err, &ute)
}

// scrub hides the endpoint's full URL (which may carry an API key in its user info, path or query) in
// err's text, keeping err's chain for errors.Is/As.
func (ep *endpoint) scrub(err error) error {
	if err == nil {
		return err
	}
	msg := err.Error()
	clean := msg
	for _, s := range ep.secrets {
		clean = strings.ReplaceAll(clean, s.find, s.repl)
	}
	if clean == msg {
		return err
	}
	return &scrubbed{err: err, msg: clean}
}

type replacement struct{ find, repl string }

// secretsOf lists what to replace in error texts, longest first: the URL as written and as net/url
// and net/http print it become scheme://host; what may be left of password, query and path becomes ***.
func secretsOf(u *url.URL) []replacement {
	base := u.Scheme + "://" + u.Host
	out := []replacement{{u.String(), base}, {u.Redacted(), base}}
	if p, ok := u.User.Password(); ok {
		// net/http's form in *url.Error.
		out = append(out, replacement{strings.Replace(u.String(), u.User.String()+"@", u.User.Username()+":***@", 1), base})
		if p != "" {
			out = append(out, replacement{p, "***"})
		}
	}
	if u.RawQuery != "" {
		out = append(out, replacement{u.RawQuery, "***"})
	}
	for _, s := range []string{u.EscapedPath(), u.Path} {
		if len(s) > 1 {
			out = append(out, replacement{s, "/***"})
		}
	}
	return out
}

type scrubbed struct {
	err error
	msg string
}

func (s *scrubbed) Error() string { return s.msg }
func (s *scrubbed) Unwrap() error { return s.err }

// EndpointStatus describes one endpoint for /readyz and ops.
type EndpointStatus struct {
	Endpoint            string `json:"endpoint"` // "#0 https://host": never the full URL
	Breaker             string `json:"breaker"`  // closed, open, half-open
	ConsecutiveFailures uint32 `json:"consecutive_failures"`
	Verified            bool   `json:"verified"`    // chain id checked
	WrongChain          bool   `json:"wrong_chain"` // out of service for good
}

// Endpoints reports every endpoint's state, in configured order.
func (c *Client) Endpoints() []EndpointStatus {
	out := make([]EndpointStatus, len(c.eps))
	for i, ep := range c.eps {
		out[i] = EndpointStatus{
			Endpoint: ep.label, Breaker: ep.cb.State().String(), ConsecutiveFailures: ep.cb.Counts().ConsecutiveFailures,
			Verified: ep.verified.Load(), WrongChain: ep.wrongChain.Load(),
		}
	}
	return out
}

// Ready reports whether at least one endpoint answers (for /readyz).
func (c *Client) Ready(ctx context.Context) error {
	_, err := c.BlockNumber(ctx)
	return err
}

// ChainID asks a node for the chain id (always the configured one: endpoints are checked).
func (c *Client) ChainID(ctx context.Context) (*big.Int, error) {
	var v *big.Int
	err := c.do(ctx, "eth_chainId", func(ctx context.Context, e *ethclient.Client) (err error) {
		v, err = e.ChainID(ctx)
		return err
	})
	return v, err
}

// BlockNumber returns the latest block number.
func (c *Client) BlockNumber(ctx context.Context) (uint64, error) {
	var v uint64
	err := c.do(ctx, "eth_blockNumber", func(ctx context.Context, e *ethclient.Client) (err error) {
		v, err = e.BlockNumber(ctx)
		return err
	})
	return v, err
}

// HeaderByNumber returns the header of block number (nil: latest); ethereum.NotFound if there is none.
func (c *Client) HeaderByNumber(ctx context.Context, number *big.Int) (*types.Header, error) {
	var v *types.Header
	err := c.do(ctx, "eth_getBlockByNumber", func(ctx context.Context, e *ethclient.Client) (err error) {
		v, err = e.HeaderByNumber(ctx, number)
		return err
	})
	return v, err
}

// NonceAt returns addr's nonce at the latest block: the number of its mined transactions.
func (c *Client) NonceAt(ctx context.Context, addr common.Address) (uint64, error) {
	var v uint64
	err := c.do(ctx, "eth_getTransactionCount", func(ctx context.Context, e *ethclient.Client) (err error) {
		v, err = e.NonceAt(ctx, addr, nil)
		return err
	})
	return v, err
}

// PendingNonceAt returns addr's nonce including the node's pending pool. One node's view: a lagging
// node reports too low, so never use it alone (the nonce allocator takes the max with the database).
func (c *Client) PendingNonceAt(ctx context.Context, addr common.Address) (uint64, error) {
	var v uint64
	err := c.do(ctx, "eth_getTransactionCount(pending)", func(ctx context.Context, e *ethclient.Client) (err error) {
		v, err = e.PendingNonceAt(ctx, addr)
		return err
	})
	return v, err
}

// BalanceAt returns addr's native balance at the latest block, in wei.
func (c *Client) BalanceAt(ctx context.Context, addr common.Address) (*big.Int, error) {
	var v *big.Int
	err := c.do(ctx, "eth_getBalance", func(ctx context.Context, e *ethclient.Client) (err error) {
		v, err = e.BalanceAt(ctx, addr, nil)
		return err
	})
	return v, err
}

// balanceOf is the ERC-20 balanceOf(address) selector.
var balanceOf = []byte{0x70, 0xa0, 0x82, 0x31}

// TokenBalance returns holder's balance of the ERC-20 token at the latest block, in base units.
func (c *Client) TokenBalance(ctx context.Context, token, holder common.Address) (*big.Int, error) {
	data := append(append([]byte{}, balanceOf...), common.LeftPadBytes(holder.Bytes(), 32)...)
	out, err := c.CallContract(ctx, ethereum.CallMsg{To: &token, Data: data}, nil)
	if err != nil {
		return nil, err
	}
	if len(out) < 32 {
		return nil, txerr.New(txerr.Unknown, "bad_token_response",
			fmt.Errorf("%s balanceOf: token %s answered %d bytes (no contract there, or not an ERC-20)", c.name, token.Hex(), len(out)))
	}
	return new(big.Int).SetBytes(out[:32]), nil
}

// SuggestGasTipCap returns a node's suggested priority fee per gas.
func (c *Client) SuggestGasTipCap(ctx context.Context) (*big.Int, error) {
	var v *big.Int
	err := c.do(ctx, "eth_maxPriorityFeePerGas", func(ctx context.Context, e *ethclient.Client) (err error) {
		v, err = e.SuggestGasTipCap(ctx)
		return err
	})
	return v, err
}

// EstimateGas estimates the gas msg needs against the pending state.
func (c *Client) EstimateGas(ctx context.Context, msg ethereum.CallMsg) (uint64, error) {
	var v uint64
	err := c.do(ctx, "eth_estimateGas", func(ctx context.Context, e *ethclient.Client) (err error) {
		v, err = e.EstimateGas(ctx, msg)
		return err
	})
	return v, err
}

// CallContract executes msg without a transaction at block (nil: latest).
func (c *Client) CallContract(ctx context.Context, msg ethereum.CallMsg, block *big.Int) ([]byte, error) {
	var v []byte
	err := c.do(ctx, "eth_call", func(ctx context.Context, e *ethclient.Client) (err error) {
		v, err = e.CallContract(ctx, msg, block)
		return err
	})
	return v, err
}

// CodeAt returns the code at addr at block (nil: latest); empty for an account without code.
func (c *Client) CodeAt(ctx context.Context, addr common.Address, block *big.Int) ([]byte, error) {
	var v []byte
	err := c.do(ctx, "eth_getCode", func(ctx context.Context, e *ethclient.Client) (err error) {
		v, err = e.CodeAt(ctx, addr, block)
		return err
	})
	return v, err
}

// SendTransaction submits a signed transaction. A node that already has it counts as success.
func (c *Client) SendTransaction(ctx context.Context, tx *types.Transaction) error {
	return c.do(ctx, "eth_sendRawTransaction", func(ctx context.Context, e *ethclient.Client) error {
		// Sending a signed transaction is idempotent (same bytes, same hash): a node that already has it
		// is success, also after a failover where the first endpoint took it but timed out answering.
		err := e.SendTransaction(ctx, tx)
		if err != nil && !endpointFault(err) && txerr.IsAlreadyKnown(err) {
			return nil
		}
		return err
	})
}

// TransactionReceipt returns the receipt of a mined transaction; ethereum.NotFound while it is not.
func (c *Client) TransactionReceipt(ctx context.Context, hash common.Hash) (*types.Receipt, error) {
	var v *types.Receipt
	err := c.do(ctx, "eth_getTransactionReceipt", func(ctx context.Context, e *ethclient.Client) (err error) {
		v, err = e.TransactionReceipt(ctx, hash)
		return err
	})
	return v, err
}

// TransactionByHash returns a transaction the node knows (mined or pending); ethereum.NotFound if not.
func (c *Client) TransactionByHash(ctx context.Context, hash common.Hash) (tx *types.Transaction, pending bool, err error) {
	err = c.do(ctx, "eth_getTransactionByHash", func(ctx context.Context, e *ethclient.Client) (err error) {
		tx, pending, err = e.TransactionByHash(ctx, hash)
		return err
	})
	return tx, pending, err
}

// NonceAtBlock returns addr's nonce at block number (nil: latest). Older blocks need a node that still
// holds their state (an archive node, or a recent block on a full node).
func (c *Client) NonceAtBlock(ctx context.Context, addr common.Address, number *big.Int) (uint64, error) {
	var v uint64
	err := c.do(ctx, "eth_getTransactionCount(block)", func(ctx context.Context, e *ethclient.Client) (err error) {
		v, err = e.NonceAt(ctx, addr, number)
		return err
	})
	return v, err
}

// BlockByNumber returns block number with its transactions (nil: latest); ethereum.NotFound if none.
func (c *Client) BlockByNumber(ctx context.Context, number *big.Int) (*types.Block, error) {
	var v *types.Block
	err := c.do(ctx, "eth_getBlockByNumber(full)", func(ctx context.Context, e *ethclient.Client) (err error) {
		v, err = e.BlockByNumber(ctx, number)
		return err
	})
	return v, err
}
