//go:build linux

package keys

import "golang.org/x/sys/unix"

// allocProtected maps n bytes outside the Go heap (the garbage collector never copies them), asks the
// kernel to keep them out of core dumps, and locks them in RAM so they are never written to swap.
// locked reports whether mlock was permitted (RLIMIT_MEMLOCK, CAP_IPC_LOCK); the memory is usable
// either way. free zeroes and unmaps.
func allocProtected(n int) (b []byte, locked bool, free func()) {
	page := unix.Getpagesize()
	size := (n + page - 1) / page * page
	region, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
	if err != nil {
		return allocHeap(n)
	}
	_ = unix.Madvise(region, unix.MADV_DONTDUMP)
	locked = unix.Mlock(region) == nil
	return region[:n:n], locked, func() {
		clear(region)
		if locked {
			_ = unix.Munlock(region)
		}
		_ = unix.Munmap(region)
	}
}
