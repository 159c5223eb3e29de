package signer_test

import (
	"net"
	"testing"

	"github.com/sluice-custody/sluice/internal/nonce"
)

func nonceFloors(next uint64) nonce.Floors { return nonce.Floors{Next: next} }

func derefOr(n *uint64) any {
	if n == nil {
		return "none"
	}
	return *n
}

// closedAddr is a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}
