package embedded_test

import (
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/sluice-custody/sluice/internal/embedded"
	"github.com/sluice-custody/sluice/internal/queue"
	"github.com/sluice-custody/sluice/internal/queue/mysqlq"
	"github.com/sluice-custody/sluice/internal/queue/queuetest"
	"github.com/sluice-custody/sluice/internal/store"
)

// queueDB opens a fresh, migrated database of m as queuetest.DB does for MariaDB: the driver's
// defaults, parsed times in UTC, 30 connections.
func queueDB(t testing.TB, m *embedded.MySQL) *sql.DB {
	t.Helper()
	cfg, err := mysql.ParseDSN(freshDSN(t, m))
	if err != nil {
		t.Fatal(err)
	}
	cfg.ParseTime = true
	cfg.Loc = time.UTC
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(conn)
	db.SetMaxOpenConns(30)
	db.SetMaxIdleConns(30)
	t.Cleanup(func() { db.Close() })
	if err := (&store.Store{DB: db}).Migrate(ctxT(t, 30*time.Second)); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return db
}

func newQueue(t testing.TB, db *sql.DB, opts mysqlq.Options) *mysqlq.Queue {
	q := mysqlq.New(db, opts)
	t.Cleanup(func() { q.Close() })
	return q
}

// The conformance suite every queue backend passes, against the embedded server: its subtests run in
// parallel, each on its own database of one server (as `sluice dev` has one server).
func TestQueueConformance(t *testing.T) {
	m := startMySQL(t, embedded.MySQLOptions{})
	queuetest.Run(t, func(t *testing.T) queue.Queue {
		return newQueue(t, queueDB(t, m), mysqlq.Options{})
	})
}

// Several consumers claiming batches of one queue: every message is delivered to exactly one of
// them, none is lost.
func TestQueueClaimsExactlyOnce(t *testing.T) {
	m := startMySQL(t, embedded.MySQLOptions{})
	q := newQueue(t, queueDB(t, m), mysqlq.Options{})
	ctx := ctxT(t, 120*time.Second)
	const n, producers, consumers = 2000, 4, 8
	start := time.Now()
	var wg sync.WaitGroup
	for p := range producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := p; i < n; i += producers {
				if err := q.Send(ctx, queue.TxRequest, fmt.Appendf(nil, `{"i":%d}`, i), queue.SendOptions{}); err != nil {
					t.Errorf("send: %v", err)
					return
				}
			}
		}()
	}
	var mu sync.Mutex
	seen := map[string]int{}
	var total atomic.Int64
	for range consumers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for idle := 0; idle < 3 && ctx.Err() == nil; {
				ms, err := q.Receive(ctx, queue.TxRequest, 10, time.Minute, 500*time.Millisecond)
				if err != nil {
					t.Errorf("receive: %v", err)
					return
				}
				if len(ms) == 0 {
					idle++
					continue
				}
				idle = 0
				mu.Lock()
				for _, m := range ms {
					seen[m.ID]++
				}
				mu.Unlock()
				total.Add(int64(len(ms)))
				for _, m := range ms {
					if err := q.Delete(ctx, queue.TxRequest, m); err != nil {
						t.Errorf("delete: %v", err)
					}
				}
			}
		}()
	}
	wg.Wait()
	el := time.Since(start)
	if len(seen) != n || total.Load() != n {
		t.Fatalf("%d distinct messages in %d deliveries, want %d and %d", len(seen), total.Load(), n, n)
	}
	for id, c := range seen {
		if c != 1 {
			t.Fatalf("message %s delivered %d times", id, c)
		}
	}
	t.Logf("%d messages, %d producers, %d consumers (batches of 10): %v including 1.5 s of idle polls at the end", n, producers, consumers, el)
}

// Eight concurrent sends with one dedup id leave one message (the upsert on queue_dedup and the
// locking read that follows it).
func TestQueueConcurrentDedup(t *testing.T) {
	m := startMySQL(t, embedded.MySQLOptions{})
	q := newQueue(t, queueDB(t, m), mysqlq.Options{})
	ctx := ctxT(t, 30*time.Second)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := q.Send(ctx, queue.SignedTx, fmt.Appendf(nil, "%d", i), queue.SendOptions{GroupID: "g", DedupID: "same"}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n, err := q.Depth(ctx, queue.SignedTx); err != nil || n != 1 {
		t.Fatalf("depth %d %v after 8 concurrent sends with one dedup id, want 1", n, err)
	}
}

func TestQueueRetentionCleanup(t *testing.T) {
	m := startMySQL(t, embedded.MySQLOptions{})
	db := queueDB(t, m)
	q := newQueue(t, db, mysqlq.Options{Retention: time.Hour})
	ctx := ctxT(t, 30*time.Second)
	for i := range 3 {
		if err := q.Send(ctx, queue.TxRequest, fmt.Appendf(nil, "%d", i), queue.SendOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.ExecContext(ctx, "UPDATE queue_messages SET created_at = created_at - INTERVAL 2 HOUR WHERE body IN ('0','1')"); err != nil {
		t.Fatal(err)
	}
	n, err := q.Cleanup(ctx)
	if err != nil || n != 2 {
		t.Fatalf("cleanup removed %d, %v; want 2", n, err)
	}
	if d, _ := q.Depth(ctx, queue.TxRequest); d != 1 {
		t.Fatalf("depth %d, want 1", d)
	}
}

// The API's path: the withdrawal row and its tx-request message commit together (SendTx in
// CreateWithdrawal's transaction), or neither does.
func TestCreateWithdrawalEnqueuesInTheSameTransaction(t *testing.T) {
	m := startMySQL(t, embedded.MySQLOptions{})
	s := migrated(t, m)
	q := newQueue(t, s.DB, mysqlq.Options{})
	ctx := ctxT(t, 30*time.Second)
	c, err := s.EnsureAPIClient(ctx, "exchange", "sk_q")
	if err != nil {
		t.Fatal(err)
	}
	w := newWithdrawal(c.ID, "ext-q")
	if _, _, err := s.CreateWithdrawal(ctx, w, func(tx *sql.Tx) error {
		return q.SendTx(ctx, tx, queue.TxRequest, []byte(`{"withdrawal_id":"`+w.ID+`"}`), queue.SendOptions{})
	}); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("enqueue failed")
	w2 := newWithdrawal(c.ID, "ext-q2")
	if _, _, err := s.CreateWithdrawal(ctx, w2, func(tx *sql.Tx) error {
		if err := q.SendTx(ctx, tx, queue.TxRequest, []byte(`{"withdrawal_id":"`+w2.ID+`"}`), queue.SendOptions{}); err != nil {
			return err
		}
		return boom
	}); !errors.Is(err, boom) {
		t.Fatalf("create with failing enqueue: %v", err)
	}
	if _, err := s.GetWithdrawal(ctx, w2.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("rolled-back withdrawal: %v", err)
	}
	ms, err := q.Receive(ctx, queue.TxRequest, 10, time.Minute, time.Second)
	if err != nil || len(ms) != 1 || string(ms[0].Body) != `{"withdrawal_id":"`+w.ID+`"}` {
		t.Fatalf("received %v %v; want only the committed withdrawal's message", ms, err)
	}
}
