// Package dev tests `kaginashi dev` (what `make run` starts) as a user
// meets it: the real binaries, a real sshd, the aws CLI and ssh, the
// printed lines run as printed, and Ctrl-C leaving nothing behind.
package dev

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/kaginashi/kaginashi/internal/agent"
	"github.com/kaginashi/kaginashi/test/e2e/harness"
)

var bin string // the directory with kaginashi and kaginashi-agent

func TestMain(m *testing.M) {
	if reason := skipReason(); reason != "" {
		fmt.Fprintln(os.Stderr, "dev: skipping:", reason)
		os.Exit(m.Run())
	}
	// Under /tmp, which sshd does not accept an AuthorizedKeysCommand
	// from: kaginashi dev must make (and remove) a root-owned copy.
	dir, err := harness.BuildKaginashi("kaginashi-dev-bin-", "./cmd/kaginashi-agent")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(dir)
		os.Exit(2)
	}
	bin = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

var skipped string

func skipReason() string {
	switch {
	case os.Getenv("KAGINASHI_SKIP_SSHD") == "1":
		skipped = "KAGINASHI_SKIP_SSHD=1"
	case os.Geteuid() != 0:
		skipped = "runs as root: kaginashi dev's sshd logs in root here"
	}
	if skipped != "" {
		return skipped
	}
	if _, err := os.Stat("/usr/sbin/sshd"); err != nil {
		fmt.Fprintln(os.Stderr, "dev: OpenSSH's sshd is not installed: run scripts/deps.sh test (or set KAGINASHI_SKIP_SSHD=1)")
		os.Exit(2)
	}
	for _, tool := range []string{"ssh", "aws", "bash"} {
		if _, err := exec.LookPath(tool); err != nil {
			fmt.Fprintf(os.Stderr, "dev: %s is not installed: run scripts/deps.sh test (or set KAGINASHI_SKIP_SSHD=1)\n", tool)
			os.Exit(2)
		}
	}
	return ""
}

// devProc is a running `kaginashi dev`.
type devProc struct {
	cmd            *exec.Cmd
	stdout, stderr *harness.SyncBuffer
	done           chan struct{}
	waitErr        error
}

func startDev(t *testing.T, dataDir string, port int, tweak ...func(*exec.Cmd)) *devProc {
	t.Helper()
	p := &devProc{stdout: &harness.SyncBuffer{}, stderr: &harness.SyncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(filepath.Join(bin, "kaginashi"), "dev", "--data-dir", dataDir, "--listen", "127.0.0.1:"+strconv.Itoa(port))
	p.cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "LANG=C"}
	// Its own process group, as a terminal's foreground job has.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	for _, f := range tweak {
		f(p.cmd)
	}
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.waitErr = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.cmd.Process.Signal(syscall.SIGINT)
			select {
			case <-p.done:
			case <-time.After(60 * time.Second):
				p.cmd.Process.Kill()
			}
		}
	})
	deadline := time.Now().Add(90 * time.Second)
	for !strings.Contains(p.stdout.String(), " doctor --instance-id ") {
		select {
		case <-p.done:
			t.Fatalf("kaginashi dev exited (%v) before it was ready\nstdout:\n%s\nstderr:\n%s", p.waitErr, p.stdout, p.stderr)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("kaginashi dev not ready within 90 s\nstdout:\n%s\nstderr:\n%s", p.stdout, p.stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return p
}

// interrupt sends SIGINT to kaginashi dev's process group, as Ctrl-C in
// its terminal does, and wants a clean exit 0.
func (p *devProc) interrupt(t *testing.T) {
	t.Helper()
	if err := syscall.Kill(-p.cmd.Process.Pid, syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.done:
	case <-time.After(60 * time.Second):
		t.Fatalf("kaginashi dev did not stop within 60 s of SIGINT\nstderr:\n%s", p.stderr)
	}
	if p.waitErr != nil {
		t.Fatalf("kaginashi dev after SIGINT: %v, want exit 0\nstderr:\n%s", p.waitErr, p.stderr)
	}
}

// printed are the summary's ready-to-paste lines.
type printed struct {
	exports              []string
	login, push, plain   string
	password, instanceID string
}

func parse(t *testing.T, out string) printed {
	t.Helper()
	var p printed
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		l := sc.Text()
		switch {
		case strings.HasPrefix(l, "export "):
			p.exports = append(p.exports, l)
		case strings.Contains(l, "/kaginashi ssh "):
			p.login = l
		case strings.HasPrefix(l, "aws ec2-instance-connect send-ssh-public-key "):
			p.push = l
		case strings.HasPrefix(l, "ssh -p "):
			p.plain = l
		case strings.HasPrefix(strings.TrimSpace(l), "password:"):
			p.password = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(l), "password:"))
		case strings.HasPrefix(l, "Host: i-"):
			p.instanceID = strings.TrimSuffix(strings.Fields(l)[1], ",")
		}
	}
	if len(p.exports) != 2 || p.login == "" || p.push == "" || p.plain == "" || p.password == "" || p.instanceID == "" {
		t.Fatalf("kaginashi dev's summary lacks lines: %+v\n%s", p, out)
	}
	return p
}

// shell runs the printed lines in bash, as a user pasting them would, in
// a fresh HOME.
func shell(t *testing.T, home string, lines ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-euc", strings.Join(lines, "\n"))
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "LANG=C"}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if err != nil {
		return out.String(), fmt.Errorf("%v\nstderr:\n%s", err, errb.String())
	}
	return out.String(), nil
}

// pidsUnder lists processes whose command line mentions dir.
func pidsUnder(dir string) []string {
	var found []string
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		cl := strings.ReplaceAll(string(b), "\x00", " ")
		if strings.Contains(cl, dir) {
			if st, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat")); err == nil {
				if i := bytes.LastIndexByte(st, ')'); i >= 0 && len(st) > i+2 && st[i+2] == 'Z' {
					continue // a zombie: gone, waiting for its parent
				}
			}
			found = append(found, e.Name()+": "+cl)
		}
	}
	return found
}

func runEntries(t *testing.T) map[string]bool {
	t.Helper()
	ents, err := os.ReadDir("/run")
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]bool{}
	for _, e := range ents {
		m[e.Name()] = true
	}
	return m
}

func writeKey(t *testing.T, home string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(home, ".ssh"), 0o700); err != nil {
		t.Fatal(err)
	}
	pub := harness.WriteEd25519Key(t, filepath.Join(home, ".ssh", "id_ed25519"), "")
	sp, _ := ssh.NewPublicKey(pub)
	if err := os.WriteFile(filepath.Join(home, ".ssh", "id_ed25519.pub"), ssh.MarshalAuthorizedKey(sp), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestDev runs kaginashi dev, uses what it prints, stops it with SIGINT,
// and checks that nothing is left; then runs it again on the same data.
func TestDev(t *testing.T) {
	if skipped != "" {
		t.Skip(skipped)
	}
	before := runEntries(t)
	dataDir := filepath.Join(t.TempDir(), "dev")
	port := harness.FreePort(t)

	start := time.Now()
	p := startDev(t, dataDir, port)
	t.Logf("ready in %v", time.Since(start).Round(time.Millisecond))
	out := parse(t, p.stdout.String())
	if want := fmt.Sprintf("https://127.0.0.1:%d/", port); !strings.Contains(p.stdout.String(), "Web console: "+want) {
		t.Errorf("the summary does not give the console URL %s:\n%s", want, p.stdout)
	}

	home := t.TempDir()
	// The printed kaginashi ssh line, as printed.
	got, err := shell(t, home, append(out.exports, out.login+" -- echo ok")...)
	if err != nil || got != "ok\n" {
		t.Fatalf("the printed ssh line: output %q, %v", got, err)
	}
	// The printed aws line with the user's own key, then plain ssh.
	writeKey(t, home)
	got, err = shell(t, home, append(out.exports, out.push,
		out.plain+" -i $HOME/.ssh/id_ed25519 -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR echo plain-ok")...)
	if err != nil || !strings.HasSuffix(got, "plain-ok\n") || !strings.Contains(got, `"Success": true`) {
		t.Fatalf("the printed send-ssh-public-key and ssh lines: output %q, %v", got, err)
	}

	// A session still open at Ctrl-C must end with it.
	sleeper := fmt.Sprintf("sleep 617.%d", os.Getpid())
	session := exec.Command("bash", "-euc", strings.Join(append(out.exports, out.login+" -- "+sleeper), "\n"))
	session.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "LANG=C"}
	if err := session.Start(); err != nil {
		t.Fatal(err)
	}
	sessionDone := make(chan error, 1)
	go func() { sessionDone <- session.Wait() }()
	defer session.Process.Kill()
	waitSleep := time.Now().Add(30 * time.Second)
	for !hasProcess(sleeper) {
		if time.Now().After(waitSleep) {
			t.Fatal("the ssh session's sleep did not start")
		}
		time.Sleep(50 * time.Millisecond)
	}

	agentPID := statusPID(t, filepath.Join(dataDir, "agent"))
	p.interrupt(t)
	if !strings.Contains(p.stderr.String(), "stopped") {
		t.Errorf("kaginashi dev did not say what it stopped:\n%s", p.stderr)
	}
	select {
	case <-sessionDone:
	case <-time.After(20 * time.Second):
		t.Error("the open ssh session did not end when kaginashi dev stopped")
	}
	// The client's exit can come a moment before sshd's session process
	// has reaped the command: give it a few seconds, not forever.
	for deadline := time.Now().Add(5 * time.Second); hasProcess(sleeper) && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
	}
	if hasProcess(sleeper) {
		t.Errorf("the ssh session's command still runs after kaginashi dev stopped (%s)\n%s", ancestry(sleeper), p.stderr)
	}
	if left := pidsUnder(dataDir); len(left) > 0 {
		t.Errorf("processes left after SIGINT:\n%s", strings.Join(left, "\n"))
	}
	if agentPID > 0 && syscall.Kill(agentPID, 0) == nil {
		t.Errorf("the agent (pid %d) still runs", agentPID)
	}
	after := runEntries(t)
	for name := range after {
		if !before[name] && strings.HasPrefix(name, "kaginashi-dev-") {
			t.Errorf("/run/%s was left behind", name)
		}
	}
	if before["sshd"] != after["sshd"] {
		t.Errorf("/run/sshd existed before: %v, after: %v", before["sshd"], after["sshd"])
	}

	// The second run reuses everything: the same instance and password.
	start = time.Now()
	p2 := startDev(t, dataDir, port)
	t.Logf("second run ready in %v", time.Since(start).Round(time.Millisecond))
	out2 := parse(t, p2.stdout.String())
	if out2.instanceID != out.instanceID || out2.password != out.password {
		t.Errorf("second run: instance %s, password changed %v; want the first run's %s and password",
			out2.instanceID, out2.password != out.password, out.instanceID)
	}
	got, err = shell(t, t.TempDir(), append(out2.exports, out2.login+" -- echo again")...)
	if err != nil || got != "again\n" {
		t.Fatalf("second run, the printed ssh line: output %q, %v", got, err)
	}
	p2.interrupt(t)
	if left := pidsUnder(dataDir); len(left) > 0 {
		t.Errorf("processes left after the second SIGINT:\n%s", strings.Join(left, "\n"))
	}
}

// ancestry describes the processes running cmdline and their parents,
// for a failure message.
func ancestry(cmdline string) string {
	var out []string
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || strings.ReplaceAll(strings.TrimRight(string(b), "\x00"), "\x00", " ") != cmdline {
			continue
		}
		chain := []string{}
		for pid := e.Name(); pid != "" && pid != "0" && len(chain) < 12; {
			st, err := os.ReadFile(filepath.Join("/proc", pid, "status"))
			if err != nil {
				break
			}
			name, ppid := "", ""
			for _, l := range strings.Split(string(st), "\n") {
				if v, ok := strings.CutPrefix(l, "Name:"); ok {
					name = strings.TrimSpace(v)
				}
				if v, ok := strings.CutPrefix(l, "PPid:"); ok {
					ppid = strings.TrimSpace(v)
				}
			}
			chain = append(chain, pid+" "+name)
			pid = ppid
		}
		out = append(out, strings.Join(chain, " <- "))
	}
	return strings.Join(out, "; ")
}

func hasProcess(cmdline string) bool {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && strings.ReplaceAll(strings.TrimRight(string(b), "\x00"), "\x00", " ") == cmdline {
			return true
		}
	}
	return false
}

func statusPID(t *testing.T, dir string) int {
	t.Helper()
	st, err := agent.Paths{Dir: dir}.ReadStatus()
	if err != nil {
		t.Errorf("the agent's status file: %v", err)
		return 0
	}
	if !st.Connected {
		b, _ := json.Marshal(st)
		t.Errorf("the agent's status says not connected: %s", b)
	}
	return st.PID
}
