package replicas

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	eic "github.com/aws/aws-sdk-go-v2/service/ec2instanceconnect"
	eictypes "github.com/aws/aws-sdk-go-v2/service/ec2instanceconnect/types"

	"github.com/kaginashi/kaginashi/internal/store/postgres/pgtest"
	"github.com/kaginashi/kaginashi/test/e2e/harness"
)

var world struct {
	skip  string
	safe  string // sshd-safe directory with the agent binary
	agent string
	user  string
}

const (
	safePrefix = "kaginashi-replicas-"
	userPrefix = "kgr-"
	userGECOS  = "kaginashi replicas e2e test user"
	region     = "eu-west-1"
	account    = "210987654321"
)

func TestMain(m *testing.M) {
	if os.Getenv("KAGINASHI_SKIP_SSHD") == "1" {
		world.skip = "KAGINASHI_SKIP_SSHD=1"
	} else if os.Geteuid() != 0 {
		world.skip = "the replica tests run as root: sshd, and the local user they add, need it"
	}
	if _, err := os.Stat(harness.SSHDPath); err != nil && world.skip == "" {
		fmt.Fprintln(os.Stderr, "replicas: OpenSSH's sshd is not installed: run scripts/deps.sh test, or set KAGINASHI_SKIP_SSHD=1")
		os.Exit(2)
	}
	// pgtest.Main exits the process: directories are reaped by later runs.
	dir, err := harness.TempDir(os.TempDir(), "kaginashi-replicas-bin-")
	if err == nil {
		err = harness.Build(dir, "./cmd/kaginashi")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "replicas:", err)
		os.Exit(2)
	}
	harness.Kaginashi = filepath.Join(dir, "kaginashi")
	if world.skip == "" {
		harness.ReapStale(os.TempDir(), safePrefix)
		if world.safe, world.agent, err = harness.SetUpSSHD(safePrefix); err != nil {
			fmt.Fprintln(os.Stderr, "replicas:", err)
			os.Exit(2)
		}
		for _, u := range harness.StaleUsers(userPrefix, userGECOS) {
			_ = exec.Command("userdel", u).Run()
		}
		world.user = userPrefix + strconv.Itoa(os.Getpid())
		if err := harness.AddUser(world.user, "/", userGECOS); err != nil {
			fmt.Fprintln(os.Stderr, "replicas:", err)
			os.Exit(2)
		}
	}
	pgtest.Main(m) // exits; the user and the safe directory go with cleanup below
}

// cleanupWorld removes the local user and the safe directory (pgtest.Main
// exits, so the last test does it).
func cleanupWorld(t *testing.T) {
	t.Cleanup(func() {
		for range 50 {
			if exec.Command("userdel", world.user).Run() == nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		os.RemoveAll(world.safe)
	})
}

// switchProxy is a tiny TCP front for the agent: it forwards each new
// connection to the current target, or drops it when there is none (the
// test decides when the agent may reach the second replica).
type switchProxy struct {
	ln     net.Listener
	target atomic.Value // string
	mu     sync.Mutex
	conns  []net.Conn
}

func newSwitchProxy(t *testing.T) *switchProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &switchProxy{ln: ln}
	p.target.Store("")
	t.Cleanup(func() { ln.Close(); p.dropAll() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.serve(c)
		}
	}()
	return p
}

func (p *switchProxy) port() int { return p.ln.Addr().(*net.TCPAddr).Port }

func (p *switchProxy) set(addr string) { p.target.Store(addr) }

func (p *switchProxy) serve(c net.Conn) {
	target := p.target.Load().(string)
	if target == "" {
		c.Close()
		return
	}
	u, err := net.DialTimeout("tcp", target, 2*time.Second)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	p.conns = append(p.conns, c, u)
	p.mu.Unlock()
	go func() { _, _ = io.Copy(u, c); u.Close() }()
	_, _ = io.Copy(c, u)
	c.Close()
}

func (p *switchProxy) dropAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

func run(t *testing.T, env []string, bin string, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), harness.Bound(60*time.Second))
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = env
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return out.String(), errb.String(), 0
	case errors.As(err, &ee):
		return out.String(), errb.String(), ee.ExitCode()
	}
	t.Fatalf("%s %v: %v\n%s", bin, args, err, errb.String())
	return "", "", -1
}

func TestReplicas(t *testing.T) {
	if world.skip != "" {
		t.Skip(world.skip)
	}
	cleanupWorld(t)
	ctx := context.Background()
	pg := harness.StoreFor(t, "postgres")
	args := []string{"--region", region, "--account-id", account, "--rate-limit=-1"}

	// Replica A makes the deployment's secrets; B gets a copy of them.
	dirA := filepath.Join(t.TempDir(), "a")
	auditA := filepath.Join(t.TempDir(), "audit-a.jsonl")
	pa := harness.StartProc(t, harness.ServerConfig{DataDir: dirA, Store: pg, Args: append(args[:len(args):len(args)], "--audit-log", auditA)})
	a := harness.NewServer(t, pa, "postgres")
	dirB := filepath.Join(t.TempDir(), "b")
	if err := os.MkdirAll(dirB, 0o700); err != nil {
		t.Fatal(err)
	}
	harness.CopyDataFiles(t, dirA, dirB, "master.key", "tls", "root-credentials")
	pb := harness.StartProc(t, harness.ServerConfig{DataDir: dirB, Store: pg, Args: args})
	t.Cleanup(func() { pb.Stop(t) })
	b := harness.NewServer(t, pb, "postgres")
	for _, p := range []*harness.Proc{pa, pb} {
		if !strings.Contains(p.Stderr.String(), "routing between replicas") {
			t.Fatalf("replica on port %d does not route:\n%s", p.Port, harness.Tail(p.Stderr.String(), 20))
		}
	}

	// The agent reaches the servers through the proxy, at first only A.
	proxy := newSwitchProxy(t)
	proxy.set(fmt.Sprintf("127.0.0.1:%d", pa.Port))
	agentDir := harness.AgentDataDir(t, world.safe, "host")
	sshd := harness.StartSSHD(t, harness.SSHDOptions{
		Comment: "# a kaginashi replicas test sshd", PublishHostKey: true, NoPenalties: true,
		Lines: []string{
			"AuthorizedKeysFile none",
			"AuthorizedKeysCommand " + world.agent + " authorized-keys --data-dir " + agentDir + " %u %f",
			"AuthorizedKeysCommandUser nobody",
			"MaxAuthTries 1",
		},
	})
	knownHosts := filepath.Join(t.TempDir(), "known_hosts")
	sshd.PinHostKey(t, knownHosts)
	proxyURL := fmt.Sprintf("https://localhost:%d", proxy.port())
	agent := harness.Spawn(t, "agent", append(harness.BaseEnv(), "HOME=/"), world.agent,
		"run", "--server", proxyURL, "--data-dir", agentDir, "--ca-file", a.CAPath(), "--join-token", a.JoinToken(t, 1),
		"--sshd-config", sshd.Config, "--allow-port", strconv.Itoa(sshd.Port))
	agent.WaitOutput(t, harness.AgentConnected, 1, harness.Bound(30*time.Second))
	id := harness.InstanceID(t, agentDir)

	keyPath := filepath.Join(t.TempDir(), "id_ed25519")
	pubLine := harness.AuthorizedKey(t, harness.WriteEd25519Key(t, keyPath, ""))
	push := func(s *harness.Server) (time.Duration, error) {
		start := time.Now()
		_, err := s.EIC(s.Root, harness.AuditedAs("-")).SendSSHPublicKey(ctx, &eic.SendSSHPublicKeyInput{
			InstanceId: aws.String(id), InstanceOSUser: aws.String(world.user), SSHPublicKey: aws.String(pubLine)})
		return time.Since(start), err
	}
	login := func(t *testing.T) {
		t.Helper()
		out, errOut, code := run(t, append(harness.BaseEnv(), "HOME="+t.TempDir()), "ssh", "-F", "/dev/null",
			"-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes", "-o", "UserKnownHostsFile="+knownHosts,
			"-o", "GlobalKnownHostsFile=/dev/null", "-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none",
			"-o", "ConnectTimeout=10", "-o", "LogLevel=ERROR", "-i", keyPath, "-p", strconv.Itoa(sshd.Port),
			world.user+"@127.0.0.1", "echo ok")
		if code != 0 || out != "ok\n" {
			t.Fatalf("ssh after the push: exit %d, %q\n%s\nsshd:\n%s", code, out, errOut, harness.Tail(sshd.Output.String(), 20))
		}
	}

	t.Run("PushThroughB", func(t *testing.T) {
		if _, err := push(b); err != nil {
			t.Fatalf("SendSSHPublicKey through B (the agent is on A): %v\nA:\n%s\nB:\n%s", err,
				harness.Tail(pa.Stderr.String(), 20), harness.Tail(pb.Stderr.String(), 20))
		}
		login(t)
		// The holder audited the delivery as a peer event.
		evs := harness.AuditEvents(t, auditA, "PeerDeliver")
		if len(evs) != 1 || evs[0]["errorCode"] != nil {
			t.Fatalf("A's PeerDeliver events: %v; want one, successful", evs)
		}
	})

	t.Run("SSHThroughB", func(t *testing.T) {
		home := t.TempDir()
		if err := os.MkdirAll(filepath.Join(home, "tmp"), 0o700); err != nil {
			t.Fatal(err)
		}
		env := append(harness.BaseEnv(), "HOME="+home, "TMPDIR="+filepath.Join(home, "tmp"),
			"AWS_ENDPOINT_URL="+b.URL(), "AWS_CA_BUNDLE="+b.CAPath(), "AWS_REGION="+region,
			"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null",
			"AWS_ACCESS_KEY_ID="+b.Root.ID, "AWS_SECRET_ACCESS_KEY="+b.Root.Secret)
		out, errOut, code := run(t, env, harness.Kaginashi, "ssh", world.user+"@"+id, "--", "echo", "ok")
		if code != 0 || out != "ok\n" {
			t.Fatalf("kaginashi ssh through B: exit %d, %q\n%s\nA:\n%s\nB:\n%s", code, out, errOut,
				harness.Tail(pa.Stderr.String(), 20), harness.Tail(pb.Stderr.String(), 20))
		}
		// A spliced the tunnel for B and recorded it with its bytes.
		deadline := time.Now().Add(harness.Bound(5 * time.Second))
		for {
			evs := harness.AuditEvents(t, auditA, "PeerTunnel")
			if len(evs) == 1 {
				p, _ := evs[0]["requestParameters"].(map[string]any)
				if n, _ := p["bytesDown"].(float64); n <= 0 {
					t.Fatalf("PeerTunnel event %v: want bytes down", evs[0])
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("A's PeerTunnel events: %v; want one", evs)
			}
			time.Sleep(100 * time.Millisecond)
		}
	})

	t.Run("HolderDies", func(t *testing.T) {
		// A crashes: its session row stays behind, naming a dead peer.
		proxy.set("")
		pa.Cmd.Process.Kill()
		<-waitExit(pa)
		proxy.dropAll()
		for range 3 {
			d, err := push(b)
			var ue *eictypes.EC2InstanceUnavailableException
			if !errors.As(err, &ue) {
				t.Fatalf("push through B with A dead: %v; want EC2InstanceUnavailableException", err)
			}
			if d > 2*time.Second {
				t.Errorf("EC2InstanceUnavailableException after %v; want within 2 s", d)
			}
		}
		// The agent reconnects, now to B; pushes work again.
		proxy.set(fmt.Sprintf("127.0.0.1:%d", pb.Port))
		agent.WaitOutput(t, harness.AgentConnected, 2, harness.Bound(30*time.Second))
		deadline := time.Now().Add(harness.Bound(10 * time.Second))
		for {
			_, err := push(b)
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("push through B after the agent reconnected to it: %v\nB:\n%s", err, harness.Tail(pb.Stderr.String(), 20))
			}
			time.Sleep(200 * time.Millisecond)
		}
		login(t)
	})
}

func waitExit(p *harness.Proc) <-chan struct{} {
	ch := make(chan struct{})
	go func() {
		for !p.Exited() {
			time.Sleep(20 * time.Millisecond)
		}
		close(ch)
	}()
	return ch
}
