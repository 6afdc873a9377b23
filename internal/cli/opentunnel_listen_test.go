package cli

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/kaginashi/kaginashi/internal/client"
	"github.com/kaginashi/kaginashi/internal/wstunnel"
)

// fakeEndpoint is an open-tunnel endpoint that echoes what it gets and
// then, after the first bytes, closes the tunnel with 1008 and the
// reason the server gives when maxTunnelDuration runs out.
func fakeEndpoint(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/openTunnel" {
			http.NotFound(w, r)
			return
		}
		ws, err := wstunnel.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		buf := make([]byte, 64)
		n, err := ws.Read(buf)
		if err != nil {
			return
		}
		if _, err := ws.Write(buf[:n]); err != nil {
			return
		}
		ws.SendClose(wstunnel.StatusPolicyViolation, "Maximum tunnel duration reached")
		// Until the client's answering close.
		_, _ = io.Copy(io.Discard, ws)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestListenTunnelShowsCloseReason: open-tunnel --local-port tells the
// user why a tunnel was closed when the server ends it with a code other
// than 1000 (here: its maximum duration), as the stdio mode does; before,
// the local connection just ended, without a word.
func TestListenTunnelShowsCloseReason(t *testing.T) {
	srv := fakeEndpoint(t)
	cfg := aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("AKIAEXAMPLEEXAMPLE01", "secretsecretsecretsecretsecretsecret0000", ""),
		HTTPClient:  srv.Client(),
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()

	var stderr lockedBuffer
	stdio := IO{In: strings.NewReader(""), Out: io.Discard, Err: &stderr}
	p := client.TunnelParams{Endpoint: srv.URL, EndpointID: "eice-0123456789abcdef0", InstanceID: "i-0123456789abcdef0", RemotePort: 22}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- listenTunnel(ctx, stdio, cfg, p, tunnelFlags{localPort: port, maxConns: 2})
	}()
	defer func() {
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Error("open-tunnel --local-port still runs 5 s after its context ended")
		}
	}()

	var c net.Conn
	for deadline := time.Now().Add(5 * time.Second); ; {
		if c, err = net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port)); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("connecting to the local port: %v", err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, "ping"); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(c)
	if string(got) != "ping" {
		t.Fatalf("through the tunnel: %q, %v; want the echo, then the end", got, err)
	}
	want := "kaginashi: the tunnel was closed: Maximum tunnel duration reached (code 1008)"
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(stderr.String(), want) && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(stderr.String(), want) {
		t.Errorf("stderr %q does not say %q", stderr.String(), want)
	}
}

// lockedBuffer is a strings.Builder safe for a writer and a reader in
// other goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestExplainOpenTunnelConditions: a tunnel refused although the user
// holds an OpenTunnel statement on the endpoint — its condition on
// remotePort or maxTunnelDuration did not match — is told with those
// condition keys and this tunnel's values, not only the instance/* hint
// (which sent such a user to look for a statement they already have);
// an explicit deny of a tunnel suggests another port or a shorter
// duration, not "an OS user".
func TestExplainOpenTunnelConditions(t *testing.T) {
	x := explainCtx{instance: "i-0123456789abcdef0 (db)", port: 5432}
	const prefix = "User: arn:aws:iam::123456789012:user/a is not authorized to perform: ec2-instance-connect:OpenTunnel on resource: arn:aws:ec2:us-east-1:123456789012:instance-connect-endpoint/eice-0123456789abcdef0 "
	implicit := &client.TunnelError{Status: 403, Code: "AccessDeniedException", Message: prefix + "because no identity-based policy allows the ec2-instance-connect:OpenTunnel action"}
	explicit := &client.TunnelError{Status: 403, Code: "AccessDeniedException", Message: prefix + "with an explicit deny in an identity-based policy (tunnels Statement[2] Sid NoLongTunnels)"}
	for _, tc := range []struct {
		err        error
		wants, not []string
	}{
		{implicit, []string{"ec2-instance-connect:remotePort 5432", "ec2-instance-connect:maxTunnelDuration", "--max-tunnel-duration", "not instance/*"}, nil},
		{explicit, []string{"(tunnels Statement[2] Sid NoLongTunnels)", "another port", "--max-tunnel-duration"}, []string{"OS user"}},
	} {
		got := explain(tc.err, x).Error()
		for _, w := range tc.wants {
			if !strings.Contains(got, w) {
				t.Errorf("explain(%v) =\n%s\nwant %q", tc.err, got, w)
			}
		}
		for _, w := range tc.not {
			if strings.Contains(got, w) {
				t.Errorf("explain(%v) =\n%s\nwant no %q", tc.err, got, w)
			}
		}
		if strings.Count(got, "\n") > 1 {
			t.Errorf("explain(%v) = %q: more than two lines", tc.err, got)
		}
	}
}
