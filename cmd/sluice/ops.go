package main

import (
	"context"
	"os"

	"github.com/sluice-custody/sluice/internal/service"
	"github.com/sluice-custody/sluice/ops"
)

// runOps is `sluice ops`: the on-call CLI, a client of the admin API (package ops).
func runOps(args []string) int {
	ctx, stop := service.SignalContext(context.Background())
	defer stop()
	return ops.Main(ctx, args, os.Stdin, os.Stdout, os.Stderr, os.Getenv)
}
