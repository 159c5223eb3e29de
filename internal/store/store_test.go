package store_test

import (
	"context"
	"database/sql"
	"errors"
	"math/big"
	"reflect"
	"sync"
	"testing"

	"github.com/sluice-custody/sluice/internal/queue"
	"github.com/sluice-custody/sluice/internal/store"
	"github.com/sluice-custody/sluice/internal/testenv"
)

func newWithdrawal(t *testing.T, s *store.Store, clientID int64, ext string) *store.Withdrawal {
	t.Helper()
	w := &store.Withdrawal{ID: queue.NewID(), ClientID: clientID, ExternalID: ext, RequestHash: make([]byte, 32),
		Chain: "local", Asset: "POL", To: "0x000000000000000000000000000000000000dEaD", Amount: big.NewInt(5), CorrelationID: "c"}
	got, created, err := s.CreateWithdrawal(context.Background(), w, func(*sql.Tx) error { return nil })
	if err != nil || !created {
		t.Fatalf("create: %v %v", err, created)
	}
	return got
}

// Two workers racing to move one withdrawal: exactly one transition happens, the other gets
// ErrConflict, and the history holds exactly the one that happened.
func TestTransitionIsGuarded(t *testing.T) {
	s, _ := testenv.Store(t)
	ctx := context.Background()
	c, err := s.EnsureAPIClient(ctx, "t", "key-"+testenv.UniqueName(t))
	if err != nil {
		t.Fatal(err)
	}
	for round := 0; round < 10; round++ {
		w := newWithdrawal(t, s, c.ID, "ext-"+queue.NewID())
		const workers = 6
		var (
			wg        sync.WaitGroup
			mu        sync.Mutex
			won, lost int
		)
		for i := 0; i < workers; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				to := store.Signing
				if i%2 == 1 {
					to = store.Canceled // a cancel racing the signer
				}
				err := s.InTx(ctx, func(tx *sql.Tx) error {
					return s.Transition(ctx, tx, w.ID, store.Pending, to, "race", "test", store.Change{})
				})
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					won++
				case errors.Is(err, store.ErrConflict):
					lost++
				default:
					t.Errorf("transition: %v", err)
				}
			}(i)
		}
		wg.Wait()
		if won != 1 || lost != workers-1 {
			t.Fatalf("round %d: %d won, %d lost; want exactly one winner", round, won, lost)
		}
		h, err := s.History(ctx, w.ID)
		if err != nil || len(h) != 2 || h[0].To != store.Pending || h[1].From != store.Pending {
			t.Fatalf("history %+v (%v), want creation plus the one transition", h, err)
		}
		if got, _ := s.GetWithdrawal(ctx, w.ID); got.Status != h[1].To || got.Version != 1 {
			t.Fatalf("row %s v%d, history says %s", got.Status, got.Version, h[1].To)
		}
	}
}

// A replayed external_id returns the original withdrawal and runs no enqueue, so no second message.
func TestCreateWithdrawalReplay(t *testing.T) {
	s, _ := testenv.Store(t)
	ctx := context.Background()
	c, err := s.EnsureAPIClient(ctx, "t", "key-"+testenv.UniqueName(t))
	if err != nil {
		t.Fatal(err)
	}
	first := newWithdrawal(t, s, c.ID, "same")
	enqueued := false
	again := &store.Withdrawal{ID: queue.NewID(), ClientID: c.ID, ExternalID: "same", RequestHash: make([]byte, 32),
		Chain: "local", Asset: "POL", To: first.To, Amount: big.NewInt(5), CorrelationID: "c2"}
	got, created, err := s.CreateWithdrawal(ctx, again, func(*sql.Tx) error { enqueued = true; return nil })
	if err != nil || created || got.ID != first.ID {
		t.Fatalf("replay: %v created=%v id %s, want the original %s", err, created, got.ID, first.ID)
	}
	if enqueued {
		t.Fatal("a replay committed a second message")
	}
}

// A new withdrawal is returned without a read-back: it must be exactly the row a read returns.
func TestCreatedWithdrawalMatchesStoredRow(t *testing.T) {
	s, _ := testenv.Store(t)
	ctx := context.Background()
	c, err := s.EnsureAPIClient(ctx, "t", "key-"+testenv.UniqueName(t))
	if err != nil {
		t.Fatal(err)
	}
	created := newWithdrawal(t, s, c.ID, "fresh")
	stored, err := s.GetWithdrawal(ctx, created.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(created, stored) {
		t.Fatalf("returned %+v\nstored   %+v", created, stored)
	}
}
