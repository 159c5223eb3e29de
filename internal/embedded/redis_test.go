package embedded_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/redis/go-redis/v9"

	"github.com/sluice-custody/sluice/internal/embedded"
	"github.com/sluice-custody/sluice/internal/nonce"
)

const chainID = 31337

func startRedis(t testing.TB) *redis.Client {
	t.Helper()
	start := time.Now()
	r, err := embedded.StartRedis(embedded.RedisOptions{})
	if err != nil {
		t.Fatalf("start embedded redis: %v", err)
	}
	t.Logf("embedded redis on %s started in %v", r.Addr(), time.Since(start))
	t.Cleanup(func() { r.Close() })
	c := redis.NewClient(&redis.Options{Addr: r.Addr()})
	t.Cleanup(func() { c.Close() })
	return c
}

func allocate(t testing.TB, a *nonce.Allocator, addr common.Address, f nonce.Floors) nonce.Lease {
	t.Helper()
	l, err := a.Allocate(ctxT(t, 10*time.Second), chainID, addr, f)
	if err != nil {
		t.Fatalf("allocate: %v", err)
	}
	return l
}

func wantLease(t testing.TB, l nonce.Lease, n uint64, reclaimed bool) {
	t.Helper()
	if l.Nonce != n || l.Reclaimed != reclaimed {
		t.Fatalf("got %v (reclaimed=%v), want nonce %d reclaimed=%v", l, l.Reclaimed, n, reclaimed)
	}
}

func leasedNonces(t testing.TB, a *nonce.Allocator, addr common.Address) []uint64 {
	t.Helper()
	st, err := a.Peek(ctxT(t, 10*time.Second), chainID, addr)
	if err != nil {
		t.Fatal(err)
	}
	var out []uint64
	for _, l := range st.Leases {
		out = append(out, l.Nonce)
	}
	return out
}

func TestNonceConcurrentAllocationsDistinctAndContiguous(t *testing.T) {
	rdb := startRedis(t)
	a := nonce.New(rdb)
	addr := common.HexToAddress("0x1111111111111111111111111111111111111111")
	const workers, each, floor = 8, 200, 100
	var (
		mu  sync.Mutex
		got []uint64
		wg  sync.WaitGroup
	)
	start := time.Now()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := context.Background()
			for range each {
				l, err := a.Allocate(c, chainID, addr, nonce.Floors{Mined: 90, Next: floor})
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				got = append(got, l.Nonce)
				mu.Unlock()
				if err := l.Commit(c); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	t.Logf("%d allocate+commit pairs from %d goroutines in %v", workers*each, workers, time.Since(start))
	slices.Sort(got)
	for i, n := range got {
		if n != uint64(floor+i) {
			t.Fatalf("nonce #%d is %d, want %d (duplicate or gap)", i, n, floor+i)
		}
	}
	st, err := a.Peek(ctxT(t, 10*time.Second), chainID, addr)
	if err != nil || !st.HasNext || st.Next != floor+workers*each || len(st.Leases) != 0 {
		t.Fatalf("after all commits: %+v %v", st, err)
	}
}

// Lease expiry is the client's clock compared inside the script: a dead holder's nonce comes back on
// the wall clock, with no Redis TTL involved.
func TestNonceExpiredLeaseIsReclaimed(t *testing.T) {
	rdb := startRedis(t)
	short := nonce.New(rdb, nonce.WithTTL(50*time.Millisecond))
	long := nonce.New(rdb, nonce.WithTTL(time.Minute))
	addr := common.HexToAddress("0x2222222222222222222222222222222222222222")
	ctx := ctxT(t, 10*time.Second)

	dead := allocate(t, short, addr, nonce.Floors{Next: 7})
	wantLease(t, dead, 7, false)
	time.Sleep(150 * time.Millisecond)
	again := allocate(t, long, addr, nonce.Floors{Next: 7})
	wantLease(t, again, 7, true)
	wantLease(t, allocate(t, long, addr, nonce.Floors{Next: 7}), 8, false)
	// The late first holder can neither release nor commit the new holder's lease.
	if err := dead.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if err := dead.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if got := leasedNonces(t, long, addr); !slices.Equal(got, []uint64{7, 8}) {
		t.Fatalf("leases %v, want [7 8]", got)
	}
	if err := again.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if got := leasedNonces(t, long, addr); !slices.Equal(got, []uint64{8}) {
		t.Fatalf("leases %v, want [8]", got)
	}
}

func TestNonceReleaseAndCommit(t *testing.T) {
	rdb := startRedis(t)
	a := nonce.New(rdb)
	addr := common.HexToAddress("0x3333333333333333333333333333333333333333")
	ctx := ctxT(t, 10*time.Second)

	first := allocate(t, a, addr, nonce.Floors{})
	wantLease(t, allocate(t, a, addr, nonce.Floors{}), 1, false)
	if err := first.Release(ctx); err != nil {
		t.Fatal(err)
	}
	second := allocate(t, a, addr, nonce.Floors{})
	wantLease(t, second, 0, true)
	if err := first.Release(ctx); err != nil { // twice: must not take it from its new holder
		t.Fatal(err)
	}
	wantLease(t, allocate(t, a, addr, nonce.Floors{}), 2, false)
	if err := second.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := second.Release(ctx); err != nil { // after Commit: a no-op
		t.Fatal(err)
	}
	wantLease(t, allocate(t, a, addr, nonce.Floors{}), 3, false)
	// Floors raise the counter; Resync moves it both ways.
	wantLease(t, allocate(t, a, addr, nonce.Floors{Next: 50}), 50, false)
	if prev, ok, err := a.Resync(ctx, chainID, addr, 40); err != nil || !ok || prev != 51 {
		t.Fatalf("resync: %d %v %v", prev, ok, err)
	}
	wantLease(t, allocate(t, a, addr, nonce.Floors{}), 40, false)
}

// Keys with a TTL expire on the wall clock, as on a real server (miniredis needs ClockTTL for that).
func TestRedisTTLFollowsTheClock(t *testing.T) {
	rdb := startRedis(t)
	ctx := ctxT(t, 10*time.Second)
	if err := rdb.Set(ctx, "k", "v", 100*time.Millisecond).Err(); err != nil {
		t.Fatal(err)
	}
	if v, err := rdb.Get(ctx, "k").Result(); err != nil || v != "v" {
		t.Fatalf("get %q %v", v, err)
	}
	time.Sleep(250 * time.Millisecond)
	if err := rdb.Get(ctx, "k").Err(); err != redis.Nil {
		t.Fatalf("key with a 100 ms TTL still there after 250 ms: %v", err)
	}
}
