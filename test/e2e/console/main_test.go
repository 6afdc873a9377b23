package console

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/kaginashi/kaginashi/test/e2e/harness"
)

// world is what the tests share: the binaries, sshd, and a directory sshd
// accepts an AuthorizedKeysCommand in.
var world struct {
	skip  string
	sshd  string
	agent string // safe/bin/kaginashi-agent
	safe  string
}

func TestMain(m *testing.M) {
	code, err := run(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "console:", err)
		os.Exit(2)
	}
	os.Exit(code)
}

func run(m *testing.M) (int, error) {
	if world.skip = skipReason(); world.skip != "" {
		return m.Run(), nil
	}
	bin, err := harness.TempDir(os.TempDir(), "kaginashi-console-bin-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(bin)
	if err := harness.Build(bin, "./cmd/kaginashi"); err != nil {
		return 0, err
	}
	harness.Kaginashi = filepath.Join(bin, "kaginashi")
	if world.safe, err = safeDir(); err != nil {
		return 0, err
	}
	defer os.RemoveAll(world.safe)
	if err := os.Mkdir(filepath.Join(world.safe, "bin"), 0o755); err != nil {
		return 0, err
	}
	if err := harness.Build(filepath.Join(world.safe, "bin"), "./cmd/kaginashi-agent"); err != nil {
		return 0, err
	}
	world.agent = filepath.Join(world.safe, "bin", "kaginashi-agent")
	if err := os.Chmod(world.agent, 0o755); err != nil {
		return 0, err
	}
	// sshd's privilege separation directory, which systemd makes only
	// when its service starts.
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		return 0, err
	}
	return m.Run(), nil
}

func skipReason() string {
	if os.Getenv("KAGINASHI_SKIP_SSHD") == "1" {
		return "KAGINASHI_SKIP_SSHD=1: not testing the console's terminal against a real sshd"
	}
	if os.Geteuid() != 0 {
		return "the console e2e test runs as root: sshd needs it"
	}
	world.sshd = "/usr/sbin/sshd"
	if _, err := os.Stat(world.sshd); err != nil {
		fmt.Fprintln(os.Stderr, "console: OpenSSH's sshd is not installed (no /usr/sbin/sshd): run scripts/deps.sh test, or set KAGINASHI_SKIP_SSHD=1")
		os.Exit(2)
	}
	if _, err := exec.LookPath("ssh-keygen"); err != nil {
		fmt.Fprintln(os.Stderr, "console: OpenSSH is incomplete: run scripts/deps.sh test, or set KAGINASHI_SKIP_SSHD=1")
		os.Exit(2)
	}
	return ""
}

// safeDir is a directory sshd accepts an AuthorizedKeysCommand in: it and
// its parents root-owned and closed to group and others (not under /tmp).
func safeDir() (string, error) {
	for _, parent := range []string{"/run", "/var/lib"} {
		if !sshdSafe(parent) {
			continue
		}
		d, err := harness.TempDir(parent, "kaginashi-console-")
		if err != nil {
			continue
		}
		if err := os.Chmod(d, 0o755); err != nil {
			os.RemoveAll(d)
			return "", err
		}
		return d, nil
	}
	return "", errors.New("no directory for the AuthorizedKeysCommand: neither /run nor /var/lib is root-owned and closed to group and others")
}

func sshdSafe(dir string) bool {
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil || !fi.IsDir() {
			return false
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok || st.Uid != 0 || fi.Mode().Perm()&0o022 != 0 {
			return false
		}
		if d == "/" {
			return true
		}
	}
}
