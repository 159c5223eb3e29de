package embedded_test

import (
	"database/sql"
	"errors"
	"math/big"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/sluice-custody/sluice/internal/embedded"
	"github.com/sluice-custody/sluice/internal/store"
)

// Webhook dead letters and their redelivery run on the embedded server too (`sluice dev` serves the
// admin API and the public one): list, count, one delivery, redeliver one and all, and the dispatcher's
// claim of a redelivered delivery with its new retry window.
func TestWebhookRedeliverOnEmbedded(t *testing.T) {
	m := startMySQL(t, embedded.MySQLOptions{})
	s := migrated(t, m)
	ctx := ctxT(t, 60*time.Second)
	c, err := s.EnsureAPIClient(ctx, "acme", "key-acme-0123456789")
	if err != nil {
		t.Fatal(err)
	}
	ep, err := s.AddWebhookEndpoint(ctx, c.ID, "https://hooks.example/x", "whsec_x")
	if err != nil {
		t.Fatal(err)
	}
	for _, ext := range []string{"e1", "e2"} {
		id := uuid.Must(uuid.NewV7()).String()
		w := &store.Withdrawal{ID: id, ClientID: c.ID, ExternalID: ext, RequestHash: make([]byte, 32), Chain: "local", Asset: "POL",
			To: "0x00000000000000000000000000000000000000aa", Amount: big.NewInt(5), CorrelationID: "c1"}
		if _, _, err := s.CreateWithdrawal(ctx, w, func(*sql.Tx) error { return nil }); err != nil {
			t.Fatal(err)
		}
		if err := s.InTx(ctx, func(tx *sql.Tx) error {
			return s.Transition(ctx, tx, id, store.Pending, store.Canceled, "test", store.ActorSigner, store.Change{})
		}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.DB.ExecContext(ctx, `UPDATE webhook_deliveries SET state = 'dead', attempts = 3`); err != nil {
		t.Fatal(err)
	}
	n, oldest, err := s.CountDeadWebhookDeliveries(ctx, store.DeadLetterFilter{ClientID: c.ID})
	if err != nil || n != 2 || oldest.IsZero() {
		t.Fatalf("count: %d %v %v", n, oldest, err)
	}
	ds, err := s.DeadWebhookDeliveries(ctx, store.DeadLetterFilter{EndpointID: ep.ID, Since: time.Now().Add(-time.Hour)})
	if err != nil || len(ds) != 2 || ds[0].Endpoint.URL != ep.URL || ds[0].Endpoint.Secret != "" {
		t.Fatalf("dead: %+v %v", ds, err)
	}
	d, err := s.RedeliverWebhook(ctx, c.ID, ep.ID, ds[1].ID, "client:acme")
	if err != nil || d.State != "pending" || d.Redeliveries != 1 || d.RedeliveredBy != "client:acme" || d.RetryAttempts != 0 || d.Attempts != 3 {
		t.Fatalf("redeliver: %+v %v", d, err)
	}
	if _, err := s.RedeliverWebhook(ctx, c.ID, ep.ID, ds[1].ID, "client:acme"); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("redeliver of a pending one: %v, want ErrConflict", err)
	}
	if n, err := s.RedeliverDeadWebhooks(ctx, c.ID, ep.ID, time.Time{}, "operator:a"); err != nil || n != 1 {
		t.Fatalf("redeliver all: %d %v, want the one left", n, err)
	}
	claimed, err := s.ClaimWebhookDeliveries(ctx, 10, time.Minute)
	if err != nil || len(claimed) != 2 {
		t.Fatalf("claim: %d %v", len(claimed), err)
	}
	for _, d := range claimed {
		if d.RetryAttempts != 0 || time.Since(d.RetrySince) > time.Minute || d.RetrySince.Before(d.CreatedAt) {
			t.Fatalf("claimed %+v: want a new retry window", d)
		}
	}
}
