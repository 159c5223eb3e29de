package keys

// Hardening reports what HardenProcess could do; each false field is something the OS refused.
type Hardening struct {
	// NoCoreDumps: RLIMIT_CORE is 0, so a crash writes no core file holding keys.
	NoCoreDumps bool
	// NotDumpable: PR_SET_DUMPABLE is 0, which also stops same-user processes from ptrace-attaching
	// or reading /proc/<pid>/mem.
	NotDumpable bool
	// MemlockBytes is how much memory this process may lock (RLIMIT_MEMLOCK); each loaded key takes
	// one page. Keys beyond it still work but may be swapped.
	MemlockBytes uint64
}
