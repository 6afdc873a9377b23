//go:build !unix

package client

import "os"

// lockFile does nothing where there is no flock: the file is still
// replaced atomically, but concurrent writers may lose each other's lines.
func lockFile(*os.File) error { return nil }

func unlockFile(*os.File) error { return nil }
