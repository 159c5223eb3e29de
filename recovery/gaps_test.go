package recovery_test

import (
	"database/sql"
	"testing"
	"time"

	"github.com/sluice-custody/sluice/internal/alert"
	"github.com/sluice-custody/sluice/internal/nonce"
	"github.com/sluice-custody/sluice/internal/pipelinetest"
	"github.com/sluice-custody/sluice/internal/queue"
	"github.com/sluice-custody/sluice/internal/store"
	"github.com/sluice-custody/sluice/internal/testenv"
	"github.com/sluice-custody/sluice/recovery"
)

// A signer leased nonce 0 and died; a withdrawal was then signed at nonce 1 and sent, and no further
// allocation came to reclaim 0. The node holds nonce 1 back for good. The filler puts a zero-value
// self-transfer at 0 (only once the lease is no longer live), and both get mined.
func TestGapBelowRecordedNonceIsFilled(t *testing.T) {
	// The lease on nonce 0 must outlive the signing below even on a loaded machine (500 ms did not:
	// the signer then reclaimed 0 itself), and then expire before the second sweep.
	const ttl = 3 * time.Second
	e := pipelinetest.New(t, pipelinetest.Options{NonceTTL: ttl})
	if _, err := e.Nonces.Allocate(e.Ctx, e.Config.ChainID, e.Hot.Address, nonce.Floors{}); err != nil {
		t.Fatal(err)
	}
	w := e.Withdraw("POL", testenv.NewAccount(t).Address, 1e15)
	if err := e.Signer().Handle(e.Ctx, e.One(queue.TxRequest)); err != nil {
		t.Fatal(err)
	}
	if got := e.Get(w.ID); got.Nonce == nil || *got.Nonce != 1 {
		t.Fatalf("withdrawal nonce %v, want 1 (0 is leased)", got.Nonce)
	}
	m := e.One(queue.SignedTx)
	if err := e.Broadcaster().Handle(e.Ctx, m); err != nil {
		t.Fatal(err)
	}
	if err := e.Queue.Delete(e.Ctx, queue.SignedTx, m); err != nil {
		t.Fatal(err)
	}
	g := newService(e, e.Config, alert.Nop{})

	if n, err := g.FillGaps(e.Ctx); err != nil || n != 0 {
		t.Fatalf("filled %d (%v) while nonce 0 is still leased, want 0", n, err)
	}
	time.Sleep(ttl + 200*time.Millisecond)
	if n, err := g.FillGaps(e.Ctx); err != nil || n != 1 {
		t.Fatalf("filled %d (%v), want the one gap", n, err)
	}
	if n, err := g.FillGaps(e.Ctx); err != nil || n != 0 {
		t.Fatalf("second sweep filled %d (%v), want 0", n, err)
	}
	if err := e.Broadcaster().Handle(e.Ctx, e.One(queue.SignedTx)); err != nil {
		t.Fatal(err)
	}
	e.WaitMinedNonce(2)
	var kind, source, from, to string
	var reqID sql.NullString
	if err := e.Store.DB.QueryRowContext(e.Ctx, `SELECT kind, source, request_id, from_address, to_address FROM sent_transactions WHERE nonce = 0`).
		Scan(&kind, &source, &reqID, &from, &to); err != nil || kind != "nonce_fill" || source != recovery.SystemSource || reqID.Valid || from != to {
		t.Fatalf("nonce 0 recorded as %q by %q, request %v, %s → %s (%v); want a SYSTEM self-transfer with no request", kind, source, reqID, from, to, err)
	}
	if got := e.Get(w.ID); got.Status != store.Broadcasted {
		t.Fatalf("withdrawal %s", got.Status)
	}
}
