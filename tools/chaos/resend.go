package chaos

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/sluice-custody/sluice/internal/queue"
	"github.com/sluice-custody/sluice/internal/queue/mysqlq"
	"github.com/sluice-custody/sluice/internal/store"
)

// ResendReport is what the resend fault did: withdrawal.requested messages sent again for withdrawals
// already signed, as an at-least-once queue may deliver them (an SQS duplicate, an outbox relay that
// died between sending and marking sent, a DLQ redrive).
type ResendReport struct {
	Planned int // withdrawals the seed picked
	Signed  int // resent while SIGNED or BROADCASTED: the signer must not sign them again
	Late    int // resent after the withdrawal had already ended (the window was missed)
	Unsent  int // never signed before the run ended
}

// workQueue is the run's queue backend, to send on it as the services' own producers do.
func (r *run) workQueue() queue.Queue {
	if r.sqs != nil {
		return r.sqs
	}
	return mysqlq.New(r.db.DB, mysqlq.Options{})
}

// resendLoop sends, for every spec marked for it, a second withdrawal.requested as soon as the database
// shows the withdrawal SIGNED or BROADCASTED, until every one is sent or ctx ends. Kills alone rarely
// catch a tx-request in flight (the signer handles one in milliseconds), so without this a run could
// pass with the signer signing every redelivery again.
func (r *run) resendLoop(ctx context.Context, specs []*spec, rep *ResendReport, done chan<- struct{}) {
	defer close(done)
	q := r.workQueue()
	pending := map[string]bool{} // external ids still to resend
	for _, s := range specs {
		if s.resend {
			pending[s.ext] = true
		}
	}
	rep.Planned = len(pending)
	defer func() { rep.Unsent = len(pending) }()
	for len(pending) > 0 {
		if !sleepCtx(ctx, 250*time.Millisecond) {
			return
		}
		exts := make([]any, 0, len(pending))
		for ext := range pending {
			exts = append(exts, ext)
		}
		rows, err := r.db.DB.QueryContext(ctx, `SELECT external_id, id, status, correlation_id FROM withdrawals
			WHERE external_id IN (?`+strings.Repeat(",?", len(exts)-1)+`)`, exts...)
		if err != nil {
			if ctx.Err() == nil {
				r.logf("resend: read statuses: %v", err)
			}
			continue
		}
		type due struct{ ext, id, cid string }
		var send []due
		var late []due
		for rows.Next() {
			var d due
			var st string
			if err := rows.Scan(&d.ext, &d.id, &st, &d.cid); err != nil {
				break
			}
			switch store.Status(st) {
			case store.Signed, store.Broadcasted:
				send = append(send, d)
			case store.Confirmed, store.Failed, store.Canceled:
				late = append(late, d)
			}
		}
		rows.Close()
		for i, d := range append(send, late...) {
			body, err := queue.NewEnvelope(ctx, queue.TypeWithdrawalRequested, queue.NewID(), d.cid, queue.WithdrawalRequested{WithdrawalID: d.id})
			if err == nil {
				err = q.Send(ctx, queue.TxRequest, body, queue.SendOptions{})
			}
			if err != nil {
				if ctx.Err() == nil {
					r.logf("resend %s: %v", d.ext, err)
				}
				continue
			}
			delete(pending, d.ext)
			if i < len(send) {
				rep.Signed++
			} else {
				rep.Late++
			}
		}
	}
}

func (rep ResendReport) String() string {
	return fmt.Sprintf("planned %d, sent while signed %d, after the end %d, never signed %d", rep.Planned, rep.Signed, rep.Late, rep.Unsent)
}
