package ops

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

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
		line, err := r.readLine(in)
		if err != nil {
			return fmt.Errorf("read username: %w", err)
		}
		user = strings.TrimSpace(line)
	}
	var password string
	if r.opts.passwordStdin {
		line, err := r.readLine(in)
		if err != nil {
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
	fmt.Fprintf(r.stdout, "logged in to %s as %s (%s); session kept in %s\n", r.baseURL(), t.Operator.Username, t.Operator.Role, p)
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
		t := r.table("#", "SEVERITY", "KIND", "CHAIN", "SUBJECT", "FOR", "WHAT").paint(1)
		for i, p := range st.Problems {
			t.row(strconv.Itoa(i+1), p.Severity, p.Kind, dash(p.Chain), p.Subject, r.age(p.Since), p.Message)
		}
		if err := t.flush(); err != nil {
			return err
		}
		// The commands apart from the table, whole, so they can be copied even on a narrow terminal.
		fmt.Fprintln(r.stdout, "\nwhat to type:")
		for i, p := range st.Problems {
			if p.Hint != "" {
				fmt.Fprintf(r.stdout, "  %d  %s\n", i+1, p.Hint)
			}
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
				oldest = ageSeconds(c.OldestOpenAgeSec)
			}
			t.row(c.Chain, fmt.Sprint(open), oldest, strings.Join(parts, " "))
		}
		return t.flush()
	}
	return nil
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

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func num(p *uint64) string {
	if p == nil {
		return ""
	}
	return strconv.FormatUint(*p, 10)
}

func (r *runner) withdrawalsList(_ []string) error {
	var page admin.Page[admin.WithdrawalView]
	if ok, err := r.get("/admin/v1/withdrawals", r.query(), &page); !ok {
		return err
	}
	if len(page.Items) == 0 {
		fmt.Fprintln(r.stdout, "no withdrawals match")
		return nil
	}
	t := r.table("ID", "CLIENT", "CHAIN", "ASSET", "AMOUNT", "TO", "STATUS", "TX", "CREATED").paint(6)
	for _, w := range page.Items {
		t.row(w.ID, dash(w.Client), w.Chain, w.Asset, dash(str(w.Amount)), short(w.To), w.Status, short(dash(str(w.TxHash))), timeText(parseTime(w.CreatedAt)))
	}
	if err := t.flush(); err != nil {
		return err
	}
	r.nextPage(page.NextCursor)
	return nil
}

func (r *runner) withdrawalsShow(args []string) error {
	var d admin.WithdrawalDetail
	if ok, err := r.get("/admin/v1/withdrawals/"+url.PathEscape(args[0]), nil, &d); !ok {
		return err
	}
	w := d.Withdrawal
	errText := ""
	if w.Error != nil {
		errText = w.Error.Type + ": " + w.Error.Message
	}
	if err := kv(r.stdout,
		"id", w.ID, "external id", w.ExternalID, "client", w.Client, "status", r.paintWord(w.Status),
		"chain", w.Chain, "asset", w.Asset, "amount", str(w.Amount), "to", w.To,
		"from", str(w.From), "nonce", num(w.Nonce), "tx", str(w.TxHash), "block", num(w.BlockNumber),
		"confirmations", num(w.Confirmations), "error", errText,
		"created", timeText(parseTime(w.CreatedAt)), "updated", timeText(parseTime(w.UpdatedAt)),
		"fees paid", feeText(d.FeesPaidWei), "explorer", d.ExplorerURL); err != nil {
		return err
	}
	if d.Batch != nil {
		fmt.Fprintf(r.stdout, "\nbatch %s: %d withdrawal(s) in tx %s\n", d.Batch.ID, d.Batch.Size, dash(d.Batch.TxHash))
	}
	if len(d.Attempts) > 0 {
		fmt.Fprintln(r.stdout, "\ntransactions:")
		t := r.table("HASH", "KIND", "NONCE", "FROM", "STATUS", "MAX FEE", "PRIORITY FEE", "GAS USED", "FEE PAID", "SENT").paint(4)
		for _, a := range d.Attempts {
			t.row(a.Hash, a.Kind, strconv.FormatUint(a.Nonce, 10), short(a.From), a.Status, gwei(a.MaxFeePerGasWei), gwei(a.MaxPriorityFeeWei),
				dash(num(a.GasUsed)), feeText(str(a.FeePaidWei)), timeText(parseTime(a.CreatedAt)))
		}
		if err := t.flush(); err != nil {
			return err
		}
	}
	if len(d.History) > 0 {
		fmt.Fprintln(r.stdout, "\nhistory:")
		t := r.table("AT", "FROM", "TO", "BY", "WHY")
		for _, h := range d.History {
			t.row(timeText(parseTime(h.At)), dash(str(h.From)), h.To, dash(h.Actor), dash(h.Reason))
		}
		return t.flush()
	}
	return nil
}

func feeText(wei string) string {
	if wei == "" {
		return "-"
	}
	return ether(wei) + " (native)"
}

func ageSeconds(s float64) string {
	return duration(time.Duration(s * float64(time.Second)))
}

func (r *runner) dlqList(_ []string) error {
	if !r.json {
		// The queue depths first: a DLQ filling up is the news, its messages the detail.
		var qs []admin.QueueView
		if ok, err := r.get("/admin/v1/queues", nil, &qs); !ok {
			return err
		}
		t := r.table("QUEUE", "DEPTH", "IN FLIGHT", "OLDEST", "DLQ", "DLQ DEPTH", "PARKED", "DLQ OLDEST")
		for _, q := range qs {
			d := admin.DLQView{}
			if q.DLQ != nil {
				d = *q.DLQ
			}
			if q.Error != "" {
				t.row(q.Name, "?", "?", "?", dash(d.Name), "?", "?", "error: "+q.Error)
				continue
			}
			t.row(q.Name, strconv.Itoa(q.Depth), strconv.Itoa(q.InFlight), ageSeconds(q.OldestAgeS), dash(d.Name),
				strconv.Itoa(d.Depth), strconv.Itoa(d.Parked), ageSeconds(d.OldestAgeS))
		}
		if err := t.flush(); err != nil {
			return err
		}
		fmt.Fprintln(r.stdout)
	}
	var page admin.Page[admin.DLQMessage]
	if ok, err := r.get("/admin/v1/dlq", r.query(), &page); !ok {
		return err
	}
	if len(page.Items) == 0 {
		fmt.Fprintln(r.stdout, "no parked messages")
		return nil
	}
	t := r.table("ID", "QUEUE", "CLASS", "RECEIVES", "FIRST SEEN", "WITHDRAWAL", "ERROR")
	for _, m := range page.Items {
		t.row(m.ID, m.Queue, m.Class, strconv.Itoa(m.Receives), r.age(parseTime(m.FirstSeen)), dash(str(m.WithdrawalID)), m.Error)
	}
	if err := t.flush(); err != nil {
		return err
	}
	r.nextPage(page.NextCursor)
	fmt.Fprintln(r.stdout, "\nsee one: sluice ops dlq show <id>; then redrive or discard it (two-person)")
	return nil
}

func (r *runner) dlqShow(args []string) error {
	var m admin.DLQMessage
	if ok, err := r.get("/admin/v1/dlq/"+url.PathEscape(args[0]), nil, &m); !ok {
		return err
	}
	resolved := ""
	if m.Resolution != "" {
		resolved = m.Resolution + " by " + dash(m.ResolvedBy)
	}
	if err := kv(r.stdout, "id", m.ID, "queue", m.Queue, "class", m.Class, "error", m.Error, "receives", strconv.Itoa(m.Receives),
		"first seen", timeText(parseTime(m.FirstSeen)), "withdrawal", str(m.WithdrawalID), "resolved", resolved); err != nil {
		return err
	}
	if m.Body != "" {
		fmt.Fprintln(r.stdout, "\nbody:")
		if json.Valid([]byte(m.Body)) {
			return r.printJSON([]byte(m.Body))
		}
		fmt.Fprintln(r.stdout, m.Body)
	}
	return nil
}

func frozenText(w admin.WalletView) string {
	if w.Frozen == nil {
		return "no"
	}
	return "frozen"
}

func balancesText(w admin.WalletView) string {
	parts := make([]string, 0, len(w.Balances))
	for _, b := range w.Balances {
		unit := b.Unit
		if unit == "" {
			unit = b.Asset
		}
		amount := dash(str(b.Amount))
		if b.Error != "" {
			amount = "?"
		}
		parts = append(parts, amount+" "+unit)
	}
	return strings.Join(parts, ", ")
}

func nonceText(n admin.NonceView) string {
	s := fmt.Sprintf("latest %s, pending %s, redis %s, db %d", dash(num(n.Latest)), dash(num(n.Pending)), dash(num(n.Redis)), n.DB)
	if len(n.Gaps) > 0 {
		s += fmt.Sprintf("; gaps %v", n.Gaps)
	}
	if len(n.Leases) > 0 {
		s += fmt.Sprintf("; leased %v", n.Leases)
	}
	if n.Error != "" {
		s += "; node error: " + n.Error
	}
	return s
}

func (r *runner) walletsList(_ []string) error {
	var ws []admin.WalletView
	if ok, err := r.get("/admin/v1/wallets", nil, &ws); !ok {
		return err
	}
	t := r.table("CHAIN", "ADDRESS", "ROLE", "FROZEN", "IN FLIGHT", "NONCE L/P/R/D", "BALANCES").paint(3)
	for _, w := range ws {
		n := w.Nonce
		t.row(w.Chain, w.Address, w.Role, frozenText(w), strconv.Itoa(w.InFlight),
			fmt.Sprintf("%s/%s/%s/%d", dash(num(n.Latest)), dash(num(n.Pending)), dash(num(n.Redis)), n.DB), balancesText(w))
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
	var w admin.WalletView
	if ok, err := r.get("/admin/v1/wallets/"+url.PathEscape(chain)+"/"+url.PathEscape(addr), nil, &w); !ok {
		return err
	}
	frozen := "no"
	if w.Frozen != nil {
		frozen = fmt.Sprintf("%s since %s by %s: %s", r.paintWord("frozen"), timeText(parseTime(w.Frozen.Since)), dash(w.Frozen.By), w.Frozen.Reason)
	}
	if err := kv(r.stdout, "chain", w.Chain, "address", w.Address, "role", w.Role, "frozen", frozen,
		"in flight", strconv.Itoa(w.InFlight), "nonce", nonceText(w.Nonce), "node error", w.Error); err != nil {
		return err
	}
	if len(w.Balances) > 0 {
		fmt.Fprintln(r.stdout)
		t := r.table("ASSET", "BALANCE", "MIN", "TARGET")
		for _, b := range w.Balances {
			amount := dash(str(b.Amount)) + " " + b.Unit
			if b.Error != "" {
				amount = "? (" + b.Error + ")"
			}
			t.row(b.Asset, amount, dash(str(b.Min)), dash(str(b.Target)))
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
	var ns []admin.NonceView
	if ok, err := r.get("/admin/v1/nonces", q, &ns); !ok {
		return err
	}
	t := r.table("CHAIN", "ADDRESS", "LATEST", "PENDING", "REDIS", "DB", "GAPS", "LEASED", "IN SYNC").paint(8)
	for _, n := range ns {
		t.row(n.Chain, n.Address, dash(num(n.Latest)), dash(num(n.Pending)), dash(num(n.Redis)), strconv.FormatUint(n.DB, 10),
			uintsText(n.Gaps), uintsText(n.Leases), nonceVerdict(n))
	}
	return t.flush()
}

func uintsText(v []uint64) string {
	if len(v) == 0 {
		return "-"
	}
	parts := make([]string, len(v))
	for i, n := range v {
		parts[i] = strconv.FormatUint(n, 10)
	}
	return strings.Join(parts, ",")
}

// nonceVerdict says whether the nonce sources agree: a gap blocks every later transaction (fill-gap);
// Redis behind the database is what resync fixes; pending above latest is only work in flight.
func nonceVerdict(n admin.NonceView) string {
	switch {
	case n.Error != "":
		return "unknown"
	case len(n.Gaps) > 0:
		return "gap"
	case n.Redis != nil && *n.Redis < n.DB:
		return "behind"
	case n.Latest != nil && n.Pending != nil && *n.Pending > *n.Latest:
		return "in flight"
	}
	return "ok"
}

func (r *runner) stuckList(_ []string) error {
	var ss []admin.StuckTx
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
		t.row(s.Chain, short(s.From), strconv.FormatUint(s.Nonce, 10), s.TxHash, ageSeconds(s.AgeS), strconv.FormatUint(s.BlocksWaiting, 10),
			gwei(s.MaxFeePerGasWei), gwei(s.MaxPriorityFeeWei), gwei(str(s.MarketBaseFeeWei)), gwei(str(s.MarketTipWei)),
			atCap, strings.Join(s.WithdrawalIDs, ","))
	}
	if err := t.flush(); err != nil {
		return err
	}
	fmt.Fprintln(r.stdout, "\nspeed one up: sluice ops withdrawals speed-up <withdrawal> --dry-run")
	return nil
}

func (r *runner) alerts(_ []string) error {
	state := "open"
	if r.opts.all {
		state = "all"
	}
	var as []admin.AlertView
	if ok, err := r.get("/admin/v1/alerts", url.Values{"state": {state}}, &as); !ok {
		return err
	}
	if len(as) == 0 {
		fmt.Fprintln(r.stdout, map[string]string{"open": "no open alerts", "all": "no alerts"}[state])
		return nil
	}
	t := r.table("SEVERITY", "KIND", "KEY", "OPENED", "RESOLVED", "SUMMARY").paint(0)
	for _, a := range as {
		resolved := "-"
		if tm := parseTime(str(a.ResolvedAt)); !tm.IsZero() {
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
		fmt.Fprintln(r.stdout, map[string]string{"pending": "no pending approvals", "all": "no approvals"}[status])
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
