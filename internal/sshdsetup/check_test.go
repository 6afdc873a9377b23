package sshdsetup

import (
	"os"
	"testing"
)

func TestDirSafe(t *testing.T) {
	if fi, err := os.Stat("/tmp"); err != nil || fi.Mode().Perm()&0o002 == 0 {
		t.Skip("/tmp is not world-writable here")
	}
	if DirSafe("/tmp") || DirSafe(t.TempDir()) {
		t.Error("a directory under world-writable /tmp passes")
	}
	if DirSafe("/no/such/dir") {
		t.Error("a missing directory passes")
	}
	if os.Geteuid() == 0 && !DirSafe("/usr/bin") {
		t.Error("/usr/bin (root-owned, 0755) does not pass")
	}
}
