package recovery

// DLQ drain: one handler per dead-letter queue, acting by the error class the consumer wrote into the
// DeadLetter (see docs/architecture.md, "DLQ handling"). Every decision is written to
// recovery_decisions; the decision that finishes a message is written in the same database
// transaction as what it does (the redriven message, a re-fee request, a withdrawal's move to FAILED,
// the parked copy), and its unique key makes a redelivered DLQ message — the consumer can die after
// acting and before deleting it — find the decision taken instead of acting twice.

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluice-custody/sluice/internal/alert"
	"github.com/sluice-custody/sluice/internal/queue"
	"github.com/sluice-custody/sluice/internal/store"
	"github.com/sluice-custody/sluice/internal/txerr"
)

// DLQs are the dead-letter queues the drain consumes.
var DLQs = []string{queue.RequestDLQ, queue.SignedTxDLQ, queue.BroadcastTxDLQ}

// SourceOf maps a DLQ to the work queue its messages came from ("" for a queue that is no DLQ).
func SourceOf(dlq string) string {
	for _, q := range queue.WorkQueues {
		if queue.DLQFor(q) == dlq {
			return q
		}
	}
	return ""
}

// Decision actions, as recorded in recovery_decisions and counted by DLQMetrics.
const (
	ActionRedrive  = "redrive"
	ActionGapFill  = "gap_fill"
	ActionRefee    = "refee"
	ActionFunds    = "wait_funds"
	ActionSettle   = "settle"
	ActionConflict = "conflict"
	ActionWait     = "wait"
	ActionFailed   = "failed"
	ActionParked   = "parked"
	ActionDone     = "done"
)

// DLQMetrics is what the drain counts.
type DLQMetrics interface {
	// Decision counts a decision about a DLQ message, by DLQ, action and error class.
	Decision(dlq, action, errType string)
}

// NewDLQMetrics registers sluice_recovery_dlq_decisions_total on reg.
func NewDLQMetrics(reg prometheus.Registerer) DLQMetrics {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sluice_recovery_dlq_decisions_total",
		Help: "Decisions of the DLQ drain, by DLQ, action (redrive, gap_fill, refee, wait_funds, settle, conflict, wait, failed, parked, done) and error class.",
	}, []string{"queue", "action", "error_type"})
	reg.MustRegister(c)
	return promDLQMetrics{c}
}

type promDLQMetrics struct{ c *prometheus.CounterVec }

func (m promDLQMetrics) Decision(dlq, action, errType string) {
	m.c.WithLabelValues(dlq, action, boundedType(errType)).Inc()
}

// boundedType keeps the error_type label to the known classes: a DLQ body is not trusted input.
func boundedType(t string) string {
	switch txerr.Type(t) {
	case txerr.InsufficientFunds, txerr.InvalidTransaction, txerr.ExecutionReverted, txerr.Unknown, txerr.Network,
		txerr.Timeout, txerr.NonceTooLow, txerr.NonceTooHigh, txerr.GasPriceTooLow, txerr.ReplacementUnderpriced,
		txerr.OutOfGas, txerr.AlreadyKnown:
		return t
	case "":
		return "NONE"
	}
	return "OTHER"
}

// NopDLQMetrics counts nothing, for tests.
func NopDLQMetrics() DLQMetrics { return nopDLQMetrics{} }

type nopDLQMetrics struct{}

func (nopDLQMetrics) Decision(string, string, string) {}

// DrainDeps are the collaborators a Drainer cannot work without, then its settings (zero: default).
type DrainDeps struct {
	Store *store.Store
	// Queue takes what a decision sends (the redriven message, a re-fee or monitor request) in the
	// database transaction that records the decision.
	Queue  queue.TxSender
	Alerts alert.Notifier
	// Conflicts finds who took a nonce (NONCE_TOO_LOW, nonce_conflict, a permanent error on a recorded
	// transaction) and applies a final foreign one.
	Conflicts *ConflictResolver
	// FillGaps fills the hot wallets' nonce gaps now (the gap filler's Once); nil leaves it to the
	// filler's own sweep.
	FillGaps func(ctx context.Context) error

	// BackoffBase is the wait before the first redrive of a message (default 10 s); it doubles with
	// each redrive of the same message, up to BackoffMax (default 15 min).
	BackoffBase time.Duration
	BackoffMax  time.Duration
	// MaxRedrives is how often one message is redriven before it is parked for a person (default 10).
	// A message waiting for funds is not bounded: its alert stays open instead.
	MaxRedrives int
}

// Drainer drains the DLQs.
type Drainer struct {
	d   DrainDeps
	log *slog.Logger
	m   DLQMetrics
	now func() time.Time
}

// NewDrainer checks d (a missing dependency is an error naming it) and builds the drain. A nil log
// discards; m may be NopDLQMetrics().
func NewDrainer(d DrainDeps, log *slog.Logger, m DLQMetrics) (*Drainer, error) {
	switch {
	case d.Store == nil:
		return nil, errors.New("dlq drain: Store is required")
	case d.Queue == nil:
		return nil, errors.New("dlq drain: Queue is required")
	case d.Alerts == nil:
		return nil, errors.New("dlq drain: Alerts is required (alert.Nop{} for none)")
	case d.Conflicts == nil:
		return nil, errors.New("dlq drain: Conflicts is required")
	case m == nil:
		return nil, errors.New("dlq drain: Metrics is required (NopDLQMetrics() for none)")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if d.BackoffBase <= 0 {
		d.BackoffBase = 10 * time.Second
	}
	if d.BackoffMax <= 0 {
		d.BackoffMax = 15 * time.Minute
	}
	if d.MaxRedrives <= 0 {
		d.MaxRedrives = 10
	}
	return &Drainer{d: d, log: log.With("component", "dlq_drain"), m: m, now: time.Now}, nil
}

// ErrNotDue is returned (wrapped) by a handler for a message whose redrive is not due yet, or that waits
// for the chain (a foreign transaction not yet final): the consumer hides it and delivers it again.
// Run the DLQ consumers with a Visibility of a few minutes so that these waits are not too frequent.
var ErrNotDue = errors.New("not due yet")

// Handler returns the handler of DLQ dlq, for a queue.Consumer on it.
func (dr *Drainer) Handler(dlq string) queue.Handler {
	return func(ctx context.Context, m queue.Message) error { return dr.Handle(ctx, dlq, m) }
}

// dead is one DLQ message, as far as it decodes.
type dead struct {
	dlq     string
	m       queue.Message
	src     string // the work queue it came from
	orig    []byte
	env     queue.Envelope
	class   txerr.Type // "" when the backend moved it without a DeadLetter
	code    string
	errMsg  string
	groupID string
	at      time.Time // when it was dead-lettered (zero when unknown)
}

func (d *dead) decision(action, reason string) store.Decision {
	return store.Decision{Queue: d.dlq, MessageID: d.m.ID, Action: action, ErrorType: string(d.class), ErrorCode: d.code, Reason: reason}
}

// Handle decides about one message of DLQ dlq.
func (dr *Drainer) Handle(ctx context.Context, dlq string, m queue.Message) error {
	if action, ok, err := dr.d.Store.DecisionTaken(ctx, dlq, m.ID); err != nil {
		return err
	} else if ok {
		dr.log.Info("decision already taken for this message; deleting it", "dlq", dlq, "message_id", m.ID, "action", action)
		return nil
	}
	d := &dead{dlq: dlq, m: m, src: SourceOf(dlq), groupID: m.GroupID}
	var dl queue.DeadLetter
	if err := json.Unmarshal(m.Body, &dl); err == nil && len(dl.OriginalMessage) > 0 && dl.Error.Type != "" {
		d.orig, d.class, d.code, d.errMsg, d.at = dl.OriginalMessage, txerr.Type(dl.Error.Type), dl.Error.Code, dl.Error.Message, dl.Meta.Timestamp
		if q, ok := dl.Error.Details["queue"].(string); ok && q != "" && queue.DLQFor(q) == dlq {
			d.src = q
		}
		if g, ok := dl.Error.Details["group_id"].(string); ok && g != "" {
			d.groupID = g
		}
	} else {
		// Moved by the backend after MaxReceiveCount deliveries without a handler's verdict (consumers
		// died or timed out): the body is the original message itself.
		d.orig = m.Body
	}
	if d.src == "" {
		return dr.park(ctx, d, fmt.Sprintf("queue %q is not a DLQ the drain knows", dlq))
	}
	env, err := queue.ParseEnvelope(d.orig, "")
	if err != nil {
		return dr.park(ctx, d, fmt.Sprintf("the message does not decode: %v", err))
	}
	d.env = env
	if d.code == "bad_message" {
		return dr.park(ctx, d, "the consumer could not decode the message: "+d.errMsg)
	}
	switch env.Type {
	case queue.TypeWithdrawalRequested:
		_, p, err := queue.Decode[queue.WithdrawalRequested](d.orig, env.Type)
		if err != nil {
			return dr.park(ctx, d, err.Error())
		}
		return dr.withdrawal(ctx, d, p.WithdrawalID)
	case queue.TypeTxRefeeRequested:
		_, p, err := queue.Decode[queue.TxRefeeRequested](d.orig, env.Type)
		if err != nil {
			return dr.park(ctx, d, err.Error())
		}
		return dr.sentTx(ctx, d, p.SentTxID)
	case queue.TypeTxSigned:
		_, p, err := queue.Decode[queue.TxSigned](d.orig, env.Type)
		if err != nil {
			return dr.park(ctx, d, err.Error())
		}
		if d.groupID == "" && p.Chain != "" && p.From != "" {
			d.groupID = queue.GroupID(p.Chain, p.From)
		}
		return dr.sentTx(ctx, d, p.SentTxID)
	case queue.TypeTxBroadcasted:
		_, p, err := queue.Decode[queue.TxBroadcasted](d.orig, env.Type)
		if err != nil {
			return dr.park(ctx, d, err.Error())
		}
		return dr.sentTx(ctx, d, p.SentTxID)
	}
	return dr.park(ctx, d, fmt.Sprintf("message type %q is not one the drain knows", env.Type))
}

// withdrawal decides about a tx-request for a withdrawal.
func (dr *Drainer) withdrawal(ctx context.Context, d *dead, id string) error {
	w, err := dr.d.Store.GetWithdrawal(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return dr.park(ctx, d, fmt.Sprintf("withdrawal %s does not exist", id))
	}
	if err != nil {
		return err
	}
	if w.Status.Terminal() {
		return dr.finish(ctx, d, d.decisionFor(ActionDone, fmt.Sprintf("withdrawal %s is %s already", w.ID, w.Status), w.ID), nil)
	}
	if w.SentTxID != nil {
		// A transaction is recorded: whatever the error, it is about that transaction now (the signer
		// re-queues it when the request comes back; it never signs a second one).
		return dr.sentTx(ctx, d, *w.SentTxID)
	}
	switch {
	case d.class == txerr.InvalidTransaction || d.class == txerr.ExecutionReverted:
		return dr.fail(ctx, d, w)
	case d.class == txerr.InsufficientFunds:
		wallet := ""
		if cd, ok := dr.d.Conflicts.chains[w.Chain]; ok && len(cd.Config.HotWallets) > 0 {
			wallet = cd.Config.HotWallets[0].Common().Hex()
		}
		dr.fundsAlert(ctx, d, w.Chain, wallet, w.Asset)
		return dr.redrive(ctx, d, ActionFunds, "waiting for the hot wallet to be funded", nil, w.ID)
	case d.class == txerr.Unknown || d.class == txerr.OutOfGas:
		return dr.park(ctx, d, fmt.Sprintf("withdrawal %s failed for a reason nobody classified (%s): %s", w.ID, d.class, d.errMsg))
	}
	return dr.redrive(ctx, d, ActionRedrive, "retryable failure", nil, w.ID)
}

// sentTx decides about a message concerning a recorded transaction (signed-tx, tx-monitor, a re-fee
// request, or a tx-request whose withdrawal has one).
func (dr *Drainer) sentTx(ctx context.Context, d *dead, id int64) error {
	st, err := dr.d.Store.GetSentTx(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return dr.park(ctx, d, fmt.Sprintf("sent transaction %d does not exist", id))
	}
	if err != nil {
		return err
	}
	switch st.Status {
	case store.TxConfirmed, store.TxFailed, store.TxConflicted:
		dec := d.decision(ActionDone, fmt.Sprintf("sent tx %d is %s already", st.ID, st.Status))
		dec.SentTxID = &st.ID
		return dr.finish(ctx, d, dec, nil)
	}
	switch {
	case d.code == "nonce_conflict" || d.class == txerr.NonceTooLow:
		return dr.nonceTaken(ctx, d, st)
	case d.class == txerr.NonceTooHigh:
		if dr.d.FillGaps != nil {
			if err := dr.d.FillGaps(ctx); err != nil {
				return fmt.Errorf("fill nonce gaps before redriving: %w", err)
			}
		}
		return dr.redriveTx(ctx, d, st, ActionGapFill, "nonce too high: gaps below it filled, then redriven", nil)
	case d.class == txerr.GasPriceTooLow || d.class == txerr.ReplacementUnderpriced:
		if st.Status != store.TxSigned {
			return dr.redriveTx(ctx, d, st, ActionRedrive, "fees refused but the transaction is sent already; redriven", nil)
		}
		p := queue.TxRefeeRequested{SentTxID: st.ID, Hash: st.Hash}
		if tip, ok := txerr.MinTipNeeded(errors.New(d.errMsg)); ok {
			p.MinTipCap = tip.String()
		}
		refee, err := queue.NewEnvelope(ctx, queue.TypeTxRefeeRequested, "refee-"+d.m.ID, st.CorrelationID, p)
		if err != nil {
			return err
		}
		return dr.redriveTx(ctx, d, st, ActionRefee, "fees refused: the signer signs a new attempt with higher fees; redriven",
			func(tx *sql.Tx) error { return dr.d.Queue.SendTx(ctx, tx, queue.TxRequest, refee, queue.SendOptions{}) })
	case d.class == txerr.InsufficientFunds:
		asset := ""
		if ws, err := dr.d.Store.WithdrawalsBySentTx(ctx, dr.d.Store.DB, st.ID); err == nil && len(ws) > 0 {
			asset = ws[0].Asset
		}
		if cd, ok := dr.d.Conflicts.chains[st.Chain]; ok && asset == "" {
			for _, a := range cd.Config.Assets {
				if a.Native() {
					asset = a.Symbol
				}
			}
		}
		dr.fundsAlert(ctx, d, st.Chain, st.From, asset)
		return dr.redriveTx(ctx, d, st, ActionFunds, "waiting for the hot wallet to be funded", nil)
	case d.class == txerr.InvalidTransaction || d.class == txerr.ExecutionReverted || d.class == txerr.Unknown || d.class == txerr.OutOfGas:
		// A recorded transaction could still be mined while its nonce is free: never fail it; only the
		// chain can say it is out of the race.
		return dr.nonceTaken(ctx, d, st)
	}
	return dr.redriveTx(ctx, d, st, ActionRedrive, "retryable failure", nil)
}

// nonceTaken asks the chain who holds st's nonce: ours mined → the monitor settles it; a foreign
// transaction, final → the conflict is applied, not yet final → wait; nobody yet → redrive a nonce too
// low (the node was behind), wait on a nonce conflict, park anything else.
func (dr *Drainer) nonceTaken(ctx context.Context, d *dead, st *store.SentTx) error {
	f, err := dr.d.Conflicts.Inspect(ctx, st)
	if err != nil {
		return err
	}
	switch f.Verdict {
	case OursMined:
		body, err := queue.NewEnvelope(ctx, queue.TypeTxBroadcasted, "settle-"+d.m.ID, st.CorrelationID,
			queue.TxBroadcasted{SentTxID: st.ID, Chain: st.Chain, Hash: f.Hash})
		if err != nil {
			return err
		}
		dec := d.decision(ActionSettle, fmt.Sprintf("our attempt %s was mined at nonce %d (block %d): the monitor settles it", f.Hash, st.Nonce, f.Block))
		dec.SentTxID = &st.ID
		return dr.finish(ctx, d, dec, func(tx *sql.Tx) error {
			return dr.d.Queue.SendTx(ctx, tx, queue.TxMonitor, body, queue.SendOptions{})
		})
	case ForeignFinal:
		dec := d.decision(ActionConflict, "")
		dec.Done = true
		ok, err := dr.d.Conflicts.Apply(ctx, st, f, dec)
		if err != nil {
			return err
		}
		if !ok { // settled or applied meanwhile (by the sweep, say)
			dec := d.decision(ActionDone, fmt.Sprintf("sent tx %d was settled or marked conflicted meanwhile", st.ID))
			dec.SentTxID = &st.ID
			return dr.finish(ctx, d, dec, nil)
		}
		dr.m.Decision(d.dlq, ActionConflict, string(d.class))
		return nil
	case ForeignPending:
		return dr.wait(ctx, d, st, fmt.Sprintf("nonce %d was taken by transaction %s, which Sluice did not sign; it has %d confirmations and is acted on only when final",
			st.Nonce, f.Hash, f.Confs))
	}
	switch {
	case d.class == txerr.NonceTooLow:
		return dr.redriveTx(ctx, d, st, ActionRedrive, "nonce too low but the chain has not passed it: the node was behind; redriven", nil)
	case d.code == "nonce_conflict":
		return dr.wait(ctx, d, st, fmt.Sprintf("node refused nonce %d as used, but no transaction at it is mined yet", st.Nonce))
	}
	return dr.park(ctx, d, fmt.Sprintf("sent tx %d (nonce %d, %s) failed with %s (%s) and its nonce is still free on chain, so it could still be mined: a person must decide (cancel at the same nonce, or resend): %s",
		st.ID, st.Nonce, st.Hash, d.class, d.code, d.errMsg))
}

func (d *dead) decisionFor(action, reason string, withdrawalIDs ...string) store.Decision {
	dec := d.decision(action, reason)
	dec.WithdrawalIDs = withdrawalIDs
	return dec
}

// finish records dec as the decision that finishes the message, with extra's writes, in one database
// transaction. A decision recorded meanwhile by another delivery of the message wins; this one does
// nothing.
func (dr *Drainer) finish(ctx context.Context, d *dead, dec store.Decision, extra func(tx *sql.Tx) error) error {
	dec.Done = true
	err := dr.d.Store.InTx(ctx, func(tx *sql.Tx) error {
		if err := dr.d.Store.RecordDecision(ctx, tx, dec); err != nil {
			return err
		}
		if extra != nil {
			return extra(tx)
		}
		return nil
	})
	if errors.Is(err, store.ErrConflict) {
		dr.log.Info("another delivery of this message took the decision", "dlq", d.dlq, "message_id", d.m.ID)
		return nil
	}
	if err != nil {
		return err
	}
	dr.m.Decision(d.dlq, dec.Action, string(d.class))
	dr.log.Info("dlq message handled", "dlq", d.dlq, "message_id", d.m.ID, "action", dec.Action, "error_type", d.class,
		"error_code", d.code, "reason", dec.Reason)
	return nil
}

// wait records why the message waits and has it delivered again later.
func (dr *Drainer) wait(ctx context.Context, d *dead, st *store.SentTx, reason string) error {
	dec := d.decision(ActionWait, reason)
	dec.SentTxID = &st.ID
	if err := dr.d.Store.InTx(ctx, func(tx *sql.Tx) error { return dr.d.Store.RecordDecision(ctx, tx, dec) }); err != nil {
		return err
	}
	dr.m.Decision(d.dlq, ActionWait, string(d.class))
	return fmt.Errorf("%s: %w", reason, ErrNotDue)
}

// backoff is the wait before redrive number n+1 of a message: BackoffBase·2^n, capped at BackoffMax.
func (dr *Drainer) backoff(n int) time.Duration {
	b := dr.d.BackoffBase
	for i := 0; i < n && b < dr.d.BackoffMax; i++ {
		b *= 2
	}
	return min(b, dr.d.BackoffMax)
}

func (dr *Drainer) redriveTx(ctx context.Context, d *dead, st *store.SentTx, action, reason string, extra func(tx *sql.Tx) error) error {
	return dr.redriveWith(ctx, d, action, reason, extra, &st.ID)
}

func (dr *Drainer) redrive(ctx context.Context, d *dead, action, reason string, extra func(tx *sql.Tx) error, withdrawalIDs ...string) error {
	return dr.redriveWith(ctx, d, action, reason, extra, nil, withdrawalIDs...)
}

// redriveWith sends the original message back to its work queue once its backoff is over, counting the
// redrive against the message's envelope id, so the backoff keeps growing over round trips through the
// DLQ; past MaxRedrives it parks the message instead (except while waiting for funds).
func (dr *Drainer) redriveWith(ctx context.Context, d *dead, action, reason string, extra func(tx *sql.Tx) error, sentTxID *int64, withdrawalIDs ...string) error {
	n, last, err := dr.d.Store.Redrives(ctx, d.env.ID)
	if err != nil {
		return err
	}
	if n >= dr.d.MaxRedrives && action != ActionFunds {
		return dr.park(ctx, d, fmt.Sprintf("redriven %d times and dead-lettered again: %s (%s): %s", n, d.class, d.code, d.errMsg))
	}
	// The wait counts from the later of the dead-lettering and the last redrive; a message the backend
	// moved (no timestamp) that was never redriven goes back at once.
	wait, from := dr.backoff(n), d.at
	if last.After(from) {
		from = last
	}
	if due := from.Add(wait); !from.IsZero() && dr.now().Before(due) {
		return fmt.Errorf("redrive of %s/%s due at %s: %w", d.dlq, d.m.ID, due.UTC().Format(time.RFC3339), ErrNotDue)
	}
	dec := d.decisionFor(action, fmt.Sprintf("%s; redrive %d to %s after %s (%s: %s)", reason, n+1, d.src, wait, d.class, d.errMsg), withdrawalIDs...)
	dec.SentTxID = sentTxID
	// The dedup id drops a second copy where the backend deduplicates; the decision's unique key is
	// what guarantees one redrive per DLQ message on every backend.
	return dr.finish(ctx, d, dec, func(tx *sql.Tx) error {
		if err := dr.d.Store.CountRedrive(ctx, tx, d.env.ID, d.src); err != nil {
			return err
		}
		if extra != nil {
			if err := extra(tx); err != nil {
				return err
			}
		}
		return dr.d.Queue.SendTx(ctx, tx, d.src, d.orig, queue.SendOptions{GroupID: d.groupID, DedupID: "rd-" + d.m.ID})
	})
}

// fail moves a withdrawal with nothing recorded (PENDING or SIGNING: no transaction exists that could be
// mined) to FAILED with the reason, and alerts.
func (dr *Drainer) fail(ctx context.Context, d *dead, w *store.Withdrawal) error {
	typ, msg := string(d.class), fmt.Sprintf("%s (%s): %s", d.class, d.code, d.errMsg)
	dec := d.decisionFor(ActionFailed, "permanent failure with no recorded transaction: "+msg, w.ID)
	if err := dr.finish(ctx, d, dec, func(tx *sql.Tx) error {
		cur, err := dr.d.Store.LockWithdrawal(ctx, tx, w.ID)
		if err != nil {
			return err
		}
		if cur.SentTxID != nil || (cur.Status != store.Pending && cur.Status != store.Signing) {
			return fmt.Errorf("withdrawal %s is %s now: %w", w.ID, cur.Status, errMoved)
		}
		return dr.d.Store.Transition(ctx, tx, w.ID, cur.Status, store.Failed, msg, store.ActorRecovery,
			store.Change{ErrorType: &typ, ErrorMessage: &msg})
	}); err != nil {
		if errors.Is(err, errMoved) {
			return fmt.Errorf("withdrawal moved while failing it; deciding again: %w", ErrNotDue)
		}
		return err
	}
	dr.alerts(ctx, alert.Alert{Key: "withdrawal_failed:" + w.ID, Kind: "withdrawal_failed", Severity: alert.Warning,
		Summary: fmt.Sprintf("withdrawal %s on %s failed for good: %s", w.ID, w.Chain, msg),
		Labels:  map[string]string{"chain": w.Chain, "queue": d.dlq},
		Details: map[string]any{"withdrawal_id": w.ID, "error_type": typ, "error_code": d.code, "message_id": d.m.ID}})
	return nil
}

var errMoved = errors.New("withdrawal moved")

// park keeps the message for a person, with the reason, and alerts.
func (dr *Drainer) park(ctx context.Context, d *dead, reason string) error {
	dec := d.decision(ActionParked, reason)
	if err := dr.finish(ctx, d, dec, func(tx *sql.Tx) error {
		return dr.d.Store.Park(ctx, tx, store.Parked{Queue: d.dlq, MessageID: d.m.ID, Body: d.m.Body, ErrorType: string(d.class), Reason: reason})
	}); err != nil {
		return err
	}
	dr.alerts(ctx, alert.Alert{Key: "dlq_parked:" + d.dlq + ":" + d.m.ID, Kind: "dlq_parked", Severity: alert.Warning,
		Summary: fmt.Sprintf("a message of %s was parked for a person: %s", d.dlq, reason),
		Labels:  map[string]string{"queue": d.dlq},
		Details: map[string]any{"message_id": d.m.ID, "error_type": string(d.class), "error_code": d.code}})
	return nil
}

// fundsAlert raises (once per wallet and asset while it lasts) the alert that a hot wallet cannot pay.
func (dr *Drainer) fundsAlert(ctx context.Context, d *dead, chain, wallet, asset string) {
	if wallet != "" {
		wallet = common.HexToAddress(wallet).Hex()
	}
	dr.alerts(ctx, alert.Alert{Key: strings.Join([]string{"insufficient_funds", chain, wallet, asset}, ":"), Kind: "insufficient_funds",
		Severity: alert.Warning,
		Summary:  fmt.Sprintf("hot wallet %s on %s cannot pay (%s): withdrawals wait for funds", wallet, chain, asset),
		Labels:   map[string]string{"chain": chain, "wallet": wallet, "asset": asset},
		Details:  map[string]any{"message_id": d.m.ID, "queue": d.dlq, "error": d.errMsg}})
}

func (dr *Drainer) alerts(ctx context.Context, a alert.Alert) { dr.d.Alerts.Fire(ctx, a) }
