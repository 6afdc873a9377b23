package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kaginashi/kaginashi/internal/server"
	"github.com/kaginashi/kaginashi/internal/store"
	"github.com/kaginashi/kaginashi/internal/store/postgres/pgtest"
)

// binary is the kaginashi binary TestMain built.
var binary string

func TestMain(m *testing.M) {
	dir, err := buildBinary()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(2)
	}
	binary = filepath.Join(dir, "kaginashi")
	// pgtest.Main exits the process, so the binary's directory cannot be
	// removed afterwards: each run reaps the directories of runs whose
	// process is gone instead.
	pgtest.Main(m)
}

const binDirPrefix = "kaginashi-e2e-bin-"

// buildBinary builds ./cmd/kaginashi once for the whole package.
func buildBinary() (string, error) {
	reapStaleBinDirs()
	dir, err := os.MkdirTemp("", binDirPrefix+strconv.Itoa(os.Getpid())+"-")
	if err != nil {
		return "", err
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		gobin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	out, err := exec.Command(gobin, "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %v", err)
	}
	root := filepath.Dir(strings.TrimSpace(string(out)))
	args := []string{"build", "-o", filepath.Join(dir, "kaginashi")}
	if os.Getenv("KAGINASHI_E2E_RACE") == "1" {
		args = append(args, "-race")
	}
	cmd := exec.Command(gobin, append(args, "./cmd/kaginashi")...)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/kaginashi: %v\n%s", err, b)
	}
	return dir, nil
}

// reapStaleBinDirs removes binary directories left by earlier runs whose
// test process no longer exists.
func reapStaleBinDirs() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), binDirPrefix+"*"))
	for _, d := range dirs {
		pidStr, _, _ := strings.Cut(strings.TrimPrefix(filepath.Base(d), binDirPrefix), "-")
		pid, err := strconv.Atoi(pidStr)
		if err != nil || pid == os.Getpid() {
			continue
		}
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			os.RemoveAll(d)
		}
	}
}

// syncBuffer is an io.Writer safe to read while a process writes it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// serverConfig says how to start a server process.
type serverConfig struct {
	DataDir  string   // required
	Store    string   // --store; "" for the default (DIR/kaginashi.db)
	Args     []string // more flags (--region, --account-id, ...)
	Env      []string // more environment (KAGINASHI_ROOT_...)
	Insecure bool     // --insecure-http
}

// proc is a running (or exited) server process.
type proc struct {
	cfg            serverConfig
	port           int
	cmd            *exec.Cmd
	stdout, stderr *syncBuffer
	done           chan struct{}
	waitErr        error
}

// freePort returns a port that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// launch starts the process without waiting for it to serve.
func launch(t testing.TB, cfg serverConfig) *proc {
	t.Helper()
	p := &proc{cfg: cfg, port: freePort(t), stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan struct{})}
	args := []string{"server", "--data-dir", cfg.DataDir, "--listen", "127.0.0.1:" + strconv.Itoa(p.port)}
	if cfg.Store != "" {
		args = append(args, "--store", cfg.Store)
	}
	if cfg.Insecure {
		args = append(args, "--insecure-http")
	}
	args = append(args, cfg.Args...)
	p.cmd = exec.Command(binary, args...)
	// A small, explicit environment: nothing from the developer's AWS setup.
	p.cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + cfg.DataDir, "TZ=UTC"}, cfg.Env...)
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.waitErr = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		// A test that failed before stopping the process must not leave it.
		select {
		case <-p.done:
		default:
			p.cmd.Process.Kill()
			<-p.done
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

// wait waits for the process to exit and returns its exit code.
func (p *proc) wait(t testing.TB, timeout time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(timeout):
		t.Fatalf("server did not exit within %v\nstderr:\n%s", timeout, p.stderr)
	}
	if p.waitErr == nil {
		return 0
	}
	var ee *exec.ExitError
	if errors.As(p.waitErr, &ee) {
		return ee.ExitCode()
	}
	t.Fatalf("server: %v", p.waitErr)
	return -1
}

// stop sends SIGTERM and asserts a clean exit.
func (p *proc) stop(t testing.TB) {
	t.Helper()
	if p.exited() {
		t.Fatalf("server exited before it was stopped (%v)\nstderr:\n%s", p.waitErr, p.stderr)
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := p.wait(t, 30*time.Second); code != 0 {
		t.Fatalf("server exited with %d after SIGTERM, want 0\nstderr:\n%s", code, p.stderr)
	}
	if !strings.Contains(p.stderr.String(), "kaginashi stopping") {
		t.Errorf("server did not log its graceful stop\nstderr:\n%s", p.stderr)
	}
}

func (p *proc) scheme() string {
	if p.cfg.Insecure {
		return "http"
	}
	return "https"
}

// URL is the server's base URL, by the name its certificate carries.
func (p *proc) URL() string { return fmt.Sprintf("%s://localhost:%d", p.scheme(), p.port) }

func (p *proc) caPath() string { return filepath.Join(p.cfg.DataDir, "tls", "ca.pem") }

// httpClient trusts the data dir's CA (when TLS is on).
func (p *proc) httpClient(t testing.TB) *http.Client {
	t.Helper()
	tr := &http.Transport{MaxIdleConnsPerHost: 16, ForceAttemptHTTP2: true}
	if !p.cfg.Insecure {
		pem, err := os.ReadFile(p.caPath())
		if err != nil {
			t.Fatalf("reading the CA: %v", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			t.Fatalf("%s holds no certificate", p.caPath())
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return &http.Client{Transport: tr, Timeout: 60 * time.Second}
}

// waitHealthy polls GET /healthz until it answers 200; it fails the test if
// the process exits first. It returns false, without failing, when the
// port turned out to be taken, so that the caller can try another.
func (p *proc) waitHealthy(t testing.TB) bool {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var client *http.Client
	for {
		if p.exited() {
			if strings.Contains(p.stderr.String(), "address already in use") {
				return false
			}
			t.Fatalf("server exited before serving (%v)\nstderr:\n%s", p.waitErr, p.stderr)
		}
		if client == nil && (p.cfg.Insecure || fileExists(p.caPath())) {
			client = p.httpClient(t)
		}
		if client != nil {
			resp, err := client.Get(p.URL() + "/healthz")
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					return true
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("server not healthy after 60s\nstderr:\n%s", p.stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// startProc launches a server and waits until it serves, retrying with
// another port if the chosen one was taken meanwhile.
func startProc(t testing.TB, cfg serverConfig) *proc {
	t.Helper()
	for attempt := 0; ; attempt++ {
		p := launch(t, cfg)
		if p.waitHealthy(t) {
			return p
		}
		if attempt == 3 {
			t.Fatalf("no free port after 4 attempts\nstderr:\n%s", p.stderr)
		}
	}
}

// Server is a serving kaginashi process with what clients need to reach it.
type Server struct {
	*proc
	Engine    string // sqlite or postgres
	StoreURL  string // as the server opens it
	Region    string
	Account   string
	Root      Creds
	HTTP      *http.Client
	Calls     *callLog
	startedAt time.Time
}

// Creds are an access key.
type Creds struct {
	Who    string // "root", a user name, or "" for keys nobody owns
	ID     string
	Secret string
}

// storeFor returns the --store URL for an engine and data dir ("" for
// SQLite's default).
func storeFor(t testing.TB, engine string) string {
	t.Helper()
	switch engine {
	case "sqlite":
		return ""
	case "postgres":
		return pgtest.Start(t)
	}
	t.Fatalf("unknown engine %q", engine)
	return ""
}

// startServer starts a server on engine with the given extra flags and
// stops it (asserting a clean exit) when the test ends.
func startServer(t testing.TB, engine string, args ...string) *Server {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data")
	storeURL := storeFor(t, engine)
	p := startProc(t, serverConfig{DataDir: dir, Store: storeURL, Args: args})
	t.Cleanup(func() { p.stop(t) })
	s := &Server{proc: p, Engine: engine, StoreURL: storeURL, Calls: &callLog{}, startedAt: time.Now()}
	if s.StoreURL == "" {
		s.StoreURL = "sqlite:" + filepath.Join(dir, "kaginashi.db")
	}
	s.HTTP = p.httpClient(t)
	root, err := readRootCredentials(filepath.Join(dir, "root-credentials"))
	if err != nil {
		t.Fatal(err)
	}
	s.Root = root
	s.Account, s.Region = p.identity(t)
	return s
}

// identity reads the account and region the server logged at start.
func (p *proc) identity(t testing.TB) (account, region string) {
	t.Helper()
	for _, line := range strings.Split(p.stderr.String(), "\n") {
		if !strings.Contains(line, "kaginashi serving") {
			continue
		}
		for _, f := range strings.Fields(line) {
			if v, ok := strings.CutPrefix(f, "account="); ok {
				account = v
			}
			if v, ok := strings.CutPrefix(f, "region="); ok {
				region = v
			}
		}
	}
	if len(account) != 12 || region == "" {
		t.Fatalf("no account/region in the server's start line\nstderr:\n%s", p.stderr)
	}
	return account, region
}

// readRootCredentials parses DIR/root-credentials (AWS credentials-file
// format, profile kaginashi-root).
func readRootCredentials(path string) (Creds, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Creds{}, err
	}
	c := Creds{Who: "root"}
	section := ""
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = strings.TrimSpace(line[1 : len(line)-1])
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section != "kaginashi-root" {
				continue
			}
			switch strings.TrimSpace(k) {
			case "aws_access_key_id":
				c.ID = strings.TrimSpace(v)
			case "aws_secret_access_key":
				c.Secret = strings.TrimSpace(v)
			}
		}
	}
	if c.ID == "" || c.Secret == "" {
		return c, fmt.Errorf("%s: no [kaginashi-root] aws_access_key_id / aws_secret_access_key:\n%s", path, b)
	}
	return c, nil
}

// openStore opens the server's database from the test process (SQLite in
// WAL mode admits a second process), closed when the test ends.
func (s *Server) openStore(t testing.TB) store.Store {
	t.Helper()
	st, err := server.OpenStore(context.Background(), s.StoreURL)
	if err != nil {
		t.Fatalf("opening the server's store: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// engines are the store engines every API flow runs on.
var engines = []string{"sqlite", "postgres"}
