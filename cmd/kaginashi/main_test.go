package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The built binary, as a user runs it: exit codes travel through os.Exit.
func TestBinaryExitCodes(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "kaginashi")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	tests := []struct {
		args []string
		code int
		out  string
	}{
		{[]string{"policy", "validate", "../../examples/seed-policy.json", "--output", "json"}, 1, `"ARN_PLACEHOLDER"`},
		{[]string{"policy", "validate", "../../examples/seed-policy-filled.json"}, 0, "SECURITY_WARNING"},
		{[]string{"policy", "validate"}, 2, ""},
		{[]string{"policy", "simulate", "--policy", "../../examples/seed-policy-filled.json", "--action", "ec2:DescribeInstances", "--resource", "*", "--output", "json"}, 0, `"decision": "allowed"`},
		{[]string{"--version"}, 0, "kaginashi version"},
	}
	for _, tt := range tests {
		cmd := exec.Command(bin, tt.args...)
		cmd.Stdin = strings.NewReader("")
		out, err := cmd.Output()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if code != tt.code || !strings.Contains(string(out), tt.out) {
			t.Errorf("kaginashi %s: exit %d (want %d), stdout:\n%s", strings.Join(tt.args, " "), code, tt.code, out)
		}
	}
	_ = os.Remove(bin)
}
