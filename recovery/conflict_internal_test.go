package recovery

import (
	"errors"
	"testing"
)

// firstBlock finds the block where the nonce first passed ours, wherever it is, reading few blocks
// when it is recent.
func TestFirstBlock(t *testing.T) {
	for _, c := range []struct{ head, first, maxReads uint64 }{
		{head: 0, first: 0, maxReads: 0},
		{head: 10, first: 10, maxReads: 1},
		{head: 10, first: 9, maxReads: 3},
		{head: 10, first: 0, maxReads: 8},
		{head: 1_000_000, first: 999_990, maxReads: 10},
		{head: 1_000_000, first: 1, maxReads: 45},
		{head: 1_000_000, first: 523_417, maxReads: 45},
	} {
		reads := uint64(0)
		got, err := firstBlock(c.head, func(b uint64) (bool, error) {
			reads++
			if b > c.head {
				t.Fatalf("read block %d above head %d", b, c.head)
			}
			return b >= c.first, nil
		})
		if err != nil || got != c.first {
			t.Errorf("head %d first %d: got %d (%v)", c.head, c.first, got, err)
		}
		if reads > c.maxReads {
			t.Errorf("head %d first %d: %d reads, want at most %d", c.head, c.first, reads, c.maxReads)
		}
	}
	boom := errors.New("missing trie node")
	if _, err := firstBlock(100, func(b uint64) (bool, error) {
		if b < 90 {
			return false, boom
		}
		return true, nil
	}); !errors.Is(err, boom) {
		t.Fatalf("err %v, want the node's error passed on (state pruned)", err)
	}
}
