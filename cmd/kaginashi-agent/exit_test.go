package main

import (
	"errors"
	"flag"
	"fmt"
	"os/exec"
	"strings"
	"testing"

	"github.com/kaginashi/kaginashi/internal/agent"
)

// TestExitStatus: each outcome's exit status, and the revoked one distinct
// from every other (systemd's RestartPreventExitStatus keys on it).
func TestExitStatus(t *testing.T) {
	revoked := fmt.Errorf("%w: %w", agent.ErrIdentityRevoked, errors.New("403"))
	for _, c := range []struct {
		name string
		err  error
		want int
	}{
		{"success", nil, 0},
		{"-h", flag.ErrHelp, 0},
		{"usage", usageError{errors.New("bad flag")}, 2},
		{"error", errors.New("enroll: the server refused: token expired"), 1},
		{"revoked", revoked, agent.ExitIdentityRevoked},
		// run adds the fix to the message, keeping the cause.
		{"revoked with the fix", fmt.Errorf("%w; %s", revoked, revokedFix("/d")), agent.ExitIdentityRevoked},
		{"usage wins over anything it wraps", usageError{revoked}, 2},
	} {
		if got := exitStatus(c.err); got != c.want {
			t.Errorf("%s: exitStatus(%v) = %d, want %d", c.name, c.err, got, c.want)
		}
	}
	if s := agent.ExitIdentityRevoked; s == 0 || s == 1 || s == 2 || s > 125 {
		t.Errorf("ExitIdentityRevoked %d clashes with the agent's, the runtime's or the shell's statuses", s)
	}
}

// TestRevokedFix: the fix names both ways out, with the data directory
// when it is not the default.
func TestRevokedFix(t *testing.T) {
	def := revokedFix(agent.DefaultDataDir)
	if strings.Contains(def, "--data-dir") || !strings.Contains(def, "install-service --server URL") ||
		!strings.Contains(def, "--join-token TOKEN") || !strings.Contains(def, "install-service --remove") {
		t.Errorf("default data directory: %s", def)
	}
	if other := revokedFix("/srv/agent"); strings.Count(other, "--data-dir /srv/agent") != 3 {
		t.Errorf("another data directory: %s", other)
	}
}

// TestUnitPreventsRestartOnRevocation: the unit keeps systemd from
// restarting a revoked agent, with the status the agent exits with, which
// systemd knows by the name the docs give (status=78/CONFIG).
func TestUnitPreventsRestartOnRevocation(t *testing.T) {
	unit := unitText("/usr/local/libexec/kaginashi/kaginashi-agent", "/var/lib/kaginashi-agent")
	want := fmt.Sprintf("\nRestartPreventExitStatus=%d\n", agent.ExitIdentityRevoked)
	if !strings.Contains(unit, want) || !strings.Contains(unit, "\nRestart=always\n") {
		t.Errorf("the unit lacks %q:\n%s", strings.TrimSpace(want), unit)
	}
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed")
	}
	out, err := exec.Command(sa, "exit-status", fmt.Sprint(agent.ExitIdentityRevoked)).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "CONFIG") {
		t.Errorf("systemd-analyze exit-status %d: %v\n%s", agent.ExitIdentityRevoked, err, out)
	}
}
