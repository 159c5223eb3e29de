// Command sluice is the one Sluice binary: one subcommand per service, `all` for every service in one
// process, `dev` for a zero-setup local engine, and `migrate`. `dev` exists only in a dev build
// (`make dev-build`, build tag sluicedev): the release binary (`make build`) does not link the embedded
// chain and database it runs on.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/sluice-custody/sluice/internal/app"
	"github.com/sluice-custody/sluice/internal/config"
	"github.com/sluice-custody/sluice/internal/service"
	"github.com/sluice-custody/sluice/internal/store"
)

const usage = `usage: sluice <command> [flags]

commands:
  api           HTTP API for the exchange backend and the dashboard
  signer        consumes tx-request: nonces, fees, signing
  broadcaster   consumes signed-tx: sends raw transactions in nonce order
  monitor       consumes tx-monitor: confirmations, reorgs, settling
  recovery      fills nonce gaps, bumps stuck transactions, resends dropped ones, raises alerts
  accountmgr    keeps hot wallets topped up from the main account (balance-check, balance-transfer)
  all           every service above in one process
  dev           all, plus an embedded chain with contracts deployed (dev builds only: make dev)
  migrate       applies the database migrations
  keys          wallet keys: create, import, list, verify, rotate, retire (see sluice keys help)
  ops           the on-call tools on the admin API: status, withdrawals, DLQ, wallets, approvals, audit
                (see sluice ops help)
  ops operator  add, disable or reset an operator of the admin API in the database (see sluice ops operator help)

flags (every command):
  --config FILE   configuration file (YAML); environment variables override it
  --log-level L   debug, info, warn or error (default info)
`

func main() {
	if len(os.Args) < 2 || strings.HasPrefix(os.Args[1], "-") || os.Args[1] == "help" {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	cmd, args := os.Args[1], os.Args[2:]
	// `sluice ops operator` needs the database and runs below like the services; the rest of `sluice ops`
	// is the admin API's client.
	if cmd == "ops" && (len(args) == 0 || args[0] != "operator") {
		os.Exit(runOps(args))
	}
	if err := run(cmd, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		var ue usageError
		if errors.As(err, &ue) {
			fmt.Fprintln(os.Stderr, "sluice "+cmd+":", err)
			os.Exit(2)
		}
		if errors.Is(err, errNoDevMode) {
			fmt.Fprintln(os.Stderr, "sluice dev:", err)
			os.Exit(2)
		}
		slog.Error("sluice "+cmd+" failed", "err", err)
		os.Exit(1)
	}
}

func run(cmd string, args []string) error {
	if cmd == "keys" {
		return runKeys(context.Background(), args, os.Stdin, os.Stdout)
	}
	if cmd == "ops" && len(args) > 0 && args[0] == "operator" {
		return runOpsOperator(context.Background(), args[1:], os.Stdin, os.Stdout, os.Stderr)
	}
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	cfgPath := fs.String("config", os.Getenv("SLUICE_CONFIG"), "configuration file")
	level := fs.String("log-level", "info", "log level")
	var runDev func(context.Context, *slog.Logger) error
	if cmd == "dev" {
		if runDev = devCommand(fs); runDev == nil {
			return errNoDevMode
		}
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	log := newLogger(*level)
	slog.SetDefault(log)
	ctx, stop := service.SignalContext(context.Background())
	defer stop()

	if runDev != nil {
		return runDev(ctx, log)
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		return err
	}
	switch cmd {
	case "migrate":
		s, err := store.Open(ctx, cfg.Database.DSN, 2)
		if err != nil {
			return err
		}
		defer s.Close()
		if err := s.Migrate(ctx); err != nil {
			return err
		}
		log.Info("migrations applied")
		return nil
	case "api", "signer", "broadcaster", "monitor", "recovery", "accountmgr", "all":
		names := []string{cmd}
		if cmd == "all" {
			names = app.Services
		}
		a, err := app.Open(ctx, cfg, log)
		if err != nil {
			return err
		}
		defer a.Close()
		return a.Run(ctx, names...)
	}
	fmt.Fprint(os.Stderr, usage)
	return fmt.Errorf("unknown command %q", cmd)
}

// errNoDevMode is what the release binary answers to `sluice dev`.
var errNoDevMode = errors.New("this binary was built without dev mode; run `make dev` (or build one with `make dev-build`, which passes -tags sluicedev)")

func newLogger(level string) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		l = slog.LevelInfo
	}
	return slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: l}))
}
