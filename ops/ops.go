// Package ops is `sluice ops`, the on-call engineer's command line. It is a client of the admin API
// (/admin/v1/..., package admin) and nothing else: it never opens the database, so what an operator
// can do from here is exactly what the API lets their role do, and every action lands in the audit log.
// (`sluice ops operator add|disable|reset` is the one exception, built in cmd/sluice: it bootstraps
// operators straight into the database because the first admin cannot log in before it exists.)
//
// Exit codes: 0 ok, 1 failed (the API refused or the action failed), 2 usage, 3 waiting for a second
// person's approval (the API answered 202 awaiting_approval).
package ops

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"golang.org/x/term"
)

// Exit codes.
const (
	ExitOK       = 0
	ExitFailed   = 1
	ExitUsage    = 2
	ExitAwaiting = 3
)

// DefaultURL is where the admin API listens unless --url or SLUICE_OPS_URL says otherwise.
const DefaultURL = "http://127.0.0.1:3001"

// Main runs `sluice ops <args>` and returns the exit code. env reads environment variables (os.Getenv in
// the binary), so tests choose the config directory, the URL and NO_COLOR.
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, env func(string) string) int {
	r := newRunner(ctx, stdin, stdout, stderr, env)
	return r.main(args)
}

// runner holds one invocation's streams, options and the seams tests replace (terminal checks, the
// password prompt, the clock).
type runner struct {
	ctx            context.Context
	stdin          io.Reader
	stdout, stderr io.Writer
	env            func(string) string

	stdinTTY     func() bool
	stdoutTTY    func() bool
	readPassword func() ([]byte, error)
	now          func() time.Time
	newID        func() string

	// options shared by every command
	url     string
	json    bool
	timeout time.Duration

	// action options
	dryRun    bool
	yes       bool
	requestID string
	reason    string

	opts cmdOpts

	http *http.Client
}

func newRunner(ctx context.Context, stdin io.Reader, stdout, stderr io.Writer, env func(string) string) *runner {
	if env == nil {
		env = func(string) string { return "" }
	}
	r := &runner{
		ctx: ctx, stdin: stdin, stdout: stdout, stderr: stderr, env: env,
		stdinTTY:  func() bool { return isTerminal(stdin) },
		stdoutTTY: func() bool { return isTerminal(stdout) },
		now:       time.Now,
		newID:     newRequestID,
		url:       DefaultURL,
		timeout:   30 * time.Second,
	}
	r.readPassword = func() ([]byte, error) {
		f, ok := stdin.(*os.File)
		if !ok {
			return nil, errors.New("stdin is not a terminal")
		}
		fd := int(f.Fd())
		// Ctrl-C cancels ctx (the binary catches the signal): give the terminal its echo back rather than
		// leave it silent, and stop waiting for the password.
		state, err := term.GetState(fd)
		if err != nil {
			return nil, err
		}
		type result struct {
			b   []byte
			err error
		}
		ch := make(chan result, 1)
		go func() {
			b, err := term.ReadPassword(fd)
			ch <- result{b, err}
		}()
		select {
		case res := <-ch:
			return res.b, res.err
		case <-ctx.Done():
			_ = term.Restore(fd, state)
			return nil, ctx.Err()
		}
	}
	if u := env("SLUICE_OPS_URL"); u != "" {
		r.url = u
	}
	return r
}

func isTerminal(v any) bool {
	f, ok := v.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// usageError is a mistake on the command line (exit 2).
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return &usageError{fmt.Sprintf(format, a...)} }

// readLine reads one line of stdin, or gives up when ctx ends (Ctrl-C at a prompt).
func (r *runner) readLine(in *bufio.Reader) (string, error) {
	type result struct {
		line string
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		line, err := in.ReadString('\n')
		ch <- result{line, err}
	}()
	select {
	case res := <-ch:
		if res.err != nil && res.line != "" {
			res.err = nil // the last line without its newline
		}
		return res.line, res.err
	case <-r.ctx.Done():
		return "", r.ctx.Err()
	}
}

// exitError carries a chosen exit code with an optional message (already printed when msg is empty).
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

func (r *runner) main(args []string) int {
	// Flags before the command (sluice ops --url X status) are the shared ones.
	gfs := r.flagSet("ops", false)
	if err := gfs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			r.help(r.stdout)
			return ExitOK
		}
		fmt.Fprintln(r.stderr, "error:", err)
		return ExitUsage
	}
	args = gfs.Args()
	if len(args) == 0 {
		r.help(r.stderr)
		return ExitUsage
	}
	if args[0] == "help" || args[0] == "--help" || args[0] == "-h" {
		if len(args) > 1 {
			if c, _ := lookup(args[1:]); c != nil {
				r.commandHelp(r.stdout, c)
				return ExitOK
			}
			if g := findGroup(args[1]); g != nil {
				r.groupHelp(r.stdout, g)
				return ExitOK
			}
		}
		r.help(r.stdout)
		return ExitOK
	}
	c, rest := lookup(args)
	if c == nil {
		if g := findGroup(args[0]); g != nil {
			if len(args) == 1 {
				r.groupHelp(r.stderr, g)
			} else {
				fmt.Fprintf(r.stderr, "error: unknown command %q\n\n", "ops "+args[0]+" "+args[1])
				r.groupHelp(r.stderr, g)
			}
			return ExitUsage
		}
		fmt.Fprintf(r.stderr, "error: unknown command %q (see sluice ops help)\n", args[0])
		return ExitUsage
	}
	if c.external {
		fmt.Fprintf(r.stderr, "error: sluice ops %s runs in the sluice binary (it needs --config and the database)\n", c.path)
		return ExitUsage
	}
	fs := r.flagSet("ops "+c.path, c.action)
	r.opts.query = map[string]*string{}
	for _, name := range c.query {
		r.opts.query[name] = fs.String(name, "", "filter")
	}
	if c.flags != nil {
		c.flags(fs, &r.opts)
	}
	pos, err := parseInterspersed(fs, rest)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			r.commandHelp(r.stdout, c)
			return ExitOK
		}
		fmt.Fprintf(r.stderr, "error: %v\nusage: sluice ops %s\n", err, c.usage)
		return ExitUsage
	}
	if c.args >= 0 && len(pos) != c.args {
		fmt.Fprintf(r.stderr, "error: sluice ops %s takes %d argument(s), got %d\nusage: sluice ops %s\n", c.path, c.args, len(pos), c.usage)
		return ExitUsage
	}
	r.http = &http.Client{Timeout: r.timeout}
	return r.exit(c.run(r, pos), c)
}

// exit turns a command's error into its exit code and message.
func (r *runner) exit(err error, c *command) int {
	if err == nil {
		return ExitOK
	}
	var ue *usageError
	var ee *exitError
	switch {
	case errors.As(err, &ue):
		fmt.Fprintf(r.stderr, "error: %s\nusage: sluice ops %s\n", ue.msg, c.usage)
		return ExitUsage
	case errors.As(err, &ee):
		if ee.msg != "" {
			fmt.Fprintln(r.stderr, "error:", ee.msg)
		}
		return ee.code
	}
	fmt.Fprintln(r.stderr, "error:", err)
	return ExitFailed
}

// flagSet makes a command's flag set with the shared options (and the action ones for actions).
func (r *runner) flagSet(name string, action bool) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // usage is printed by us, once, on stdout or stderr as fits
	fs.StringVar(&r.url, "url", r.url, "admin API base URL (env SLUICE_OPS_URL)")
	fs.BoolVar(&r.json, "json", r.json, "print the API's JSON instead of tables")
	fs.DurationVar(&r.timeout, "timeout", r.timeout, "timeout of each HTTP call")
	if action {
		fs.BoolVar(&r.dryRun, "dry-run", false, "print the plan and change nothing")
		fs.BoolVar(&r.yes, "yes", false, "do not ask for confirmation")
		fs.StringVar(&r.requestID, "request-id", "", "replay a request by its id (default: a fresh UUID)")
		fs.StringVar(&r.reason, "reason", "", "why (written to the audit log)")
	}
	return fs
}

// parseInterspersed parses flags anywhere among the positional arguments (`show <id> --json`).
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		// flag stops at "--": everything after it is positional.
		if len(rest) < len(args) && args[len(args)-len(rest)-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}
