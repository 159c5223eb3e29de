package nonce_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sluice-custody/sluice/internal/nonce"
	"github.com/sluice-custody/sluice/internal/testenv"
)

// Two signer instances, each with its own Redis connection and allocator, race for the nonce a third,
// dead signer left leased and expired, round after round: exactly one of them gets it back (Reclaimed),
// the other the next fresh nonce; the dead signer waking up late changes nothing; over every round the
// nonces handed out are distinct and contiguous. The Lua scripts are the guard: each runs atomically.
func TestRaceTwoAllocatorsReclaimAnExpiredLeaseOnce(t *testing.T) {
	rdb, prefix := setup(t)
	other := redis.NewClient(&redis.Options{Addr: testenv.RedisAddr(t)})
	t.Cleanup(func() { other.Close() })
	signers := [2]*nonce.Allocator{nonce.New(rdb, nonce.WithPrefix(prefix)), nonce.New(other, nonce.WithPrefix(prefix))}
	// The dead signer's leases are taken two minutes ago: expired by now.
	dead := nonce.New(rdb, nonce.WithPrefix(prefix), nonce.WithClock(func() time.Time { return time.Now().Add(-2 * time.Minute) }))
	addr := testenv.NewAccount(t).Address
	const rounds = 50
	var all []uint64
	for round := range rounds {
		lost := alloc(t, dead, addr, nonce.Floors{})
		var (
			got  [2]nonce.Lease
			errs [2]error
			wg   sync.WaitGroup
			go_  = make(chan struct{})
		)
		for i, a := range signers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-go_
				got[i], errs[i] = a.Allocate(context.Background(), chainID, addr, nonce.Floors{})
			}()
		}
		close(go_)
		wg.Wait()
		must(t, errs[0])
		must(t, errs[1])
		if got[0].Reclaimed == got[1].Reclaimed || got[0].Nonce == got[1].Nonce {
			t.Fatalf("round %d: %v and %v: want exactly one to reclaim nonce %d", round, got[0], got[1], lost.Nonce)
		}
		for _, l := range got {
			if l.Reclaimed && l.Nonce != lost.Nonce {
				t.Fatalf("round %d: reclaimed %v, the expired lease was nonce %d", round, l, lost.Nonce)
			}
		}
		// The dead signer wakes up: its commit and release belong to a lease that is someone else's now.
		must(t, lost.Release(ctx(t)))
		must(t, lost.Commit(ctx(t)))
		if l := leased(t, signers[0], addr); !slices.Contains(l, lost.Nonce) {
			t.Fatalf("round %d: leases %v: the dead signer's late commit took nonce %d from its new holder", round, l, lost.Nonce)
		}
		for _, l := range got {
			must(t, l.Commit(ctx(t)))
			all = append(all, l.Nonce)
		}
	}
	slices.Sort(all)
	for i, n := range all {
		if n != uint64(i) {
			t.Fatalf("nonce #%d is %d: a nonce was handed out twice or skipped (%v)", i, n, all)
		}
	}
}
