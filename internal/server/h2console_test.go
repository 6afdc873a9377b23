package server

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kaginashi/kaginashi/internal/syncbuf"
)

// TestHTTP2ConsoleOversizedBody: the console's JSON POST routes answer a
// body they do not read to its end — over 1 MiB (413), or refused before
// it is read (403 for another origin, 401 without a session) — completely
// to curl --http2 streaming it. Before they went through drainH2Body, curl
// lost the answer to the stream reset that followed it ("transfer closed
// with N bytes remaining", or an empty body).
func TestHTTP2ConsoleOversizedBody(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("no curl:", err)
	}
	dir := filepath.Join(t.TempDir(), "kd")
	base, _ := runServer(t, Options{DataDir: dir, Listen: "127.0.0.1:0"})(&syncbuf.Buffer{})
	caFile := filepath.Join(dir, "tls", "ca.pem")
	// Valid JSON as far as the 1 MiB limit reads: the decoder stops at the
	// limit (413), not at a syntax error.
	big := filepath.Join(t.TempDir(), "big.json")
	if err := os.WriteFile(big, []byte(`{"userName":"`+strings.Repeat("a", 3<<20)+`"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, path string
		origin     bool
		want       string // status and a piece of the JSON error
	}{
		{"signin over the limit", "/console/api/signin", true, `413 2|"code":"InvalidInput","message":"The request body is too large."`},
		{"signin from another origin", "/console/api/signin", false, `403 2|"code":"InvalidOrigin"`},
		{"aws without a session", "/console/api/aws", true, `401 2|"error":{"code":"`},
		{"validate-policy without a session", "/console/api/validate-policy", true, `401 2|"error":{"code":"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			status, piece, _ := strings.Cut(c.want, "|")
			// A file as stdin, ten times: curl sends as fast as it can,
			// which is when the reset cost the answer (most runs of ten).
			for range 10 {
				args := []string{"--http2", "-sS", "--cacert", caFile, "-X", "POST", "-T", "-",
					"-H", "Content-Type: application/json", "-w", "\n%{http_code} %{http_version}"}
				if c.origin {
					args = append(args, "-H", "Origin: "+base)
				}
				cmd := exec.CommandContext(t.Context(), curl, append(args, base+c.path)...)
				f, err := os.Open(big)
				if err != nil {
					t.Fatal(err)
				}
				cmd.Stdin = f
				var stderr strings.Builder
				cmd.Stderr = &stderr
				out, err := cmd.Output()
				f.Close()
				if err != nil {
					t.Fatalf("curl: %v: %s\n%q", err, stderr.String(), out)
				}
				i := strings.LastIndex(string(out), "\n")
				body, tail := strings.TrimSuffix(string(out[:max(i, 0)]), "\n"), string(out[i+1:])
				if tail != status || !strings.Contains(body, piece) || !strings.HasSuffix(body, "}") {
					t.Fatalf("curl got %q, want %s with %s", out, status, piece)
				}
			}
		})
	}
}
