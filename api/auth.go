package api

import (
	"context"
	"crypto/sha256"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/sluice-custody/sluice/internal/store"
)

// maxKeyLen bounds what is hashed and looked up; real keys are far shorter.
const maxKeyLen = 256

// authCache remembers API key lookups for a short while so that a request does not cost a database
// round trip for its key. Entries are keyed by the key's SHA-256, so raw keys are not kept. A known key
// is trusted for posTTL (so disabling a key or client takes up to posTTL to bite); an unknown key is
// remembered for negTTL only, so a key registered after a failed attempt works within negTTL, and a
// flood of made-up keys costs at most one lookup per key per negTTL. The map is bounded: when full,
// expired entries are swept and, if that is not enough, negative entries are no longer cached.
type authCache struct {
	st     *store.Store
	posTTL time.Duration
	negTTL time.Duration
	max    int

	mu sync.RWMutex
	m  map[[32]byte]authEntry
}

type authEntry struct {
	client *store.APIClient // nil: the key is unknown
	exp    time.Time
}

func newAuthCache(st *store.Store, posTTL, negTTL time.Duration) *authCache {
	return &authCache{st: st, posTTL: posTTL, negTTL: negTTL, max: 10000, m: make(map[[32]byte]authEntry)}
}

// lookup returns the client owning key, or store.ErrNotFound.
func (a *authCache) lookup(ctx context.Context, key string) (*store.APIClient, error) {
	h := sha256.Sum256([]byte(key))
	now := time.Now()
	a.mu.RLock()
	e, ok := a.m[h]
	a.mu.RUnlock()
	if ok && now.Before(e.exp) {
		if e.client == nil {
			return nil, store.ErrNotFound
		}
		return e.client, nil
	}
	c, err := a.st.ClientByKey(ctx, key)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, err // a database problem is not an answer: nothing is cached
	}
	ttl := a.posTTL
	if c == nil {
		ttl = a.negTTL
	}
	if ttl > 0 {
		a.put(h, authEntry{client: c, exp: now.Add(ttl)}, now)
	}
	if c == nil {
		return nil, store.ErrNotFound
	}
	return c, nil
}

func (a *authCache) put(h [32]byte, e authEntry, now time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.m) >= a.max {
		for k, v := range a.m {
			if !now.Before(v.exp) {
				delete(a.m, k)
			}
		}
		if len(a.m) >= a.max && e.client == nil {
			return
		}
	}
	a.m[h] = e
}

// bearerKey extracts the key of "Authorization: Bearer <key>" (scheme case-insensitive).
func bearerKey(h string) (string, bool) {
	const p = "bearer "
	if len(h) <= len(p) || !strings.EqualFold(h[:len(p)], p) {
		return "", false
	}
	k := strings.TrimSpace(h[len(p):])
	if k == "" || len(k) > maxKeyLen {
		return "", false
	}
	return k, true
}

// authenticate is the /v1 middleware: it resolves the API key to a client, checks the key has scope
// ("" for any key), applies that client's rate limit and stores the client on the request.
func (s *Server) authenticate(scope string) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc { return s.authenticated(scope, next) }
}

func (s *Server) authenticated(scope string, next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		rs := state(c)
		key, ok := bearerKey(c.Request().Header.Get("Authorization"))
		if !ok {
			s.met.AuthFailure()
			return newErr(CodeUnauthorized, "", "send the API key as \"Authorization: Bearer <key>\"")
		}
		client, err := s.auth.lookup(c.Request().Context(), key)
		if errors.Is(err, store.ErrNotFound) {
			s.met.AuthFailure()
			return newErr(CodeUnauthorized, "", "unknown or disabled API key")
		}
		if err != nil {
			return err
		}
		if scope != "" && !client.Can(scope) {
			s.met.AuthFailure()
			return newErr(CodeForbidden, "", "this API key lacks the scope "+scope)
		}
		if !s.limits.allow(client.ID, time.Now()) {
			s.met.RateLimited()
			return newErr(CodeRateLimited, "", "too many requests for this API key; retry shortly")
		}
		rs.client = client
		rs.log = rs.log.With("client", client.Name)
		return next(c)
	}
}

// rateLimiter is a token bucket per client: rate tokens per second, at most burst saved up.
type rateLimiter struct {
	rate  float64
	burst float64
	m     sync.Map // int64 → *bucket
}

type bucket struct {
	mu     sync.Mutex
	tokens float64
	last   time.Time
}

func (r *rateLimiter) allow(client int64, now time.Time) bool {
	if r == nil || r.rate <= 0 {
		return true
	}
	v, ok := r.m.Load(client)
	if !ok {
		v, _ = r.m.LoadOrStore(client, &bucket{tokens: r.burst, last: now})
	}
	b := v.(*bucket)
	b.mu.Lock()
	defer b.mu.Unlock()
	if d := now.Sub(b.last); d > 0 {
		b.tokens += d.Seconds() * r.rate
		if b.tokens > r.burst {
			b.tokens = r.burst
		}
		b.last = now
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}
