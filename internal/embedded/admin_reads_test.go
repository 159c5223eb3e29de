package embedded_test

import (
	"database/sql"
	"math/big"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/sluice-custody/sluice/internal/embedded"
	"github.com/sluice-custody/sluice/internal/store"
)

// The admin API's reads and records (store/admin_reads.go) run on the embedded server too: `sluice dev`
// serves them.
func TestAdminReadsOnEmbedded(t *testing.T) {
	m := startMySQL(t, embedded.MySQLOptions{})
	s := migrated(t, m)
	ctx := ctxT(t, 60*time.Second)
	c, err := s.EnsureAPIClient(ctx, "acme", "key-acme-0123456789")
	if err != nil {
		t.Fatal(err)
	}
	id := uuid.Must(uuid.NewV7()).String()
	w := &store.Withdrawal{ID: id, ClientID: c.ID, ExternalID: "e1", RequestHash: make([]byte, 32), Chain: "local", Asset: "POL",
		To: "0x00000000000000000000000000000000000000aa", Amount: big.NewInt(5), CorrelationID: "c1"}
	if _, _, err := s.CreateWithdrawal(ctx, w, func(*sql.Tx) error { return nil }); err != nil {
		t.Fatal(err)
	}
	ws, err := s.SearchWithdrawals(ctx, store.AdminFilter{Address: w.To, Status: store.Pending, Chain: "local", Since: time.Now().Add(-time.Hour), Limit: 10})
	if err != nil || len(ws) != 1 || ws[0].Client != "acme" {
		t.Fatalf("search: %+v %v", ws, err)
	}
	sum, err := s.Summary(ctx)
	if err != nil || len(sum) != 1 || sum[0].Counts["PENDING"] != 1 || sum[0].OldestOpen.IsZero() {
		t.Fatalf("summary: %+v %v", sum, err)
	}
	bs, err := s.Activity(ctx, time.Now().Add(-time.Hour))
	if err != nil || len(bs) != 1 || bs[0].Created != 1 {
		t.Fatalf("activity: %+v %v", bs, err)
	}
	if _, err := s.GasSince(ctx, time.Now().Add(-24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := s.InTx(ctx, func(tx *sql.Tx) error {
		return s.Park(ctx, tx, store.Parked{Queue: "request-dlq", MessageID: "m1", Body: []byte("{}"), Reason: "x"})
	}); err != nil {
		t.Fatal(err)
	}
	ps, err := s.ParkedList(ctx, "request-dlq", "", false, 0, 10)
	if err != nil || len(ps) != 1 {
		t.Fatalf("parked: %+v %v", ps, err)
	}
	var ok bool
	if err := s.InTx(ctx, func(tx *sql.Tx) (err error) { ok, err = s.ResolveParked(ctx, tx, ps[0].ID, "discarded", "a+b"); return }); err != nil || !ok {
		t.Fatalf("resolve: %v %v", ok, err)
	}
	if p, err := s.ParkedByID(ctx, ps[0].ID); err != nil || p.Resolution != "discarded" || p.ResolvedAt == nil {
		t.Fatalf("resolved: %+v %v", p, err)
	}
	a, created, err := s.RequestWalletAction(ctx, store.WalletAction{RequestID: "r1", Chain: "local", Address: w.To, Kind: store.WalletActionFillGap, Nonces: []uint64{3, 4}, RequestedBy: "a+b"})
	if err != nil || !created || len(a.Nonces) != 2 {
		t.Fatalf("wallet action: %+v %v %v", a, created, err)
	}
	if _, again, err := s.RequestWalletAction(ctx, store.WalletAction{RequestID: "r1", Chain: "local", Address: w.To, Kind: store.WalletActionFillGap, Nonces: []uint64{3}, RequestedBy: "a+b"}); err != nil || again {
		t.Fatalf("wallet action replayed: %v %v", again, err)
	}
	if _, err := s.Alerts(ctx, true, 10); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ActiveFreezes(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Attempts(ctx, 1); err != nil {
		t.Fatal(err)
	}
}
