package sqsq_test

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/sluice-custody/sluice/internal/queue"
)

// TestStats checks the depth gauge's source, and records why there is no age on SQS: the age of the
// oldest message is a CloudWatch metric, not a queue attribute, and asking GetQueueAttributes for it
// is refused (by AWS as InvalidAttributeName; the emulator must not make us think otherwise).
func TestStats(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	q := newQueue(t, "")
	if err := q.Setup(ctx); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if err := q.Send(ctx, queue.TxRequest, []byte(`{}`), queue.SendOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	st, err := q.Stats(ctx, queue.TxRequest)
	if err != nil || st.Depth != 3 || st.OldestKnown || st.OldestAge != 0 {
		t.Fatalf("stats %+v, %v: want depth 3, age unknown", st, err)
	}
	if st, err := q.Stats(ctx, queue.RequestDLQ); err != nil || st.Depth != 0 {
		t.Fatalf("DLQ stats %+v, %v: want depth 0", st, err)
	}
	out, err := q.Client().GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(q.PhysicalName(queue.TxRequest))})
	if err != nil {
		t.Fatal(err)
	}
	attrs, err := q.Client().GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: out.QueueUrl,
		AttributeNames: []types.QueueAttributeName{"ApproximateAgeOfOldestMessage"}})
	if err == nil && attrs.Attributes["ApproximateAgeOfOldestMessage"] != "" {
		t.Fatalf("the emulator answers ApproximateAgeOfOldestMessage=%q: Stats could report the age",
			attrs.Attributes["ApproximateAgeOfOldestMessage"])
	}
	t.Logf("GetQueueAttributes(ApproximateAgeOfOldestMessage): %v, attributes %v", err, attrs)
}
