package main_test

import (
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// devOnly are packages only `sluice dev` needs: the embedded chain (a whole go-ethereum node), the embedded
// MySQL and Redis servers, and the wiring that starts them. The release binary must not link them. A
// pattern ending in /... matches the package and every package under it, as in `go list`.
var devOnly = []string{
	"github.com/sluice-custody/sluice/internal/devmode/...",
	"github.com/sluice-custody/sluice/internal/devchain/...",
	"github.com/sluice-custody/sluice/internal/embedded/...",
	"github.com/dolthub/go-mysql-server/...",
	"github.com/ethereum/go-ethereum/ethclient/simulated",
	"github.com/ethereum/go-ethereum/node",
	"github.com/ethereum/go-ethereum/eth",
}

// deps is `go list -deps` of this command with the given build flags.
func deps(t *testing.T, flags ...string) map[string]bool {
	t.Helper()
	out, err := exec.Command("go", append(append([]string{"list", "-deps"}, flags...), ".")...).Output()
	if err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			t.Fatalf("go list -deps %v: %v\n%s", flags, err, exit.Stderr)
		}
		t.Fatalf("go list -deps %v: %v", flags, err)
	}
	set := map[string]bool{}
	for _, p := range strings.Fields(string(out)) {
		set[p] = true
	}
	return set
}

// linked says whether a package matching pattern is in set.
func linked(set map[string]bool, pattern string) bool {
	root, tree := strings.CutSuffix(pattern, "/...")
	for p := range set {
		if p == root || tree && strings.HasPrefix(p, root+"/") {
			return true
		}
	}
	return false
}

// The release build (`make build`, no tags) leaves dev mode out; the dev build (tag sluicedev) has it,
// which shows the check below can see what it looks for.
func TestReleaseBuildLeavesOutDevMode(t *testing.T) {
	release, dev := deps(t), deps(t, "-tags", "sluicedev")
	for _, p := range devOnly {
		if linked(release, p) {
			t.Errorf("the release build links %s", p)
		}
		if !linked(dev, p) {
			t.Errorf("the dev build does not link %s", p)
		}
	}
	if !release["github.com/sluice-custody/sluice/internal/app"] {
		t.Error("the release build does not link internal/app: the check lists the wrong command")
	}
}

// The release binary answers `sluice dev` (and `sluice dev -h`) with how to get dev mode, status 2.
func TestReleaseBinaryRefusesDev(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "sluice")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for _, args := range [][]string{{"dev"}, {"dev", "-h"}, {"dev", "--api-addr", "127.0.0.1:0"}} {
		out, err := exec.Command(bin, args...).CombinedOutput()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 2 {
			t.Errorf("sluice %v: %v, want exit status 2\n%s", args, err, out)
		}
		if !strings.Contains(string(out), "built without dev mode; run `make dev`") {
			t.Errorf("sluice %v does not say how to get dev mode:\n%s", args, out)
		}
	}
	// The same binary still has its other commands: usage, not the dev message.
	out, _ := exec.Command(bin, "help").CombinedOutput()
	if !strings.Contains(string(out), "migrate") || strings.Contains(string(out), "built without dev mode") {
		t.Errorf("sluice help:\n%s", out)
	}
}
