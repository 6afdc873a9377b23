package agentmetrics

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kaginashi/kaginashi/internal/authkeys"
	"github.com/kaginashi/kaginashi/test/e2e/harness"
)

var serverMetricsRE = regexp.MustCompile(`msg="metrics serving" listen=(\S+)`)

// TestSigningKeyProblemReachesServer: a real agent whose pinned signing
// key the AuthorizedKeysCommand cannot read (identity.json made 0600, as
// a careless chmod would) reports it with its hello; the real server logs
// it with the instance, counts it in kaginashi_agents_signing_key_problem,
// and, once the file is right and the agent reconnects, logs its end and
// counts 0. The agent's own gauge says it too.
func TestSigningKeyProblemReachesServer(t *testing.T) {
	s := harness.StartServer(t, "sqlite", "--metrics-listen", "127.0.0.1:0", "--rate-limit=-1")
	var serverMetrics string
	deadline := time.Now().Add(bound(10 * time.Second))
	for serverMetrics == "" {
		if m := serverMetricsRE.FindStringSubmatch(s.Stderr.String()); m != nil {
			serverMetrics = "http://" + m[1] + "/metrics"
		} else if time.Now().After(deadline) {
			t.Fatalf("no metrics listener in the server's log:\n%s", s.Stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	gauge := func() string {
		t.Helper()
		resp, err := http.Get(serverMetrics)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "kaginashi_agents_signing_key_problem ") {
				return strings.TrimPrefix(l, "kaginashi_agents_signing_key_problem ")
			}
		}
		t.Fatalf("no kaginashi_agents_signing_key_problem in the server's metrics:\n%s", b)
		return ""
	}
	dir := t.TempDir()
	dataDir := filepath.Join(dir, "agent")
	env := append(harness.BaseEnv(), "HOME="+dir)
	ag := harness.Spawn(t, "agent", env, agentBin, s.AgentArgs(dataDir, "--join-token", s.JoinToken(t, 1))...)
	ag.WaitOutput(t, harness.AgentConnected, 1, bound(30*time.Second))
	instance := harness.InstanceID(t, dataDir)
	if g := gauge(); g != "0" {
		t.Fatalf("a healthy agent: gauge %s", g)
	}
	stop := func(p *harness.Process) {
		t.Helper()
		if err := p.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		<-p.Done()
	}
	stop(ag)

	pub := authkeys.PublicPath(dataDir)
	if err := os.Chmod(pub, 0o600); err != nil {
		t.Fatal(err)
	}
	maddr := "127.0.0.1:" + strconv.Itoa(harness.FreePort(t))
	ag2 := harness.Spawn(t, "agent (identity.json 0600)", env, agentBin, s.AgentArgs(dataDir, "--metrics-listen", maddr)...)
	ag2.WaitOutput(t, harness.AgentConnected, 1, bound(30*time.Second))
	ag2.WaitOutput(t, "logins with pushed keys will fail on this host", 1, bound(5*time.Second))
	ag2.WaitIn(t, s.Stderr, `msg="an agent reports a signing-key problem`, 1, bound(5*time.Second))
	var line string
	for _, l := range strings.Split(s.Stderr.String(), "\n") {
		if strings.Contains(l, "an agent reports a signing-key problem") {
			line = l
		}
	}
	if !strings.Contains(line, "instance="+instance) || !strings.Contains(line, "mode 0600") || !strings.Contains(line, "level=WARN") {
		t.Errorf("the server's line does not name the instance and the problem: %s", line)
	}
	if g := gauge(); g != "1" {
		t.Errorf("with the problem: server gauge %s, want 1", g)
	}
	if v := value(scrape(t, "http://"+maddr+"/metrics"), "kaginashi_agent_signing_key_error"); v != 1 {
		t.Errorf("agent gauge kaginashi_agent_signing_key_error = %v, want 1", v)
	}
	stop(ag2)

	if err := os.Chmod(pub, 0o644); err != nil {
		t.Fatal(err)
	}
	ag3 := harness.Spawn(t, "agent (fixed)", env, agentBin, s.AgentArgs(dataDir)...)
	ag3.WaitOutput(t, harness.AgentConnected, 1, bound(30*time.Second))
	// The session that reported it ended: nothing is counted; the next
	// hello carries no problem, so nothing is logged either.
	if g := gauge(); g != "0" {
		t.Errorf("fixed: server gauge %s, want 0", g)
	}
	if n := strings.Count(s.Stderr.String(), "an agent reports a signing-key problem"); n != 1 {
		t.Errorf("the problem was logged %d times, want once", n)
	}
}
