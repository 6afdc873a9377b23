package sshlogin

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/kaginashi/kaginashi/test/e2e/harness"
)

// world is what every test shares: the binaries, the tools, the sshd-safe
// directory and the two local users.
var world struct {
	skip string // why the tests cannot run here ("" when they can)

	sshd, ssh string // /usr/sbin/sshd, ssh
	// sshdPenalties: sshd has PerSourcePenalties (OpenSSH 9.8+), which
	// would slow down a source address after refused logins.
	sshdPenalties bool

	// safe is a directory sshd accepts an AuthorizedKeysCommand in: it
	// and every parent are root-owned and not group or world writable, so
	// not under /tmp. It holds the agent binary, the agents' data
	// directories (which the unprivileged AuthorizedKeysCommandUser must
	// be able to reach) and the syslog sockets.
	safe  string
	agent string // safe/bin/kaginashi-agent

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
	bin, err := harness.TempDir(os.TempDir(), "kaginashi-sshlogin-bin-")
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
	// sshd -t and sshd itself need their privilege separation directory,
	// which systemd creates only when the service starts.
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
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
	world.sshd = "/usr/sbin/sshd"
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
	out, _ := exec.Command(world.sshd, "-V").CombinedOutput()
	var major, minor int
	if i := strings.Index(string(out), "OpenSSH_"); i >= 0 {
		fmt.Sscanf(string(out[i:]), "OpenSSH_%d.%d", &major, &minor)
	}
	world.sshdPenalties = major > 9 || (major == 9 && minor >= 8)
	return ""
}

// safeDir makes the directory for the AuthorizedKeysCommand: sshd refuses a
// command unless the file and every directory above it are owned by root
// and not writable by group or others. /tmp and /var/tmp (mode 1777) do not
// qualify; /run does on Debian.
func safeDir() (string, error) {
	for _, parent := range []string{"/run", "/var/lib"} {
		if !sshdSafe(parent) {
			continue
		}
		d, err := harness.TempDir(parent, safePrefix)
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

// sshdSafe applies sshd's rule for an AuthorizedKeysCommand's directories.
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

// addUser adds a local user with a shell and no usable password: "*"
// rather than useradd's default "!", which sshd (with UsePAM no) treats
// as a locked account and refuses even with a valid key.
func addUser(name string) error {
	out, err := exec.Command("useradd", "--no-create-home", "--home-dir", "/", "--shell", "/bin/sh",
		"--password", "*", "--comment", userGECOS, name).CombinedOutput()
	if err != nil {
		return fmt.Errorf("useradd %s: %v: %s", name, err, out)
	}
	return nil
}

func delUser(name string) {
	if out, err := exec.Command("userdel", name).CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "sshlogin: userdel %s: %v: %s\n", name, err, out)
	}
}

// reapStaleUsers removes the users of earlier runs whose process is gone
// (a run killed before its cleanup).
func reapStaleUsers() {
	f, err := os.Open("/etc/passwd")
	if err != nil {
		return
	}
	defer f.Close()
	var stale []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Split(sc.Text(), ":")
		if len(fields) < 5 || fields[4] != userGECOS || !strings.HasPrefix(fields[0], userPrefix) {
			continue
		}
		if _, gone := harness.StalePID(strings.TrimPrefix(fields[0], userPrefix)); gone {
			stale = append(stale, fields[0])
		}
	}
	for _, u := range stale {
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
