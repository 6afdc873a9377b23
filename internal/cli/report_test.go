package cli

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"
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

// TestClientCommandFailures: agent-token and audit lookup tell a refused or
// unreachable server as the other client commands do (what and the fix),
// exit status 1, not 2 (the caller's usage mistake) with the SDK's text.
func TestClientCommandFailures(t *testing.T) {
	isolateAWSConfig(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		w.WriteHeader(http.StatusBadRequest)
		action := "kaginashi:ListJoinTokens"
		if strings.Contains(r.Header.Get("X-Amz-Target"), "LookupEvents") {
			action = "cloudtrail:LookupEvents"
		}
		_, _ = io.WriteString(w, `{"__type":"AccessDeniedException","Message":"User: arn:aws:iam::123456789012:user/a is not authorized to perform: `+action+` on resource: * because no identity-based policy allows the `+action+` action"}`)
	}))
	defer srv.Close()
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"agent-token", "list"}, []string{"kaginashi: access denied: User:", "ask an administrator to allow kaginashi:ListJoinTokens for you (docs/POLICY.md)\n"}},
		{[]string{"agent-token", "revoke", "jt-0123"}, []string{"kaginashi: access denied: User:"}},
		{[]string{"audit", "lookup"}, []string{"kaginashi: access denied: User:", "allow cloudtrail:LookupEvents"}},
		{[]string{"agent-token", "list", "--endpoint-url", "http://127.0.0.1:1"}, []string{"cannot reach http://127.0.0.1:1", "check --endpoint-url"}},
	} {
		var out, errb bytes.Buffer
		args := tc.args
		if !slices.Contains(args, "--endpoint-url") {
			args = append(args, "--endpoint-url", srv.URL)
		}
		code := Main(context.Background(), args, IO{In: strings.NewReader(""), Out: &out, Err: &errb})
		if code != 1 {
			t.Errorf("%v: exit %d, want 1\n%s", tc.args, code, errb.String())
		}
		for _, w := range tc.want {
			if !strings.Contains(errb.String(), w) {
				t.Errorf("%v: stderr %q, want %q", tc.args, errb.String(), w)
			}
		}
		if strings.Contains(errb.String(), "operation error") {
			t.Errorf("%v: SDK noise in %q", tc.args, errb.String())
		}
	}
}

// TestAgentTokenHostCommand: the host command names the server's public
// URL (--public-url), which hosts reach, not the localhost URL an admin on
// the server itself used; a public URL that is only localhost (the
// default) gives way to the admin's.
func TestAgentTokenHostCommand(t *testing.T) {
	isolateAWSConfig(t)
	public := ""
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		_, _ = io.WriteString(w, `{"Token":"jt-0123456789abcdef0.secret","JoinToken":{"TokenId":"jt-0123456789abcdef0","ExpiresAt":"2026-01-01T00:00:00Z","MaxUses":1},"ServerUrl":"`+public+`"}`)
	}))
	defer srv.Close()
	for _, tc := range []struct{ public, want string }{
		{"https://kaginashi.example:8443", "--server https://kaginashi.example:8443 "},
		{"https://localhost:8443", "--server " + srv.URL + " "},
		{"https://127.0.0.1:8443", "--server " + srv.URL + " "},
		{"", "--server " + srv.URL + " "}, // an older server
	} {
		public = tc.public
		var out, errb bytes.Buffer
		if code := Main(context.Background(), []string{"agent-token", "create", "--endpoint-url", srv.URL}, IO{In: strings.NewReader(""), Out: &out, Err: &errb}); code != 0 {
			t.Fatalf("exit %d: %s", code, errb.String())
		}
		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		if !strings.Contains(out.String(), tc.want) || lines[len(lines)-1] != "jt-0123456789abcdef0.secret" {
			t.Errorf("public URL %q:\n%s\nwant %q, and the token alone on the last line", tc.public, out.String(), tc.want)
		}
	}
}

// TestServerPublicURL: a --public-url hosts and clients cannot use is a
// usage error at start, not a server that hands it out.
func TestServerPublicURL(t *testing.T) {
	for _, u := range []string{"ftp://x", "kaginashi.example:8443", "https://user:pw@kaginashi.example", "https://kaginashi.example/api", "https://kaginashi.example?x=1", "https://kaginashi.example:99999", "https://"} {
		var out, errb bytes.Buffer
		// A server that starts anyway stops when ctx ends, and exits 0.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		code := Main(ctx, []string{"server", "--data-dir", t.TempDir(), "--listen", "127.0.0.1:0", "--public-url", u}, IO{In: strings.NewReader(""), Out: &out, Err: &errb})
		cancel()
		if code != ExitUsage || !strings.Contains(errb.String(), "--public-url") {
			t.Errorf("--public-url %s: exit %d, %q; want exit %d naming --public-url", u, code, errb.String(), ExitUsage)
		}
	}
	for _, u := range []string{"", "https://kaginashi.example", "https://kaginashi.example:8443/", "http://127.0.0.1:8080", "https://[::1]:8443"} {
		if err := checkPublicURL(u); err != nil {
			t.Errorf("--public-url %s: %v", u, err)
		}
	}
}
