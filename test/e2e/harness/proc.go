package harness

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kaginashi/kaginashi/internal/syncbuf"
)

// SyncBuffer is an io.Writer safe to read while a process writes it.
type SyncBuffer = syncbuf.Buffer

// ServerConfig says how to start a server process.
type ServerConfig struct {
	DataDir  string   // required
	Store    string   // --store; "" for the default (DIR/kaginashi.db)
	Args     []string // more flags (--region, --account-id, ...)
	Env      []string // more environment (KAGINASHI_ROOT_...)
	Insecure bool     // --insecure-http
	Port     int      // 0: a free port (another one if it is taken meanwhile)
}

// Proc is a running (or exited) server process.
type Proc struct {
	Cfg            ServerConfig
	Port           int
	Cmd            *exec.Cmd
	Stdout, Stderr *SyncBuffer
	done           chan struct{}
	waitErr        error
}

// FreePort returns a port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Launch starts the process without waiting for it to serve. It is killed
// when the test ends if it still runs.
func Launch(t testing.TB, cfg ServerConfig) *Proc {
	t.Helper()
	if Kaginashi == "" {
		t.Fatal("harness.Kaginashi is not set: build the binary in TestMain")
	}
	p := &Proc{Cfg: cfg, Port: cfg.Port, Stdout: &SyncBuffer{}, Stderr: &SyncBuffer{}, done: make(chan struct{})}
	if p.Port == 0 {
		p.Port = FreePort(t)
	}
	args := []string{"server", "--data-dir", cfg.DataDir, "--listen", "127.0.0.1:" + strconv.Itoa(p.Port)}
	if cfg.Store != "" {
		args = append(args, "--store", cfg.Store)
	}
	if cfg.Insecure {
		args = append(args, "--insecure-http")
	}
	args = append(args, cfg.Args...)
	p.Cmd = exec.Command(Kaginashi, args...)
	// A small, explicit environment: nothing from the developer's AWS setup.
	p.Cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + cfg.DataDir, "TZ=UTC"}, cfg.Env...)
	p.Cmd.Stdout, p.Cmd.Stderr = p.Stdout, p.Stderr
	if err := p.Cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.waitErr = p.Cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		// A test that failed before stopping the process must not leave it.
		select {
		case <-p.done:
		default:
			p.Cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// Exited says whether the process has exited.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Wait waits for the process to exit and returns its exit code.
func (p *Proc) Wait(t testing.TB, timeout time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(timeout):
		t.Fatalf("server did not exit within %v\nstderr:\n%s", timeout, p.Stderr)
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

// Stop sends SIGTERM and asserts a clean exit.
func (p *Proc) Stop(t testing.TB) {
	t.Helper()
	if p.Exited() {
		t.Fatalf("server exited before it was stopped (%v)\nstderr:\n%s", p.waitErr, p.Stderr)
	}
	if err := p.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := p.Wait(t, 30*time.Second); code != 0 {
		t.Fatalf("server exited with %d after SIGTERM, want 0\nstderr:\n%s", code, p.Stderr)
	}
	if !strings.Contains(p.Stderr.String(), "kaginashi stopping") {
		t.Errorf("server did not log its graceful stop\nstderr:\n%s", p.Stderr)
	}
}

// Scheme is http or https.
func (p *Proc) Scheme() string {
	if p.Cfg.Insecure {
		return "http"
	}
	return "https"
}

// URL is the server's base URL, by the name its certificate carries.
func (p *Proc) URL() string { return fmt.Sprintf("%s://localhost:%d", p.Scheme(), p.Port) }

// CAPath is the data dir's CA certificate (DIR/tls/ca.pem).
func (p *Proc) CAPath() string { return filepath.Join(p.Cfg.DataDir, "tls", "ca.pem") }

// HTTPClient trusts the data dir's CA (when TLS is on).
func (p *Proc) HTTPClient(t testing.TB) *http.Client {
	t.Helper()
	tr := &http.Transport{MaxIdleConnsPerHost: 16, ForceAttemptHTTP2: true}
	if !p.Cfg.Insecure {
		pem, err := os.ReadFile(p.CAPath())
		if err != nil {
			t.Fatalf("reading the CA: %v", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			t.Fatalf("%s holds no certificate", p.CAPath())
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return &http.Client{Transport: tr, Timeout: 60 * time.Second}
}

// WaitHealthy polls GET /healthz until it answers 200; it fails the test if
// the process exits first. It returns false, without failing, when the
// port turned out to be taken, so that the caller can try another.
func (p *Proc) WaitHealthy(t testing.TB) bool {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var client *http.Client
	for {
		if p.Exited() {
			if strings.Contains(p.Stderr.String(), "address already in use") {
				return false
			}
			t.Fatalf("server exited before serving (%v)\nstderr:\n%s", p.waitErr, p.Stderr)
		}
		if client == nil && (p.Cfg.Insecure || FileExists(p.CAPath())) {
			client = p.HTTPClient(t)
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
			t.Fatalf("server not healthy after 60s\nstderr:\n%s", p.Stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// FileExists says whether p exists.
func FileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// StartProc launches a server and waits until it serves, retrying with
// another port if the chosen one was taken meanwhile (unless cfg.Port
// fixes it).
func StartProc(t testing.TB, cfg ServerConfig) *Proc {
	t.Helper()
	for attempt := 0; ; attempt++ {
		p := Launch(t, cfg)
		if p.WaitHealthy(t) {
			return p
		}
		if cfg.Port != 0 {
			t.Fatalf("port %d is taken\nstderr:\n%s", cfg.Port, p.Stderr)
		}
		if attempt == 3 {
			t.Fatalf("no free port after 4 attempts\nstderr:\n%s", p.Stderr)
		}
	}
}

// Identity reads the account and region the server logged at start.
func (p *Proc) Identity(t testing.TB) (account, region string) {
	t.Helper()
	// The line is logged before the server serves, but it reaches
	// p.Stderr through a pipe and a copying goroutine, which may lag
	// behind the first answer of /healthz.
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(p.Stderr.String(), "kaginashi serving") && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	for _, line := range strings.Split(p.Stderr.String(), "\n") {
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
		t.Fatalf("no account/region in the server's start line\nstderr:\n%s", p.Stderr)
	}
	return account, region
}
