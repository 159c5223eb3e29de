//go:build !linux

package keys

// allocProtected falls back to the Go heap where the mmap/mlock/madvise trio is not wired up; the
// bytes are still zeroed on free.
func allocProtected(n int) (b []byte, locked bool, free func()) { return allocHeap(n) }
