package ops

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"

	"github.com/sluice-custody/sluice/admin"
)

func withdrawalTarget(args []string) (string, error) { return args[0], nil }
func plainTarget(args []string) (string, error)      { return args[0], nil }

func walletTarget(args []string) (string, error) {
	chain, addr, err := walletArg(args)
	if err != nil {
		return "", err
	}
	return chain + "/" + addr, nil
}

// actionParams are the parameters a command's own flags add to its request.
func (r *runner) actionParams() map[string]string {
	p := map[string]string{}
	if r.opts.force {
		p["force"] = "true"
	}
	if r.opts.since != "" {
		p["since"] = r.opts.since
	}
	if len(p) == 0 {
		return nil
	}
	return p
}

// actionRun makes the run function of an action command: dry run, or preview + confirmation + the
// request, with the exit code its outcome means.
func actionRun(action string, target func([]string) (string, error)) func(*runner, []string) error {
	return func(r *runner, args []string) error {
		tgt, err := target(args)
		if err != nil {
			return err
		}
		req := admin.ActionRequest{Action: action, Target: tgt, Params: r.actionParams(), Reason: r.reason, RequestID: r.requestID}
		if req.RequestID == "" {
			req.RequestID = r.newID()
		}
		if r.dryRun {
			req.DryRun = true
			return r.act(req)
		}
		if !r.yes {
			if err := r.mayAsk(); err != nil {
				return err
			}
			// The preview is a dry run of its own (another request id: the same id with another body
			// is refused as a conflict), so what the operator agrees to is the server's plan, now.
			preview := req
			preview.DryRun, preview.RequestID = true, r.newID()
			res, err := r.postAction(preview)
			if err != nil {
				return err
			}
			r.printPlan(r.stderrIfJSON(), res.Plan)
			if !r.confirm(fmt.Sprintf("%s %s", action, tgt)) {
				return &exitError{code: ExitFailed, msg: "not confirmed: nothing was done"}
			}
		}
		return r.act(req)
	}
}

// stderrIfJSON is where human text goes when stdout carries JSON.
func (r *runner) stderrIfJSON() io.Writer {
	if r.json {
		return r.stderr
	}
	return r.stdout
}

// mayAsk refuses to act when nobody can be asked: a script must say --yes.
func (r *runner) mayAsk() error {
	if r.stdinTTY() {
		return nil
	}
	return &exitError{code: ExitUsage, msg: "refusing to act without confirmation: stdin is not a terminal (pass --yes, or --dry-run to see the plan)"}
}

// confirm asks on stderr and reads y/yes from stdin.
func (r *runner) confirm(what string) bool {
	fmt.Fprintf(r.stderr, "\nProceed with %s? [y/N] ", what)
	line, err := r.readLine(bufio.NewReader(r.stdin))
	if err != nil {
		fmt.Fprintln(r.stderr)
		return false
	}
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return true
	}
	return false
}

// postAction sends one ActionRequest and decodes the ActionResult (200 or 202).
func (r *runner) postAction(req admin.ActionRequest) (admin.ActionResult, error) {
	var res admin.ActionResult
	resp, err := r.call(http.MethodPost, "/admin/v1/actions", nil, req)
	if err != nil {
		return res, err
	}
	if resp.status != http.StatusOK && resp.status != http.StatusAccepted {
		return res, decodeError(resp)
	}
	if err := json.Unmarshal(resp.body, &res); err != nil {
		return res, fmt.Errorf("decode action result: %w", err)
	}
	return res, nil
}

// act sends the request and reports its outcome.
func (r *runner) act(req admin.ActionRequest) error {
	resp, err := r.call(http.MethodPost, "/admin/v1/actions", nil, req)
	if err != nil {
		return err
	}
	return r.actionResult(resp)
}

// actionResult reports the ActionResult of an action or an approval (printed as JSON with --json).
func (r *runner) actionResult(resp response) error {
	if resp.status != http.StatusOK && resp.status != http.StatusAccepted {
		return decodeError(resp)
	}
	var res admin.ActionResult
	if err := json.Unmarshal(resp.body, &res); err != nil {
		return fmt.Errorf("decode action result: %w", err)
	}
	if r.json {
		if err := r.printJSON(resp.body); err != nil {
			return err
		}
		return r.outcome(res, io.Discard)
	}
	return r.outcome(res, r.stdout)
}

// outcome prints an ActionResult and returns the error that carries its exit code.
func (r *runner) outcome(res admin.ActionResult, w io.Writer) error {
	switch res.Status {
	case admin.ActionPlanned:
		r.printPlan(w, res.Plan)
		fmt.Fprintf(w, "\ndry run: nothing was changed. Run it without --dry-run to do it.\n")
		return nil
	case admin.ActionDone:
		fmt.Fprintf(w, "%s: %s %s (request %s, by %s)\n", r.paintWord("done"), res.Action, res.Target, res.RequestID, byText(res))
		r.printPlan(w, res.Plan)
		printResultMap(w, res.Result)
		return nil
	case admin.ActionAwaitingApproval:
		id := r.approvalID(res)
		fmt.Fprintf(w, "%s: %s %s needs a second person (request %s).\n", r.paintWord("awaiting_approval"), res.Action, res.Target, res.RequestID)
		r.printPlan(w, res.Plan)
		fmt.Fprintf(w, "\nA different operator with the approver role must run:\n  sluice ops approvals approve %s\n", id)
		if res.ExpiresAt != nil {
			fmt.Fprintf(w, "The request expires at %s.\n", timeText(*res.ExpiresAt))
		}
		return &exitError{code: ExitAwaiting}
	}
	r.printPlan(w, res.Plan)
	msg := fmt.Sprintf("%s %s: %s", res.Action, res.Target, res.Status)
	if res.Error != "" {
		msg += ": " + res.Error
	}
	return &exitError{code: ExitFailed, msg: msg}
}

func byText(res admin.ActionResult) string {
	if res.ApprovedBy != "" {
		return res.RequestedBy + ", approved by " + res.ApprovedBy
	}
	return res.RequestedBy
}

// approvalID finds the approval a 202 created: the result names it, or the pending list has it under
// the request id.
func (r *runner) approvalID(res admin.ActionResult) string {
	if id, ok := res.Result["approval_id"].(string); ok && id != "" {
		return id
	}
	resp, err := r.call(http.MethodGet, "/admin/v1/approvals", url.Values{"status": {"pending"}}, nil)
	if err == nil && resp.status == http.StatusOK {
		var as []admin.Approval
		if json.Unmarshal(resp.body, &as) == nil {
			for _, a := range as {
				if a.Action.RequestID == res.RequestID {
					return a.ID
				}
			}
		}
	}
	return "<id from sluice ops approvals list>"
}

func printResultMap(w io.Writer, m map[string]any) {
	if len(m) == 0 {
		return
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	pairs := make([]string, 0, 2*len(keys))
	for _, k := range keys {
		v := m[k]
		s, ok := v.(string)
		if !ok {
			b, _ := json.Marshal(v)
			s = string(b)
		}
		pairs = append(pairs, k, s)
	}
	fmt.Fprintln(w, "\nresult:")
	_ = kv(w, pairs...)
}

// printPlan prints the exact transactions (nonce, fees in gwei) and rows an action would change.
func (r *runner) printPlan(w io.Writer, p admin.Plan) {
	fmt.Fprintf(w, "plan: %s\n", dash(p.Summary))
	sub := *r
	sub.stdout = w
	if len(p.Transactions) > 0 {
		fmt.Fprintln(w, "\ntransactions to sign:")
		t := sub.table("KIND", "CHAIN", "FROM", "NONCE", "TO", "VALUE", "MAX FEE", "PRIORITY FEE", "REPLACES", "WITHDRAWALS")
		for _, tx := range p.Transactions {
			t.row(tx.Kind, tx.Chain, tx.From, fmt.Sprint(tx.Nonce), tx.To, valueText(tx.ValueWei),
				gwei(tx.MaxFeePerGasWei), gwei(tx.MaxPriorityFeeWei), dash(tx.Replaces), dash(strings.Join(tx.WithdrawalIDs, ",")))
		}
		_ = t.flush()
	}
	if len(p.Rows) > 0 {
		fmt.Fprintln(w, "\nrows to change:")
		t := sub.table("TABLE", "KEY", "CHANGE")
		for _, row := range p.Rows {
			t.row(row.Table, row.Key, row.Change)
		}
		_ = t.flush()
	}
	for i, warn := range p.Warnings {
		if i == 0 {
			fmt.Fprintln(w, "\nwarnings:")
		}
		fmt.Fprintf(w, "  ! %s\n", warn)
	}
}

func valueText(wei string) string {
	if wei == "" || wei == "0" {
		return "0"
	}
	return ether(wei) + " (native)"
}

func (r *runner) getApproval(id string) (admin.Approval, []byte, error) {
	var a admin.Approval
	resp, err := r.call(http.MethodGet, "/admin/v1/approvals/"+url.PathEscape(id), nil, nil)
	if err != nil {
		return a, nil, err
	}
	if resp.status != http.StatusOK {
		return a, nil, decodeError(resp)
	}
	if err := json.Unmarshal(resp.body, &a); err != nil {
		return a, nil, fmt.Errorf("decode approval: %w", err)
	}
	return a, resp.body, nil
}

func (r *runner) describeApproval(w io.Writer, a admin.Approval) {
	fmt.Fprintf(w, "approval %s (%s): %s %s requested by %s %s ago, expires in %s\n", a.ID, a.Status, a.Action.Action, a.Action.Target,
		a.Action.RequestedBy, r.age(a.CreatedAt), duration(a.ExpiresAt.Sub(r.now())))
	r.printPlan(w, a.Action.Plan)
}

func (r *runner) approvalsApprove(args []string) error {
	resp, err := r.decideApproval(args[0], "approve", "approving", "not approved. The plan is computed again when approved.", struct{}{})
	if err != nil || resp == nil {
		return err
	}
	return r.actionResult(*resp)
}

func (r *runner) approvalsReject(args []string) error {
	resp, err := r.decideApproval(args[0], "reject", "rejecting", "not rejected.", map[string]string{"reason": r.reason})
	if err != nil || resp == nil {
		return err
	}
	if resp.status != http.StatusOK {
		return decodeError(*resp)
	}
	if r.json {
		return r.printJSON(resp.body)
	}
	var out admin.Approval
	if err := json.Unmarshal(resp.body, &out); err != nil {
		return fmt.Errorf("decode approval: %w", err)
	}
	fmt.Fprintf(r.stdout, "%s: approval %s of %s %s (requested by %s)\n", r.paintWord(out.Status), out.ID, out.Action.Action, out.Action.Target, out.Action.RequestedBy)
	return nil
}

// decideApproval shows approval id and, unless this is a dry run (then resp is nil) or the operator
// declines, posts verb ("approve", "reject") with body. doing names the decision in the prompt, dryNote
// ends the dry run's description.
func (r *runner) decideApproval(id, verb, doing, dryNote string, body any) (*response, error) {
	if !r.dryRun && !r.yes {
		if err := r.mayAsk(); err != nil {
			return nil, err
		}
	}
	a, raw, err := r.getApproval(id)
	if err != nil {
		return nil, err
	}
	if r.dryRun {
		if r.json {
			return nil, r.printJSON(raw)
		}
		r.describeApproval(r.stdout, a)
		fmt.Fprintln(r.stdout, "\ndry run: "+dryNote)
		return nil, nil
	}
	if !r.yes {
		r.describeApproval(r.stderrIfJSON(), a)
		if !r.confirm(doing + " " + a.Action.Action + " " + a.Action.Target) {
			return nil, &exitError{code: ExitFailed, msg: "not confirmed: nothing was done"}
		}
	}
	resp, err := r.call(http.MethodPost, "/admin/v1/approvals/"+url.PathEscape(id)+"/"+verb, nil, body)
	if err != nil {
		return nil, err
	}
	return &resp, nil
}
