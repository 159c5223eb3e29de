package admin

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"
	"github.com/redis/go-redis/v9"

	"github.com/sluice-custody/sluice/admin/ui"
	"github.com/sluice-custody/sluice/internal/config"
	"github.com/sluice-custody/sluice/internal/service"
	"github.com/sluice-custody/sluice/internal/store"
)

//go:embed openapi.json
var openAPIDoc []byte

// Defaults of the optional Deps settings.
const (
	DefaultApprovalTTL     = time.Hour
	DefaultAccessTTL       = 15 * time.Minute
	DefaultRefreshTTL      = 12 * time.Hour
	DefaultRoleCacheTTL    = 5 * time.Second
	DefaultLoginLimit      = 30 // login attempts per remote address per minute
	DefaultLockoutFailures = 5
	DefaultLockoutWindow   = 15 * time.Minute
	DefaultRedisPrefix     = "sluice:admin:"
	// MinJWTKey is the shortest HS256 key accepted (the hash's output size).
	MinJWTKey = 32
	// ShutdownTimeout bounds how long Run waits for in-flight requests when its context ends.
	ShutdownTimeout = 15 * time.Second
	// actionLease is how long a request being performed is held by its performer: after a crash, the
	// same request id performs it again once the lease has passed.
	actionLease = time.Minute
	maxBody     = 64 << 10
)

// Deps are the collaborators the admin API cannot work without (Store, Redis, JWTKey), then its
// optional settings. Fields used only by the reads and actions (adminops) are added below them.
type Deps struct {
	Store *store.Store
	// Redis holds the login counters (rate limit, lock-out) and the revoked tokens' ids.
	Redis redis.Cmdable
	// JWTKey signs the access tokens (HS256), at least MinJWTKey bytes.
	JWTKey []byte
	Chains []config.Chain

	// ApprovalTTL is how long a two-person request waits for its approver (api.admin_approval_ttl,
	// default 1 h).
	ApprovalTTL time.Duration
	// Now is the clock (tests move it); nil is time.Now.
	Now func() time.Time
	// RedisPrefix prefixes every Redis key (default "sluice:admin:"; tests sharing a Redis make it unique).
	RedisPrefix string
	// LoginLimit is how many login attempts one remote address may make per minute (default 30; negative:
	// unlimited). LockoutFailures failed logins of one account within LockoutWindow lock it for the rest
	// of the window (defaults 5 and 15 min).
	LoginLimit      int
	LockoutFailures int
	LockoutWindow   time.Duration
	// AccessTTL and RefreshTTL are the lifetimes of the JWT (default 15 min) and of a refresh token
	// (default 12 h).
	AccessTTL  time.Duration
	RefreshTTL time.Duration
	// RoleCacheTTL is how long an operator's role and state are cached between requests (default 5 s,
	// at most 5 s; negative: no cache): disabling an operator bites within it.
	RoleCacheTTL time.Duration

	// Ops is what the operators' reads and actions work on (reads.go, actions.go: the queues, the nonce
	// allocator, one node client per chain); Ops.Store defaults to Store. Without Ops.Queue the server
	// has no reads and actions (the framework's own tests).
	Ops OpsDeps
}

// Server is the admin API server.
type Server struct {
	e       *echo.Echo
	st      *store.Store
	rdb     redis.Cmdable
	log     *slog.Logger
	met     Metrics
	d       Deps
	now     func() time.Time
	specs   map[string]ActionSpec
	roles   *roleCache
	ops     *ops       // nil without Deps.Ops
	auditMu sync.Mutex // serializes this process's audit appends (auditTx)
}

// New checks d (a missing dependency is an error naming it) and builds the server and its routes. A nil
// log discards; m may be NopMetrics() in tests.
func New(d Deps, log *slog.Logger, m Metrics) (*Server, error) {
	return newServer(d, log, m, nil)
}

// newServer is New with extra action specs (tests register fakes: the framework is tested without the
// real actions).
func newServer(d Deps, log *slog.Logger, m Metrics, extra []ActionSpec) (*Server, error) {
	switch {
	case d.Store == nil:
		return nil, errors.New("admin: Store is required")
	case d.Redis == nil:
		return nil, errors.New("admin: Redis is required (login counters and token revocation)")
	case len(d.JWTKey) < MinJWTKey:
		return nil, fmt.Errorf("admin: JWTKey must be at least %d bytes (it has %d)", MinJWTKey, len(d.JWTKey))
	case m == nil:
		return nil, errors.New("admin: Metrics is required (NopMetrics() for none)")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if d.ApprovalTTL <= 0 {
		d.ApprovalTTL = DefaultApprovalTTL
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.RedisPrefix == "" {
		d.RedisPrefix = DefaultRedisPrefix
	}
	if d.LoginLimit == 0 {
		d.LoginLimit = DefaultLoginLimit
	}
	if d.LockoutFailures <= 0 {
		d.LockoutFailures = DefaultLockoutFailures
	}
	if d.LockoutWindow <= 0 {
		d.LockoutWindow = DefaultLockoutWindow
	}
	if d.AccessTTL <= 0 {
		d.AccessTTL = DefaultAccessTTL
	}
	if d.RefreshTTL <= 0 {
		d.RefreshTTL = DefaultRefreshTTL
	}
	if d.RoleCacheTTL == 0 || d.RoleCacheTTL > DefaultRoleCacheTTL {
		d.RoleCacheTTL = DefaultRoleCacheTTL
	}
	s := &Server{st: d.Store, rdb: d.Redis, log: log, met: m, d: d, now: d.Now, specs: map[string]ActionSpec{}}
	s.roles = &roleCache{ttl: d.RoleCacheTTL, now: d.Now, m: map[string]cachedOperator{}}
	if d.Ops.Queue != nil {
		if d.Ops.Store == nil {
			d.Ops.Store = d.Store
		}
		o, err := newOps(d.Ops)
		if err != nil {
			return nil, err
		}
		o.now = d.Now
		s.ops = o
	}
	for _, sp := range append(s.actionSpecs(), extra...) {
		if sp.Name == "" || sp.Role == "" || sp.Validate == nil || sp.Plan == nil || sp.Do == nil {
			return nil, fmt.Errorf("admin: action spec %q is incomplete (Name, Role, Validate, Plan and Do are required)", sp.Name)
		}
		if _, dup := s.specs[sp.Name]; dup {
			return nil, fmt.Errorf("admin: action %q registered twice", sp.Name)
		}
		s.specs[sp.Name] = sp
	}

	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	// The admin listener is reached directly (loopback or a private network): X-Forwarded-For would let
	// a client choose the address its login attempts are counted under.
	e.IPExtractor = echo.ExtractIPDirect()
	e.HTTPErrorHandler = s.handleError
	e.Use(s.observe)
	e.GET("/admin/openapi.json", s.openapi)
	e.GET("/ops", func(c echo.Context) error { return c.Redirect(http.StatusFound, "/ops/") })
	uiH := echo.WrapHandler(http.StripPrefix("/ops", ui.Handler()))
	e.GET("/ops/*", uiH)
	e.HEAD("/ops/*", uiH)

	// Authentication and roles are checked per route (s.require) rather than by group middleware: echo
	// implements group middleware with a catch-all route, which would turn 405 into 404.
	g := e.Group("/admin/v1")
	g.POST("/auth/login", s.login)
	g.POST("/auth/refresh", s.refresh)
	g.POST("/auth/logout", s.logout, s.require(RoleViewer))
	g.GET("/me", s.me, s.require(RoleViewer))
	g.GET("/operators", s.listOperators, s.require(RoleAdmin))
	g.POST("/operators", s.createOperator, s.require(RoleAdmin))
	g.POST("/operators/:username/disable", s.disableOperator, s.require(RoleAdmin))
	g.POST("/operators/:username/reset", s.resetOperator, s.require(RoleAdmin))
	g.GET("/audit", s.listAudit, s.require(RoleViewer))
	g.GET("/audit/verify", s.verifyAudit, s.require(RoleViewer))
	g.POST("/actions", s.postAction, s.require(RoleViewer)) // the spec's role is checked once the action is known
	g.GET("/approvals", s.listApprovals, s.require(RoleViewer))
	g.GET("/approvals/:id", s.getApproval, s.require(RoleViewer))
	g.POST("/approvals/:id/approve", s.approve, s.require(RoleApprover))
	g.POST("/approvals/:id/reject", s.reject, s.require(RoleApprover))
	// The reads (reads.go) register here the same way: g.GET(path, handler, s.require(role)); a handler
	// finds its operator with operatorOf(c), records a sensitive read with s.auditRead, answers bad input
	// with an *Error (badParam, unprocessable, notFound, conflict), and reads its collaborators from s.d.
	s.opsRoutes(g)
	s.e = e
	return s, nil
}

// Handler is the admin listener's HTTP handler (httptest and mounting).
func (s *Server) Handler() http.Handler { return s.e }

// Run listens on addr and serves until ctx ends, then shuts down gracefully: no new connections, and
// in-flight requests get up to ShutdownTimeout to finish.
func (s *Server) Run(ctx context.Context, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("admin api listen %s: %w", addr, err)
	}
	return s.Serve(ctx, ln)
}

// Serve is Run on a listener the caller opened.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.e,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	return service.ServeHTTP(ctx, "admin api", s.log, srv, ln, ShutdownTimeout)
}

// CSP is the Content-Security-Policy of every response of the admin listener (the dashboard's pages
// and the API): the dashboard's own, so the two can never differ.
const CSP = ui.CSP

const headerCorrelationID = "X-Correlation-ID"

// reqState is what a request carries through the middleware.
type reqState struct {
	cid string
	log *slog.Logger
	op  *Operator // set by require
	// cookie: authenticated by the session cookie (the dashboard), not a bearer token.
	cookie bool
	claims *claims
}

const stateKey = "sluice.admin.req"

func state(c echo.Context) *reqState {
	rs, _ := c.Get(stateKey).(*reqState)
	if rs == nil {
		rs = &reqState{}
		c.Set(stateKey, rs)
	}
	return rs
}

// operatorOf is the authenticated operator of a request behind s.require (nil elsewhere).
func operatorOf(c echo.Context) *Operator { return state(c).op }

// who names the authenticated operator ("" before authentication).
func who(c echo.Context) string {
	if op := operatorOf(c); op != nil {
		return op.Username
	}
	return ""
}

// observe is the outermost middleware: correlation id, security headers, panic recovery, error
// rendering, metrics and the access log (which never shows bodies, so no password or token).
func (s *Server) observe(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) (err error) {
		start := time.Now()
		cid := uuid.NewString()
		h := c.Response().Header()
		h.Set(headerCorrelationID, cid)
		h.Set("Content-Security-Policy", CSP)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
		h.Set("Cache-Control", "no-store")
		rs := &reqState{cid: cid, log: s.log.With("correlation_id", cid)}
		c.Set(stateKey, rs)
		c.Request().Body = http.MaxBytesReader(c.Response(), c.Request().Body, maxBody)
		defer func() {
			if p := recover(); p != nil {
				c.Error(fmt.Errorf("panic: %v", p))
			}
			s.finish(c, rs, start)
			err = nil
		}()
		if herr := next(c); herr != nil {
			c.Error(herr)
		}
		return nil
	}
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
		method = "OTHER"
	}
	s.met.Request(method, route, status, dur)
	level := slog.LevelInfo
	if status >= 500 {
		level = slog.LevelError
	}
	ctx := req.Context()
	if rs.log.Enabled(ctx, level) {
		rs.log.LogAttrs(ctx, level, "admin request", slog.String("method", req.Method), slog.String("path", req.URL.Path),
			slog.String("route", route), slog.Int("status", status), slog.Duration("duration", dur),
			slog.String("operator", who(c)), slog.String("remote", c.RealIP()))
	}
}

func (s *Server) openapi(c echo.Context) error {
	return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, openAPIDoc)
}
