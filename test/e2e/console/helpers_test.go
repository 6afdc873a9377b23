package console

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kaginashi/kaginashi/test/e2e/harness"
)

// host is an sshd whose AuthorizedKeysCommand serves an agent's keys, and
// that agent, enrolled, reporting the sshd's host key and allowing its port.
type host struct {
	id      string
	port    int
	hostKey string
	sshd    *harness.SSHD
	agent   *harness.Process
	dataDir string // the agent's
}

func startHost(t *testing.T, s *harness.Server) *host {
	t.Helper()
	dataDir := harness.AgentDataDir(t, world.safe, "host")
	t.Cleanup(func() { os.RemoveAll(filepath.Dir(dataDir)) })
	h := &host{dataDir: dataDir}
	// The agent reads the .pub next to each HostKey of --sshd-config.
	h.sshd = harness.StartSSHD(t, harness.SSHDOptions{Bin: world.sshd, PublishHostKey: true, Lines: []string{
		"AuthorizedKeysFile none",
		"AuthorizedKeysCommand " + world.agent + " authorized-keys --data-dir " + dataDir + " %u %f",
		"AuthorizedKeysCommandUser nobody",
		"PermitRootLogin prohibit-password",
	}})
	h.port, h.hostKey = h.sshd.Port, h.sshd.HostKey
	h.agent = harness.Spawn(t, "agent", append(harness.BaseEnv(), "HOME=/"), world.agent, s.AgentArgs(dataDir,
		"--join-token", s.JoinToken(t, 1), "--sshd-config", h.sshd.Config, "--allow-port", strconv.Itoa(h.port), "--tag", "Name=web")...)
	h.agent.WaitOutput(t, harness.AgentConnected, 1, 30*time.Second)
	h.id = harness.InstanceID(t, dataDir)
	return h
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

// newBrowserFrom is newBrowser whose connections come from the loopback
// address ip (127.0.0.2, …): another client, for per-address limits.
func newBrowserFrom(t testing.TB, s *harness.Server, ip net.IP) *browser {
	b := newBrowser(t, s)
	tr, ok := b.http.Transport.(*http.Transport)
	if !ok {
		t.Fatalf("the harness client's transport is a %T", b.http.Transport)
	}
	tr = tr.Clone()
	tr.DialContext = (&net.Dialer{LocalAddr: &net.TCPAddr{IP: ip}}).DialContext
	b.http.Transport = tr
	return b
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
	return harness.AuditEvents(t, path, name)
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
