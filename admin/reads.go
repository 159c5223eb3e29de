package admin

// The operators' reads (GET /admin/v1/...): status, summary, withdrawals, queues and DLQs, wallets,
// nonces, stuck transactions, alerts and activity. Every node call runs under the RPC timeout and a node
// that fails shows as an error field of what it was asked about, never as a 5xx of the whole read.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/sluice-custody/sluice/api"
	"github.com/sluice-custody/sluice/internal/queue"
	"github.com/sluice-custody/sluice/internal/store"
	"github.com/sluice-custody/sluice/recovery"
)

// timeFormat is RFC 3339 in UTC with microseconds, like the public API.
const timeFormat = "2006-01-02T15:04:05.000000Z07:00"

func ts(t time.Time) string { return t.UTC().Format(timeFormat) }

// WithdrawalView is a withdrawal as the public API shows it (api.Render: one rendering for both), plus
// its client.
type WithdrawalView struct {
	*api.WithdrawalJSON
	Client string `json:"client"`
}

// AttemptView is one signed attempt of a withdrawal's transaction.
type AttemptView struct {
	Hash                 string  `json:"hash"`
	Nonce                uint64  `json:"nonce"`
	From                 string  `json:"from"`
	Kind                 string  `json:"kind"`
	Status               string  `json:"status"`
	MaxFeePerGasWei      string  `json:"max_fee_per_gas_wei"`
	MaxPriorityFeeWei    string  `json:"max_priority_fee_per_gas_wei"`
	GasUsed              *uint64 `json:"gas_used"`
	EffectiveGasPriceWei *string `json:"effective_gas_price_wei"`
	FeePaidWei           *string `json:"fee_paid_wei"`
	CreatedAt            string  `json:"created_at"`
}

// HistoryView is one status change of a withdrawal.
type HistoryView struct {
	From   *string `json:"from"`
	To     string  `json:"to"`
	Reason string  `json:"reason"`
	Actor  string  `json:"actor"`
	At     string  `json:"at"`
}

// BatchView is the batch a withdrawal is paid in.
type BatchView struct {
	ID            string   `json:"id"`
	TxHash        string   `json:"tx_hash"`
	Size          int      `json:"size"`
	WithdrawalIDs []string `json:"withdrawal_ids"`
}

// WithdrawalDetail is GET /admin/v1/withdrawals/{id}.
type WithdrawalDetail struct {
	Withdrawal  WithdrawalView `json:"withdrawal"`
	History     []HistoryView  `json:"history"`
	Attempts    []AttemptView  `json:"attempts"`
	Batch       *BatchView     `json:"batch"`
	FeesPaidWei string         `json:"fees_paid_wei"`
	ExplorerURL string         `json:"explorer_url"`
}

// QueueView is one work queue and its DLQ.
type QueueView struct {
	Name       string   `json:"name"`
	Depth      int      `json:"depth"`
	InFlight   int      `json:"in_flight"`
	OldestAgeS float64  `json:"oldest_age_s"`
	Error      string   `json:"error,omitempty"`
	DLQ        *DLQView `json:"dlq"`
}

// DLQView is a dead-letter queue's depth.
type DLQView struct {
	Name       string  `json:"name"`
	Depth      int     `json:"depth"`
	OldestAgeS float64 `json:"oldest_age_s"`
	// Parked counts the messages the drain left for a person (GET /dlq lists them).
	Parked int `json:"parked"`
}

// DLQMessage is a DLQ message recovery's drain parked for a person.
type DLQMessage struct {
	ID           string  `json:"id"`
	Queue        string  `json:"queue"`
	Class        string  `json:"class"`
	Error        string  `json:"error"`
	Receives     int     `json:"receives"`
	FirstSeen    string  `json:"first_seen"`
	WithdrawalID *string `json:"withdrawal_id"`
	Body         string  `json:"body"`
	Resolution   string  `json:"resolution,omitempty"`
	ResolvedBy   string  `json:"resolved_by,omitempty"`
}

// BalanceView is one asset's balance of a wallet, with its top-up band, in the asset's units.
type BalanceView struct {
	Asset  string  `json:"asset"`
	Amount *string `json:"amount"`
	Unit   string  `json:"unit"`
	Min    *string `json:"min"`
	Target *string `json:"target"`
	Error  string  `json:"error,omitempty"`
}

// NonceView is a wallet's nonce as the chain, Redis and the database see it.
type NonceView struct {
	Chain   string   `json:"chain"`
	Address string   `json:"address"`
	Latest  *uint64  `json:"latest"`  // the chain's mined nonce
	Pending *uint64  `json:"pending"` // the chain's pending nonce
	Redis   *uint64  `json:"redis"`   // the allocator's counter (null: never used)
	DB      uint64   `json:"db"`      // one past the highest recorded nonce
	Leases  []uint64 `json:"leases"`  // nonces on loan to a signer now
	Gaps    []uint64 `json:"gaps"`    // unrecorded nonces between the mined one and the highest recorded
	Error   string   `json:"error,omitempty"`
}

// FreezeView is why and since when a wallet is frozen.
type FreezeView struct {
	Reason string `json:"reason"`
	By     string `json:"by"`
	Since  string `json:"since"`
}

// WalletView is a wallet of a chain.
type WalletView struct {
	Chain    string        `json:"chain"`
	Address  string        `json:"address"`
	Role     string        `json:"role"`
	Balances []BalanceView `json:"balances"`
	Nonce    NonceView     `json:"nonce"`
	InFlight int           `json:"in_flight"`
	Frozen   *FreezeView   `json:"frozen"`
	Error    string        `json:"error,omitempty"` // the node's failure, when it did not answer
}

// StuckTx is a broadcast transaction left behind.
type StuckTx struct {
	Chain             string   `json:"chain"`
	From              string   `json:"from"`
	Nonce             uint64   `json:"nonce"`
	TxHash            string   `json:"tx_hash"`
	WithdrawalIDs     []string `json:"withdrawal_ids"`
	AgeS              float64  `json:"age_s"`
	BlocksWaiting     uint64   `json:"blocks_waiting"`
	MaxFeePerGasWei   string   `json:"max_fee_per_gas_wei"`
	MaxPriorityFeeWei string   `json:"max_priority_fee_per_gas_wei"`
	MarketBaseFeeWei  *string  `json:"market_base_fee_wei"`
	MarketTipWei      *string  `json:"market_tip_wei"`
	AtCap             bool     `json:"at_cap"`
}

// AlertView is an alert.
type AlertView struct {
	Key        string         `json:"key"`
	Kind       string         `json:"kind"`
	Severity   string         `json:"severity"`
	Summary    string         `json:"summary"`
	Details    map[string]any `json:"details"`
	OpenedAt   string         `json:"opened_at"`
	ResolvedAt *string        `json:"resolved_at"`
}

// Activity is GET /admin/v1/activity.
type Activity struct {
	Buckets  []ActivityBucket `json:"buckets"`
	GasToday []GasToday       `json:"gas_today"`
}

// ActivityBucket is one minute.
type ActivityBucket struct {
	T           string  `json:"t"`
	Confirmed   int     `json:"confirmed"`
	Created     int     `json:"created"`
	AvgConfirmS float64 `json:"avg_confirm_s"`
}

// GasToday is one chain's gas and fees since midnight UTC.
type GasToday struct {
	Chain   string `json:"chain"`
	GasUsed uint64 `json:"gas_used"`
	FeeWei  string `json:"fee_wei"`
	Unit    string `json:"unit"` // the native coin the fees are paid in
}

// ---- rendering ----

func strOrNil(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func checksum(a string) string {
	if common.IsHexAddress(a) {
		return common.HexToAddress(a).Hex()
	}
	return a
}

func (o *ops) render(w *store.Withdrawal, client string) WithdrawalView {
	var decimals, confirmations *uint64
	if cd, ok := o.chains[w.Chain]; ok {
		confirmations = &cd.Config.Confirmations
		for _, a := range cd.Config.Assets {
			if a.Symbol == w.Asset {
				d := uint64(a.Decimals)
				decimals = &d
			}
		}
	}
	return WithdrawalView{WithdrawalJSON: api.Render(w, decimals, confirmations), Client: client}
}

// ---- status and summary ----

// Severity ranks, worst first.
var severityRank = map[string]int{"critical": 0, "warning": 1, "info": 2}

// status lists what is wrong now, worst first, each with the command that helps.
func (o *ops) status(ctx context.Context) (Status, error) {
	var ps []Problem
	add := func(p Problem) { ps = append(ps, p) }
	alerts, err := o.st.Alerts(ctx, false, 200)
	if err != nil {
		return Status{}, err
	}
	for _, a := range alerts {
		sev := a.Severity
		if _, ok := severityRank[sev]; !ok {
			sev = "warning"
		}
		hint := "sluice ops alerts"
		if a.Kind == recovery.AlertStuckAtCap {
			hint = "sluice ops stuck list"
		}
		add(Problem{Severity: sev, Kind: "alert", Subject: a.Key, Message: a.Summary, Since: a.OpenedAt, Hint: hint})
	}
	freezes, err := o.st.ActiveFreezes(ctx)
	if err != nil {
		return Status{}, err
	}
	for _, f := range freezes {
		add(Problem{Severity: "warning", Kind: "frozen_wallet", Chain: f.Chain, Subject: f.Chain + "/" + checksum(f.Address),
			Message: fmt.Sprintf("wallet frozen by %s: %s", f.FrozenBy, f.Reason), Since: f.FrozenAt,
			Hint: "sluice ops wallets unfreeze " + f.Chain + "/" + checksum(f.Address)})
	}
	stuck, err := o.stuck(ctx)
	if err != nil {
		return Status{}, err
	}
	for _, s := range stuck {
		sev, msg := "warning", fmt.Sprintf("nonce %d unmined for %d blocks (tip %s wei)", s.Nonce, s.BlocksWaiting, s.MaxPriorityFeeWei)
		if s.AtCap {
			sev, msg = "critical", msg+"; at the fee cap: recovery cannot bump it further"
		}
		hint := "sluice ops stuck list"
		if len(s.WithdrawalIDs) > 0 {
			hint = "sluice ops withdrawals speed-up " + s.WithdrawalIDs[0]
		}
		add(Problem{Severity: sev, Kind: "stuck_tx", Chain: s.Chain, Subject: s.TxHash, Message: msg,
			Since: o.now().Add(-time.Duration(s.AgeS * float64(time.Second))), Hint: hint})
	}
	for _, w := range o.wallets("") {
		if w.role != "hot" {
			continue
		}
		n := o.nonceView(ctx, w)
		if len(n.Gaps) > 0 {
			add(Problem{Severity: "critical", Kind: "nonce_gap", Chain: n.Chain, Subject: n.Chain + "/" + n.Address,
				Message: fmt.Sprintf("nonces %v are unrecorded below recorded ones: later transactions wait behind them", n.Gaps),
				Since:   o.now(), Hint: "sluice ops wallets fill-gap " + n.Chain + "/" + n.Address})
		}
	}
	parked, err := o.st.ParkedList(ctx, "", "", false, 0, 100)
	if err != nil {
		return Status{}, err
	}
	for _, p := range parked {
		add(Problem{Severity: "warning", Kind: "dlq", Subject: p.Queue + "/" + strconv.FormatInt(p.ID, 10),
			Message: "parked for a person: " + p.Reason, Since: p.CreatedAt,
			Hint: "sluice ops dlq show " + strconv.FormatInt(p.ID, 10)})
	}
	if n, oldest, err := o.st.CountDeadWebhookDeliveries(ctx, store.DeadLetterFilter{}); err != nil {
		return Status{}, err
	} else if n > 0 {
		add(Problem{Severity: "warning", Kind: "webhook_dead", Subject: "webhooks",
			Message: fmt.Sprintf("%d webhook deliveries dead-lettered: their clients missed those events", n), Since: oldest,
			Hint: "sluice ops webhooks dead"})
	}
	// Withdrawals waiting long: for funds or signing (PENDING), or for a client's approvers.
	for _, wait := range []struct {
		st    store.Status
		after time.Duration
		kind  string
	}{{store.Pending, 10 * time.Minute, "awaiting_funds"}, {store.AwaitingApproval, time.Hour, "awaiting_approval"}} {
		ws, err := o.st.OpenSince(ctx, wait.st, o.now().Add(-wait.after), 20)
		if err != nil {
			return Status{}, err
		}
		for _, w := range ws {
			add(Problem{Severity: "info", Kind: wait.kind, Chain: w.Chain, Subject: w.ID,
				Message: fmt.Sprintf("%s for %s", w.Status, o.now().Sub(w.CreatedAt).Round(time.Second)), Since: w.CreatedAt,
				Hint: "sluice ops withdrawals show " + w.ID})
		}
	}
	slices.SortStableFunc(ps, func(a, b Problem) int {
		if d := severityRank[a.Severity] - severityRank[b.Severity]; d != 0 {
			return d
		}
		return a.Since.Compare(b.Since)
	})
	sum, err := o.summary(ctx)
	if err != nil {
		return Status{}, err
	}
	if ps == nil {
		ps = []Problem{}
	}
	return Status{Problems: ps, Summary: sum}, nil
}

func (o *ops) summary(ctx context.Context) ([]ChainCounts, error) {
	rows, err := o.st.Summary(ctx)
	if err != nil {
		return nil, err
	}
	out := []ChainCounts{}
	for _, r := range rows {
		c := ChainCounts{Chain: r.Chain, Counts: r.Counts}
		if !r.OldestOpen.IsZero() {
			c.OldestOpenAgeSec = max(o.now().Sub(r.OldestOpen).Seconds(), 0)
		}
		out = append(out, c)
	}
	return out, nil
}

// ---- withdrawals ----

const (
	defaultLimit = 50
	maxLimit     = 500
)

func validUUID(s string) bool {
	u, err := uuid.Parse(s)
	return err == nil && len(s) == 36 && u.String() == s
}

func parseTime(c echo.Context, field string) (time.Time, error) {
	s := c.QueryParam(field)
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, badParam(field, field+" must be an RFC 3339 time, e.g. 2026-01-02T15:04:05Z")
	}
	return t, nil
}

func (o *ops) searchWithdrawals(c echo.Context) (Page[WithdrawalView], error) {
	f := store.AdminFilter{ID: c.QueryParam("id"), ExternalID: c.QueryParam("external_id"), Address: c.QueryParam("address"),
		TxHash: c.QueryParam("tx_hash"), Status: store.Status(c.QueryParam("state")), Chain: c.QueryParam("chain"),
		Asset: c.QueryParam("asset"), Cursor: c.QueryParam("cursor")}
	var err error
	switch {
	case f.ID != "" && !validUUID(f.ID):
		return Page[WithdrawalView]{}, badParam("id", "id must be a withdrawal id (a UUID)")
	case f.Cursor != "" && !validUUID(f.Cursor):
		return Page[WithdrawalView]{}, badParam("cursor", "cursor must be the next_cursor of a previous page")
	case f.Address != "" && !common.IsHexAddress(f.Address):
		return Page[WithdrawalView]{}, badParam("address", "address must be a 0x address")
	case f.TxHash != "" && (len(f.TxHash) != 66 || !strings.HasPrefix(f.TxHash, "0x")):
		return Page[WithdrawalView]{}, badParam("tx_hash", "tx_hash must be a 0x transaction hash (66 characters)")
	case f.Status != "" && !store.ValidStatus(string(f.Status)):
		return Page[WithdrawalView]{}, badParam("state", fmt.Sprintf("state %q is not a withdrawal state", f.Status))
	case len(f.ExternalID) > 128:
		return Page[WithdrawalView]{}, badParam("external_id", "external_id is at most 128 characters")
	}
	if f.Chain != "" {
		if _, ok := o.chains[f.Chain]; !ok {
			return Page[WithdrawalView]{}, badParam("chain", fmt.Sprintf("chain %q is not configured", f.Chain))
		}
	}
	if f.Since, err = parseTime(c, "since"); err != nil {
		return Page[WithdrawalView]{}, err
	}
	if f.Until, err = parseTime(c, "until"); err != nil {
		return Page[WithdrawalView]{}, err
	}
	if f.Limit, err = parseLimit(c, defaultLimit, maxLimit); err != nil {
		return Page[WithdrawalView]{}, err
	}
	lim := f.Limit
	f.Limit++ // one more tells whether there is a next page
	rows, err := o.st.SearchWithdrawals(c.Request().Context(), f)
	if err != nil {
		return Page[WithdrawalView]{}, err
	}
	p := Page[WithdrawalView]{Items: []WithdrawalView{}}
	for i, r := range rows {
		if i == lim {
			p.NextCursor = rows[i-1].ID
			break
		}
		p.Items = append(p.Items, o.render(r.Withdrawal, r.Client))
	}
	return p, nil
}

func (o *ops) withdrawalDetail(ctx context.Context, id string) (*WithdrawalDetail, error) {
	if !validUUID(id) {
		return nil, badParam("id", "id must be a withdrawal id (a UUID)")
	}
	w, err := o.st.GetWithdrawal(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, missing("id", "no withdrawal "+id)
	}
	if err != nil {
		return nil, err
	}
	client, err := o.st.ClientName(ctx, w.ClientID)
	if err != nil {
		return nil, err
	}
	d := &WithdrawalDetail{Withdrawal: o.render(w, client), History: []HistoryView{}, Attempts: []AttemptView{}, FeesPaidWei: "0"}
	hs, err := o.st.History(ctx, id)
	if err != nil {
		return nil, err
	}
	for _, h := range hs {
		d.History = append(d.History, HistoryView{From: strOrNil(string(h.From)), To: string(h.To), Reason: h.Reason, Actor: string(h.Actor), At: ts(h.CreatedAt)})
	}
	if w.SentTxID != nil {
		as, err := o.st.Attempts(ctx, *w.SentTxID)
		if err != nil {
			return nil, err
		}
		paid := new(big.Int)
		for _, a := range as {
			v := AttemptView{Hash: a.Hash, Nonce: a.Nonce, From: checksum(a.From), Kind: a.Kind, Status: a.Status,
				MaxFeePerGasWei: a.MaxFeePerGas, MaxPriorityFeeWei: a.MaxPriorityFee, GasUsed: a.GasUsed, CreatedAt: ts(a.CreatedAt)}
			if a.EffectiveGasPrice != nil && a.GasUsed != nil {
				p, fee := a.EffectiveGasPrice.String(), new(big.Int).Mul(a.EffectiveGasPrice, new(big.Int).SetUint64(*a.GasUsed))
				f := fee.String()
				v.EffectiveGasPriceWei, v.FeePaidWei = &p, &f
				paid.Add(paid, fee)
			}
			d.Attempts = append(d.Attempts, v)
		}
		// A batch's fee is shared by its withdrawals: each is shown the whole transaction's fee.
		d.FeesPaidWei = paid.String()
	}
	if w.BatchID != "" {
		b, err := o.st.BatchOf(ctx, w.BatchID)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
		if b != nil {
			d.Batch = &BatchView{ID: b.ID, TxHash: b.TxHash, Size: b.Size, WithdrawalIDs: b.WithdrawalIDs}
		}
	}
	if cd, ok := o.chains[w.Chain]; ok && cd.Config.ExplorerURL != "" && w.TxHash != "" {
		d.ExplorerURL = strings.ReplaceAll(cd.Config.ExplorerURL, "{hash}", w.TxHash)
	}
	return d, nil
}

// ---- queues and DLQs ----

func (o *ops) queueViews(ctx context.Context) ([]QueueView, error) {
	parked, err := o.st.ParkedList(ctx, "", "", false, 0, maxLimit)
	if err != nil {
		return nil, err
	}
	byDLQ := map[string]int{}
	for _, p := range parked {
		byDLQ[p.Queue]++
	}
	out := []QueueView{}
	for _, name := range queue.WorkQueues {
		v := QueueView{Name: name}
		if s, err := o.queues.Stats(ctx, name); err != nil {
			v.Error = err.Error()
		} else {
			v.Depth, v.OldestAgeS = s.Depth, s.OldestAge.Seconds()
		}
		dlq := queue.DLQFor(name)
		v.DLQ = &DLQView{Name: dlq, Parked: byDLQ[dlq]}
		if s, err := o.queues.Stats(ctx, dlq); err != nil {
			v.Error = strings.TrimPrefix(v.Error+"; "+err.Error(), "; ")
		} else {
			v.DLQ.Depth, v.DLQ.OldestAgeS = s.Depth, s.OldestAge.Seconds()
		}
		out = append(out, v)
	}
	return out, nil
}

func (o *ops) dlqView(ctx context.Context, p store.ParkedMessage) DLQMessage {
	m := DLQMessage{ID: strconv.FormatInt(p.ID, 10), Queue: p.Queue, Class: p.ErrorType, Error: p.Reason, FirstSeen: ts(p.CreatedAt),
		Body: string(p.Body), Resolution: p.Resolution, ResolvedBy: p.ResolvedBy}
	d := decodeDead(p.Queue, p.Body)
	m.Receives = d.receives
	if d.errMsg != "" {
		m.Error = d.errMsg + " — " + p.Reason
	}
	if !d.at.IsZero() {
		m.FirstSeen = ts(d.at)
	}
	if id := o.withdrawalOf(ctx, d); id != "" {
		m.WithdrawalID = &id
	}
	return m
}

// dead is a DLQ message body as far as it decodes: a DeadLetter, or the original message itself when the
// backend moved it.
type dead struct {
	orig     []byte
	src      string // the work queue it came from
	groupID  string
	errMsg   string
	receives int
	at       time.Time
}

func decodeDead(dlq string, body []byte) dead {
	d := dead{orig: body, src: recovery.SourceOf(dlq)}
	var dl queue.DeadLetter
	if err := json.Unmarshal(body, &dl); err == nil && len(dl.OriginalMessage) > 0 && dl.Error.Type != "" {
		d.orig, d.errMsg, d.receives, d.at = dl.OriginalMessage, dl.Error.Message, dl.Meta.AttemptCount, dl.Meta.Timestamp
		if q, ok := dl.Error.Details["queue"].(string); ok && q != "" && queue.DLQFor(q) == dlq {
			d.src = q
		}
		if g, ok := dl.Error.Details["group_id"].(string); ok {
			d.groupID = g
		}
	}
	return d
}

// withdrawalOf names the withdrawal a DLQ message is about, when it says.
func (o *ops) withdrawalOf(ctx context.Context, d dead) string {
	env, err := queue.ParseEnvelope(d.orig, "")
	if err != nil {
		return ""
	}
	var p struct {
		WithdrawalID string `json:"withdrawal_id"`
		SentTxID     int64  `json:"sent_tx_id"`
	}
	if json.Unmarshal(env.Payload, &p) != nil {
		return ""
	}
	if p.WithdrawalID != "" {
		return p.WithdrawalID
	}
	if p.SentTxID != 0 {
		if ws, err := o.st.WithdrawalsBySentTx(ctx, o.st.DB, p.SentTxID); err == nil && len(ws) > 0 {
			return ws[0].ID
		}
	}
	return ""
}

func (o *ops) dlqList(c echo.Context) (Page[DLQMessage], error) {
	q, class := c.QueryParam("queue"), c.QueryParam("class")
	if q != "" && recovery.SourceOf(q) == "" && !slices.Contains([]string{queue.BalanceCheckDLQ, queue.BalanceTransferDLQ}, q) {
		return Page[DLQMessage]{}, badParam("queue", fmt.Sprintf("%q is not a DLQ", q))
	}
	lim, err := parseLimit(c, defaultLimit, maxLimit)
	if err != nil {
		return Page[DLQMessage]{}, err
	}
	var after int64
	if cur := c.QueryParam("cursor"); cur != "" {
		if after, err = strconv.ParseInt(cur, 10, 64); err != nil || after < 0 {
			return Page[DLQMessage]{}, badParam("cursor", "cursor must be the next_cursor of a previous page")
		}
	}
	ctx := c.Request().Context()
	ps, err := o.st.ParkedList(ctx, q, class, c.QueryParam("state") == "all", after, lim+1)
	if err != nil {
		return Page[DLQMessage]{}, err
	}
	p := Page[DLQMessage]{Items: []DLQMessage{}}
	for i, m := range ps {
		if i == lim {
			p.NextCursor = strconv.FormatInt(ps[i-1].ID, 10)
			break
		}
		p.Items = append(p.Items, o.dlqView(ctx, m))
	}
	return p, nil
}

func parseParkedID(field, s string) (int64, error) {
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		return 0, badParam(field, "a DLQ message id is the number GET /admin/v1/dlq shows")
	}
	return id, nil
}

func (o *ops) dlqMessage(ctx context.Context, s string) (*DLQMessage, error) {
	id, err := parseParkedID("id", s)
	if err != nil {
		return nil, err
	}
	p, err := o.st.ParkedByID(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, missing("id", "no parked DLQ message "+s)
	}
	if err != nil {
		return nil, err
	}
	m := o.dlqView(ctx, *p)
	return &m, nil
}

// ---- wallets and nonces ----

func (o *ops) nonceView(ctx context.Context, w wallet) NonceView {
	cfg := w.chain.Config
	v := NonceView{Chain: cfg.Name, Address: w.addr.Hex(), Leases: []uint64{}, Gaps: []uint64{}}
	var errs []string
	rctx, cancel := o.rpc(ctx)
	defer cancel()
	if n, err := w.chain.Client.NonceAt(rctx, w.addr); err != nil {
		errs = append(errs, "latest: "+err.Error())
	} else {
		v.Latest = &n
	}
	if n, err := w.chain.Client.PendingNonceAt(rctx, w.addr); err != nil {
		errs = append(errs, "pending: "+err.Error())
	} else {
		v.Pending = &n
	}
	if st, err := o.nonces.Peek(rctx, cfg.ChainID, w.addr); err != nil {
		errs = append(errs, "redis: "+err.Error())
	} else {
		if st.HasNext {
			n := st.Next
			v.Redis = &n
		}
		for _, l := range st.Leases {
			if !l.Expired {
				v.Leases = append(v.Leases, l.Nonce)
			}
		}
	}
	if n, err := o.st.NextNonce(ctx, cfg.ChainID, w.addr.Hex()); err != nil {
		errs = append(errs, "db: "+err.Error())
	} else {
		v.DB = n
	}
	if v.Latest != nil {
		if gaps, err := o.st.UnrecordedNonces(ctx, cfg.ChainID, w.addr.Hex(), *v.Latest); err != nil {
			errs = append(errs, "gaps: "+err.Error())
		} else {
			for _, g := range gaps {
				if !slices.Contains(v.Leases, g) { // a live lease is being signed into right now
					v.Gaps = append(v.Gaps, g)
				}
			}
		}
	}
	v.Error = strings.Join(errs, "; ")
	return v
}

func (o *ops) walletView(ctx context.Context, w wallet) (WalletView, error) {
	cfg := w.chain.Config
	v := WalletView{Chain: cfg.Name, Address: w.addr.Hex(), Role: w.role, Balances: []BalanceView{}}
	rctx, cancel := o.rpc(ctx)
	defer cancel()
	var nodeErrs []string
	for _, a := range cfg.Assets {
		b := BalanceView{Asset: a.Symbol, Unit: a.Symbol}
		if w.role == "hot" && (a.TopUp.Min.Int().Sign() > 0 || a.TopUp.Target.Int().Sign() > 0) {
			mn, tg := api.FormatAmount(a.TopUp.Min.Int(), a.Decimals), api.FormatAmount(a.TopUp.Target.Int(), a.Decimals)
			b.Min, b.Target = &mn, &tg
		}
		var (
			bal *big.Int
			err error
		)
		if a.Native() {
			bal, err = w.chain.Client.BalanceAt(rctx, w.addr)
		} else {
			bal, err = w.chain.Client.TokenBalance(rctx, a.Address.Common(), w.addr)
		}
		if err != nil {
			b.Error = err.Error()
			nodeErrs = append(nodeErrs, a.Symbol+": "+err.Error())
		} else {
			s := api.FormatAmount(bal, a.Decimals)
			b.Amount = &s
		}
		v.Balances = append(v.Balances, b)
	}
	v.Nonce = o.nonceView(ctx, w)
	if v.Nonce.Error != "" {
		nodeErrs = append(nodeErrs, "nonce: "+v.Nonce.Error)
	}
	v.Error = strings.Join(nodeErrs, "; ")
	var err error
	if v.InFlight, err = o.st.InFlightCount(ctx, cfg.ChainID, w.addr.Hex()); err != nil {
		return v, err
	}
	f, err := o.st.WalletFreeze(ctx, o.st.DB, cfg.Name, w.addr.Hex())
	if err != nil {
		return v, err
	}
	if f != nil {
		v.Frozen = &FreezeView{Reason: f.Reason, By: f.FrozenBy, Since: ts(f.FrozenAt)}
	}
	return v, nil
}

// ---- stuck ----

// stuck lists the broadcast transactions unmined for the chain's stuck_after_blocks or more, and those
// at the fee cap, by chain, address and nonce.
func (o *ops) stuck(ctx context.Context) ([]StuckTx, error) {
	open, err := o.st.OpenAlerts(ctx, recovery.AlertStuckAtCap)
	if err != nil {
		return nil, err
	}
	capKeys := map[string]bool{}
	for _, a := range open {
		capKeys[a.Key] = true
	}
	out := []StuckTx{}
	for _, name := range o.chainNames() {
		cd := o.chains[name]
		rows, err := o.st.InFlightTxs(ctx, cd.Config.ChainID)
		if err != nil {
			return nil, err
		}
		if len(rows) == 0 {
			continue
		}
		rctx, cancel := o.rpc(ctx)
		head, headErr := cd.Client.BlockNumber(rctx)
		var baseFee, tip *string
		if h, err := cd.Client.HeaderByNumber(rctx, nil); err == nil && h.BaseFee != nil {
			s := h.BaseFee.String()
			baseFee = &s
		}
		if t, err := cd.Client.SuggestGasTipCap(rctx); err == nil {
			s := t.String()
			tip = &s
		}
		cancel()
		after := cd.Config.Recovery.StuckAfterBlocks
		for _, r := range rows {
			atCap := capKeys[recovery.CapAlertKey(name, r.From, r.Nonce)]
			var waiting uint64
			if r.AttemptBlock != nil && headErr == nil && head > *r.AttemptBlock {
				waiting = head - *r.AttemptBlock
			}
			if !atCap && (r.AttemptBlock == nil || headErr != nil || waiting < after) {
				continue
			}
			st, err := o.st.GetSentTx(ctx, r.ID)
			if err != nil {
				return nil, err
			}
			ws, err := o.st.WithdrawalsBySentTx(ctx, o.st.DB, r.ID)
			if err != nil {
				return nil, err
			}
			ids := []string{}
			for _, w := range ws {
				ids = append(ids, w.ID)
			}
			out = append(out, StuckTx{Chain: name, From: checksum(r.From), Nonce: r.Nonce, TxHash: r.Hash, WithdrawalIDs: ids,
				AgeS: max(o.now().Sub(st.CreatedAt).Seconds(), 0), BlocksWaiting: waiting, MaxFeePerGasWei: st.MaxFeePerGas.String(),
				MaxPriorityFeeWei: st.MaxPriorityFee.String(), MarketBaseFeeWei: baseFee, MarketTipWei: tip, AtCap: atCap})
		}
	}
	return out, nil
}

// ---- alerts and activity ----

func (o *ops) alerts(ctx context.Context, state string) ([]AlertView, error) {
	if state != "" && state != "open" && state != "all" {
		return nil, badParam("state", `state is "open" or "all"`)
	}
	rows, err := o.st.Alerts(ctx, state == "all", maxLimit)
	if err != nil {
		return nil, err
	}
	out := []AlertView{}
	for _, a := range rows {
		v := AlertView{Key: a.Key, Kind: a.Kind, Severity: a.Severity, Summary: a.Summary, OpenedAt: ts(a.OpenedAt), Details: map[string]any{}}
		_ = json.Unmarshal([]byte(a.Details), &v.Details)
		if a.ResolvedAt != nil {
			s := ts(*a.ResolvedAt)
			v.ResolvedAt = &s
		}
		out = append(out, v)
	}
	return out, nil
}

func (o *ops) activity(ctx context.Context) (Activity, error) {
	now := o.now().UTC()
	start := now.Truncate(time.Minute).Add(-59 * time.Minute)
	bs, err := o.st.Activity(ctx, start)
	if err != nil {
		return Activity{}, err
	}
	got := map[time.Time]store.Bucket{}
	for _, b := range bs {
		got[b.T] = b
	}
	out := Activity{Buckets: make([]ActivityBucket, 0, 60), GasToday: []GasToday{}}
	for t := start; !t.After(now); t = t.Add(time.Minute) {
		b := got[t]
		out.Buckets = append(out.Buckets, ActivityBucket{T: ts(t), Created: b.Created, Confirmed: b.Confirmed, AvgConfirmS: b.AvgConfirmS})
	}
	gs, err := o.st.GasSince(ctx, now.Truncate(24*time.Hour))
	if err != nil {
		return Activity{}, err
	}
	for _, g := range gs {
		unit := ""
		if cd, ok := o.chains[g.Chain]; ok {
			for _, a := range cd.Config.Assets {
				if a.Native() {
					unit = a.Symbol
				}
			}
		}
		out.GasToday = append(out.GasToday, GasToday{Chain: g.Chain, GasUsed: g.GasUsed, FeeWei: g.FeeWei.String(), Unit: unit})
	}
	return out, nil
}

// ---- HTTP ----

// readHandlers are the read routes, relative to /admin/v1; audited marks the sensitive ones.
type readRoute struct {
	path    string
	audited bool
	h       echo.HandlerFunc
}

func (o *ops) readRoutes() []readRoute {
	js := func(f func(c echo.Context) (any, error)) echo.HandlerFunc {
		return func(c echo.Context) error {
			v, err := f(c)
			if err != nil {
				return err
			}
			return c.JSON(http.StatusOK, v)
		}
	}
	return []readRoute{
		{"/status", false, js(func(c echo.Context) (any, error) { return o.status(c.Request().Context()) })},
		{"/summary", false, js(func(c echo.Context) (any, error) { return o.summary(c.Request().Context()) })},
		{"/withdrawals", false, js(func(c echo.Context) (any, error) { return o.searchWithdrawals(c) })},
		{"/withdrawals/:id", true, js(func(c echo.Context) (any, error) { return o.withdrawalDetail(c.Request().Context(), c.Param("id")) })},
		{"/queues", false, js(func(c echo.Context) (any, error) { return o.queueViews(c.Request().Context()) })},
		{"/dlq", false, js(func(c echo.Context) (any, error) { return o.dlqList(c) })},
		{"/dlq/:id", true, js(func(c echo.Context) (any, error) { return o.dlqMessage(c.Request().Context(), c.Param("id")) })},
		{"/wallets", false, js(func(c echo.Context) (any, error) {
			out := []WalletView{}
			for _, w := range o.wallets("") {
				v, err := o.walletView(c.Request().Context(), w)
				if err != nil {
					return nil, err
				}
				out = append(out, v)
			}
			return out, nil
		})},
		{"/wallets/:chain/:address", false, js(func(c echo.Context) (any, error) {
			w, err := o.findWallet("address", c.Param("chain"), c.Param("address"))
			if err != nil {
				return nil, asNotFound(err)
			}
			return o.walletView(c.Request().Context(), w)
		})},
		{"/nonces", false, js(func(c echo.Context) (any, error) {
			ch, addr := c.QueryParam("chain"), c.QueryParam("address")
			if ch != "" {
				if _, ok := o.chains[ch]; !ok {
					return nil, badParam("chain", fmt.Sprintf("chain %q is not configured", ch))
				}
			}
			if addr != "" && !common.IsHexAddress(addr) {
				return nil, badParam("address", "address must be a 0x address")
			}
			out := []NonceView{}
			for _, w := range o.wallets(ch) {
				if addr == "" || w.addr == common.HexToAddress(addr) {
					out = append(out, o.nonceView(c.Request().Context(), w))
				}
			}
			if addr != "" && len(out) == 0 {
				return nil, missing("address", checksum(addr)+" is not a configured wallet")
			}
			return out, nil
		})},
		{"/stuck", false, js(func(c echo.Context) (any, error) { return o.stuck(c.Request().Context()) })},
		{"/alerts", false, js(func(c echo.Context) (any, error) { return o.alerts(c.Request().Context(), c.QueryParam("state")) })},
		{"/activity", false, js(func(c echo.Context) (any, error) { return o.activity(c.Request().Context()) })},
		{"/webhooks/dead", false, js(func(c echo.Context) (any, error) { return o.deadWebhooks(c) })},
		{"/webhooks/deliveries/:id", true, js(func(c echo.Context) (any, error) { return o.webhookDelivery(c.Request().Context(), c.Param("id")) })},
	}
}

// asNotFound turns an unknown wallet in a path into a 404 (in a body or query it is a 422 or 400).
func asNotFound(err error) error {
	var e *Error
	if errors.As(err, &e) && e.Status == http.StatusUnprocessableEntity {
		return missing(e.Field, e.Message)
	}
	return err
}

// opsRoutes registers what operators read (role viewer); the sensitive reads are audited before they
// are served.
func (s *Server) opsRoutes(g *echo.Group) {
	if s.ops == nil {
		return
	}
	for _, r := range s.ops.readRoutes() {
		h := r.h
		if r.audited {
			path := r.path
			h = func(c echo.Context) error {
				what := strings.TrimPrefix(path, "/")
				for _, n := range c.ParamNames() {
					what = strings.Replace(what, ":"+n, c.Param(n), 1)
				}
				if err := s.auditRead(c, what, map[string]any{"path": c.Request().URL.Path}); err != nil {
					return err
				}
				return r.h(c)
			}
		}
		g.GET(r.path, h, s.require(RoleViewer))
	}
}
