//go:build sluicedev

package main

import (
	"context"
	"flag"
	"log/slog"

	"github.com/sluice-custody/sluice/internal/devmode"
)

// devCommand registers `sluice dev`'s flags on fs and returns what runs it.
func devCommand(fs *flag.FlagSet) func(context.Context, *slog.Logger) error {
	var o devmode.Options
	o.Flags(fs)
	return func(ctx context.Context, log *slog.Logger) error { return devmode.Run(ctx, o, log) }
}
