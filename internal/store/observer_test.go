package store_test

import (
	"context"
	"database/sql"
	"errors"
	"sync"
	"testing"

	"github.com/sluice-custody/sluice/internal/queue"
	"github.com/sluice-custody/sluice/internal/store"
	"github.com/sluice-custody/sluice/internal/testenv"
)

type recorder struct {
	mu  sync.Mutex
	got []store.Transitioned
}

func (r *recorder) Transitioned(t store.Transitioned) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, t)
}

func (r *recorder) take() []store.Transitioned {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.got
	r.got = nil
	return out
}

// TestObserverSeesCommittedTransitions checks the one place transitions are counted: acceptance and
// each change is reported with the withdrawal's chain, asset and acceptance time once its transaction
// commits, and a change whose transaction rolls back is never reported.
func TestObserverSeesCommittedTransitions(t *testing.T) {
	_, dsn := testenv.Store(t) // migrated
	ctx := context.Background()
	rec := &recorder{}
	s, err := store.Open(ctx, dsn, 4, store.WithObserver(rec))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c, err := s.EnsureAPIClient(ctx, "t", "key-"+testenv.UniqueName(t))
	if err != nil {
		t.Fatal(err)
	}
	w := newWithdrawal(t, s, c.ID, "ext-"+queue.NewID())
	got := rec.take()
	if len(got) != 1 || got[0].From != "" || got[0].To != store.Pending || got[0].Chain != "local" || got[0].Asset != "POL" ||
		!got[0].CreatedAt.Equal(w.CreatedAt) {
		t.Fatalf("acceptance reported as %+v, want one \"\"→PENDING on local/POL at %v", got, w.CreatedAt)
	}

	boom := errors.New("later step failed")
	err = s.InTx(ctx, func(tx *sql.Tx) error {
		if err := s.Transition(ctx, tx, w.ID, store.Pending, store.Signing, "t", store.ActorSigner, store.Change{}); err != nil {
			return err
		}
		if n := len(rec.take()); n != 0 {
			t.Errorf("%d transitions reported before commit", n)
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatal(err)
	}
	if got := rec.take(); len(got) != 0 {
		t.Fatalf("rolled-back transition reported: %+v", got)
	}

	if err := s.InTx(ctx, func(tx *sql.Tx) error {
		if err := s.Transition(ctx, tx, w.ID, store.Pending, store.Signing, "t", store.ActorSigner, store.Change{}); err != nil {
			return err
		}
		return s.Transition(ctx, tx, w.ID, store.Signing, store.Pending, "t", store.ActorSigner, store.Change{})
	}); err != nil {
		t.Fatal(err)
	}
	got = rec.take()
	if len(got) != 2 || got[0].From != store.Pending || got[0].To != store.Signing || got[1].To != store.Pending ||
		got[0].Chain != "local" || got[1].Asset != "POL" || !got[1].CreatedAt.Equal(w.CreatedAt) {
		t.Fatalf("committed transitions reported as %+v", got)
	}

	// A transaction the store did not begin: its outcome is out of sight, so the change is reported
	// when it is made, with its labels read inside that transaction.
	tx, err := s.DB.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Transition(ctx, tx, w.ID, store.Pending, store.Canceled, "t", store.ActorOperator, store.Change{}); err != nil {
		t.Fatal(err)
	}
	got = rec.take()
	_ = tx.Commit()
	if len(got) != 1 || got[0].To != store.Canceled || got[0].Chain != "local" || !got[0].CreatedAt.Equal(w.CreatedAt) {
		t.Fatalf("transition in an outside transaction reported as %+v", got)
	}
}
