package console

import (
	"fmt"
	"os"
	"os/exec"
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
	bin, err := harness.BuildKaginashi("kaginashi-console-bin-")
	defer os.RemoveAll(bin)
	if err != nil {
		return 0, err
	}
	if world.safe, world.agent, err = harness.SetUpSSHD("kaginashi-console-"); err != nil {
		return 0, err
	}
	defer os.RemoveAll(world.safe)
	return m.Run(), nil
}

func skipReason() string {
	if os.Getenv("KAGINASHI_SKIP_SSHD") == "1" {
		return "KAGINASHI_SKIP_SSHD=1: not testing the console's terminal against a real sshd"
	}
	if os.Geteuid() != 0 {
		return "the console e2e test runs as root: sshd needs it"
	}
	world.sshd = harness.SSHDPath
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
