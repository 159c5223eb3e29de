// Command chaos runs Sluice's chaos test: "never pay twice, never lose one". Every service runs as its
// own process against real MariaDB and Redis and an embedded EVM node behind a fault-injecting JSON-RPC
// proxy; services are SIGKILLed and restarted while withdrawals flow; then the chain is checked.
//
// scripts/chaos.sh starts the backing services and runs it; by hand, with the env file of
// scripts/services.sh sourced:
//
//	go run ./chaos/cmd/chaos --withdrawals 500 --kills 15 --fault-rate 0.1
//
// It prints a breakdown and one summary line, and exits 1 if anyone was paid twice, a withdrawal was
// lost, the hot wallet's nonces have a gap, or a replay made a second withdrawal.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/sluice-custody/sluice/tools/chaos"
)

func main() {
	var o chaos.Options
	fs := flag.NewFlagSet("chaos", flag.ExitOnError)
	fs.IntVar(&o.Withdrawals, "withdrawals", 500, "withdrawals to post")
	fs.IntVar(&o.Kills, "kills", 15, "services to SIGKILL (and restart) while withdrawals flow")
	fs.Float64Var(&o.FaultRate, "fault-rate", 0.1, "share of JSON-RPC requests the proxy faults (drop, delay, 503, JSON-RPC error)")
	fs.Float64Var(&o.SendFaultRate, "send-fault-rate", -1, "share of eth_sendRawTransaction requests faulted, half of them by "+
		"forwarding and then dropping the answer (default: --fault-rate)")
	fs.Uint64Var(&o.Confirmations, "confirmations", 12, "confirmations before a withdrawal is CONFIRMED")
	fs.StringVar(&o.Queue, "queue", "mysql", "queue backend: mysql or sqs")
	seed := fs.Uint64("seed", 0, "seed for amounts, replays, kills and faults (0: from the clock)")
	fs.DurationVar(&o.Timeout, "timeout", 4*time.Minute, "how long to wait after the last post for every withdrawal to end")
	fs.DurationVar(&o.Stall, "stall", 90*time.Second, "stop waiting when no withdrawal changed status for this long (0: wait the whole --timeout)")
	fs.Float64Var(&o.ReplayShare, "replay-share", 0.1, "share of withdrawals posted twice (sequentially or concurrently)")
	fs.Float64Var(&o.PostRate, "post-rate", 10, "withdrawals posted per second")
	fs.DurationVar(&o.Visibility, "visibility-timeout", 3*time.Second, "queue visibility timeout (short, to force redeliveries)")
	fs.DurationVar(&o.BlockTime, "block-time", time.Second, "block interval of the chain")
	fs.IntVar(&o.Concurrency, "concurrency", 0, "handlers per service (0: the configured default)")
	fs.StringVar(&o.Dir, "dir", "", "run directory for config, keystore and logs (default: a new one under /tmp)")
	fs.StringVar(&o.Bin, "bin", "", "the sluice binary (default: built into the run directory)")
	fs.StringVar(&o.MySQLDSN, "mysql", os.Getenv("SLUICE_TEST_MYSQL_DSN"), "MariaDB server DSN; a fresh database is made in it")
	fs.StringVar(&o.RedisAddr, "redis", os.Getenv("SLUICE_TEST_REDIS_ADDR"), "Redis address")
	fs.StringVar(&o.SQSEndpoint, "sqs-endpoint", os.Getenv("SLUICE_TEST_SQS_ENDPOINT"), "SQS endpoint (emulator) for --queue sqs")
	fs.BoolVar(&o.KeepDB, "keep-db", false, "keep the run's database even when the run passes")
	killServices := fs.String("kill-services", "api,signer,broadcaster,monitor", "comma-separated services the kills choose from")
	_ = fs.Parse(os.Args[1:])
	o.KillServices = strings.Split(*killServices, ",")

	o.Seed = *seed
	if o.Seed == 0 {
		o.Seed = uint64(time.Now().UnixNano())
	}
	if o.Dir == "" {
		d, err := os.MkdirTemp("", "sluice-chaos-")
		if err != nil {
			fail(err)
		}
		o.Dir = d
	}
	if o.Bin == "" {
		o.Bin = filepath.Join(o.Dir, "sluice")
		fmt.Fprintf(os.Stderr, "chaos: building %s\n", o.Bin)
		build := exec.Command("go", "build", "-o", o.Bin, "./cmd/sluice")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fail(fmt.Errorf("go build ./cmd/sluice (run from the repository root): %w", err))
		}
	}
	if abs, err := filepath.Abs(o.Bin); err == nil {
		o.Bin = abs
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := chaos.Run(ctx, o)
	if err != nil {
		fail(err)
	}
	fmt.Print(res.Breakdown())
	fmt.Println(res.Summary())
	if res.Violated() {
		os.Exit(1)
	}
}

func fail(err error) {
	fmt.Fprintf(os.Stderr, "chaos: %v\n", err)
	os.Exit(2)
}
