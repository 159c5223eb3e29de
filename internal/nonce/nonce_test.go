package nonce_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/redis/go-redis/v9"

	"github.com/sluice-custody/sluice/internal/nonce"
	"github.com/sluice-custody/sluice/internal/testenv"
)

const chainID = 31337

// setup returns a Redis client and a key prefix unique to the test; the keys go at cleanup.
func setup(t testing.TB) (*redis.Client, string) {
	t.Helper()
	rdb := testenv.Redis(t)
	prefix := "test:nonce:" + testenv.UniqueName(t)
	t.Cleanup(func() {
		ctx := context.Background()
		iter := rdb.Scan(ctx, 0, prefix+":*", 100).Iterator()
		for iter.Next(ctx) {
			rdb.Del(ctx, iter.Val())
		}
	})
	return rdb, prefix
}

func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func alloc(t testing.TB, a *nonce.Allocator, addr common.Address, f nonce.Floors) nonce.Lease {
	t.Helper()
	l, err := a.Allocate(ctx(t), chainID, addr, f)
	if err != nil {
		t.Fatalf("allocate: %v", err)
	}
	return l
}

func want(t testing.TB, l nonce.Lease, n uint64, reclaimed bool) {
	t.Helper()
	if l.Nonce != n || l.Reclaimed != reclaimed {
		t.Fatalf("got %v (reclaimed=%v), want nonce %d reclaimed=%v", l, l.Reclaimed, n, reclaimed)
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func leased(t testing.TB, a *nonce.Allocator, addr common.Address) []uint64 {
	t.Helper()
	st, err := a.Peek(ctx(t), chainID, addr)
	must(t, err)
	var out []uint64
	for _, l := range st.Leases {
		out = append(out, l.Nonce)
	}
	return out
}

func TestConcurrentAllocationsAreDistinctAndContiguous(t *testing.T) {
	rdb, prefix := setup(t)
	a := nonce.New(rdb, nonce.WithPrefix(prefix))
	addr := testenv.NewAccount(t).Address
	const workers, each, floor = 8, 200, 100
	var (
		mu   sync.Mutex
		got  []uint64
		wg   sync.WaitGroup
		errs = make(chan error, workers)
	)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := context.Background()
			for i := 0; i < each; i++ {
				l, err := a.Allocate(c, chainID, addr, nonce.Floors{Mined: 90, Next: floor})
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				got = append(got, l.Nonce)
				mu.Unlock()
				if err := l.Commit(c); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	slices.Sort(got)
	for i, n := range got {
		if n != uint64(floor+i) {
			t.Fatalf("nonce #%d is %d, want %d (duplicate or gap)", i, n, floor+i)
		}
	}
	st, err := a.Peek(ctx(t), chainID, addr)
	must(t, err)
	if !st.HasNext || st.Next != floor+workers*each || len(st.Leases) != 0 {
		t.Fatalf("after all commits: %+v, want counter %d and no leases", st, floor+workers*each)
	}
}

// A nonce allocated and never committed (the process died) is handed out again once its lease expires,
// before the counter moves on.
func TestExpiredLeaseIsReclaimed(t *testing.T) {
	rdb, prefix := setup(t)
	short := nonce.New(rdb, nonce.WithPrefix(prefix), nonce.WithTTL(50*time.Millisecond))
	long := nonce.New(rdb, nonce.WithPrefix(prefix), nonce.WithTTL(time.Minute))
	addr := testenv.NewAccount(t).Address

	dead := alloc(t, short, addr, nonce.Floors{Next: 7})
	want(t, dead, 7, false)
	time.Sleep(150 * time.Millisecond)
	again := alloc(t, long, addr, nonce.Floors{Next: 7})
	want(t, again, 7, true)
	want(t, alloc(t, long, addr, nonce.Floors{Next: 7}), 8, false)

	// The first holder wakes up late: its Commit and Release must not touch the new holder's lease.
	must(t, dead.Release(ctx(t)))
	must(t, dead.Commit(ctx(t)))
	if got := leased(t, long, addr); !slices.Equal(got, []uint64{7, 8}) {
		t.Fatalf("leases %v, want [7 8]: a stale holder changed someone else's lease", got)
	}
	want(t, alloc(t, long, addr, nonce.Floors{Next: 7}), 9, false)
	must(t, again.Commit(ctx(t)))
	if got := leased(t, long, addr); !slices.Equal(got, []uint64{8, 9}) {
		t.Fatalf("leases %v, want [8 9]", got)
	}
}

// With several holes the lowest is filled first; committed nonces are never handed out again.
func TestLowestExpiredFirst(t *testing.T) {
	rdb, prefix := setup(t)
	var now atomic.Int64
	now.Store(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli())
	clock := func() time.Time { return time.UnixMilli(now.Load()) }
	a := nonce.New(rdb, nonce.WithPrefix(prefix), nonce.WithTTL(time.Second), nonce.WithClock(clock))
	addr := testenv.NewAccount(t).Address

	var ls []nonce.Lease
	for i := 0; i < 4; i++ {
		ls = append(ls, alloc(t, a, addr, nonce.Floors{}))
	}
	must(t, ls[1].Commit(ctx(t)))
	now.Add(500)
	must(t, ls[3].Commit(ctx(t)))
	now.Add(1000) // 0 and 2 expired
	want(t, alloc(t, a, addr, nonce.Floors{}), 0, true)
	want(t, alloc(t, a, addr, nonce.Floors{}), 2, true)
	want(t, alloc(t, a, addr, nonce.Floors{}), 4, false)

	st, err := a.Peek(ctx(t), chainID, addr)
	must(t, err)
	if !st.HasNext || st.Next != 5 || len(st.Leases) != 3 || st.Leases[0].Expired {
		t.Fatalf("peek %+v", st)
	}
}

func TestReleaseMakesNonceReusableAtOnce(t *testing.T) {
	rdb, prefix := setup(t)
	a := nonce.New(rdb, nonce.WithPrefix(prefix))
	addr := testenv.NewAccount(t).Address

	first := alloc(t, a, addr, nonce.Floors{})
	want(t, alloc(t, a, addr, nonce.Floors{}), 1, false)
	must(t, first.Release(ctx(t)))
	st, err := a.Peek(ctx(t), chainID, addr)
	must(t, err)
	if len(st.Leases) != 2 || !st.Leases[0].Expired || !st.Leases[0].Expires.IsZero() {
		t.Fatalf("released lease not shown as expired: %+v", st)
	}
	second := alloc(t, a, addr, nonce.Floors{})
	want(t, second, 0, true)
	// Releasing twice must not take the nonce from its new holder.
	must(t, first.Release(ctx(t)))
	want(t, alloc(t, a, addr, nonce.Floors{}), 2, false)

	// Release after Commit is a no-op.
	must(t, second.Commit(ctx(t)))
	must(t, second.Release(ctx(t)))
	want(t, alloc(t, a, addr, nonce.Floors{}), 3, false)
}

func TestCommitPreventsReuse(t *testing.T) {
	rdb, prefix := setup(t)
	a := nonce.New(rdb, nonce.WithPrefix(prefix), nonce.WithTTL(50*time.Millisecond))
	addr := testenv.NewAccount(t).Address

	l := alloc(t, a, addr, nonce.Floors{})
	must(t, l.Commit(ctx(t)))
	must(t, l.Commit(ctx(t))) // idempotent
	time.Sleep(150 * time.Millisecond)
	next := alloc(t, a, addr, nonce.Floors{})
	want(t, next, 1, false)
	must(t, next.Commit(ctx(t)))
}

func TestCounterFloorRaisesCounter(t *testing.T) {
	rdb, prefix := setup(t)
	a := nonce.New(rdb, nonce.WithPrefix(prefix))
	addr := testenv.NewAccount(t).Address

	l := alloc(t, a, addr, nonce.Floors{})
	want(t, l, 0, false)
	must(t, l.Commit(ctx(t)))
	want(t, alloc(t, a, addr, nonce.Floors{Next: 50}), 50, false)
	// A lower floor (a lagging node, say) never lowers the counter.
	want(t, alloc(t, a, addr, nonce.Floors{Next: 10, Mined: 5}), 51, false)
	// The mined nonce is a floor too.
	want(t, alloc(t, a, addr, nonce.Floors{Mined: 60}), 60, false)
}

func TestLeasesBelowMinedAreDropped(t *testing.T) {
	rdb, prefix := setup(t)
	short := nonce.New(rdb, nonce.WithPrefix(prefix), nonce.WithTTL(50*time.Millisecond))
	long := nonce.New(rdb, nonce.WithPrefix(prefix))
	addr := testenv.NewAccount(t).Address

	var ls []nonce.Lease
	for i := 0; i < 3; i++ {
		ls = append(ls, alloc(t, short, addr, nonce.Floors{}))
	}
	live := alloc(t, long, addr, nonce.Floors{}) // nonce 3, live
	time.Sleep(150 * time.Millisecond)
	// The chain has mined nonces 0 and 1 (sent by a holder that never committed): they are dead.
	want(t, alloc(t, long, addr, nonce.Floors{Mined: 2, Next: 2}), 2, true)
	if got := leased(t, long, addr); !slices.Equal(got, []uint64{2, 3}) {
		t.Fatalf("leases %v, want [2 3]", got)
	}
	// Dead leases are never returned, even when released by their late holders.
	must(t, ls[0].Release(ctx(t)))
	must(t, ls[1].Commit(ctx(t)))
	want(t, alloc(t, long, addr, nonce.Floors{Mined: 2, Next: 2}), 4, false)
	// A live lease below the mined nonce is dead too (its tx can only fail now).
	want(t, alloc(t, long, addr, nonce.Floors{Mined: 4, Next: 5}), 5, false)
	if got := leased(t, long, addr); !slices.Equal(got, []uint64{4, 5}) {
		t.Fatalf("leases %v, want [4 5]", got)
	}
	must(t, live.Commit(ctx(t)))
}

func TestResync(t *testing.T) {
	rdb, prefix := setup(t)
	a := nonce.New(rdb, nonce.WithPrefix(prefix))
	addr := testenv.NewAccount(t).Address
	c := ctx(t)

	if _, ok, err := a.Resync(c, chainID, addr, 3); err != nil || ok {
		t.Fatalf("first resync: ok=%v err=%v, want no previous counter", ok, err)
	}
	want(t, alloc(t, a, addr, nonce.Floors{}), 3, false)

	// Raise (NONCE_TOO_LOW: the address was used elsewhere).
	prev, ok, err := a.Resync(c, chainID, addr, 10)
	if err != nil || !ok || prev != 4 {
		t.Fatalf("resync: prev=%d ok=%v err=%v, want 4", prev, ok, err)
	}
	var ls []nonce.Lease
	for i := 0; i < 5; i++ {
		ls = append(ls, alloc(t, a, addr, nonce.Floors{}))
	}
	want(t, ls[0], 10, false)
	want(t, ls[4], 14, false)
	must(t, ls[0].Commit(c)) // 10 persisted
	must(t, ls[3].Release(c))
	must(t, ls[4].Release(c))
	// Lower (NONCE_TOO_HIGH: DB max is 10, pending 11): 11 and 12 are live, 13 and 14 released.
	if prev, _, err := a.Resync(c, chainID, addr, 11); err != nil || prev != 15 {
		t.Fatalf("resync down: prev=%d err=%v", prev, err)
	}
	// The live leases 11 and 12 are never handed out twice; 13 comes from the counter, not as a
	// reclaimed lease, because the released leases above the new counter were dropped.
	want(t, alloc(t, a, addr, nonce.Floors{}), 13, false)
	want(t, alloc(t, a, addr, nonce.Floors{}), 14, false)
	want(t, alloc(t, a, addr, nonce.Floors{}), 15, false)

	// An expired lease below the new counter is a hole: it stays and is filled first.
	must(t, ls[1].Release(c)) // 11
	if _, _, err := a.Resync(c, chainID, addr, 20); err != nil {
		t.Fatal(err)
	}
	want(t, alloc(t, a, addr, nonce.Floors{}), 11, true)
	want(t, alloc(t, a, addr, nonce.Floors{}), 20, false)
}

func TestChainsAndAddressesAreIndependent(t *testing.T) {
	rdb, prefix := setup(t)
	a := nonce.New(rdb, nonce.WithPrefix(prefix))
	x, y := testenv.NewAccount(t).Address, testenv.NewAccount(t).Address
	c := ctx(t)
	for round := uint64(0); round < 3; round++ {
		for _, id := range []uint64{1, 137} {
			for _, addr := range []common.Address{x, y} {
				l, err := a.Allocate(c, id, addr, nonce.Floors{Next: id})
				must(t, err)
				if l.Nonce != id+round || l.ChainID != id || l.Address != addr {
					t.Fatalf("chain %d %s round %d: got %v", id, addr.Hex(), round, l)
				}
			}
		}
	}
	// The keys of one (chain, address) share a hash tag and so one Redis Cluster slot.
	keys, err := rdb.Keys(c, prefix+":*").Result()
	must(t, err)
	tags := map[string]int{}
	for _, k := range keys {
		i, j := strings.Index(k, "{"), strings.Index(k, "}")
		if i < 0 || j < i {
			t.Fatalf("key %q has no hash tag", k)
		}
		tags[k[i:j+1]]++
	}
	if len(tags) != 4 {
		t.Fatalf("hash tags %v, want 4 (one per chain and address)", tags)
	}
	for tag, n := range tags {
		if n != 3 {
			t.Fatalf("tag %s has %d keys, want 3", tag, n)
		}
	}
}

func BenchmarkAllocateCommit(b *testing.B) {
	rdb, prefix := setup(b)
	a := nonce.New(rdb, nonce.WithPrefix(prefix))
	addr := testenv.NewAccount(b).Address
	c := context.Background()
	b.Run("serial", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			l, err := a.Allocate(c, chainID, addr, nonce.Floors{})
			if err != nil {
				b.Fatal(err)
			}
			if err := l.Commit(c); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.SetParallelism(4)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				l, err := a.Allocate(c, chainID, addr, nonce.Floors{})
				if err != nil {
					b.Error(err)
					return
				}
				if err := l.Commit(c); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// A holder that allocated and died comes back (its request redelivered) and gets its own nonce again,
// live or expired, so the crash leaves no hole; nobody else gets that nonce while the holder has it, and
// once the holder has committed or released it, or it went to someone else, the holder gets a fresh one.
func TestHolderResumesItsNonce(t *testing.T) {
	rdb, prefix := setup(t)
	var now time.Time = time.Unix(1_000_000, 0)
	a := nonce.New(rdb, nonce.WithPrefix(prefix), nonce.WithTTL(time.Minute), nonce.WithClock(func() time.Time { return now }))
	addr := testenv.NewAccount(t).Address
	lease := func(holder string) nonce.Lease {
		t.Helper()
		l, err := a.AllocateFor(ctx(t), chainID, addr, nonce.Floors{}, holder)
		must(t, err)
		return l
	}
	w1 := lease("w1") // the signer dies holding nonce 0
	if w1.Nonce != 0 {
		t.Fatalf("first nonce %d", w1.Nonce)
	}
	if other := lease("w2"); other.Nonce != 1 {
		t.Fatalf("another holder got %d while w1 holds 0, want 1", other.Nonce)
	}
	again := lease("w1") // the redelivery, lease still live
	if again.Nonce != 0 || !again.Resumed {
		t.Fatalf("w1 again got %d (resumed %v), want its own 0", again.Nonce, again.Resumed)
	}
	must(t, w1.Commit(ctx(t))) // the dead holder's token is stale: nothing happens
	now = now.Add(2 * time.Minute)
	if back := lease("w1"); back.Nonce != 0 { // expired but not handed to anyone: still w1's
		t.Fatalf("w1 after expiry got %d, want 0", back.Nonce)
	} else {
		must(t, back.Commit(ctx(t)))
	}
	if fresh := lease("w1"); fresh.Nonce == 0 {
		t.Fatal("w1 got its committed nonce back")
	}
	// A released nonce is anyone's: the holder does not get it back by name.
	w3 := lease("w3")
	must(t, w3.Release(ctx(t)))
	if got := lease("w4"); got.Nonce != w3.Nonce {
		t.Fatalf("released %d not reused first: got %d", w3.Nonce, got.Nonce)
	}
	if got := lease("w3"); got.Nonce == w3.Nonce {
		t.Fatalf("w3 took back %d, which now belongs to w4", got.Nonce)
	}
}
