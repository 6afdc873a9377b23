package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/kaginashi/kaginashi/internal/sshdsetup"
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

func agentRun(t *testing.T, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "KAGINASHI_AGENT_AS_MAIN=1")
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return string(out), ee.ExitCode()
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(out), 0
}

// TestSetupSSHDDryRunAndRefusals: run from a path sshd refuses (this test
// binary, under /tmp), a dry run shows the copy it would install and the
// plan and exits 0 whether or not the install directory exists; a relative
// --sshd-config is refused before anything is installed.
func TestSetupSSHDDryRunAndRefusals(t *testing.T) {
	dir := t.TempDir()
	stock, err := os.ReadFile("../../internal/sshdsetup/testdata/sshd_config/debian-9/sshd_config")
	if err != nil {
		t.Fatal(err)
	}
	conf := dir + "/sshd_config"
	if err := os.WriteFile(conf, stock, 0o644); err != nil {
		t.Fatal(err)
	}
	data := dir + "/data"
	_, statErr := os.Stat(sshdsetup.InstallDir)
	out, code := agentRun(t, "setup-sshd", "--sshd-config", conf, "--data-dir", data, "--dry-run")
	if code != 0 || !strings.Contains(out, "would install ") || !strings.Contains(out, "AuthorizedKeysCommand "+sshdsetup.InstallDir+"/kaginashi-agent authorized-keys") {
		t.Errorf("dry run: exit %d\n%s", code, out)
	}
	if got, _ := os.ReadFile(conf); string(got) != string(stock) {
		t.Error("the dry run changed the configuration")
	}
	if _, err := os.Stat(sshdsetup.InstallDir); (err == nil) != (statErr == nil) {
		t.Errorf("the dry run changed %s", sshdsetup.InstallDir)
	}

	out, code = agentRun(t, "setup-sshd", "--sshd-config", "fx/a.conf", "--data-dir", data)
	if code != 2 || !strings.Contains(out, "must be an absolute path") || strings.Contains(out, "installed") {
		t.Errorf("relative --sshd-config: exit %d\n%s", code, out)
	}
	if _, err := os.Stat(data + "/sshd-setup/installed-command"); err == nil {
		t.Error("a refused setup-sshd recorded an installed copy")
	}
}
