// Package ui is the ops dashboard, served by the admin listener under /ops/ (the admin server strips
// the /ops prefix before calling Handler, so "/" here is /ops/). Its assets are embedded: nothing is
// fetched from elsewhere at run time.
package ui

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed static
var static embed.FS

// Handler serves the dashboard's pages and assets.
func Handler() http.Handler {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embedded directory exists at build time
	}
	return http.FileServer(http.FS(sub))
}
