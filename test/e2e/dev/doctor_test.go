package dev

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kaginashi/kaginashi/test/e2e/harness"
)

type doctorReport struct {
	Checks []struct {
		Name, Status, Message, Fix string
	} `json:"checks"`
	OK bool `json:"ok"`
}

func (r doctorReport) check(t *testing.T, name string) (status, message, fix string) {
	t.Helper()
	for _, c := range r.Checks {
		if c.Name == name {
			return c.Status, c.Message, c.Fix
		}
	}
	t.Fatalf("no %s check in %+v", name, r)
	return
}

// doctorJSON runs a doctor command line (the printed one, with more
// flags) after the printed exports, and decodes its JSON.
func doctorJSON(t *testing.T, exports []string, line string, wantExit int) doctorReport {
	t.Helper()
	out, err := shell(t, t.TempDir(), append(exports, line+" --output json")...)
	code := 0
	if err != nil {
		if !strings.Contains(err.Error(), "exit status 1\n") {
			t.Fatalf("%s: %v, want exit 0 or 1", line, err)
		}
		code = 1
	}
	var r doctorReport
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("%s: not JSON (%v):\n%s", line, err, out)
	}
	if code != wantExit {
		t.Fatalf("%s: exit %d, want %d\n%s", line, code, wantExit, out)
	}
	if r.OK != (wantExit == 0) {
		t.Errorf("%s: ok %v with exit %d", line, r.OK, code)
	}
	return r
}

// TestDoctor runs the doctor line kaginashi dev prints on the healthy
// dev host (every check passes), then breaks one thing at a time: the
// failing check, and only it, says so with its fix.
func TestDoctor(t *testing.T) {
	if skipped != "" {
		t.Skip(skipped)
	}
	dataDir := filepath.Join(t.TempDir(), "dev")
	p := startDev(t, dataDir, harness.FreePort(t))
	out := parse(t, p.stdout.String())
	var doctorLine string
	for _, l := range strings.Split(p.stdout.String(), "\n") {
		if strings.Contains(l, "/kaginashi doctor ") {
			doctorLine = l
		}
	}
	if doctorLine == "" {
		t.Fatalf("no doctor line:\n%s", p.stdout)
	}

	healthy := doctorJSON(t, out.exports, doctorLine, 0)
	wantChecks := []string{"agent-enrolled", "agent-connected", "sshd-config-valid", "sshd-wired", "akc-path", "default-user", "os-supported",
		"server-reachable", "clock-skew", "credentials", "instance-online", "policy-send-ssh-public-key", "policy-open-tunnel", "tunnel"}
	for _, name := range wantChecks {
		st, msg, _ := healthy.check(t, name)
		// This machine may lack its distribution's default user: a
		// warning, not a failure.
		if st != "ok" && !(name == "default-user" && st == "warn") {
			t.Errorf("healthy dev host: %s is %s: %s", name, st, msg)
		}
	}
	if _, msg, _ := healthy.check(t, "policy-send-ssh-public-key"); !strings.Contains(msg, "allowed by kaginashi-dev") {
		t.Errorf("the deciding policy is not named: %s", msg)
	}

	// The agent binary's own doctor sees the same host.
	agentOut, err := shell(t, t.TempDir(), filepath.Join(bin, "kaginashi-agent")+" doctor --data-dir "+filepath.Join(dataDir, "agent")+
		" --sshd-config "+filepath.Join(dataDir, "sshd", "sshd_config")+" --output json")
	if err != nil {
		t.Fatalf("kaginashi-agent doctor: %v\n%s", err, agentOut)
	}

	// A user who may not log in as that OS user.
	r := doctorJSON(t, out.exports, doctorLine+" --os-user nobody", 1)
	if st, msg, fix := r.check(t, "policy-send-ssh-public-key"); st != "fail" || !strings.Contains(msg, "implicit deny") || !strings.Contains(fix, "--os-user nobody") {
		t.Errorf("--os-user nobody: policy-send-ssh-public-key %s %q fix %q", st, msg, fix)
	}
	if st, _, _ := r.check(t, "tunnel"); st != "ok" {
		t.Errorf("--os-user nobody: the tunnel check %s, want ok (only the key push is denied)", st)
	}

	// sshd's AuthorizedKeysCommand made group-writable: sshd would refuse it.
	cfg, err := os.ReadFile(filepath.Join(dataDir, "sshd", "sshd_config"))
	if err != nil {
		t.Fatal(err)
	}
	var akc string
	for _, l := range strings.Split(string(cfg), "\n") {
		if f := strings.Fields(l); len(f) > 1 && f[0] == "AuthorizedKeysCommand" {
			akc = f[1]
		}
	}
	fi, err := os.Stat(akc)
	if err != nil {
		t.Fatalf("the AuthorizedKeysCommand %q: %v", akc, err)
	}
	if err := os.Chmod(akc, fi.Mode().Perm()|0o020); err != nil {
		t.Fatal(err)
	}
	r = doctorJSON(t, out.exports, doctorLine, 1)
	if err := os.Chmod(akc, fi.Mode().Perm()); err != nil {
		t.Fatal(err)
	}
	if st, msg, fix := r.check(t, "akc-path"); st != "fail" || !strings.Contains(msg, "group-writable") || !strings.Contains(fix, "chmod go-w "+akc) {
		t.Errorf("group-writable AuthorizedKeysCommand: akc-path %s %q fix %q", st, msg, fix)
	}
	for _, c := range r.Checks {
		if c.Status == "fail" && c.Name != "akc-path" {
			t.Errorf("%s fails too: %s", c.Name, c.Message)
		}
	}
	p.interrupt(t)
}
