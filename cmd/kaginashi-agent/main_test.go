package main

import (
	"os"
	"os/exec"
	"testing"
)

// TestMain lets the test binary act as kaginashi-agent for exec tests.
func TestMain(m *testing.M) {
	if os.Getenv("KAGINASHI_AGENT_AS_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func agentExit(t *testing.T, args ...string) int {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "KAGINASHI_AGENT_AS_MAIN=1")
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0
}

func TestExitCodes(t *testing.T) {
	for _, sub := range []string{"run", "setup-sshd", "install-service", "doctor", "authorized-keys"} {
		if code := agentExit(t, sub, "--help"); code != 0 {
			t.Errorf("kaginashi-agent %s --help: exit %d, want 0", sub, code)
		}
		if code := agentExit(t, sub, "--no-such-flag"); code != 2 {
			t.Errorf("kaginashi-agent %s --no-such-flag: exit %d, want 2", sub, code)
		}
	}
	if code := agentExit(t, "no-such-command"); code != 2 {
		t.Errorf("unknown command: exit %d, want 2", code)
	}
	if code := agentExit(t, "version"); code != 0 {
		t.Errorf("version: exit %d", code)
	}
}
