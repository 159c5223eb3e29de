package ops

import (
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/sluice-custody/sluice/admin"
)

// command is one `sluice ops` command.
type command struct {
	path     string // "withdrawals show"
	usage    string // what follows `sluice ops`
	summary  string
	args     int  // exact number of positional arguments; -1 for any
	action   bool // takes --dry-run, --yes, --request-id, --reason and asks before acting
	external bool // built in cmd/sluice (needs the database), listed here for help and completion
	query    []string
	flags    func(fs *flag.FlagSet, o *cmdOpts)
	run      func(r *runner, args []string) error
}

// cmdOpts are the per-command flags.
type cmdOpts struct {
	query         map[string]*string
	all           bool
	force         bool
	username      string
	passwordStdin bool
	endpoint      string
	since         string
}

// group is a noun with subcommands (withdrawals, dlq, ...).
type group struct {
	name    string
	summary string
}

func groups() []group {
	return []group{
		{"withdrawals", "search, inspect and act on withdrawals"},
		{"dlq", "dead-lettered messages: inspect, redrive, discard"},
		{"wallets", "hot and main wallets: balances, nonces, freeze, resync, gaps"},
		{"webhooks", "dead-lettered webhook deliveries: inspect, redeliver"},
		{"nonces", "a wallet's nonce on chain, in Redis and in the database"},
		{"stuck", "transactions waiting too long to be mined"},
		{"approvals", "two-person requests waiting for a second operator"},
		{"audit", "the tamper-evident audit log"},
		{"operator", "operator accounts (straight into the database: needs --config)"},
		{"completion", "shell completion scripts"},
	}
}

func findGroup(name string) *group {
	for _, g := range groups() {
		if g.name == name {
			return &g
		}
	}
	return nil
}

// commandTable lists every command in the order help shows them.
func commandTable() []*command {
	q := func(names ...string) []string { return names }
	return []*command{
		{path: "login", usage: "login [--username NAME] [--password-stdin]", summary: "log in and keep the token in the config dir", args: 0,
			flags: func(fs *flag.FlagSet, o *cmdOpts) {
				fs.StringVar(&o.username, "username", "", "operator name (asked for when missing)")
				fs.BoolVar(&o.passwordStdin, "password-stdin", false, "read the password from the first line of stdin")
			}, run: (*runner).login},
		{path: "logout", usage: "logout", summary: "revoke the token and forget it", args: 0, run: (*runner).logout},
		{path: "whoami", usage: "whoami", summary: "who the kept token belongs to, and the role", args: 0, run: (*runner).whoami},
		{path: "status", usage: "status", summary: "what is wrong now, worst first, with the command that fixes each", args: 0, run: (*runner).status},

		{path: "withdrawals list", usage: "withdrawals list [--state S] [--chain C] [--asset A] [--address X] [--external-id E] [--tx-hash H] [--since T] [--until T] [--limit N] [--cursor C]",
			summary: "search withdrawals (newest first)", args: 0,
			query: q("id", "external-id", "address", "tx-hash", "state", "chain", "asset", "since", "until", "limit", "cursor"), run: (*runner).withdrawalsList},
		{path: "withdrawals show", usage: "withdrawals show <id>", summary: "a withdrawal with its history, every transaction attempt, batch and fees", args: 1, run: (*runner).withdrawalsShow},
		{path: "withdrawals retry", usage: "withdrawals retry <id> [action flags]", summary: "send a failed or parked withdrawal through the pipeline again", args: 1, action: true, run: actionRun(admin.ActionWithdrawalRetry, withdrawalTarget)},
		{path: "withdrawals fail", usage: "withdrawals fail <id> --reason R [action flags]", summary: "mark a withdrawal failed (two-person)", args: 1, action: true, run: actionRun(admin.ActionWithdrawalFail, withdrawalTarget)},
		{path: "withdrawals cancel", usage: "withdrawals cancel <id> [action flags]", summary: "cancel a withdrawal (a 0-value replacement if it was broadcast)", args: 1, action: true, run: actionRun(admin.ActionWithdrawalCancel, withdrawalTarget)},
		{path: "withdrawals speed-up", usage: "withdrawals speed-up <id> [action flags]", summary: "replace a withdrawal's transaction with higher fees", args: 1, action: true, run: actionRun(admin.ActionWithdrawalSpeedUp, withdrawalTarget)},

		{path: "dlq list", usage: "dlq list [--queue Q] [--class C] [--state all] [--limit N] [--cursor C]", summary: "queue depths and parked dead-lettered messages with their error (--state all: resolved ones too)", args: 0,
			query: q("queue", "class", "state", "limit", "cursor"), run: (*runner).dlqList},
		{path: "dlq show", usage: "dlq show <id>", summary: "one dead-lettered message with its body", args: 1, run: (*runner).dlqShow},
		{path: "dlq redrive", usage: "dlq redrive <id> [action flags]", summary: "put a message back on its queue (two-person)", args: 1, action: true, run: actionRun(admin.ActionDLQRedrive, plainTarget)},
		{path: "dlq discard", usage: "dlq discard <id> --reason R [action flags]", summary: "drop a message for good (two-person)", args: 1, action: true, run: actionRun(admin.ActionDLQDiscard, plainTarget)},

		{path: "wallets list", usage: "wallets list", summary: "wallets with balances, nonces, in-flight count, frozen or not", args: 0, run: (*runner).walletsList},
		{path: "wallets show", usage: "wallets show <chain>/<address>", summary: "one wallet", args: -1, run: (*runner).walletsShow},
		{path: "wallets resync", usage: "wallets resync <chain>/<address> [--force] [action flags]", summary: "resync the nonce in Redis from the chain and database (--force: two-person)", args: -1, action: true,
			flags: func(fs *flag.FlagSet, o *cmdOpts) {
				fs.BoolVar(&o.force, "force", false, "resync even when the sources disagree (two-person)")
			}, run: actionRun(admin.ActionWalletResync, walletTarget)},
		{path: "wallets freeze", usage: "wallets freeze <chain>/<address> --reason R [action flags]", summary: "stop signing from a wallet", args: -1, action: true, run: actionRun(admin.ActionWalletFreeze, walletTarget)},
		{path: "wallets unfreeze", usage: "wallets unfreeze <chain>/<address> [action flags]", summary: "sign from a wallet again (two-person)", args: -1, action: true, run: actionRun(admin.ActionWalletUnfreeze, walletTarget)},
		{path: "wallets fill-gap", usage: "wallets fill-gap <chain>/<address> [action flags]", summary: "fill the wallet's nonce gaps with 0-value transactions (two-person)", args: -1, action: true,
			run: actionRun(admin.ActionWalletFillGap, walletTarget)},

		{path: "webhooks dead", usage: "webhooks dead [--client N] [--endpoint N] [--limit N] [--cursor C]",
			summary: "webhook deliveries dead-lettered after 24 h of failures (newest first)", args: 0,
			query: q("client", "endpoint", "limit", "cursor"), run: (*runner).webhooksDead},
		{path: "webhooks show", usage: "webhooks show <id>", summary: "one webhook delivery with its attempts and event", args: 1, run: (*runner).webhooksShow},
		{path: "webhooks redeliver", usage: "webhooks redeliver <id>… | --endpoint N [--since T] [action flags]",
			summary: "send dead (or delivered) webhook deliveries again: the same event ids", args: -1, action: true,
			flags: func(fs *flag.FlagSet, o *cmdOpts) {
				fs.StringVar(&o.endpoint, "endpoint", "", "every dead delivery of this endpoint id")
				fs.StringVar(&o.since, "since", "", "with --endpoint: only those created at or after this RFC 3339 time")
			}, run: (*runner).webhooksRedeliver},

		{path: "nonces show", usage: "nonces show [<chain>/<address>] [--chain C] [--address A]", summary: "nonces: chain latest and pending, Redis, database", args: -1,
			query: q("chain", "address"), run: (*runner).noncesShow},
		{path: "stuck list", usage: "stuck list", summary: "transactions not mined in time, with their fees against the market", args: 0, run: (*runner).stuckList},
		{path: "alerts", usage: "alerts [--all]", summary: "open alerts (--all: resolved ones too)", args: 0,
			flags: func(fs *flag.FlagSet, o *cmdOpts) { fs.BoolVar(&o.all, "all", false, "resolved alerts too") },
			run:   (*runner).alerts},

		{path: "approvals list", usage: "approvals list [--all]", summary: "pending two-person requests (--all: decided ones too)", args: 0,
			flags: func(fs *flag.FlagSet, o *cmdOpts) { fs.BoolVar(&o.all, "all", false, "decided requests too") },
			run:   (*runner).approvalsList},
		{path: "approvals approve", usage: "approvals approve <id> [--dry-run] [--yes]", summary: "approve another operator's request: the action is performed", args: 1, action: true, run: (*runner).approvalsApprove},
		{path: "approvals reject", usage: "approvals reject <id> --reason R [--yes]", summary: "reject a request", args: 1, action: true, run: (*runner).approvalsReject},

		{path: "audit list", usage: "audit list [--operator O] [--kind K] [--limit N] [--cursor C]", summary: "the audit log, newest first", args: 0,
			query: q("operator", "kind", "limit", "cursor"), run: (*runner).auditList},
		{path: "audit verify", usage: "audit verify", summary: "recompute the hash chain; names the first broken row (exit 1)", args: 0, run: (*runner).auditVerify},

		{path: "operator add", usage: "operator add <username> --role R --config FILE", summary: "create an operator (asks for the password)", args: -1, external: true},
		{path: "operator disable", usage: "operator disable <username> --config FILE", summary: "disable an operator at once", args: -1, external: true},
		{path: "operator reset", usage: "operator reset <username> --config FILE", summary: "set a new password", args: -1, external: true},

		{path: "completion", usage: "completion bash|zsh|fish", summary: "print a shell completion script", args: 1, run: (*runner).completion},
	}
}

// lookup finds the command named by the first one or two words of args.
func lookup(args []string) (*command, []string) {
	table := commandTable()
	if len(args) >= 2 {
		for _, c := range table {
			if c.path == args[0]+" "+args[1] {
				return c, args[2:]
			}
		}
	}
	for _, c := range table {
		if c.path == args[0] {
			return c, args[1:]
		}
	}
	return nil, args
}

const actionFlagsHelp = `action flags:
  --dry-run          print the plan (transactions with nonce and fees, rows changed) and change nothing
  --yes              do not ask for confirmation (required when stdin is not a terminal)
  --reason TEXT      why (written to the audit log)
  --request-id ID    replay an earlier request: the API does nothing twice (default: a fresh UUID)
`

const sharedFlagsHelp = `flags (every command):
  --url URL          admin API (env SLUICE_OPS_URL, default ` + DefaultURL + `)
  --json             print the API's JSON instead of tables
  --timeout D        timeout of each HTTP call (default 30s)
`

const exitCodesHelp = `exit codes: 0 ok, 1 failed, 2 usage, 3 waiting for a second person's approval
`

func (r *runner) help(w io.Writer) {
	fmt.Fprint(w, "usage: sluice ops <command> [flags]\n\nThe on-call tools: a client of the admin API (default "+DefaultURL+").\n\ncommands:\n")
	width := 0
	for _, c := range commandTable() {
		width = max(width, len(c.path))
	}
	for _, c := range commandTable() {
		fmt.Fprintf(w, "  %-*s  %s\n", width, c.path, c.summary)
	}
	fmt.Fprint(w, "\n"+sharedFlagsHelp+"\n"+actionFlagsHelp+"\n"+exitCodesHelp)
	fmt.Fprint(w, "\nThe token is kept in $XDG_CONFIG_HOME/sluice/ops-token.json (default ~/.config/sluice), mode 0600.\n"+
		"sluice ops help <command> shows one command's usage.\n")
}

func (r *runner) groupHelp(w io.Writer, g *group) {
	fmt.Fprintf(w, "sluice ops %s: %s\n\n", g.name, g.summary)
	for _, c := range commandTable() {
		if strings.HasPrefix(c.path, g.name+" ") || c.path == g.name {
			fmt.Fprintf(w, "  sluice ops %s\n      %s\n", c.usage, c.summary)
		}
	}
}

func (r *runner) commandHelp(w io.Writer, c *command) {
	fmt.Fprintf(w, "usage: sluice ops %s\n\n%s\n", c.usage, c.summary)
	if c.external {
		return
	}
	fs := flag.NewFlagSet(c.path, flag.ContinueOnError)
	var o cmdOpts
	if c.flags != nil {
		c.flags(fs, &o)
	}
	for _, name := range c.query {
		fs.String(name, "", "filter")
	}
	var own strings.Builder
	fs.VisitAll(func(f *flag.Flag) {
		arg := " VALUE"
		if bf, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && bf.IsBoolFlag() {
			arg = ""
		}
		fmt.Fprintf(&own, "  --%-16s %s\n", f.Name+arg, f.Usage)
	})
	if own.Len() > 0 {
		fmt.Fprint(w, "\nflags:\n"+own.String())
	}
	if c.action {
		fmt.Fprint(w, "\n"+actionFlagsHelp)
	}
	fmt.Fprint(w, "\n"+sharedFlagsHelp+"\n"+exitCodesHelp)
}
