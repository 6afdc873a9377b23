//go:build unix

package cli

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/kaginashi/kaginashi/internal/client"
	"github.com/kaginashi/kaginashi/internal/wstunnel"
)

// TestStdioTunnelSIGHUP: OpenSSH ends its ProxyCommand (ssh-proxy,
// open-tunnel) with SIGHUP as it exits, often before the closed standard
// input is seen. The tunnel then ends as when standard input closes — a
// close the server answers — instead of the process dying with the
// connection reset (audited as "client connection lost"). Before, the
// signal killed the process (and this test's).
func TestStdioTunnelSIGHUP(t *testing.T) {
	accepted := make(chan struct{}, 1)
	ended := make(chan error, 1)
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := wstunnel.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		accepted <- struct{}{}
		_, err = io.Copy(io.Discard, ws)
		ended <- err
	}))
	t.Cleanup(srv.Close)
	cfg := aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("AKIAEXAMPLEEXAMPLE01", "secretsecretsecretsecretsecretsecret0000", ""),
		HTTPClient:  srv.Client(),
	}
	p := client.TunnelParams{Endpoint: srv.URL, EndpointID: "eice-0123456789abcdef0", InstanceID: "i-0123456789abcdef0", RemotePort: 22}
	stdin, stdinW := io.Pipe() // stays open
	defer stdinW.Close()
	done := make(chan error, 1)
	go func() {
		done <- stdioTunnel(context.Background(), IO{In: stdin, Out: io.Discard, Err: io.Discard}, cfg, p, nil)
	}()
	select {
	case <-accepted:
	case <-time.After(5 * time.Second):
		t.Fatal("the tunnel did not open")
	}
	time.Sleep(100 * time.Millisecond) // carrying
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("open-tunnel after SIGHUP: %v, want a clean end", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("open-tunnel still runs 5 s after SIGHUP")
	}
	select {
	case err := <-ended:
		if err != nil && !errors.Is(err, net.ErrClosed) {
			t.Errorf("the server saw %v, want the client's close", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the server's side did not end")
	}
}
