package tunneldata

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/kaginashi/kaginashi/test/e2e/harness"
)

// world is what every test shares: the binaries and the tools.
var world struct {
	agent string // kaginashi-agent
	// sshSkip says why the ssh tests cannot run here ("" when they can).
	sshSkip   string
	sshd, ssh string
}

func TestMain(m *testing.M) {
	code, err := run(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "tunneldata:", err)
		os.Exit(2)
	}
	os.Exit(code)
}

func run(m *testing.M) (int, error) {
	bin, err := harness.BuildKaginashi("kaginashi-tunneldata-bin-", "./cmd/kaginashi-agent")
	defer os.RemoveAll(bin)
	if err != nil {
		return 0, err
	}
	world.agent = filepath.Join(bin, "kaginashi-agent")
	world.sshSkip = sshSkipReason()
	if world.sshSkip == "" {
		if err := harness.PrepareSSHD(); err != nil {
			return 0, err
		}
	}
	return m.Run(), nil
}

func sshSkipReason() string {
	if os.Getenv("KAGINASHI_SKIP_SSHD") == "1" {
		return "KAGINASHI_SKIP_SSHD=1: not testing through a real sshd"
	}
	if os.Geteuid() != 0 {
		return "the ssh tests run as root: sshd needs it"
	}
	world.sshd = harness.SSHDPath
	if _, err := os.Stat(world.sshd); err != nil {
		fmt.Fprintln(os.Stderr, "tunneldata: OpenSSH's sshd is not installed (no /usr/sbin/sshd): run scripts/deps.sh test "+
			"(or apt-get install openssh-server openssh-client), or set KAGINASHI_SKIP_SSHD=1 to skip the ssh tests")
		os.Exit(2)
	}
	p, err := exec.LookPath("ssh")
	if err != nil {
		fmt.Fprintln(os.Stderr, "tunneldata: ssh is not installed: run scripts/deps.sh test, or set KAGINASHI_SKIP_SSHD=1")
		os.Exit(2)
	}
	world.ssh = p
	return ""
}
