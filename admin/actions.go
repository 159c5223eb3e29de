package admin

// The operators' actions (POST /admin/v1/actions): what each may do, its exact plan and its effect.
// The framework (approvals, the request-id replay record, the audit) calls these specs and never knows
// what an action does. Nothing here signs: a speed-up, a cancel and a gap fill are recorded for
// recovery (tx_actions, wallet_actions), a retry or a redrive sends a message to the service that acts,
// and every record is conditional, so Do called again after a crash does nothing twice.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/sluice-custody/sluice/internal/fees"
	"github.com/sluice-custody/sluice/internal/queue"
	"github.com/sluice-custody/sluice/internal/store"
	"github.com/sluice-custody/sluice/internal/txsend"
)

// ErrorTypeOperator is the error type of a withdrawal an operator failed.
const ErrorTypeOperator = "OPERATOR"

// specs returns the eleven actions.
func (o *ops) specs() []ActionSpec {
	never := func(ActionRequest) bool { return false }
	always := func(ActionRequest) bool { return true }
	return []ActionSpec{
		{Name: ActionWithdrawalRetry, Role: RoleOperator, TwoPerson: never,
			Validate: o.validWithdrawal(nil), Plan: o.planRetry, Do: o.doRetry},
		{Name: ActionWithdrawalFail, Role: RoleOperator, TwoPerson: always,
			Validate: o.validWithdrawal(needReason), Plan: o.planFail, Do: o.doFail},
		{Name: ActionWithdrawalCancel, Role: RoleOperator, TwoPerson: never,
			Validate: o.validWithdrawal(nil), Plan: o.planCancel, Do: o.doCancel},
		{Name: ActionWithdrawalSpeedUp, Role: RoleOperator, TwoPerson: never,
			Validate: o.validWithdrawal(nil), Plan: o.planSpeedUp, Do: o.doSpeedUp},
		{Name: ActionDLQRedrive, Role: RoleOperator, TwoPerson: always,
			Validate: o.validParked(nil), Plan: o.planParked(resRedriven), Do: o.doParked(resRedriven)},
		{Name: ActionDLQDiscard, Role: RoleOperator, TwoPerson: always,
			Validate: o.validParked(needReason), Plan: o.planParked(resDiscarded), Do: o.doParked(resDiscarded)},
		{Name: ActionWalletResync, Role: RoleOperator, TwoPerson: func(r ActionRequest) bool { return r.Params["force"] == "true" },
			Validate: o.validWallet(nil, "force"), Plan: o.planResync, Do: o.doResync},
		{Name: ActionWalletFillGap, Role: RoleOperator, TwoPerson: always,
			Validate: o.validWallet(nil), Plan: o.planFillGap, Do: o.doFillGap},
		{Name: ActionWalletFreeze, Role: RoleOperator, TwoPerson: never,
			Validate: o.validWallet(needReason), Plan: o.planFreeze, Do: o.doFreeze},
		{Name: ActionWalletUnfreeze, Role: RoleOperator, TwoPerson: always,
			Validate: o.validWallet(nil), Plan: o.planUnfreeze, Do: o.doUnfreeze},
		{Name: ActionWebhookRedeliver, Role: RoleOperator, TwoPerson: never,
			Validate: o.validRedeliver, Plan: o.planRedeliver, Do: o.doRedeliver},
	}
}

// ---- validation ----

func needReason(r ActionRequest) error {
	if strings.TrimSpace(r.Reason) == "" {
		return newError(http.StatusUnprocessableEntity, CodeRequired, "reason", "this action needs a reason (it is kept in the history and the audit log)")
	}
	if len(r.Reason) > 500 {
		return newError(http.StatusUnprocessableEntity, CodeInvalid, "reason", "reason is at most 500 characters")
	}
	return nil
}

// onlyParams refuses parameters the action does not take, and values other than true/false.
func onlyParams(r ActionRequest, allowed ...string) error {
	for k, v := range r.Params {
		field := "params." + k
		ok := false
		for _, a := range allowed {
			ok = ok || a == k
		}
		if !ok {
			return invalid(field, fmt.Sprintf("%s takes no parameter %q", r.Action, k))
		}
		if v != "true" && v != "false" {
			return invalid(field, field+` is "true" or "false"`)
		}
	}
	return nil
}

func (o *ops) validWithdrawal(extra func(ActionRequest) error) func(context.Context, ActionRequest) error {
	return func(ctx context.Context, r ActionRequest) error {
		if !validUUID(r.Target) {
			return badParam("target", "target must be a withdrawal id (a UUID)")
		}
		if err := onlyParams(r); err != nil {
			return err
		}
		if extra != nil {
			if err := extra(r); err != nil {
				return err
			}
		}
		_, err := o.withdrawal(ctx, r.Target)
		return err
	}
}

func (o *ops) withdrawal(ctx context.Context, id string) (*store.Withdrawal, error) {
	w, err := o.st.GetWithdrawal(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, missing("target", "no withdrawal "+id)
	}
	return w, err
}

func (o *ops) validParked(extra func(ActionRequest) error) func(context.Context, ActionRequest) error {
	return func(ctx context.Context, r ActionRequest) error {
		if _, err := parseParkedID("target", r.Target); err != nil {
			return err
		}
		if err := onlyParams(r); err != nil {
			return err
		}
		if extra != nil {
			if err := extra(r); err != nil {
				return err
			}
		}
		_, err := o.parked(ctx, r.Target)
		return err
	}
}

func (o *ops) parked(ctx context.Context, target string) (*store.ParkedMessage, error) {
	id, err := parseParkedID("target", target)
	if err != nil {
		return nil, err
	}
	p, err := o.st.ParkedByID(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, missing("target", "no parked DLQ message "+target)
	}
	return p, err
}

func (o *ops) validWallet(extra func(ActionRequest) error, params ...string) func(context.Context, ActionRequest) error {
	return func(ctx context.Context, r ActionRequest) error {
		if _, err := o.walletTarget(r.Target); err != nil {
			return err
		}
		if err := onlyParams(r, params...); err != nil {
			return err
		}
		if extra != nil {
			return extra(r)
		}
		return nil
	}
}

// ---- plans: the transactions recovery would sign ----

// replacementPlan is the attempt recovery would sign to replace st's current one: the same call for a
// speed-up, a zero-value self-transfer for a cancel, with fees from the one fee path (the chain's
// fees.Estimator, Replacement: at least +price_bump% on both, never over the cap).
func (o *ops) replacementPlan(ctx context.Context, st *store.SentTx, kind string, ids []string) (TxPlan, []string, error) {
	cd, ok := o.chains[st.Chain]
	if !ok {
		return TxPlan{}, nil, refuse("target", fmt.Sprintf("chain %q is no longer configured", st.Chain))
	}
	p := TxPlan{Chain: st.Chain, From: checksum(st.From), Nonce: st.Nonce, To: checksum(st.To), ValueWei: "0", Kind: kind,
		Replaces: st.Hash, WithdrawalIDs: ids}
	if kind == "cancel" {
		p.To = p.From
	} else {
		tx := new(types.Transaction)
		if err := tx.UnmarshalBinary(st.Raw); err != nil {
			return TxPlan{}, nil, fmt.Errorf("decode sent tx %d: %w", st.ID, err)
		}
		p.ValueWei = tx.Value().String()
	}
	rctx, cancel := o.rpc(ctx)
	defer cancel()
	f, err := cd.Fees.Replacement(rctx, fees.Fees{MaxFeePerGas: st.MaxFeePerGas, MaxPriorityFee: st.MaxPriorityFee}, nil)
	var oc *fees.OverCapError
	if errors.As(err, &oc) {
		// Still recorded: recovery raises the at-cap alert instead of signing.
		return p, []string{"the replacement would exceed the chain's fee cap (" + oc.Error() + "): recovery will not sign it and raises the stuck_at_cap alert; raise chains[].fees.max_fee_per_gas"}, nil
	}
	if err != nil {
		return TxPlan{}, nil, nodeErr(st.Chain, err)
	}
	p.MaxFeePerGasWei, p.MaxPriorityFeeWei = f.MaxFeePerGas.String(), f.MaxPriorityFee.String()
	warn := []string{"fees are those of now; recovery computes them again the same way when it signs (never lower than +" +
		strconv.Itoa(priceBump(cd)) + "% over the current attempt)"}
	if st.Status == store.TxSigned {
		warn = append(warn, "the transaction is signed but not broadcast yet: recovery acts once the broadcaster has sent it")
	}
	return p, warn, nil
}

func priceBump(cd ChainDeps) int {
	if cd.Config.Fees.PriceBump > 0 {
		return cd.Config.Fees.PriceBump
	}
	return 10
}

func idsOf(ws []*store.Withdrawal) []string {
	out := make([]string, 0, len(ws))
	for _, w := range ws {
		out = append(out, w.ID)
	}
	return out
}

// ---- withdrawal.retry ----

// retryStep is what a retry of w re-sends: the message its current state waits for.
func (o *ops) retryStep(ctx context.Context, w *store.Withdrawal) (Plan, func(context.Context, *sql.Tx) error, error) {
	switch w.Status {
	case store.Confirmed, store.Failed, store.Canceled:
		return Plan{}, nil, refuse("target", "withdrawal is "+string(w.Status)+"; there is nothing to retry")
	case store.AwaitingApproval:
		return Plan{}, nil, refuse("target", "withdrawal is AWAITING_APPROVAL: it waits for its client's approvers, not for a retry")
	case store.Pending, store.Signing:
		p := Plan{Summary: "send the withdrawal's tx-request again; the signer picks it up (it never signs a withdrawal twice: the transition to SIGNED and the recorded transaction commit together)",
			Rows: []RowChange{{Table: "queue " + queue.TxRequest, Key: w.ID, Change: "+1 message withdrawal.requested"},
				{Table: "withdrawal_history", Key: w.ID, Change: "+1 note: retried by operator"}}}
		return p, func(ctx context.Context, tx *sql.Tx) error {
			body, err := queue.NewEnvelope(ctx, queue.TypeWithdrawalRequested, queue.NewID(), w.CorrelationID, queue.WithdrawalRequested{WithdrawalID: w.ID})
			if err != nil {
				return err
			}
			return o.q.SendTx(ctx, tx, queue.TxRequest, body, queue.SendOptions{})
		}, nil
	}
	if w.SentTxID == nil {
		return Plan{}, nil, refuse("target", "withdrawal is "+string(w.Status)+" without a recorded transaction")
	}
	st, err := o.st.GetSentTx(ctx, *w.SentTxID)
	if err != nil {
		return Plan{}, nil, err
	}
	key := fmt.Sprintf("sent tx %d (nonce %d, %s)", st.ID, st.Nonce, st.Hash)
	switch st.Status {
	case store.TxSigned:
		p := Plan{Summary: "send the recorded signed transaction to the broadcaster again (the same bytes: nothing is signed)",
			Rows: []RowChange{{Table: "queue " + queue.SignedTx, Key: key, Change: "+1 message tx.signed"},
				{Table: "withdrawal_history", Key: w.ID, Change: "+1 note: retried by operator"}}}
		return p, func(ctx context.Context, tx *sql.Tx) error { return txsend.QueueSigned(ctx, o.q, tx, st) }, nil
	case store.TxBroadcasted:
		p := Plan{Summary: "ask the monitor to follow the transaction again (it re-sends the current attempt if the node forgot it)",
			Rows: []RowChange{{Table: "queue " + queue.TxMonitor, Key: key, Change: "+1 message tx.broadcasted"},
				{Table: "withdrawal_history", Key: w.ID, Change: "+1 note: retried by operator"}}}
		return p, func(ctx context.Context, tx *sql.Tx) error {
			body, err := queue.NewEnvelope(ctx, queue.TypeTxBroadcasted, queue.NewID(), st.CorrelationID,
				queue.TxBroadcasted{SentTxID: st.ID, Chain: st.Chain, Hash: st.Hash})
			if err != nil {
				return err
			}
			return o.q.SendTx(ctx, tx, queue.TxMonitor, body, queue.SendOptions{})
		}, nil
	}
	return Plan{}, nil, refuse("target", "the withdrawal's transaction is "+st.Status+"; the monitor settles it")
}

func (o *ops) planRetry(ctx context.Context, r ActionRequest) (Plan, error) {
	w, err := o.withdrawal(ctx, r.Target)
	if err != nil {
		return Plan{}, err
	}
	p, _, err := o.retryStep(ctx, w)
	return p, err
}

func (o *ops) doRetry(ctx context.Context, r ActionRequest, by string) (map[string]any, error) {
	w, err := o.withdrawal(ctx, r.Target)
	if err != nil {
		return nil, err
	}
	p, send, err := o.retryStep(ctx, w)
	if err != nil {
		return nil, err
	}
	err = o.st.InTx(ctx, func(tx *sql.Tx) error {
		if err := send(ctx, tx); err != nil {
			return err
		}
		return o.st.NoteHistory(ctx, tx, w.ID, noteReason("retried", by, r), store.ActorOperator)
	})
	if err != nil {
		return nil, err
	}
	return map[string]any{"status": string(w.Status), "sent": p.Rows[0].Table}, nil
}

func noteReason(what, by string, r ActionRequest) string {
	s := what + " by operator " + by + " (request " + r.RequestID + ")"
	if r.Reason != "" {
		s += ": " + r.Reason
	}
	return s
}

// ---- withdrawal.fail ----

// failable says why nothing of w can still be mined, or refuses with why it could.
func (o *ops) failable(ctx context.Context, w *store.Withdrawal) (string, error) {
	if w.Status.Terminal() {
		return "", refuse("target", "withdrawal is "+string(w.Status)+"; it cannot be failed")
	}
	if w.SentTxID == nil {
		return "no transaction was signed for it", nil
	}
	st, err := o.st.GetSentTx(ctx, *w.SentTxID)
	if err != nil {
		return "", err
	}
	switch st.Status {
	case store.TxConflicted:
		return fmt.Sprintf("its nonce %d was taken for good by a transaction Sluice did not sign", st.Nonce), nil
	case store.TxConfirmed, store.TxFailed:
		return "", refuse("target", "the withdrawal's transaction is "+st.Status+"; the monitor settles it")
	}
	cd, ok := o.chains[st.Chain]
	if !ok {
		return "", refuse("target", fmt.Sprintf("chain %q is no longer configured: cannot tell whether the transaction can still mine", st.Chain))
	}
	rctx, cancel := o.rpc(ctx)
	defer cancel()
	mined, err := cd.Client.NonceAt(rctx, common.HexToAddress(st.From))
	if err != nil {
		return "", nodeErr(st.Chain, err)
	}
	if mined <= st.Nonce {
		return "", refuse("target", fmt.Sprintf("its transaction %s (nonce %d, %s) can still be mined: the nonce is not used yet; "+
			"cancel it instead (sluice ops withdrawals cancel %s), or wait", st.Hash, st.Nonce, st.Status, w.ID))
	}
	hashes, err := o.st.AttemptHashes(ctx, st.ID)
	if err != nil {
		return "", err
	}
	for _, h := range hashes {
		_, pending, err := cd.Client.TransactionByHash(rctx, common.HexToHash(h))
		if err == nil && !pending {
			return "", refuse("target", fmt.Sprintf("its attempt %s was mined at nonce %d: the monitor settles it", h, st.Nonce))
		}
	}
	return fmt.Sprintf("its nonce %d is used on chain by a transaction that is none of its %d attempts", st.Nonce, len(hashes)), nil
}

func (o *ops) planFail(ctx context.Context, r ActionRequest) (Plan, error) {
	w, err := o.withdrawal(ctx, r.Target)
	if err != nil {
		return Plan{}, err
	}
	why, err := o.failable(ctx, w)
	if err != nil {
		return Plan{}, err
	}
	return Plan{Summary: "fail the withdrawal for good (" + why + "); its client's policy limits are released and a webhook tells the client",
		Rows: []RowChange{{Table: "withdrawals", Key: w.ID, Change: fmt.Sprintf("status %s → FAILED (error %s)", w.Status, ErrorTypeOperator)},
			{Table: "policy_consumptions", Key: w.ID, Change: "released (deleted), if it took any"}}}, nil
}

func (o *ops) doFail(ctx context.Context, r ActionRequest, by string) (map[string]any, error) {
	w, err := o.withdrawal(ctx, r.Target)
	if err != nil {
		return nil, err
	}
	if w.Status == store.Failed && w.ErrorType == ErrorTypeOperator {
		return map[string]any{"status": string(store.Failed)}, nil // done before a crash: the replay does nothing
	}
	if _, err := o.failable(ctx, w); err != nil {
		return nil, err
	}
	typ, msg := ErrorTypeOperator, noteReason("failed", by, r)
	err = o.st.InTx(ctx, func(tx *sql.Tx) error {
		return o.st.Transition(ctx, tx, w.ID, w.Status, store.Failed, msg, store.ActorOperator, store.Change{ErrorType: &typ, ErrorMessage: &msg})
	})
	if errors.Is(err, store.ErrConflict) {
		return nil, refuse("target", "the withdrawal moved while failing it; look again (sluice ops withdrawals show "+w.ID+")")
	}
	if err != nil {
		return nil, err
	}
	return map[string]any{"status": string(store.Failed)}, nil
}

// ---- withdrawal.cancel and withdrawal.speed-up: the public API's rules (store.RequestCancel, RequestSpeedUp) ----

func (o *ops) planCancel(ctx context.Context, r ActionRequest) (Plan, error) {
	w, err := o.withdrawal(ctx, r.Target)
	if err != nil {
		return Plan{}, err
	}
	st, kind, err := o.st.CancelTarget(ctx, w)
	if err != nil {
		return Plan{}, refusedErr(err)
	}
	if st == nil {
		return Plan{Summary: "cancel the withdrawal now: nothing was signed for it",
			Rows: []RowChange{{Table: "withdrawals", Key: w.ID, Change: fmt.Sprintf("status %s → CANCELED", w.Status)},
				{Table: "policy_consumptions", Key: w.ID, Change: "released (deleted), if it took any"}}}, nil
	}
	tp, warn, err := o.replacementPlan(ctx, st, kind, []string{w.ID})
	if err != nil {
		return Plan{}, err
	}
	what := "a zero-value self-transfer"
	if kind == store.ActionCancelItem {
		what = "the same batch without this payment (batch " + w.BatchID + ")"
	}
	return Plan{Summary: fmt.Sprintf("record a cancel for recovery: %s at nonce %d replaces %s; whichever mines decides (cancel → CANCELED, payment → CONFIRMED)", what, st.Nonce, st.Hash),
		Transactions: []TxPlan{tp},
		Rows: []RowChange{{Table: "tx_actions", Key: fmt.Sprintf("sent tx %d", st.ID), Change: "+1 " + kind + " (pending), unless one is recorded"},
			{Table: "withdrawal_history", Key: w.ID, Change: "+1 note: " + store.ReasonCancelRequested}},
		Warnings: warn}, nil
}

func (o *ops) doCancel(ctx context.Context, r ActionRequest, by string) (map[string]any, error) {
	w, err := o.withdrawal(ctx, r.Target)
	if err != nil {
		return nil, err
	}
	if w.Status == store.Canceled {
		return map[string]any{"status": string(w.Status)}, nil // done before a crash
	}
	res, err := o.st.RequestCancel(ctx, w, noteReason("canceled", by, r), store.ActorOperator)
	if err != nil {
		return nil, refusedErr(err)
	}
	if res.Canceled {
		return map[string]any{"status": string(store.Canceled)}, nil
	}
	return map[string]any{"status": string(w.Status), "cancel": store.ReasonCancelRequested, "action_id": res.Action.ID,
		"new": res.Created, "replaces": res.SentTx.Hash}, nil
}

func (o *ops) planSpeedUp(ctx context.Context, r ActionRequest) (Plan, error) {
	w, err := o.withdrawal(ctx, r.Target)
	if err != nil {
		return Plan{}, err
	}
	st, err := o.st.SpeedUpTarget(ctx, w)
	if err != nil {
		return Plan{}, refusedErr(err)
	}
	ws, err := o.st.WithdrawalsBySentTx(ctx, o.st.DB, st.ID)
	if err != nil {
		return Plan{}, err
	}
	tp, warn, err := o.replacementPlan(ctx, st, "replacement", idsOf(ws))
	if err != nil {
		return Plan{}, err
	}
	return Plan{Summary: fmt.Sprintf("record a speed-up for recovery: the same transaction at nonce %d with higher fees replaces %s", st.Nonce, st.Hash),
		Transactions: []TxPlan{tp},
		Rows: []RowChange{{Table: "tx_actions", Key: fmt.Sprintf("sent tx %d", st.ID), Change: "+1 speed_up (pending) against " + st.Hash + ", unless one is recorded"},
			{Table: "tx_attempts", Key: fmt.Sprintf("sent tx %d", st.ID), Change: "+1 attempt, when recovery signs it"}},
		Warnings: warn}, nil
}

func (o *ops) doSpeedUp(ctx context.Context, r ActionRequest, _ string) (map[string]any, error) {
	w, err := o.withdrawal(ctx, r.Target)
	if err != nil {
		return nil, err
	}
	a, st, created, err := o.st.RequestSpeedUp(ctx, w)
	if err != nil {
		return nil, refusedErr(err)
	}
	return map[string]any{"action_id": a.ID, "new": created, "replaces": st.Hash, "nonce": st.Nonce}, nil
}

// ---- dlq.redrive and dlq.discard (parked messages) ----

const (
	resRedriven  = "redriven"
	resDiscarded = "discarded"
)

func (o *ops) parkedStep(ctx context.Context, r ActionRequest, res string) (*store.ParkedMessage, dead, Plan, error) {
	p, err := o.parked(ctx, r.Target)
	if err != nil {
		return nil, dead{}, Plan{}, err
	}
	d := decodeDead(p.Queue, p.Body)
	if p.ResolvedAt != nil {
		return p, d, Plan{}, refuse("target", fmt.Sprintf("the message was %s already by %s", p.Resolution, p.ResolvedBy))
	}
	rows := []RowChange{{Table: "dlq_parked", Key: r.Target, Change: "resolved: " + res},
		{Table: "recovery_decisions", Key: p.Queue + "/" + p.MessageID, Change: "+1 decision " + res + " by operator"}}
	if res == resDiscarded {
		return p, d, Plan{Summary: "discard the parked message of " + p.Queue + " (nothing is sent again; what it asked for is not done)",
			Rows: rows, Warnings: []string{"a discarded message is lost: check the withdrawal it names first"}}, nil
	}
	if d.src == "" {
		return p, d, Plan{}, refuse("target", "the message's source queue is unknown ("+p.Queue+"): it cannot be redriven; discard it")
	}
	rows = append([]RowChange{{Table: "queue " + d.src, Key: p.MessageID, Change: "+1 message: the original, as it was"}}, rows...)
	return p, d, Plan{Summary: "send the parked message of " + p.Queue + " back to " + d.src + " (its consumer decides again; every consumer is idempotent)",
		Rows: rows}, nil
}

func (o *ops) planParked(res string) func(context.Context, ActionRequest) (Plan, error) {
	return func(ctx context.Context, r ActionRequest) (Plan, error) {
		_, _, p, err := o.parkedStep(ctx, r, res)
		return p, err
	}
}

func (o *ops) doParked(res string) func(context.Context, ActionRequest, string) (map[string]any, error) {
	return func(ctx context.Context, r ActionRequest, by string) (map[string]any, error) {
		p, d, _, err := o.parkedStep(ctx, r, res)
		if err != nil {
			if p != nil && p.Resolution == res {
				return map[string]any{"resolution": res, "by": p.ResolvedBy}, nil // done before a crash
			}
			return nil, err
		}
		err = o.st.InTx(ctx, func(tx *sql.Tx) error {
			ok, err := o.st.ResolveParked(ctx, tx, p.ID, res, by)
			if err != nil {
				return err
			}
			if !ok {
				return store.ErrConflict
			}
			if err := o.st.RecordDecision(ctx, tx, store.Decision{Queue: p.Queue, MessageID: p.MessageID, Action: res,
				ErrorType: p.ErrorType, Reason: noteReason(res, by, r)}); err != nil {
				return err
			}
			if res != resRedriven {
				return nil
			}
			return o.q.SendTx(ctx, tx, d.src, d.orig, queue.SendOptions{GroupID: d.groupID, DedupID: "op-" + p.Queue + "-" + p.MessageID})
		})
		if errors.Is(err, store.ErrConflict) {
			return nil, refuse("target", "the message was resolved meanwhile")
		}
		if err != nil {
			return nil, err
		}
		out := map[string]any{"resolution": res, "by": by}
		if res == resRedriven {
			out["queue"] = d.src
		}
		return out, nil
	}
}

// ---- wallet.resync ----

// resyncTarget is the counter the allocator should hold: one past everything persisted or known to
// the chain (the allocator's own contract, nonce.Floors.Next).
func (o *ops) resyncTarget(ctx context.Context, w wallet) (cur *uint64, target uint64, err error) {
	cfg := w.chain.Config
	rctx, cancel := o.rpc(ctx)
	defer cancel()
	pending, err := w.chain.Client.PendingNonceAt(rctx, w.addr)
	if err != nil {
		return nil, 0, nodeErr(cfg.Name, err)
	}
	db, err := o.st.NextNonce(ctx, cfg.ChainID, w.addr.Hex())
	if err != nil {
		return nil, 0, err
	}
	st, err := o.nonces.Peek(rctx, cfg.ChainID, w.addr)
	if err != nil {
		return nil, 0, err
	}
	if st.HasNext {
		cur = &st.Next
	}
	return cur, max(pending, db), nil
}

func (o *ops) planResync(ctx context.Context, r ActionRequest) (Plan, error) {
	w, err := o.walletTarget(r.Target)
	if err != nil {
		return Plan{}, err
	}
	cur, target, err := o.resyncTarget(ctx, w)
	if err != nil {
		return Plan{}, err
	}
	key := fmt.Sprintf("sluice:nonce:{%d:%s}:next", w.chain.Config.ChainID, w.addr.Hex())
	switch {
	case cur != nil && *cur == target:
		return Plan{Summary: fmt.Sprintf("nothing to change: the counter is %d, as the chain and the database say", target)}, nil
	case cur != nil && *cur > target && r.Params["force"] != "true":
		return Plan{}, refuse("params.force", fmt.Sprintf("the counter (%d) is ahead of the chain and the database (%d): lowering it hands nonces %d…%d out again; "+
			"do it with force=true (two-person)", *cur, target, target, *cur-1))
	}
	from := "unset"
	if cur != nil {
		from = strconv.FormatUint(*cur, 10)
	}
	p := Plan{Summary: fmt.Sprintf("set the nonce counter of %s on %s to %d (max of the chain's pending nonce and the database's next)", w.addr.Hex(), w.chain.Config.Name, target),
		Rows: []RowChange{{Table: "redis", Key: key, Change: from + " → " + strconv.FormatUint(target, 10)}}}
	if cur != nil && *cur > target {
		p.Warnings = []string{"going backwards: live leases are kept and expired ones at or above the new counter are dropped"}
	}
	return p, nil
}

func (o *ops) doResync(ctx context.Context, r ActionRequest, _ string) (map[string]any, error) {
	w, err := o.walletTarget(r.Target)
	if err != nil {
		return nil, err
	}
	cur, target, err := o.resyncTarget(ctx, w)
	if err != nil {
		return nil, err
	}
	if cur != nil && *cur == target {
		return map[string]any{"next": target, "changed": false}, nil
	}
	if cur != nil && *cur > target && r.Params["force"] != "true" {
		return nil, refuse("params.force", "the counter is ahead of the chain and the database; lowering it needs force=true")
	}
	prev, ok, err := o.nonces.Resync(ctx, w.chain.Config.ChainID, w.addr, target)
	if err != nil {
		return nil, err
	}
	return map[string]any{"next": target, "previous": prev, "changed": ok}, nil
}

// ---- wallet.fill-gap ----

// gaps lists the unrecorded nonces between the chain's mined nonce and the highest recorded one that no
// signer holds a live lease on: nobody will ever send them, and everything above waits behind them.
func (o *ops) gaps(ctx context.Context, w wallet) ([]uint64, error) {
	v := o.nonceView(ctx, w)
	if v.Latest == nil {
		return nil, nodeErr(v.Chain, errors.New(v.Error))
	}
	return v.Gaps, nil
}

func (o *ops) planFillGap(ctx context.Context, r ActionRequest) (Plan, error) {
	w, err := o.walletTarget(r.Target)
	if err != nil {
		return Plan{}, err
	}
	gs, err := o.gaps(ctx, w)
	if err != nil {
		return Plan{}, err
	}
	if len(gs) == 0 {
		return Plan{}, refuse("target", "no nonce gap: every nonce from the mined one up to the highest recorded is recorded or leased")
	}
	rctx, cancel := o.rpc(ctx)
	defer cancel()
	f, err := w.chain.Fees.New(rctx, nil)
	if err != nil {
		return Plan{}, nodeErr(w.chain.Config.Name, err)
	}
	p := Plan{Summary: fmt.Sprintf("record a gap fill for recovery: a zero-value self-transfer at each of nonces %v of %s", gs, w.addr.Hex()),
		Warnings: []string{"fees are those of now; recovery estimates them again when it signs"}}
	for _, n := range gs {
		p.Transactions = append(p.Transactions, TxPlan{Chain: w.chain.Config.Name, From: w.addr.Hex(), Nonce: n, To: w.addr.Hex(), ValueWei: "0",
			MaxFeePerGasWei: f.MaxFeePerGas.String(), MaxPriorityFeeWei: f.MaxPriorityFee.String(), Kind: "gap_fill"})
		p.Rows = append(p.Rows, RowChange{Table: "sent_transactions", Key: fmt.Sprintf("%s nonce %d", w.addr.Hex(), n), Change: "+1 nonce_fill, when recovery signs it"})
	}
	p.Rows = append(p.Rows, RowChange{Table: "wallet_actions", Key: r.RequestID, Change: "+1 fill_gap (pending)"})
	return p, nil
}

func (o *ops) doFillGap(ctx context.Context, r ActionRequest, by string) (map[string]any, error) {
	w, err := o.walletTarget(r.Target)
	if err != nil {
		return nil, err
	}
	gs, err := o.gaps(ctx, w)
	if err != nil {
		return nil, err
	}
	if len(gs) == 0 {
		// Filled meanwhile (recovery's own sweep, or this request before a crash): record nothing new.
		return map[string]any{"nonces": []uint64{}, "recorded": false}, nil
	}
	sort.Slice(gs, func(i, j int) bool { return gs[i] < gs[j] })
	a, created, err := o.st.RequestWalletAction(ctx, store.WalletAction{RequestID: r.RequestID, Chain: w.chain.Config.Name,
		Address: w.addr.Hex(), Kind: store.WalletActionFillGap, Nonces: gs, RequestedBy: by})
	if err != nil {
		return nil, err
	}
	return map[string]any{"wallet_action_id": a.ID, "nonces": a.Nonces, "recorded": created}, nil
}

// ---- wallet.freeze and wallet.unfreeze ----

func (o *ops) planFreeze(ctx context.Context, r ActionRequest) (Plan, error) {
	w, err := o.walletTarget(r.Target)
	if err != nil {
		return Plan{}, err
	}
	f, err := o.st.WalletFreeze(ctx, o.st.DB, w.chain.Config.Name, w.addr.Hex())
	if err != nil {
		return Plan{}, err
	}
	if f != nil {
		return Plan{}, refuse("target", fmt.Sprintf("the wallet is frozen already (by %s since %s: %s)", f.FrozenBy, ts(f.FrozenAt), f.Reason))
	}
	return Plan{Summary: "freeze the wallet: the signer signs nothing more from it (withdrawals wait or go to another wallet); what is in flight goes on",
		Rows: []RowChange{{Table: "wallet_freezes", Key: r.Target, Change: "+1 active freeze"}}}, nil
}

func (o *ops) doFreeze(ctx context.Context, r ActionRequest, by string) (map[string]any, error) {
	w, err := o.walletTarget(r.Target)
	if err != nil {
		return nil, err
	}
	var froze bool
	err = o.st.InTx(ctx, func(tx *sql.Tx) error {
		froze, err = o.st.FreezeWallet(ctx, tx, w.chain.Config.Name, w.addr.Hex(), r.Reason, "operator "+by)
		return err
	})
	if err != nil {
		return nil, err
	}
	return map[string]any{"frozen": true, "new": froze}, nil
}

func (o *ops) planUnfreeze(ctx context.Context, r ActionRequest) (Plan, error) {
	w, err := o.walletTarget(r.Target)
	if err != nil {
		return Plan{}, err
	}
	f, err := o.st.WalletFreeze(ctx, o.st.DB, w.chain.Config.Name, w.addr.Hex())
	if err != nil {
		return Plan{}, err
	}
	if f == nil {
		return Plan{}, refuse("target", "the wallet is not frozen")
	}
	return Plan{Summary: fmt.Sprintf("unfreeze the wallet (frozen by %s since %s: %s); the signer uses it again", f.FrozenBy, ts(f.FrozenAt), f.Reason),
		Rows: []RowChange{{Table: "wallet_freezes", Key: strconv.FormatInt(f.ID, 10), Change: "active → lifted"}}}, nil
}

func (o *ops) doUnfreeze(ctx context.Context, r ActionRequest, by string) (map[string]any, error) {
	w, err := o.walletTarget(r.Target)
	if err != nil {
		return nil, err
	}
	err = o.st.UnfreezeWallet(ctx, w.chain.Config.Name, w.addr.Hex(), "operator "+by, r.Reason)
	if errors.Is(err, store.ErrNotFound) {
		return map[string]any{"frozen": false, "new": false}, nil // lifted before a crash, or by someone else
	}
	if err != nil {
		return nil, err
	}
	return map[string]any{"frozen": false, "new": true}, nil
}

// actionSpecs lists the actions operators can request (none without Deps.Ops).
func (s *Server) actionSpecs() []ActionSpec {
	if s.ops == nil {
		return nil
	}
	return s.ops.specs()
}
