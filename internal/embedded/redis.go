package embedded

import (
	"fmt"

	"github.com/alicebob/miniredis/v2"
)

// RedisOptions configure StartRedis; the zero value listens on a free port of 127.0.0.1.
type RedisOptions struct {
	// Addr is host:port to listen on; "" means 127.0.0.1 with a free port.
	Addr string
}

// Redis is a running in-process Redis (miniredis), reached with the ordinary Redis client.
type Redis struct {
	m *miniredis.Miniredis
}

// StartRedis starts an in-process Redis on opts.Addr.
//
// miniredis only expires keys when told to; here key TTLs follow the wall clock (ClockTTL), as on a
// real server. The nonce allocator does not need it (its lease expiry is a client-supplied timestamp
// compared inside its Lua scripts, which call no TIME), but anything setting TTLs gets real expiry.
func StartRedis(opts RedisOptions) (*Redis, error) {
	addr := opts.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	m := miniredis.NewMiniRedis()
	m.ClockTTL(true)
	if err := m.StartAddr(addr); err != nil {
		return nil, fmt.Errorf("embedded redis on %s: %w", addr, err)
	}
	return &Redis{m: m}, nil
}

// Addr is the host:port the server listens on.
func (r *Redis) Addr() string { return r.m.Addr() }

// Close stops the server; its data is gone.
func (r *Redis) Close() error {
	r.m.Close()
	return nil
}
