//go:build linux

package keys_test

import (
	"testing"

	"golang.org/x/sys/unix"

	"github.com/sluice-custody/sluice/internal/keys"
)

func TestHardenProcess(t *testing.T) {
	h, err := keys.HardenProcess()
	t.Logf("hardening %+v, not permitted: %v", h, err)
	if !h.NoCoreDumps || !h.NotDumpable {
		t.Fatalf("hardening %+v: %v", h, err)
	}
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_CORE, &rl); err != nil || rl.Cur != 0 {
		t.Fatalf("RLIMIT_CORE %+v, %v", rl, err)
	}
	if d, err := unix.PrctlRetInt(unix.PR_GET_DUMPABLE, 0, 0, 0, 0); err != nil || d != 0 {
		t.Fatalf("dumpable %d, %v", d, err)
	}
}
