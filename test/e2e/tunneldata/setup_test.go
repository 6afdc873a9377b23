package tunneldata

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"golang.org/x/crypto/ssh"

	"github.com/kaginashi/kaginashi/internal/agent"
	"github.com/kaginashi/kaginashi/internal/client"
	"github.com/kaginashi/kaginashi/test/e2e/harness"
)

// raceBuilt: the binaries were built with -race (KAGINASHI_E2E_RACE=1),
// several times slower.
var raceBuilt = os.Getenv("KAGINASHI_E2E_RACE") == "1"

// bound stretches a time limit for race-built binaries.
func bound(d time.Duration) time.Duration {
	if raceBuilt {
		return 4 * d
	}
	return d
}

func baseEnv() []string { return []string{"PATH=" + os.Getenv("PATH"), "LANG=C", "TZ=UTC"} }

// --- processes -------------------------------------------------------------

// process is a child process whose output the test reads.
type process struct {
	name    string
	cmd     *exec.Cmd
	output  *harness.SyncBuffer
	done    chan struct{}
	waitErr error
}

func spawn(t testing.TB, name string, env []string, bin string, args ...string) *process {
	t.Helper()
	p := &process{name: name, cmd: exec.Command(bin, args...), output: &harness.SyncBuffer{}, done: make(chan struct{})}
	p.cmd.Env = env
	p.cmd.Stdout, p.cmd.Stderr = p.output, p.output
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	go func() {
		p.waitErr = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-p.done:
			case <-time.After(10 * time.Second):
				p.cmd.Process.Kill()
				<-p.done
			}
		}
		if strings.Contains(p.output.String(), "WARNING: DATA RACE") {
			t.Errorf("%s: data race\n%s", name, p.output)
		}
	})
	return p
}

func (p *process) waitOutput(t testing.TB, want string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !strings.Contains(p.output.String(), want) {
		select {
		case <-p.done:
			t.Fatalf("%s exited (%v) before saying %q\noutput:\n%s", p.name, p.waitErr, want, p.output)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not say %q within %v\noutput:\n%s", p.name, want, timeout, p.output)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// rssKiB is a process's resident memory (VmRSS) in KiB.
func rssKiB(t testing.TB, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return n
		}
	}
	t.Fatalf("no VmRSS for pid %d", pid)
	return 0
}

// --- a server and its agent -------------------------------------------------------

// site is a server with one enrolled agent (one instance) that allows
// ports, and what clients need to reach it.
type site struct {
	*harness.Server
	auditLog   string
	instance   string
	privateIP  string
	endpointID string
	agent      *process
}

// startSite starts a server (with extra flags) and an agent allowing ports.
func startSite(t *testing.T, ports []int, serverArgs ...string) *site {
	t.Helper()
	dir := t.TempDir()
	auditLog := filepath.Join(dir, "audit.jsonl")
	s := harness.StartServer(t, "sqlite", append([]string{"--rate-limit=-1", "--audit-log", auditLog}, serverArgs...)...)
	st := &site{Server: s, auditLog: auditLog}
	tok := joinToken(t, s)
	dataDir := filepath.Join(dir, "agent")
	args := []string{"run", "--server", s.URL(), "--data-dir", dataDir, "--ca-file", s.CAPath(), "--join-token", tok}
	for _, p := range ports {
		args = append(args, "--allow-port", strconv.Itoa(p))
	}
	st.agent = spawn(t, "agent", append(baseEnv(), "HOME="+dir), world.agent, args...)
	st.agent.waitOutput(t, `msg="connected to the server"`, 30*time.Second)
	st.instance = agentInstance(t, dataDir)
	ctx := context.Background()
	ec2c := s.EC2(s.Root)
	var ip string
	out := harness.Must(ec2c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{st.instance}}))(t)
	for _, r := range out.Reservations {
		for _, in := range r.Instances {
			ip = aws.ToString(in.PrivateIpAddress)
		}
	}
	st.privateIP = ip
	eps := harness.Must(ec2c.DescribeInstanceConnectEndpoints(ctx, &ec2.DescribeInstanceConnectEndpointsInput{}))(t)
	if len(eps.InstanceConnectEndpoints) != 1 {
		t.Fatalf("DescribeInstanceConnectEndpoints: %d endpoints, want 1", len(eps.InstanceConnectEndpoints))
	}
	st.endpointID = aws.ToString(eps.InstanceConnectEndpoints[0].InstanceConnectEndpointId)
	return st
}

func agentInstance(t testing.TB, dataDir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dataDir, "agent.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg agent.Config
	if err := json.Unmarshal(b, &cfg); err != nil || !strings.HasPrefix(cfg.InstanceID, "i-") {
		t.Fatalf("agent.json: %v %s", err, b)
	}
	return cfg.InstanceID
}

// cliEnv is the environment of kaginashi client commands against s with
// its root credentials, as an administrator sets it up.
func (s *site) cliEnv(t testing.TB) []string {
	return append(baseEnv(), "HOME="+t.TempDir(),
		"AWS_ENDPOINT_URL="+s.URL(), "AWS_CA_BUNDLE="+s.CAPath(), "AWS_REGION="+s.Region, "AWS_CONFIG_FILE=/dev/null",
		"AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(s.Cfg.DataDir, "root-credentials"), "AWS_PROFILE=kaginashi-root")
}

func joinToken(t testing.TB, s *harness.Server) string {
	t.Helper()
	cmd := exec.Command(harness.Kaginashi, "agent-token", "create", "--output", "json", "--max-uses", "1", "--ttl", "10m")
	cmd.Env = append(baseEnv(), "HOME="+t.TempDir(),
		"AWS_ENDPOINT_URL="+s.URL(), "AWS_CA_BUNDLE="+s.CAPath(), "AWS_REGION="+s.Region, "AWS_CONFIG_FILE=/dev/null",
		"AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(s.Cfg.DataDir, "root-credentials"), "AWS_PROFILE=kaginashi-root")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kaginashi agent-token create: %v\n%s", err, stderr.String())
	}
	var tok struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal(out, &tok); err != nil || tok.Token == "" {
		t.Fatalf("agent-token create: %v\n%s", err, out)
	}
	return tok.Token
}

// params says how to reach port of the site's instance, for
// client.DialTunnel.
func (s *site) params(port int) client.TunnelParams {
	return client.TunnelParams{Endpoint: s.URL(), EndpointID: s.endpointID, InstanceID: s.instance, PrivateIP: s.privateIP, RemotePort: port}
}

// dial opens a tunnel in-process with creds (root when none are given).
func (s *site) dial(t testing.TB, p client.TunnelParams, creds ...harness.Creds) (net.Conn, error) {
	t.Helper()
	c := s.Root
	if len(creds) > 0 {
		c = creds[0]
	}
	cfg, _ := s.Config(c)
	conn, err := client.DialTunnel(context.Background(), cfg, p)
	if err == nil {
		t.Cleanup(func() { conn.Close() })
	}
	return conn, err
}

// events reads the audit log's events named name.
func (s *site) events(t testing.TB, name string) []map[string]any {
	t.Helper()
	f, err := os.Open(s.auditLog)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var ev map[string]any
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("audit log line: %v: %s", err, sc.Bytes())
		}
		if ev["eventName"] == name {
			out = append(out, ev)
		}
	}
	return out
}

// --- services on the "host" ---------------------------------------------------------

// service is a TCP listener of the test process that agents allow.
type service struct {
	ln   net.Listener
	port int
	// conns receives each accepted connection unless handle is set.
	conns  chan net.Conn
	handle func(net.Conn)
}

func listen(t testing.TB, handle func(net.Conn)) *service {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &service{ln: ln, port: ln.Addr().(*net.TCPAddr).Port, conns: make(chan net.Conn, 64), handle: handle}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if s.handle != nil {
				go s.handle(c)
			} else {
				s.conns <- c
			}
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return s
}

// accept returns the next connection of a manual service.
func (s *service) accept(t testing.TB) net.Conn {
	t.Helper()
	select {
	case c := <-s.conns:
		t.Cleanup(func() { c.Close() })
		return c
	case <-time.After(10 * time.Second):
		t.Fatal("no connection reached the service through the tunnel")
		return nil
	}
}

func echo(c net.Conn) {
	defer c.Close()
	_, _ = io.Copy(c, c)
}

// --- sshd -------------------------------------------------------------------------

// sshdProc is a private sshd on a loopback port that lets root in with one
// key (a static authorized_keys: the key path is sshlogin's subject, the
// data path is this package's).
type sshdProc struct {
	*process
	port       int
	key        string // private key file for ssh -i
	knownHosts string
}

func startSSHD(t testing.TB) *sshdProc {
	t.Helper()
	dir := t.TempDir()
	writeKey := func(name string) ed25519.PublicKey {
		pub, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		block, err := ssh.MarshalPrivateKey(priv, "")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
		return pub
	}
	hostPub := writeKey("ssh_host_ed25519_key")
	userPub := writeKey("id_ed25519")
	if err := os.WriteFile(filepath.Join(dir, "authorized_keys"), []byte(harness.AuthorizedKey(t, userPub)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := &sshdProc{key: filepath.Join(dir, "id_ed25519"), knownHosts: filepath.Join(dir, "known_hosts")}
	// The host key is pinned under the alias the tunnel's ssh uses.
	if err := os.WriteFile(s.knownHosts, []byte("tunnel-host "+harness.AuthorizedKey(t, hostPub)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for attempt := 0; ; attempt++ {
		s.port = harness.FreePort(t)
		cfg := strings.Join([]string{
			"Port " + strconv.Itoa(s.port),
			"ListenAddress 127.0.0.1",
			"HostKey " + filepath.Join(dir, "ssh_host_ed25519_key"),
			"PidFile " + filepath.Join(dir, "sshd.pid"),
			"UsePAM no",
			"AuthorizedKeysFile " + filepath.Join(dir, "authorized_keys"),
			"StrictModes no", // the test's temporary directory is under /tmp
			"PubkeyAuthentication yes",
			"PasswordAuthentication no",
			"KbdInteractiveAuthentication no",
			"PermitRootLogin prohibit-password",
			"LogLevel VERBOSE",
		}, "\n") + "\n"
		if err := os.WriteFile(filepath.Join(dir, "sshd_config"), []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
		s.process = spawn(t, "sshd", baseEnv(), world.sshd, "-D", "-e", "-f", filepath.Join(dir, "sshd_config"))
		if s.waitListening(t) {
			return s
		}
		if attempt == 3 {
			t.Fatalf("sshd found no free port\n%s", s.output)
		}
	}
}

// waitListening waits until sshd listens; false if its port was taken.
func (s *sshdProc) waitListening(t testing.TB) bool {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(s.output.String(), "Server listening on") {
		select {
		case <-s.done:
			if strings.Contains(s.output.String(), "Address already in use") {
				return false
			}
			t.Fatalf("sshd exited (%v)\n%s", s.waitErr, s.output)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("sshd not listening after 20s\n%s", s.output)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

// sshCommand is `ssh root@tunnel-host COMMAND` through `kaginashi
// open-tunnel` as the ProxyCommand, nothing from this machine's ssh
// configuration.
func (s *sshdProc) sshCommand(ctx context.Context, t testing.TB, st *site, command string) *exec.Cmd {
	proxy := fmt.Sprintf("%s open-tunnel --instance-id %s --remote-port %d", harness.Kaginashi, st.instance, s.port)
	cmd := exec.CommandContext(ctx, world.ssh, "-F", "/dev/null",
		"-o", "BatchMode=yes",
		"-o", "StrictHostKeyChecking=yes",
		"-o", "UserKnownHostsFile="+s.knownHosts,
		"-o", "GlobalKnownHostsFile=/dev/null",
		"-o", "IdentitiesOnly=yes",
		"-o", "IdentityAgent=none",
		"-o", "ConnectTimeout=20",
		"-o", "LogLevel=ERROR",
		"-o", "ProxyCommand="+proxy,
		"-i", s.key,
		"root@tunnel-host", command)
	cmd.Env = st.cliEnv(t)
	return cmd
}
