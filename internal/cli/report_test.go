package cli

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
)

// TestReport: what Main prints for a command's error, and its exit code.
func TestReport(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		code int
		out  string
	}{
		{"success", nil, ExitOK, ""},
		{"plain error", errors.New("boom"), ExitUsage, "kaginashi: boom\n"},
		{"usage", usageErr("--x %d: want 1", 0), ExitUsage, "kaginashi: --x 0: want 1\n"},
		{"told already", &exitError{code: 1}, 1, ""},
		// open-tunnel wraps what its stdio tunnel returns; when the tunnel
		// already printed its close reason, nothing more is said (it
		// printed "kaginashi: exit 1").
		{"told already, wrapped", &exitError{code: 1, err: &exitError{code: 1}}, 1, ""},
		{"message inside", &exitError{code: 1, err: &exitError{code: 3, err: errors.New("inner")}}, 3, "kaginashi: inner\n"},
	} {
		var b bytes.Buffer
		if code := report(tc.err, &b); code != tc.code || b.String() != tc.out {
			t.Errorf("%s: report(%v) = %d, %q; want %d, %q", tc.name, tc.err, code, b.String(), tc.code, tc.out)
		}
	}
}

// TestAgentTokenCreateFlags: flags that make no token are refused before
// any request (exit 2), rather than read as the default.
func TestAgentTokenCreateFlags(t *testing.T) {
	isolateAWSConfig(t)
	t.Setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1") // nothing may be asked
	for _, args := range [][]string{
		{"--max-uses", "0"},
		{"--max-uses", "-3"},
		{"--ttl", "0s"},
		{"--tag", "novalue"},
	} {
		var out, errb bytes.Buffer
		code := Main(context.Background(), append([]string{"agent-token", "create"}, args...), IO{In: strings.NewReader(""), Out: &out, Err: &errb})
		if code != ExitUsage || !strings.Contains(errb.String(), args[0]) {
			t.Errorf("agent-token create %v: exit %d, %q; want exit %d naming %s", args, code, errb.String(), ExitUsage, args[0])
		}
	}
}
