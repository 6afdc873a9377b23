// Package agentexit tests how a real kaginashi-agent ends when the real
// server no longer accepts its identity — its instance deregistered
// (kaginashi instance deregister), or enrolled again with its files on
// another host: it exits with agent.ExitIdentityRevoked (78), the status
// its systemd unit's RestartPreventExitStatus names, so that systemd
// leaves it stopped; its last line says what to do; status.json records
// the revocation and `kaginashi-agent doctor` reports it. (The unit itself
// is checked by cmd/kaginashi-agent's TestUnitVerify with systemd-analyze:
// the test machines do not boot systemd.)
package agentexit

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kaginashi/kaginashi/internal/agent"
	"github.com/kaginashi/kaginashi/test/e2e/harness"
)

var agentBin string

func TestMain(m *testing.M) {
	bin, err := harness.BuildKaginashi("kaginashi-agentexit-bin-", "./cmd/kaginashi-agent")
	if err != nil {
		fmt.Fprintln(os.Stderr, "agentexit:", err)
		if bin != "" {
			os.RemoveAll(bin)
		}
		os.Exit(2)
	}
	agentBin = filepath.Join(bin, "kaginashi-agent")
	code := m.Run()
	os.RemoveAll(bin)
	os.Exit(code)
}

// startAgent enrolls a real agent in dir with a new join token and waits
// for it to connect.
func startAgent(t *testing.T, s *harness.Server, name, dir string) *harness.Process {
	t.Helper()
	a := harness.Spawn(t, name, append(harness.BaseEnv(), "HOME="+dir), agentBin, s.AgentArgs(dir, "--join-token", s.JoinToken(t, 1))...)
	a.WaitOutput(t, harness.AgentConnected, 1, harness.Bound(30*time.Second))
	return a
}

// wantRevokedExit waits for the agent to stop by itself and checks how:
// exit status 78, its last line saying to enroll again or remove the
// service, status.json's revoked state, and doctor's agent-connected.
func wantRevokedExit(t *testing.T, a *harness.Process, dir, id, why string) {
	t.Helper()
	// The agent retries for RevokedAfter (10 s) before it gives up.
	select {
	case <-a.Done():
	case <-time.After(harness.Bound(40 * time.Second)):
		t.Fatalf("the agent did not stop after %s:\n%s", why, harness.Tail(a.Output.String(), 20))
	}
	var ee *exec.ExitError
	if !errors.As(a.Err(), &ee) || ee.ExitCode() != agent.ExitIdentityRevoked {
		t.Fatalf("the agent ended with %v, want exit status %d\n%s", a.Err(), agent.ExitIdentityRevoked, harness.Tail(a.Output.String(), 20))
	}
	last := harness.Tail(a.Output.String(), 1)
	for _, s := range []string{"this agent identity is no longer valid", "enroll again with a new join token", "install-service --data-dir " + dir + " --remove"} {
		if !strings.Contains(last, s) {
			t.Errorf("the agent's last line lacks %q:\n%s", s, last)
		}
	}
	if n := strings.Count(a.Output.String(), "the server refused this agent's identity; retrying"); n < 2 {
		t.Errorf("the agent gave up after %d refusal(s): want it to retry for a while first\n%s", n, a.Output.String())
	}

	st, err := agent.Paths{Dir: dir}.ReadStatus()
	if err != nil {
		t.Fatal(err)
	}
	if !st.Revoked || st.RevokedAt.IsZero() || st.Connected || st.InstanceID != id || !strings.Contains(st.LastError, "no longer valid") {
		t.Errorf("status.json: %+v", st)
	}

	// doctor (the rest of its checks are about this machine's sshd).
	cmd := exec.Command(agentBin, "doctor", "--data-dir", dir, "--sshd-config", filepath.Join(t.TempDir(), "sshd_config"), "--output", "json")
	cmd.Env = harness.BaseEnv()
	out, err := cmd.Output()
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("doctor: %v, want exit status 1\n%s", err, out)
	}
	var rep struct {
		Checks []struct{ Name, Status, Message, Fix string }
	}
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("doctor --output json: %v\n%s", err, out)
	}
	found := false
	for _, c := range rep.Checks {
		if c.Name != "agent-connected" {
			continue
		}
		found = true
		if c.Status != "fail" || !strings.Contains(c.Message, "no longer accepts this host's agent identity (instance "+id) ||
			!strings.Contains(c.Message, "exit status 78") || !strings.Contains(c.Fix, "--join-token TOKEN") || !strings.Contains(c.Fix, "--remove") {
			t.Errorf("doctor's agent-connected: %+v", c)
		}
	}
	if !found {
		t.Errorf("doctor has no agent-connected check:\n%s", out)
	}
}

func TestRevokedAgentExits(t *testing.T) {
	s := harness.StartServer(t, "sqlite", "--rate-limit=-1")

	t.Run("Deregistered", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "host")
		a := startAgent(t, s, "deregistered", dir)
		id := harness.InstanceID(t, dir)
		cmd := exec.Command(harness.Kaginashi, "instance", "deregister", "--instance-id", id)
		cmd.Env = s.AdminEnv(t)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("kaginashi instance deregister: %v\n%s", err, out)
		}
		wantRevokedExit(t, a, dir, id, "its instance was deregistered")
	})

	t.Run("EnrolledElsewhere", func(t *testing.T) {
		// The identity's files copied to another host, which enrolls with
		// them: the instance is that host's now.
		dir := filepath.Join(t.TempDir(), "host")
		a := startAgent(t, s, "original", dir)
		id := harness.InstanceID(t, dir)
		clone := filepath.Join(t.TempDir(), "clone")
		if out, err := exec.Command("cp", "-a", dir, clone).CombinedOutput(); err != nil {
			t.Fatalf("cp: %v\n%s", err, out)
		}
		b := startAgent(t, s, "clone", clone)
		if got := harness.InstanceID(t, clone); got != id {
			t.Fatalf("the clone enrolled as %s, want %s (it presented the identity)", got, id)
		}
		wantRevokedExit(t, a, dir, id, "its identity was enrolled again elsewhere")
		// The clone holds the instance and was not told anything.
		if b.Exited() {
			t.Fatalf("the agent holding the instance stopped:\n%s", harness.Tail(b.Output.String(), 20))
		}
		if st, err := (agent.Paths{Dir: clone}).ReadStatus(); err != nil || st.Revoked || !st.Connected {
			t.Errorf("the clone's status.json: %+v %v", st, err)
		}
	})
}
