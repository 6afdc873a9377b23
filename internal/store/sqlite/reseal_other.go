//go:build !unix

package sqlite

import "errors"

// flockFile: without flock(2) a server runs unlocked, and maintenance,
// which cannot tell whether one runs, refuses.
func flockFile(_ string, exclusive bool) (func() error, error) {
	if !exclusive {
		return func() error { return nil }, nil
	}
	return nil, errors.New("server lock: not supported on this system; offline maintenance needs flock(2)")
}
