package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// startTLS runs a real server (generated TLS, so HTTP/2 is offered) on a
// fresh data dir until the test ends; it returns its URL and CA file.
func startTLS(t *testing.T) (baseURL, caFile string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "kd")
	ready := make(chan string, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{DataDir: dir, Listen: "127.0.0.1:0", Stdout: io.Discard, NoConsole: true,
			Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Ready: func(u string) { ready <- u }})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	select {
	case baseURL = <-ready:
	case err := <-done:
		t.Fatalf("Run: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("server did not start")
	}
	return baseURL, filepath.Join(dir, "tls", "ca.pem")
}

// countingBody is a streamed request body of n bytes ('a's, a valid form
// value) that counts what the client actually sent.
type countingBody struct {
	left int64
	sent atomic.Int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	for i := range p {
		p[i] = 'a'
	}
	b.left -= int64(len(p))
	b.sent.Add(int64(len(p)))
	return len(p), nil
}

// TestHTTP2OversizedStreamedBody: a body over 1 MiB streamed over HTTP/2
// without Content-Length gets the 413 and its complete error body, with
// Go's HTTP/2 client and with curl --http2 (which lost the body to the
// stream reset that followed the answer).
func TestHTTP2OversizedStreamedBody(t *testing.T) {
	base, caFile := startTLS(t)
	const size = 3 << 20

	t.Run("go", func(t *testing.T) {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			t.Fatal(err)
		}
		roots := x509.NewCertPool()
		roots.AppendCertsFromPEM(pem)
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, ForceAttemptHTTP2: true}
		defer tr.CloseIdleConnections()
		for range 3 {
			body := &countingBody{left: size}
			req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, base+"/", body)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			resp, err := tr.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.ProtoMajor != 2 {
				t.Fatalf("proto %s, want HTTP/2", resp.Proto)
			}
			if err != nil || resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(got), "RequestEntityTooLarge") ||
				int64(len(got)) != resp.ContentLength {
				t.Fatalf("status %d, %d of %d bytes (%v): %q", resp.StatusCode, len(got), resp.ContentLength, err, got)
			}
			// The stream ended because the client finished, not because
			// the server reset it.
			if n := body.sent.Load(); n != size {
				t.Errorf("the client sent %d of %d bytes before the answer ended the stream", n, size)
			}
		}
	})

	t.Run("curl", func(t *testing.T) {
		curl, err := exec.LookPath("curl")
		if err != nil {
			t.Skip("no curl:", err)
		}
		// A file as stdin: curl reads it as fast as it can send, which is
		// when the reset used to cost the answer (most runs of ten).
		big := filepath.Join(t.TempDir(), "big")
		if err := os.WriteFile(big, []byte(strings.Repeat("a", size)), 0o600); err != nil {
			t.Fatal(err)
		}
		for range 10 {
			// -T - streams stdin (no Content-Length); -X POST to POST /.
			cmd := exec.CommandContext(t.Context(), curl, "--http2", "-sS", "--cacert", caFile, "-X", "POST", "-T", "-",
				"-H", "Content-Type: application/x-www-form-urlencoded", "-w", "\n%{http_code} %{http_version}", base+"/")
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
				t.Fatalf("curl: %v: %s\n%s", err, stderr.String(), out)
			}
			s := string(out)
			if !strings.HasSuffix(s, "\n413 2") || !strings.Contains(s, "<Code>RequestEntityTooLarge</Code>") || !strings.Contains(s, "</ErrorResponse>") {
				t.Fatalf("curl got %q", s)
			}
		}
	})
}
