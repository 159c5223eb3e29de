// Package migrations holds the database schema as goose SQL migrations, embedded in the binary so that
// `sluice migrate` and the tests apply exactly what ships.
package migrations

import "embed"

// FS holds every migration file.
//
//go:embed *.sql
var FS embed.FS
