package sshlogin

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/kaginashi/kaginashi/test/e2e/harness"
)

// world is what every test shares: the binaries, the tools, the sshd-safe
// directory and the two local users.
var world struct {
	skip string // why the tests cannot run here ("" when they can)

	sshd, ssh string // /usr/sbin/sshd, ssh
	// safe is a directory sshd accepts an AuthorizedKeysCommand in: it
	// and every parent are root-owned and not group or world writable, so
	// not under /tmp. It holds the agent binary, the agents' data
	// directories (which the unprivileged AuthorizedKeysCommandUser must
	// be able to reach) and the syslog sockets.
	safe  string
	agent string // safe/bin/kaginashi-agent
	// akc is safe/bin/kaginashi-authorized-keys, the small
	// AuthorizedKeysCommand binary setup-sshd picks when it sits next to
	// the agent: the sshds run it, and setup-sshd's fallback to
	// kaginashi-agent itself keeps its own test (setup_test.go).
	akc string

	userA, userB string // local users made for this run
}

const (
	safePrefix = "kaginashi-sshlogin-"
	userPrefix = "kgn-"
	userGECOS  = "kaginashi sshlogin e2e test user"
)

func TestMain(m *testing.M) {
	code, err := run(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "sshlogin:", err)
		os.Exit(2)
	}
	os.Exit(code)
}

func run(m *testing.M) (int, error) {
	if world.skip = skipReason(); world.skip != "" {
		return m.Run(), nil
	}
	bin, err := harness.BuildKaginashi("kaginashi-sshlogin-bin-")
	defer os.RemoveAll(bin)
	if err != nil {
		return 0, err
	}

	if world.safe, world.agent, err = harness.SetUpSSHD(safePrefix); err != nil {
		return 0, err
	}
	defer os.RemoveAll(world.safe)
	if err := harness.Build(filepath.Dir(world.agent), "./cmd/kaginashi-authorized-keys"); err != nil {
		return 0, err
	}
	world.akc = filepath.Join(filepath.Dir(world.agent), "kaginashi-authorized-keys")
	if err := os.Chmod(world.akc, 0o755); err != nil {
		return 0, err
	}

	reapStaleUsers()
	pid := strconv.Itoa(os.Getpid())
	world.userA, world.userB = userPrefix+pid+"-a", userPrefix+pid+"-b"
	for _, u := range []string{world.userA, world.userB} {
		if err := addUser(u); err != nil {
			return 0, err
		}
		defer delUser(u)
	}
	return m.Run(), nil
}

// skipReason says why the tests cannot run on this machine, or fails the
// run when only a missing package stands in the way.
func skipReason() string {
	if os.Getenv("KAGINASHI_SKIP_SSHD") == "1" {
		return "KAGINASHI_SKIP_SSHD=1: not testing logins through the real sshd"
	}
	if os.Geteuid() != 0 {
		return "the login tests run as root: sshd, and the local users they add, need it"
	}
	world.sshd = harness.SSHDPath
	if _, err := os.Stat(world.sshd); err != nil {
		fmt.Fprintln(os.Stderr, "sshlogin: OpenSSH's sshd is not installed (no /usr/sbin/sshd): run scripts/deps.sh test "+
			"(or apt-get install openssh-server openssh-client), or set KAGINASHI_SKIP_SSHD=1 to skip these tests")
		os.Exit(2)
	}
	for _, tool := range []string{"ssh", "useradd", "userdel"} {
		p, err := exec.LookPath(tool)
		if err != nil {
			fmt.Fprintf(os.Stderr, "sshlogin: %s is not installed: run scripts/deps.sh test, or set KAGINASHI_SKIP_SSHD=1\n", tool)
			os.Exit(2)
		}
		if tool == "ssh" {
			world.ssh = p
		}
	}
	return ""
}

// addUser adds a local user with a shell and no usable password.
func addUser(name string) error { return harness.AddUser(name, "/", userGECOS) }

func delUser(name string) {
	if out, err := exec.Command("userdel", name).CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "sshlogin: userdel %s: %v: %s\n", name, err, out)
	}
}

// reapStaleUsers removes the users of earlier runs whose process is gone
// (a run killed before its cleanup).
func reapStaleUsers() {
	for _, u := range harness.StaleUsers(userPrefix, userGECOS) {
		delUser(u)
	}
}

// requireWorld skips the test when the machine cannot run it.
func requireWorld(t *testing.T) {
	t.Helper()
	if world.skip != "" {
		t.Skip(world.skip)
	}
}
