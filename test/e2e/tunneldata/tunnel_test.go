package tunneldata

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	gorilla "github.com/gorilla/websocket"

	"github.com/kaginashi/kaginashi/internal/client"
	"github.com/kaginashi/kaginashi/test/e2e/harness"
)

// TestTunnels is two servers, each with an agent: "main" with the default
// limits, whose agent allows an echo service, a manual service (the test
// drives each accepted connection) and a private sshd; "limits" with
// --max-tunnels 2 and --max-tunnel-duration 4s.
func TestTunnels(t *testing.T) {
	echoSvc := listen(t, echo)
	manual := listen(t, nil)
	var sshd *sshdProc
	ports := []int{echoSvc.port, manual.port}
	if world.sshSkip == "" {
		sshd = startSSHD(t)
		ports = append(ports, sshd.Port)
	}
	main := startSite(t, ports)
	limits := startSite(t, []int{echoSvc.port}, "--max-tunnels", "2", "--max-tunnel-duration", "4s")
	perUser := startSite(t, []int{echoSvc.port}, "--max-tunnels-per-user", "2")

	t.Run("ssh cat, 1 GiB each way", func(t *testing.T) {
		if world.sshSkip != "" {
			t.Skip(world.sshSkip)
		}
		t.Parallel()
		testSSHCat(t, main, sshd)
	})
	t.Run("50 tunnels at once", func(t *testing.T) {
		t.Parallel()
		testConcurrent(t, main, echoSvc)
	})
	t.Run("backpressure: the client stops reading", func(t *testing.T) {
		t.Parallel()
		testStalled(t, main, manual, true)
	})
	t.Run("backpressure: the host stops reading", func(t *testing.T) {
		t.Parallel()
		testStalled(t, main, manual, false)
	})
	t.Run("limits", func(t *testing.T) {
		t.Parallel()
		testLimits(t, limits, echoSvc)
	})
	t.Run("limits per user", func(t *testing.T) {
		t.Parallel()
		testPerUserLimit(t, perUser, echoSvc)
	})
	t.Run("instanceId and privateIpAddress disagree", func(t *testing.T) {
		t.Parallel()
		testMismatchedTarget(t, perUser, echoSvc)
	})
	t.Run("maxTunnelDuration=2 ends open-tunnel with the reason", func(t *testing.T) {
		t.Parallel()
		testDurationCLI(t, main, echoSvc)
	})
	t.Run("a port the agent does not allow", func(t *testing.T) {
		t.Parallel()
		testPortNotAllowed(t, main)
	})
	t.Run("IAM condition on remotePort", func(t *testing.T) {
		t.Parallel()
		testRemotePortPolicy(t, main, echoSvc)
	})
	t.Run("SDK presigned URL and a third-party WebSocket client", func(t *testing.T) {
		t.Parallel()
		testThirdParty(t, main, echoSvc)
	})
	t.Run("open-tunnel's stdio mode exits when stdin closes", func(t *testing.T) {
		t.Parallel()
		testStdioExit(t, main, echoSvc)
	})
	t.Run("a request piped into open-tunnel gets its answer", func(t *testing.T) {
		t.Parallel()
		testStdioPipedRequest(t, main, echoSvc)
	})
}

// --- bulk data ---------------------------------------------------------------------

// testSSHCat sends 1 GiB through `ssh host cat` and reads it back: 1 GiB
// each way at once through one tunnel, with equal checksums.
func testSSHCat(t *testing.T, st *site, sshd *sshdProc) {
	const size = 1 << 30
	ctx, cancel := context.WithTimeout(context.Background(), bound(3*time.Minute))
	defer cancel()
	cmd := sshd.sshCommand(ctx, t, st, "cat")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr harness.SyncBuffer
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sent := make(chan []byte, 1)
	go func() {
		h := sha256.New()
		_, err := io.CopyN(io.MultiWriter(stdin, h), newSource(42), size)
		if err != nil {
			t.Errorf("sending: %v", err)
		}
		stdin.Close()
		sent <- h.Sum(nil)
	}()
	h := sha256.New()
	n, err := io.Copy(h, stdout)
	if err != nil {
		t.Errorf("receiving: %v", err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("ssh: %v\nstderr: %s\nagent:\n%s", err, stderr.String(), st.agent.Output)
	}
	elapsed := time.Since(start)
	if n != size {
		t.Fatalf("received %d bytes back, sent %d", n, size)
	}
	if want := <-sent; !bytes.Equal(h.Sum(nil), want) {
		t.Fatalf("SHA-256 of what came back %x, of what was sent %x", h.Sum(nil), want)
	}
	t.Logf("1 GiB each way through ssh cat in %v (%.0f MB/s each way)", elapsed.Round(time.Millisecond), float64(size)/elapsed.Seconds()/1e6)
}

// testConcurrent opens 50 tunnels, then moves a different amount through
// each at once, and finds each tunnel in the audit with its byte counts.
func testConcurrent(t *testing.T, st *site, svc *service) {
	const n = 50
	conns := make([]net.Conn, n)
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conns[i], errs[i] = st.dial(t, st.params(svc.port))
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("tunnel %d: %v", i, err)
		}
	}
	// All 50 are open now; each moves its own bytes.
	size := func(i int) int { return 1<<20 + i*4099 }
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			data := make([]byte, size(i))
			rand.NewChaCha8([32]byte{byte(i)}).Read(data)
			go func() { _, _ = c.Write(data) }()
			got := make([]byte, len(data))
			if _, err := io.ReadFull(c, got); err != nil {
				errs[i] = fmt.Errorf("tunnel %d: reading the echo: %w", i, err)
				return
			}
			if !bytes.Equal(got, data) {
				errs[i] = fmt.Errorf("tunnel %d: the echo differs", i)
			}
			c.Close()
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	// The audit: a CloseTunnel event per tunnel, with its bytes each way.
	want := map[int]bool{}
	for i := range n {
		want[size(i)] = true
	}
	waitFor(t, "50 CloseTunnel events with the bytes each way", 10*time.Second, func() bool {
		found := 0
		for _, ev := range st.events(t, "CloseTunnel") {
			d, _ := ev["additionalEventData"].(map[string]any)
			up, _ := d["bytesUp"].(float64)
			down, _ := d["bytesDown"].(float64)
			if want[int(up)] && up == down {
				found++
			}
		}
		return found == n
	})
}

// testStalled: one end pushes 1 GiB while the other reads nothing — the
// client (clientStalls) or the host's service. The pusher must be stopped
// after a bounded amount and the server's memory must stay put; then the
// reader reads it all, with the same checksum.
func testStalled(t *testing.T, st *site, svc *service, clientStalls bool) {
	const size = 1 << 30
	conn, err := st.dial(t, st.params(svc.port))
	if err != nil {
		t.Fatal(err)
	}
	host := svc.accept(t)
	pusher, reader, seed := io.ReadWriteCloser(conn), io.ReadWriteCloser(host), byte(8)
	who, stalledEnd, readerName := "the client", "the host", "the host"
	if clientStalls {
		pusher, reader, seed = host, conn, 7
		who, stalledEnd, readerName = "the service", "the client", "the client"
	}
	pid := st.Cmd.Process.Pid
	rss0 := rssKiB(t, pid)
	var pushed atomic.Int64
	sent := make(chan []byte, 1)
	go func() {
		h := sha256.New()
		src := newSource(seed)
		buf := make([]byte, 64<<10)
		for pushed.Load() < size {
			src.Read(buf)
			n, err := pusher.Write(buf)
			h.Write(buf[:n])
			pushed.Add(int64(n))
			if err != nil {
				break
			}
		}
		if clientStalls {
			host.Close()
		}
		sent <- h.Sum(nil)
	}()
	stalled, p := waitStalled(t, &pushed)
	rss := rssKiB(t, pid)
	t.Logf("with %s not reading, %s could push %d MiB; the server's RSS went from %d to %d MiB", stalledEnd, who, p>>20, rss0>>10, rss>>10)
	if !stalled {
		t.Errorf("%s kept pushing while %s read nothing: %d MiB and counting", who, stalledEnd, p>>20)
	}
	if p > 128<<20 {
		t.Errorf("%d MiB in flight with a stalled reader, want at most 128 MiB", p>>20)
	}
	if grew := (rss - rss0) >> 10; grew > 64 {
		t.Errorf("the server's RSS grew by %d MiB with one stalled tunnel, want at most 64", grew)
	}
	// Now read it all.
	h := sha256.New()
	if n, err := io.CopyN(h, reader, size); err != nil || n != size {
		t.Fatalf("%s read %d bytes: %v", readerName, n, err)
	}
	if want := <-sent; !bytes.Equal(h.Sum(nil), want) {
		t.Fatalf("the bytes %s read differ from those pushed", readerName)
	}
}

// waitStalled waits until a counter stops growing (less than 1 MiB in
// half a second) and says whether it did within a few seconds.
func waitStalled(t *testing.T, n *atomic.Int64) (bool, int64) {
	t.Helper()
	deadline := time.Now().Add(bound(10 * time.Second))
	last := n.Load()
	for time.Now().Before(deadline) {
		time.Sleep(500 * time.Millisecond)
		now := n.Load()
		if now-last < 1<<20 && now > 0 {
			return true, now
		}
		last = now
	}
	return false, n.Load()
}

// --- limits -------------------------------------------------------------------------

// testLimits: the third tunnel of --max-tunnels 2 gets TooManyTunnels
// until one closes; --max-tunnel-duration 4s closes tunnels with 1008 and
// a reason; a maxTunnelDuration above the cap is refused.
func testLimits(t *testing.T, st *site, svc *service) {
	var conns []net.Conn
	start := time.Now()
	for i := range 2 {
		c, err := st.dial(t, st.params(svc.port))
		if err != nil {
			t.Fatalf("tunnel %d of 2: %v", i+1, err)
		}
		wantEcho(t, c, "within the limit")
		conns = append(conns, c)
	}
	_, err := st.dial(t, st.params(svc.port))
	var te *client.TunnelError
	if !errors.As(err, &te) || te.Status != http.StatusTooManyRequests || te.Code != "TooManyTunnels" || !strings.Contains(te.Message, "2 concurrent tunnels") {
		t.Fatalf("a third tunnel with --max-tunnels 2: %v, want 429 TooManyTunnels", err)
	}
	conns[0].Close()
	var c3 net.Conn
	waitFor(t, "a slot after closing a tunnel", 5*time.Second, func() bool {
		c3, err = st.dial(t, st.params(svc.port))
		return err == nil
	})
	wantEcho(t, c3, "after a slot freed")

	// --max-tunnel-duration 4s: the tunnels end with 1008 and the reason.
	for _, c := range []net.Conn{conns[1], c3} {
		_, err := io.Copy(io.Discard, c)
		if reason := client.CloseReason(err); !strings.Contains(reason, "Maximum tunnel duration reached (code 1008)") {
			t.Errorf("the tunnel ended with %v (%q), want the maximum duration's close", err, reason)
		}
	}
	if d := time.Since(start); d < 3500*time.Millisecond || d > bound(10*time.Second) {
		t.Errorf("the first tunnel lasted %v with --max-tunnel-duration 4s", d)
	}
	p := st.params(svc.port)
	p.MaxDuration = 5
	_, err = st.dial(t, p)
	if !errors.As(err, &te) || te.Code != "InvalidParameter" || !strings.Contains(te.Message, "from 1 to 4 seconds") {
		t.Fatalf("maxTunnelDuration=5 above the cap of 4 s: %v, want InvalidParameter", err)
	}
}

// testDurationCLI: `kaginashi open-tunnel --max-tunnel-duration 2` (the
// URL's maxTunnelDuration=2) is cut after 2 s, and says why.
func testDurationCLI(t *testing.T, st *site, svc *service) {
	cmd := exec.Command(harness.Kaginashi, "open-tunnel", "--instance-id", st.instance, "--remote-port", strconv.Itoa(svc.port), "--max-tunnel-duration", "2")
	cmd.Env = st.cliEnv(t)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	var stderr harness.SyncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	io.WriteString(stdin, "tick\n")
	got := make([]byte, 5)
	if _, err := io.ReadFull(stdout, got); err != nil || string(got) != "tick\n" {
		t.Fatalf("echo through open-tunnel: %q, %v\nstderr: %s", got, err, stderr.String())
	}
	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 {
			t.Errorf("open-tunnel exited with %v, want exit status 1", err)
		}
	case <-time.After(bound(10 * time.Second)):
		cmd.Process.Kill()
		t.Fatalf("open-tunnel still runs 10 s into a 2 s tunnel\nstderr: %s", stderr.String())
	}
	if d := time.Since(start); d > bound(4*time.Second) {
		t.Errorf("the 2 s tunnel ended %v after its first echo", d)
	}
	if want := "the tunnel was closed: Maximum tunnel duration reached (code 1008)"; !strings.Contains(stderr.String(), want) {
		t.Errorf("open-tunnel's stderr %q does not say %q", stderr.String(), want)
	}
}

// --- refusals --------------------------------------------------------------------------

func testPortNotAllowed(t *testing.T, st *site) {
	port := harness.FreePort(t)
	_, err := st.dial(t, st.params(port))
	var te *client.TunnelError
	wantMsg := fmt.Sprintf("port %d is not allowed by this host's agent", port)
	if !errors.As(err, &te) || te.Code != "TargetRefused" || !strings.Contains(te.Message, wantMsg) || !strings.Contains(te.Message, "--allow-port "+strconv.Itoa(port)) {
		t.Fatalf("a tunnel to port %d: %v, want TargetRefused saying %q and how to allow it", port, err, wantMsg)
	}
	// What a person sees.
	cmd := exec.Command(harness.Kaginashi, "open-tunnel", "--instance-id", st.instance, "--remote-port", strconv.Itoa(port))
	cmd.Env = st.cliEnv(t)
	cmd.Stdin = strings.NewReader("")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), wantMsg) {
		t.Errorf("open-tunnel to port %d: %v\n%s\nwant a failure saying %q", port, err, out, wantMsg)
	}
}

// testRemotePortPolicy: an Allow with NumericEquals remotePort 22 refuses
// 5432 and allows 22; an explicit Deny on other ports is named in the
// refusal.
func testRemotePortPolicy(t *testing.T, st *site, svc *service) {
	ctx := context.Background()
	allowOnly := newUser(t, st, "tunnel-ssh-only", `{"Version":"2012-10-17","Statement":[
		{"Sid":"TunnelsToSSHOnly","Effect":"Allow","Action":"ec2-instance-connect:OpenTunnel","Resource":"*",
		 "Condition":{"NumericEquals":{"ec2-instance-connect:remotePort":"22"}}}]}`)
	withDeny := newUser(t, st, "tunnel-deny-others", `{"Version":"2012-10-17","Statement":[
		{"Sid":"AnyTunnel","Effect":"Allow","Action":"ec2-instance-connect:OpenTunnel","Resource":"*"},
		{"Sid":"NoTunnelsButSSH","Effect":"Deny","Action":"ec2-instance-connect:OpenTunnel","Resource":"*",
		 "Condition":{"NumericNotEquals":{"ec2-instance-connect:remotePort":"22"}}}]}`)
	_ = ctx

	var te *client.TunnelError
	_, err := st.dial(t, st.params(5432), allowOnly)
	if !errors.As(err, &te) || te.Status != http.StatusForbidden || te.Code != "AccessDeniedException" ||
		!strings.Contains(te.Message, "ec2-instance-connect:OpenTunnel") || !strings.Contains(te.Message, "no identity-based policy allows") {
		t.Errorf("port 5432 with NumericEquals remotePort 22: %v, want AccessDeniedException", err)
	}
	_, err = st.dial(t, st.params(5432), withDeny)
	if !errors.As(err, &te) || te.Code != "AccessDeniedException" || !strings.Contains(te.Message, "NoTunnelsButSSH") {
		t.Errorf("port 5432 with a Deny on NumericNotEquals remotePort 22: %v, want AccessDeniedException naming the statement", err)
	}
	// Port 22 passes the policy: a tunnel, or the agent's own answer when
	// nothing listens on 22 here, never AccessDenied.
	for _, who := range []harness.Creds{allowOnly, withDeny} {
		c, err := st.dial(t, st.params(22), who)
		switch {
		case err == nil:
			c.Close()
		case errors.As(err, &te) && te.Code == "TargetRefused" && strings.Contains(te.Message, "127.0.0.1:22"):
		default:
			t.Errorf("port 22 as %s: %v, want it past the policy", who.Who, err)
		}
	}
	// The port the echo service has is refused to both.
	for _, who := range []harness.Creds{allowOnly, withDeny} {
		if _, err := st.dial(t, st.params(svc.port), who); !errors.As(err, &te) || te.Code != "AccessDeniedException" {
			t.Errorf("port %d as %s: %v, want AccessDeniedException", svc.port, who.Who, err)
		}
	}
}

func newUser(t *testing.T, st *site, name, policy string) harness.Creds {
	t.Helper()
	ctx := context.Background()
	c := st.IAM(st.Root)
	harness.Must(c.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String(name)}))(t)
	harness.Must(c.PutUserPolicy(ctx, &iam.PutUserPolicyInput{UserName: aws.String(name), PolicyName: aws.String("tunnels"), PolicyDocument: aws.String(policy)}))(t)
	k := harness.Must(c.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String(name)}))(t).AccessKey
	return harness.Creds{Who: name, ID: aws.ToString(k.AccessKeyId), Secret: aws.ToString(k.SecretAccessKey)}
}

// --- other clients ---------------------------------------------------------------------

// testThirdParty: how other tools reach EC2 Instance Connect Endpoint — a
// URL presigned with the AWS SDK for Go v2's v4 signer (PresignHTTP, no
// X-Amz-Expires, as Teleport does) and gorilla/websocket. Empty binary
// messages are ignored; a text message closes the tunnel with 1003 and a
// reason; the audit has both events with the bytes each way.
func testThirdParty(t *testing.T, st *site, svc *service) {
	ctx := context.Background()
	q := url.Values{}
	q.Set("instanceConnectEndpointId", st.endpointID)
	q.Set("remotePort", strconv.Itoa(svc.port))
	q.Set("privateIpAddress", st.privateIP)
	u := fmt.Sprintf("https://localhost:%d/openTunnel?%s", st.Port, q.Encode())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	creds := aws.Credentials{AccessKeyID: st.Root.ID, SecretAccessKey: st.Root.Secret}
	const emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	signed, _, err := v4.NewSigner().PresignHTTP(ctx, creds, req, emptySHA256, "ec2-instance-connect", st.Region, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	pem, err := os.ReadFile(st.CAPath())
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	d := gorilla.Dialer{TLSClientConfig: &tls.Config{RootCAs: pool}, HandshakeTimeout: 10 * time.Second}
	ws, resp, err := d.Dial("wss"+strings.TrimPrefix(signed, "https"), nil)
	if err != nil {
		body := ""
		if resp != nil {
			b, _ := io.ReadAll(resp.Body)
			body = string(b)
		}
		t.Fatalf("gorilla/websocket with a PresignHTTP URL: %v %s", err, body)
	}
	defer ws.Close()
	reqID := resp.Header.Get("X-Amzn-RequestId")
	if reqID == "" {
		t.Error("the 101 has no X-Amzn-RequestId")
	}
	msg := "hello, tunnel"
	for _, m := range []string{"", msg[:5], "", msg[5:]} {
		if err := ws.WriteMessage(gorilla.BinaryMessage, []byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	var got []byte
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	for len(got) < len(msg) {
		typ, p, err := ws.ReadMessage()
		if err != nil || typ != gorilla.BinaryMessage {
			t.Fatalf("reading the echo: %v (type %d)", err, typ)
		}
		got = append(got, p...)
	}
	if string(got) != msg {
		t.Fatalf("echo %q, want %q", got, msg)
	}
	// A text message: the tunnel closes with an error.
	if err := ws.WriteMessage(gorilla.TextMessage, []byte("hello?")); err != nil {
		t.Fatal(err)
	}
	_, _, err = ws.ReadMessage()
	var ce *gorilla.CloseError
	if !errors.As(err, &ce) || ce.Code != 1003 || !strings.Contains(ce.Text, "binary") {
		t.Fatalf("after a text message: %v, want close 1003 with a reason", err)
	}

	// The audit: OpenTunnel with the request ID of the 101, CloseTunnel
	// with the bytes each way and the reason.
	waitFor(t, "the CloseTunnel event", 10*time.Second, func() bool {
		for _, ev := range st.events(t, "CloseTunnel") {
			d, _ := ev["additionalEventData"].(map[string]any)
			if d["openRequestId"] != reqID {
				continue
			}
			if d["bytesUp"] != float64(len(msg)) || d["bytesDown"] != float64(len(msg)) || !strings.Contains(fmt.Sprint(d["closeReason"]), "text") || d["instanceId"] != st.instance {
				t.Errorf("CloseTunnel: %v, want %d bytes each way and the text message as the reason", d, len(msg))
			}
			return true
		}
		return false
	})
	found := false
	for _, ev := range st.events(t, "OpenTunnel") {
		if ev["requestID"] == reqID {
			found = true
			d, _ := ev["additionalEventData"].(map[string]any)
			if ev["errorCode"] != nil || d["instanceId"] != st.instance || d["remotePort"] != float64(svc.port) {
				t.Errorf("OpenTunnel event: %v", ev)
			}
		}
	}
	if !found {
		t.Errorf("no OpenTunnel event with request ID %s", reqID)
	}
}

// testStdioExit: with its stdin closed, open-tunnel exits within a second
// (the AWS CLI's keeps spinning).
func testStdioExit(t *testing.T, st *site, svc *service) {
	cmd := exec.Command(harness.Kaginashi, "open-tunnel", "--instance-id", st.instance, "--remote-port", strconv.Itoa(svc.port))
	cmd.Env = st.cliEnv(t)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	var stderr harness.SyncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	io.WriteString(stdin, "ping\n")
	got := make([]byte, 5)
	if _, err := io.ReadFull(stdout, got); err != nil || string(got) != "ping\n" {
		cmd.Process.Kill()
		t.Fatalf("echo: %q %v\nstderr: %s", got, err, stderr.String())
	}
	stdin.Close()
	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("open-tunnel: %v\nstderr: %s", err, stderr.String())
		}
	case <-time.After(bound(5 * time.Second)):
		cmd.Process.Kill()
		t.Fatal("open-tunnel still runs 5 s after its stdin closed")
	}
	if d := time.Since(start); d > bound(time.Second) {
		t.Errorf("open-tunnel took %v to exit after its stdin closed, want < 1 s", d)
	}
}

// testStdioPipedRequest: a request piped in whole (standard input ends
// before the answer can arrive) gets its answer, as with nc, and
// open-tunnel still exits within a second of its input's end.
func testStdioPipedRequest(t *testing.T, st *site, svc *service) {
	cmd := exec.Command(harness.Kaginashi, "open-tunnel", "--instance-id", st.instance, "--remote-port", strconv.Itoa(svc.port))
	cmd.Env = st.cliEnv(t)
	cmd.Stdin = strings.NewReader("ping\n")
	var stdout, stderr harness.SyncBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("open-tunnel: %v\nstderr: %s", err, stderr.String())
	}
	if got := stdout.String(); got != "ping\n" {
		t.Fatalf("open-tunnel printed %q for the piped request, want the echo %q\nstderr: %s", got, "ping\n", stderr.String())
	}
}

// --- helpers -------------------------------------------------------------------------

// source is a cheap endless byte stream that still catches lost,
// repeated or reordered pieces: 64 KiB of random bytes over and over,
// each round stamped with its number. (A generator in Go would dominate
// the test's time under -race.)
type source struct {
	block []byte
	round uint64
	off   int
}

func newSource(seed byte) *source {
	b := make([]byte, 64<<10)
	rand.NewChaCha8([32]byte{seed}).Read(b)
	return &source{block: b}
}

func (s *source) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if s.off == 0 {
			binary.BigEndian.PutUint64(s.block, s.round)
			s.round++
		}
		m := copy(p[n:], s.block[s.off:])
		n += m
		s.off = (s.off + m) % len(s.block)
	}
	return n, nil
}

func wantEcho(t *testing.T, c net.Conn, what string) {
	t.Helper()
	msg := []byte("echo " + what)
	if _, err := c.Write(msg); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("%s: echo %q, %v", what, got, err)
	}
}

func waitFor(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
