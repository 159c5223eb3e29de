//go:build !linux

package keys

import "errors"

// HardenProcess is only implemented on Linux, where Sluice's signer runs in production.
func HardenProcess() (Hardening, error) {
	return Hardening{}, errors.New("keys: process hardening is implemented on linux only")
}
