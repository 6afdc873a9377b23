//go:build !unix

package bootstrap

// lockFile does nothing where there is no flock: each file is still
// replaced atomically, but servers sharing DIR/tls may both issue a
// certificate at once (the last one written wins on disk).
func lockFile(string) (func(), error) { return func() {}, nil }

// syncRename does nothing: directories cannot be opened for fsync here.
func syncRename(string) error { return nil }
