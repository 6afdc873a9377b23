// Command tunnel benchmarks kaginashi's tunnels (issue #5 §4) in one run,
// each figure next to its baseline measured in the same run on the same
// machine:
//
//	(a) 1 GiB through `ssh HOST 'cat > /dev/null'`: directly to a private
//	    sshd; through the tunnel (`kaginashi open-tunnel` as the
//	    ProxyCommand: client → server → agent → sshd); and through OpenSSH's
//	    ProxyJump via a second local sshd. Goals: tunnel ≥ 0.85 × direct,
//	    tunnel ≥ 1.0 × ProxyJump.
//	(b) `kaginashi ssh root@ID -- true` (an ephemeral key pushed, then ssh
//	    through the tunnel) against `ssh -i KEY HOST true`. Goal ≤ 1.10.
//	(c) the round trip of 1-byte echoes through the tunnel against direct
//	    TCP to the same echo service (p50, p99): the latency a tunnel adds.
//
//	sudo go run ./bench/tunnel -o /tmp/tunnel.md
//	sudo go run ./bench/tunnel -parts b -logins 20 -alt-bin /tmp/old
//
// -parts picks the measurements (a, b, c; all by default). -alt-bin adds
// to (b) the `kaginashi ssh` of another build, interleaved with this
// one's on the same server, so two versions of the client are compared
// in one run on a noisy machine.
//
// Everything is real and local: `kaginashi server` (TLS, SQLite), an
// enrolled `kaginashi-agent` allowing the sshd's port, Debian's OpenSSH.
// It runs as root (sshd; the AuthorizedKeysCommand must live in a
// root-owned directory, here under /run). It waits for the machine to be
// quiet first and reports the CPU other processes used during each
// measurement; a measurement disturbed by more than 0.15 cores of others
// is taken again (up to -retries times).
package main

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2instanceconnect"
	"golang.org/x/crypto/ssh"

	"github.com/kaginashi/kaginashi/internal/client"
	"github.com/kaginashi/kaginashi/internal/syncbuf"
)

// Goals of issue #5 §4.
const (
	goalVsDirect = 0.85
	goalVsJump   = 1.0
	goalLogin    = 1.10
)

type config struct {
	out       string
	size      int64
	rounds    int
	logins    int
	echoes    int
	quietWait time.Duration
	retries   int
	keep      bool
	bin       string
	altBin    string
	env       []string
	parts     map[byte]bool
}

func main() {
	var c config
	var sizeMiB int
	flag.StringVar(&c.out, "o", "", "also write the Markdown report to this file")
	flag.IntVar(&sizeMiB, "size", 1024, "MiB per transfer")
	flag.IntVar(&c.rounds, "rounds", 3, "transfers per path (the median counts)")
	flag.IntVar(&c.logins, "logins", 15, "logins per variant in (b)")
	flag.IntVar(&c.echoes, "echoes", 3000, "1-byte round trips per path in (c)")
	flag.DurationVar(&c.quietWait, "quiet-wait", 120*time.Second, "wait at most this long for the machine to be quiet before measuring")
	flag.IntVar(&c.retries, "retries", 3, "measure again when other processes used more than 0.15 cores, at most this many times")
	flag.BoolVar(&c.keep, "keep", false, "keep the working directory (for debugging)")
	flag.StringVar(&c.bin, "bin", "", "use kaginashi and kaginashi-agent from this directory instead of building them (to measure another version)")
	flag.StringVar(&c.altBin, "alt-bin", "", "in (b), also time `kaginashi ssh` of the kaginashi in this directory, interleaved (to compare two clients in one run)")
	env := flag.String("env", "", "extra environment for the kaginashi processes (server, agent, client), comma-separated KEY=VALUE: GOMAXPROCS, GOGC, GODEBUG experiments")
	parts := flag.String("parts", "a,b,c", "measurements to make: a (throughput), b (logins), c (echo latency), comma-separated")
	flag.Parse()
	var err error
	if c.parts, err = parseParts(*parts); err != nil {
		fmt.Fprintln(os.Stderr, "bench/tunnel: -parts:", err)
		os.Exit(2)
	}
	c.size = int64(sizeMiB) << 20
	for _, kv := range strings.Split(*env, ",") {
		if kv = strings.TrimSpace(kv); kv != "" {
			if !strings.Contains(kv, "=") {
				fmt.Fprintf(os.Stderr, "bench/tunnel: -env: %q is not KEY=VALUE\n", kv)
				os.Exit(2)
			}
			c.env = append(c.env, kv)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	b := &bench{cfg: c}
	err = b.run(ctx)
	b.cleanup()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/tunnel:", err)
		os.Exit(1)
	}
}

// parseParts reads -parts: letters a, b, c separated by commas.
func parseParts(s string) (map[byte]bool, error) {
	out := map[byte]bool{}
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		switch f {
		case "a", "b", "c":
			out[f[0]] = true
		case "":
		default:
			return nil, fmt.Errorf("%q: want a, b or c", f)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no part: want some of a, b, c")
	}
	return out, nil
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench/tunnel: "+format+"\n", args...)
}

// bench is one run's world.
type bench struct {
	cfg   config
	dir   string // root-owned, 0755, under /run
	bin   string
	procs []*exec.Cmd

	kaginashi, agent string
	altKaginashi     string // -alt-bin's, or ""
	serverURL        string
	ca               string
	env              []string // AWS configuration for kaginashi's client
	instance         string
	targetPort       int
	jumpPort         int
	echoPort         int
	sshConfig        string
	key              string
	hasSSHCommand    bool
	server           *exec.Cmd
	agentProc        *exec.Cmd
	agentOut         *syncbuf.Buffer
	serverOut        *syncbuf.Buffer
}

func (b *bench) cleanup() {
	for i := len(b.procs) - 1; i >= 0; i-- {
		p := b.procs[i]
		if p.ProcessState == nil && p.Process != nil {
			_ = p.Process.Signal(syscall.SIGTERM)
			done := make(chan struct{})
			go func() { _ = p.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				_ = p.Process.Kill()
			}
		}
	}
	if b.dir != "" && !b.cfg.keep {
		os.RemoveAll(b.dir)
	}
}

func (b *bench) run(ctx context.Context) error {
	if os.Geteuid() != 0 {
		return errors.New("run as root: sshd, and the AuthorizedKeysCommand in a root-owned directory, need it")
	}
	for _, tool := range []string{"/usr/sbin/sshd", "ssh"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s is not installed (apt-get install openssh-server openssh-client)", tool)
		}
	}
	if err := b.setup(ctx); err != nil {
		return err
	}
	if err := waitQuiet(ctx, b.cfg.quietWait); err != nil {
		return err
	}
	rep := &report{cfg: b.cfg, started: time.Now(), sshCommand: b.hasSSHCommand}
	if b.cfg.parts['a'] {
		if err := b.throughput(ctx, rep); err != nil {
			return err
		}
	}
	if b.cfg.parts['b'] {
		if err := b.logins(ctx, rep); err != nil {
			return err
		}
	}
	if b.cfg.parts['c'] {
		if err := b.latency(ctx, rep); err != nil {
			return err
		}
	}
	md := rep.markdown()
	fmt.Print(md)
	if b.cfg.out != "" {
		if err := os.WriteFile(b.cfg.out, []byte(md), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// --- setup ---------------------------------------------------------------------------

func (b *bench) setup(ctx context.Context) error {
	var err error
	b.dir, err = os.MkdirTemp("/run", "kaginashi-bench-tunnel-")
	if err != nil {
		return err
	}
	if err := os.Chmod(b.dir, 0o755); err != nil {
		return err
	}
	b.bin = filepath.Join(b.dir, "bin")
	if err := os.Mkdir(b.bin, 0o755); err != nil {
		return err
	}
	if b.cfg.bin != "" {
		for _, name := range []string{"kaginashi", "kaginashi-agent"} {
			data, err := os.ReadFile(filepath.Join(b.cfg.bin, name))
			if err != nil {
				return err
			}
			if err := os.WriteFile(filepath.Join(b.bin, name), data, 0o755); err != nil {
				return err
			}
		}
	} else {
		logf("building kaginashi and kaginashi-agent…")
		root, err := moduleRoot()
		if err != nil {
			return err
		}
		for _, pkg := range []string{"./cmd/kaginashi", "./cmd/kaginashi-agent"} {
			cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", filepath.Join(b.bin, filepath.Base(pkg)), pkg)
			cmd.Dir = root
			if out, err := cmd.CombinedOutput(); err != nil {
				return fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
			}
		}
	}
	b.kaginashi, b.agent = filepath.Join(b.bin, "kaginashi"), filepath.Join(b.bin, "kaginashi-agent")
	if b.cfg.altBin != "" {
		data, err := os.ReadFile(filepath.Join(b.cfg.altBin, "kaginashi"))
		if err != nil {
			return fmt.Errorf("-alt-bin: %w", err)
		}
		b.altKaginashi = filepath.Join(b.bin, "kaginashi-alt")
		if err := os.WriteFile(b.altKaginashi, data, 0o755); err != nil {
			return err
		}
		if exec.Command(b.altKaginashi, "ssh", "--help").Run() != nil {
			return fmt.Errorf("-alt-bin: %s has no ssh command", b.cfg.altBin)
		}
	}
	if err := os.Chmod(b.agent, 0o755); err != nil {
		return err
	}
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		return err
	}
	b.hasSSHCommand = exec.Command(b.kaginashi, "ssh", "--help").Run() == nil

	// The server.
	port := freePort()
	srvDir := filepath.Join(b.dir, "server")
	b.serverOut = &syncbuf.Buffer{}
	b.server = b.start(ctx, b.serverOut, nil, b.kaginashi, "server", "--data-dir", srvDir, "--listen", "127.0.0.1:"+strconv.Itoa(port),
		"--rate-limit=-1", "--region", "us-east-1")
	b.serverURL = fmt.Sprintf("https://localhost:%d", port)
	b.ca = filepath.Join(srvDir, "tls", "ca.pem")
	if err := waitFor(ctx, "the server", 60*time.Second, b.serverOut, func() bool { return healthy(b.serverURL, b.ca) }); err != nil {
		return err
	}
	b.env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + b.dir, "LANG=C",
		"AWS_ENDPOINT_URL=" + b.serverURL, "AWS_CA_BUNDLE=" + b.ca, "AWS_REGION=us-east-1", "AWS_CONFIG_FILE=/dev/null",
		"AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(srvDir, "root-credentials"), "AWS_PROFILE=kaginashi-root"}
	b.env = append(b.env, b.cfg.env...) // reaches the client (ssh passes its environment to the ProxyCommand)

	// Keys: the user's (static, for direct, ProxyJump and ProxyCommand
	// logins), and a host key for each sshd.
	keys := filepath.Join(b.dir, "keys")
	if err := os.Mkdir(keys, 0o755); err != nil {
		return err
	}
	b.key = filepath.Join(keys, "id_ed25519")
	userPub, err := writeKey(b.key)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(keys, "authorized_keys"), []byte(userPub+"\n"), 0o644); err != nil {
		return err
	}

	// The echo service of (c), which the agent allows.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	}()
	b.echoPort = ln.Addr().(*net.TCPAddr).Port

	// The target sshd: the static key, and kaginashi's pushed keys through
	// the agent's AuthorizedKeysCommand.
	agentParent := filepath.Join(b.dir, "agent")
	if err := os.Mkdir(agentParent, 0o755); err != nil {
		return err
	}
	agentDir := filepath.Join(agentParent, "data")
	penalties := ""
	if sshdPenalties() {
		penalties = "PerSourcePenalties no\n"
	}
	var targetConfig string
	b.targetPort, targetConfig, err = b.startSSHD(ctx, "target", keys, penalties+
		"AuthorizedKeysCommand "+b.agent+" authorized-keys --data-dir "+agentDir+" %u %f\nAuthorizedKeysCommandUser nobody\n")
	if err != nil {
		return err
	}
	b.jumpPort, _, err = b.startSSHD(ctx, "jump", keys, penalties)
	if err != nil {
		return err
	}

	// The agent, enrolled with a join token.
	out, err := b.cli(ctx, "agent-token", "create", "--output", "json", "--max-uses", "1", "--ttl", "10m")
	if err != nil {
		return fmt.Errorf("agent-token create: %v\n%s", err, out)
	}
	var tok struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal(out, &tok); err != nil {
		return fmt.Errorf("agent-token create: %v: %s", err, out)
	}
	b.agentOut = &syncbuf.Buffer{}
	b.agentProc = b.start(ctx, b.agentOut, nil, b.agent, "run", "--server", b.serverURL, "--data-dir", agentDir, "--ca-file", b.ca,
		"--join-token", tok.Token, "--allow-port", strconv.Itoa(b.targetPort), "--allow-port", strconv.Itoa(b.echoPort),
		"--sshd-config", targetConfig)
	if err := waitFor(ctx, "the agent", 30*time.Second, b.agentOut, func() bool {
		return strings.Contains(b.agentOut.String(), `msg="connected to the server"`)
	}); err != nil {
		return err
	}
	var acfg struct {
		InstanceID string `json:"instanceId"`
	}
	raw, err := os.ReadFile(filepath.Join(agentDir, "agent.json"))
	if err == nil {
		err = json.Unmarshal(raw, &acfg)
	}
	if err != nil || acfg.InstanceID == "" {
		return fmt.Errorf("the agent's instance ID: %v %s", err, raw)
	}
	b.instance = acfg.InstanceID

	// ssh's configuration: one file, nothing from this machine's.
	b.sshConfig = filepath.Join(b.dir, "ssh_config")
	cfg := fmt.Sprintf(`Host *
  User root
  IdentitiesOnly yes
  IdentityAgent none
  BatchMode yes
  StrictHostKeyChecking no
  UserKnownHostsFile /dev/null
  GlobalKnownHostsFile /dev/null
  LogLevel ERROR
Host direct
  HostName 127.0.0.1
  Port %[2]d
  IdentityFile %[1]s
Host jump
  HostName 127.0.0.1
  Port %[3]d
  IdentityFile %[1]s
Host viajump
  HostName 127.0.0.1
  Port %[2]d
  IdentityFile %[1]s
  ProxyJump jump
Host viatunnel
  HostName %[4]s
  IdentityFile %[1]s
  ProxyCommand %[5]s open-tunnel --instance-id %[4]s --remote-port %[2]d
Host pushed
  HostName %[4]s
  ProxyCommand %[5]s open-tunnel --instance-id %[4]s --remote-port %[2]d
`, b.key, b.targetPort, b.jumpPort, b.instance, b.kaginashi)
	if err := os.WriteFile(b.sshConfig, []byte(cfg), 0o644); err != nil {
		return err
	}
	// Every path works before anything is measured.
	for _, host := range []string{"direct", "viajump", "viatunnel"} {
		if out, err := b.ssh(ctx, host, "echo ok"); err != nil || strings.TrimSpace(string(out)) != "ok" {
			return fmt.Errorf("ssh %s: %v\n%s\nserver:\n%s\nagent:\n%s", host, err, out, tail(b.serverOut.String(), 20), tail(b.agentOut.String(), 20))
		}
	}
	logf("server %s, instance %s, sshd on %d, jump sshd on %d, echo on %d", b.serverURL, b.instance, b.targetPort, b.jumpPort, b.echoPort)
	return nil
}

func (b *bench) startSSHD(ctx context.Context, name, keys, extra string) (int, string, error) {
	dir := filepath.Join(b.dir, name)
	if err := os.Mkdir(dir, 0o755); err != nil {
		return 0, "", err
	}
	if _, err := writeKey(filepath.Join(dir, "ssh_host_ed25519_key")); err != nil {
		return 0, "", err
	}
	for attempt := 0; attempt < 4; attempt++ {
		port := freePort()
		cfg := fmt.Sprintf(`Port %d
ListenAddress 127.0.0.1
HostKey %s/ssh_host_ed25519_key
PidFile %s/sshd.pid
UsePAM no
AuthorizedKeysFile %s/authorized_keys
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
MaxStartups 100
%s`, port, dir, dir, keys, extra)
		path := filepath.Join(dir, "sshd_config")
		if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
			return 0, "", err
		}
		out := &syncbuf.Buffer{}
		p := b.start(ctx, out, nil, "/usr/sbin/sshd", "-D", "-e", "-f", path)
		err := waitFor(ctx, "sshd "+name, 20*time.Second, out, func() bool { return strings.Contains(out.String(), "Server listening on") })
		if err == nil {
			return port, path, nil
		}
		if !strings.Contains(out.String(), "Address already in use") {
			return 0, "", err
		}
		_ = p.Process.Kill()
	}
	return 0, "", errors.New("sshd found no free port")
}

func (b *bench) start(ctx context.Context, out io.Writer, env []string, bin string, args ...string) *exec.Cmd {
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Env = env
	if env == nil {
		cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + b.dir, "LANG=C"}, b.cfg.env...)
	}
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(out, "start %s: %v\n", bin, err)
		return cmd
	}
	b.procs = append(b.procs, cmd)
	go func() { _ = cmd.Wait() }()
	return cmd
}

func (b *bench) cli(ctx context.Context, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, b.kaginashi, args...)
	cmd.Env = b.env
	return cmd.CombinedOutput()
}

func (b *bench) ssh(ctx context.Context, host, command string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "ssh", "-F", b.sshConfig, host, command)
	cmd.Env = b.env
	return cmd.CombinedOutput()
}

// --- (a) throughput -----------------------------------------------------------------------

type transfer struct {
	path   string
	total  time.Duration            // the whole ssh command
	steady time.Duration            // from the first MiB taken to the end
	cpu    time.Duration            // this benchmark's processes (all of them)
	others float64                  // cores other processes used meanwhile
	roles  map[string]time.Duration // CPU by role, while the data flowed (see sampleRoles)
}

func (t transfer) mbps(size int64) float64 { return float64(size) / t.total.Seconds() / 1e6 }
func (t transfer) steadyMBps(size int64) float64 {
	return float64(size-1<<20) / t.steady.Seconds() / 1e6
}

var paths = []struct{ name, host, desc string }{
	{"direct", "direct", "ssh → sshd"},
	{"tunnel", "viatunnel", "ssh → kaginashi open-tunnel → server → agent → sshd"},
	{"proxyjump", "viajump", "ssh → jump sshd → sshd (ProxyJump)"},
}

func (b *bench) throughput(ctx context.Context, rep *report) error {
	for r := 0; r < b.cfg.rounds; r++ {
		for i := range paths {
			p := paths[(i+r)%len(paths)] // a different order each round
			var t transfer
			var err error
			for attempt := 0; ; attempt++ {
				t, err = b.transfer(ctx, p.name, p.host)
				if err != nil {
					return err
				}
				if t.others <= 0.15 || attempt >= b.cfg.retries {
					break
				}
				logf("  other processes used %.2f cores: measuring again", t.others)
				_ = waitQuiet(ctx, b.cfg.quietWait)
			}
			logf("round %d/%d %-9s %7.1f MB/s (%6.1f MB/s steady), %v, CPU %.2f s, others %.2f cores",
				r+1, b.cfg.rounds, p.name, t.mbps(b.cfg.size), t.steadyMBps(b.cfg.size), t.total.Round(time.Millisecond), t.cpu.Seconds(), t.others)
			rep.transfers = append(rep.transfers, t)
		}
	}
	return nil
}

// transfer sends size bytes into `ssh HOST 'cat > /dev/null'`.
func (b *bench) transfer(ctx context.Context, name, host string) (transfer, error) {
	cmd := exec.CommandContext(ctx, "ssh", "-F", b.sshConfig, host, "cat > /dev/null")
	cmd.Env = b.env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return transfer{}, err
	}
	c0 := sampleCPU()
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return transfer{}, err
	}
	r0 := b.sampleRoles(cmd.Process.Pid)
	buf := make([]byte, 256<<10)
	var first time.Time
	var sent int64
	for sent < b.cfg.size {
		n, err := stdin.Write(buf[:min(int64(len(buf)), b.cfg.size-sent)])
		sent += int64(n)
		if err != nil {
			break
		}
		if first.IsZero() && sent >= 1<<20 {
			first = time.Now()
		}
	}
	// Every process of the path still runs (ssh waits for stdin's end).
	r1 := b.sampleRoles(cmd.Process.Pid)
	stdin.Close()
	err = cmd.Wait()
	end := time.Now()
	c1 := sampleCPU()
	if err != nil || sent != b.cfg.size {
		return transfer{}, fmt.Errorf("ssh %s: sent %d of %d bytes: %v\n%s", host, sent, b.cfg.size, err, stderr.String())
	}
	use := c1.sub(c0)
	// By process: one of the previous transfer's, still ending at the
	// first sample, must not count against this one.
	roles := map[string]time.Duration{}
	for pid, u := range r1 {
		roles[u.role] += u.cpu - r0[pid].cpu
	}
	return transfer{path: name, total: end.Sub(start), steady: end.Sub(first), cpu: use.ours, others: use.othersCores(), roles: roles}, nil
}

// roleUse is one process's role in a transfer and the CPU time it has used.
type roleUse struct {
	role string
	cpu  time.Duration
}

// Roles of the processes in a transfer, for the CPU breakdown.
var roleOrder = []string{"ssh", "client", "server", "agent", "sshd", "writer"}

var roleDesc = map[string]string{
	"ssh":    "ssh (client; for ProxyJump also its `ssh -W`)",
	"client": "kaginashi open-tunnel (ProxyCommand)",
	"server": "kaginashi server",
	"agent":  "kaginashi-agent",
	"sshd":   "sshd (target, and jump for ProxyJump) and `cat`",
	"writer": "this benchmark writing into ssh",
}

// sampleRoles returns the CPU time each process of this benchmark has
// used itself (children not included), with its role: the server, the
// agent, the ssh command (pid) and its ProxyCommand (the client), the
// sshds with their sessions, and this process (the writer). Sampled at the
// start of a transfer and just before its input ends, while every process
// still runs, so no time is lost to exited children.
func (b *bench) sampleRoles(sshPid int) map[int]roleUse {
	type proc struct {
		ppid int
		comm string
		t    int64
	}
	procs := map[int]proc{}
	children := map[int][]int{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		raw, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		i, j := bytes.IndexByte(raw, '('), bytes.LastIndexByte(raw, ')')
		if i < 0 || j < i {
			continue
		}
		f := strings.Fields(string(raw[j+2:]))
		if len(f) < 13 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		ut, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		procs[pid] = proc{ppid: ppid, comm: string(raw[i+1 : j]), t: ut + st}
		children[ppid] = append(children[ppid], pid)
	}
	out := map[int]roleUse{}
	self := procs[os.Getpid()].comm
	var walk func(pid int, role string)
	walk = func(pid int, role string) {
		p := procs[pid]
		switch {
		case b.server != nil && b.server.Process != nil && pid == b.server.Process.Pid:
			role = "server"
		case b.agentProc != nil && b.agentProc.Process != nil && pid == b.agentProc.Process.Pid:
			role = "agent"
		case pid == sshPid:
			role = "ssh"
		case role == "ssh" && p.comm != "ssh":
			role = "client" // the ProxyCommand (and a shell before it)
		case role == "writer" && p.comm != self:
			role = "sshd"
		}
		out[pid] = roleUse{role: role, cpu: time.Duration(p.t) * time.Second / clockTicks}
		for _, c := range children[pid] {
			walk(c, role)
		}
	}
	walk(os.Getpid(), "writer")
	return out
}

// --- (b) logins ----------------------------------------------------------------------------

type login struct {
	variant string
	times   []time.Duration
	others  []float64
}

func (b *bench) logins(ctx context.Context, rep *report) error {
	type variant struct {
		name string
		run  func() ([]byte, error)
	}
	variants := []variant{{"ssh -i KEY host true", func() ([]byte, error) {
		return b.run1(exec.CommandContext(ctx, "ssh", "-F", b.sshConfig, "direct", "true"))
	}}}
	if b.hasSSHCommand {
		variants = append(variants, variant{"kaginashi ssh --ssh-port P root@ID -- true", func() ([]byte, error) {
			return b.run1(exec.CommandContext(ctx, b.kaginashi, "ssh", "--ssh-port", strconv.Itoa(b.targetPort), "root@"+b.instance, "--", "true"))
		}})
	}
	if b.altKaginashi != "" {
		variants = append(variants, variant{"kaginashi ssh --ssh-port P root@ID -- true (-alt-bin)", func() ([]byte, error) {
			return b.run1(exec.CommandContext(ctx, b.altKaginashi, "ssh", "--ssh-port", strconv.Itoa(b.targetPort), "root@"+b.instance, "--", "true"))
		}})
	}
	// Always also the parts by hand: an ephemeral key pushed with
	// SendSSHPublicKey (from this process, with the SDK), then ssh with
	// that key and `kaginashi open-tunnel` as its ProxyCommand.
	cfg, err := b.sdkConfig()
	if err != nil {
		return err
	}
	eic := ec2instanceconnect.NewFromConfig(cfg)
	keyFile := filepath.Join(b.dir, "keys", "ephemeral")
	variants = append(variants, variant{"SendSSHPublicKey + ssh -o ProxyCommand='kaginashi open-tunnel …' true", func() ([]byte, error) {
		pub, err := writeKey(keyFile)
		if err != nil {
			return nil, err
		}
		if _, err := eic.SendSSHPublicKey(ctx, &ec2instanceconnect.SendSSHPublicKeyInput{
			InstanceId: aws.String(b.instance), InstanceOSUser: aws.String("root"), SSHPublicKey: aws.String(pub),
		}); err != nil {
			return nil, err
		}
		return b.run1(exec.CommandContext(ctx, "ssh", "-F", b.sshConfig, "-i", keyFile, "pushed", "true"))
	}})
	res := make([]login, len(variants))
	for i, v := range variants {
		res[i].variant = v.name
		// Once to warm caches (binaries, the server's first queries).
		if out, err := v.run(); err != nil {
			return fmt.Errorf("%s: %v\n%s", v.name, err, out)
		}
	}
	for r := 0; r < b.cfg.logins; r++ {
		// A different order each round: no variant always follows the
		// same one (caches, the server's background work).
		for k := range variants {
			i := (k + r) % len(variants)
			v := variants[i]
			c0 := sampleCPU()
			start := time.Now()
			if out, err := v.run(); err != nil {
				return fmt.Errorf("%s: %v\n%s", v.name, err, out)
			}
			d := time.Since(start)
			res[i].times = append(res[i].times, d)
			res[i].others = append(res[i].others, sampleCPU().sub(c0).othersCores())
		}
	}
	rep.logins = res
	for _, l := range res {
		logf("%-58s median %v", l.variant, median(l.times).Round(100*time.Microsecond))
	}
	return nil
}

// sdkConfig is an AWS SDK configuration for the server's root.
func (b *bench) sdkConfig() (aws.Config, error) {
	creds, err := os.ReadFile(filepath.Join(b.dir, "server", "root-credentials"))
	if err != nil {
		return aws.Config{}, err
	}
	id, secret := iniValue(creds, "aws_access_key_id"), iniValue(creds, "aws_secret_access_key")
	pem, err := os.ReadFile(b.ca)
	if err != nil {
		return aws.Config{}, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	return aws.Config{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider(id, secret, ""),
		BaseEndpoint: aws.String(b.serverURL),
		HTTPClient:   &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}},
	}, nil
}

func (b *bench) run1(cmd *exec.Cmd) ([]byte, error) {
	cmd.Env = b.env
	return cmd.CombinedOutput()
}

// --- (c) latency --------------------------------------------------------------------------

type echoes struct {
	direct, tunnel []time.Duration
}

func (b *bench) latency(ctx context.Context, rep *report) error {
	direct, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", b.echoPort))
	if err != nil {
		return err
	}
	defer direct.Close()
	cfg, err := b.sdkConfig()
	if err != nil {
		return err
	}
	ip, ep, err := b.describe(ctx, cfg)
	if err != nil {
		return err
	}
	tunnel, err := client.DialTunnel(ctx, cfg, client.TunnelParams{Endpoint: b.serverURL, EndpointID: ep, InstanceID: b.instance, PrivateIP: ip, RemotePort: b.echoPort})
	if err != nil {
		return err
	}
	defer tunnel.Close()
	var e echoes
	for _, c := range []struct {
		conn net.Conn
		out  *[]time.Duration
	}{{direct, &e.direct}, {tunnel, &e.tunnel}} {
		// Warm up, then measure.
		if _, err := roundTrips(c.conn, 200); err != nil {
			return err
		}
		d, err := roundTrips(c.conn, b.cfg.echoes)
		if err != nil {
			return err
		}
		*c.out = d
	}
	rep.echoes = e
	logf("1-byte echoes: direct p50 %v p99 %v; tunnel p50 %v p99 %v", pct(e.direct, 50), pct(e.direct, 99), pct(e.tunnel, 50), pct(e.tunnel, 99))
	return nil
}

func roundTrips(c net.Conn, n int) ([]time.Duration, error) {
	out := make([]time.Duration, 0, n)
	b := []byte{0}
	for i := 0; i < n; i++ {
		b[0] = byte(i)
		start := time.Now()
		if _, err := c.Write(b); err != nil {
			return nil, err
		}
		if _, err := io.ReadFull(c, b); err != nil {
			return nil, err
		}
		out = append(out, time.Since(start))
		if b[0] != byte(i) {
			return nil, errors.New("the echo differs")
		}
	}
	return out, nil
}

// describe finds the instance's private IP and the endpoint's ID, as the
// CLI does.
func (b *bench) describe(ctx context.Context, cfg aws.Config) (ip, endpoint string, err error) {
	t, err := client.ResolveTarget(ctx, cfg, b.instance)
	if err != nil {
		return "", "", err
	}
	_, endpoint, err = client.Endpoint(ctx, cfg, "")
	return t.PrivateIP, endpoint, err
}

// --- CPU accounting ---------------------------------------------------------------------

// cpuSample is the machine's busy CPU time and this benchmark's (this
// process and every descendant: reaped children are in their parents'
// cutime and cstime).
type cpuSample struct {
	at         time.Time
	busy, ours time.Duration
}

type cpuUse struct {
	wall, busy, ours time.Duration
}

func (u cpuUse) othersCores() float64 {
	if u.wall <= 0 {
		return 0
	}
	return max(0, (u.busy-u.ours).Seconds()/u.wall.Seconds())
}

func (a cpuSample) sub(b cpuSample) cpuUse {
	return cpuUse{wall: a.at.Sub(b.at), busy: a.busy - b.busy, ours: a.ours - b.ours}
}

const clockTicks = 100 // USER_HZ on Linux

func sampleCPU() cpuSample {
	s := cpuSample{at: time.Now()}
	if b, err := os.ReadFile("/proc/stat"); err == nil {
		line, _, _ := strings.Cut(string(b), "\n")
		f := strings.Fields(line)
		var total, idle int64
		for i, v := range f[1:] {
			n, _ := strconv.ParseInt(v, 10, 64)
			total += n
			if i == 3 || i == 4 { // idle, iowait
				idle += n
			}
		}
		s.busy = time.Duration(total-idle) * time.Second / clockTicks
	}
	// Parent links of every process, then this process's subtree.
	children := map[int][]int{}
	times := map[int]int64{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+2:]))
		if len(f) < 15 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		children[ppid] = append(children[ppid], pid)
		var t int64
		for _, k := range []int{11, 12, 13, 14} { // utime stime cutime cstime
			n, _ := strconv.ParseInt(f[k], 10, 64)
			t += n
		}
		times[pid] = t
	}
	var sum int64
	var walk func(int)
	walk = func(pid int) {
		sum += times[pid]
		for _, c := range children[pid] {
			walk(c)
		}
	}
	walk(os.Getpid())
	s.ours = time.Duration(sum) * time.Second / clockTicks
	return s
}

// waitQuiet waits until other processes use less than 0.15 cores over
// two seconds.
func waitQuiet(ctx context.Context, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		a := sampleCPU()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(2 * time.Second):
		}
		u := sampleCPU().sub(a)
		if u.othersCores() < 0.15 {
			return nil
		}
		if time.Now().After(deadline) {
			logf("the machine is not quiet after %v (others use %.2f cores): measuring anyway, see the others column", limit, u.othersCores())
			return nil
		}
		logf("waiting for a quiet machine (others use %.2f cores)…", u.othersCores())
	}
}

// --- report -----------------------------------------------------------------------------

type report struct {
	cfg        config
	started    time.Time
	transfers  []transfer
	logins     []login
	echoes     echoes
	sshCommand bool
}

func median(ds []time.Duration) time.Duration { return pct(ds, 50) }

func pct(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	return s[min(max(i-1, 0), len(s)-1)]
}

func (r *report) byPath(name string) []transfer {
	var out []transfer
	for _, t := range r.transfers {
		if t.path == name {
			out = append(out, t)
		}
	}
	return out
}

// medianTransfer is the transfer with the median total time.
func medianTransfer(ts []transfer) transfer {
	s := slices.Clone(ts)
	slices.SortFunc(s, func(a, b transfer) int { return cmp.Compare(a.total, b.total) })
	return s[(len(s)-1)/2]
}

func medianSteady(ts []transfer) time.Duration {
	var ds []time.Duration
	for _, t := range ts {
		ds = append(ds, t.steady)
	}
	return median(ds)
}

func met(ok bool) string {
	if ok {
		return "**met**"
	}
	return "**not met**"
}

func (r *report) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "### Run of %s\n\n", r.started.UTC().Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(&b, "Machine: %s, %d CPUs, Linux %s, %s, %s.\n\n", cpuModel(), runtime.NumCPU(), kernel(), runtime.Version(), sshVersion())

	if r.cfg.parts['a'] {
		r.markdownA(&b)
	}
	if r.cfg.parts['b'] {
		r.markdownB(&b)
	}
	if r.cfg.parts['c'] {
		r.markdownC(&b)
	}
	return b.String()
}

func (r *report) markdownA(b *strings.Builder) {
	size := r.cfg.size
	fmt.Fprintf(b, "#### (a) %d MiB through `ssh HOST 'cat > /dev/null'` (%d rounds, median)\n\n", size>>20, r.cfg.rounds)
	b.WriteString("| path | MB/s (whole command) | MB/s (steady: after the first MiB) | CPU s/GiB, all processes | min–max MB/s | others (cores) |\n|---|---:|---:|---:|---:|---:|\n")
	mb := map[string]float64{}
	steady := map[string]float64{}
	for _, p := range paths {
		ts := r.byPath(p.name)
		if len(ts) == 0 {
			continue
		}
		m := medianTransfer(ts)
		lo, hi := 1e18, 0.0
		var others, cpu float64
		for _, t := range ts {
			lo, hi = min(lo, t.mbps(size)), max(hi, t.mbps(size))
			others = max(others, t.others)
			cpu += t.cpu.Seconds()
		}
		cpu = cpu / float64(len(ts)) / (float64(size) / (1 << 30))
		mb[p.name] = m.mbps(size)
		steady[p.name] = float64(size-1<<20) / medianSteady(ts).Seconds() / 1e6
		fmt.Fprintf(b, "| %s (%s) | %.0f | %.0f | %.2f | %.0f–%.0f | ≤ %.2f |\n", p.name, p.desc, m.mbps(size), steady[p.name], cpu, lo, hi, others)
	}
	vsDirect, vsJump := mb["tunnel"]/mb["direct"], mb["tunnel"]/mb["proxyjump"]
	sDirect, sJump := steady["tunnel"]/steady["direct"], steady["tunnel"]/steady["proxyjump"]
	b.WriteString("\n| ratio | whole command | steady | goal | |\n|---|---:|---:|---:|---|\n")
	fmt.Fprintf(b, "| tunnel / direct | %.2f | %.2f | ≥ %.2f | %s |\n", vsDirect, sDirect, goalVsDirect, met(vsDirect >= goalVsDirect))
	fmt.Fprintf(b, "| tunnel / ProxyJump | %.2f | %.2f | ≥ %.2f | %s |\n", vsJump, sJump, goalVsJump, met(vsJump >= goalVsJump))
	b.WriteString("\n(The goal is judged on the whole command: connection setup included.)\n\n")
	r.markdownRoles(b)
}

// markdownRoles is where the CPU went, per process, in ns per byte moved
// (the mean over the rounds; sampled while the data flowed, so connection
// set-up and the last bytes in flight are left out).
func (r *report) markdownRoles(b *strings.Builder) {
	b.WriteString("Where the CPU went, ns per byte moved (mean of the rounds, sampled while the data flowed; 1 ns/B = 1.07 CPU-s/GiB):\n\n| process |")
	var have []string
	for _, p := range paths {
		if len(r.byPath(p.name)) > 0 {
			have = append(have, p.name)
			fmt.Fprintf(b, " %s |", p.name)
		}
	}
	b.WriteString("\n|---|" + strings.Repeat("---:|", len(have)) + "\n")
	nsPerByte := func(path, role string) float64 {
		ts := r.byPath(path)
		var sum time.Duration
		for _, t := range ts {
			if role == "" {
				for _, v := range t.roles {
					sum += v
				}
			} else {
				sum += t.roles[role]
			}
		}
		return float64(sum.Nanoseconds()) / float64(len(ts)) / float64(r.cfg.size)
	}
	for _, role := range append(slices.Clone(roleOrder), "") {
		name := "**all**"
		if role != "" {
			name = roleDesc[role]
		}
		fmt.Fprintf(b, "| %s |", name)
		for _, p := range have {
			v := nsPerByte(p, role)
			if v == 0 && role != "" {
				b.WriteString(" – |")
				continue
			}
			fmt.Fprintf(b, " %.2f |", v)
		}
		b.WriteString("\n")
	}
	b.WriteString("\n")
}

func (r *report) markdownB(b *strings.Builder) {
	fmt.Fprintf(b, "#### (b) a login running `true` (%d each, interleaved)\n\n", r.cfg.logins)
	if !r.sshCommand {
		b.WriteString("`kaginashi ssh` was not available in this build: only the ProxyCommand variant ran.\n\n")
	}
	// The first columns are what scripts/bench.sh reads (by position).
	b.WriteString("| command | median | p90 | ratio to ssh -i | goal | | p25 | ratio of p25s | added, paired |\n|---|---:|---:|---:|---:|---|---:|---:|---:|\n")
	var base, base25 time.Duration
	for i, l := range r.logins {
		m, q := median(l.times), pct(l.times, 25)
		if i == 0 {
			base, base25 = m, q
		}
		ratio := float64(m) / float64(base)
		goal, verdict := "", ""
		if strings.HasPrefix(l.variant, "kaginashi ssh") {
			goal, verdict = fmt.Sprintf("≤ %.2f", goalLogin), met(ratio <= goalLogin)
		}
		fmt.Fprintf(b, "| `%s` | %.1f ms | %.1f ms | %.2f | %s | %s | %.1f ms | %.2f | %+.1f ms |\n", l.variant, ms(m), ms(pct(l.times, 90)), ratio, goal, verdict,
			ms(q), float64(q)/float64(base25), ms(pairedAdded(l.times, r.logins[0].times)))
	}
	b.WriteString("\n(The goal is judged on the medians. On a busy machine the p25s, and the median of each round's difference to `ssh -i` (\"added, paired\": the rounds run the variants back to back), are less disturbed by other processes.)\n\n")
	if r.cfg.altBin != "" && len(r.logins) >= 3 && r.sshCommand {
		this, alt := median(r.logins[1].times), median(r.logins[2].times)
		fmt.Fprintf(b, "`kaginashi ssh` of this build %.1f ms, of -alt-bin (%s) %.1f ms (medians): this build takes %.2f× as long (p25s: %.2f×).\n\n",
			ms(this), r.cfg.altBin, ms(alt), float64(this)/float64(alt), float64(pct(r.logins[1].times, 25))/float64(pct(r.logins[2].times, 25)))
	}
}

func (r *report) markdownC(b *strings.Builder) {
	fmt.Fprintf(b, "#### (c) 1-byte echoes, %d round trips each, one connection\n\n", r.cfg.echoes)
	b.WriteString("| path | p50 | p99 |\n|---|---:|---:|\n")
	fmt.Fprintf(b, "| direct TCP to the echo service | %.1f µs | %.1f µs |\n", us(pct(r.echoes.direct, 50)), us(pct(r.echoes.direct, 99)))
	fmt.Fprintf(b, "| through the tunnel (client library → server → agent → echo) | %.1f µs | %.1f µs |\n", us(pct(r.echoes.tunnel, 50)), us(pct(r.echoes.tunnel, 99)))
	fmt.Fprintf(b, "| **added by the tunnel** | **%.1f µs** | **%.1f µs** |\n\n", us(pct(r.echoes.tunnel, 50)-pct(r.echoes.direct, 50)), us(pct(r.echoes.tunnel, 99)-pct(r.echoes.direct, 99)))
}

// pairedAdded is the median over rounds of a variant's time less the
// baseline's in the same round.
func pairedAdded(ts, base []time.Duration) time.Duration {
	var d []time.Duration
	for i := range min(len(ts), len(base)) {
		d = append(d, ts[i]-base[i])
	}
	return median(d)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// --- small things -------------------------------------------------------------------------

func waitFor(ctx context.Context, what string, timeout time.Duration, out *syncbuf.Buffer, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not ready within %v\n%s", what, timeout, tail(out.String(), 30))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}

func healthy(url, ca string) bool {
	pem, err := os.ReadFile(ca)
	if err != nil {
		return false
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	c := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := c.Get(url + "/healthz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// writeKey writes a new Ed25519 private key (OpenSSH format, 0600) and
// returns its public key line.
func writeKey(path string) (string, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", err
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		return "", err
	}
	pk, err := ssh.NewPublicKey(pub)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pk))), nil
}

func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %v", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("run from inside kaginashi's module")
	}
	return filepath.Dir(mod), nil
}

func iniValue(b []byte, key string) string {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func sshdPenalties() bool {
	out, _ := exec.Command("/usr/sbin/sshd", "-V").CombinedOutput()
	var major, minor int
	if i := strings.Index(string(out), "OpenSSH_"); i >= 0 {
		fmt.Sscanf(string(out[i:]), "OpenSSH_%d.%d", &major, &minor)
	}
	return major > 9 || (major == 9 && minor >= 8)
}

func sshVersion() string {
	out, _ := exec.Command("ssh", "-V").CombinedOutput()
	v, _, _ := strings.Cut(strings.TrimSpace(string(out)), ",")
	return v
}

func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}

func kernel() string {
	b, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	return strings.TrimSpace(string(b))
}
