package console

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/cookiejar"
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

func baseEnv() []string { return []string{"PATH=" + os.Getenv("PATH"), "LANG=C", "TZ=UTC"} }

// process is a child process killed when the test ends.
type process struct {
	name   string
	cmd    *exec.Cmd
	output *harness.SyncBuffer
	done   chan struct{}
}

func spawn(t testing.TB, name string, env []string, bin string, args ...string) *process {
	t.Helper()
	p := &process{name: name, cmd: exec.Command(bin, args...), output: &harness.SyncBuffer{}, done: make(chan struct{})}
	p.cmd.Env = env
	p.cmd.Stdout, p.cmd.Stderr = p.output, p.output
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		select {
		case <-p.done:
			return
		default:
		}
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
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
			t.Fatalf("%s exited before saying %q:\n%s", p.name, want, p.output)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not say %q within %v:\n%s", p.name, want, timeout, p.output)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// cliEnv runs kaginashi commands as root.
func cliEnv(t testing.TB, s *harness.Server) []string {
	return append(baseEnv(), "HOME="+t.TempDir(),
		"AWS_ENDPOINT_URL="+s.URL(), "AWS_CA_BUNDLE="+s.CAPath(), "AWS_REGION="+s.Region, "AWS_CONFIG_FILE=/dev/null",
		"AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(s.Cfg.DataDir, "root-credentials"), "AWS_PROFILE=kaginashi-root")
}

func joinToken(t testing.TB, s *harness.Server) string {
	t.Helper()
	cmd := exec.Command(harness.Kaginashi, "agent-token", "create", "--output", "json", "--max-uses", "1", "--ttl", "10m")
	cmd.Env = cliEnv(t, s)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var tok struct {
		Token string `json:"token"`
	}
	if err != nil || json.Unmarshal(out, &tok) != nil || tok.Token == "" {
		t.Fatalf("kaginashi agent-token create: %v\n%s%s", err, out, stderr.String())
	}
	return tok.Token
}

// host is an sshd whose AuthorizedKeysCommand serves an agent's keys, and
// that agent, enrolled, reporting the sshd's host key and allowing its port.
type host struct {
	id      string
	port    int
	hostKey string
	sshd    *process
	agent   *process
}

func startHost(t *testing.T, s *harness.Server) *host {
	t.Helper()
	parent, err := os.MkdirTemp(world.safe, "host-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(parent) })
	if err := os.Chmod(parent, 0o755); err != nil {
		t.Fatal(err)
	}
	dataDir := filepath.Join(parent, "data")
	dir := t.TempDir()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	keyPath := filepath.Join(dir, "ssh_host_ed25519_key")
	writeFile(t, keyPath, pem.EncodeToMemory(block), 0o600)
	h := &host{hostKey: harness.AuthorizedKey(t, pub)}
	// The agent reads the .pub next to each HostKey of --sshd-config.
	writeFile(t, keyPath+".pub", []byte(h.hostKey+" root@test\n"), 0o644)
	config := filepath.Join(dir, "sshd_config")
	for attempt := 0; ; attempt++ {
		h.port = harness.FreePort(t)
		writeFile(t, config, []byte(strings.Join([]string{
			"Port " + strconv.Itoa(h.port),
			"ListenAddress 127.0.0.1",
			"HostKey " + keyPath,
			"PidFile " + filepath.Join(dir, "sshd.pid"),
			"UsePAM no",
			"AuthorizedKeysFile none",
			"AuthorizedKeysCommand " + world.agent + " authorized-keys --data-dir " + dataDir + " %u %f",
			"AuthorizedKeysCommandUser nobody",
			"PubkeyAuthentication yes",
			"PasswordAuthentication no",
			"KbdInteractiveAuthentication no",
			"PermitRootLogin prohibit-password",
			"LogLevel VERBOSE",
		}, "\n")+"\n"), 0o644)
		h.sshd = spawn(t, "sshd", baseEnv(), world.sshd, "-D", "-e", "-f", config)
		if listening(h.sshd) {
			break
		}
		if attempt == 3 {
			t.Fatalf("sshd found no free port:\n%s", h.sshd.output)
		}
	}
	h.agent = spawn(t, "agent", append(baseEnv(), "HOME=/"), world.agent, "run", "--server", s.URL(), "--data-dir", dataDir,
		"--ca-file", s.CAPath(), "--join-token", joinToken(t, s), "--sshd-config", config, "--allow-port", strconv.Itoa(h.port), "--tag", "Name=web")
	h.agent.waitOutput(t, `msg="connected to the server"`, 30*time.Second)
	b, err := os.ReadFile(filepath.Join(dataDir, "agent.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg agent.Config
	if err := json.Unmarshal(b, &cfg); err != nil || !strings.HasPrefix(cfg.InstanceID, "i-") {
		t.Fatalf("agent.json: %v %s", err, b)
	}
	h.id = cfg.InstanceID
	return h
}

func listening(p *process) bool {
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(p.output.String(), "Server listening on") {
		select {
		case <-p.done:
			return false
		default:
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

func writeFile(t testing.TB, path string, b []byte, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, b, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

// --- the console's HTTP API ----------------------------------------------------

// browser is a console client: a cookie jar and the session's CSRF token,
// sending the Origin a browser sends.
type browser struct {
	s    *harness.Server
	http *http.Client
	csrf string
}

func newBrowser(t testing.TB, s *harness.Server) *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	c := *s.HTTP
	c.Jar = jar
	return &browser{s: s, http: &c}
}

// do sends a request and returns the status and the decoded JSON body.
func (b *browser) do(t testing.TB, method, path string, body any) (int, map[string]any, http.Header) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		j, _ := json.Marshal(body)
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, b.s.URL()+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Origin", b.s.URL())
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if b.csrf != "" {
		req.Header.Set("X-CSRF-Token", b.csrf)
	}
	resp, err := b.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if len(raw) > 0 && strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatalf("%s %s: %v\n%s", method, path, err, raw)
		}
	}
	if m == nil {
		m = map[string]any{"raw": string(raw)}
	}
	return resp.StatusCode, m, resp.Header
}

// signIn signs in and keeps the CSRF token; it returns the status and body.
func (b *browser) signIn(t testing.TB, user, password, mfa string) (int, map[string]any) {
	t.Helper()
	st, m, _ := b.do(t, "POST", "/console/api/signin", map[string]string{"accountId": b.s.Account, "userName": user, "password": password, "mfaCode": mfa})
	if st == http.StatusOK {
		b.csrf, _ = m["csrfToken"].(string)
	}
	return st, m
}

// aws calls /console/api/aws and fails the test unless it succeeds.
func (b *browser) aws(t testing.TB, service, action string, params map[string]any) map[string]any {
	t.Helper()
	st, m, _ := b.do(t, "POST", "/console/api/aws", map[string]any{"service": service, "action": action, "params": params})
	if st != http.StatusOK {
		t.Fatalf("%s %s: %d %v", service, action, st, m)
	}
	r, _ := m["result"].(map[string]any)
	return r
}

func errCode(m map[string]any) string {
	e, _ := m["error"].(map[string]any)
	c, _ := e["code"].(string)
	return c
}

// events reads the audit log's events named name.
func events(t testing.TB, path, name string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
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

func get(m map[string]any, path ...string) any {
	var v any = m
	for _, p := range path {
		mm, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = mm[p]
	}
	return v
}
