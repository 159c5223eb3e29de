package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/user"
	"strings"

	"golang.org/x/term"

	"github.com/sluice-custody/sluice/admin"
	"github.com/sluice-custody/sluice/internal/config"
	"github.com/sluice-custody/sluice/internal/store"
)

const opsOperatorUsage = `usage: sluice ops operator <add|disable|reset> USERNAME [flags]

Writes the operators table straight into the configured database: the bootstrap of the first admin,
who cannot log in to the admin API before it exists. Every change is written to the audit log as
"cli:<your user>".

  add USERNAME --role ROLE     create an operator (roles: viewer, operator, approver, admin)
  disable USERNAME             disable an operator (its tokens stop working within 5 s)
  reset USERNAME [--role ROLE] set a new password (and role), enabling the operator again

flags:
  --config FILE       configuration file (its database); environment variables override it
  --password-stdin    read the password from the first line of stdin instead of a prompt
                      (never give a password as an argument: it would be in the shell history and ps)
`

// runOpsOperator is `sluice ops operator …`. stdin is read for the password (a prompt without echo
// when it is a terminal, or one line with --password-stdin).
func runOpsOperator(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(stderr, opsOperatorUsage)
		return flag.ErrHelp
	}
	sub := args[0]
	fs := flag.NewFlagSet("ops operator "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", os.Getenv("SLUICE_CONFIG"), "configuration file")
	role := fs.String("role", "", "the operator's role: viewer, operator, approver or admin")
	pwStdin := fs.Bool("password-stdin", false, "read the password from stdin")
	// Flags may come before or after USERNAME.
	var pos []string
	rest := args[1:]
	for {
		if err := fs.Parse(rest); err != nil {
			return usageError{err}
		}
		if fs.NArg() == 0 {
			break
		}
		pos, rest = append(pos, fs.Arg(0)), fs.Args()[1:]
	}
	if len(pos) != 1 {
		fmt.Fprint(stderr, opsOperatorUsage)
		return usageError{fmt.Errorf("ops operator %s takes one USERNAME (got %d arguments)", sub, len(pos))}
	}
	username := pos[0]
	var r admin.Role
	if *role != "" {
		var err error
		if r, err = admin.ParseRole(*role); err != nil {
			return usageError{err}
		}
	}
	switch sub {
	case "add":
		if r == "" {
			return usageError{errors.New("ops operator add needs --role (viewer, operator, approver or admin)")}
		}
	case "disable", "reset":
	default:
		fmt.Fprint(stderr, opsOperatorUsage)
		return usageError{fmt.Errorf("unknown ops operator command %q", sub)}
	}
	var password string
	if sub != "disable" {
		var err error
		if password, err = readPassword(stdin, stderr, *pwStdin); err != nil {
			return err
		}
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		return err
	}
	st, err := store.Open(ctx, cfg.Database.DSN, 2)
	if err != nil {
		return err
	}
	defer st.Close()
	by := admin.Actor{Operator: "cli:" + osUser(), Remote: "local"}
	var op admin.Operator
	switch sub {
	case "add":
		op, err = admin.AddOperator(ctx, st, by, username, password, r)
	case "disable":
		op, err = admin.DisableOperator(ctx, st, by, username)
	case "reset":
		op, err = admin.ResetOperator(ctx, st, by, username, password, r)
	}
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("no operator %s", username)
	}
	if err != nil {
		return err
	}
	state := "enabled"
	if op.Disabled {
		state = "disabled"
	}
	fmt.Fprintf(stdout, "operator %s: role %s, %s\n", op.Username, op.Role, state)
	return nil
}

// usageError is a command line that cannot be run as given (exit 2).
type usageError struct{ error }

func (u usageError) Unwrap() error { return u.error }

// readPassword reads one line from stdin (--password-stdin), or prompts twice without echo on a terminal.
func readPassword(stdin io.Reader, prompt io.Writer, fromStdin bool) (string, error) {
	if fromStdin {
		line, err := bufio.NewReader(stdin).ReadString('\n')
		if err != nil && !(errors.Is(err, io.EOF) && line != "") {
			return "", fmt.Errorf("read the password from stdin: %w", err)
		}
		return strings.TrimRight(line, "\r\n"), nil
	}
	f, ok := stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return "", usageError{errors.New("stdin is not a terminal: pass the password on stdin with --password-stdin")}
	}
	fmt.Fprintf(prompt, "Password (at least %d characters): ", admin.MinPasswordLength)
	a, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(prompt)
	if err != nil {
		return "", fmt.Errorf("read the password: %w", err)
	}
	fmt.Fprint(prompt, "Again: ")
	b, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(prompt)
	if err != nil {
		return "", fmt.Errorf("read the password: %w", err)
	}
	if string(a) != string(b) {
		return "", errors.New("the passwords differ")
	}
	return string(a), nil
}

func osUser() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	return "unknown"
}
