package chaos

import (
	"context"
	"database/sql"
	"fmt"
	mrand "math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sluice-custody/sluice/internal/store"
)

// The moments a cancel aims at (RecoveryFaults.Cancels): while the withdrawal is not yet signed, once it
// is signed, once it is broadcast, and once it is signed inside a batch. A withdrawal that moves faster
// than the harness looks is canceled where it is found (or not at all if it already ended).
const (
	cancelPending   = "pending"
	cancelSigned    = "signed"
	cancelBroadcast = "broadcast"
	cancelBatch     = "batch"
)

var cancelMoments = []string{cancelPending, cancelSigned, cancelBroadcast, cancelBatch}

// CancelReport is what the cancel fault did: requests by the moment they aimed at, and the API's answers.
type CancelReport struct {
	mu       sync.Mutex
	Planned  int
	ByMoment map[string]int // requests sent, by the moment the withdrawal was found in
	Answers  map[string]int // 200 canceled, 202 requested, 409 refused (too late, or unsupported), other
	Late     int            // the withdrawal ended before its moment came: nothing sent
	Unsent   int            // never reached its moment before the run ended
	// Outcomes, from the withdrawals' histories at the end: how each cancel ended.
	Outcomes string
}

func (c *CancelReport) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return fmt.Sprintf("planned %d, sent by moment %s, answers %s, ended first %d, never due %d; outcomes %s", c.Planned,
		orNone(c.ByMoment), orNone(c.Answers), c.Late, c.Unsent, c.Outcomes)
}

// cancelPicks draws, from the seed's own stream, which withdrawals are canceled and at which moment.
func cancelPicks(seed uint64, n, withdrawals int) map[int]string {
	rng := mrand.New(mrand.NewPCG(seed, streamCancels))
	out := map[int]string{}
	n = min(n, withdrawals)
	for len(out) < n {
		i := rng.IntN(withdrawals)
		if _, ok := out[i]; ok {
			continue
		}
		out[i] = cancelMoments[rng.IntN(len(cancelMoments))]
	}
	return out
}

// cancelLoop cancels the picked withdrawals over the API, each when the database first shows it at its
// moment, until every one is sent or ctx ends. The verdict needs nothing more: a CANCELED withdrawal
// whose recipient holds anything is "paid although CANCELED", a CONFIRMED one must hold its amount once.
func (r *run) cancelLoop(ctx context.Context, c *apiClient, specs []*spec, rep *CancelReport, done chan<- struct{}) {
	defer close(done)
	picks := cancelPicks(r.o.Seed, r.o.Recovery.Cancels, len(specs))
	pending := map[string]string{} // external id → moment
	for i, m := range picks {
		pending[specs[i].ext] = m
	}
	rep.mu.Lock()
	rep.Planned, rep.ByMoment, rep.Answers = len(pending), map[string]int{}, map[string]int{}
	rep.mu.Unlock()
	defer func() {
		rep.mu.Lock()
		rep.Unsent = len(pending)
		rep.mu.Unlock()
	}()
	for len(pending) > 0 {
		if !sleepCtx(ctx, 100*time.Millisecond) {
			return
		}
		exts := make([]any, 0, len(pending))
		for ext := range pending {
			exts = append(exts, ext)
		}
		rows, err := r.db.DB.QueryContext(ctx, `SELECT external_id, id, status, batch_id FROM withdrawals
			WHERE external_id IN (?`+strings.Repeat(",?", len(exts)-1)+`)`, exts...)
		if err != nil {
			if ctx.Err() == nil {
				r.logf("cancel: read statuses: %v", err)
			}
			continue
		}
		type due struct{ ext, id, moment string }
		var send []due
		for rows.Next() {
			var (
				ext, id, st string
				batch       sql.NullString
			)
			if err := rows.Scan(&ext, &id, &st, &batch); err != nil {
				break
			}
			at, ok := cancelDue(pending[ext], store.Status(st), batch.Valid && batch.String != "")
			switch {
			case !ok:
			case at == "":
				delete(pending, ext)
				rep.mu.Lock()
				rep.Late++
				rep.mu.Unlock()
			default:
				send = append(send, due{ext, id, at})
			}
		}
		rows.Close()
		for _, d := range send {
			delete(pending, d.ext)
			code := c.cancel(ctx, d.id)
			rep.mu.Lock()
			rep.ByMoment[d.moment]++
			rep.Answers[fmt.Sprint(code)]++
			rep.mu.Unlock()
		}
	}
}

// cancelDue says whether a withdrawal aimed at moment, found in status st (inside a batch or not), is
// due now: ok with the moment it is canceled at, ok with "" when it ended first (nothing to send), or
// not ok to wait. A moment passed by is caught up with at once, where the withdrawal is.
func cancelDue(moment string, st store.Status, inBatch bool) (string, bool) {
	if st.Terminal() {
		return "", true
	}
	at := map[store.Status]string{store.Pending: cancelPending, store.AwaitingApproval: cancelPending, store.Signing: cancelPending,
		store.Signed: cancelSigned, store.Broadcasted: cancelBroadcast}[st]
	signedInBatch := inBatch && (st == store.Signed || st == store.Broadcasted)
	if moment == cancelBatch {
		switch {
		case signedInBatch:
			return cancelBatch, true
		case st == store.Broadcasted:
			return cancelBroadcast, true // a single, never to be in a batch: canceled broadcast instead
		}
		return "", false
	}
	if slices.Index(cancelMoments, at) < slices.Index(cancelMoments, moment) {
		return "", false
	}
	if signedInBatch {
		at = cancelBatch
	}
	return at, true
}

// cancel posts a cancel, riding out API restarts; it returns the final status code (0: no answer).
func (c *apiClient) cancel(ctx context.Context, id string) int {
	deadline := time.Now().Add(time.Minute)
	for {
		code, _, err := c.do(ctx, http.MethodPost, "/v1/withdrawals/"+id+"/cancel", nil)
		if err == nil && code < 500 && code != http.StatusTooManyRequests {
			return code
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			return 0
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// cancelOutcomes reads from the withdrawals' histories how the cancels ended: before a signature, by a
// mined self-transfer, by a batch without the payment, or lost to the payment.
func (r *run) cancelOutcomes(ctx context.Context) string {
	var before, whileSigning, replaced, outOfBatch, stood, lost sql.NullInt64
	err := r.db.DB.QueryRowContext(ctx, `SELECT SUM(reason = 'canceled by client'), SUM(reason LIKE 'canceled by client while signing%'),
		SUM(reason LIKE 'cancel replacement %'), SUM(reason LIKE 'canceled out of batch%'), SUM(reason LIKE '%the cancel requested stands'),
		SUM(reason LIKE '%the cancel requested lost the race%') FROM withdrawal_history`).Scan(&before, &whileSigning, &replaced, &outOfBatch, &stood, &lost)
	if err != nil {
		return "unknown: " + err.Error()
	}
	return fmt.Sprintf("before signing %d (while SIGNING %d), self-transfer mined %d, batch without it mined %d, nothing paid otherwise %d, lost to the payment %d",
		before.Int64+whileSigning.Int64, whileSigning.Int64, replaced.Int64, outOfBatch.Int64, stood.Int64, lost.Int64)
}
