package store_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/big"
	"testing"

	"github.com/sluice-custody/sluice/internal/store"
	"github.com/sluice-custody/sluice/internal/testenv"
)

func sentTx(nonce uint64, hash string) *store.SentTx {
	return &store.SentTx{Chain: "local", ChainID: 1, From: "0x00000000000000000000000000000000000000a1", Nonce: nonce,
		To: "0x00000000000000000000000000000000000000b2", Hash: hash, Raw: []byte{1}, GasLimit: 21000,
		MaxFeePerGas: big.NewInt(10), MaxPriorityFee: big.NewInt(1), Kind: "withdrawal", Source: "signer"}
}

func hash(b byte) string {
	h := make([]byte, 64)
	for i := range h {
		h[i] = "0123456789abcdef"[b%16]
	}
	return "0x" + string(h)
}

// A second payload at a recorded nonce is refused with ErrNonceTaken, which callers tell apart
// without reading the index's name.
func TestInsertSentTxNonceTaken(t *testing.T) {
	s, _ := testenv.Store(t)
	ctx := context.Background()
	insert := func(st *store.SentTx) error {
		return s.InTx(ctx, func(tx *sql.Tx) error { _, err := s.InsertSentTx(ctx, tx, st); return err })
	}
	if err := insert(sentTx(3, hash(1))); err != nil {
		t.Fatal(err)
	}
	if err := insert(sentTx(3, hash(2))); !errors.Is(err, store.ErrNonceTaken) {
		t.Fatalf("second payload at nonce 3: %v, want ErrNonceTaken", err)
	}
	if err := insert(sentTx(4, hash(2))); err != nil {
		t.Fatalf("next nonce: %v", err)
	}
}

// A new attempt replaces only the attempt it names, once, and every attempt stays recorded.
func TestReplaceAttempt(t *testing.T) {
	s, _ := testenv.Store(t)
	ctx := context.Background()
	first := sentTx(0, hash(1))
	if err := s.InTx(ctx, func(tx *sql.Tx) error { _, err := s.InsertSentTx(ctx, tx, first); return err }); err != nil {
		t.Fatal(err)
	}
	replaceIn := func(h, prev, status string) error {
		next := sentTx(0, h)
		next.ID, next.MaxFeePerGas, next.MaxPriorityFee = first.ID, big.NewInt(11), big.NewInt(2)
		return s.InTx(ctx, func(tx *sql.Tx) error { return s.ReplaceAttempt(ctx, tx, next, prev, status) })
	}
	replace := func(h, prev string) error { return replaceIn(h, prev, store.TxSigned) }
	if err := replace(hash(2), first.Hash); err != nil {
		t.Fatal(err)
	}
	if err := replace(hash(3), first.Hash); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("replacing an attempt already replaced: %v, want ErrConflict", err)
	}
	got, err := s.GetSentTx(ctx, first.ID)
	if err != nil || got.Hash != hash(2) || got.MaxFeePerGas.Int64() != 11 || got.MaxPriorityFee.Int64() != 2 || got.Status != store.TxSigned {
		t.Fatalf("row %+v (%v), want the second attempt", got, err)
	}
	hs, err := s.AttemptHashes(ctx, first.ID)
	if err != nil || len(hs) != 2 || hs[0] != hash(2) || hs[1] != hash(1) {
		t.Fatalf("attempts %v (%v)", hs, err)
	}
	if err := s.InTx(ctx, func(tx *sql.Tx) error {
		return s.SetSentTxStatus(ctx, tx, first.ID, store.TxSigned, store.TxBroadcasted)
	}); err != nil {
		t.Fatal(err)
	}
	if err := replace(hash(4), hash(2)); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("replacing a sent transaction as if SIGNED: %v, want ErrConflict", err)
	}
	// A fee bump of a broadcast transaction (recovery) names BROADCASTED; the status stays.
	if err := replaceIn(hash(4), hash(2), store.TxBroadcasted); err != nil {
		t.Fatalf("bump of a broadcast transaction: %v", err)
	}
	if err := replaceIn(hash(5), hash(2), store.TxBroadcasted); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("second bump of the same attempt: %v, want ErrConflict", err)
	}
	if got, err := s.GetSentTx(ctx, first.ID); err != nil || got.Hash != hash(4) || got.Status != store.TxBroadcasted {
		t.Fatalf("row %+v (%v), want the bump, still BROADCASTED", got, err)
	}
	// Settling marks the attempt the receipt names mined and every other one replaced.
	if err := s.InTx(ctx, func(tx *sql.Tx) error {
		return s.FinishSentTx(ctx, tx, first.ID, store.TxConfirmed, store.Receipt{Hash: hash(2), BlockNumber: 7, BlockHash: hash(9), Status: 1})
	}); err != nil {
		t.Fatal(err)
	}
	rows, err := s.DB.QueryContext(ctx, `SELECT tx_hash, status FROM tx_attempts WHERE sent_tx_id = ? ORDER BY id`, first.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var statuses []string
	for rows.Next() {
		var h, st string
		if err := rows.Scan(&h, &st); err != nil {
			t.Fatal(err)
		}
		statuses = append(statuses, st)
	}
	if want := []string{"replaced", "mined", "replaced"}; fmt.Sprint(statuses) != fmt.Sprint(want) {
		t.Fatalf("attempt statuses %v, want %v", statuses, want)
	}
}
