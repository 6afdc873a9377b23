package doctor

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestHostRevoked: an agent that stopped because the server revoked its
// identity fails agent-connected with that reason and both ways out — not
// "start it", which would only be refused again; a revocation recorded
// for another instance (the status file of an identity since replaced) is
// not reported for this one.
func TestHostRevoked(t *testing.T) {
	f := healthy(t)
	f.alive = false
	f.status.Connected, f.status.Revoked, f.status.RevokedAt = false, true, now.Add(-5*time.Minute)
	f.status.LastError = "the server refused the connection: 403 Forbidden: this agent identity is no longer valid; enroll again — this host must enroll again"
	m := f.run(t)
	want(t, m, "agent-connected", Fail, "no longer accepts this host's agent identity (instance i-0123456789abcdef0", "--join-token TOKEN")
	c := m["agent-connected"]
	for _, s := range []string{"exit status 78", "5m0s ago", "403 Forbidden"} {
		if !strings.Contains(c.Message, s) {
			t.Errorf("the message lacks %q: %s", s, c.Message)
		}
	}
	if !strings.Contains(c.Fix, "install-service --data-dir "+f.dir+" --remove") || strings.Contains(c.Fix, "systemctl start") {
		t.Errorf("the fix: %s", c.Fix)
	}

	f = healthy(t)
	f.alive = false
	f.status.InstanceID, f.status.Revoked = "i-0fedcba9876543210", true
	want(t, f.run(t), "agent-connected", Fail, "the agent is not running", "systemctl start")
}

// TestRestartCheck: a unit that restarts the agent without
// RestartPreventExitStatus=78 (what install-service wrote before) warns;
// the status by number or by name, in the unit or a drop-in, satisfies
// it; a drop-in's empty assignment clears it; Restart=no or on-abnormal
// needs none.
func TestRestartCheck(t *testing.T) {
	for _, tc := range []struct {
		name, unit, dropIn string
		warn               bool
	}{
		{"older install-service", "Restart=always\nRestartSec=2\n", "", true},
		{"current install-service", "Restart=always\nRestartSec=2\nRestartPreventExitStatus=78\n", "", false},
		{"by name, with others", "Restart=on-failure\nRestartPreventExitStatus=SIGKILL CONFIG\n", "", false},
		{"added in a drop-in", "Restart=always\n", "[Service]\nRestartPreventExitStatus=78\n", false},
		{"cleared in a drop-in", "Restart=always\nRestartPreventExitStatus=78\n", "[Service]\nRestartPreventExitStatus=\nRestartPreventExitStatus=1\n", true},
		{"Restart=always set in a drop-in", "Restart=no\n", "[Service]\nRestart=always\n", true},
		{"no restart", "Restart=no\n", "", false},
		{"systemd's default", "ExecStart=/usr/local/sbin/kaginashi-agent run\n", "", false},
		{"on-abnormal", "Restart=on-abnormal\n", "", false},
		{"not in [Service]", "Restart=always\n[Install]\nRestartPreventExitStatus=78\n", "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			unit := filepath.Join(dir, "kaginashi-agent.service")
			mustWrite(t, unit, []byte("[Unit]\nDescription=x\n[Service]\n"+tc.unit))
			if tc.dropIn != "" {
				if err := os.Mkdir(unit+".d", 0o755); err != nil {
					t.Fatal(err)
				}
				mustWrite(t, filepath.Join(unit+".d", "override.conf"), []byte(tc.dropIn))
			}
			c := unitChecks(unit)
			if !tc.warn {
				if len(c) != 0 {
					t.Errorf("%+v", c)
				}
				return
			}
			if len(c) != 1 || c[0].Status != Warn || c[0].Name != "agent-unit" || !strings.Contains(c[0].Message, "RestartPreventExitStatus=78") ||
				!strings.Contains(c[0].Fix, "install-service again") {
				t.Errorf("%+v", c)
			}
		})
	}
}
