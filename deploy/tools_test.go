package deploy_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
)

// repoRoot is the repository's top directory (this package lives in deploy/).
func repoRoot(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate the test's source file")
	}
	return filepath.Dir(filepath.Dir(file))
}

var aptMu sync.Mutex

// tool returns the path of command name, installing Debian package pkg when it is missing, as
// scripts/services.sh does for `make test` (it runs as root). The package's own daemon is kept from
// starting: the tests run their own.
func tool(t testing.TB, name, pkg string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	aptMu.Lock()
	defer aptMu.Unlock()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	if os.Geteuid() != 0 {
		t.Fatalf("%s is missing and only root can install it: apt-get install %s (scripts/services.sh up does)", name, pkg)
	}
	t.Logf("installing %s (Debian package %s)", name, pkg)
	const rcd = "/usr/sbin/policy-rc.d"
	if _, err := os.Stat(rcd); os.IsNotExist(err) {
		if err := os.WriteFile(rcd, []byte("#!/bin/sh\nexit 101\n"), 0o755); err == nil {
			defer os.Remove(rcd)
		}
	}
	for _, args := range [][]string{{"update", "-qq"}, {"install", "-y", "-qq", "--no-install-recommends", pkg}} {
		cmd := exec.Command("apt-get", args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("apt-get %v: %v\n%s", args, err, out)
		}
	}
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s still missing after installing %s", name, pkg)
	}
	return p
}
