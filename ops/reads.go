package ops

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"

	"github.com/sluice-custody/sluice/admin"
)

func (r *runner) login(_ []string) error {
	in := bufio.NewReader(r.stdin)
	user := r.opts.username
	if !r.opts.passwordStdin && !r.stdinTTY() {
		return usagef("stdin is not a terminal: pass --username and --password-stdin")
	}
	if user == "" {
		if r.opts.passwordStdin {
			return usagef("--password-stdin needs --username")
		}
		fmt.Fprint(r.stderr, "Username: ")
		line, err := in.ReadString('\n')
		if err != nil && line == "" {
			return fmt.Errorf("read username: %w", err)
		}
		user = strings.TrimSpace(line)
	}
	var password string
	if r.opts.passwordStdin {
		line, err := in.ReadString('\n')
		if err != nil && line == "" {
			return fmt.Errorf("read password from stdin: %w", err)
		}
		password = strings.TrimRight(line, "\r\n")
	} else {
		fmt.Fprint(r.stderr, "Password: ")
		b, err := r.readPassword()
		fmt.Fprintln(r.stderr)
		if err != nil {
			return fmt.Errorf("read password: %w", err)
		}
		password = string(b)
	}
	if user == "" || password == "" {
		return usagef("username and password are required")
	}
	resp, err := r.send(http.MethodPost, "/admin/v1/auth/login", nil, admin.LoginRequest{Username: user, Password: password}, "")
	if err != nil {
		return err
	}
	if resp.status != http.StatusOK {
		return decodeError(resp)
	}
	var t admin.Tokens
	if err := json.Unmarshal(resp.body, &t); err != nil {
		return fmt.Errorf("decode login answer: %w", err)
	}
	if t.AccessToken == "" {
		return fmt.Errorf("the API answered the login without an access token")
	}
	tf, err := r.loadTokens()
	if err != nil {
		return err
	}
	tf.Sessions[r.baseURL()] = sessionOf(t)
	if err := r.saveTokens(tf); err != nil {
		return err
	}
	p, _ := r.tokenPath()
	fmt.Fprintf(r.stdout, "logged in to %s as %s (%s); token kept in %s until %s\n",
		r.baseURL(), t.Operator.Username, t.Operator.Role, p, timeText(t.ExpiresAt))
	return nil
}

func (r *runner) logout(_ []string) error {
	tf, err := r.loadTokens()
	if err != nil {
		return err
	}
	s, ok := tf.Sessions[r.baseURL()]
	if !ok {
		fmt.Fprintf(r.stdout, "not logged in to %s\n", r.baseURL())
		return nil
	}
	// Forget the token even if the API cannot be told: a kept token is the greater risk.
	delete(tf.Sessions, r.baseURL())
	if err := r.saveTokens(tf); err != nil {
		return err
	}
	resp, err := r.send(http.MethodPost, "/admin/v1/auth/logout", nil, nil, s.AccessToken)
	if err != nil {
		return fmt.Errorf("token forgotten here, but the API could not revoke it (it expires by itself at %s): %w", timeText(s.ExpiresAt), err)
	}
	if resp.status != http.StatusNoContent && resp.status != http.StatusOK && resp.status != http.StatusUnauthorized {
		return fmt.Errorf("token forgotten here, but the API refused to revoke it: %w", decodeError(resp))
	}
	fmt.Fprintf(r.stdout, "logged out of %s (%s)\n", r.baseURL(), s.Operator)
	return nil
}

func (r *runner) whoami(_ []string) error {
	var op admin.Operator
	if ok, err := r.get("/admin/v1/me", nil, &op); !ok {
		return err
	}
	fmt.Fprintf(r.stdout, "%s (%s) at %s\n", op.Username, op.Role, r.baseURL())
	return nil
}

// terminalStates are the states a withdrawal leaves no more; the others count as open.
var terminalStates = map[string]bool{"CONFIRMED": true, "FAILED": true, "CANCELED": true}

func stateRank(s string) int {
	for i, v := range []string{"AWAITING_APPROVAL", "AWAITING_FUNDS", "PENDING", "SIGNING", "SIGNED", "BROADCASTED", "CONFIRMED", "FAILED", "CANCELED"} {
		if v == s {
			return i
		}
	}
	return 100
}

func (r *runner) status(_ []string) error {
	var st admin.Status
	if ok, err := r.get("/admin/v1/status", nil, &st); !ok {
		return err
	}
	if len(st.Problems) == 0 {
		fmt.Fprintf(r.stdout, "%s: nothing is wrong now.\n", r.paintWord("ok"))
	} else {
		fmt.Fprintf(r.stdout, "%d problem(s), worst first:\n\n", len(st.Problems))
		t := r.table("SEVERITY", "KIND", "CHAIN", "SUBJECT", "FOR", "WHAT", "FIX").paint(0)
		for _, p := range st.Problems {
			t.row(p.Severity, p.Kind, dash(p.Chain), p.Subject, r.age(p.Since), p.Message, dash(p.Hint))
		}
		if err := t.flush(); err != nil {
			return err
		}
	}
	if len(st.Summary) > 0 {
		fmt.Fprintln(r.stdout)
		t := r.table("CHAIN", "OPEN", "OLDEST OPEN", "BY STATE")
		for _, c := range st.Summary {
			states := make([]string, 0, len(c.Counts))
			open := 0
			for s, n := range c.Counts {
				states = append(states, s)
				if !terminalStates[s] {
					open += n
				}
			}
			sort.Slice(states, func(i, j int) bool {
				if a, b := stateRank(states[i]), stateRank(states[j]); a != b {
					return a < b
				}
				return states[i] < states[j]
			})
			parts := make([]string, 0, len(states))
			for _, s := range states {
				parts = append(parts, fmt.Sprintf("%s=%d", s, c.Counts[s]))
			}
			oldest := "-"
			if open > 0 {
				oldest = seconds(jstr(fmt.Sprint(c.OldestOpenAgeSec)))
			}
			t.row(c.Chain, fmt.Sprint(open), oldest, strings.Join(parts, " "))
		}
		return t.flush()
	}
	return nil
}

// withdrawalView is the public API's withdrawal JSON plus the client, as the admin API lists it.
type withdrawalView struct {
	ID            string `json:"id"`
	ExternalID    string `json:"external_id"`
	Client        jstr   `json:"client"`
	Chain         string `json:"chain"`
	Asset         string `json:"asset"`
	To            string `json:"to"`
	Amount        jstr   `json:"amount"`
	Status        string `json:"status"`
	From          jstr   `json:"from"`
	Nonce         jstr   `json:"nonce"`
	TxHash        jstr   `json:"tx_hash"`
	BatchID       jstr   `json:"batch_id"`
	BlockNumber   jstr   `json:"block_number"`
	Confirmations jstr   `json:"confirmations"`
	Error         *struct {
		Type    string `json:"type"`
		Message string `json:"message"`
	} `json:"error"`
	CreatedAt jstr `json:"created_at"`
	UpdatedAt jstr `json:"updated_at"`
}

// query builds the API query from the command's filter flags (--tx-hash is tx_hash).
func (r *runner) query() url.Values {
	q := url.Values{}
	for name, v := range r.opts.query {
		if *v != "" {
			q.Set(strings.ReplaceAll(name, "-", "_"), *v)
		}
	}
	return q
}

func (r *runner) nextPage(cursor string) {
	if cursor != "" {
		fmt.Fprintf(r.stdout, "\nmore: add --cursor %s\n", cursor)
	}
}

func (r *runner) withdrawalsList(_ []string) error {
	var page admin.Page[withdrawalView]
	if ok, err := r.get("/admin/v1/withdrawals", r.query(), &page); !ok {
		return err
	}
	if len(page.Items) == 0 {
		fmt.Fprintln(r.stdout, "no withdrawals match")
		return nil
	}
	t := r.table("ID", "CLIENT", "CHAIN", "ASSET", "AMOUNT", "TO", "STATUS", "TX", "CREATED").paint(6)
	for _, w := range page.Items {
		t.row(w.ID, w.Client.or("-"), w.Chain, w.Asset, w.Amount.or("-"), short(w.To), w.Status, short(w.TxHash.or("-")), timeText(parseTime(w.CreatedAt)))
	}
	if err := t.flush(); err != nil {
		return err
	}
	r.nextPage(page.NextCursor)
	return nil
}

type attemptView struct {
	Hash              string `json:"hash"`
	Nonce             jstr   `json:"nonce"`
	From              string `json:"from"`
	Kind              string `json:"kind"`
	Status            string `json:"status"`
	MaxFeeWei         jstr   `json:"max_fee_per_gas_wei"`
	MaxPriorityFeeWei jstr   `json:"max_priority_fee_per_gas_wei"`
	GasUsed           jstr   `json:"gas_used"`
	EffectiveGasPrice jstr   `json:"effective_gas_price_wei"`
	FeePaidWei        jstr   `json:"fee_paid_wei"`
	CreatedAt         jstr   `json:"created_at"`
}

type withdrawalDetail struct {
	Withdrawal withdrawalView             `json:"withdrawal"`
	History    []map[string]jsonAnyScalar `json:"history"`
	Attempts   []attemptView              `json:"attempts"`
	Batch      *struct {
		ID            string   `json:"id"`
		TxHash        jstr     `json:"tx_hash"`
		Size          jstr     `json:"size"`
		WithdrawalIDs []string `json:"withdrawal_ids"`
	} `json:"batch"`
	FeesPaidWei jstr `json:"fees_paid_wei"`
	ExplorerURL jstr `json:"explorer_url"`
}

// jsonAnyScalar is a history field of any type, printed as text (objects as compact JSON).
type jsonAnyScalar struct{ s string }

func (v *jsonAnyScalar) UnmarshalJSON(b []byte) error {
	var j jstr
	if len(b) > 0 && (b[0] == '{' || b[0] == '[') {
		v.s = string(b)
		return nil
	}
	if err := j.UnmarshalJSON(b); err != nil {
		return err
	}
	v.s = string(j)
	return nil
}

// historyField returns the first of the keys a history row has (the row's shape is the store's).
func historyField(h map[string]jsonAnyScalar, keys ...string) string {
	for _, k := range keys {
		if v, ok := h[k]; ok && v.s != "" {
			return v.s
		}
	}
	return "-"
}

func (r *runner) withdrawalsShow(args []string) error {
	var d withdrawalDetail
	if ok, err := r.get("/admin/v1/withdrawals/"+url.PathEscape(args[0]), nil, &d); !ok {
		return err
	}
	w := d.Withdrawal
	errText := ""
	if w.Error != nil {
		errText = w.Error.Type + ": " + w.Error.Message
	}
	if err := kv(r.stdout,
		"id", w.ID, "external id", w.ExternalID, "client", string(w.Client), "status", r.paintWord(w.Status),
		"chain", w.Chain, "asset", w.Asset, "amount", string(w.Amount), "to", w.To,
		"from", string(w.From), "nonce", string(w.Nonce), "tx", string(w.TxHash), "block", string(w.BlockNumber),
		"confirmations", string(w.Confirmations), "error", errText,
		"created", timeText(parseTime(w.CreatedAt)), "updated", timeText(parseTime(w.UpdatedAt)),
		"fees paid", feeText(d.FeesPaidWei), "explorer", string(d.ExplorerURL)); err != nil {
		return err
	}
	if d.Batch != nil {
		fmt.Fprintf(r.stdout, "\nbatch %s: %s withdrawal(s) in tx %s\n", d.Batch.ID, d.Batch.Size.or(fmt.Sprint(len(d.Batch.WithdrawalIDs))), d.Batch.TxHash.or("-"))
	}
	if len(d.Attempts) > 0 {
		fmt.Fprintln(r.stdout, "\ntransactions:")
		t := r.table("HASH", "KIND", "NONCE", "FROM", "STATUS", "MAX FEE", "PRIORITY FEE", "GAS USED", "FEE PAID", "SENT").paint(4)
		for _, a := range d.Attempts {
			t.row(a.Hash, a.Kind, string(a.Nonce), short(a.From), a.Status, gwei(string(a.MaxFeeWei)), gwei(string(a.MaxPriorityFeeWei)),
				a.GasUsed.or("-"), feeText(a.FeePaidWei), timeText(parseTime(a.CreatedAt)))
		}
		if err := t.flush(); err != nil {
			return err
		}
	}
	if len(d.History) > 0 {
		fmt.Fprintln(r.stdout, "\nhistory:")
		t := r.table("AT", "FROM", "TO", "WHY")
		for _, h := range d.History {
			at := historyField(h, "at", "created_at", "changed_at")
			if tm := parseTime(jstr(at)); !tm.IsZero() {
				at = timeText(tm)
			}
			t.row(at, historyField(h, "from", "from_status"), historyField(h, "to", "to_status", "status"),
				historyField(h, "reason", "note", "detail", "error"))
		}
		return t.flush()
	}
	return nil
}

func feeText(wei jstr) string {
	if wei == "" {
		return "-"
	}
	return ether(string(wei)) + " (native)"
}

type dlqDepth struct {
	Name      string `json:"name"`
	Depth     jstr   `json:"depth"`
	OldestAge jstr   `json:"oldest_age_s"`
}

type queueView struct {
	Name      string    `json:"name"`
	Depth     jstr      `json:"depth"`
	InFlight  jstr      `json:"in_flight"`
	OldestAge jstr      `json:"oldest_age_s"`
	DLQ       *dlqDepth `json:"dlq"`
}

type dlqMessage struct {
	ID           string          `json:"id"`
	Queue        string          `json:"queue"`
	Class        string          `json:"class"`
	Error        string          `json:"error"`
	Receives     jstr            `json:"receives"`
	FirstSeen    jstr            `json:"first_seen"`
	WithdrawalID jstr            `json:"withdrawal_id"`
	Body         json.RawMessage `json:"body"`
}

func (r *runner) dlqList(_ []string) error {
	if !r.json {
		// The queue depths first: a DLQ filling up is the news, its messages the detail.
		var qs []queueView
		if ok, err := r.get("/admin/v1/queues", nil, &qs); !ok {
			return err
		}
		t := r.table("QUEUE", "DEPTH", "IN FLIGHT", "OLDEST", "DLQ", "DLQ DEPTH", "DLQ OLDEST")
		for _, q := range qs {
			d := dlqDepth{}
			if q.DLQ != nil {
				d = *q.DLQ
			}
			t.row(q.Name, q.Depth.or("0"), q.InFlight.or("0"), seconds(q.OldestAge), dash(d.Name), d.Depth.or("0"), seconds(d.OldestAge))
		}
		if err := t.flush(); err != nil {
			return err
		}
		fmt.Fprintln(r.stdout)
	}
	var page admin.Page[dlqMessage]
	if ok, err := r.get("/admin/v1/dlq", r.query(), &page); !ok {
		return err
	}
	if len(page.Items) == 0 {
		fmt.Fprintln(r.stdout, "no dead-lettered messages")
		return nil
	}
	t := r.table("ID", "QUEUE", "CLASS", "RECEIVES", "FIRST SEEN", "WITHDRAWAL", "ERROR")
	for _, m := range page.Items {
		t.row(m.ID, m.Queue, m.Class, m.Receives.or("-"), r.age(parseTime(m.FirstSeen)), m.WithdrawalID.or("-"), m.Error)
	}
	if err := t.flush(); err != nil {
		return err
	}
	r.nextPage(page.NextCursor)
	return nil
}

func (r *runner) dlqShow(args []string) error {
	var m dlqMessage
	if ok, err := r.get("/admin/v1/dlq/"+url.PathEscape(args[0]), nil, &m); !ok {
		return err
	}
	if err := kv(r.stdout, "id", m.ID, "queue", m.Queue, "class", m.Class, "error", m.Error, "receives", string(m.Receives),
		"first seen", timeText(parseTime(m.FirstSeen)), "withdrawal", string(m.WithdrawalID)); err != nil {
		return err
	}
	if len(m.Body) > 0 && string(m.Body) != "null" {
		fmt.Fprintln(r.stdout, "\nbody:")
		var s string
		if json.Unmarshal(m.Body, &s) == nil {
			fmt.Fprintln(r.stdout, s)
		} else {
			return r.printJSON(m.Body)
		}
	}
	return nil
}

type nonceView struct {
	Chain   string `json:"chain"`
	Address string `json:"address"`
	Latest  jstr   `json:"latest"`
	Pending jstr   `json:"pending"`
	Redis   jstr   `json:"redis"`
	DB      jstr   `json:"db"`
}

type walletView struct {
	Chain    string `json:"chain"`
	Address  string `json:"address"`
	Role     string `json:"role"`
	Balances []struct {
		Asset  string `json:"asset"`
		Amount jstr   `json:"amount"`
		Unit   string `json:"unit"`
		Min    jstr   `json:"min"`
		Target jstr   `json:"target"`
	} `json:"balances"`
	Nonce    nonceView `json:"nonce"`
	InFlight jstr      `json:"in_flight"`
	Frozen   *struct {
		Reason string `json:"reason"`
		By     string `json:"by"`
		Since  jstr   `json:"since"`
	} `json:"frozen"`
}

func (w walletView) frozenText() string {
	if w.Frozen == nil {
		return "no"
	}
	return "frozen"
}

func (w walletView) balancesText() string {
	parts := make([]string, 0, len(w.Balances))
	for _, b := range w.Balances {
		unit := b.Unit
		if unit == "" {
			unit = b.Asset
		}
		parts = append(parts, fmt.Sprintf("%s %s", b.Amount.or("?"), unit))
	}
	return strings.Join(parts, ", ")
}

// nonceText shows the four nonces and says when they disagree in a way that matters.
func nonceText(n nonceView) string {
	return fmt.Sprintf("latest %s, pending %s, redis %s, db %s", n.Latest.or("?"), n.Pending.or("?"), n.Redis.or("-"), n.DB.or("-"))
}

func (r *runner) walletsList(_ []string) error {
	var ws []walletView
	if ok, err := r.get("/admin/v1/wallets", nil, &ws); !ok {
		return err
	}
	t := r.table("CHAIN", "ADDRESS", "ROLE", "FROZEN", "IN FLIGHT", "NONCE L/P/R/D", "BALANCES").paint(3)
	for _, w := range ws {
		n := w.Nonce
		t.row(w.Chain, w.Address, w.Role, w.frozenText(), w.InFlight.or("0"),
			fmt.Sprintf("%s/%s/%s/%s", n.Latest.or("?"), n.Pending.or("?"), n.Redis.or("-"), n.DB.or("-")), w.balancesText())
	}
	return t.flush()
}

// walletArg reads <chain>/<address> or <chain> <address>.
func walletArg(args []string) (chain, address string, err error) {
	switch len(args) {
	case 1:
		c, a, ok := strings.Cut(args[0], "/")
		if ok && c != "" && a != "" {
			return c, a, nil
		}
	case 2:
		return args[0], args[1], nil
	}
	return "", "", usagef("name the wallet as <chain>/<address>")
}

func (r *runner) walletsShow(args []string) error {
	chain, addr, err := walletArg(args)
	if err != nil {
		return err
	}
	var w walletView
	if ok, err := r.get("/admin/v1/wallets/"+url.PathEscape(chain)+"/"+url.PathEscape(addr), nil, &w); !ok {
		return err
	}
	frozen := "no"
	if w.Frozen != nil {
		frozen = fmt.Sprintf("%s since %s by %s: %s", r.paintWord("frozen"), timeText(parseTime(w.Frozen.Since)), dash(w.Frozen.By), w.Frozen.Reason)
	}
	if err := kv(r.stdout, "chain", w.Chain, "address", w.Address, "role", w.Role, "frozen", frozen,
		"in flight", w.InFlight.or("0"), "nonce", nonceText(w.Nonce)); err != nil {
		return err
	}
	if len(w.Balances) > 0 {
		fmt.Fprintln(r.stdout)
		t := r.table("ASSET", "BALANCE", "MIN", "TARGET")
		for _, b := range w.Balances {
			unit := b.Unit
			if unit == "" {
				unit = b.Asset
			}
			t.row(b.Asset, b.Amount.or("?")+" "+unit, b.Min.or("-"), b.Target.or("-"))
		}
		return t.flush()
	}
	return nil
}

func (r *runner) noncesShow(args []string) error {
	q := r.query()
	if len(args) > 0 {
		chain, addr, err := walletArg(args)
		if err != nil {
			return err
		}
		q.Set("chain", chain)
		q.Set("address", addr)
	}
	// One wallet or all: the API answers one object or a list, so decode either.
	var raw json.RawMessage
	if ok, err := r.get("/admin/v1/nonces", q, &raw); !ok {
		return err
	}
	var ns []nonceView
	if err := json.Unmarshal(raw, &ns); err != nil {
		var one nonceView
		if err := json.Unmarshal(raw, &one); err != nil {
			return fmt.Errorf("decode answer of GET /admin/v1/nonces: %w", err)
		}
		ns = []nonceView{one}
	}
	t := r.table("CHAIN", "ADDRESS", "LATEST", "PENDING", "REDIS", "DB", "IN SYNC").paint(6)
	for _, n := range ns {
		t.row(n.Chain, n.Address, n.Latest.or("?"), n.Pending.or("?"), n.Redis.or("-"), n.DB.or("-"), nonceVerdict(n))
	}
	return t.flush()
}

// nonceVerdict says whether the four nonce sources agree. Pending above latest is normal (in flight);
// Redis behind the database or the chain is what resync fixes.
func nonceVerdict(n nonceView) string {
	if n.Redis == "" || n.DB == "" {
		return "-"
	}
	if n.Redis == n.DB && n.DB == n.Pending {
		return "ok"
	}
	if n.Redis == n.DB {
		return "in flight"
	}
	return "stuck"
}

type stuckView struct {
	Chain         string   `json:"chain"`
	From          string   `json:"from"`
	Nonce         jstr     `json:"nonce"`
	TxHash        string   `json:"tx_hash"`
	WithdrawalIDs []string `json:"withdrawal_ids"`
	AgeSec        jstr     `json:"age_s"`
	BlocksWaiting jstr     `json:"blocks_waiting"`
	MaxFeeWei     jstr     `json:"max_fee_per_gas_wei"`
	MaxTipWei     jstr     `json:"max_priority_fee_per_gas_wei"`
	BaseFeeWei    jstr     `json:"market_base_fee_wei"`
	MarketTipWei  jstr     `json:"market_tip_wei"`
	AtCap         bool     `json:"at_cap"`
}

func (r *runner) stuckList(_ []string) error {
	var ss []stuckView
	if ok, err := r.get("/admin/v1/stuck", nil, &ss); !ok {
		return err
	}
	if len(ss) == 0 {
		fmt.Fprintln(r.stdout, "no stuck transactions")
		return nil
	}
	t := r.table("CHAIN", "FROM", "NONCE", "TX", "WAITING", "BLOCKS", "MAX FEE", "TIP", "MARKET BASE", "MARKET TIP", "AT CAP", "WITHDRAWALS").paint(10)
	for _, s := range ss {
		atCap := "no"
		if s.AtCap {
			atCap = "yes (at cap)"
		}
		t.row(s.Chain, short(s.From), string(s.Nonce), s.TxHash, seconds(s.AgeSec), s.BlocksWaiting.or("-"),
			gwei(string(s.MaxFeeWei)), gwei(string(s.MaxTipWei)), gwei(string(s.BaseFeeWei)), gwei(string(s.MarketTipWei)),
			atCap, strings.Join(s.WithdrawalIDs, ","))
	}
	if err := t.flush(); err != nil {
		return err
	}
	fmt.Fprintln(r.stdout, "\nspeed one up: sluice ops withdrawals speed-up <withdrawal> --dry-run")
	return nil
}

type alertView struct {
	Key        string          `json:"key"`
	Kind       string          `json:"kind"`
	Severity   string          `json:"severity"`
	Summary    string          `json:"summary"`
	Details    json.RawMessage `json:"details"`
	OpenedAt   jstr            `json:"opened_at"`
	ResolvedAt jstr            `json:"resolved_at"`
}

func (r *runner) alerts(_ []string) error {
	state := "open"
	if r.opts.all {
		state = "all"
	}
	var as []alertView
	if ok, err := r.get("/admin/v1/alerts", url.Values{"state": {state}}, &as); !ok {
		return err
	}
	if len(as) == 0 {
		fmt.Fprintf(r.stdout, "no %s alerts\n", map[string]string{"open": "open", "all": ""}[state])
		return nil
	}
	t := r.table("SEVERITY", "KIND", "KEY", "OPENED", "RESOLVED", "SUMMARY").paint(0)
	for _, a := range as {
		resolved := "-"
		if tm := parseTime(a.ResolvedAt); !tm.IsZero() {
			resolved = r.age(tm) + " ago"
		}
		t.row(a.Severity, a.Kind, a.Key, r.age(parseTime(a.OpenedAt))+" ago", resolved, a.Summary)
	}
	return t.flush()
}

func (r *runner) approvalsList(_ []string) error {
	status := "pending"
	if r.opts.all {
		status = "all"
	}
	var as []admin.Approval
	if ok, err := r.get("/admin/v1/approvals", url.Values{"status": {status}}, &as); !ok {
		return err
	}
	if len(as) == 0 {
		fmt.Fprintf(r.stdout, "no %s approvals\n", map[string]string{"pending": "pending", "all": ""}[status])
		return nil
	}
	t := r.table("ID", "STATUS", "ACTION", "TARGET", "REQUESTED BY", "AGE", "EXPIRES", "DECIDED BY", "PLAN").paint(1)
	for _, a := range as {
		t.row(a.ID, a.Status, a.Action.Action, a.Action.Target, a.Action.RequestedBy, r.age(a.CreatedAt),
			duration(a.ExpiresAt.Sub(r.now())), dash(a.DecidedBy), a.Action.Plan.Summary)
	}
	if err := t.flush(); err != nil {
		return err
	}
	if status == "pending" {
		fmt.Fprintln(r.stdout, "\nsee the plan: sluice ops approvals approve <id> --dry-run")
	}
	return nil
}

func (r *runner) auditList(_ []string) error {
	var page admin.Page[admin.AuditEntry]
	if ok, err := r.get("/admin/v1/audit", r.query(), &page); !ok {
		return err
	}
	t := r.table("ID", "AT", "OPERATOR", "REMOTE", "KIND", "WHAT", "OUTCOME")
	for _, e := range page.Items {
		t.row(fmt.Sprint(e.ID), timeText(e.At), dash(e.Operator), dash(e.Remote), e.Kind, e.What, e.Outcome)
	}
	if err := t.flush(); err != nil {
		return err
	}
	r.nextPage(page.NextCursor)
	return nil
}

func (r *runner) auditVerify(_ []string) error {
	resp, err := r.call(http.MethodGet, "/admin/v1/audit/verify", nil, nil)
	if err != nil {
		return err
	}
	if resp.status != http.StatusOK {
		return decodeError(resp)
	}
	var v admin.AuditVerify
	if err := json.Unmarshal(resp.body, &v); err != nil {
		return fmt.Errorf("decode answer of GET /admin/v1/audit/verify: %w", err)
	}
	if r.json {
		if err := r.printJSON(resp.body); err != nil {
			return err
		}
	} else if v.OK {
		fmt.Fprintf(r.stdout, "%s: the audit chain verifies (%d rows)\n", r.paintWord("ok"), v.Rows)
	}
	if !v.OK {
		return &exitError{code: ExitFailed, msg: fmt.Sprintf("the audit chain is broken at row %d: %s (%d rows checked)", v.FirstBrokenID, dash(v.Reason), v.Rows)}
	}
	return nil
}
