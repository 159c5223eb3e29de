//go:build !sluicedev

package main

import (
	"context"
	"flag"
	"log/slog"
)

// devCommand is nil in the release build: dev mode's embedded chain (a whole go-ethereum node) and
// database (go-mysql-server) would be two thirds of the binary and over half its cold build, for nothing
// a deployment runs.
func devCommand(*flag.FlagSet) func(context.Context, *slog.Logger) error { return nil }
