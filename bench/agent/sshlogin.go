package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2instanceconnect"
	"golang.org/x/crypto/ssh"

	"github.com/kaginashi/kaginashi/internal/syncbuf"
)

// sshdProc is a private sshd on a loopback port.
type sshdProc struct {
	cmd        *exec.Cmd
	out        *syncbuf.Buffer
	done       chan struct{}
	port       int
	knownHosts string
	dir        string
}

// startSSHD starts Debian's sshd on a free loopback port with its own host
// key and PidFile; it accepts the static key from an AuthorizedKeysFile
// and pushed keys through `kaginashi-agent authorized-keys`, run as
// nobody, as setup-sshd configures it.
func startSSHD(e *env, staticKey sshKey) (*sshdProc, error) {
	dir := filepath.Join(e.safe, "sshd")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil { // sshd's privilege separation directory
		return nil, err
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		return nil, err
	}
	hostKey := filepath.Join(dir, "ssh_host_ed25519_key")
	if err := os.WriteFile(hostKey, pem.EncodeToMemory(block), 0o600); err != nil {
		return nil, err
	}
	static := filepath.Join(dir, "authorized_keys_static")
	if err := os.WriteFile(static, []byte(staticKey.line+"\n"), 0o644); err != nil {
		return nil, err
	}
	pk, err := ssh.NewPublicKey(pub)
	if err != nil {
		return nil, err
	}
	s := &sshdProc{out: &syncbuf.Buffer{}, done: make(chan struct{}), dir: dir, knownHosts: filepath.Join(dir, "known_hosts")}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s.port = l.Addr().(*net.TCPAddr).Port
	l.Close()
	config := filepath.Join(dir, "sshd_config")
	cfg := strings.Join([]string{
		"# kaginashi bench/agent: a private sshd",
		"Port " + strconv.Itoa(s.port),
		"ListenAddress 127.0.0.1",
		"HostKey " + hostKey,
		"PidFile " + filepath.Join(dir, "sshd.pid"),
		"UsePAM no",
		"PubkeyAuthentication yes",
		"PasswordAuthentication no",
		"KbdInteractiveAuthentication no",
		"PermitRootLogin prohibit-password",
		"AuthorizedKeysFile " + static,
		"AuthorizedKeysCommand " + e.akc.Path + " authorized-keys --data-dir " + e.agent.dir + " %u %f",
		"AuthorizedKeysCommandUser nobody",
	}, "\n") + "\n"
	if err := os.WriteFile(config, []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(s.knownHosts, []byte(fmt.Sprintf("[127.0.0.1]:%d %s", s.port, ssh.MarshalAuthorizedKey(pk))), 0o644); err != nil {
		return nil, err
	}
	if b, err := exec.Command("/usr/sbin/sshd", "-t", "-f", config).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("sshd -t: %v\n%s", err, b)
	}
	s.cmd = exec.Command("/usr/sbin/sshd", "-D", "-e", "-f", config) // -D: ours to stop; -e: log to stderr
	s.cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C"}
	s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		_ = s.cmd.Wait()
		close(s.done)
	}()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(s.out.String(), "Server listening on") {
		select {
		case <-s.done:
			return nil, fmt.Errorf("sshd exited:\n%s", s.out)
		default:
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, fmt.Errorf("sshd not listening after 20s:\n%s", s.out)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return s, nil
}

func (s *sshdProc) stop() {
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

// ssh runs `ssh -i KEY root@127.0.0.1 true` with nothing else: no
// ssh-agent, no config file, the host key pinned.
func (s *sshdProc) ssh(home string, key sshKey) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ssh", "-F", "/dev/null",
		"-o", "BatchMode=yes",
		"-o", "StrictHostKeyChecking=yes",
		"-o", "UserKnownHostsFile="+s.knownHosts,
		"-o", "GlobalKnownHostsFile=/dev/null",
		"-o", "IdentitiesOnly=yes",
		"-o", "IdentityAgent=none",
		"-o", "PreferredAuthentications=publickey",
		"-o", "ConnectTimeout=10",
		"-o", "LogLevel=ERROR",
		"-i", key.path,
		"-p", strconv.Itoa(s.port),
		"root@127.0.0.1", "true")
	cmd.Env = []string{"PATH=/usr/bin:/bin", "LANG=C", "HOME=" + home}
	var errb bytes.Buffer
	cmd.Stderr = &errb
	t0 := time.Now()
	err := cmd.Run()
	d := time.Since(t0)
	if err != nil {
		return d, fmt.Errorf("ssh: %v: %s", err, errb.String())
	}
	return d, nil
}

// loginResult is part 3's outcome.
type loginResult struct {
	rounds            int
	static            []time.Duration // ssh -i static_key host true
	push, pushedSSH   []time.Duration // SendSSHPublicKey; then ssh -i pushed_key host true
	total             []time.Duration // push + ssh, per round
	other             float64         // other processes' CPU just before, cores
	sshVersion, sshdV string
	akc               string // the AuthorizedKeysCommand binary's name
}

// benchLogin times rounds of (a) ssh with a key in sshd's
// AuthorizedKeysFile and (b) SendSSHPublicKey of a fresh key, then ssh
// with it — the same sshd, the same user, interleaved, alternating which
// goes first.
func benchLogin(ctx context.Context, e *env, rounds int) (*loginResult, error) {
	keysDir := filepath.Join(e.work, "ssh-keys")
	home := filepath.Join(e.work, "ssh-home")
	for _, d := range []string{keysDir, home} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	static, err := newSSHKey(keysDir, "static")
	if err != nil {
		return nil, err
	}
	s, err := startSSHD(e, static)
	if err != nil {
		return nil, err
	}
	defer s.stop()
	res := &loginResult{rounds: rounds, akc: filepath.Base(e.akc.Path)}
	if b, err := exec.Command("ssh", "-V").CombinedOutput(); err == nil {
		res.sshVersion = strings.TrimSpace(string(b))
	}
	if b, _ := exec.Command("/usr/sbin/sshd", "-V").CombinedOutput(); len(b) > 0 {
		res.sshdV = strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0])
	}
	c := e.api.eic()
	const warmup = 3
	for i := -warmup; i < rounds; i++ {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		k, err := newSSHKey(keysDir, fmt.Sprintf("pushed-%d", i+warmup))
		if err != nil {
			return nil, err
		}
		var st, pu, ps time.Duration
		doStatic := func() error {
			d, err := s.ssh(home, static)
			st = d
			return err
		}
		doPushed := func() error {
			d, err := e.api.push(ctx, c, e.agent.id, "root", k.line)
			if err != nil {
				return fmt.Errorf("SendSSHPublicKey: %w", err)
			}
			pu = d
			d, err = s.ssh(home, k)
			ps = d
			return err
		}
		order := []func() error{doStatic, doPushed}
		if i%2 != 0 {
			order[0], order[1] = order[1], order[0]
		}
		for _, f := range order {
			if err := f(); err != nil {
				return nil, fmt.Errorf("round %d: %w\nsshd:\n%s", i, err, tailString(s.out.String(), 3000))
			}
		}
		if i < 0 {
			if i == -warmup {
				progress("  first rounds: static %s ms, push %s ms + ssh %s ms", ms(st), ms(pu), ms(ps))
			}
			continue
		}
		res.static = append(res.static, st)
		res.push = append(res.push, pu)
		res.pushedSSH = append(res.pushedSSH, ps)
		res.total = append(res.total, pu+ps)
	}
	return res, nil
}

func tailString(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// eicInput is a SendSSHPublicKey request.
func eicInput(instance, osUser, keyLine string) *ec2instanceconnect.SendSSHPublicKeyInput {
	return &ec2instanceconnect.SendSSHPublicKeyInput{
		InstanceId: aws.String(instance), InstanceOSUser: aws.String(osUser), SSHPublicKey: aws.String(keyLine),
	}
}
