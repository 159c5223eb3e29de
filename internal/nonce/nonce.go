// Package nonce owns nonce allocation per (chain, address). Redis hands nonces out atomically; the
// database (sent_transactions) is the source of truth; the chain tells what is mined and pending.
//
// # The failure this package exists to avoid
//
// A plain Redis counter is bumped, the process dies before the signed transaction is persisted, and
// every later transaction of that address waits forever behind a nonce nobody will send. Here every
// nonce handed out is a lease with an expiry: until the caller commits it (the signed transaction is in
// the database), the nonce is only on loan. A lease that expires, or is released, is handed out again
// — lowest first, before the counter moves on — so a hole left by a dead process is filled by the next
// allocation instead of blocking the address.
//
// # Contract for callers (the signer)
//
//  1. Compute the floors: Floors.Mined = the chain's latest (mined) nonce for the address; Floors.Next =
//     max(DB max nonce + 1, chain pending nonce). A lagging node only ever lowers these numbers and the
//     allocator only ever raises the counter with them, so a stale node is never trusted on its own.
//  2. lease, err := alloc.Allocate(ctx, chainID, addr, floors)
//  3. Sign with lease.Nonce. If signing fails before anything is persisted: lease.Release(ctx); the nonce
//     is handed out again by the next Allocate at once.
//  4. Insert the signed tx into sent_transactions (UNIQUE(chain_id, from, nonce)) in the same DB
//     transaction that marks the withdrawals SIGNED. If that insert fails as a duplicate, the nonce was
//     reclaimed from a lease whose holder did persist it (it died between the DB commit and
//     lease.Commit): call lease.Commit(ctx) — the nonce is taken — and go back to step 1.
//  5. After the DB transaction commits: lease.Commit(ctx). If the process dies before this, the lease
//     expires and the nonce is handed out once more; step 4's duplicate check resolves it.
//  6. On NONCE_TOO_LOW / NONCE_TOO_HIGH from a node, or at start: Resync with a freshly computed
//     Floors.Next.
//
// Nothing here can make two different transactions share a nonce on its own: the UNIQUE key in
// sent_transactions is the last line of defence, and the lease tokens make sure a slow holder whose
// lease expired cannot release or commit a lease that meanwhile belongs to someone else.
//
// # Redis layout
//
// Per (chain, address), all its keys share one hash tag, so they live in one Redis Cluster slot and
// one script may touch them all:
//
//	sluice:nonce:{<chainID>:<addr>}:next    string: the next never-handed-out nonce
//	sluice:nonce:{<chainID>:<addr>}:leases  zset:   member nonce, score lease expiry (unix ms; 0 = released)
//	sluice:nonce:{<chainID>:<addr>}:owners  hash:   nonce -> token of the lease's current holder
//	sluice:nonce:{<chainID>:<addr>}:holder  hash:   nonce -> id of what it is being signed for (AllocateFor)
//	sluice:nonce:{<chainID>:<addr>}:held    hash:   that id -> nonce
//
// The hash tag covers chain and address together (not the chain alone) so that one busy chain does not
// pin all its addresses to one cluster slot.
//
// Lease expiry uses the client's clock (the scripts call no TIME, so they also run on miniredis). Clock
// skew between signer hosts shortens or lengthens leases by the skew; keep it well below the TTL.
package nonce

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/redis/go-redis/v9"
)

// DefaultTTL is how long a nonce stays leased before it is handed out again.
const DefaultTTL = 60 * time.Second

// maxNonce keeps nonces exact in Lua, whose numbers are doubles.
const maxNonce = 1 << 53

// Floors bound what Allocate may hand out.
type Floors struct {
	// Mined is the chain's latest (mined) nonce for the address: every nonce below it is used, so
	// leases below it are dead and are dropped, never handed out again.
	Mined uint64
	// Next is max(DB max nonce + 1, chain pending nonce): the counter never runs below what is
	// persisted or known pending.
	Next uint64
}

// Allocator hands out nonce leases. It is safe for concurrent use by many goroutines and processes.
type Allocator struct {
	rdb    redis.Scripter
	prefix string
	ttl    time.Duration
	now    func() time.Time
}

// Option configures an Allocator.
type Option func(*Allocator)

// WithTTL sets the lease duration (DefaultTTL otherwise). It must comfortably exceed the time from
// Allocate to Commit (signing and the DB write).
func WithTTL(d time.Duration) Option { return func(a *Allocator) { a.ttl = d } }

// WithPrefix replaces the "sluice:nonce" key prefix (tests use a unique one).
func WithPrefix(p string) Option { return func(a *Allocator) { a.prefix = p } }

// WithClock replaces time.Now for lease expiry.
func WithClock(now func() time.Time) Option { return func(a *Allocator) { a.now = now } }

// New returns an allocator on rdb: a *redis.Client, *redis.ClusterClient or anything that runs scripts.
func New(rdb redis.Scripter, opts ...Option) *Allocator {
	a := &Allocator{rdb: rdb, prefix: "sluice:nonce", ttl: DefaultTTL, now: time.Now}
	for _, o := range opts {
		o(a)
	}
	if a.ttl <= 0 {
		a.ttl = DefaultTTL
	}
	return a
}

// Lease is one nonce on loan to its caller. Commit it once the signed transaction is persisted, or
// Release it when nothing was persisted. Both are idempotent and only ever act on this lease: once the
// lease has expired and been handed to someone else, they do nothing.
type Lease struct {
	Nonce   uint64
	ChainID uint64
	Address common.Address
	// Expires is when the nonce is handed out again unless committed.
	Expires time.Time
	// Reclaimed is true when the nonce was handed out before (its lease expired or was released):
	// it may have been persisted by a holder that died before committing.
	Reclaimed bool
	// Resumed is true when the nonce is the one this holder leased before (AllocateFor).
	Resumed bool

	token string
	a     *Allocator
}

func (l Lease) String() string {
	s := fmt.Sprintf("nonce %d of %s on chain %d", l.Nonce, l.Address.Hex(), l.ChainID)
	if l.Reclaimed {
		s += " (reclaimed)"
	}
	return s
}

// Commit marks the nonce as used for good: call it after the signed transaction is persisted.
func (l Lease) Commit(ctx context.Context) error {
	if l.a == nil {
		return errors.New("nonce: commit of a zero Lease")
	}
	k := l.a.keys(l.ChainID, l.Address)
	if _, err := commitScript.Run(ctx, l.a.rdb, k.list(), strconv.FormatUint(l.Nonce, 10), l.token).Result(); err != nil {
		return fmt.Errorf("nonce: commit %s: %w", l, err)
	}
	return nil
}

// Release gives the nonce back for immediate reuse: call it when signing failed before anything was
// persisted. After Commit, or once the lease has passed to another holder, it does nothing.
func (l Lease) Release(ctx context.Context) error {
	if l.a == nil {
		return errors.New("nonce: release of a zero Lease")
	}
	k := l.a.keys(l.ChainID, l.Address)
	if _, err := releaseScript.Run(ctx, l.a.rdb, k.list(), strconv.FormatUint(l.Nonce, 10), l.token).Result(); err != nil {
		return fmt.Errorf("nonce: release %s: %w", l, err)
	}
	return nil
}

type keySet struct{ next, leases, owners, holderOf, heldBy string }

func (k keySet) list() []string { return []string{k.next, k.leases, k.owners, k.holderOf, k.heldBy} }

func (a *Allocator) keys(chainID uint64, addr common.Address) keySet {
	base := fmt.Sprintf("%s:{%d:%s}", a.prefix, chainID, strings.ToLower(addr.Hex()))
	return keySet{next: base + ":next", leases: base + ":leases", owners: base + ":owners",
		holderOf: base + ":holder", heldBy: base + ":held"}
}

// allocateScript hands out one nonce. In order:
//  1. Leases whose nonce is below the mined nonce are dead (the chain has used those nonces): drop them.
//  2. If the caller names a holder (the withdrawal or batch being signed) that still has a lease, live
//     or expired but not yet handed to anyone else, return that same nonce: a signer killed mid-signing
//     is followed by a redelivery of the same request, which must not leave the first nonce behind as a
//     hole.
//  3. If a lease has expired (score < now; released leases have score 0), re-lease the lowest such
//     nonce: it is a hole that later transactions of this address would wait behind.
//  4. Otherwise take the counter, raised to the floors, skipping any nonce that still has a lease
//     (possible after Resync lowered the counter below in-flight leases), and advance it.
//
// KEYS: next, leases, owners (nonce -> token), holder (nonce -> holder), held (holder -> nonce).
// Numbers cross into and out of Lua as decimal strings (string.format %d): Redis would otherwise
// format large Lua numbers as %.14g.
var allocateScript = redis.NewScript(`
local now = tonumber(ARGV[1])
local expiry = now + tonumber(ARGV[2])
local mined = tonumber(ARGV[3])
local floor = tonumber(ARGV[4])
local token = ARGV[5]
local holder = ARGV[6]
local function s(n) return string.format('%d', n) end
local function lease(n, reclaimed)
  redis.call('ZADD', KEYS[2], s(expiry), s(n))
  redis.call('HSET', KEYS[3], s(n), token)
  local prev = redis.call('HGET', KEYS[4], s(n))
  if prev then redis.call('HDEL', KEYS[5], prev) end
  if holder ~= '' then
    redis.call('HSET', KEYS[4], s(n), holder)
    redis.call('HSET', KEYS[5], holder, s(n))
  else
    redis.call('HDEL', KEYS[4], s(n))
  end
  return {s(n), s(expiry), reclaimed}
end

for _, m in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
  if tonumber(m) < mined then
    redis.call('ZREM', KEYS[2], m)
    redis.call('HDEL', KEYS[3], m)
    local h = redis.call('HGET', KEYS[4], m)
    if h then redis.call('HDEL', KEYS[5], h) end
    redis.call('HDEL', KEYS[4], m)
  end
end

if holder ~= '' then
  local held = redis.call('HGET', KEYS[5], holder)
  if held and redis.call('HGET', KEYS[4], held) == holder and redis.call('ZSCORE', KEYS[2], held) then
    return lease(tonumber(held), 2)
  end
end

local best = nil
for _, m in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', '(' .. s(now))) do
  local n = tonumber(m)
  if best == nil or n < best then best = n end
end
if best ~= nil then
  return lease(best, 1)
end

local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n < floor then n = floor end
if n < mined then n = mined end
while redis.call('ZSCORE', KEYS[2], s(n)) do n = n + 1 end
redis.call('SET', KEYS[1], s(n + 1))
return lease(n, 0)
`)

// commitScript removes the lease (and its holder) if the caller still holds it.
var commitScript = redis.NewScript(`
if redis.call('HGET', KEYS[3], ARGV[1]) == ARGV[2] then
  redis.call('ZREM', KEYS[2], ARGV[1])
  redis.call('HDEL', KEYS[3], ARGV[1])
  local h = redis.call('HGET', KEYS[4], ARGV[1])
  if h then redis.call('HDEL', KEYS[5], h) end
  redis.call('HDEL', KEYS[4], ARGV[1])
  return 1
end
return 0
`)

// releaseScript makes the lease expired at once (score 0) if the caller still holds it; the next
// Allocate hands the nonce out again, to anyone. The owner and holder entries go, so a later Commit of
// this lease is a no-op and the holder does not get this nonce back by name.
var releaseScript = redis.NewScript(`
if redis.call('HGET', KEYS[3], ARGV[1]) == ARGV[2] then
  redis.call('ZADD', KEYS[2], 'XX', 0, ARGV[1])
  redis.call('HDEL', KEYS[3], ARGV[1])
  local h = redis.call('HGET', KEYS[4], ARGV[1])
  if h then redis.call('HDEL', KEYS[5], h) end
  redis.call('HDEL', KEYS[4], ARGV[1])
  return 1
end
return 0
`)

// resyncScript sets the counter to ARGV[2] and drops expired leases at or above it (the counter hands
// those nonces out again in order). Live leases stay whatever their nonce: their holders are signing
// right now, and Allocate skips their nonces when the counter reaches them. Expired leases below the new
// counter stay too: they are holes to be filled. Returns the previous counter (-1 when there was none).
var resyncScript = redis.NewScript(`
local now = tonumber(ARGV[1])
local floor = tonumber(ARGV[2])
for _, m in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', '(' .. string.format('%d', now))) do
  if tonumber(m) >= floor then
    redis.call('ZREM', KEYS[2], m)
    redis.call('HDEL', KEYS[3], m)
    local h = redis.call('HGET', KEYS[4], m)
    if h then redis.call('HDEL', KEYS[5], h) end
    redis.call('HDEL', KEYS[4], m)
  end
end
local prev = redis.call('GET', KEYS[1])
redis.call('SET', KEYS[1], ARGV[2])
if prev then return prev end
return '-1'
`)

// peekScript reads the counter and the leases in one consistent snapshot.
var peekScript = redis.NewScript(`
local counter = redis.call('GET', KEYS[1]) or ''
return {counter, redis.call('ZRANGE', KEYS[2], 0, -1, 'WITHSCORES')}
`)

func newToken() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("nonce: lease token: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// Allocate leases the next nonce for (chainID, addr): the lowest expired or released lease if there is
// one, otherwise the counter raised to the floors. See the package doc for the caller's contract.
func (a *Allocator) Allocate(ctx context.Context, chainID uint64, addr common.Address, f Floors) (Lease, error) {
	return a.AllocateFor(ctx, chainID, addr, f, "")
}

// AllocateFor is Allocate on behalf of holder (the id of what is being signed): while holder's earlier
// lease has not been committed, released or handed to someone else, the same nonce comes back, so a
// retry after a crash reuses its nonce instead of leaving a hole.
func (a *Allocator) AllocateFor(ctx context.Context, chainID uint64, addr common.Address, f Floors, holder string) (Lease, error) {
	if f.Mined >= maxNonce || f.Next >= maxNonce {
		return Lease{}, fmt.Errorf("nonce: floors %+v out of range", f)
	}
	token, err := newToken()
	if err != nil {
		return Lease{}, err
	}
	k := a.keys(chainID, addr)
	now := a.now().UnixMilli()
	res, err := allocateScript.Run(ctx, a.rdb, k.list(), now, a.ttl.Milliseconds(),
		strconv.FormatUint(f.Mined, 10), strconv.FormatUint(f.Next, 10), token, holder).Slice()
	if err != nil {
		return Lease{}, fmt.Errorf("nonce: allocate for %s on chain %d: %w", addr.Hex(), chainID, err)
	}
	if len(res) != 3 {
		return Lease{}, fmt.Errorf("nonce: allocate: unexpected script result %v", res)
	}
	n, err1 := strconv.ParseUint(fmt.Sprint(res[0]), 10, 64)
	exp, err2 := strconv.ParseInt(fmt.Sprint(res[1]), 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return Lease{}, fmt.Errorf("nonce: allocate: unexpected script result %v: %w", res, err)
	}
	reclaimed, _ := res[2].(int64)
	return Lease{
		Nonce: n, ChainID: chainID, Address: addr,
		Expires: time.UnixMilli(exp), Reclaimed: reclaimed != 0, Resumed: reclaimed == 2,
		token: token, a: a,
	}, nil
}

// Resync forces the counter of (chainID, addr) to next, up or down, and returns the previous counter
// (ok=false when there was none). Use it at start and on NONCE_TOO_LOW / NONCE_TOO_HIGH, with next =
// max(DB max nonce + 1, chain pending nonce) computed afresh.
//
// Lowering the counter is what recovers from a counter that ran ahead of anything persisted (Redis
// lost its leases, say): the nonces from next up are handed out again. It never hands out a nonce that
// a live lease holds — Allocate skips leased nonces when the counter reaches them — and expired leases
// at or above next are dropped because the counter now covers them. Expired leases below next are
// kept: they are holes below persisted nonces and are filled first.
//
// next must not be below DB max nonce + 1: a persisted nonce handed out again only fails at the
// UNIQUE insert, one wasted signing per nonce.
func (a *Allocator) Resync(ctx context.Context, chainID uint64, addr common.Address, next uint64) (prev uint64, ok bool, err error) {
	if next >= maxNonce {
		return 0, false, fmt.Errorf("nonce: resync to %d out of range", next)
	}
	k := a.keys(chainID, addr)
	res, err := resyncScript.Run(ctx, a.rdb, k.list(), a.now().UnixMilli(), strconv.FormatUint(next, 10)).Text()
	if err != nil {
		return 0, false, fmt.Errorf("nonce: resync %s on chain %d: %w", addr.Hex(), chainID, err)
	}
	if res == "-1" {
		return 0, false, nil
	}
	prev, err = strconv.ParseUint(res, 10, 64)
	if err != nil {
		return 0, false, fmt.Errorf("nonce: resync: previous counter %q: %w", res, err)
	}
	return prev, true, nil
}

// LeaseInfo is one lease as Peek sees it.
type LeaseInfo struct {
	Nonce   uint64
	Expires time.Time // the zero time for a released lease
	Expired bool      // will be handed out again by the next Allocate
}

// State is a snapshot of one (chain, address) for ops and diagnostics.
type State struct {
	// Next is the counter: the lowest nonce never handed out (unless HasNext is false: never used).
	Next    uint64
	HasNext bool
	// Leases are the nonces handed out and neither committed nor dead, lowest first.
	Leases []LeaseInfo
}

// Peek reads the counter and the leases of (chainID, addr) without changing anything.
func (a *Allocator) Peek(ctx context.Context, chainID uint64, addr common.Address) (State, error) {
	k := a.keys(chainID, addr)
	res, err := peekScript.Run(ctx, a.rdb, k.list()).Slice()
	if err != nil {
		return State{}, fmt.Errorf("nonce: peek %s on chain %d: %w", addr.Hex(), chainID, err)
	}
	if len(res) != 2 {
		return State{}, fmt.Errorf("nonce: peek: unexpected script result %v", res)
	}
	var st State
	if s := fmt.Sprint(res[0]); s != "" {
		if st.Next, err = strconv.ParseUint(s, 10, 64); err != nil {
			return State{}, fmt.Errorf("nonce: peek: counter %q: %w", s, err)
		}
		st.HasNext = true
	}
	pairs, _ := res[1].([]any)
	now := a.now()
	for i := 0; i+1 < len(pairs); i += 2 {
		n, err1 := strconv.ParseUint(fmt.Sprint(pairs[i]), 10, 64)
		ms, err2 := strconv.ParseFloat(fmt.Sprint(pairs[i+1]), 64)
		if err := errors.Join(err1, err2); err != nil {
			return State{}, fmt.Errorf("nonce: peek: lease %v: %w", pairs[i:i+2], err)
		}
		li := LeaseInfo{Nonce: n}
		if ms > 0 {
			li.Expires = time.UnixMilli(int64(ms))
		}
		li.Expired = int64(ms) < now.UnixMilli()
		st.Leases = append(st.Leases, li)
	}
	sort.Slice(st.Leases, func(i, j int) bool { return st.Leases[i].Nonce < st.Leases[j].Nonce })
	return st, nil
}
