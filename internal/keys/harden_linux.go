//go:build linux

package keys

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// HardenProcess is called once at the start of the process that signs (and only there): it turns
// off core dumps and makes the process non-dumpable. The error lists what was not permitted; the
// caller logs it and carries on, since refusing to sign would not make the keys any safer.
func HardenProcess() (Hardening, error) {
	var h Hardening
	var errs []error
	if err := unix.Setrlimit(unix.RLIMIT_CORE, &unix.Rlimit{Cur: 0, Max: 0}); err != nil {
		errs = append(errs, fmt.Errorf("keys: RLIMIT_CORE 0: %w", err))
	} else {
		h.NoCoreDumps = true
	}
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		errs = append(errs, fmt.Errorf("keys: PR_SET_DUMPABLE 0: %w", err))
	} else {
		h.NotDumpable = true
	}
	var ml unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_MEMLOCK, &ml); err == nil {
		h.MemlockBytes = ml.Cur
	}
	return h, errors.Join(errs...)
}
