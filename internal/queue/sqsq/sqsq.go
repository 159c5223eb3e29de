// Package sqsq is the AWS SQS backend of queue.Queue (aws-sdk-go-v2).
//
// Each logical queue maps to one SQS queue named Prefix+name, with a ".fifo" suffix when it is a FIFO
// queue. By default signed-tx and its DLQ are FIFO (ordered per sending address through MessageGroupId);
// every other queue is a standard queue. Setup creates every queue of queue.AllQueues, wires each work
// queue to its DLQ (RedrivePolicy, maxReceiveCount 5) and sets the 4-day retention.
//
// Differences from the MySQL backend, all inherent to SQS:
//   - SendOptions.DedupID and GroupID only mean something on FIFO queues; a standard queue ignores them.
//     A FIFO send without GroupID goes to group DefaultGroup; without DedupID it gets a random
//     deduplication id (so identical bodies are never silently merged).
//   - SQS FIFO queues have no per-message delay: Send with a Delay on a FIFO queue is an error.
//   - Visibility, wait and delay are whole seconds (rounded up); wait is capped at 20 s.
//   - Bodies must be valid UTF-8 text (SQS rejects some control characters); the envelopes are JSON.
//   - Delete with a stale receipt is a no-op on real SQS (the message stays for its new owner); errors
//     that SQS does return for stale receipts wrap queue.ErrReceiptInvalid.
package sqsq

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"
	"github.com/google/uuid"

	"github.com/sluice-custody/sluice/internal/queue"
)

// DefaultGroup is the MessageGroupId of a FIFO send that names no group.
const DefaultGroup = "default"

// Config configures the SQS backend.
type Config struct {
	// Region is the AWS region; required by the SDK (any value works against an emulator).
	Region string
	// Endpoint overrides the SQS endpoint (an emulator or a VPC endpoint); empty means AWS.
	Endpoint string
	// Prefix is prepended to every queue name, e.g. "sluice-prod-".
	Prefix string
	// AccessKeyID and SecretAccessKey (and SessionToken) set static credentials; when empty the SDK's
	// default chain (environment, shared config, instance role, …) is used.
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string
	// FIFO reports whether a logical queue is a FIFO queue; nil means DefaultFIFO.
	FIFO func(name string) bool
	// CallTimeout bounds every SQS call (on top of the long-poll wait for Receive); default 15 s.
	CallTimeout time.Duration
	// VisibilityTimeout is the queues' default visibility timeout set by Setup; default 30 s.
	VisibilityTimeout time.Duration
}

// DefaultFIFO makes signed-tx and signed-tx-dlq FIFO queues.
func DefaultFIFO(name string) bool { return name == queue.SignedTx || name == queue.SignedTxDLQ }

// Queue is the SQS implementation of queue.Queue.
type Queue struct {
	client  *sqs.Client
	cfg     Config
	mu      sync.RWMutex
	urls    map[string]string
	setupMu sync.Mutex
}

var _ queue.Queue = (*Queue)(nil)

// New builds the SQS client. It does not contact SQS; call Setup (or let the first call look the queue
// URL up).
func New(ctx context.Context, cfg Config) (*Queue, error) {
	if cfg.FIFO == nil {
		cfg.FIFO = DefaultFIFO
	}
	if cfg.CallTimeout <= 0 {
		cfg.CallTimeout = 15 * time.Second
	}
	if cfg.VisibilityTimeout <= 0 {
		cfg.VisibilityTimeout = 30 * time.Second
	}
	var loadOpts []func(*config.LoadOptions) error
	if cfg.Region != "" {
		loadOpts = append(loadOpts, config.WithRegion(cfg.Region))
	}
	if cfg.AccessKeyID != "" {
		loadOpts = append(loadOpts, config.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(cfg.AccessKeyID, cfg.SecretAccessKey, cfg.SessionToken)))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, loadOpts...)
	if err != nil {
		return nil, fmt.Errorf("sqs: load aws config: %w", err)
	}
	if awsCfg.Region == "" {
		return nil, errors.New("sqs: no region configured")
	}
	client := sqs.NewFromConfig(awsCfg, func(o *sqs.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
	})
	return &Queue{client: client, cfg: cfg, urls: map[string]string{}}, nil
}

// Client exposes the SDK client (for operational tools: DLQ redrive, purge).
func (q *Queue) Client() *sqs.Client { return q.client }

// PhysicalName is the SQS queue name of a logical queue.
func (q *Queue) PhysicalName(name string) string {
	n := q.cfg.Prefix + name
	if q.cfg.FIFO(name) {
		n += ".fifo"
	}
	return n
}

func (q *Queue) callCtx(ctx context.Context, extra time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, q.cfg.CallTimeout+extra)
}

// Setup creates every queue (DLQs first), sets retention, visibility and the redrive policy. It is
// idempotent: existing queues get their attributes set again.
func (q *Queue) Setup(ctx context.Context) error {
	q.setupMu.Lock()
	defer q.setupMu.Unlock()
	arns := map[string]string{}
	var dlqs, work []string
	for _, name := range queue.AllQueues() {
		if queue.DLQFor(name) == "" {
			dlqs = append(dlqs, name)
		} else {
			work = append(work, name)
		}
	}
	for _, name := range append(dlqs, work...) {
		phys := q.PhysicalName(name)
		if len(phys) > 80 {
			return fmt.Errorf("sqs setup %s: queue name %q longer than 80 characters", name, phys)
		}
		create := map[string]string{}
		if q.cfg.FIFO(name) {
			create[string(types.QueueAttributeNameFifoQueue)] = "true"
		}
		url, err := q.ensure(ctx, phys, create)
		if err != nil {
			return err
		}
		attrs := map[string]string{
			string(types.QueueAttributeNameMessageRetentionPeriod): strconv.Itoa(int(queue.Retention / time.Second)),
			string(types.QueueAttributeNameVisibilityTimeout):      strconv.Itoa(seconds(q.cfg.VisibilityTimeout, 43200)),
		}
		if dlq := queue.DLQFor(name); dlq != "" {
			arn, ok := arns[dlq]
			if !ok {
				return fmt.Errorf("sqs setup %s: no ARN for DLQ %s", name, dlq)
			}
			policy, _ := json.Marshal(map[string]string{
				"deadLetterTargetArn": arn,
				"maxReceiveCount":     strconv.Itoa(queue.MaxReceiveCount),
			})
			attrs[string(types.QueueAttributeNameRedrivePolicy)] = string(policy)
		}
		cctx, cancel := q.callCtx(ctx, 0)
		_, err = q.client.SetQueueAttributes(cctx, &sqs.SetQueueAttributesInput{QueueUrl: aws.String(url), Attributes: attrs})
		cancel()
		if err != nil {
			return fmt.Errorf("sqs set attributes %s: %w", phys, err)
		}
		if queue.DLQFor(name) == "" {
			cctx, cancel = q.callCtx(ctx, 0)
			ga, err := q.client.GetQueueAttributes(cctx, &sqs.GetQueueAttributesInput{
				QueueUrl:       aws.String(url),
				AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameQueueArn},
			})
			cancel()
			if err != nil {
				return fmt.Errorf("sqs get arn %s: %w", phys, err)
			}
			arn := ga.Attributes[string(types.QueueAttributeNameQueueArn)]
			if arn == "" {
				return fmt.Errorf("sqs get arn %s: empty QueueArn", phys)
			}
			arns[name] = arn
		}
		q.mu.Lock()
		q.urls[name] = url
		q.mu.Unlock()
	}
	return nil
}

// ensure returns the URL of queue phys, creating it when it does not exist. CreateQueue fails on an
// existing queue whose attributes differ from the ones given, so an existing queue is looked up first and
// its attributes are set separately.
func (q *Queue) ensure(ctx context.Context, phys string, create map[string]string) (string, error) {
	lookup := func() (string, error) {
		cctx, cancel := q.callCtx(ctx, 0)
		defer cancel()
		out, err := q.client.GetQueueUrl(cctx, &sqs.GetQueueUrlInput{QueueName: aws.String(phys)})
		if err != nil {
			return "", err
		}
		return aws.ToString(out.QueueUrl), nil
	}
	url, err := lookup()
	if err == nil {
		return url, nil
	}
	if !IsNotExist(err) {
		return "", fmt.Errorf("sqs queue url %s: %w", phys, err)
	}
	cctx, cancel := q.callCtx(ctx, 0)
	out, err := q.client.CreateQueue(cctx, &sqs.CreateQueueInput{QueueName: aws.String(phys), Attributes: create})
	cancel()
	if err == nil {
		return aws.ToString(out.QueueUrl), nil
	}
	if isExists(err) { // created concurrently by another process
		if url, err2 := lookup(); err2 == nil {
			return url, nil
		}
	}
	return "", fmt.Errorf("sqs create queue %s: %w", phys, err)
}

func isExists(err error) bool {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		c := ae.ErrorCode()
		return c == "QueueNameExists" || c == "QueueAlreadyExists"
	}
	return false
}

// url returns the cached URL of a logical queue, looking it up once when Setup was not called here.
func (q *Queue) url(ctx context.Context, name string) (string, error) {
	q.mu.RLock()
	u, ok := q.urls[name]
	q.mu.RUnlock()
	if ok {
		return u, nil
	}
	cctx, cancel := q.callCtx(ctx, 0)
	defer cancel()
	out, err := q.client.GetQueueUrl(cctx, &sqs.GetQueueUrlInput{QueueName: aws.String(q.PhysicalName(name))})
	if err != nil {
		return "", fmt.Errorf("sqs queue url %s: %w", name, err)
	}
	u = aws.ToString(out.QueueUrl)
	q.mu.Lock()
	q.urls[name] = u
	q.mu.Unlock()
	return u, nil
}

// Send enqueues body.
func (q *Queue) Send(ctx context.Context, name string, body []byte, opts queue.SendOptions) error {
	u, err := q.url(ctx, name)
	if err != nil {
		return err
	}
	in := &sqs.SendMessageInput{QueueUrl: aws.String(u), MessageBody: aws.String(string(body))}
	if q.cfg.FIFO(name) {
		if opts.Delay > 0 {
			return fmt.Errorf("sqs send %s: per-message delay is not supported on a FIFO queue", name)
		}
		g := opts.GroupID
		if g == "" {
			g = DefaultGroup
		}
		d := opts.DedupID
		if d == "" {
			d = uuid.NewString()
		}
		in.MessageGroupId = aws.String(g)
		in.MessageDeduplicationId = aws.String(dedupToken(d))
	} else if opts.Delay > 0 {
		in.DelaySeconds = int32(seconds(opts.Delay, 900))
	}
	cctx, cancel := q.callCtx(ctx, 0)
	defer cancel()
	if _, err := q.client.SendMessage(cctx, in); err != nil {
		return fmt.Errorf("sqs send %s: %w", name, err)
	}
	return nil
}

// dedupToken keeps a deduplication id within SQS's limits (128 characters of [!-~]).
func dedupToken(s string) string {
	ok := len(s) <= 128
	for i := 0; ok && i < len(s); i++ {
		if s[i] < '!' || s[i] > '~' {
			ok = false
		}
	}
	if ok {
		return s
	}
	return uuid.NewSHA1(uuid.NameSpaceURL, []byte(s)).String()
}

// Receive long-polls for up to max (1–10) messages.
func (q *Queue) Receive(ctx context.Context, name string, n int, visibility, wait time.Duration) ([]queue.Message, error) {
	u, err := q.url(ctx, name)
	if err != nil {
		return nil, err
	}
	n = min(max(n, 1), 10)
	waitS := seconds(wait, 20)
	in := &sqs.ReceiveMessageInput{
		QueueUrl:            aws.String(u),
		MaxNumberOfMessages: int32(n),
		VisibilityTimeout:   int32(seconds(visibility, 43200)),
		WaitTimeSeconds:     int32(waitS),
		// The emulator honours only the deprecated AttributeNames; AWS honours both.
		AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameAll},
		MessageSystemAttributeNames: []types.MessageSystemAttributeName{
			types.MessageSystemAttributeNameApproximateReceiveCount,
			types.MessageSystemAttributeNameMessageGroupId,
		},
	}
	cctx, cancel := q.callCtx(ctx, time.Duration(waitS)*time.Second)
	defer cancel()
	out, err := q.client.ReceiveMessage(cctx, in)
	if err != nil {
		return nil, fmt.Errorf("sqs receive %s: %w", name, err)
	}
	msgs := make([]queue.Message, 0, len(out.Messages))
	for _, m := range out.Messages {
		rc, _ := strconv.Atoi(m.Attributes[string(types.MessageSystemAttributeNameApproximateReceiveCount)])
		msgs = append(msgs, queue.Message{
			ID:           aws.ToString(m.MessageId),
			Body:         []byte(aws.ToString(m.Body)),
			GroupID:      m.Attributes[string(types.MessageSystemAttributeNameMessageGroupId)],
			ReceiveCount: rc,
			Receipt:      aws.ToString(m.ReceiptHandle),
		})
	}
	return msgs, nil
}

// Delete removes a received message. A stale receipt is a no-op on AWS; an error SQS returns for it
// wraps queue.ErrReceiptInvalid.
func (q *Queue) Delete(ctx context.Context, name string, m queue.Message) error {
	u, err := q.url(ctx, name)
	if err != nil {
		return err
	}
	cctx, cancel := q.callCtx(ctx, 0)
	defer cancel()
	_, err = q.client.DeleteMessage(cctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(u), ReceiptHandle: aws.String(m.Receipt)})
	if err != nil {
		return fmt.Errorf("sqs delete %s message %s: %w", name, m.ID, receiptErr(err))
	}
	return nil
}

// ChangeVisibility hides the message for d more (whole seconds, rounded up); d = 0 releases it. Releasing
// a message that is no longer in flight is not an error.
func (q *Queue) ChangeVisibility(ctx context.Context, name string, m queue.Message, d time.Duration) error {
	u, err := q.url(ctx, name)
	if err != nil {
		return err
	}
	cctx, cancel := q.callCtx(ctx, 0)
	defer cancel()
	_, err = q.client.ChangeMessageVisibility(cctx, &sqs.ChangeMessageVisibilityInput{
		QueueUrl:          aws.String(u),
		ReceiptHandle:     aws.String(m.Receipt),
		VisibilityTimeout: int32(seconds(d, 43200)),
	})
	if err != nil {
		var ni *types.MessageNotInflight
		if d == 0 && errors.As(err, &ni) {
			return nil
		}
		return fmt.Errorf("sqs change visibility %s message %s: %w", name, m.ID, receiptErr(err))
	}
	return nil
}

// receiptErr marks the errors SQS returns for a receipt that no longer names the current delivery.
func receiptErr(err error) error {
	var ri *types.ReceiptHandleIsInvalid
	var ni *types.MessageNotInflight
	if errors.As(err, &ri) || errors.As(err, &ni) {
		return fmt.Errorf("%w: %w", queue.ErrReceiptInvalid, err)
	}
	return err
}

// Depth is ApproximateNumberOfMessages + …NotVisible + …Delayed: approximate on AWS (eventually
// consistent, and the emulator also counts in-flight messages in the first number).
func (q *Queue) Depth(ctx context.Context, name string) (int, error) {
	u, err := q.url(ctx, name)
	if err != nil {
		return 0, err
	}
	cctx, cancel := q.callCtx(ctx, 0)
	defer cancel()
	out, err := q.client.GetQueueAttributes(cctx, &sqs.GetQueueAttributesInput{
		QueueUrl: aws.String(u),
		AttributeNames: []types.QueueAttributeName{
			types.QueueAttributeNameApproximateNumberOfMessages,
			types.QueueAttributeNameApproximateNumberOfMessagesNotVisible,
			types.QueueAttributeNameApproximateNumberOfMessagesDelayed,
		},
	})
	if err != nil {
		return 0, fmt.Errorf("sqs depth %s: %w", name, err)
	}
	n := 0
	for _, a := range []types.QueueAttributeName{
		types.QueueAttributeNameApproximateNumberOfMessages,
		types.QueueAttributeNameApproximateNumberOfMessagesNotVisible,
		types.QueueAttributeNameApproximateNumberOfMessagesDelayed,
	} {
		if v := out.Attributes[string(a)]; v != "" {
			x, err := strconv.Atoi(v)
			if err != nil {
				return 0, fmt.Errorf("sqs depth %s: attribute %s=%q: %w", name, a, v, err)
			}
			n += x
		}
	}
	return n, nil
}

// Stats is Depth; the age of the oldest message is not known. SQS publishes it only as the CloudWatch
// metric ApproximateAgeOfOldestMessage: GetQueueAttributes has no such attribute (AWS refuses the name
// as InvalidAttributeName), so it is watched there.
func (q *Queue) Stats(ctx context.Context, name string) (queue.Stats, error) {
	n, err := q.Depth(ctx, name)
	if err != nil {
		return queue.Stats{}, err
	}
	return queue.Stats{Depth: n}, nil
}

// seconds rounds d up to whole seconds within [0, limit].
func seconds(d time.Duration, limit int) int {
	if d <= 0 {
		return 0
	}
	s := int(math.Ceil(d.Seconds()))
	return min(s, limit)
}

// IsNotExist reports whether err says a queue does not exist.
func IsNotExist(err error) bool {
	var ne *types.QueueDoesNotExist
	if errors.As(err, &ne) {
		return true
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		c := ae.ErrorCode()
		return c == "QueueDoesNotExist" || c == "AWS.SimpleQueueService.NonExistentQueue"
	}
	return false
}
