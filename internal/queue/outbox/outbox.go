// Package outbox is the transactional outbox for queue backends outside the database (SQS): Sender
// writes a message into the outbox table inside the caller's transaction, so it exists exactly when the
// state change that implies it commits; Relay sends the rows to the queue and deletes them.
//
// Delivery to the queue is at least once (a relay that dies after sending but before deleting sends
// again; consumers are idempotent, and FIFO queues also deduplicate by DedupID). Rows of one
// (queue, group) are sent strictly in id order: a row is never sent while an earlier row of its group is
// still in the outbox, so a failing row holds its group back until it goes through. Several relays can
// run at once: each claims rows with SELECT … FOR UPDATE SKIP LOCKED.
package outbox

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluice-custody/sluice/internal/queue"
)

// Sender implements queue.TxSender by inserting into the outbox table. The zero value is ready to use.
type Sender struct{}

var _ queue.TxSender = Sender{}

// SendTx writes the message in tx; Relay sends it after tx commits.
func (Sender) SendTx(ctx context.Context, tx *sql.Tx, name string, body []byte, opts queue.SendOptions) error {
	if name == "" || len(name) > 80 {
		return fmt.Errorf("outbox: invalid queue name %q", name)
	}
	if len(opts.GroupID) > 128 || len(opts.DedupID) > 128 {
		return fmt.Errorf("outbox %s: group or dedup id longer than 128 characters", name)
	}
	if opts.Delay < 0 {
		return fmt.Errorf("outbox %s: negative delay", name)
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO outbox (queue, body, group_id, dedup_id, delay_ms, next_attempt_at, created_at)
VALUES (?, ?, NULLIF(?, ''), NULLIF(?, ''), ?, UTC_TIMESTAMP(6), UTC_TIMESTAMP(6))`,
		name, body, opts.GroupID, opts.DedupID, opts.Delay.Milliseconds())
	if err != nil {
		return fmt.Errorf("outbox %s: insert: %w", name, err)
	}
	return nil
}

// RelayDeps are what a Relay cannot work without (DB, Queue), then its settings, where zero means the
// default.
type RelayDeps struct {
	// DB holds the outbox table.
	DB *sql.DB
	// Queue is where the rows go.
	Queue queue.Queue

	// Batch is the most rows claimed per round (default 100).
	Batch int
	// PollInterval is the pause after a round that found less than a full batch (default 100 ms).
	PollInterval time.Duration
	// Parallel is how many groups (an ungrouped row is its own group) are sent at once (default 8).
	Parallel int
	// BackoffBase and MaxBackoff space the retries of a row that failed to send (default 1 s, 1 min).
	BackoffBase time.Duration
	MaxBackoff  time.Duration
	// SendTimeout bounds each send (default 15 s).
	SendTimeout time.Duration
}

// Relay moves outbox rows to a queue.
type Relay struct {
	db   *sql.DB
	q    queue.Queue
	opts RelayDeps
	log  *slog.Logger
	met  Metrics
}

// NewRelay checks d (a missing dependency is an error naming it) and builds a relay of the outbox in
// d.DB to d.Queue. A nil log discards; m may be NopMetrics() in tests.
func NewRelay(d RelayDeps, log *slog.Logger, m Metrics) (*Relay, error) {
	switch {
	case d.DB == nil:
		return nil, errors.New("outbox relay: DB is required")
	case d.Queue == nil:
		return nil, errors.New("outbox relay: Queue is required")
	case m == nil:
		return nil, errors.New("outbox relay: Metrics is required (NopMetrics() for none)")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	opts := d
	if opts.Batch <= 0 {
		opts.Batch = 100
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = 100 * time.Millisecond
	}
	if opts.Parallel <= 0 {
		opts.Parallel = 8
	}
	if opts.BackoffBase <= 0 {
		opts.BackoffBase = time.Second
	}
	if opts.MaxBackoff < opts.BackoffBase {
		opts.MaxBackoff = max(time.Minute, opts.BackoffBase)
	}
	if opts.SendTimeout <= 0 {
		opts.SendTimeout = 15 * time.Second
	}
	return &Relay{db: d.DB, q: d.Queue, opts: opts, log: log.With("component", "outbox-relay"), met: m}, nil
}

// Metrics is what a Relay reports.
type Metrics interface {
	Relayed(queue string)
	SendFailed(queue string)
}

type promMetrics struct {
	relayed *prometheus.CounterVec
	failed  *prometheus.CounterVec
}

// NewMetrics registers the relay's collectors (sluice_outbox_…) on reg.
func NewMetrics(reg prometheus.Registerer) Metrics {
	m := &promMetrics{
		relayed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_outbox_relayed_total",
			Help: "Outbox rows sent to their queue, by queue.",
		}, []string{"queue"}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_outbox_send_failures_total",
			Help: "Failed outbox sends (retried with backoff), by queue.",
		}, []string{"queue"}),
	}
	reg.MustRegister(m.relayed, m.failed)
	return m
}

func (m *promMetrics) Relayed(queue string)    { m.relayed.WithLabelValues(queue).Inc() }
func (m *promMetrics) SendFailed(queue string) { m.failed.WithLabelValues(queue).Inc() }

// NopMetrics reports nothing, for tests.
func NopMetrics() Metrics { return nopMetrics{} }

type nopMetrics struct{}

func (nopMetrics) Relayed(string)    {}
func (nopMetrics) SendFailed(string) {}

// Run relays until ctx is canceled; it returns nil then.
func (r *Relay) Run(ctx context.Context) error {
	r.log.Info("outbox relay started")
	pause := r.opts.PollInterval
	for ctx.Err() == nil {
		claimed, sent, err := r.relayOnce(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			r.log.Error("outbox relay round failed", "error", err)
			pause = min(pause*2, 5*time.Second)
		case claimed >= r.opts.Batch && sent > 0:
			pause = r.opts.PollInterval
			continue // more is waiting
		case claimed > 0 && sent == 0:
			// Everything claimed failed or waits behind another relay: do not spin on it.
			pause = min(pause*2, time.Second)
		default:
			pause = r.opts.PollInterval
		}
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
	}
	r.log.Info("outbox relay stopped")
	return nil
}

type row struct {
	id       uint64
	queue    string
	body     []byte
	group    sql.NullString
	dedup    sql.NullString
	delayMS  int64
	attempts int
	ageMS    int64
	sent     bool
	failed   error
}

// claimSQL takes due rows in id order, so that a group's oldest row always comes before the rest of
// its group, and leaves out rows stuck behind an earlier row of their group that is backing off (they
// would only be claimed to be skipped, and could crowd every batch). The primary key is forced: rows are
// locked as they are scanned, so a range scan plus a sort would lock every due row.
const claimSQL = `SELECT o.id, o.queue, o.body, o.group_id, o.dedup_id, o.delay_ms, o.attempts,
  TIMESTAMPDIFF(MICROSECOND, o.created_at, UTC_TIMESTAMP(6)) DIV 1000
FROM outbox o FORCE INDEX (` + "`PRIMARY`" + `)
WHERE o.next_attempt_at <= UTC_TIMESTAMP(6)
  AND (o.group_id IS NULL OR NOT EXISTS (
        SELECT 1 FROM outbox e WHERE e.queue = o.queue AND e.group_id = o.group_id AND e.id < o.id
          AND e.next_attempt_at > UTC_TIMESTAMP(6)))
ORDER BY o.id LIMIT ? FOR UPDATE SKIP LOCKED`

// RelayOnce claims one batch of due rows, sends what group order allows and settles the rows in the
// same transaction (sent rows deleted, failed rows rescheduled). It returns how many rows it sent.
func (r *Relay) RelayOnce(ctx context.Context) (int, error) {
	_, sent, err := r.relayOnce(ctx)
	return sent, err
}

func (r *Relay) relayOnce(ctx context.Context) (claimed, sent int, err error) {
	tx, err := r.db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelReadCommitted})
	if err != nil {
		return 0, 0, fmt.Errorf("outbox: begin: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // no-op after Commit
	rows, err := tx.QueryContext(ctx, claimSQL, r.opts.Batch)
	if err != nil {
		return 0, 0, fmt.Errorf("outbox: claim: %w", err)
	}
	var batch []*row
	for rows.Next() {
		x := &row{}
		if err := rows.Scan(&x.id, &x.queue, &x.body, &x.group, &x.dedup, &x.delayMS, &x.attempts, &x.ageMS); err != nil {
			rows.Close()
			return 0, 0, fmt.Errorf("outbox: scan: %w", err)
		}
		batch = append(batch, x)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, 0, fmt.Errorf("outbox: claim: %w", err)
	}
	if len(batch) == 0 {
		return 0, 0, nil
	}

	// Runs of rows that must go in order: each group's sendable prefix, and each ungrouped row alone.
	runs, err := r.plan(ctx, tx, batch)
	if err != nil {
		return 0, 0, err
	}
	sem := make(chan struct{}, r.opts.Parallel)
	var wg sync.WaitGroup
	for _, run := range runs {
		if ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			for _, x := range run {
				if ctx.Err() != nil {
					return
				}
				if err := r.send(ctx, x); err != nil {
					if ctx.Err() == nil { // a shutdown is not the row's failure
						x.failed = err
					}
					return // the rest of the group waits behind it
				}
				x.sent = true
			}
		}()
	}
	wg.Wait()

	// Settle even when ctx was canceled meanwhile: what was sent must not stay in the outbox.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	// One statement per row, by primary key: a multi-row DELETE … IN (…) may be planned as a table scan
	// on a small table, and a scanning DELETE waits on the rows other relays hold (a deadlock, after the
	// sends, that would send them all again).
	nSent := 0
	var del *sql.Stmt
	for _, x := range batch {
		if !x.sent {
			continue
		}
		if del == nil {
			if del, err = tx.PrepareContext(sctx, "DELETE FROM outbox WHERE id = ?"); err != nil {
				return 0, 0, fmt.Errorf("outbox: delete sent rows: %w", err)
			}
			defer del.Close()
		}
		if _, err := del.ExecContext(sctx, x.id); err != nil {
			return 0, 0, fmt.Errorf("outbox: delete sent row %d: %w", x.id, err)
		}
		nSent++
	}
	for _, x := range batch {
		if x.failed == nil {
			continue
		}
		r.met.SendFailed(x.queue)
		backoff := r.backoff(x.attempts + 1)
		r.log.Warn("outbox send failed; will retry", "outbox_id", x.id, "queue", x.queue, "attempts", x.attempts+1,
			"retry_in", backoff, "error", x.failed)
		msg := x.failed.Error()
		if len(msg) > 4000 {
			msg = msg[:4000]
		}
		if _, err := tx.ExecContext(sctx, `UPDATE outbox SET attempts = attempts + 1, last_error = ?,
  next_attempt_at = UTC_TIMESTAMP(6) + INTERVAL ? MICROSECOND WHERE id = ?`, msg, backoff.Microseconds(), x.id); err != nil {
			return 0, 0, fmt.Errorf("outbox: reschedule row %d: %w", x.id, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, 0, fmt.Errorf("outbox: commit: %w", err)
	}
	for _, x := range batch {
		if x.sent {
			r.met.Relayed(x.queue)
		}
	}
	return len(batch), nSent, nil
}

// plan orders the claimed rows into runs. A group's rows may only be sent from the group's oldest row
// still in the outbox on: when that row is held by another relay or is backing off, the group is
// skipped this round.
func (r *Relay) plan(ctx context.Context, tx *sql.Tx, claimed []*row) ([][]*row, error) {
	type key struct{ queue, group string }
	groups := map[key][]*row{}
	var order []key
	var runs [][]*row
	for _, x := range claimed {
		if !x.group.Valid {
			runs = append(runs, []*row{x})
			continue
		}
		k := key{x.queue, x.group.String}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], x)
	}
	for _, k := range order {
		mine := groups[k]
		sort.Slice(mine, func(i, j int) bool { return mine[i].id < mine[j].id })
		byID := map[uint64]*row{}
		for _, x := range mine {
			byID[x.id] = x
		}
		ids, err := tx.QueryContext(ctx, "SELECT id FROM outbox WHERE queue = ? AND group_id = ? AND id <= ? ORDER BY id",
			k.queue, k.group, mine[len(mine)-1].id)
		if err != nil {
			return nil, fmt.Errorf("outbox: group order: %w", err)
		}
		var run []*row
		for ids.Next() {
			var id uint64
			if err := ids.Scan(&id); err != nil {
				ids.Close()
				return nil, fmt.Errorf("outbox: group order: %w", err)
			}
			x, ok := byID[id]
			if !ok {
				break // an earlier row of the group is not ours to send yet
			}
			run = append(run, x)
		}
		ids.Close()
		if err := ids.Err(); err != nil {
			return nil, fmt.Errorf("outbox: group order: %w", err)
		}
		if len(run) > 0 {
			runs = append(runs, run)
		}
	}
	return runs, nil
}

func (r *Relay) send(ctx context.Context, x *row) error {
	opts := queue.SendOptions{GroupID: x.group.String, DedupID: x.dedup.String}
	if opts.DedupID == "" {
		// A row sent again (its relay died before deleting it) is then dropped by a deduplicating queue
		// (SQS FIFO, within its 5-minute interval) instead of arriving twice.
		opts.DedupID = "outbox-" + strconv.FormatUint(x.id, 10)
	}
	if left := time.Duration(x.delayMS-x.ageMS) * time.Millisecond; left > 0 {
		opts.Delay = left
	}
	sctx, cancel := context.WithTimeout(ctx, r.opts.SendTimeout)
	defer cancel()
	return r.q.Send(sctx, x.queue, x.body, opts)
}

func (r *Relay) backoff(attempts int) time.Duration {
	d := r.opts.BackoffBase
	for i := 1; i < attempts && d < r.opts.MaxBackoff; i++ {
		d *= 2
	}
	return min(d, r.opts.MaxBackoff)
}

// Pending counts the rows waiting in the outbox (for readiness checks and metrics).
func Pending(ctx context.Context, db *sql.DB) (int, error) {
	var n int
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM outbox").Scan(&n); err != nil {
		return 0, fmt.Errorf("outbox: count: %w", err)
	}
	return n, nil
}
