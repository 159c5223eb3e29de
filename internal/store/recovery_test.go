package store_test

import (
	"context"
	"database/sql"
	"errors"
	"testing"

	"github.com/sluice-custody/sluice/internal/queue"
	"github.com/sluice-custody/sluice/internal/store"
	"github.com/sluice-custody/sluice/internal/testenv"
)

// A wallet has at most one open freeze; unfreezing closes it, a second unfreeze finds none, and it can
// be frozen again afterwards.
func TestWalletFreezeLifecycle(t *testing.T) {
	s, _ := testenv.Store(t)
	ctx := context.Background()
	const chain, addr = "local", "0x000000000000000000000000000000000000dEaD"
	freeze := func(reason string) bool {
		var ok bool
		if err := s.InTx(ctx, func(tx *sql.Tx) (err error) {
			ok, err = s.FreezeWallet(ctx, tx, chain, addr, reason, "recovery")
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if !freeze("first") || freeze("second") {
		t.Fatal("want the first freeze to take and the second to find it frozen")
	}
	if f, err := s.WalletFreeze(ctx, s.DB, chain, addr); err != nil || f == nil || f.Reason != "first" {
		t.Fatalf("freeze %+v (%v)", f, err)
	}
	if err := s.UnfreezeWallet(ctx, chain, addr, "ops", "checked"); err != nil {
		t.Fatal(err)
	}
	if err := s.UnfreezeWallet(ctx, chain, addr, "ops", "again"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("second unfreeze %v, want ErrNotFound", err)
	}
	if f, err := s.WalletFreeze(ctx, s.DB, chain, addr); err != nil || f != nil {
		t.Fatalf("after unfreeze: %+v (%v)", f, err)
	}
	if !freeze("third") {
		t.Fatal("an unfrozen wallet could not be frozen again")
	}
}

// One finishing decision per DLQ message; waiting decisions are not limited. NoteWaiting writes a reason
// once while it is the latest history row.
func TestDecisionsAndWaitingNotes(t *testing.T) {
	s, _ := testenv.Store(t)
	ctx := context.Background()
	rec := func(d store.Decision) error {
		return s.InTx(ctx, func(tx *sql.Tx) error { return s.RecordDecision(ctx, tx, d) })
	}
	for range 2 {
		if err := rec(store.Decision{Queue: "request-dlq", MessageID: "m1", Action: "wait", Reason: "not final"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := rec(store.Decision{Queue: "request-dlq", MessageID: "m1", Action: "redrive", Reason: "r", Done: true}); err != nil {
		t.Fatal(err)
	}
	if err := rec(store.Decision{Queue: "request-dlq", MessageID: "m1", Action: "parked", Reason: "r", Done: true}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("second finishing decision: %v, want ErrConflict", err)
	}
	if a, ok, err := s.DecisionTaken(ctx, "request-dlq", "m1"); err != nil || !ok || a != "redrive" {
		t.Fatalf("taken %q %v (%v)", a, ok, err)
	}
	if ds, err := s.Decisions(ctx, "request-dlq", "m1"); err != nil || len(ds) != 3 {
		t.Fatalf("decisions %d (%v), want 3", len(ds), err)
	}

	c, err := s.EnsureAPIClient(ctx, "t", "key-"+testenv.UniqueName(t))
	if err != nil {
		t.Fatal(err)
	}
	w := newWithdrawal(t, s, c.ID, "ext-"+queue.NewID())
	for range 3 {
		if err := s.NoteWaiting(ctx, "local", w.ID, "wallet frozen", store.ActorSigner); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.NoteWaiting(ctx, "local", "", "wallet frozen", store.ActorSigner); err != nil {
		t.Fatal(err)
	}
	h, err := s.History(ctx, w.ID)
	if err != nil || len(h) != 2 || h[1].Reason != "wallet frozen" || h[1].From != store.Pending || h[1].To != store.Pending {
		t.Fatalf("history %+v (%v), want accepted then one waiting note", h, err)
	}
}
