package cli

import (
	"bytes"
	"errors"
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
