package console

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kaginashi/kaginashi/internal/authkeys"
	"github.com/kaginashi/kaginashi/test/e2e/harness"
)

// TestTerminalNamesSigningKeyProblem: the host's agent pins a signing key
// that sshd's AuthorizedKeysCommand (run as nobody) cannot read —
// identity.json made 0600. Pushes still succeed (the agent verifies them
// in memory), so the login fails at sshd; the console's terminal says why
// in the agent's words instead of guessing at the user, and the instance
// list carries the problem.
func TestTerminalNamesSigningKeyProblem(t *testing.T) {
	if world.skip != "" {
		t.Skip(world.skip)
	}
	s := harness.StartServer(t, "sqlite", "--rate-limit=-1")
	h := startHost(t, s)
	if err := h.agent.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	<-h.agent.Done()
	pub := authkeys.PublicPath(h.dataDir)
	if err := os.Chmod(pub, 0o600); err != nil {
		t.Fatal(err)
	}
	h.agent = harness.Spawn(t, "agent (identity.json 0600)", append(harness.BaseEnv(), "HOME=/"), world.agent, s.AgentArgs(h.dataDir,
		"--sshd-config", h.sshd.Config, "--allow-port", strconv.Itoa(h.port))...)
	h.agent.WaitOutput(t, harness.AgentConnected, 1, 30*time.Second)

	root := newBrowser(t, s)
	if st, m := root.signIn(t, "root", s.Root.Secret, ""); st != 200 {
		t.Fatalf("root sign-in: %d %v", st, m)
	}
	st, m, _ := root.do(t, "GET", "/console/api/instances", nil)
	list, _ := m["instances"].([]any)
	if st != 200 || len(list) != 1 || !strings.Contains(fmt.Sprint(get(list[0].(map[string]any), "signingKeyProblem")), "mode 0600") {
		t.Errorf("instances: %d %v", st, m)
	}

	tm := openTerminal(t, root, h, "root")
	code := tm.close(t)
	e := tm.frame("error")
	msg := fmt.Sprint(get(e, "message"))
	if code != 4500 || get(e, "code") != "AuthenticationFailed" || !strings.Contains(msg, "signs pushed keys") || !strings.Contains(msg, "mode 0600") {
		t.Errorf("close %v, error %v", code, e)
	}

	// Fixed (and the agent reconnected): the list says nothing, the
	// login works.
	if err := os.Chmod(pub, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := h.agent.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	<-h.agent.Done()
	h.agent = harness.Spawn(t, "agent (fixed)", append(harness.BaseEnv(), "HOME=/"), world.agent, s.AgentArgs(h.dataDir,
		"--sshd-config", h.sshd.Config, "--allow-port", strconv.Itoa(h.port))...)
	h.agent.WaitOutput(t, harness.AgentConnected, 1, 30*time.Second)
	_, m, _ = root.do(t, "GET", "/console/api/instances", nil)
	list, _ = m["instances"].([]any)
	if len(list) != 1 || get(list[0].(map[string]any), "signingKeyProblem") != nil {
		t.Errorf("instances after the fix: %v", m)
	}
	tm = openTerminal(t, root, h, "root")
	tm.until(t, "the shell's prompt", func() bool { return tm.status("Connected.") && tm.prompt() })
	tm.send(t, "exit\n")
	if code := tm.close(t); code != 1000 {
		t.Errorf("after the fix: close %v, frames %v", code, tm.frames)
	}
}
