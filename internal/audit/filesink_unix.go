//go:build unix

package audit

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

const noFollow = syscall.O_NOFOLLOW

// trusted says whether uid is the server's user or root: the only users
// who may be able to change what the audit log's path names.
func trusted(uid uint32) bool {
	return uid == 0 || int(uid) == os.Geteuid()
}

func owner(fi fs.FileInfo) (uint32, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return st.Uid, true
}

// checkDirs checks dir (resolved, existing) and every directory above it.
// leaf says dir holds the file itself: then nobody else may write it, not
// even in a sticky directory, where they could still create the file's
// name first (or again, after a rotation). Above it, a sticky directory
// writable by all is fine: others cannot rename what is not theirs.
func checkDirs(path, dir string, leaf bool) error {
	for d := dir; ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			return fmt.Errorf("audit log %s: %w", path, err)
		}
		uid, ok := owner(fi)
		if !ok {
			return nil
		}
		perm := fi.Mode()
		writable := perm.Perm()&0o022 != 0
		switch {
		case !trusted(uid):
			return unsafe(path, "the directory %s belongs to uid %d, neither the server's user (uid %d) nor root, who could swap the file for a link to another one: give the audit log a directory of the server's user or root (chown)", d, uid, os.Geteuid())
		case writable && (d == dir && leaf):
			return unsafe(path, "its directory %s is writable by others than its owner (mode %s), who could swap the file for a link to another one: use a directory only the server's user and root can write (chmod go-w %s)", d, perm.Perm(), d)
		case writable && perm&fs.ModeSticky == 0:
			return unsafe(path, "the directory %s, above it, is writable by others than its owner (mode %s) and not sticky, so they could move the log's directory away and put another in its place: chmod go-w %s (or chmod +t)", d, perm.Perm(), d)
		}
		if filepath.Dir(d) == d {
			return nil
		}
	}
}

// checkFile checks an existing regular file at the path (or just opened).
func checkFile(path string, fi fs.FileInfo) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	if !trusted(st.Uid) {
		return unsafe(path, "it belongs to uid %d, neither the server's user (uid %d) nor root: someone else made it and could read or edit it; remove it (the server creates it) or chown it", st.Uid, os.Geteuid())
	}
	if st.Nlink > 1 {
		return unsafe(path, "it has %d links: it is also another file, which the server would append to; remove this name (the server creates the file) or the other links", st.Nlink)
	}
	return nil
}
