package tunnel

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kaginashi/kaginashi/test/e2e/harness"
)

// world is what every test shares: the binaries, the tools, the sshd-safe
// directory and the local user the logins are for.
var world struct {
	skip string // why the tests cannot run here ("" when they can)

	sshd string
	// tools: ssh, scp, sftp, rsync, git, ssh-agent, ssh-add
	tools map[string]string
	// safe is a directory sshd accepts an AuthorizedKeysCommand in: it and
	// every parent are root-owned and closed to group and others (so not
	// under /tmp). It holds the agent binary and the agents' data
	// directories, which the AuthorizedKeysCommandUser must reach.
	safe  string
	agent string // safe/bin/kaginashi-agent

	user     string // the local user the tests log in as
	uid, gid int
}

const (
	safePrefix = "kaginashi-tunnel-"
	userPrefix = "kgt-"
	userGECOS  = "kaginashi tunnel e2e test user"
)

func TestMain(m *testing.M) {
	code, err := run(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "tunnel:", err)
		os.Exit(2)
	}
	os.Exit(code)
}

func run(m *testing.M) (int, error) {
	if world.skip = skipReason(); world.skip != "" {
		return m.Run(), nil
	}
	bin, err := harness.BuildKaginashi("kaginashi-tunnel-bin-")
	defer os.RemoveAll(bin)
	if err != nil {
		return 0, err
	}

	if world.safe, world.agent, err = harness.SetUpSSHD(safePrefix); err != nil {
		return 0, err
	}
	defer os.RemoveAll(world.safe)

	reapStaleUsers()
	world.user = userPrefix + strconv.Itoa(os.Getpid())
	if err := addUser(world.user); err != nil {
		return 0, err
	}
	defer delUser(world.user)
	out, err := exec.Command("id", "-u", world.user).Output()
	if err != nil {
		return 0, err
	}
	world.uid, _ = strconv.Atoi(strings.TrimSpace(string(out)))
	out, err = exec.Command("id", "-g", world.user).Output()
	if err != nil {
		return 0, err
	}
	world.gid, _ = strconv.Atoi(strings.TrimSpace(string(out)))
	return m.Run(), nil
}

// skipReason says why the tests cannot run on this machine, or fails the
// run when only a missing package stands in the way.
func skipReason() string {
	if os.Getenv("KAGINASHI_SKIP_SSHD") == "1" {
		return "KAGINASHI_SKIP_SSHD=1: not testing tunnels to a real sshd"
	}
	if os.Geteuid() != 0 {
		return "the tunnel tests run as root: sshd, and the local user they add, need it"
	}
	world.sshd = harness.SSHDPath
	if _, err := os.Stat(world.sshd); err != nil {
		fmt.Fprintln(os.Stderr, "tunnel: OpenSSH's sshd is not installed (no /usr/sbin/sshd): run scripts/deps.sh test, or set KAGINASHI_SKIP_SSHD=1 to skip these tests")
		os.Exit(2)
	}
	world.tools = map[string]string{}
	for _, tool := range []string{"ssh", "scp", "sftp", "ssh-agent", "ssh-add", "rsync", "git", "useradd", "userdel"} {
		p, err := exec.LookPath(tool)
		if err != nil {
			fmt.Fprintf(os.Stderr, "tunnel: %s is not installed: run scripts/deps.sh test, or set KAGINASHI_SKIP_SSHD=1\n", tool)
			os.Exit(2)
		}
		world.tools[tool] = p
	}
	return ""
}

// addUser adds a local user with a shell and no usable password.
func addUser(name string) error { return harness.AddUser(name, "/", userGECOS) }

// delUser removes a user, waiting a little for its last processes (a
// login's shell) to end.
func delUser(name string) {
	var (
		out []byte
		err error
	)
	for i := 0; i < 50; i++ {
		if out, err = exec.Command("userdel", name).CombinedOutput(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	fmt.Fprintf(os.Stderr, "tunnel: userdel %s: %v: %s\n", name, err, out)
}

// reapStaleUsers removes the users of earlier runs whose process is gone.
func reapStaleUsers() {
	for _, u := range harness.StaleUsers(userPrefix, userGECOS) {
		delUser(u)
	}
}

func requireWorld(t *testing.T) {
	t.Helper()
	if world.skip != "" {
		t.Skip(world.skip)
	}
}
