package mysqlq_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-custody/sluice/internal/queue"
	"github.com/sluice-custody/sluice/internal/queue/mysqlq"
	"github.com/sluice-custody/sluice/internal/queue/queuetest"
	"github.com/sluice-custody/sluice/internal/store"
)

func newQueue(t *testing.T, opts mysqlq.Options) (*mysqlq.Queue, *store.Store) {
	t.Helper()
	s := &store.Store{DB: queuetest.DB(t)}
	q := mysqlq.New(s.DB, opts)
	t.Cleanup(func() { q.Close() })
	return q, s
}

func TestConformance(t *testing.T) {
	queuetest.Run(t, func(t *testing.T) queue.Queue {
		q, _ := newQueue(t, mysqlq.Options{})
		return q
	})
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestSendTxCommitsWithTheTransaction(t *testing.T) {
	q, s := newQueue(t, mysqlq.Options{})
	boom := errors.New("boom")
	err := s.InTx(ctx(t), func(tx *sql.Tx) error {
		if err := q.SendTx(ctx(t), tx, queue.TxRequest, []byte(`{"rolled":"back"}`), queue.SendOptions{DedupID: "d1"}); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("InTx: %v", err)
	}
	if ms, _ := q.Receive(ctx(t), queue.TxRequest, 10, time.Minute, 0); len(ms) != 0 {
		t.Fatalf("rolled-back send delivered: %q", ms[0].Body)
	}
	// An uncommitted send is invisible to receivers and does not block them.
	tx, err := s.DB.BeginTx(ctx(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := q.SendTx(ctx(t), tx, queue.TxRequest, []byte(`{"committed":true}`), queue.SendOptions{DedupID: "d1"}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if ms, err := q.Receive(ctx(t), queue.TxRequest, 10, time.Minute, 0); err != nil || len(ms) != 0 {
		t.Fatalf("receive during an open send tx: %d messages, %v", len(ms), err)
	}
	if el := time.Since(start); el > time.Second {
		t.Fatalf("receive waited %v on an uncommitted send", el)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	ms, err := q.Receive(ctx(t), queue.TxRequest, 10, time.Minute, time.Second)
	if err != nil || len(ms) != 1 || string(ms[0].Body) != `{"committed":true}` {
		t.Fatalf("after commit: %v %v", ms, err)
	}
}

func TestDedupWindowAndPresence(t *testing.T) {
	q, _ := newQueue(t, mysqlq.Options{DedupWindow: 300 * time.Millisecond})
	send := func(body, dedup string) {
		t.Helper()
		if err := q.Send(ctx(t), queue.TxRequest, []byte(body), queue.SendOptions{DedupID: dedup}); err != nil {
			t.Fatal(err)
		}
	}
	send("a", "x")
	send("b", "x") // within the window: dropped
	time.Sleep(400 * time.Millisecond)
	send("c", "x") // window over, but "a" is still queued: dropped
	if n, _ := q.Depth(ctx(t), queue.TxRequest); n != 1 {
		t.Fatalf("depth %d, want 1", n)
	}
	ms, _ := q.Receive(ctx(t), queue.TxRequest, 10, time.Minute, 0)
	if len(ms) != 1 || string(ms[0].Body) != "a" {
		t.Fatalf("got %v", ms)
	}
	if err := q.Delete(ctx(t), queue.TxRequest, ms[0]); err != nil {
		t.Fatal(err)
	}
	send("d", "x") // "a" gone and the window over: accepted
	// The same id on another queue is independent.
	if err := q.Send(ctx(t), queue.TxMonitor, []byte("e"), queue.SendOptions{DedupID: "x"}); err != nil {
		t.Fatal(err)
	}
	ms, _ = q.Receive(ctx(t), queue.TxRequest, 10, time.Minute, 0)
	if len(ms) != 1 || string(ms[0].Body) != "d" {
		t.Fatalf("got %v", ms)
	}
	if n, _ := q.Depth(ctx(t), queue.TxMonitor); n != 1 {
		t.Fatalf("tx-monitor depth %d, want 1", n)
	}
}

func TestConcurrentDedupSendsOneWins(t *testing.T) {
	q, _ := newQueue(t, mysqlq.Options{})
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := q.Send(ctx(t), queue.SignedTx, fmt.Appendf(nil, "%d", i), queue.SendOptions{GroupID: "g", DedupID: "same"}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n, _ := q.Depth(ctx(t), queue.SignedTx); n != 1 {
		t.Fatalf("depth %d after 8 concurrent sends with one dedup id, want 1", n)
	}
}

func TestStaleReceiptIsReported(t *testing.T) {
	q, _ := newQueue(t, mysqlq.Options{})
	if err := q.Send(ctx(t), queue.TxRequest, []byte("x"), queue.SendOptions{}); err != nil {
		t.Fatal(err)
	}
	old, _ := q.Receive(ctx(t), queue.TxRequest, 1, 100*time.Millisecond, time.Second)
	cur, _ := q.Receive(ctx(t), queue.TxRequest, 1, time.Minute, 2*time.Second)
	if len(old) != 1 || len(cur) != 1 || cur[0].ReceiveCount != 2 {
		t.Fatalf("deliveries %v %v", old, cur)
	}
	if err := q.Delete(ctx(t), queue.TxRequest, old[0]); !errors.Is(err, queue.ErrReceiptInvalid) {
		t.Fatalf("stale delete: %v, want ErrReceiptInvalid", err)
	}
	if err := q.ChangeVisibility(ctx(t), queue.TxRequest, old[0], 0); !errors.Is(err, queue.ErrReceiptInvalid) {
		t.Fatalf("stale change visibility: %v, want ErrReceiptInvalid", err)
	}
	if err := q.Delete(ctx(t), queue.TxRequest, queue.Message{Receipt: "garbage"}); !errors.Is(err, queue.ErrReceiptInvalid) {
		t.Fatalf("malformed receipt: %v", err)
	}
	if err := q.Delete(ctx(t), queue.TxRequest, cur[0]); err != nil {
		t.Fatal(err)
	}
	if err := q.ChangeVisibility(ctx(t), queue.TxRequest, cur[0], 0); !errors.Is(err, queue.ErrReceiptInvalid) {
		t.Fatalf("change visibility of a deleted message: %v", err)
	}
}

func TestRedriveKeepsGroupAndID(t *testing.T) {
	q, _ := newQueue(t, mysqlq.Options{})
	if err := q.Send(ctx(t), queue.SignedTx, []byte("n5"), queue.SendOptions{GroupID: "local:0xabc"}); err != nil {
		t.Fatal(err)
	}
	if err := q.Send(ctx(t), queue.SignedTx, []byte("n6"), queue.SendOptions{GroupID: "local:0xabc"}); err != nil {
		t.Fatal(err)
	}
	var id string
	for i := 1; i <= queue.MaxReceiveCount; i++ {
		ms, err := q.Receive(ctx(t), queue.SignedTx, 10, time.Minute, 0)
		if err != nil || len(ms) != 1 || string(ms[0].Body) != "n5" || ms[0].ReceiveCount != i {
			t.Fatalf("delivery %d: %v %v", i, ms, err)
		}
		id = ms[0].ID
		if err := q.ChangeVisibility(ctx(t), queue.SignedTx, ms[0], 0); err != nil {
			t.Fatal(err)
		}
	}
	// The 6th receive moves n5 to the DLQ, which unblocks n6 (next receive).
	ms, _ := q.Receive(ctx(t), queue.SignedTx, 10, time.Minute, time.Second)
	if len(ms) != 1 || string(ms[0].Body) != "n6" || ms[0].ReceiveCount != 1 {
		t.Fatalf("after redrive: %v", ms)
	}
	dl, _ := q.Receive(ctx(t), queue.SignedTxDLQ, 10, time.Minute, 0)
	if len(dl) != 1 || string(dl[0].Body) != "n5" || dl[0].ID != id || dl[0].GroupID != "local:0xabc" || dl[0].ReceiveCount != 1 {
		t.Fatalf("DLQ: %+v", dl)
	}
	// A DLQ has no DLQ: it redelivers forever (until retention).
	for range queue.MaxReceiveCount + 2 {
		if err := q.ChangeVisibility(ctx(t), queue.SignedTxDLQ, dl[0], 0); err != nil {
			t.Fatal(err)
		}
		dl, _ = q.Receive(ctx(t), queue.SignedTxDLQ, 10, time.Minute, 0)
		if len(dl) != 1 {
			t.Fatal("DLQ message vanished")
		}
	}
}

func TestRetentionCleanup(t *testing.T) {
	q, s := newQueue(t, mysqlq.Options{Retention: time.Hour})
	for i := range 3 {
		if err := q.Send(ctx(t), queue.TxRequest, fmt.Appendf(nil, "%d", i), queue.SendOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.DB.ExecContext(ctx(t), "UPDATE queue_messages SET created_at = created_at - INTERVAL 2 HOUR WHERE body IN ('0','1')"); err != nil {
		t.Fatal(err)
	}
	n, err := q.Cleanup(ctx(t))
	if err != nil || n != 2 {
		t.Fatalf("cleanup removed %d, %v; want 2", n, err)
	}
	if d, _ := q.Depth(ctx(t), queue.TxRequest); d != 1 {
		t.Fatalf("depth %d, want 1", d)
	}
}

func TestOpportunisticCleanup(t *testing.T) {
	q, s := newQueue(t, mysqlq.Options{Retention: time.Hour, CleanupEvery: 50 * time.Millisecond})
	if err := q.Send(ctx(t), queue.TxRequest, []byte("old"), queue.SendOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DB.ExecContext(ctx(t), "UPDATE queue_messages SET created_at = created_at - INTERVAL 2 HOUR"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if ms, _ := q.Receive(ctx(t), queue.TxRequest, 10, time.Minute, 0); len(ms) != 0 {
		t.Fatalf("expired message delivered: %q", ms[0].Body)
	}
}

func TestSubSecondVisibilityAndReleaseWakesWaiters(t *testing.T) {
	q, _ := newQueue(t, mysqlq.Options{MaxPollInterval: time.Second})
	if err := q.Send(ctx(t), queue.TxRequest, []byte("x"), queue.SendOptions{}); err != nil {
		t.Fatal(err)
	}
	ms, _ := q.Receive(ctx(t), queue.TxRequest, 1, time.Minute, 0)
	got := make(chan time.Time, 1)
	go func() {
		m, _ := q.Receive(ctx(t), queue.TxRequest, 1, time.Minute, 5*time.Second)
		if len(m) == 1 {
			got <- time.Now()
		}
		close(got)
	}()
	time.Sleep(1500 * time.Millisecond) // the waiter's poll interval has grown to its 1 s maximum
	released := time.Now()
	if err := q.ChangeVisibility(ctx(t), queue.TxRequest, ms[0], 0); err != nil {
		t.Fatal(err)
	}
	at, ok := <-got
	if !ok {
		t.Fatal("waiter got nothing")
	}
	if d := at.Sub(released); d > 300*time.Millisecond {
		t.Fatalf("waiter took %v after the release; the in-process wake-up should be immediate", d)
	}
}

func TestClaimPlansUseTheIndexes(t *testing.T) {
	_, s := newQueue(t, mysqlq.Options{})
	// Enough rows for the optimizer's statistics to matter: 40 groups of 50 and 1,000 ungrouped.
	for g := range 41 {
		var vals []string
		for i := range 50 {
			grp := fmt.Sprintf("'g%d'", g)
			if g == 40 {
				grp = "NULL"
			}
			vals = append(vals, fmt.Sprintf("('signed-tx', UUID(), 'x', %s, UTC_TIMESTAMP(6), UTC_TIMESTAMP(6))", grp))
			_ = i
		}
		if _, err := s.DB.ExecContext(ctx(t), "INSERT INTO queue_messages (queue, msg_id, body, group_id, visible_at, created_at) VALUES "+
			strings.Join(vals, ",")); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.DB.ExecContext(ctx(t), "ANALYZE TABLE queue_messages"); err != nil {
		t.Fatal(err)
	}
	explain := func(query string) []string {
		rows, err := s.DB.QueryContext(ctx(t), "EXPLAIN "+query)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		cols, _ := rows.Columns()
		var plan []string
		for rows.Next() {
			vals := make([]sql.NullString, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			var line []string
			for i, c := range cols {
				line = append(line, c+"="+vals[i].String)
			}
			plan = append(plan, strings.Join(line, " "))
		}
		t.Log(strings.Join(plan, "\n"))
		return plan
	}
	p := explain(mysqlq.ClaimUngroupedSQL(queue.SignedTx, 10))
	if len(p) != 1 || !strings.Contains(p[0], "key=idx_queue_messages_claim") || strings.Contains(p[0], "filesort") {
		t.Fatalf("ungrouped claim is not an ordered range scan of idx_queue_messages_claim:\n%s", strings.Join(p, "\n"))
	}
	p = explain(mysqlq.ClaimGroupHeadsSQL(queue.SignedTx, 10))
	all := strings.Join(p, "\n")
	if !strings.Contains(all, "Using index for group-by") || !strings.Contains(all, "table=m type=eq_ref") {
		t.Fatalf("group heads are not found with a loose index scan:\n%s", all)
	}
}

// BenchmarkThroughput: 2 producers send while 4 consumers receive (batches of 1 or 10) and delete,
// on a pool configured as store.Open does (READ COMMITTED sessions). Reports msgs/s end to end.
func BenchmarkThroughput(b *testing.B) {
	for _, batch := range []int{1, 10} {
		b.Run(fmt.Sprintf("consumers=4/batch=%d", batch), func(b *testing.B) {
			q := mysqlq.New(queuetest.DBWith(b, map[string]string{"tx_isolation": "'READ-COMMITTED'"}), mysqlq.Options{})
			defer q.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			body := []byte(`{"v":1,"type":"withdrawal.requested","id":"0b5f4c1e-8f0e-4a8e-9d0a-3f1b2c3d4e5f","payload":{"withdrawal_id":"x"}}`)
			var sent, done atomic.Int64
			var firstErr atomic.Value
			fail := func(err error) {
				firstErr.CompareAndSwap(nil, err)
				cancel()
			}
			total := int64(b.N)
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			for range 2 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for sent.Add(1) <= total {
						if err := q.Send(ctx, queue.TxRequest, body, queue.SendOptions{}); err != nil {
							fail(fmt.Errorf("send: %w", err))
							return
						}
					}
				}()
			}
			for range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for done.Load() < total && ctx.Err() == nil {
						ms, err := q.Receive(ctx, queue.TxRequest, batch, time.Minute, 100*time.Millisecond)
						if err != nil {
							fail(fmt.Errorf("receive: %w", err))
							return
						}
						for _, m := range ms {
							if err := q.Delete(ctx, queue.TxRequest, m); err != nil {
								fail(fmt.Errorf("delete: %w", err))
								return
							}
						}
						done.Add(int64(len(ms)))
					}
				}()
			}
			wg.Wait()
			el := time.Since(start)
			b.StopTimer()
			if err, _ := firstErr.Load().(error); err != nil {
				b.Fatalf("after %d of %d messages: %v", done.Load(), total, err)
			}
			if done.Load() != total {
				b.Fatalf("handled %d of %d messages", done.Load(), total)
			}
			b.ReportMetric(float64(total)/el.Seconds(), "msgs/s")
		})
	}
}

// A long backlog in one FIFO group (its head in flight) must not slow down receives of everything else:
// group heads are found per group, not by scanning the group's messages.
func TestGroupBacklogDoesNotSlowReceives(t *testing.T) {
	q, s := newQueue(t, mysqlq.Options{})
	conn, err := s.DB.Conn(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(ctx(t), "SET SESSION max_recursive_iterations = 100000"); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(ctx(t), `INSERT INTO queue_messages (queue, msg_id, body, group_id, visible_at, created_at)
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 20000)
SELECT 'signed-tx', UUID(), CONCAT('stuck-', i), 'local:0xstuck', UTC_TIMESTAMP(6), UTC_TIMESTAMP(6) FROM n`); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	head, err := q.Receive(ctx(t), queue.SignedTx, 1, time.Minute, 0)
	if err != nil || len(head) != 1 || string(head[0].Body) != "stuck-1" {
		t.Fatalf("head: %v %v", head, err)
	}
	for i := range 300 {
		if err := q.Send(ctx(t), queue.SignedTx, fmt.Appendf(nil, "other-%d", i), queue.SendOptions{GroupID: fmt.Sprintf("local:0x%d", i%30)}); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	got := 0
	for range 30 {
		ms, err := q.Receive(ctx(t), queue.SignedTx, 10, time.Minute, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ms {
			if strings.HasPrefix(string(m.Body), "stuck-") {
				t.Fatalf("got %q while the group's head is in flight", m.Body)
			}
			got++
			if err := q.Delete(ctx(t), queue.SignedTx, m); err != nil {
				t.Fatal(err)
			}
		}
	}
	per := time.Since(start) / 30
	t.Logf("receive+delete of 10 beside a 20,000-message blocked group: %v per round, %d messages", per, got)
	if got != 300 {
		t.Fatalf("got %d of the 300 other messages", got)
	}
	if per > 100*time.Millisecond {
		t.Fatalf("%v per receive round: the blocked group is being scanned", per)
	}
}
