package main_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestBadConfigStopsStart runs the binary with a bad value in the file or in an environment override:
// it must exit 1 before touching anything (migrate would otherwise connect to the database) and its
// error must name the key of every bad value.
func TestBadConfigStopsStart(t *testing.T) {
	const good = `
database: {dsn: "nobody@tcp(127.0.0.1:1)/none"}
queue: {backend: mysql, visibility_timeout: 30s}
chains:
  - name: a
    chain_id: 1
    rpc: ["http://127.0.0.1:1"]
    fees: {max_fee_per_gas: "100 gwei"}
    hot_wallets: ["0x70997970C51812dc3A010C7d01b50e0d17dc79C8"]
`
	bad := strings.NewReplacer(`"100 gwei"`, `"12abc"`, `30s`, `5 parsecs`, `0x70997970C51812dc3A010C7d01b50e0d17dc79C8`, `0x12`).Replace(good)
	for _, tt := range []struct {
		name, yaml string
		env        []string
		want       []string
	}{
		{"file", bad, nil, []string{
			`queue.visibility_timeout: "5 parsecs" is not a duration`,
			`chains[0].fees.max_fee_per_gas: "12abc" is not an amount of wei`,
			`chains[0].hot_wallets[0]: "0x12" is not an address`,
		}},
		{"environment", good, []string{"SLUICE_CHAIN_A_MAX_FEE_PER_GAS=1.5 wei", "SLUICE_QUEUE_WAIT_TIME=soon", "SLUICE_CHAIN_A_HOT_WALLETS=0x1"}, []string{
			`SLUICE_CHAIN_A_MAX_FEE_PER_GAS (chains[0].fees.max_fee_per_gas): "1.5 wei" is not an amount of wei`,
			`SLUICE_QUEUE_WAIT_TIME (queue.wait_time): "soon" is not a duration`,
			`SLUICE_CHAIN_A_HOT_WALLETS (chains[0].hot_wallets[0]): "0x1" is not an address`,
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "sluice.yaml")
			if err := os.WriteFile(p, []byte(tt.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(devBin, "migrate", "--config", p)
			cmd.Env = append(cleanEnv(), tt.env...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 1 {
				t.Fatalf("sluice migrate: %v, want exit status 1; stderr:\n%s", err, stderr.String())
			}
			// The failure is one JSON log line whose err lists every bad value.
			var line struct{ Msg, Err string }
			if err := json.Unmarshal(bytes.TrimSpace(stderr.Bytes()), &line); err != nil {
				t.Fatalf("stderr is not one JSON log line (%v):\n%s", err, stderr.String())
			}
			if line.Msg != "sluice migrate failed" {
				t.Fatalf("msg %q, want sluice migrate failed", line.Msg)
			}
			for _, want := range tt.want {
				if !strings.Contains(line.Err, want) {
					t.Errorf("error does not say %q:\n%s", want, line.Err)
				}
			}
			if n := strings.Count(line.Err, "\n") + 1; n != len(tt.want) {
				t.Errorf("%d problems reported, want %d:\n%s", n, len(tt.want), line.Err)
			}
		})
	}
}

// cleanEnv is the test's environment without Sluice's overrides (the test services set some).
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SLUICE_") {
			env = append(env, kv)
		}
	}
	return env
}
