// Package webui holds the web console's built front end (web/ → dist/),
// embedded so that `go build` needs no Node.js. The bundle is committed;
// scripts/webui-check.sh rebuilds it from web/src and fails if the result
// differs from dist/ (esbuild's output is deterministic).
//
// Rebuild after changing web/: make webui.
package webui

import (
	"embed"
	"io/fs"
)

//go:embed dist
var dist embed.FS

// FS is the bundle: index.html and assets/ (content-hashed names, safe to
// cache for long) at its root.
func FS() fs.FS {
	sub, err := fs.Sub(dist, "dist")
	if err != nil {
		// fs.Sub fails only on an invalid path; "dist" is a constant.
		panic(err)
	}
	return sub
}
