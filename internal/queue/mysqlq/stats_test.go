package mysqlq_test

import (
	"testing"
	"time"

	"github.com/sluice-custody/sluice/internal/queue"
	"github.com/sluice-custody/sluice/internal/queue/mysqlq"
)

// TestStats checks what the depth and age gauges read: the messages of one queue (delayed ones too)
// and the age of its oldest, by the database's clock; an empty queue has depth 0 and age 0.
func TestStats(t *testing.T) {
	q, _ := newQueue(t, mysqlq.Options{})
	c := ctx(t)
	if st, err := q.Stats(c, queue.TxRequest); err != nil || st.Depth != 0 || st.OldestAge != 0 || !st.OldestKnown {
		t.Fatalf("empty queue stats %+v, %v", st, err)
	}
	if err := q.Send(c, queue.TxRequest, []byte(`{}`), queue.SendOptions{}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if err := q.Send(c, queue.TxRequest, []byte(`{}`), queue.SendOptions{Delay: time.Minute}); err != nil {
		t.Fatal(err)
	}
	if err := q.Send(c, queue.SignedTx, []byte(`{}`), queue.SendOptions{}); err != nil {
		t.Fatal(err)
	}
	st, err := q.Stats(c, queue.TxRequest)
	if err != nil || st.Depth != 2 || st.OldestAge < 300*time.Millisecond || st.OldestAge > 30*time.Second {
		t.Fatalf("stats %+v, %v: want depth 2, oldest 0.3s–30s", st, err)
	}
}
