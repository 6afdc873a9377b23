package tunneldata

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/kaginashi/kaginashi/internal/client"
	"github.com/kaginashi/kaginashi/test/e2e/harness"
)

// bound stretches a time limit for race-built binaries.
func bound(d time.Duration) time.Duration { return harness.Bound(d) }

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
	agent      *harness.Process
}

// startSite starts a server (with extra flags) and an agent allowing ports.
func startSite(t *testing.T, ports []int, serverArgs ...string) *site {
	t.Helper()
	dir := t.TempDir()
	auditLog := filepath.Join(dir, "audit.jsonl")
	s := harness.StartServer(t, "sqlite", append([]string{"--rate-limit=-1", "--audit-log", auditLog}, serverArgs...)...)
	st := &site{Server: s, auditLog: auditLog}
	tok := s.JoinToken(t, 1)
	dataDir := filepath.Join(dir, "agent")
	args := s.AgentArgs(dataDir, "--join-token", tok)
	for _, p := range ports {
		args = append(args, "--allow-port", strconv.Itoa(p))
	}
	st.agent = harness.Spawn(t, "agent", append(harness.BaseEnv(), "HOME="+dir), world.agent, args...)
	st.agent.WaitOutput(t, harness.AgentConnected, 1, 30*time.Second)
	st.instance = harness.InstanceID(t, dataDir)
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

// cliEnv is the environment of kaginashi client commands against s with
// its root credentials, as an administrator sets it up.
func (s *site) cliEnv(t testing.TB) []string { return s.AdminEnv(t) }

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
	return harness.AuditEvents(t, s.auditLog, name)
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
	*harness.SSHD
	key        string // private key file for ssh -i
	knownHosts string
}

func startSSHD(t testing.TB) *sshdProc {
	t.Helper()
	dir := t.TempDir()
	userPub := harness.WriteEd25519Key(t, filepath.Join(dir, "id_ed25519"), "")
	if err := os.WriteFile(filepath.Join(dir, "authorized_keys"), []byte(harness.AuthorizedKey(t, userPub)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := &sshdProc{key: filepath.Join(dir, "id_ed25519"), knownHosts: filepath.Join(dir, "known_hosts")}
	s.SSHD = harness.StartSSHD(t, harness.SSHDOptions{Bin: world.sshd, Dir: dir, Lines: []string{
		"AuthorizedKeysFile " + filepath.Join(dir, "authorized_keys"),
		"StrictModes no", // the test's temporary directory is under /tmp
		"PermitRootLogin prohibit-password",
	}})
	// The host key is pinned under the alias the tunnel's ssh uses.
	if err := os.WriteFile(s.knownHosts, []byte("tunnel-host "+s.HostKey+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return s
}

// sshCommand is `ssh root@tunnel-host COMMAND` through `kaginashi
// open-tunnel` as the ProxyCommand, nothing from this machine's ssh
// configuration.
func (s *sshdProc) sshCommand(ctx context.Context, t testing.TB, st *site, command string) *exec.Cmd {
	proxy := fmt.Sprintf("%s open-tunnel --instance-id %s --remote-port %d", harness.Kaginashi, st.instance, s.Port)
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
