package api_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluice-custody/sluice/api"
	"github.com/sluice-custody/sluice/internal/config"
	"github.com/sluice-custody/sluice/internal/pipelinetest"
	"github.com/sluice-custody/sluice/internal/queue"
	"github.com/sluice-custody/sluice/internal/store"
	"github.com/sluice-custody/sluice/internal/testenv"
)

// A cancel racing the signer on real MariaDB: 40 withdrawals, each signed by the real signer while the
// client cancels it through the API, all at once. Half start PENDING, half SIGNING (a signer has
// claimed them). The row decides each race, and the loser is told plainly: a 200 means CANCELED and
// nothing recorded for it; a 202 means the signature won and the cancel is now a request against the
// signed transaction (tx_actions). Never a CANCELED withdrawal with a recorded transaction, never a
// SIGNED one whose cancel was lost, and the recorded nonces have no gap (a lost race releases its
// nonce lease).
func TestCancelRacesSigner(t *testing.T) {
	e := pipelinetest.New(t, pipelinetest.Options{})
	const key = "race-key-0123456789abcdef"
	if _, err := e.Store.EnsureAPIClient(e.Ctx, "test", key); err != nil { // the Env's client, with a key we know
		t.Fatal(err)
	}
	srv, err := api.New(api.Deps{Store: e.Store, Queue: e.Queue, Chains: []config.Chain{e.Config}, Gatherer: prometheus.NewRegistry()},
		nil, api.NewMetrics(prometheus.NewRegistry()))
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Echo())
	defer ts.Close()

	const n = 40
	sg := e.Signer()
	canceled, afterSigning, whileSigning := 0, 0, 0
	// Rounds with a wider spread of cancel times until both outcomes were seen (a cold machine signs slowly).
	for round, step := 0, 10*time.Millisecond; round < 5 && (canceled == 0 || afterSigning == 0); round, step = round+1, step*2 {
		ws := make([]*store.Withdrawal, n)
		for i := range ws {
			ws[i] = e.Withdraw("POL", testenv.NewAccount(t).Address, int64(1000+i))
		}
		msgs := map[string]queue.Message{}
		for _, m := range e.Receive(queue.TxRequest) {
			_, p, err := queue.Decode[queue.WithdrawalRequested](m.Body, queue.TypeWithdrawalRequested)
			if err != nil {
				t.Fatal(err)
			}
			msgs[p.WithdrawalID] = m
		}
		if len(msgs) != n {
			t.Fatalf("%d requests queued, want %d", len(msgs), n)
		}
		for _, w := range ws[:n/2] {
			if _, err := e.Store.DB.ExecContext(e.Ctx, `UPDATE withdrawals SET status = 'SIGNING' WHERE id = ?`, w.ID); err != nil {
				t.Fatal(err)
			}
		}

		codes := make([]int, n)
		bodies := make([]string, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i, w := range ws {
			wg.Add(2)
			go func() {
				defer wg.Done()
				<-start
				if err := sg.Handle(e.Ctx, msgs[w.ID]); err != nil {
					t.Errorf("sign %s: %v", w.ID, err)
				}
			}()
			go func() {
				defer wg.Done()
				<-start
				// Spread over the signer's work, so some cancels land before, during and after signing.
				time.Sleep(time.Duration(i%20) * step)
				req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, ts.URL+"/v1/withdrawals/"+w.ID+"/cancel", nil)
				req.Header.Set("Authorization", "Bearer "+key)
				res, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Errorf("cancel %s: %v", w.ID, err)
					return
				}
				defer res.Body.Close()
				b, _ := io.ReadAll(res.Body)
				codes[i], bodies[i] = res.StatusCode, string(b)
			}()
		}
		close(start)
		wg.Wait()

		for i, w := range ws {
			got := e.Get(w.ID)
			switch codes[i] {
			case http.StatusOK:
				if got.Status != store.Canceled || got.SentTxID != nil {
					t.Errorf("%s: 200 but %s with sent tx %v", w.ID, got.Status, got.SentTxID)
				}
				canceled++
				hs, err := e.Store.History(e.Ctx, w.ID)
				if err != nil {
					t.Fatal(err)
				}
				if h := hs[len(hs)-1]; h.From == store.Signing {
					whileSigning++
					if !strings.Contains(h.Reason, "while signing") {
						t.Errorf("%s: canceled in SIGNING with reason %q", w.ID, h.Reason)
					}
				}
			case http.StatusAccepted:
				var m map[string]any
				if err := json.Unmarshal([]byte(bodies[i]), &m); err != nil || m["cancel"] != store.ReasonCancelRequested {
					t.Errorf("%s: 202 %s", w.ID, bodies[i])
				}
				if got.Status != store.Signed || got.SentTxID == nil {
					t.Errorf("%s: 202 but %s", w.ID, got.Status)
					continue
				}
				var k int
				if err := e.Store.DB.QueryRowContext(e.Ctx, `SELECT COUNT(*) FROM tx_actions WHERE withdrawal_id = ? AND kind = ? AND sent_tx_id = ?`,
					w.ID, store.ActionCancel, *got.SentTxID).Scan(&k); err != nil || k != 1 {
					t.Errorf("%s: %d cancel requests against its signed tx (%v), want 1", w.ID, k, err)
				}
				afterSigning++
			default:
				t.Errorf("%s: cancel answered %d %s", w.ID, codes[i], bodies[i])
			}
		}
	}
	if canceled+afterSigning < n {
		t.Fatalf("%d canceled + %d cancel requests after signing, want %d", canceled, afterSigning, n)
	}
	// Every recorded transaction belongs to a withdrawal that the signer won, and the nonces are 0..k-1.
	var cnt, maxNonce int
	var maxN *int64
	if err := e.Store.DB.QueryRowContext(e.Ctx, `SELECT COUNT(*), MAX(nonce) FROM sent_transactions`).Scan(&cnt, &maxN); err != nil {
		t.Fatal(err)
	}
	if maxN != nil {
		maxNonce = int(*maxN) + 1
	}
	if cnt != afterSigning || maxNonce != afterSigning {
		t.Fatalf("%d transactions recorded up to nonce %d, want %d without a gap (one per signature that won)", cnt, maxNonce-1, afterSigning)
	}
	if canceled == 0 || afterSigning == 0 {
		t.Fatalf("%d canceled first and %d signed first: the race was not run both ways", canceled, afterSigning)
	}
	t.Logf("%d canceled before a signature (%d of them while SIGNING), %d signed first and canceled after signing", canceled, whileSigning, afterSigning)
}
