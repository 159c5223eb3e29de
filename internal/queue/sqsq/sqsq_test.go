package sqsq_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/sluice-custody/sluice/internal/queue"
	"github.com/sluice-custody/sluice/internal/queue/queuetest"
	"github.com/sluice-custody/sluice/internal/queue/sqsq"
	"github.com/sluice-custody/sluice/internal/testenv"
)

// newQueue returns an SQS backend on the emulator with a prefix no other test uses; its queues are
// deleted at cleanup.
func newQueue(t *testing.T, prefix string) *sqsq.Queue {
	t.Helper()
	if prefix == "" {
		prefix = testenv.UniqueName(t) + "-"
	}
	q, err := sqsq.New(context.Background(), sqsq.Config{
		Region:          "us-east-1",
		Endpoint:        testenv.SQSEndpoint(t),
		Prefix:          prefix,
		AccessKeyID:     "test",
		SecretAccessKey: "test",
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for _, name := range queue.AllQueues() {
			out, err := q.Client().GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(q.PhysicalName(name))})
			if err == nil {
				_, _ = q.Client().DeleteQueue(ctx, &sqs.DeleteQueueInput{QueueUrl: out.QueueUrl})
			}
		}
	})
	return q
}

// TestConformance runs the shared suite against the local-aws-sqs emulator, relaxed where the emulator
// differs from SQS (see the options' docs): no FIFO group locking, receipts not invalidated by a
// re-receive, in-flight messages counted twice by the depth attributes, a release counted as a receive, and
// deduplication ids forgotten when their message is deleted.
func TestConformance(t *testing.T) {
	queuetest.Run(t, func(t *testing.T) queue.Queue { return newQueue(t, "") },
		queuetest.WithoutGroupLocking(),
		queuetest.WithoutStaleReceiptProtection(),
		queuetest.WithApproximateDepth(),
		queuetest.WithApproximateReceiveCounts(),
		queuetest.WithoutDedupInterval(),
	)
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestSetupIsIdempotentAndWiresRedrive(t *testing.T) {
	q := newQueue(t, "")
	if err := q.Setup(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if err := q.Setup(ctx(t)); err != nil {
		t.Fatalf("second setup: %v", err)
	}
	// Another process with the same prefix finds the queues without Setup.
	other := newQueue(t, strings.TrimSuffix(q.PhysicalName(queue.TxRequest), queue.TxRequest))
	if err := other.Send(ctx(t), queue.TxRequest, []byte(`{}`), queue.SendOptions{}); err != nil {
		t.Fatalf("send without setup: %v", err)
	}
	if !strings.HasSuffix(q.PhysicalName(queue.SignedTx), "signed-tx.fifo") || !strings.HasSuffix(q.PhysicalName(queue.SignedTxDLQ), "signed-tx-dlq.fifo") ||
		strings.HasSuffix(q.PhysicalName(queue.TxRequest), ".fifo") {
		t.Fatalf("names: %s %s %s", q.PhysicalName(queue.SignedTx), q.PhysicalName(queue.SignedTxDLQ), q.PhysicalName(queue.TxRequest))
	}
	for _, name := range queue.AllQueues() {
		u, err := q.Client().GetQueueUrl(ctx(t), &sqs.GetQueueUrlInput{QueueName: aws.String(q.PhysicalName(name))})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		a, err := q.Client().GetQueueAttributes(ctx(t), &sqs.GetQueueAttributesInput{QueueUrl: u.QueueUrl,
			AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameAll}})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got := a.Attributes["MessageRetentionPeriod"]; got != "345600" {
			t.Errorf("%s: retention %q, want 345600", name, got)
		}
		dlq := queue.DLQFor(name)
		rp := a.Attributes["RedrivePolicy"]
		if dlq == "" {
			if rp != "" {
				t.Errorf("%s: a DLQ with a redrive policy %s", name, rp)
			}
			continue
		}
		var p struct {
			Target string `json:"deadLetterTargetArn"`
			Max    any    `json:"maxReceiveCount"`
		}
		if err := json.Unmarshal([]byte(rp), &p); err != nil {
			t.Fatalf("%s: redrive policy %q: %v", name, rp, err)
		}
		if !strings.HasSuffix(p.Target, ":"+q.PhysicalName(dlq)) || (p.Max != "5" && p.Max != float64(5)) {
			t.Errorf("%s: redrive policy %s, want %s after 5", name, rp, q.PhysicalName(dlq))
		}
	}
}

func TestFIFOQueueRejectsDelay(t *testing.T) {
	q := newQueue(t, "")
	if err := q.Setup(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if err := q.Send(ctx(t), queue.SignedTx, []byte("x"), queue.SendOptions{GroupID: "g", Delay: time.Second}); err == nil {
		t.Fatal("delay on a FIFO queue accepted")
	}
	// A FIFO send without group or dedup id works (default group, random dedup id): identical bodies
	// are both kept.
	for range 2 {
		if err := q.Send(ctx(t), queue.SignedTx, []byte("same"), queue.SendOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	var n int
	for range 5 {
		ms, err := q.Receive(ctx(t), queue.SignedTx, 10, 30*time.Second, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ms {
			if m.GroupID != sqsq.DefaultGroup {
				t.Fatalf("group %q", m.GroupID)
			}
			n++
			if err := q.Delete(ctx(t), queue.SignedTx, m); err != nil {
				t.Fatal(err)
			}
		}
		if n == 2 {
			break
		}
	}
	if n != 2 {
		t.Fatalf("got %d messages, want 2", n)
	}
}

func TestErrorsNameTheQueue(t *testing.T) {
	q := newQueue(t, "")
	err := q.Send(ctx(t), queue.TxRequest, []byte("x"), queue.SendOptions{})
	if err == nil || !strings.Contains(err.Error(), "tx-request") || !sqsq.IsNotExist(err) {
		t.Fatalf("send to a missing queue: %v", err)
	}
	_, err = q.Receive(ctx(t), queue.TxRequest, 1, time.Second, 0)
	if err == nil || !strings.Contains(err.Error(), "tx-request") {
		t.Fatalf("receive from a missing queue: %v", err)
	}
	if err := q.Setup(ctx(t)); err != nil {
		t.Fatal(err)
	}
	err = q.ChangeVisibility(ctx(t), queue.TxRequest, queue.Message{ID: "m", Receipt: "bogus"}, time.Second)
	if !errors.Is(err, queue.ErrReceiptInvalid) {
		t.Fatalf("change visibility with a bogus receipt: %v, want ErrReceiptInvalid", err)
	}
}
