package devenv

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/kaginashi/kaginashi/internal/sshdsetup"
)

// sshdPlan is how the private sshd asks the agent for keys.
type sshdPlan struct {
	sshd    string
	version [2]int
	// command is AuthorizedKeysCommand's program and arguments before
	// --data-dir DIR %u %f.
	command []string
	user    string // AuthorizedKeysCommandUser
}

// prepareSSHD finds sshd, decides how it runs the agent, and writes its
// host key and configuration into DIR/sshd.
func (e *env) prepareSSHD(ctx context.Context) error {
	sshd, err := sshdsetup.FindSSHD(e.o.SSHD)
	if err != nil {
		return fmt.Errorf("%w (Debian, Ubuntu: apt-get install openssh-server; or run make run, which installs it)", err)
	}
	p := sshdPlan{sshd: sshd}
	p.version = sshdVersion(ctx, sshd)
	if os.Geteuid() == 0 {
		if err := e.planRoot(&p); err != nil {
			return err
		}
	} else if err := e.planUser(&p); err != nil {
		return err
	}
	if err := ensureHostKey(filepath.Join(e.dir, "sshd", "ssh_host_ed25519_key")); err != nil {
		return fmt.Errorf("sshd host key: %w", err)
	}
	cfg := sshdConfig(e.dir, e.info.SSHPort, p)
	if err := writeFileAtomic(e.info.SSHDConfig, []byte(cfg), 0o600); err != nil {
		return err
	}
	if err := sshdsetup.Validate(ctx, sshdsetup.Options{ConfigPath: e.info.SSHDConfig, SSHD: sshd}); err != nil {
		return fmt.Errorf("sshd rejects the configuration kaginashi dev wrote (%s): %w", e.info.SSHDConfig, err)
	}
	e.sshd = p
	return nil
}

// planRoot: sshd runs as root and starts the AuthorizedKeysCommand as an
// unprivileged user; sshd accepts the command only from a root-owned path
// closed to group and others all the way up.
func (e *env) planRoot(p *sshdPlan) error {
	// Its privilege separation directory, which only the system service
	// creates.
	if _, err := os.Stat("/run/sshd"); errors.Is(err, os.ErrNotExist) {
		if err := os.Mkdir("/run/sshd", 0o755); err != nil {
			return fmt.Errorf("sshd needs /run/sshd: %w", err)
		}
		e.addUndo("created /run/sshd (sshd's privilege separation directory)", func() error { return os.Remove("/run/sshd") })
	}
	bin, err := e.safeAgentCopy()
	if err != nil {
		return err
	}
	p.command = []string{bin, "authorized-keys"}
	// The least privilege that works: nobody, when it can reach the
	// agent's keys/ (every directory above DIR searchable by others);
	// else root, the only user that surely can.
	p.user = "root"
	if _, err := user.Lookup("nobody"); err == nil && othersCanSearch(e.dir) {
		p.user = "nobody"
	} else {
		e.log.Warn("sshd runs the AuthorizedKeysCommand as root: user nobody cannot reach the data dir (a directory above it is closed to others)", "dir", e.dir)
	}
	return nil
}

// safeAgentCopy returns an agent binary sshd accepts: the one next to
// kaginashi if its path qualifies, else a copy in DIR/bin if DIR does,
// else a copy in /run/kaginashi-dev-HASH, removed on exit.
func (e *env) safeAgentCopy() (string, error) {
	if sshdSafe(e.o.AgentBinary) {
		return e.o.AgentBinary, nil
	}
	inDir := filepath.Join(e.dir, "bin")
	if sshdsetup.DirSafe(e.dir) {
		if err := sshdsetup.InstallCopy(e.o.AgentBinary, filepath.Join(inDir, "kaginashi-agent")); err != nil {
			return "", err
		}
		return filepath.Join(inDir, "kaginashi-agent"), nil
	}
	run := "/run/kaginashi-dev-" + hashOf(e.dir)
	if !sshdsetup.DirSafe("/run") {
		return "", fmt.Errorf("sshd would refuse the agent binary as AuthorizedKeysCommand at %s, in %s and in /run (each must be root-owned and closed to group and others up to /): "+
			"choose a --data-dir under such a directory (e.g. /var/lib/kaginashi-dev)", e.o.AgentBinary, e.dir)
	}
	_ = os.RemoveAll(run) // a crashed earlier run's
	if err := os.Mkdir(run, 0o755); err != nil {
		return "", err
	}
	e.addUndo("created "+run+" (a root-owned copy of kaginashi-agent for sshd)", func() error { return os.RemoveAll(run) })
	if err := sshdsetup.InstallCopy(e.o.AgentBinary, filepath.Join(run, "kaginashi-agent")); err != nil {
		return "", err
	}
	return filepath.Join(run, "kaginashi-agent"), nil
}

// planUser: sshd runs as this user, who is the only one it can log in, and
// can run the AuthorizedKeysCommand only as itself. sshd still demands a
// root-owned command (it checks the program, not its arguments), which a
// normal user cannot make: /usr/bin/env is one, and it runs the agent
// binary. That check protects root's sshd from a binary others could
// replace; here the binary is the user's own and so is every account
// sshd can log in.
func (e *env) planUser(p *sshdPlan) error {
	me, err := user.Current()
	if err != nil {
		return err
	}
	env := "/usr/bin/env"
	if _, err := sshdsetup.CheckCommandPath(env); err != nil {
		return fmt.Errorf("as a normal user, kaginashi dev runs the agent for sshd through %s, which sshd refuses here (%v): run kaginashi dev as root", env, err)
	}
	p.command = []string{env, e.o.AgentBinary, "authorized-keys"}
	p.user = me.Username
	return nil
}

// othersCanSearch says whether a user who is neither owner nor in the
// group can reach dir: every directory from / to dir has o+x.
func othersCanSearch(dir string) bool {
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil || fi.Mode().Perm()&0o001 == 0 {
			return false
		}
		if d == "/" {
			return true
		}
	}
}

var versionRE = regexp.MustCompile(`OpenSSH_([0-9]+)\.([0-9]+)`)

func sshdVersion(ctx context.Context, sshd string) [2]int {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	out, _ := exec.CommandContext(ctx, sshd, "-V").CombinedOutput()
	m := versionRE.FindSubmatch(out)
	if m == nil {
		return [2]int{}
	}
	a, _ := strconv.Atoi(string(m[1]))
	b, _ := strconv.Atoi(string(m[2]))
	return [2]int{a, b}
}

func atLeast(v [2]int, major, minor int) bool {
	return v[0] > major || (v[0] == major && v[1] >= minor)
}

// sshdConfig is the private sshd's whole configuration: nothing of the
// machine's /etc/ssh is read. Keys only from kaginashi; no passwords.
func sshdConfig(dir string, port int, p sshdPlan) string {
	sd := filepath.Join(dir, "sshd")
	lines := []string{
		"# kaginashi dev's private sshd; rewritten on every start of kaginashi dev.",
		"Port " + strconv.Itoa(port),
		"ListenAddress 127.0.0.1",
		"HostKey " + filepath.Join(sd, "ssh_host_ed25519_key"),
		"PidFile " + filepath.Join(sd, "sshd.pid"),
		// No PAM: its session modules (pam_loginuid) fail in containers,
		// and keys are the only way in anyway.
		"UsePAM no",
		"PubkeyAuthentication yes",
		"AuthorizedKeysFile none",
		"AuthorizedKeysCommand " + strings.Join(p.command, " ") + " --data-dir " + filepath.Join(dir, "agent") + " %u %f",
		"AuthorizedKeysCommandUser " + p.user,
		"PasswordAuthentication no",
		"KbdInteractiveAuthentication no",
		"PermitRootLogin prohibit-password",
		"Subsystem sftp internal-sftp",
		"LogLevel VERBOSE",
	}
	if atLeast(p.version, 9, 8) {
		// A developer's refused attempts should not lock them out.
		lines = append(lines, "PerSourcePenalties no")
	}
	return strings.Join(lines, "\n") + "\n"
}

// ensureHostKey makes sshd's Ed25519 host key once; later runs reuse it,
// so the host key pinned by clients stays the same.
func ensureHostKey(path string) error {
	if _, err := os.Stat(path); err == nil {
		if _, err := os.Stat(path + ".pub"); err == nil {
			return nil
		}
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	block, err := ssh.MarshalPrivateKey(priv, "kaginashi dev")
	if err != nil {
		return err
	}
	sp, err := ssh.NewPublicKey(pub)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(path, pem.EncodeToMemory(block), 0o600); err != nil {
		return err
	}
	line := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sp))) + " kaginashi-dev\n"
	return writeFileAtomic(path+".pub", []byte(line), 0o644)
}

// startSSHD starts sshd in the foreground (-D, logging to its log with -e)
// and waits until it answers with an SSH banner.
func (e *env) startSSHD(ctx context.Context, cancel context.CancelCauseFunc) error {
	c, err := e.start(ctx, cancel, "sshd", true, e.sshd.sshd, "-D", "-e", "-f", e.info.SSHDConfig)
	if err != nil {
		return err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(e.info.SSHPort))
	err = waitFor(ctx, 15*time.Second, func() (bool, error) {
		if c.exited() {
			return false, fmt.Errorf("sshd exited (%v); the end of its log (%s):\n%s", c.waitErr, c.logPath, tail(c.logPath, 15))
		}
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return false, nil
		}
		defer conn.Close()
		_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
		line, _ := bufio.NewReader(conn).ReadString('\n')
		return strings.HasPrefix(line, "SSH-2.0-"), nil
	})
	if err != nil {
		return fmt.Errorf("sshd on %s: %w", addr, err)
	}
	e.log.Info("sshd running", "addr", addr, "config", e.info.SSHDConfig, "akcUser", e.sshd.user, "log", c.logPath)
	return nil
}
