package store_test

import (
	"context"
	"database/sql"
	"errors"
	"math/big"
	"testing"

	"github.com/sluice-custody/sluice/internal/store"
	"github.com/sluice-custody/sluice/internal/testenv"
)

// A transaction confirmed by its first attempt after a bump is re-opened once, only while CONFIRMED in
// the block the caller saw leave the chain, with the mined attempt's bytes back as its current ones;
// the watch lists it while CONFIRMED in its window and no longer once re-opened.
func TestReopenReorged(t *testing.T) {
	s, _ := testenv.Store(t)
	ctx := context.Background()
	first := sentTx(7, hash(1))
	first.Raw = []byte("first attempt")
	if err := s.InTx(ctx, func(tx *sql.Tx) error { _, err := s.InsertSentTx(ctx, tx, first); return err }); err != nil {
		t.Fatal(err)
	}
	if err := s.InTx(ctx, func(tx *sql.Tx) error {
		return s.SetSentTxStatus(ctx, tx, first.ID, store.TxSigned, store.TxBroadcasted)
	}); err != nil {
		t.Fatal(err)
	}
	next := sentTx(7, hash(2))
	next.ID, next.Raw, next.MaxFeePerGas, next.MaxPriorityFee = first.ID, []byte("bump"), big.NewInt(11), big.NewInt(2)
	if err := s.InTx(ctx, func(tx *sql.Tx) error { return s.ReplaceAttempt(ctx, tx, next, first.Hash, store.TxBroadcasted) }); err != nil {
		t.Fatal(err)
	}
	oldBlock := hash(9)
	if err := s.InTx(ctx, func(tx *sql.Tx) error {
		return s.FinishSentTx(ctx, tx, first.ID, store.TxConfirmed, store.Receipt{Hash: first.Hash, BlockNumber: 40, BlockHash: oldBlock, Status: 1, GasUsed: 21000})
	}); err != nil {
		t.Fatal(err)
	}
	for from, want := range map[uint64]int{40: 1, 41: 0} {
		got, err := s.ConfirmedSince(ctx, 1, from)
		if err != nil || len(got) != want {
			t.Fatalf("confirmed since %d: %d (%v), want %d", from, len(got), err, want)
		}
		if want == 1 && (got[0].ID != first.ID || got[0].BlockHash != oldBlock || got[0].Hash != first.Hash || got[0].BlockNumber != 40) {
			t.Fatalf("watched %+v", got[0])
		}
	}
	reopen := func(blockHash string) error {
		return s.InTx(ctx, func(tx *sql.Tx) error {
			_, err := s.ReopenReorged(ctx, tx, first.ID, blockHash, "reorged: test")
			return err
		})
	}
	if err := reopen(hash(8)); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("re-open in a block it was not confirmed in: %v, want ErrConflict", err)
	}
	if err := reopen(oldBlock); err != nil {
		t.Fatal(err)
	}
	if err := reopen(oldBlock); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("second re-open (another instance): %v, want ErrConflict", err)
	}
	got, err := s.GetSentTx(ctx, first.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != store.TxBroadcasted || got.Hash != first.Hash || string(got.Raw) != "first attempt" || got.BlockNumber != nil ||
		got.BlockHash != "" || got.ReceiptStatus != nil || got.MaxFeePerGas.Int64() != 10 {
		t.Fatalf("re-opened %+v: want BROADCASTED with the mined attempt's bytes and no receipt", got)
	}
	if w, err := s.ConfirmedSince(ctx, 1, 0); err != nil || len(w) != 0 {
		t.Fatalf("watch after re-open: %d (%v), want none", len(w), err)
	}
	if byAttempt, err := s.SentTxOfAttempt(ctx, next.Hash); err != nil || byAttempt.ID != first.ID {
		t.Fatalf("sent tx of attempt %s: %v (%v)", next.Hash, byAttempt, err)
	}
	if _, err := s.SentTxOfAttempt(ctx, hash(5)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown attempt: %v, want ErrNotFound", err)
	}
	// Confirmed again, by the bump this time: the watch has it again, in its new block.
	if err := s.InTx(ctx, func(tx *sql.Tx) error {
		return s.FinishSentTx(ctx, tx, first.ID, store.TxConfirmed, store.Receipt{Hash: next.Hash, BlockNumber: 41, BlockHash: hash(10), Status: 1, GasUsed: 21000})
	}); err != nil {
		t.Fatal(err)
	}
	if w, err := s.ConfirmedSince(ctx, 1, 41); err != nil || len(w) != 1 || w[0].BlockHash != hash(10) {
		t.Fatalf("watch after re-confirmation: %+v (%v)", w, err)
	}
}
