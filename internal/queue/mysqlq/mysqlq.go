// Package mysqlq is the MySQL/MariaDB backend of queue.Queue and queue.TxSender: a message is a row of
// queue_messages (migrations/00002_queue.sql).
//
// Semantics (the same as SQS unless said otherwise):
//   - Receive claims rows with SELECT … FOR UPDATE SKIP LOCKED in a short READ COMMITTED transaction,
//     hides them for the visibility timeout, increments their receive count and gives each delivery a
//     new random receipt. Consumers never wait on each other's locks.
//   - Delete and ChangeVisibility with a receipt that no longer names the current delivery (another
//     consumer received the message since) change nothing and return an error wrapping
//     queue.ErrReceiptInvalid. Deleting a message that is already gone is not an error.
//   - FIFO groups: a message with a GroupID is only delivered when no earlier message (smaller id) of
//     the same (queue, group) is present, visible, delayed or in flight: strict in-group order, one
//     message of a group in flight at a time, as on SQS FIFO. Two transactions sending to one group at
//     the same time are not ordered against each other (the later commit may be delivered first), as
//     with two concurrent senders on SQS. A receive costs one index step per group, not per message:
//     a long backlog in one group does not slow the others down. Messages without a group are
//     unordered (roughly oldest-visible first).
//   - Deduplication: a Send with a DedupID already used on the same queue within DedupWindow (5 min), or
//     whose first message is still present, is dropped silently and returns nil.
//   - Redrive: a message already received MaxReceiveCount times that would be received again is moved
//     to its queue's DLQ instead (same body and message id, receive count reset). DLQs have no DLQ.
//   - Retention: messages older than queue.Retention are deleted, opportunistically by Receive at most
//     once per CleanupEvery per process (and by Cleanup).
//   - Long polling: Receive re-claims with short, growing sleeps until wait is over; a Send in the same
//     process wakes waiting receivers at once.
//   - Setup is a no-op: the tables come from the migrations.
//
// Times are computed by the database (UTC_TIMESTAMP), so clock skew between processes does not matter.
package mysqlq

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/sluice-custody/sluice/internal/queue"
)

// Options tune the backend; the zero value gives the defaults.
type Options struct {
	// PollInterval is the first pause between empty claims while long-polling (default 10 ms); it doubles
	// up to MaxPollInterval (default 200 ms).
	PollInterval    time.Duration
	MaxPollInterval time.Duration
	// DedupWindow is how long a DedupID is remembered (default 5 min, as SQS).
	DedupWindow time.Duration
	// Retention is how long a message is kept (default queue.Retention).
	Retention time.Duration
	// CleanupEvery is how often Receive deletes expired messages and dedup ids (default 1 min); < 0
	// disables the opportunistic cleanup.
	CleanupEvery time.Duration
	// MaxReceiveCount is the redrive threshold (default queue.MaxReceiveCount).
	MaxReceiveCount int
	// DLQFor maps a queue to its DLQ (default queue.DLQFor); "" means no redrive.
	DLQFor func(string) string
}

// Queue is the MySQL implementation of queue.Queue and queue.TxSender.
type Queue struct {
	db   *sql.DB
	opts Options

	stmtMu sync.Mutex
	stmts  map[string]*sql.Stmt

	isoOnce sync.Once
	isoRC   bool // the pool's sessions already run READ COMMITTED

	notifyMu sync.Mutex
	notify   map[string]chan struct{}

	lastCleanup atomic.Int64
	turn        atomic.Uint64

	noHeadsUntil sync.Map // queue name → unix nanos
}

var (
	_ queue.Queue    = (*Queue)(nil)
	_ queue.TxSender = (*Queue)(nil)
)

// New returns a queue on db, which must hold the migrated schema.
func New(db *sql.DB, opts Options) *Queue {
	if opts.PollInterval <= 0 {
		opts.PollInterval = 10 * time.Millisecond
	}
	if opts.MaxPollInterval < opts.PollInterval {
		opts.MaxPollInterval = max(200*time.Millisecond, opts.PollInterval)
	}
	if opts.DedupWindow <= 0 {
		opts.DedupWindow = 5 * time.Minute
	}
	if opts.Retention <= 0 {
		opts.Retention = queue.Retention
	}
	if opts.CleanupEvery == 0 {
		opts.CleanupEvery = time.Minute
	}
	if opts.MaxReceiveCount <= 0 {
		opts.MaxReceiveCount = queue.MaxReceiveCount
	}
	if opts.DLQFor == nil {
		opts.DLQFor = queue.DLQFor
	}
	q := &Queue{db: db, opts: opts, stmts: map[string]*sql.Stmt{}, notify: map[string]chan struct{}{}}
	q.lastCleanup.Store(time.Now().UnixNano())
	return q
}

// Setup checks that the tables exist; there is nothing to create.
func (q *Queue) Setup(ctx context.Context) error {
	var n int
	if err := q.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM queue_messages WHERE 1=0").Scan(&n); err != nil {
		return fmt.Errorf("mysql queue setup: table queue_messages: %w (run the migrations)", err)
	}
	return nil
}

const maxNameLen = 80

// checkName accepts SQS-style names (letters, digits, '-', '_', plus '.' and ':'); the claim statements
// carry the name as a literal, so nothing else may pass.
func checkName(name string) error {
	if name == "" || len(name) > maxNameLen {
		return fmt.Errorf("mysql queue: invalid queue name %q", name)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == ':') {
			return fmt.Errorf("mysql queue: invalid queue name %q", name)
		}
	}
	return nil
}

// stmt returns a statement prepared on the pool (database/sql re-prepares it per connection as needed).
func (q *Queue) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	q.stmtMu.Lock()
	defer q.stmtMu.Unlock()
	if s, ok := q.stmts[query]; ok {
		return s, nil
	}
	s, err := q.db.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	q.stmts[query] = s
	return s, nil
}

// Close releases the prepared statements (the *sql.DB stays open).
func (q *Queue) Close() error {
	q.stmtMu.Lock()
	defer q.stmtMu.Unlock()
	for k, s := range q.stmts {
		s.Close()
		delete(q.stmts, k)
	}
	return nil
}

// beginRC starts a READ COMMITTED transaction: no gap locks, so claims never block concurrent sends.
// When the pool's sessions already are READ COMMITTED (store.Open sets it) the extra SET is skipped.
func (q *Queue) beginRC(ctx context.Context) (*sql.Tx, error) {
	q.isoOnce.Do(func() {
		var iso string
		err := q.db.QueryRowContext(ctx, "SELECT @@SESSION.tx_isolation").Scan(&iso)
		if err != nil {
			err = q.db.QueryRowContext(ctx, "SELECT @@SESSION.transaction_isolation").Scan(&iso)
		}
		q.isoRC = err == nil && strings.EqualFold(iso, "READ-COMMITTED")
	})
	if q.isoRC {
		return q.db.BeginTx(ctx, nil)
	}
	return q.db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelReadCommitted})
}

type execQuerier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

const insertSQL = `INSERT INTO queue_messages (queue, msg_id, body, group_id, dedup_id, visible_at, created_at)
VALUES (?, ?, ?, NULLIF(?, ''), NULLIF(?, ''), UTC_TIMESTAMP(6) + INTERVAL ? MICROSECOND, UTC_TIMESTAMP(6))`

// Send enqueues body. With a DedupID, the check and the insert run in one transaction.
func (q *Queue) Send(ctx context.Context, name string, body []byte, opts queue.SendOptions) error {
	if err := checkSend(name, opts); err != nil {
		return err
	}
	if opts.DedupID == "" {
		s, err := q.stmt(ctx, insertSQL)
		if err != nil {
			return fmt.Errorf("mysql queue send %s: %w", name, err)
		}
		if _, err := s.ExecContext(ctx, name, uuid.NewString(), body, opts.GroupID, "", opts.Delay.Microseconds()); err != nil {
			return fmt.Errorf("mysql queue send %s: %w", name, err)
		}
		q.wake(name)
		return nil
	}
	tx, err := q.beginRC(ctx)
	if err != nil {
		return fmt.Errorf("mysql queue send %s: begin: %w", name, err)
	}
	defer tx.Rollback() //nolint:errcheck // no-op after Commit
	if err := q.sendIn(ctx, tx, name, body, opts); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("mysql queue send %s: commit: %w", name, err)
	}
	q.wake(name)
	return nil
}

// SendTx enqueues body inside the caller's transaction: the message exists exactly when tx commits.
func (q *Queue) SendTx(ctx context.Context, tx *sql.Tx, name string, body []byte, opts queue.SendOptions) error {
	if err := checkSend(name, opts); err != nil {
		return err
	}
	return q.sendIn(ctx, tx, name, body, opts)
}

func checkSend(name string, opts queue.SendOptions) error {
	if err := checkName(name); err != nil {
		return err
	}
	if len(opts.GroupID) > 128 || len(opts.DedupID) > 128 {
		return fmt.Errorf("mysql queue send %s: group or dedup id longer than 128 characters", name)
	}
	if opts.Delay < 0 {
		return fmt.Errorf("mysql queue send %s: negative delay", name)
	}
	return nil
}

func (q *Queue) sendIn(ctx context.Context, ex execQuerier, name string, body []byte, opts queue.SendOptions) error {
	if opts.DedupID != "" {
		dup, err := q.isDuplicate(ctx, ex, name, opts.DedupID)
		if err != nil {
			return fmt.Errorf("mysql queue send %s: dedup: %w", name, err)
		}
		if dup {
			return nil
		}
	}
	if _, err := ex.ExecContext(ctx, insertSQL, name, uuid.NewString(), body, opts.GroupID, opts.DedupID, opts.Delay.Microseconds()); err != nil {
		return fmt.Errorf("mysql queue send %s: %w", name, err)
	}
	return nil
}

// isDuplicate reports whether a send of (queue, dedupID) must be dropped: its first message is still
// queued, or the id was accepted within DedupWindow. Otherwise it records the id. The upsert takes a
// fresh token only when the old entry has expired; reading the token back (a locking read, so it sees
// the latest row whatever the isolation) tells whether this send won. A concurrent send of the same id
// waits on the row lock until this transaction ends, and then finds the entry unexpired.
func (q *Queue) isDuplicate(ctx context.Context, ex execQuerier, name, dedupID string) (bool, error) {
	var one int
	err := ex.QueryRowContext(ctx, "SELECT 1 FROM queue_messages WHERE queue = ? AND dedup_id = ? LIMIT 1", name, dedupID).Scan(&one)
	if err == nil {
		return true, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return false, err
	}
	token := randHex(16)
	_, err = ex.ExecContext(ctx, `INSERT INTO queue_dedup (queue, dedup_id, token, expires_at)
VALUES (?, ?, ?, UTC_TIMESTAMP(6) + INTERVAL ? MICROSECOND)
ON DUPLICATE KEY UPDATE
  token = IF(expires_at < UTC_TIMESTAMP(6), VALUES(token), token),
  expires_at = IF(expires_at < UTC_TIMESTAMP(6), VALUES(expires_at), expires_at)`,
		name, dedupID, token, q.opts.DedupWindow.Microseconds())
	if err != nil {
		return false, err
	}
	var got string
	if err := ex.QueryRowContext(ctx, "SELECT token FROM queue_dedup WHERE queue = ? AND dedup_id = ? FOR UPDATE", name, dedupID).Scan(&got); err != nil {
		return false, err
	}
	return got != token, nil
}

// wake tells receivers of name in this process to claim now.
func (q *Queue) wake(name string) {
	q.notifyMu.Lock()
	if c, ok := q.notify[name]; ok {
		close(c)
		delete(q.notify, name)
	}
	q.notifyMu.Unlock()
}

func (q *Queue) waiter(name string) <-chan struct{} {
	q.notifyMu.Lock()
	defer q.notifyMu.Unlock()
	c, ok := q.notify[name]
	if !ok {
		c = make(chan struct{})
		q.notify[name] = c
	}
	return c
}

// Receive claims up to max messages, long-polling for up to wait.
func (q *Queue) Receive(ctx context.Context, name string, max int, visibility, wait time.Duration) ([]queue.Message, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	if max <= 0 {
		max = 1
	}
	if visibility < 0 {
		visibility = 0
	}
	q.maybeCleanup(ctx)
	deadline := time.Now().Add(wait)
	pause := q.opts.PollInterval
	for {
		woken := q.waiter(name)
		msgs, err := q.claim(ctx, name, max, visibility)
		if err != nil || len(msgs) > 0 {
			return msgs, err
		}
		left := time.Until(deadline)
		if left <= 0 {
			return nil, nil
		}
		t := time.NewTimer(min(pause, left))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("mysql queue receive %s: %w", name, ctx.Err())
		case <-woken:
			t.Stop()
		case <-t.C:
		}
		pause = min(pause*2, q.opts.MaxPollInterval)
	}
}

// A claim runs two locking selects: ungrouped messages, oldest visible first, straight off the claim
// index; and the heads of the FIFO groups (each group's smallest id, found with a loose index scan that
// costs one step per group, however long the groups are) that are visible now. A group whose head is in
// flight or delayed has nothing deliverable, so at most one message per group is ever in flight and the
// messages queued behind a head are never scanned. The derived table is read without locks; SKIP
// LOCKED applies to the rows joined to it.
//
// Both are sent as text with the (validated) queue name and limit written in: MariaDB does not use the
// loose index scan for a prepared statement's parameter, and scans every row of the queue instead.
func claimUngroupedSQL(name string, limit int) string {
	return `SELECT id, msg_id, body, group_id, receive_count
FROM queue_messages FORCE INDEX (idx_queue_messages_claim)
WHERE queue = '` + name + `' AND group_id IS NULL AND visible_at <= UTC_TIMESTAMP(6)
ORDER BY visible_at, id
LIMIT ` + strconv.Itoa(limit) + `
FOR UPDATE SKIP LOCKED`
}

func claimGroupHeadsSQL(name string, limit int) string {
	return `SELECT m.id, m.msg_id, m.body, m.group_id, m.receive_count
FROM (SELECT MIN(id) AS id FROM queue_messages FORCE INDEX (idx_queue_messages_group)
      WHERE queue = '` + name + `' GROUP BY queue, group_id) h
JOIN queue_messages m ON m.id = h.id
WHERE m.group_id IS NOT NULL AND m.visible_at <= UTC_TIMESTAMP(6)
ORDER BY h.id
LIMIT ` + strconv.Itoa(limit) + `
FOR UPDATE SKIP LOCKED`
}

type row struct {
	id    uint64
	msgID string
	body  []byte
	group sql.NullString
	count int
}

func (q *Queue) claim(ctx context.Context, name string, max int, visibility time.Duration) ([]queue.Message, error) {
	// Alternate which kind goes first, so that neither starves the other on a queue that has both. A
	// queue whose last look found no deliverable group head skips that query for headsBackoff while
	// ungrouped messages keep it busy (a queue without groups pays one query per claim, not two).
	lazyHeads := q.headsIdle(name)
	headsFirst := !lazyHeads && q.turn.Add(1)%2 == 0
	tx, err := q.beginRC(ctx)
	if err != nil {
		return nil, fmt.Errorf("mysql queue receive %s: begin: %w", name, err)
	}
	defer tx.Rollback() //nolint:errcheck // no-op after Commit
	var deliver, redrive []row
	dlq := q.opts.DLQFor(name)
	for i := range 2 {
		heads := (i == 0) == headsFirst
		left := max - len(deliver) - len(redrive)
		if left <= 0 || (heads && lazyHeads && left < max) {
			break
		}
		claimSQL := claimUngroupedSQL
		if heads {
			claimSQL = claimGroupHeadsSQL
		}
		got := len(deliver) + len(redrive)
		rows, err := tx.QueryContext(ctx, claimSQL(name, left))
		if err != nil {
			return nil, fmt.Errorf("mysql queue receive %s: claim: %w", name, err)
		}
		for rows.Next() {
			var r row
			if err := rows.Scan(&r.id, &r.msgID, &r.body, &r.group, &r.count); err != nil {
				rows.Close()
				return nil, fmt.Errorf("mysql queue receive %s: scan: %w", name, err)
			}
			if dlq != "" && r.count >= q.opts.MaxReceiveCount {
				redrive = append(redrive, r)
			} else {
				deliver = append(deliver, r)
			}
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("mysql queue receive %s: claim: %w", name, err)
		}
		if heads {
			q.noteHeads(name, len(deliver)+len(redrive) > got)
		}
	}
	if len(deliver) == 0 && len(redrive) == 0 {
		return nil, nil
	}
	// The ids and the token are generated here, so they are written into the statements directly:
	// one round trip each, no prepare.
	if len(redrive) > 0 {
		ids := idList(redrive)
		if _, err := tx.ExecContext(ctx, `INSERT INTO queue_messages (queue, msg_id, body, group_id, dedup_id, receive_count, visible_at, created_at)
SELECT ?, msg_id, body, group_id, NULL, 0, UTC_TIMESTAMP(6), created_at FROM queue_messages WHERE id IN (`+ids+`) ORDER BY id`, dlq); err != nil {
			return nil, fmt.Errorf("mysql queue receive %s: redrive to %s: %w", name, dlq, err)
		}
		// Row by row on the primary key: a DELETE … IN (…) planned as a scan would wait on rows other
		// consumers hold.
		for _, r := range redrive {
			if _, err := tx.ExecContext(ctx, "DELETE FROM queue_messages WHERE id = "+strconv.FormatUint(r.id, 10)); err != nil {
				return nil, fmt.Errorf("mysql queue receive %s: redrive to %s: %w", name, dlq, err)
			}
		}
	}
	token := randHex(16)
	if len(deliver) > 0 {
		// Under READ COMMITTED an UPDATE reads locked rows semi-consistently: even planned as a scan it
		// does not wait on rows that other consumers hold and it does not match.
		if _, err := tx.ExecContext(ctx, "UPDATE queue_messages SET visible_at = UTC_TIMESTAMP(6) + INTERVAL "+
			strconv.FormatInt(visibility.Microseconds(), 10)+" MICROSECOND, receive_count = receive_count + 1, receipt = CONCAT('"+
			token+"-', id) WHERE id IN ("+idList(deliver)+")"); err != nil {
			return nil, fmt.Errorf("mysql queue receive %s: mark received: %w", name, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("mysql queue receive %s: commit: %w", name, err)
	}
	if len(redrive) > 0 {
		q.wake(dlq)
	}
	msgs := make([]queue.Message, len(deliver))
	for i, r := range deliver {
		msgs[i] = queue.Message{
			ID:           r.msgID,
			Body:         r.body,
			GroupID:      r.group.String,
			ReceiveCount: r.count + 1,
			Receipt:      token + "-" + strconv.FormatUint(r.id, 10),
		}
	}
	return msgs, nil
}

// headsBackoff is how long a queue without deliverable group heads is not asked for them again while
// it has ungrouped messages to deliver.
const headsBackoff = 100 * time.Millisecond

func (q *Queue) headsIdle(name string) bool {
	v, ok := q.noHeadsUntil.Load(name)
	return ok && time.Now().UnixNano() < v.(int64)
}

func (q *Queue) noteHeads(name string, found bool) {
	if found {
		q.noHeadsUntil.Delete(name)
	} else {
		q.noHeadsUntil.Store(name, time.Now().Add(headsBackoff).UnixNano())
	}
}

func idList(rs []row) string {
	var b strings.Builder
	for i, r := range rs {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatUint(r.id, 10))
	}
	return b.String()
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// parseReceipt extracts the row id from a receipt "<token>-<id>".
func parseReceipt(receipt string) (uint64, error) {
	i := strings.LastIndexByte(receipt, '-')
	if i < 0 {
		return 0, fmt.Errorf("%w: malformed receipt %q", queue.ErrReceiptInvalid, receipt)
	}
	id, err := strconv.ParseUint(receipt[i+1:], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: malformed receipt %q", queue.ErrReceiptInvalid, receipt)
	}
	return id, nil
}

// Delete removes the delivery m. A message that is already gone counts as deleted; one that was
// received again by someone else since is left alone and the error wraps queue.ErrReceiptInvalid.
func (q *Queue) Delete(ctx context.Context, name string, m queue.Message) error {
	id, err := parseReceipt(m.Receipt)
	if err != nil {
		return fmt.Errorf("mysql queue delete %s: %w", name, err)
	}
	s, err := q.stmt(ctx, "DELETE FROM queue_messages WHERE id = ? AND queue = ? AND receipt = ?")
	if err != nil {
		return fmt.Errorf("mysql queue delete %s: %w", name, err)
	}
	res, err := s.ExecContext(ctx, id, name, m.Receipt)
	if err != nil {
		return fmt.Errorf("mysql queue delete %s message %s: %w", name, m.ID, err)
	}
	if n, _ := res.RowsAffected(); n == 1 {
		if m.GroupID != "" {
			q.wake(name) // the next message of the group may be deliverable now
		}
		return nil
	}
	cur, found, err := q.currentReceipt(ctx, name, id)
	if err != nil {
		return fmt.Errorf("mysql queue delete %s message %s: %w", name, m.ID, err)
	}
	if !found {
		return nil
	}
	if cur == m.Receipt { // cannot happen short of a race with our own delete; retry once
		if _, err := s.ExecContext(ctx, id, name, m.Receipt); err != nil {
			return fmt.Errorf("mysql queue delete %s message %s: %w", name, m.ID, err)
		}
		return nil
	}
	return fmt.Errorf("mysql queue delete %s message %s: %w", name, m.ID, queue.ErrReceiptInvalid)
}

func (q *Queue) currentReceipt(ctx context.Context, name string, id uint64) (string, bool, error) {
	var cur sql.NullString
	err := q.db.QueryRowContext(ctx, "SELECT receipt FROM queue_messages WHERE id = ? AND queue = ?", id, name).Scan(&cur)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	return cur.String, true, nil
}

// ChangeVisibility hides m for d more from now; d = 0 releases it. With a stale receipt nothing changes
// and the error wraps queue.ErrReceiptInvalid (also when the message is gone).
func (q *Queue) ChangeVisibility(ctx context.Context, name string, m queue.Message, d time.Duration) error {
	id, err := parseReceipt(m.Receipt)
	if err != nil {
		return fmt.Errorf("mysql queue change visibility %s: %w", name, err)
	}
	if d < 0 {
		d = 0
	}
	s, err := q.stmt(ctx, "UPDATE queue_messages SET visible_at = UTC_TIMESTAMP(6) + INTERVAL ? MICROSECOND WHERE id = ? AND queue = ? AND receipt = ?")
	if err != nil {
		return fmt.Errorf("mysql queue change visibility %s: %w", name, err)
	}
	res, err := s.ExecContext(ctx, d.Microseconds(), id, name, m.Receipt)
	if err != nil {
		return fmt.Errorf("mysql queue change visibility %s message %s: %w", name, m.ID, err)
	}
	if n, _ := res.RowsAffected(); n == 1 {
		if d == 0 {
			q.wake(name)
		}
		return nil
	}
	// Zero rows: either the receipt is stale, or the row already had exactly this visible_at.
	cur, found, err := q.currentReceipt(ctx, name, id)
	if err != nil {
		return fmt.Errorf("mysql queue change visibility %s message %s: %w", name, m.ID, err)
	}
	if found && cur == m.Receipt {
		return nil
	}
	return fmt.Errorf("mysql queue change visibility %s message %s: %w", name, m.ID, queue.ErrReceiptInvalid)
}

// Depth counts the messages present in a queue: visible, delayed and in flight.
func (q *Queue) Depth(ctx context.Context, name string) (int, error) {
	s, err := q.stmt(ctx, "SELECT COUNT(*) FROM queue_messages WHERE queue = ?")
	if err != nil {
		return 0, fmt.Errorf("mysql queue depth %s: %w", name, err)
	}
	var n int
	if err := s.QueryRowContext(ctx, name).Scan(&n); err != nil {
		return 0, fmt.Errorf("mysql queue depth %s: %w", name, err)
	}
	return n, nil
}

// Stats counts a queue's messages and says how long ago the oldest was first enqueued, by the
// database's clock (as every time here).
func (q *Queue) Stats(ctx context.Context, name string) (queue.Stats, error) {
	s, err := q.stmt(ctx, "SELECT COUNT(*), MIN(created_at), UTC_TIMESTAMP(6) FROM queue_messages WHERE queue = ?")
	if err != nil {
		return queue.Stats{}, fmt.Errorf("mysql queue stats %s: %w", name, err)
	}
	var (
		st     queue.Stats
		oldest sql.NullTime
		now    time.Time
	)
	if err := s.QueryRowContext(ctx, name).Scan(&st.Depth, &oldest, &now); err != nil {
		return queue.Stats{}, fmt.Errorf("mysql queue stats %s: %w", name, err)
	}
	st.OldestKnown = true
	if oldest.Valid && now.After(oldest.Time) {
		st.OldestAge = now.Sub(oldest.Time)
	}
	return st, nil
}

func (q *Queue) maybeCleanup(ctx context.Context) {
	if q.opts.CleanupEvery < 0 {
		return
	}
	last := q.lastCleanup.Load()
	now := time.Now().UnixNano()
	if now-last < int64(q.opts.CleanupEvery) || !q.lastCleanup.CompareAndSwap(last, now) {
		return
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_, _ = q.Cleanup(cctx) // best effort: the next round tries again
}

// Cleanup deletes messages past retention and expired dedup ids, in bounded chunks, and returns how
// many messages it deleted.
func (q *Queue) Cleanup(ctx context.Context) (int64, error) {
	var total int64
	for range 20 {
		res, err := q.db.ExecContext(ctx, "DELETE FROM queue_messages WHERE created_at < UTC_TIMESTAMP(6) - INTERVAL ? MICROSECOND LIMIT 1000",
			q.opts.Retention.Microseconds())
		if err != nil {
			return total, fmt.Errorf("mysql queue retention: %w", err)
		}
		n, _ := res.RowsAffected()
		total += n
		if n < 1000 {
			break
		}
	}
	for range 20 {
		res, err := q.db.ExecContext(ctx, "DELETE FROM queue_dedup WHERE expires_at < UTC_TIMESTAMP(6) LIMIT 1000")
		if err != nil {
			return total, fmt.Errorf("mysql queue dedup cleanup: %w", err)
		}
		if n, _ := res.RowsAffected(); n < 1000 {
			break
		}
	}
	return total, nil
}
