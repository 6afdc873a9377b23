package browser

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"encoding/pem"
	"errors"
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

const (
	region    = "ap-northeast-1"
	account   = "123456789012"
	userGECOS = "kaginashi browser e2e test user"
	userPfx   = "kgb-"
	safePfx   = "kaginashi-browser-"
)

// world is what TestMain prepared.
var world struct {
	skip  string
	root  string // the module root
	sshd  string
	safe  string // root-owned directory sshd accepts the AuthorizedKeysCommand in
	agent string
	user  string

	sshdConfig string // the running sshd's, for the agent's inventory
	sshPort    int    // where it listens on 127.0.0.1
}

func TestMain(m *testing.M) {
	code, err := run(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "browser:", err)
		os.Exit(2)
	}
	os.Exit(code)
}

func run(m *testing.M) (int, error) {
	if world.skip = skipReason(); world.skip != "" {
		return m.Run(), nil
	}
	var err error
	if world.root, err = harness.ModuleRoot(); err != nil {
		return 0, err
	}
	bin, err := harness.TempDir(os.TempDir(), "kaginashi-browser-bin-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(bin)
	if err := harness.Build(bin, "./cmd/kaginashi"); err != nil {
		return 0, err
	}
	harness.Kaginashi = filepath.Join(bin, "kaginashi")
	if world.safe, err = safeDir(); err != nil {
		return 0, err
	}
	defer os.RemoveAll(world.safe)
	if err := os.Mkdir(filepath.Join(world.safe, "bin"), 0o755); err != nil {
		return 0, err
	}
	if err := harness.Build(filepath.Join(world.safe, "bin"), "./cmd/kaginashi-agent"); err != nil {
		return 0, err
	}
	world.agent = filepath.Join(world.safe, "bin", "kaginashi-agent")
	if err := os.Chmod(world.agent, 0o755); err != nil {
		return 0, err
	}
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		return 0, err
	}
	reapStaleUsers()
	world.user = userPfx + strconv.Itoa(os.Getpid())
	if out, err := exec.Command("useradd", "--no-create-home", "--home-dir", "/tmp", "--shell", "/bin/sh",
		"--password", "*", "--comment", userGECOS, world.user).CombinedOutput(); err != nil {
		return 0, fmt.Errorf("useradd: %v: %s", err, out)
	}
	defer delUser(world.user)
	return m.Run(), nil
}

// skipReason says why the tests cannot run here; a missing package that
// scripts/deps.sh installs is an error, not a skip.
func skipReason() string {
	switch {
	case os.Getenv("KAGINASHI_SKIP_BROWSER") == "1":
		return "KAGINASHI_SKIP_BROWSER=1"
	case os.Getenv("KAGINASHI_SKIP_SSHD") == "1":
		return "KAGINASHI_SKIP_SSHD=1: the browser terminal needs a real sshd"
	case os.Geteuid() != 0:
		return "the browser tests run as root: sshd, and the local user they add, need it"
	}
	world.sshd = "/usr/sbin/sshd"
	need := map[string]string{"sshd": world.sshd, "chromium": "chromium", "node": "node", "useradd": "useradd", "userdel": "userdel"}
	for what, p := range need {
		if _, err := exec.LookPath(p); err != nil {
			fmt.Fprintf(os.Stderr, "browser: %s is not installed: run scripts/deps.sh test, or set KAGINASHI_SKIP_BROWSER=1\n", what)
			os.Exit(2)
		}
	}
	return ""
}

func safeDir() (string, error) {
	for _, parent := range []string{"/run", "/var/lib"} {
		if !sshdSafe(parent) {
			continue
		}
		d, err := harness.TempDir(parent, safePfx)
		if err != nil {
			continue
		}
		return d, os.Chmod(d, 0o755)
	}
	return "", errors.New("no root-owned directory closed to others (/run, /var/lib) for the AuthorizedKeysCommand")
}

// sshdSafe: sshd runs an AuthorizedKeysCommand only from a path whose
// every directory is root-owned and not writable by group or others.
func sshdSafe(dir string) bool {
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil || !fi.IsDir() {
			return false
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok || st.Uid != 0 || fi.Mode().Perm()&0o022 != 0 {
			return false
		}
		if d == "/" {
			return true
		}
	}
}

func delUser(name string) {
	for i := 0; i < 50; i++ {
		if exec.Command("userdel", name).Run() == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// reapStaleUsers removes the users of earlier runs whose process is gone.
func reapStaleUsers() {
	f, err := os.Open("/etc/passwd")
	if err != nil {
		return
	}
	defer f.Close()
	var stale []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Split(sc.Text(), ":")
		if len(fields) >= 5 && fields[4] == userGECOS && strings.HasPrefix(fields[0], userPfx) {
			if _, gone := harness.StalePID(strings.TrimPrefix(fields[0], userPfx)); gone {
				stale = append(stale, fields[0])
			}
		}
	}
	for _, u := range stale {
		delUser(u)
	}
}

// proc is a child process killed when the test ends.
type proc struct {
	cmd  *exec.Cmd
	out  *harness.SyncBuffer
	done chan struct{}
}

func start(t *testing.T, env []string, bin string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(bin, args...), out: &harness.SyncBuffer{}, done: make(chan struct{})}
	p.cmd.Env = env
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		if !p.exited() {
			_ = p.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-p.done:
			case <-time.After(10 * time.Second):
				_ = p.cmd.Process.Kill()
				<-p.done
			}
		}
	})
	return p
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *proc) waitFor(t *testing.T, what, want string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !strings.Contains(p.out.String(), want) {
		if p.exited() || time.Now().After(deadline) {
			t.Fatalf("%s did not say %q (exited: %v)\n%s", what, want, p.exited(), p.out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func baseEnv() []string { return []string{"PATH=" + os.Getenv("PATH"), "LANG=C", "TZ=UTC"} }

func writeFile(t *testing.T, path string, b []byte, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, b, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

// startSSHD starts a private sshd on a free 127.0.0.1 port whose keys come
// from the agent with data directory dataDir; its host key's .pub is
// published for the agent's inventory (the console's SSH client pins it).
// The console reaches it with the terminal's port parameter, through an
// agent that allows the port.
func startSSHD(t *testing.T, dataDir string) {
	t.Helper()
	dir := t.TempDir()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(dir, "ssh_host_ed25519_key")
	writeFile(t, key, pem.EncodeToMemory(block), 0o600)
	writeFile(t, key+".pub", []byte(harness.AuthorizedKey(t, priv.Public())+" root@test\n"), 0o644)
	config := filepath.Join(dir, "sshd_config")
	lines := []string{
		"# a kaginashi browser test sshd",
		"Port PORT",
		"ListenAddress 127.0.0.1",
		"HostKey " + key,
		"PidFile " + filepath.Join(dir, "sshd.pid"),
		"UsePAM no",
		"AuthorizedKeysFile none",
		"AuthorizedKeysCommand " + world.agent + " authorized-keys --data-dir " + dataDir + " %u %f",
		"AuthorizedKeysCommandUser nobody",
		"PubkeyAuthentication yes",
		"PasswordAuthentication no",
		"KbdInteractiveAuthentication no",
		"PermitRootLogin no",
		"LogLevel VERBOSE",
	}
	out, _ := exec.Command(world.sshd, "-V").CombinedOutput()
	var major, minor int
	if i := strings.Index(string(out), "OpenSSH_"); i >= 0 {
		fmt.Sscanf(string(out[i:]), "OpenSSH_%d.%d", &major, &minor)
	}
	if major > 9 || (major == 9 && minor >= 8) {
		lines = append(lines, "PerSourcePenalties no")
	}
	for attempt := 0; ; attempt++ {
		port := harness.FreePort(t)
		writeFile(t, config, []byte(strings.ReplaceAll(strings.Join(lines, "\n")+"\n", "Port PORT", "Port "+strconv.Itoa(port))), 0o644)
		p := start(t, baseEnv(), world.sshd, "-D", "-e", "-f", config)
		deadline := time.Now().Add(20 * time.Second)
		for !strings.Contains(p.out.String(), "Server listening on") && !p.exited() && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if !p.exited() && strings.Contains(p.out.String(), "Server listening on") {
			world.sshdConfig, world.sshPort = config, port
			return
		}
		// A port taken meanwhile: try another.
		if !strings.Contains(p.out.String(), "Address already in use") || attempt == 3 {
			t.Fatalf("sshd on 127.0.0.1:%d did not start:\n%s", port, p.out)
		}
	}
}

func TestConsoleInBrowser(t *testing.T) {
	if world.skip != "" {
		t.Skip(world.skip)
	}
	begin := time.Now()
	s := harness.StartServer(t, "sqlite", "--region", region, "--account-id", account, "--rate-limit=-1")
	if s.Region != region || s.Account != account {
		t.Fatalf("server runs in %s/%s, want %s/%s", s.Region, s.Account, region, account)
	}
	// The agent's data directory, under the safe directory: sshd's
	// AuthorizedKeysCommand runs as nobody and reads DIR/keys.
	parent, err := os.MkdirTemp(world.safe, "web-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(parent, 0o755); err != nil {
		t.Fatal(err)
	}
	dataDir := filepath.Join(parent, "data")
	startSSHD(t, dataDir)

	home := t.TempDir()
	clientEnv := append(baseEnv(), "HOME="+home, "AWS_ENDPOINT_URL="+s.URL(), "AWS_CA_BUNDLE="+s.CAPath(), "AWS_REGION="+s.Region,
		"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null", "AWS_ACCESS_KEY_ID="+s.Root.ID, "AWS_SECRET_ACCESS_KEY="+s.Root.Secret)
	cmd := exec.Command(harness.Kaginashi, "agent-token", "create", "--output", "json", "--max-uses", "1", "--ttl", "10m")
	cmd.Env = clientEnv
	out, err := cmd.Output()
	var tok struct {
		Token string `json:"token"`
	}
	if err != nil || json.Unmarshal(out, &tok) != nil || tok.Token == "" {
		t.Fatalf("kaginashi agent-token create: %v\n%s", err, out)
	}
	ag := start(t, append(baseEnv(), "HOME=/"), world.agent, "run", "--server", s.URL(), "--data-dir", dataDir,
		"--ca-file", s.CAPath(), "--join-token", tok.Token, "--tag", "Name=web", "--tag", "team=web", "--sshd-config", world.sshdConfig,
		"--allow-port", strconv.Itoa(world.sshPort))
	ag.waitFor(t, "the agent", `msg="connected to the server"`, 30*time.Second)
	b, err := os.ReadFile(filepath.Join(dataDir, "agent.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg agent.Config
	if err := json.Unmarshal(b, &cfg); err != nil || !strings.HasPrefix(cfg.InstanceID, "i-") {
		t.Fatalf("agent.json: %v %s", err, b)
	}
	t.Logf("world set up in %v: server %s, instance %s, OS user %s", time.Since(begin).Round(time.Millisecond), s.URL(), cfg.InstanceID, world.user)

	shots := filepath.Join(world.root, "test", "browser", "screenshots")
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	node := exec.CommandContext(ctx, "node", filepath.Join(world.root, "test", "browser", "run.mjs"))
	node.Dir = filepath.Join(world.root, "test", "browser")
	node.Env = append(baseEnv(), "HOME="+home,
		"KG_URL="+s.URL(), "KG_ACCOUNT="+s.Account, "KG_REGION="+s.Region,
		"KG_ROOT_SECRET="+s.Root.Secret, "KG_INSTANCE_ID="+cfg.InstanceID, "KG_OS_USER="+world.user, "KG_SSH_PORT="+strconv.Itoa(world.sshPort),
		"KG_SEED_POLICY="+filepath.Join(world.root, "examples", "seed-policy-filled.json"),
		"KG_SCREENSHOTS="+shots, "KG_CHROMIUM=chromium")
	res := &harness.SyncBuffer{}
	node.Stdout, node.Stderr = res, res
	err = node.Run()
	t.Logf("browser tests (%v):\n%s", time.Since(begin).Round(time.Millisecond), res)
	if err != nil {
		t.Errorf("node test/browser/run.mjs: %v", err)
		t.Logf("server log (tail):\n%s", tail(s.Stderr.String(), 60))
		t.Logf("agent log (tail):\n%s", tail(ag.out.String(), 30))
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
