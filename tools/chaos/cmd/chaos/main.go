// Command chaos runs Sluice's chaos test: "never pay twice, never lose one". Every service runs as
// --instances processes (two by default) against one real MariaDB and Redis and an embedded EVM node
// behind a fault-injecting JSON-RPC proxy; service instances are SIGKILLed and restarted while
// withdrawals flow; then the chain is checked, and everything the run left is searched for its keys.
//
// scripts/chaos.sh starts the backing services and runs it (`make chaos`, `make chaos-ci`); by hand,
// with the env file of scripts/services.sh sourced:
//
//	go run ./tools/chaos/cmd/chaos --profile ci --seed 42
//
// --profile picks the run's size (default or ci, see chaos.Profile); the other flags override single
// values of it. It prints a breakdown and one summary line, and exits 1 if anyone was paid twice, a
// withdrawal was lost, the hot wallet's nonces have a gap, a replay made a second withdrawal, a key was
// found, or a dead-letter queue still holds messages at the end; 2 if
// the run could not be carried out, or did less than it was asked (a planned kill skipped). Whenever it
// does not pass, it prints the seed and the command that replays the run.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/sluice-custody/sluice/tools/chaos"
)

// local reports the flags that say where things are on this machine, not what the run does: a replay
// leaves them out.
func local(name string) bool {
	switch name {
	case "dir", "bin", "mysql", "redis", "sqs-endpoint", "keep-db":
		return true
	}
	return false
}

// flags binds every flag to o, with o's values as the defaults.
func flags(o *chaos.Options, profile *string, seed *uint64, killServices *string) *flag.FlagSet {
	fs := flag.NewFlagSet("chaos", flag.ContinueOnError)
	fs.StringVar(profile, "profile", *profile, "run size: default (make chaos) or ci (make chaos-ci); the flags below override its values")
	fs.IntVar(&o.Withdrawals, "withdrawals", o.Withdrawals, "withdrawals to post")
	fs.IntVar(&o.Kills, "kills", o.Kills, "services to SIGKILL (and restart) while withdrawals flow")
	fs.Float64Var(&o.FaultRate, "fault-rate", o.FaultRate, "share of JSON-RPC requests the proxy faults (drop, delay, 503, JSON-RPC error)")
	fs.Float64Var(&o.SendFaultRate, "send-fault-rate", o.SendFaultRate, "share of eth_sendRawTransaction requests faulted, half of them by "+
		"forwarding and then dropping the answer (negative: --fault-rate)")
	fs.Uint64Var(&o.Confirmations, "confirmations", o.Confirmations, "confirmations before a withdrawal is CONFIRMED")
	fs.StringVar(&o.Queue, "queue", o.Queue, "queue backend: mysql or sqs")
	fs.Uint64Var(seed, "seed", 0, "seed for the workload, keys, kill schedule and faults (0: from the clock)")
	fs.DurationVar(&o.Timeout, "timeout", o.Timeout, "how long to wait after the last post for every withdrawal to end")
	fs.DurationVar(&o.Stall, "stall", o.Stall, "stop waiting when no withdrawal changed status for this long (0: wait the whole --timeout)")
	fs.Float64Var(&o.ReplayShare, "replay-share", o.ReplayShare, "share of withdrawals posted twice (sequentially or concurrently)")
	fs.Float64Var(&o.ResendShare, "resend-share", o.ResendShare, "share of withdrawals whose withdrawal.requested message is sent again once "+
		"they are signed (a duplicate delivery: the signer must not sign them twice)")
	fs.Float64Var(&o.PostRate, "post-rate", o.PostRate, "withdrawals posted per second")
	fs.DurationVar(&o.Visibility, "visibility-timeout", o.Visibility, "queue visibility timeout (short, to force redeliveries)")
	fs.DurationVar(&o.BlockTime, "block-time", o.BlockTime, "block interval of the chain")
	fs.IntVar(&o.Instances, "instances", o.Instances, "processes of each service (API, signer, broadcaster, monitor), all on the same "+
		"database, Redis, queue and chain; the client goes round the API instances and kills pick any instance")
	fs.IntVar(&o.Concurrency, "concurrency", o.Concurrency, "handlers per service (0: the configured default)")
	fs.StringVar(&o.Dir, "dir", "", "run directory for config, keystore and logs (default: a new one under /tmp)")
	fs.StringVar(&o.Bin, "bin", "", "the sluice binary (default: built into the run directory)")
	fs.StringVar(&o.MySQLDSN, "mysql", os.Getenv("SLUICE_TEST_MYSQL_DSN"), "MariaDB server DSN; a fresh database is made in it")
	fs.StringVar(&o.RedisAddr, "redis", os.Getenv("SLUICE_TEST_REDIS_ADDR"), "Redis address")
	fs.StringVar(&o.SQSEndpoint, "sqs-endpoint", os.Getenv("SLUICE_TEST_SQS_ENDPOINT"), "SQS endpoint (emulator) for --queue sqs")
	fs.BoolVar(&o.KeepDB, "keep-db", false, "keep the run's database even when the run passes")
	fs.StringVar(killServices, "kill-services", *killServices, "comma-separated services the kills choose from")
	fs.IntVar(&o.Recovery.FeeSurges, "fee-surges", o.Recovery.FeeSurges, "times the node's tip floor is raised above the signed fees for a few seconds")
	fs.IntVar(&o.Recovery.DroppedSends, "dropped-sends", o.Recovery.DroppedSends, "eth_sendRawTransaction calls the proxy answers with the hash without forwarding")
	fs.IntVar(&o.Recovery.ForeignNonces, "foreign-nonces", o.Recovery.ForeignNonces, "transactions the harness signs with the hot key at its pending nonce, outside Sluice")
	fs.IntVar(&o.Recovery.Reorgs, "reorgs", o.Recovery.Reorgs, "shallow reorgs (3 blocks, fewer than the confirmations)")
	fs.IntVar(&o.Recovery.Cancels, "cancels", o.Recovery.Cancels, "withdrawals canceled over the API while pending, signed, broadcast or inside a batch")
	return fs
}

func main() {
	args := os.Args[1:]
	// The profile sets the other flags' defaults, so it is read first, with every flag known so that
	// --profile may come anywhere; errors are reported by the real parse below.
	profile, seed := "default", uint64(0)
	{
		o, _ := chaos.Profile(profile)
		ks := strings.Join(o.KillServices, ",")
		fs := flags(&o, &profile, &seed, &ks)
		fs.SetOutput(io.Discard)
		_ = fs.Parse(args)
	}
	o, err := chaos.Profile(profile)
	if err != nil {
		fail(err)
	}
	killServices := strings.Join(o.KillServices, ",")
	fs := flags(&o, &profile, &seed, &killServices)
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			os.Exit(0)
		}
		os.Exit(2)
	}
	o.KillServices = strings.Split(killServices, ",")

	o.Seed = seed
	if o.Seed == 0 {
		o.Seed = uint64(time.Now().UnixNano())
	}
	replay := replayCommand(fs, o.Seed)
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
		fmt.Fprintf(os.Stderr, "chaos: %v\nchaos: seed %d; replay: %s\n", err, o.Seed, replay)
		os.Exit(2)
	}
	fmt.Print(res.Breakdown())
	fmt.Println(res.Summary())
	switch {
	case res.Violated():
		fmt.Printf("chaos: FAILED (seed %d); replay: %s\n", o.Seed, replay)
		os.Exit(1)
	case len(res.Incomplete) > 0:
		fmt.Printf("chaos: INCOMPLETE, the run proved less than asked: %s (seed %d); replay: %s\n",
			strings.Join(res.Incomplete, "; "), o.Seed, replay)
		os.Exit(2)
	}
	fmt.Printf("chaos: passed (seed %d; replay: %s)\n", o.Seed, replay)
}

// replayCommand is the make command that runs this run again: the profile, every flag given that is
// not about where things are on this machine, and the seed.
func replayCommand(fs *flag.FlagSet, seed uint64) string {
	var parts []string
	fs.Visit(func(f *flag.Flag) {
		if local(f.Name) || f.Name == "seed" || f.Value.String() == f.DefValue && f.Name != "profile" {
			return
		}
		arg := fmt.Sprintf("--%s %s", f.Name, f.Value.String())
		if f.Name == "profile" {
			parts = append([]string{arg}, parts...)
			return
		}
		parts = append(parts, arg)
	})
	parts = append(parts, fmt.Sprintf("--seed %d", seed))
	return fmt.Sprintf("make chaos CHAOS_FLAGS=%q", strings.Join(parts, " "))
}

func fail(err error) {
	fmt.Fprintf(os.Stderr, "chaos: %v\n", err)
	os.Exit(2)
}
