package deregister

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kaginashi/kaginashi/test/e2e/harness"
)

// TestReenrollAcrossReplicas: two replicas on one PostgreSQL, the agent
// connected to A; the host re-enrolls through B (the agent's data
// directory, old certificate included, enrolled again with a new key:
// same instance). B asks A, the holder of the replaced identity's session,
// to end it: A audits PeerEndSession (reason replaced, a session ended),
// the old agent is cut off and, refused when it reconnects, stops; the
// new agent stays connected through B, and a key sent through A reaches
// it. Before, only the enrolling replica ended a replaced session: the old
// agent stayed connected to A, taking keys, until its next inventory.
func TestReenrollAcrossReplicas(t *testing.T) {
	a, b, auditA := twoReplicas(t)

	port := echoServer(t)
	oldDir := filepath.Join(t.TempDir(), "old")
	old := harness.Spawn(t, "old", append(harness.BaseEnv(), "HOME="+oldDir), world.agent,
		a.AgentArgs(oldDir, "--join-token", a.JoinToken(t, 1), "--allow-port", strconv.Itoa(port))...)
	old.WaitOutput(t, harness.AgentConnected, 1, harness.Bound(30*time.Second))
	id := harness.InstanceID(t, oldDir)
	if err := push(t, b, b.Root, id); err != nil {
		t.Fatalf("SendSSHPublicKey through B before: %v", err)
	}

	// The host enrolls again, through B, from a copy of its identity.
	newDir := filepath.Join(t.TempDir(), "new")
	if err := os.MkdirAll(newDir, 0o700); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(oldDir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if e.Type().IsRegular() {
			names = append(names, e.Name())
		}
	}
	harness.CopyDataFiles(t, oldDir, newDir, names...)
	reenrolled := harness.Spawn(t, "new", append(harness.BaseEnv(), "HOME="+newDir), world.agent,
		b.AgentArgs(newDir, "--join-token", b.JoinToken(t, 1), "--allow-port", strconv.Itoa(port))...)
	reenrolled.WaitOutput(t, harness.AgentConnected, 1, harness.Bound(30*time.Second))
	if got := harness.InstanceID(t, newDir); got != id {
		t.Fatalf("the re-enrollment with the old certificate gave instance %s, want %s", got, id)
	}

	out := waitExit(t, old, "a re-enrollment through another replica replaced its identity")
	if !strings.Contains(out, enrollHint) {
		t.Errorf("the replaced agent's last words do not say %q:\n%s", enrollHint, harness.Tail(out, 20))
	}
	var ended bool
	for _, ev := range harness.AuditEvents(t, auditA, "PeerEndSession") {
		p, _ := ev["requestParameters"].(map[string]any)
		if p["reason"] == "replaced" && p["instanceId"] == id && p["sessionEnded"] == true && ev["errorCode"] == nil {
			ended = true
		}
	}
	if !ended {
		t.Errorf("A audited no PeerEndSession ending the replaced session: %v\nA:\n%s", harness.AuditEvents(t, auditA, "PeerEndSession"), harness.Tail(a.Stderr.String(), 20))
	}
	// The new identity stays, and takes keys through either replica.
	time.Sleep(time.Second)
	if strings.Count(reenrolled.Output.String(), harness.AgentConnected) != 1 {
		t.Errorf("the re-enrolled agent was disconnected:\n%s", harness.Tail(reenrolled.Output.String(), 20))
	}
	for _, s := range []*harness.Server{a, b} {
		if err := push(t, s, s.Root, id); err != nil {
			t.Errorf("SendSSHPublicKey through %s to the re-enrolled agent: %v", s.URL(), err)
		}
	}
}
