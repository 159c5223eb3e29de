package signer_test

import "github.com/sluice-custody/sluice/nonce"

func nonceFloors(next uint64) nonce.Floors { return nonce.Floors{Next: next} }

func derefOr(n *uint64) any {
	if n == nil {
		return "none"
	}
	return *n
}
