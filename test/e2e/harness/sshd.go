package harness

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/kaginashi/kaginashi/internal/sshdsetup"
)

// SSHDPath is where the suites expect OpenSSH's sshd (scripts/deps.sh
// installs it).
const SSHDPath = "/usr/sbin/sshd"

// SafeDir makes a directory (see TempDir) that sshd accepts an
// AuthorizedKeysCommand in, mode 0755: /tmp and /var/tmp (mode 1777) do
// not qualify; /run does on Debian, /var/lib elsewhere.
func SafeDir(prefix string) (string, error) {
	for _, parent := range []string{"/run", "/var/lib"} {
		if !sshdsetup.DirSafe(parent) {
			continue
		}
		d, err := TempDir(parent, prefix)
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

// InstallAgent builds kaginashi-agent into SAFE/bin (a root-owned copy
// that sshd runs as the AuthorizedKeysCommand) and returns its path.
func InstallAgent(safe string) (string, error) {
	dir := filepath.Join(safe, "bin")
	if err := os.Mkdir(dir, 0o755); err != nil {
		return "", err
	}
	if err := Build(dir, "./cmd/kaginashi-agent"); err != nil {
		return "", err
	}
	agent := filepath.Join(dir, "kaginashi-agent")
	return agent, os.Chmod(agent, 0o755)
}

// PrepareSSHD makes /run/sshd, sshd's privilege separation directory,
// which systemd creates only when the service starts; sshd -t and sshd
// need it.
func PrepareSSHD() error { return os.MkdirAll("/run/sshd", 0o755) }

// SSHDPenalties says whether sshd has PerSourcePenalties (OpenSSH 9.8+),
// which would slow down a source address after refused logins.
func SSHDPenalties(sshd string) bool {
	out, _ := exec.Command(sshd, "-V").CombinedOutput()
	var major, minor int
	if i := strings.Index(string(out), "OpenSSH_"); i >= 0 {
		fmt.Sscanf(string(out[i:]), "OpenSSH_%d.%d", &major, &minor)
	}
	return major > 9 || (major == 9 && minor >= 8)
}

// AgentDataDir is SAFE/NAME-XXXX/data, an agent data directory (not made
// yet) under the safe directory: sshd runs the AuthorizedKeysCommand as
// an unprivileged user, who must reach DIR/keys.
func AgentDataDir(t testing.TB, safe, name string) string {
	t.Helper()
	parent, err := os.MkdirTemp(safe, name+"-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(parent, 0o755); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(parent, "data")
}

// WriteFile writes b to path with exactly mode (whatever the umask).
func WriteFile(t testing.TB, path string, b []byte, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, b, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

// WriteEd25519Key writes a new Ed25519 private key in OpenSSH's format
// with comment to path (mode 0600) and returns its public key.
func WriteEd25519Key(t testing.TB, path, comment string) ed25519.PublicKey {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, comment)
	if err != nil {
		t.Fatal(err)
	}
	WriteFile(t, path, pem.EncodeToMemory(block), 0o600)
	return pub
}

// SSHDOptions configure a private test sshd.
type SSHDOptions struct {
	Bin     string // sshd; "" is SSHDPath
	Dir     string // for its files; "" is a new temporary directory
	Comment string // the configuration's first line, "# ..."; "" for none
	// Lines follow the common ones (port, host key, PidFile, no PAM, public
	// keys only, LogLevel VERBOSE): where keys come from, who may log in.
	Lines []string
	// NoPenalties adds "PerSourcePenalties no" (when sshd has it): for
	// tests whose point is refused logins.
	NoPenalties bool
	// PublishHostKey writes the host key's .pub next to it, where an agent
	// given this sshd's configuration (--sshd-config) reads it.
	PublishHostKey bool
	// OnPort runs before each start, once the port is chosen (to pin the
	// host key for that port, say).
	OnPort func(*SSHD)
	Env    []string // "" is BaseEnv
}

// SSHD is a private sshd on a loopback port, run by the test (-D -e).
type SSHD struct {
	*Process
	Dir         string
	Port        int
	Config      string // DIR/sshd_config
	HostKeyPath string // DIR/ssh_host_ed25519_key
	HostKey     string // "ssh-ed25519 AAAA..."
}

// StartSSHD writes a configuration with a new host key and a free
// 127.0.0.1 port and starts sshd on it, trying another port when the
// chosen one is taken meanwhile.
func StartSSHD(t testing.TB, o SSHDOptions) *SSHD {
	t.Helper()
	if o.Bin == "" {
		o.Bin = SSHDPath
	}
	if o.Env == nil {
		o.Env = BaseEnv()
	}
	s := &SSHD{Dir: o.Dir}
	if s.Dir == "" {
		s.Dir = t.TempDir()
	}
	s.Config = filepath.Join(s.Dir, "sshd_config")
	s.HostKeyPath = filepath.Join(s.Dir, "ssh_host_ed25519_key")
	s.HostKey = AuthorizedKey(t, WriteEd25519Key(t, s.HostKeyPath, ""))
	if o.PublishHostKey {
		WriteFile(t, s.HostKeyPath+".pub", []byte(s.HostKey+" root@test\n"), 0o644)
	}
	penalties := o.NoPenalties && SSHDPenalties(o.Bin)
	for attempt := 0; ; attempt++ {
		s.Port = FreePort(t)
		var lines []string
		if o.Comment != "" {
			lines = append(lines, o.Comment)
		}
		lines = append(lines,
			"Port "+strconv.Itoa(s.Port),
			"ListenAddress 127.0.0.1",
			"HostKey "+s.HostKeyPath,
			"PidFile "+filepath.Join(s.Dir, "sshd.pid"),
			"UsePAM no",
			"PubkeyAuthentication yes",
			"PasswordAuthentication no",
			"KbdInteractiveAuthentication no",
			"LogLevel VERBOSE",
		)
		if penalties {
			lines = append(lines, "PerSourcePenalties no") // refused logins are the point
		}
		lines = append(lines, o.Lines...)
		WriteFile(t, s.Config, []byte(strings.Join(lines, "\n")+"\n"), 0o644)
		if o.OnPort != nil {
			o.OnPort(s)
		}
		s.Process = Spawn(t, "sshd", o.Env, o.Bin, "-D", "-e", "-f", s.Config)
		if s.WaitListening(t, 1) {
			return s
		}
		if attempt == 3 {
			t.Fatalf("sshd found no free port\n%s", s.Output)
		}
	}
}

// WaitListening waits until sshd has said it listens n times (once more
// after each reload); false if the port was taken.
func (s *SSHD) WaitListening(t testing.TB, n int) bool {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for strings.Count(s.Output.String(), "Server listening on") < n {
		if s.Exited() {
			if strings.Contains(s.Output.String(), "Address already in use") {
				return false
			}
			t.Fatalf("sshd exited (%v)\n%s", s.Err(), s.Output)
		}
		if time.Now().After(deadline) {
			t.Fatalf("sshd not listening after 20s\n%s", s.Output)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

// PinHostKey writes a known_hosts file that pins the sshd's host key for
// [127.0.0.1]:PORT.
func (s *SSHD) PinHostKey(t testing.TB, path string) {
	t.Helper()
	WriteFile(t, path, []byte(fmt.Sprintf("[127.0.0.1]:%d %s\n", s.Port, s.HostKey)), 0o644)
}

// SetUpSSHD prepares a suite for private sshds whose AuthorizedKeysCommand
// is kaginashi-agent: a safe directory (SafeDir(prefix)) holding a
// root-owned build of the agent, and /run/sshd. The caller removes safe
// when the suite ends.
func SetUpSSHD(prefix string) (safe, agent string, err error) {
	if safe, err = SafeDir(prefix); err != nil {
		return "", "", err
	}
	if agent, err = InstallAgent(safe); err == nil {
		err = PrepareSSHD()
	}
	if err != nil {
		os.RemoveAll(safe)
		return "", "", err
	}
	return safe, agent, nil
}
