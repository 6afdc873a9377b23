package audit

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"syscall"
)

// FileSink is the JSON-lines file (--audit-log): appended to, 0600, and
// reopened by path on Reopen (SIGHUP), so that logrotate can move the file
// away and the next event starts a new one without a restart.
//
// The server often runs as root, and opens this path with O_CREATE at
// every start and every rotation. Whoever can write the file's directory
// could otherwise put a symbolic or hard link there (after a rotation
// moved the file away, say) and have the server create or append to a
// file of their choice, or leave a file of their own there and read (and
// edit) the audit trail. So each open (CheckPath, then the open itself)
// refuses:
//   - a path whose last component is a symbolic link (O_NOFOLLOW; a link
//     among the directories above it is followed, and what it leads to is
//     checked);
//   - a directory that others than the server's user and root can write
//     (group or other write permission, or another owner), and a
//     directory above it that they can write unless it is sticky (/tmp:
//     they cannot rename what is not theirs in it);
//   - an existing regular file with another owner than the server's user
//     or root, or with more than one link.
//
// Named pipes (a log shipper's) and devices are opened as they are, and so
// is a symbolic link to one in a directory only root and the server's
// user can write (/dev/stdout, under a container runtime).
type FileSink struct {
	path string
	mu   sync.Mutex
	f    *os.File
}

// OpenFileSink opens (creating, 0600) path for appending, after the
// checks above.
func OpenFileSink(path string) (*FileSink, error) {
	f, err := openAppend(path)
	if err != nil {
		return nil, err
	}
	return &FileSink{path: path, f: f}, nil
}

// ErrUnsafePath is wrapped by every refusal of the path checks.
var ErrUnsafePath = errors.New("refused as unsafe")

// unsafe makes the refusal of path: it wraps ErrUnsafePath and says the
// fix.
func unsafe(path, format string, args ...any) error {
	return fmt.Errorf("audit log %s: %w: "+format, append([]any{path, ErrUnsafePath}, args...)...)
}

// CheckPath checks path as OpenFileSink will (without opening or creating
// anything), so that the server can refuse an unsafe --audit-log before it
// creates its data directory. A directory of the path that does not exist
// yet (the data dir the server is about to create, 0700) is not checked
// here; the directories above it are, and OpenFileSink checks it all again.
func CheckPath(path string) error {
	_, err := checkPath(path)
	return err
}

// checkPath is CheckPath, and also says whether the open must follow a
// symbolic link at the path: one that only root or the server's user
// could have put there (its directory passes the checks) and that leads
// to a stream rather than a file (a pipe, a character device, a socket),
// as /dev/stdout does under a container runtime. Nothing is created or
// appended to through such a link, so it cannot be used to reach a file.
func checkPath(path string) (follow bool, err error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return false, fmt.Errorf("audit log %s: %w", path, err)
	}
	fi, err := os.Lstat(abs)
	switch {
	case err == nil && fi.Mode()&fs.ModeSymlink != 0:
		to, _ := os.Readlink(abs)
		if err := checkStreamLink(path, abs); err != nil {
			return false, unsafe(path, "it is a symbolic link (to %s) %s: give the file's real path. The server opens its audit log without following a link, so that whoever can write the directory cannot point it at another file", to, err)
		}
		return true, nil
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return false, fmt.Errorf("audit log %s: %w", path, err)
	}
	dir := filepath.Dir(abs)
	// The nearest directory that exists: a missing one is made by the
	// server (the data dir) or refused elsewhere.
	leaf := true
	for {
		if _, err := os.Stat(dir); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return false, nil
		}
		dir, leaf = parent, false
	}
	resolved, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return false, fmt.Errorf("audit log %s: %w", path, err)
	}
	if err := checkDirs(path, resolved, leaf); err != nil {
		return false, err
	}
	if fi != nil && fi.Mode().IsRegular() {
		return false, checkFile(path, fi)
	}
	return false, nil
}

// checkStreamLink says why the symbolic link at abs may not be followed,
// or nil when it leads to a stream and sits in a directory that only root
// and the server's user can write.
func checkStreamLink(path, abs string) error {
	target, err := os.Stat(abs)
	if err != nil {
		return errors.New("that does not lead to an existing pipe or device")
	}
	if !isStream(target.Mode()) {
		return errors.New("to a file, not to a pipe or character device")
	}
	dir, err := filepath.EvalSymlinks(filepath.Dir(abs))
	if err != nil {
		return err
	}
	if err := checkDirs(path, dir, true); err != nil {
		return errors.New("in a directory others can write")
	}
	return nil
}

// isStream says whether m is a pipe, a character device or a socket:
// what a log shipper or a container runtime hands a process as its log.
func isStream(m fs.FileMode) bool {
	return m&(fs.ModeNamedPipe|fs.ModeCharDevice|fs.ModeSocket) != 0
}

func openAppend(path string) (*os.File, error) {
	follow, err := checkPath(path)
	if err != nil {
		return nil, err
	}
	if follow {
		// Through the link, to a stream only: nothing is created.
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			return nil, fmt.Errorf("audit log %s: %w", path, err)
		}
		if fi, err := f.Stat(); err != nil || !isStream(fi.Mode()) {
			f.Close()
			return nil, unsafe(path, "it is a symbolic link that no longer leads to a pipe or device: give the file's real path")
		}
		return f, nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|noFollow, 0o600)
	if errors.Is(err, syscall.ELOOP) {
		// A link that appeared since CheckPath.
		return nil, unsafe(path, "it is a symbolic link: give the file's real path")
	}
	if err != nil {
		return nil, fmt.Errorf("audit log %s: %w", path, err)
	}
	// What was opened, not what the path named a moment ago.
	fi, err := f.Stat()
	if err == nil && fi.Mode().IsRegular() {
		err = checkFile(path, fi)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// Write appends one record.
func (s *FileSink) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return 0, fmt.Errorf("audit log %s: closed", s.path)
	}
	return s.f.Write(b)
}

// Reopen opens the path afresh and closes the old file. When the path
// cannot be opened (or is refused by the checks), the old file is kept, so
// no event is lost to the rotation, and the error says why.
func (s *FileSink) Reopen() error {
	f, err := openAppend(s.path)
	if err != nil {
		return err
	}
	s.mu.Lock()
	old := s.f
	s.f = f
	s.mu.Unlock()
	if old != nil {
		return old.Close()
	}
	return nil
}

// Close closes the file.
func (s *FileSink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return nil
	}
	err := s.f.Close()
	s.f = nil
	return err
}
