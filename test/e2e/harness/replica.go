package harness

import (
	"os"
	"path/filepath"
	"testing"
)

// CopyDataFiles copies entries of a server's data directory (the master
// key, TLS material, root credentials) from src to dst, as an operator
// provisions a second replica: directories 0700, files with their modes.
func CopyDataFiles(t testing.TB, src, dst string, names ...string) {
	t.Helper()
	for _, n := range names {
		err := filepath.Walk(filepath.Join(src, n), func(p string, fi os.FileInfo, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(src, p)
			if fi.IsDir() {
				return os.MkdirAll(filepath.Join(dst, rel), 0o700)
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(dst, rel), b, fi.Mode().Perm())
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}
