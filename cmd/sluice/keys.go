package main

import (
	"context"
	"io"

	"github.com/sluice-custody/sluice/internal/keys/keyscli"
)

// runKeys is `sluice keys` (internal/keys/keyscli). It opens no service and no key source beyond
// the one command's needs.
func runKeys(ctx context.Context, args []string, stdin io.Reader, stdout io.Writer) error {
	return keyscli.Run(ctx, args, stdin, stdout)
}
