package admin

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	"github.com/labstack/echo/v4"
	"github.com/redis/go-redis/v9"

	"github.com/sluice-custody/sluice/internal/store"
)

// The dashboard's session: the JWT in an HttpOnly cookie, and a CSRF token in a cookie the page's
// script reads and sends back in X-CSRF-Token on every unsafe request (a cross-site form can send the
// cookies but cannot read the token). The JWT carries the token's hash, so a CSRF cookie planted by
// someone else does not match it.
const (
	CookieSession = "sluice_ops_session"
	CookieCSRF    = "sluice_ops_csrf"
	HeaderCSRF    = "X-CSRF-Token"
	jwtIssuer     = "sluice-admin"
	refreshPrefix = "srt_"
)

// claims are the access token's: sub = username, role (informative: the role is re-read from the
// database on every request), jti (for revocation), csrf = hex SHA-256 of a cookie session's CSRF token.
type claims struct {
	Role string `json:"role"`
	CSRF string `json:"csrf,omitempty"`
	jwt.RegisteredClaims
}

func randomToken() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func sha256Hex(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// issueAccess signs a JWT for op; csrf is the cookie session's CSRF token ("" for a bearer session).
func (s *Server) issueAccess(op *Operator, csrf string) (string, time.Time, error) {
	now := s.now()
	exp := now.Add(s.d.AccessTTL)
	cl := claims{Role: string(op.Role), RegisteredClaims: jwt.RegisteredClaims{
		Issuer: jwtIssuer, Subject: op.Username, ID: uuid.NewString(),
		IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now.Add(-time.Minute)), ExpiresAt: jwt.NewNumericDate(exp),
	}}
	if csrf != "" {
		cl.CSRF = sha256Hex(csrf)
	}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, cl).SignedString(s.d.JWTKey)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("sign access token: %w", err)
	}
	return tok, exp, nil
}

// parseAccess checks a JWT's signature, algorithm, issuer and expiry, then that its id is not revoked.
func (s *Server) parseAccess(ctx context.Context, tok string) (*claims, error) {
	cl := &claims{}
	_, err := jwt.ParseWithClaims(tok, cl, func(*jwt.Token) (any, error) { return s.d.JWTKey, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}), jwt.WithIssuer(jwtIssuer),
		jwt.WithExpirationRequired(), jwt.WithTimeFunc(s.now))
	if err != nil || cl.ID == "" || cl.Subject == "" {
		return nil, errUnauthorized
	}
	n, err := s.rdb.Exists(ctx, s.revokedKey(cl.ID)).Result()
	if err != nil {
		return nil, fmt.Errorf("check token revocation: %w", err)
	}
	if n > 0 {
		return nil, errUnauthorized
	}
	return cl, nil
}

func (s *Server) revokedKey(jti string) string { return s.d.RedisPrefix + "revoked:" + jti }

// revoke puts a token's id on the revocation list until the token would have expired anyway.
func (s *Server) revoke(ctx context.Context, cl *claims) error {
	ttl := time.Second
	if cl.ExpiresAt != nil {
		ttl = max(cl.ExpiresAt.Sub(s.now())+time.Second, time.Second)
	}
	if err := s.rdb.Set(ctx, s.revokedKey(cl.ID), "1", ttl).Err(); err != nil {
		return fmt.Errorf("revoke token: %w", err)
	}
	return nil
}

// authenticate finds the request's credentials: a bearer JWT, or the session cookie (whose unsafe
// requests must carry the CSRF header).
func (s *Server) authenticate(c echo.Context) (*claims, bool, error) {
	ctx := c.Request().Context()
	if h := c.Request().Header.Get("Authorization"); h != "" {
		tok, ok := strings.CutPrefix(h, "Bearer ")
		if !ok || tok == "" {
			return nil, false, errUnauthorized
		}
		cl, err := s.parseAccess(ctx, tok)
		return cl, false, err
	}
	ck, err := c.Cookie(CookieSession)
	if err != nil || ck.Value == "" {
		return nil, false, errUnauthorized
	}
	cl, err := s.parseAccess(ctx, ck.Value)
	if err != nil {
		return nil, true, err
	}
	if cl.CSRF == "" { // a bearer token is not a cookie session
		return nil, true, errUnauthorized
	}
	switch c.Request().Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
	default:
		if !csrfOK(c, cl) {
			return nil, true, newError(http.StatusForbidden, CodeCSRF, "", "this request needs the "+HeaderCSRF+" header equal to the "+CookieCSRF+" cookie")
		}
	}
	return cl, true, nil
}

func csrfOK(c echo.Context, cl *claims) bool {
	hdr := c.Request().Header.Get(HeaderCSRF)
	ck, err := c.Cookie(CookieCSRF)
	if hdr == "" || err != nil {
		return false
	}
	same := subtle.ConstantTimeCompare([]byte(hdr), []byte(ck.Value)) == 1
	bound := subtle.ConstantTimeCompare([]byte(sha256Hex(hdr)), []byte(cl.CSRF)) == 1
	return same && bound
}

// require authenticates the request and checks the operator (re-read from the database, cached at most
// RoleCacheTTL) is enabled and holds at least role need.
func (s *Server) require(need Role) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			cl, cookie, err := s.authenticate(c)
			if err != nil {
				return err
			}
			op, err := s.roles.get(c.Request().Context(), s.st, cl.Subject)
			if errors.Is(err, store.ErrNotFound) {
				return errUnauthorized
			}
			if err != nil {
				return err
			}
			if op.Disabled {
				return newError(http.StatusUnauthorized, CodeUnauthorized, "", "operator "+op.Username+" is disabled")
			}
			if !op.Role.atLeast(need) {
				return newError(http.StatusForbidden, CodeForbidden, "",
					fmt.Sprintf("this needs the %s role (%s has the %s role)", need, op.Username, op.Role))
			}
			rs := state(c)
			rs.op, rs.cookie, rs.claims = op, cookie, cl
			return next(c)
		}
	}
}

// checkRole is require's role check for handlers that learn the role needed from the request (actions).
func checkRole(c echo.Context, need Role) error {
	op := operatorOf(c)
	if op == nil || !op.Role.atLeast(need) {
		name, have := "", Role("none")
		if op != nil {
			name, have = op.Username, op.Role
		}
		return newError(http.StatusForbidden, CodeForbidden, "", fmt.Sprintf("this needs the %s role (%s has the %s role)", need, name, have))
	}
	return nil
}

// roleCache keeps operators' roles and states for a few seconds between requests.
type roleCache struct {
	mu  sync.Mutex
	ttl time.Duration
	now func() time.Time
	m   map[string]cachedOperator
}

type cachedOperator struct {
	op Operator
	at time.Time
}

func (r *roleCache) get(ctx context.Context, st *store.Store, username string) (*Operator, error) {
	now := r.now()
	if r.ttl > 0 {
		r.mu.Lock()
		e, ok := r.m[username]
		r.mu.Unlock()
		if ok && now.Sub(e.at) < r.ttl && !now.Before(e.at) {
			op := e.op
			return &op, nil
		}
	}
	row, err := getOperator(ctx, st.DB, username)
	if err != nil {
		return nil, err
	}
	if r.ttl > 0 {
		r.mu.Lock()
		if len(r.m) > 10000 { // bounded: operators are few; this only guards against growth
			clear(r.m)
		}
		r.m[username] = cachedOperator{op: row.Operator, at: now}
		r.mu.Unlock()
	}
	op := row.Operator
	return &op, nil
}

func (r *roleCache) forget(username string) {
	r.mu.Lock()
	delete(r.m, username)
	r.mu.Unlock()
}

// Login.

func ttlSeconds(d time.Duration) int { return int(math.Ceil(d.Seconds())) }

// countLogin counts an attempt from remote in the current minute and refuses it above LoginLimit.
func (s *Server) countLogin(ctx context.Context, remote string) error {
	if s.d.LoginLimit < 0 {
		return nil
	}
	key := s.d.RedisPrefix + "login:addr:" + remote
	n, err := s.rdb.Incr(ctx, key).Result()
	if err != nil {
		return fmt.Errorf("count login attempt: %w", err)
	}
	if n == 1 {
		s.rdb.Expire(ctx, key, time.Minute)
	}
	if n > int64(s.d.LoginLimit) {
		ttl, _ := s.rdb.TTL(ctx, key).Result()
		if ttl < 0 { // the expiry was lost (a crash between INCR and EXPIRE): set it now
			s.rdb.Expire(ctx, key, time.Minute)
			ttl = time.Minute
		}
		return &retryAfter{newError(http.StatusTooManyRequests, CodeRateLimited, "", "too many login attempts from this address; retry later"), ttlSeconds(ttl)}
	}
	return nil
}

func (s *Server) failKey(username string) string {
	return s.d.RedisPrefix + "login:fail:" + clip(username, 64)
}

// lockedOut reports (with the time left) whether username has failed LockoutFailures times in the window.
func (s *Server) lockedOut(ctx context.Context, username string) (time.Duration, error) {
	n, err := s.rdb.Get(ctx, s.failKey(username)).Int64()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read failed logins: %w", err)
	}
	if n < int64(s.d.LockoutFailures) {
		return 0, nil
	}
	ttl, err := s.rdb.TTL(ctx, s.failKey(username)).Result()
	if err != nil {
		return 0, fmt.Errorf("read lock-out: %w", err)
	}
	if ttl < 0 {
		s.rdb.Expire(ctx, s.failKey(username), s.d.LockoutWindow)
		ttl = s.d.LockoutWindow
	}
	return max(ttl, time.Second), nil
}

func (s *Server) countFailure(ctx context.Context, username string) {
	n, err := s.rdb.Incr(ctx, s.failKey(username)).Result()
	if err != nil {
		s.log.Warn("count failed login", "err", err)
		return
	}
	if n == 1 {
		s.rdb.Expire(ctx, s.failKey(username), s.d.LockoutWindow)
	}
}

func (s *Server) login(c echo.Context) error {
	var req LoginRequest
	if err := bind(c, &req); err != nil {
		return err
	}
	switch {
	case req.Username == "":
		return unprocessable(CodeRequired, "username", "username is required")
	case req.Password == "":
		return unprocessable(CodeRequired, "password", "password is required")
	case req.Session != "" && req.Session != "cookie":
		return unprocessable(CodeInvalid, "session", `session must be "cookie" or left out`)
	}
	ctx := c.Request().Context()
	remote := c.RealIP()
	if err := s.countLogin(ctx, remote); err != nil {
		s.met.Login("rate_limited")
		return err
	}
	attempted := clip(req.Username, 64)
	fail := func(outcome string, err error) error {
		s.met.Login(outcome)
		if aerr := s.audit(ctx, auditRecord{Operator: attempted, Remote: remote, Kind: KindLoginFailed, What: "login",
			Outcome: outcome}); aerr != nil {
			return aerr
		}
		return err
	}
	left, err := s.lockedOut(ctx, req.Username)
	if err != nil {
		return err
	}
	if left > 0 {
		return fail("locked", &retryAfter{newError(http.StatusTooManyRequests, CodeLocked, "",
			"too many failed logins for this account; retry later"), ttlSeconds(left)})
	}
	row, err := getOperator(ctx, s.st.DB, req.Username)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	hash := dummyHash
	if row != nil {
		hash = row.hash
	}
	// The password is checked even for an unknown or disabled operator: the answer's time tells nothing.
	ok := checkPassword(hash, req.Password) && row != nil && !row.Disabled
	if !ok {
		s.countFailure(ctx, req.Username)
		return fail("failed", newError(http.StatusUnauthorized, CodeUnauthorized, "", "wrong username or password, or the operator is disabled"))
	}
	_ = s.rdb.Del(ctx, s.failKey(req.Username)).Err()
	op := row.Operator
	s.touchLogin(ctx, op.Username, s.now())
	state(c).op = &op
	tokens, err := s.startSession(c, &op, req.Session == "cookie", "")
	if err != nil {
		return err
	}
	s.met.Login("ok")
	if err := s.audit(ctx, auditRecord{Operator: op.Username, Remote: remote, Kind: KindLogin, What: "login",
		Detail: map[string]any{"session": map[bool]string{true: "cookie", false: "token"}[req.Session == "cookie"]}, Outcome: "ok"}); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, tokens)
}

// startSession issues an access token and either a refresh token in family (a new family when "") or,
// for the dashboard, the session and CSRF cookies.
func (s *Server) startSession(c echo.Context, op *Operator, cookie bool, family string) (Tokens, error) {
	if cookie {
		csrf := randomToken()
		tok, exp, err := s.issueAccess(op, csrf)
		if err != nil {
			return Tokens{}, err
		}
		c.SetCookie(&http.Cookie{Name: CookieSession, Value: tok, Path: "/", HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode})
		c.SetCookie(&http.Cookie{Name: CookieCSRF, Value: csrf, Path: "/", Secure: true, SameSite: http.SameSiteStrictMode})
		return Tokens{ExpiresAt: exp.UTC(), CSRFToken: csrf, Operator: *op}, nil
	}
	tok, exp, err := s.issueAccess(op, "")
	if err != nil {
		return Tokens{}, err
	}
	refresh := refreshPrefix + randomToken()
	if family == "" {
		family = uuid.NewString()
	}
	h := sha256.Sum256([]byte(refresh))
	if _, err := s.st.DB.ExecContext(c.Request().Context(), `INSERT INTO operator_refresh_tokens (token_hash, family, username, expires_at)
		VALUES (?, ?, ?, ?)`, h[:], family, op.Username, s.now().Add(s.d.RefreshTTL).UTC()); err != nil {
		return Tokens{}, fmt.Errorf("store refresh token: %w", err)
	}
	return Tokens{AccessToken: tok, RefreshToken: refresh, ExpiresAt: exp.UTC(), Operator: *op}, nil
}

type refreshRequest struct {
	RefreshToken string `json:"refresh_token"`
}

func (s *Server) refresh(c echo.Context) error {
	ctx := c.Request().Context()
	if c.Request().Header.Get("Authorization") == "" {
		if ck, err := c.Cookie(CookieSession); err == nil && ck.Value != "" {
			return s.refreshCookie(c)
		}
	}
	var req refreshRequest
	if err := bind(c, &req); err != nil {
		return err
	}
	if req.RefreshToken == "" {
		return unprocessable(CodeRequired, "refresh_token", "refresh_token is required")
	}
	h := sha256.Sum256([]byte(req.RefreshToken))
	var username, family string
	// reused: a refresh token presented a second time. Its family's revocation commits, then 401.
	reused := false
	err := s.st.InTx(ctx, func(tx *sql.Tx) error {
		reused = false
		var exp time.Time
		var used sql.NullTime
		var revoked bool
		err := tx.QueryRowContext(ctx, `SELECT username, family, expires_at, used_at, revoked FROM operator_refresh_tokens
			WHERE token_hash = ? FOR UPDATE`, h[:]).Scan(&username, &family, &exp, &used, &revoked)
		if errors.Is(err, sql.ErrNoRows) {
			return errUnauthorized
		}
		if err != nil {
			return fmt.Errorf("read refresh token: %w", err)
		}
		if used.Valid || revoked {
			if _, err := tx.ExecContext(ctx, `UPDATE operator_refresh_tokens SET revoked = 1 WHERE family = ?`, family); err != nil {
				return fmt.Errorf("revoke token family: %w", err)
			}
			reused = true
			return nil
		}
		if !s.now().Before(exp) {
			return errUnauthorized
		}
		_, err = tx.ExecContext(ctx, `UPDATE operator_refresh_tokens SET used_at = ? WHERE token_hash = ?`, s.now().UTC(), h[:])
		return err
	})
	if err == nil && reused {
		// The family is revoked (the transaction committed): whoever holds its latest token must log in again.
		s.met.Login("failed")
		if aerr := s.audit(ctx, auditRecord{Operator: username, Remote: c.RealIP(), Kind: KindLoginFailed, What: "refresh",
			Detail: map[string]any{"family": family}, Outcome: "refresh_token_reused"}); aerr != nil {
			return aerr
		}
		return errUnauthorized
	}
	if err != nil {
		return err
	}
	op, err := s.roles.get(ctx, s.st, username)
	if errors.Is(err, store.ErrNotFound) {
		return errUnauthorized
	}
	if err != nil {
		return err
	}
	if op.Disabled {
		return errUnauthorized
	}
	tokens, err := s.startSession(c, op, false, family)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, tokens)
}

// refreshCookie renews a dashboard session: a valid session cookie (and the CSRF header) gets a new
// one, and the old token is revoked.
func (s *Server) refreshCookie(c echo.Context) error {
	cl, _, err := s.authenticate(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	op, err := s.roles.get(ctx, s.st, cl.Subject)
	if err != nil || op.Disabled {
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		return errUnauthorized
	}
	if err := s.revoke(ctx, cl); err != nil {
		return err
	}
	tokens, err := s.startSession(c, op, true, "")
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, tokens)
}

func (s *Server) logout(c echo.Context) error {
	ctx := c.Request().Context()
	rs := state(c)
	if err := s.revoke(ctx, rs.claims); err != nil {
		return err
	}
	if c.Request().ContentLength > 0 {
		var req refreshRequest
		if err := bind(c, &req); err != nil {
			return err
		}
		if req.RefreshToken != "" {
			h := sha256.Sum256([]byte(req.RefreshToken))
			if _, err := s.st.DB.ExecContext(ctx, `UPDATE operator_refresh_tokens SET revoked = 1
				WHERE family = (SELECT family FROM (SELECT family FROM operator_refresh_tokens WHERE token_hash = ? AND username = ?) f)`,
				h[:], rs.op.Username); err != nil {
				return fmt.Errorf("revoke refresh token: %w", err)
			}
		}
	}
	if rs.cookie {
		for _, n := range []string{CookieSession, CookieCSRF} {
			c.SetCookie(&http.Cookie{Name: n, Value: "", Path: "/", MaxAge: -1, HttpOnly: n == CookieSession, Secure: true, SameSite: http.SameSiteStrictMode})
		}
	}
	if err := s.audit(ctx, auditRecord{Operator: rs.op.Username, Remote: c.RealIP(), Kind: KindLogin, What: "logout", Outcome: "ok"}); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}
