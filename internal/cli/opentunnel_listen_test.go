package cli

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"golang.org/x/crypto/ssh"

	"github.com/kaginashi/kaginashi/internal/client"
	"github.com/kaginashi/kaginashi/internal/syncbuf"
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

	var stderr syncbuf.Buffer
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

// recordingListener keeps the connections it accepts, to cut them.
type recordingListener struct {
	net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func (l *recordingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.mu.Lock()
		l.conns = append(l.conns, c)
		l.mu.Unlock()
	}
	return c, err
}

func (l *recordingListener) cut() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range l.conns {
		c.Close()
	}
}

// TestStdioTunnelServerLost: when the connection to the endpoint is lost
// mid-tunnel (the server killed, a network cut: no close frame), the
// stdio mode says so and exits 1; before, it exited 0 without a word, as
// after a clean end, and a script could not tell.
func TestStdioTunnelServerLost(t *testing.T) {
	accepted := make(chan struct{}, 1)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := wstunnel.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		accepted <- struct{}{}
		_, _ = io.Copy(io.Discard, ws)
	}))
	rl := &recordingListener{Listener: srv.Listener}
	srv.Listener = rl
	srv.StartTLS()
	t.Cleanup(srv.Close)
	cfg := aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("AKIAEXAMPLEEXAMPLE01", "secretsecretsecretsecretsecretsecret0000", ""),
		HTTPClient:  srv.Client(),
	}
	p := client.TunnelParams{Endpoint: srv.URL, EndpointID: "eice-0123456789abcdef0", InstanceID: "i-0123456789abcdef0", RemotePort: 22}

	stdin, stdinW := io.Pipe() // stays open: only the server's side ends
	defer stdinW.Close()
	var stderr syncbuf.Buffer
	done := make(chan error, 1)
	go func() {
		done <- stdioTunnel(context.Background(), IO{In: stdin, Out: io.Discard, Err: &stderr}, cfg, p, nil)
	}()
	select {
	case <-accepted:
	case <-time.After(5 * time.Second):
		t.Fatal("the tunnel did not open")
	}
	rl.cut()
	var err error
	select {
	case err = <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("open-tunnel still runs 5 s after its connection to the endpoint was lost")
	}
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != 1 {
		t.Errorf("open-tunnel returned %v, want exit status 1", err)
	}
	if want := "the connection to the endpoint was lost"; !strings.Contains(stderr.String(), want) {
		t.Errorf("stderr %q does not say %q", stderr.String(), want)
	}
}

// TestOpenTunnelUnreachableNamesServer: with the server's URL from
// AWS_ENDPOINT_URL (not --endpoint-url), an unreachable server is named
// as such, in both modes; before, open-tunnel said "cannot reach AWS".
func TestOpenTunnelUnreachableNamesServer(t *testing.T) {
	isolateAWSConfig(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	ln.Close()
	t.Setenv("AWS_ENDPOINT_URL", dead)
	t.Setenv("AWS_MAX_ATTEMPTS", "1")

	var stderr syncbuf.Buffer
	code := Main(context.Background(), []string{"open-tunnel", "--instance-id", "i-0123456789abcdef0"}, IO{In: strings.NewReader(""), Out: io.Discard, Err: &stderr})
	if code != 1 || !strings.Contains(stderr.String(), "cannot reach "+dead) || strings.Contains(stderr.String(), "AWS:") {
		t.Errorf("open-tunnel: exit %d, stderr %q; want exit 1 and %q", code, stderr.String(), "cannot reach "+dead)
	}

	// --local-port: the look-ups go to a server that answers; the tunnel
	// goes to the dead one.
	srv := fakeEC2(t, true)
	t.Setenv("AWS_ENDPOINT_URL", srv.URL)
	p := client.TunnelParams{Endpoint: dead, EndpointID: "eice-0123456789abcdef0", InstanceID: "i-0123456789abcdef0", RemotePort: 22}
	cfg, err := client.Load(context.Background(), client.Flags{})
	if err != nil {
		t.Fatal(err)
	}
	cfg.BaseEndpoint = aws.String(dead)
	ln, err = net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	stderr = syncbuf.Buffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- listenTunnel(ctx, IO{Err: &stderr}, cfg, p, tunnelFlags{localPort: port, maxConns: 1}) }()
	defer func() { cancel(); <-done }()
	var c net.Conn
	for deadline := time.Now().Add(5 * time.Second); ; {
		if c, err = net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port)); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	_, _ = io.ReadAll(c)
	c.Close()
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(stderr.String(), "cannot reach") && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	if got := stderr.String(); !strings.Contains(got, "cannot reach "+dead) {
		t.Errorf("--local-port: stderr %q; want %q", got, "cannot reach "+dead)
	}
}

// TestStdioTunnelClosesCleanly: when standard input closes while the
// host is still sending (ssh's last packets, a service that keeps
// talking), open-tunnel's close reaches the server as a close frame
// answered before the connection drops. Before, it dropped the
// connection at once with data unread: the reset lost the close frame
// or the server's writes failed, and the audit's CloseTunnel said
// "client connection lost" for an ordinary logout.
func TestStdioTunnelClosesCleanly(t *testing.T) {
	ended := make(chan error, 1)
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := wstunnel.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		writeErr := make(chan error, 1)
		go func() { // the host keeps talking
			chunk := make([]byte, 32<<10)
			for {
				if _, err := ws.Write(chunk); err != nil {
					writeErr <- err
					return
				}
			}
		}()
		_, err = io.Copy(io.Discard, ws) // until the client's close
		select {
		case werr := <-writeErr:
			if err == nil && !errors.Is(werr, net.ErrClosed) {
				err = fmt.Errorf("a write to the client failed before its close: %w", werr)
			}
		default:
		}
		ended <- err
	}))
	t.Cleanup(srv.Close)
	cfg := aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("AKIAEXAMPLEEXAMPLE01", "secretsecretsecretsecretsecretsecret0000", ""),
		HTTPClient:  srv.Client(),
	}
	p := client.TunnelParams{Endpoint: srv.URL, EndpointID: "eice-0123456789abcdef0", InstanceID: "i-0123456789abcdef0", RemotePort: 22}
	for i := 0; i < 3; i++ {
		stdin, stdinW := io.Pipe()
		out, outW := io.Pipe() // read slowly: data stays unread in the socket
		go func() {
			buf := make([]byte, 16<<10)
			for {
				if _, err := out.Read(buf); err != nil {
					return
				}
				time.Sleep(time.Millisecond)
			}
		}()
		done := make(chan error, 1)
		go func() {
			done <- stdioTunnel(context.Background(), IO{In: stdin, Out: outW, Err: io.Discard}, cfg, p, nil)
		}()
		time.Sleep(100 * time.Millisecond) // the host's data piles up
		stdinW.Close()
		start := time.Now()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("open-tunnel: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("open-tunnel still runs 5 s after its stdin closed")
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("open-tunnel took %v to exit after its stdin closed", d)
		}
		out.Close()
		select {
		case err := <-ended:
			if err != nil {
				t.Fatalf("round %d: the server saw %v, want the client's close frame (a clean end)", i, err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("the server's side did not end")
		}
	}
}

// TestExplainExpiredCredentials: expired temporary credentials (AWS's
// ExpiredToken, an SSO session run out) are told as such, with the way
// to new ones, not as a wrong access key.
func TestExplainExpiredCredentials(t *testing.T) {
	for _, code := range []string{"ExpiredToken", "ExpiredTokenException"} {
		got := explain(apiErr{code, "The security token included in the request is expired"}, explainCtx{}).Error()
		for _, w := range []string{"your credentials have expired", "aws sso login"} {
			if !strings.Contains(got, w) {
				t.Errorf("%s: %q, want %q", code, got, w)
			}
		}
	}
}

// TestExplainNothingListening: "nothing accepts connections" names the
// flag of the command at hand — open-tunnel has --remote-port, ssh-proxy
// takes ssh's port — not kaginashi ssh's --ssh-port, and does not ask
// about sshd for a tunnel to another service.
func TestExplainNothingListening(t *testing.T) {
	err := &client.TunnelError{Code: "TargetRefused", Message: "Unable to connect to target: nothing accepts connections on 127.0.0.1:5432 of this host"}
	for _, tc := range []struct {
		x         explainCtx
		want, not string
	}{
		{explainCtx{port: 5432}, "--ssh-port", ""},
		{explainCtx{port: 5432, portFlag: "--remote-port"}, "--remote-port", "sshd"},
		{explainCtx{port: 5432, portFlag: "ssh's -p"}, "ssh's -p", "--ssh-port"},
	} {
		got := explain(err, tc.x).Error()
		if !strings.Contains(got, tc.want) || (tc.not != "" && strings.Contains(got, tc.not)) {
			t.Errorf("portFlag %q: %q, want %q and no %q", tc.x.portFlag, got, tc.want, tc.not)
		}
	}
}

// TestOpenTunnelInstanceID: --instance-id takes an instance ID; a Name
// (which the look-ups would accept, and the endpoint then refuse as an
// invalid id) is a usage error before any look-up, naming what takes Names.
func TestOpenTunnelInstanceID(t *testing.T) {
	isolateAWSConfig(t)
	for _, bad := range []string{"web", "WebApp", "i-xyz", "i-0123"} {
		var stderr syncbuf.Buffer
		code := Main(context.Background(), []string{"open-tunnel", "--instance-id", bad}, IO{In: strings.NewReader(""), Out: io.Discard, Err: &stderr})
		if code != 2 || !strings.Contains(stderr.String(), "--instance-id "+strconv.Quote(bad)+": want an instance ID") || !strings.Contains(stderr.String(), "kaginashi ssh NAME") {
			t.Errorf("--instance-id %s: exit %d, %q; want exit 2 and what to use instead", bad, code, stderr.String())
		}
	}
}

// TestOpenTunnelLocalPort: --local-port out of range is a usage error
// before any look-up; a port already in use is said so, with the fix,
// exit status 1.
func TestOpenTunnelLocalPort(t *testing.T) {
	isolateAWSConfig(t)
	for _, bad := range []string{"99999", "-1"} {
		var stderr syncbuf.Buffer
		code := Main(context.Background(), []string{"open-tunnel", "--instance-id", "i-0123456789abcdef0", "--local-port", bad}, IO{In: strings.NewReader(""), Out: io.Discard, Err: &stderr})
		if code != 2 || !strings.Contains(stderr.String(), "--local-port "+bad+": want 1 to 65535") {
			t.Errorf("--local-port %s: exit %d, %q; want exit 2 and the range", bad, code, stderr.String())
		}
	}
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	port := busy.Addr().(*net.TCPAddr).Port
	var stderr syncbuf.Buffer
	srv := fakeEC2(t, true)
	t.Setenv("AWS_ENDPOINT_URL", srv.URL)
	code := Main(context.Background(), []string{"open-tunnel", "--instance-id", "i-0123456789abcdef0", "--local-port", strconv.Itoa(port)}, IO{In: strings.NewReader(""), Out: io.Discard, Err: &stderr})
	if want := fmt.Sprintf("127.0.0.1:%d is in use", port); code != 1 || !strings.Contains(stderr.String(), want) || !strings.Contains(stderr.String(), "another --local-port") {
		t.Errorf("a busy --local-port: exit %d, %q; want exit 1, %q and the fix", code, stderr.String(), want)
	}
}

// TestSSHProxyPortNotAllowed: ssh-proxy refusing a port the host's agent
// does not let tunnels reach says how to pick another port the way
// ssh-proxy is given one — ssh's -p (Port) — not kaginashi ssh's
// --ssh-port, which ssh-proxy has not.
func TestSSHProxyPortNotAllowed(t *testing.T) {
	isolateAWSConfig(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		_, _ = io.WriteString(w, `{"Instances":[{"InstanceId":"i-0123456789abcdef0","Name":"web","State":"running","PrivateIpAddress":"10.0.0.5","HostKeys":[],"AllowedPorts":[22,2222],"SSHPort":2222}],"InstanceConnectEndpointId":"eice-0123456789abcdef0"}`)
	}))
	t.Cleanup(srv.Close)
	var stderr syncbuf.Buffer
	err := runSSHProxy(context.Background(), IO{In: strings.NewReader(""), Out: io.Discard, Err: &stderr}, client.Flags{EndpointURL: srv.URL},
		"i-0123456789abcdef0", 5432, "root", filepath.Join(t.TempDir(), "known_hosts"), "auto", 0, newDebug(&stderr, false))
	if err == nil {
		t.Fatal("port 5432, which the agent does not allow: no error")
	}
	got := err.Error()
	if !strings.Contains(got, "kaginashi-agent run --allow-port 5432") || !strings.Contains(got, "ssh's -p") || strings.Contains(got, "--ssh-port") {
		t.Errorf("ssh-proxy to a port not allowed: %q; want the --allow-port fix and ssh's -p, not --ssh-port", got)
	}
}

// TestSSHProxyMaxTunnelDuration: a policy that caps
// ec2-instance-connect:maxTunnelDuration (kaginashi policy template eic
// --max-tunnel-duration 900 writes one) refuses a tunnel that asks for
// none, which counts as 3600; plain ssh through ssh-config then had no
// way in. ssh-config --max-tunnel-duration N puts the flag on ssh-proxy's
// command line, and ssh-proxy asks for N.
func TestSSHProxyMaxTunnelDuration(t *testing.T) {
	isolateAWSConfig(t)
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("SSH_AUTH_SOCK", "")
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(home, ".config"))
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sp, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(home, ".ssh"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, ".ssh", "id_ed25519.pub"), ssh.MarshalAuthorizedKey(sp), 0o600); err != nil {
		t.Fatal(err)
	}

	// ssh-config: the flag reaches ssh-proxy's command line.
	var out strings.Builder
	if code := Main(context.Background(), []string{"ssh-config", "--max-tunnel-duration", "900"}, IO{In: strings.NewReader(""), Out: &out, Err: io.Discard}); code != 0 {
		t.Fatalf("ssh-config --max-tunnel-duration 900: exit %d", code)
	}
	if !strings.Contains(out.String(), " ssh-proxy ") || !strings.Contains(out.String(), "--max-tunnel-duration 900 ") {
		t.Errorf("ssh-config --max-tunnel-duration 900:\n%s\nwant it on ssh-proxy's command line", out.String())
	}
	if code := Main(context.Background(), []string{"ssh-config", "--max-tunnel-duration", "4000"}, IO{In: strings.NewReader(""), Out: io.Discard, Err: io.Discard}); code != 2 {
		t.Errorf("ssh-config --max-tunnel-duration 4000: exit %d, want 2", code)
	}

	// ssh-proxy: the tunnel asks for it.
	asked := make(chan string, 1)
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/openTunnel" {
			asked <- r.URL.Query().Get("maxTunnelDuration")
			if ws, err := wstunnel.Accept(w, r, nil); err == nil {
				_, _ = io.Copy(io.Discard, ws)
				ws.Close()
			}
			return
		}
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		if strings.HasSuffix(r.Header.Get("X-Amz-Target"), ".SendSSHPublicKey") {
			_, _ = io.WriteString(w, `{"RequestId":"r","Success":true}`)
			return
		}
		_, _ = io.WriteString(w, `{"Instances":[{"InstanceId":"i-0123456789abcdef0","Name":"web","State":"running","PrivateIpAddress":"10.0.0.5","HostKeys":[],"AllowedPorts":[22],"SSHPort":22}],"InstanceConnectEndpointId":"eice-0123456789abcdef0"}`)
	}))
	t.Cleanup(srv.Close)
	ca := filepath.Join(home, "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	var stderr syncbuf.Buffer
	code := Main(context.Background(), []string{"ssh-proxy", "--endpoint-url", srv.URL, "--ca-bundle", ca, "--max-tunnel-duration", "900", "i-0123456789abcdef0", "22", "root"},
		IO{In: strings.NewReader(""), Out: io.Discard, Err: &stderr})
	select {
	case got := <-asked:
		if got != "900" {
			t.Errorf("ssh-proxy --max-tunnel-duration 900 asked for maxTunnelDuration %q", got)
		}
	default:
		t.Errorf("ssh-proxy opened no tunnel: exit %d, %s", code, stderr.String())
	}
}
