// Package api owns the HTTP API for the exchange backend and the dashboard: withdrawals (create with
// idempotency, read, list, cancel, history), the configured chains, health, readiness, metrics and the
// OpenAPI document. The contract is in ARCHITECTURE.md ("HTTP API (v1)") and openapi.json.
//
// A create is one database transaction: the withdrawal row, its first history row and the tx-request
// message commit together (Store.CreateWithdrawal with a queue.TxSender), so a withdrawal is never
// accepted without its message nor queued without its row.
package api

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/sluice-custody/sluice/internal/config"
	"github.com/sluice-custody/sluice/internal/policy"
	"github.com/sluice-custody/sluice/internal/queue"
	"github.com/sluice-custody/sluice/internal/service"
	"github.com/sluice-custody/sluice/internal/store"
)

//go:embed openapi.json
var openAPIDoc []byte

// maxBody is the largest request body accepted (413 body_too_large above it).
const maxBody = 64 << 10

// Defaults of the optional Deps settings.
const (
	DefaultRateLimit = 2000 // requests per second per client
	DefaultRateBurst = 4000
	DefaultAuthTTL   = 10 * time.Second
	// negAuthTTL is how long an unknown key is remembered as unknown.
	negAuthTTL = 2 * time.Second
	// ShutdownTimeout bounds how long Run waits for in-flight requests when its context ends.
	ShutdownTimeout = 15 * time.Second
)

// Deps are the collaborators the API cannot work without (Store, Queue, Chains, Gatherer), then its
// optional settings.
type Deps struct {
	Store *store.Store
	// Queue sends the withdrawal.requested message inside the create transaction.
	Queue  queue.TxSender
	Chains []config.Chain
	// Gatherer is what /metrics serves: the process's registry, which holds the API's metrics and those
	// of every other service sharing the process.
	Gatherer prometheus.Gatherer

	// Policy decides whether a withdrawal is accepted, refused or held for approval; nil accepts every
	// valid request (no limits, no recipient checks).
	Policy *policy.Engine

	// WebhooksAllowPrivate accepts webhook endpoints resolving to loopback or private addresses
	// (webhooks.allow_private); off, they are refused (SSRF).
	WebhooksAllowPrivate bool

	// Ready is an extra readiness check for /readyz (the database is always pinged); may be nil.
	Ready func(ctx context.Context) error
	// RateLimit is the per-client token bucket in requests per second and its burst; zero means the
	// defaults (2000/s, burst 4000), a negative RateLimit turns limiting off.
	RateLimit float64
	RateBurst int
	// AuthTTL is how long a known API key is cached (default 10s): disabling a key takes that long to bite.
	AuthTTL time.Duration
	// Tracer, when set, makes a span of every request (a child of the caller's traceparent header when
	// it sends one); the withdrawal's queue message carries it on to the signer.
	Tracer trace.Tracer
}

// Server is the API server.
type Server struct {
	e   *echo.Echo
	st  *store.Store
	q   queue.TxSender
	pol *policy.Engine
	// allowPrivate: webhook endpoints may resolve to internal addresses.
	allowPrivate bool
	log          *slog.Logger
	ready        func(context.Context) error
	met          Metrics
	tracer       trace.Tracer // nil: requests are not traced
	auth         *authCache
	limits       *rateLimiter
	chains       map[string]*chainInfo
	// chainsJSON is GET /v1/chains, rendered once.
	chainsJSON []byte
}

// chainInfo is what rendering and validation need of a configured chain.
type chainInfo struct {
	name          string
	confirmations uint64
	assets        map[string]uint8 // symbol → decimals
	// maxWithdrawal is, per asset with one, its max_withdrawal in base units: a larger amount is refused.
	maxWithdrawal map[string]*big.Int
}

// New checks d (a missing dependency is an error naming it) and builds the server and its routes. A nil
// log discards; m may be NopMetrics() in tests.
func New(d Deps, log *slog.Logger, m Metrics) (*Server, error) {
	switch {
	case d.Store == nil:
		return nil, errors.New("api: Store is required")
	case d.Queue == nil:
		return nil, errors.New("api: Queue is required")
	case len(d.Chains) == 0:
		return nil, errors.New("api: Chains is required (no chain configured)")
	case d.Gatherer == nil:
		return nil, errors.New("api: Gatherer is required (the registry /metrics serves)")
	case m == nil:
		return nil, errors.New("api: Metrics is required (NopMetrics() for none)")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	rate, burst := d.RateLimit, float64(d.RateBurst)
	if rate == 0 {
		rate = DefaultRateLimit
	}
	if burst <= 0 {
		burst = max(DefaultRateBurst, rate)
	}
	ttl := d.AuthTTL
	if ttl == 0 {
		ttl = DefaultAuthTTL
	}
	s := &Server{
		st:           d.Store,
		q:            d.Queue,
		pol:          d.Policy,
		allowPrivate: d.WebhooksAllowPrivate,
		log:          log,
		ready:        d.Ready,
		met:          m,
		tracer:       d.Tracer,
		auth:         newAuthCache(d.Store, ttl, min(ttl, negAuthTTL)),
		limits:       &rateLimiter{rate: rate, burst: burst},
	}
	s.chains, s.chainsJSON = buildChains(d.Chains)

	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = s.handleError
	e.Use(s.observe)
	e.GET("/healthz", s.healthz)
	e.GET("/readyz", s.readyz)
	e.GET("/metrics", echo.WrapHandler(promhttp.HandlerFor(d.Gatherer, promhttp.HandlerOpts{})))
	e.GET("/openapi.json", s.openapi)

	// The key is checked per route rather than by a /v1 group middleware: echo implements group
	// middleware with a catch-all route, which would turn 405 (wrong method) into 404.
	read, write, approve := s.authenticate(store.ScopeWithdrawalsRead), s.authenticate(store.ScopeWithdrawalsWrite),
		s.authenticate(store.ScopeWithdrawalsApprove)
	e.POST("/v1/withdrawals", s.createWithdrawal, write)
	e.GET("/v1/withdrawals", s.listWithdrawals, read)
	e.GET("/v1/withdrawals/:id", s.getWithdrawal, read)
	e.POST("/v1/withdrawals/:id/cancel", s.cancelWithdrawal, write)
	e.POST("/v1/withdrawals/:id/speed-up", s.speedUpWithdrawal, write)
	e.GET("/v1/withdrawals/:id/history", s.withdrawalHistory, read)
	e.POST("/v1/withdrawals/:id/approve", s.approveWithdrawal, approve)
	e.POST("/v1/withdrawals/:id/reject", s.rejectWithdrawal, approve)
	e.GET("/v1/chains", s.listChains, s.authenticate(""))
	hooks := s.authenticate(store.ScopeWebhooksManage)
	e.POST("/v1/webhooks", s.createWebhook, hooks)
	e.GET("/v1/webhooks", s.listWebhooks, hooks)
	e.POST("/v1/webhooks/:id/rotate", s.rotateWebhook, hooks)
	e.GET("/v1/webhooks/:id/deliveries", s.webhookDeliveries, hooks)
	e.POST("/v1/webhooks/:id/deliveries/:delivery_id/redeliver", s.redeliverWebhook, hooks)
	e.POST("/v1/webhooks/:id/redeliver", s.redeliverDead, hooks)
	s.e = e
	return s, nil
}

// Echo returns the HTTP handler, for httptest and for mounting.
func (s *Server) Echo() *echo.Echo { return s.e }

// Run listens on addr and serves until ctx ends, then shuts down gracefully: no new connections, and
// in-flight requests get up to ShutdownTimeout to finish.
func (s *Server) Run(ctx context.Context, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("api listen %s: %w", addr, err)
	}
	return s.Serve(ctx, ln)
}

// Serve is Run on a listener the caller opened (a ":0" listener in tests).
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.e,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	s.e.Server = srv
	return service.ServeHTTP(ctx, "api", s.log, srv, ln, ShutdownTimeout)
}

// reqState is what a request carries through the middleware: its correlation id, a logger that names
// it, and (under /v1) the authenticated client.
type reqState struct {
	cid    string
	log    *slog.Logger
	client *store.APIClient
}

const stateKey = "sluice.req"

func state(c echo.Context) *reqState {
	rs, _ := c.Get(stateKey).(*reqState)
	if rs == nil {
		rs = &reqState{}
	}
	return rs
}

func reqLog(c echo.Context, fallback *slog.Logger) *slog.Logger {
	if rs, _ := c.Get(stateKey).(*reqState); rs != nil && rs.log != nil {
		return rs.log
	}
	return fallback
}

// HeaderCorrelationID carries the correlation id in requests and responses.
const HeaderCorrelationID = "X-Correlation-ID"

// saneID reports whether a caller-supplied correlation id can be used as is: 1–64 characters of
// [A-Za-z0-9._:-].
func saneID(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == ':' || c == '-') {
			return false
		}
	}
	return true
}

// observe is the outermost middleware: correlation id, request logger, panic recovery, error rendering,
// metrics and the access log.
func (s *Server) observe(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) (err error) {
		start := time.Now()
		req := c.Request()
		cid := req.Header.Get(HeaderCorrelationID)
		if !saneID(cid) {
			cid = req.Header.Get("X-Request-ID")
			if !saneID(cid) {
				cid = uuid.NewString()
			}
		}
		c.Response().Header().Set(HeaderCorrelationID, cid)
		rs := &reqState{cid: cid, log: s.log.With("correlation_id", cid)}
		c.Set(stateKey, rs)
		span := s.startSpan(c, cid)
		defer func() {
			if p := recover(); p != nil {
				c.Error(fmt.Errorf("panic: %v", p))
			}
			s.finish(c, rs, start)
			if span != nil {
				status := c.Response().Status
				span.SetAttributes(attribute.Int("http.response.status_code", status))
				if status >= 500 {
					span.SetStatus(codes.Error, http.StatusText(status))
				}
				span.End()
			}
			err = nil
		}()
		if herr := next(c); herr != nil {
			c.Error(herr)
		}
		return nil
	}
}

// startSpan starts the request's span, under the caller's trace when it sent a traceparent, and puts it
// in the request's context; nil when tracing is off or for probes and scrapes.
func (s *Server) startSpan(c echo.Context, cid string) trace.Span {
	route := c.Path()
	if s.tracer == nil || route == "/healthz" || route == "/readyz" || route == "/metrics" {
		return nil
	}
	if route == "" {
		route = "unmatched"
	}
	req := c.Request()
	ctx := propagation.TraceContext{}.Extract(req.Context(), propagation.HeaderCarrier(req.Header))
	ctx, span := s.tracer.Start(ctx, req.Method+" "+route, trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attribute.String("http.request.method", req.Method), attribute.String("http.route", route),
			attribute.String("correlation_id", cid)))
	c.SetRequest(req.WithContext(ctx))
	return span
}

func (s *Server) finish(c echo.Context, rs *reqState, start time.Time) {
	dur := time.Since(start)
	req := c.Request()
	route := c.Path()
	if route == "" {
		route = "unmatched"
	}
	status := c.Response().Status
	method := req.Method
	switch method {
	case http.MethodGet, http.MethodPost, http.MethodHead, http.MethodPut, http.MethodDelete, http.MethodPatch, http.MethodOptions:
	default:
		method = "OTHER" // bounded label values whatever clients send
	}
	s.met.Request(method, route, status, dur)
	level := slog.LevelInfo
	switch {
	case status >= 500:
		level = slog.LevelError
	case route == "/healthz" || route == "/readyz" || route == "/metrics":
		level = slog.LevelDebug
	}
	ctx := req.Context()
	if rs.log.Enabled(ctx, level) {
		rs.log.LogAttrs(ctx, level, "http request", slog.String("method", req.Method), slog.String("path", req.URL.Path),
			slog.String("route", route), slog.Int("status", status), slog.Duration("duration", dur))
	}
}

func (s *Server) healthz(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) readyz(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), 3*time.Second)
	defer cancel()
	fail := func(what string, err error) error {
		reqLog(c, s.log).Warn("not ready", "check", what, "err", err)
		return c.JSON(http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "check": what, "error": err.Error()})
	}
	if err := s.st.Ping(ctx); err != nil {
		return fail("database", err)
	}
	if s.ready != nil {
		if err := s.ready(ctx); err != nil {
			return fail("dependencies", err)
		}
	}
	return c.JSON(http.StatusOK, map[string]string{"status": "ready"})
}

func (s *Server) openapi(c echo.Context) error {
	return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, openAPIDoc)
}

func (s *Server) listChains(c echo.Context) error {
	return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, s.chainsJSON)
}
