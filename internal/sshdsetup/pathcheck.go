package sshdsetup

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
)

// safeOwnerUID is the owner sshd accepts for the AuthorizedKeysCommand and
// its directories (root). Tests that cannot run as root change it.
var safeOwnerUID uint32 = 0

// UnsafePathError says why sshd would refuse to run the command: it checks
// the resolved path, the file and every directory up to /, with
// "Unsafe AuthorizedKeysCommand" in its log.
type UnsafePathError struct {
	Path      string // the AuthorizedKeysCommand binary as configured
	Component string // the file or directory that is wrong (resolved path)
	Kind      string // "file" or "directory"
	Reason    string
	Fix       string
}

func (e *UnsafePathError) Error() string {
	what := e.Component
	if e.Kind != "" {
		what = e.Kind + " " + e.Component
	}
	s := fmt.Sprintf("unsafe AuthorizedKeysCommand %q: %s %s", e.Path, what, e.Reason)
	if e.Fix != "" {
		s += "; fix: " + e.Fix
	}
	return s + " (sshd refuses such a command and logs \"Unsafe AuthorizedKeysCommand\")"
}

// checkCommandPath applies sshd's safe_path() to p (a logical path under
// root): absolute; resolved through symlinks; a regular file owned by root
// and not writable by group or others; every directory from its parent up to
// / owned by root and not writable by group or others. Warnings are returned
// for what sshd does not check but the AuthorizedKeysCommandUser needs
// (execute and search permission for others).
func checkCommandPath(root, p string) (warnings []string, err error) {
	if !path.IsAbs(p) {
		return nil, &UnsafePathError{Path: p, Component: p, Reason: "is not an absolute path", Fix: "give the absolute path of the agent binary"}
	}
	resolved, err := resolveUnder(root, p)
	if err != nil {
		return nil, &UnsafePathError{Path: p, Component: p, Reason: "cannot be resolved: " + err.Error(), Fix: "install the agent binary there first"}
	}
	real := func(l string) string {
		if root == "" {
			return l
		}
		return filepath.Join(root, l)
	}
	fi, err := os.Stat(real(resolved))
	if err != nil {
		return nil, &UnsafePathError{Path: p, Component: resolved, Reason: "cannot be read: " + err.Error()}
	}
	if !fi.Mode().IsRegular() {
		return nil, &UnsafePathError{Path: p, Component: resolved, Reason: "is not a regular file"}
	}
	if e := ownerModeProblem(p, resolved, "file", fi); e != nil {
		return nil, e
	}
	if fi.Mode().Perm()&0o111 == 0 {
		return nil, &UnsafePathError{Path: p, Component: resolved, Reason: "is not executable", Fix: "chmod 0755 " + resolved}
	}
	if fi.Mode().Perm()&0o001 == 0 {
		warnings = append(warnings, fmt.Sprintf("%s is not executable by others (mode %04o): the AuthorizedKeysCommandUser may not be able to run it", resolved, fi.Mode().Perm()))
	}
	for dir := path.Dir(resolved); ; dir = path.Dir(dir) {
		di, err := os.Stat(real(dir))
		if err != nil {
			return nil, &UnsafePathError{Path: p, Component: dir, Reason: "cannot be read: " + err.Error()}
		}
		if e := ownerModeProblem(p, dir, "directory", di); e != nil {
			return nil, e
		}
		if di.Mode().Perm()&0o001 == 0 {
			warnings = append(warnings, fmt.Sprintf("directory %s is not searchable by others (mode %04o): the AuthorizedKeysCommandUser may not reach the command", dir, di.Mode().Perm()))
		}
		if dir == "/" {
			break
		}
	}
	return warnings, nil
}

func ownerModeProblem(p, component, kind string, fi os.FileInfo) *UnsafePathError {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return &UnsafePathError{Path: p, Component: component, Reason: "has no Unix owner information"}
	}
	if st.Uid != safeOwnerUID {
		return &UnsafePathError{Path: p, Component: component, Kind: kind, Reason: fmt.Sprintf("is owned by uid %d, not root", st.Uid), Fix: "chown root " + component}
	}
	if fi.Mode().Perm()&0o022 != 0 {
		what := "group-writable"
		switch {
		case fi.Mode().Perm()&0o022 == 0o022:
			what = "group- and world-writable"
		case fi.Mode().Perm()&0o002 != 0:
			what = "world-writable"
		}
		return &UnsafePathError{Path: p, Component: component, Kind: kind, Reason: fmt.Sprintf("is %s (mode %04o)", what, fi.Mode().Perm()), Fix: "chmod go-w " + component}
	}
	return nil
}

// resolveUnder is realpath(3) for a logical path whose "/" is root: symbolic
// links are followed, absolute link targets stay under root.
func resolveUnder(root, p string) (string, error) {
	real := func(l string) string {
		if root == "" {
			return l
		}
		return filepath.Join(root, l)
	}
	resolved := "/"
	todo := strings.Split(p, "/")
	for links := 0; len(todo) > 0; {
		c := todo[0]
		todo = todo[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			resolved = path.Dir(resolved)
			continue
		}
		next := path.Join(resolved, c)
		fi, err := os.Lstat(real(next))
		if err != nil {
			return "", err
		}
		if fi.Mode()&os.ModeSymlink == 0 {
			resolved = next
			continue
		}
		links++
		if links > 40 {
			return "", fmt.Errorf("too many levels of symbolic links at %s", next)
		}
		target, err := os.Readlink(real(next))
		if err != nil {
			return "", err
		}
		if strings.HasPrefix(target, "/") {
			resolved = "/"
		}
		todo = append(strings.Split(target, "/"), todo...)
	}
	return resolved, nil
}
