//go:build unix

package audit

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// unsafeRefused checks that err is a path refusal saying want.
func unsafeRefused(t *testing.T, what string, err error, want string) {
	t.Helper()
	if !errors.Is(err, ErrUnsafePath) || !strings.Contains(err.Error(), want) {
		t.Fatalf("%s: %v; want a refusal saying %q", what, err, want)
	}
}

// A symbolic link at the audit log's path is refused, at start and at a
// rotation: the server (root, often) would otherwise create or append to
// whatever file the link names. Before the check, OpenFileSink followed it
// and appended to the target.
func TestFileSinkRefusesSymlink(t *testing.T) {
	dir := t.TempDir()
	victim := filepath.Join(dir, "victim")
	if err := os.WriteFile(victim, []byte("precious\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "audit.jsonl")
	if err := os.Symlink(victim, path); err != nil {
		t.Fatal(err)
	}
	_, err := OpenFileSink(path)
	unsafeRefused(t, "a symlink", err, "symbolic link (to "+victim+")")
	unsafeRefused(t, "CheckPath of a symlink", CheckPath(path), "symbolic link")
	// A dangling one would be created through.
	dangling := filepath.Join(dir, "dangling.jsonl")
	if err := os.Symlink(filepath.Join(dir, "made-by-the-server"), dangling); err != nil {
		t.Fatal(err)
	}
	_, err = OpenFileSink(dangling)
	unsafeRefused(t, "a dangling symlink", err, "symbolic link")
	if _, err := os.Lstat(filepath.Join(dir, "made-by-the-server")); !os.IsNotExist(err) {
		t.Fatalf("the link's target was created: %v", err)
	}

	// At a rotation: the file moved away and a link put in its place.
	logFile := filepath.Join(dir, "logFile.jsonl")
	s, err := OpenFileSink(logFile)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := os.Rename(logFile, logFile+".1"); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(victim, logFile); err != nil {
		t.Fatal(err)
	}
	unsafeRefused(t, "Reopen onto a symlink", s.Reopen(), "symbolic link")
	// The old file is kept: nothing is lost, nothing reaches the victim.
	if _, err := s.Write([]byte("{}\n")); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(victim); string(b) != "precious\n" {
		t.Fatalf("the victim was written: %q", b)
	}
	if b, _ := os.ReadFile(logFile + ".1"); string(b) != "{}\n" {
		t.Fatalf("the rotated file got %q", b)
	}
	// A link among the directories is followed: what counts is where it
	// leads.
	linkedDir := filepath.Join(t.TempDir(), "logs")
	if err := os.Symlink(dir, linkedDir); err != nil {
		t.Fatal(err)
	}
	s2, err := OpenFileSink(filepath.Join(linkedDir, "via-link.jsonl"))
	if err != nil {
		t.Fatalf("a file under a linked directory: %v", err)
	}
	s2.Close()
}

// A directory others can write, the file's or one above it, is refused;
// a sticky one above it is not.
func TestFileSinkRefusesWritableDirectory(t *testing.T) {
	for _, c := range []struct {
		name string
		mode os.FileMode // of the directory that holds the log
		want string
	}{
		{"world-writable", 0o777, "writable by others than its owner (mode -rwxrwxrwx)"},
		{"group-writable", 0o770, "writable by others than its owner (mode -rwxrwx---)"},
		// Sticky does not help the file's own directory: others could
		// still create its name first, or again after a rotation.
		{"sticky", 0o777 | os.ModeSticky, "writable by others than its owner"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "logs")
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(dir, c.mode); err != nil {
				t.Fatal(err)
			}
			_, err := OpenFileSink(filepath.Join(dir, "audit.jsonl"))
			unsafeRefused(t, c.name, err, c.want)
			if _, err := os.Stat(filepath.Join(dir, "audit.jsonl")); !os.IsNotExist(err) {
				t.Fatalf("the log was created: %v", err)
			}
		})
	}
	t.Run("above, not sticky", func(t *testing.T) {
		above := filepath.Join(t.TempDir(), "shared")
		if err := os.Mkdir(above, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(above, 0o777); err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(above, "logs")
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		_, err := OpenFileSink(filepath.Join(dir, "audit.jsonl"))
		unsafeRefused(t, "a writable directory above", err, "the directory "+above+", above it")
		// Made sticky, it is fine (as /tmp).
		if err := os.Chmod(above, 0o777|os.ModeSticky); err != nil {
			t.Fatal(err)
		}
		s, err := OpenFileSink(filepath.Join(dir, "audit.jsonl"))
		if err != nil {
			t.Fatalf("under a sticky directory: %v", err)
		}
		s.Close()
		// CheckPath of a log whose directory does not exist yet (the
		// data dir the server is about to make) checks those above.
		if err := os.Chmod(above, 0o777); err != nil {
			t.Fatal(err)
		}
		unsafeRefused(t, "CheckPath under a missing directory", CheckPath(filepath.Join(above, "new-data-dir", "audit.jsonl")), "above it")
	})
}

// An existing file with a second link, or another owner, is refused.
func TestFileSinkRefusesForeignFile(t *testing.T) {
	dir := t.TempDir()
	victim := filepath.Join(dir, "victim")
	if err := os.WriteFile(victim, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	linked := filepath.Join(dir, "audit.jsonl")
	if err := os.Link(victim, linked); err != nil {
		t.Fatal(err)
	}
	_, err := OpenFileSink(linked)
	unsafeRefused(t, "a hard link", err, "it has 2 links")

	if os.Geteuid() != 0 {
		t.Skip("giving a file to another user needs root")
	}
	foreign := filepath.Join(dir, "foreign.jsonl")
	if err := os.WriteFile(foreign, nil, 0o666); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(foreign, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	_, err = OpenFileSink(foreign)
	unsafeRefused(t, "another user's file", err, "it belongs to uid 65534")
	// A directory of another user's, likewise.
	theirs := filepath.Join(dir, "theirs")
	if err := os.Mkdir(theirs, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(theirs, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	_, err = OpenFileSink(filepath.Join(theirs, "audit.jsonl"))
	unsafeRefused(t, "another user's directory", err, "belongs to uid 65534")
}

// A named pipe (a log shipper's) is still opened.
func TestFileSinkNamedPipe(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "audit.pipe")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	got := make(chan string, 1)
	go func() {
		b, _ := os.ReadFile(fifo)
		got <- string(b)
	}()
	s, err := OpenFileSink(fifo)
	if err != nil {
		t.Fatalf("a named pipe: %v", err)
	}
	if _, err := s.Write([]byte("{\"x\":1}\n")); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if b := <-got; b != "{\"x\":1}\n" {
		t.Fatalf("the reader got %q", b)
	}
}

// A symbolic link to a stream, in a directory only root and the server's
// user can write, is followed: /dev/stdout under a container runtime (a
// link to /proc/self/fd/1, a pipe), or a link to a log shipper's pipe.
// Before, every link was refused, /dev/stdout too. The same link in a
// directory others can write is still refused, and so is a link to a file.
func TestFileSinkFollowsLinkToStream(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "shipper.pipe")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	link := filepath.Join(dir, "audit.jsonl")
	if err := os.Symlink(fifo, link); err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 1)
	go func() {
		b, _ := os.ReadFile(fifo)
		got <- string(b)
	}()
	s, err := OpenFileSink(link)
	if err != nil {
		t.Fatalf("a link to a pipe: %v", err)
	}
	if _, err := s.Write([]byte("{\"x\":1}\n")); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if b := <-got; b != "{\"x\":1}\n" {
		t.Fatalf("the reader got %q", b)
	}

	// A link to a character device (/dev/null) too.
	null := filepath.Join(dir, "null.jsonl")
	if err := os.Symlink(os.DevNull, null); err != nil {
		t.Fatal(err)
	}
	if err := CheckPath(null); err != nil {
		t.Fatalf("a link to %s: %v", os.DevNull, err)
	}

	// The same link where others can write: refused.
	open := filepath.Join(dir, "open")
	if err := os.Mkdir(open, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(open, 0o777); err != nil {
		t.Fatal(err)
	}
	planted := filepath.Join(open, "audit.jsonl")
	if err := os.Symlink(os.DevNull, planted); err != nil {
		t.Fatal(err)
	}
	_, err = OpenFileSink(planted)
	unsafeRefused(t, "a link to a device in a directory others can write", err, "in a directory others can write")

	// A link to a regular file: refused, however safe its directory.
	file := filepath.Join(dir, "real.jsonl")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	toFile := filepath.Join(dir, "tofile.jsonl")
	if err := os.Symlink(file, toFile); err != nil {
		t.Fatal(err)
	}
	unsafeRefused(t, "a link to a file", CheckPath(toFile), "to a file, not to a pipe")
}
