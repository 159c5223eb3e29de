package keys

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// DefaultTTL bounds how long a decrypted key stays in memory after it was loaded.
const DefaultTTL = 5 * time.Minute

// LoadTimeout bounds one key load (fetch, unwrap, decrypt).
const LoadTimeout = 30 * time.Second

// Destroyer is key material that can be wiped.
type Destroyer interface{ Destroy() }

// Cache holds decrypted key material for a bounded time. An entry is destroyed (zeroed) when its TTL,
// counted from the load, runs out, and every entry is destroyed on Close; the TTL is not extended by
// use, so a key that is signed with all day is still reloaded (and re-verified) every TTL. Concurrent
// callers for the same id share one load; a failed load is not cached.
type Cache[V Destroyer] struct {
	ttl time.Duration

	mu      sync.Mutex
	entries map[string]*cacheEntry[V]
	closed  bool
}

type cacheEntry[V Destroyer] struct {
	ready chan struct{}
	v     V
	err   error
	timer *time.Timer
}

// NewCache makes a cache whose entries live ttl (DefaultTTL when ttl <= 0).
func NewCache[V Destroyer](ttl time.Duration) *Cache[V] {
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	return &Cache[V]{ttl: ttl, entries: map[string]*cacheEntry[V]{}}
}

// TTL is the configured lifetime of an entry.
func (c *Cache[V]) TTL() time.Duration { return c.ttl }

// Get returns the live entry for id or loads it.
func (c *Cache[V]) Get(ctx context.Context, id string, load func(context.Context) (V, error)) (V, error) {
	var zero V
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return zero, ErrClosed
	}
	e, ok := c.entries[id]
	if !ok {
		e = &cacheEntry[V]{ready: make(chan struct{})}
		c.entries[id] = e
		// The load is shared by every caller waiting for id, so one caller giving up (its context
		// canceled) must not fail it for the others: it runs on its own, bounded by LoadTimeout.
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), LoadTimeout)
		go func() {
			defer cancel()
			c.fill(lctx, id, e, load)
		}()
	}
	c.mu.Unlock()
	select {
	case <-e.ready:
	case <-ctx.Done():
		return zero, ctx.Err()
	}
	if e.err != nil {
		return zero, e.err
	}
	return e.v, nil
}

func (c *Cache[V]) fill(ctx context.Context, id string, e *cacheEntry[V], load func(context.Context) (V, error)) {
	defer close(e.ready)
	v, err := load(ctx)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		e.err = err
		delete(c.entries, id)
		return
	}
	if c.closed { // closed while loading: nothing may outlive Close
		v.Destroy()
		e.err = ErrClosed
		return
	}
	e.v = v
	e.timer = time.AfterFunc(c.ttl, func() { c.expire(id, e) })
}

func (c *Cache[V]) expire(id string, e *cacheEntry[V]) {
	c.mu.Lock()
	if c.entries[id] == e {
		delete(c.entries, id)
	}
	c.mu.Unlock()
	e.v.Destroy()
}

// Drop destroys id's entry now (after a signature check failed, for example).
func (c *Cache[V]) Drop(id string) {
	c.mu.Lock()
	e, ok := c.entries[id]
	if ok {
		delete(c.entries, id)
	}
	c.mu.Unlock()
	if ok {
		<-e.ready
		if e.err == nil && e.timer.Stop() {
			e.v.Destroy()
		}
	}
}

// Len is the number of entries live or loading.
func (c *Cache[V]) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

// Close destroys every entry; the cache refuses Get afterwards.
func (c *Cache[V]) Close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	entries := c.entries
	c.entries = nil
	c.mu.Unlock()
	for _, e := range entries {
		<-e.ready
		if e.err == nil && e.timer.Stop() {
			e.v.Destroy()
		}
	}
}

func (c *Cache[V]) String() string { return fmt.Sprintf("keys.Cache{ttl: %s}", c.ttl) }
