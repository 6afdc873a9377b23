package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"

	"github.com/kaginashi/kaginashi/internal/bulkio"
	"github.com/kaginashi/kaginashi/internal/wstunnel"
)

// emptySHA256 is the payload hash of a presigned GET (no body).
const emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// TunnelParams say where a tunnel goes, in EC2 Instance Connect Endpoint's
// terms.
type TunnelParams struct {
	// Endpoint is the endpoint's base URL: https://DNSNAME (port 443) on
	// AWS, the server URL for kaginashi.
	Endpoint   string
	EndpointID string // eice-...
	// PrivateIP is the target's address (AWS); InstanceID is kaginashi's
	// extension, so its client needs no address.
	PrivateIP  string
	InstanceID string
	RemotePort int
	// MaxDuration in seconds; 0 sends none (the server's default, 3600).
	MaxDuration int
}

// PresignOpenTunnel returns the wss:// URL of an open-tunnel request,
// presigned with SigV4 (service ec2-instance-connect) for 60 seconds, as
// the AWS CLI does.
func PresignOpenTunnel(ctx context.Context, cfg aws.Config, p TunnelParams, now time.Time) (string, error) {
	base, err := url.Parse(p.Endpoint)
	if err != nil || base.Host == "" {
		return "", fmt.Errorf("endpoint %q is not a URL", p.Endpoint)
	}
	q := url.Values{}
	q.Set("instanceConnectEndpointId", p.EndpointID)
	q.Set("remotePort", strconv.Itoa(p.RemotePort))
	if p.PrivateIP != "" {
		q.Set("privateIpAddress", p.PrivateIP)
	}
	if p.InstanceID != "" {
		q.Set("instanceId", p.InstanceID)
	}
	if p.MaxDuration > 0 {
		q.Set("maxTunnelDuration", strconv.Itoa(p.MaxDuration))
	}
	q.Set("X-Amz-Expires", "60")
	u := url.URL{Scheme: "https", Host: base.Host, Path: "/openTunnel", RawQuery: q.Encode()}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return "", err
	}
	creds, err := cfg.Credentials.Retrieve(ctx)
	if err != nil {
		return "", fmt.Errorf("credentials: %w", err)
	}
	signed, _, err := v4.NewSigner().PresignHTTP(ctx, creds, req, emptySHA256, "ec2-instance-connect", cfg.Region, now)
	if err != nil {
		return "", fmt.Errorf("presigning: %w", err)
	}
	return "wss" + strings.TrimPrefix(signed, "https"), nil
}

// TunnelError is a refused open-tunnel handshake, in the server's words.
type TunnelError struct {
	Status  int
	Code    string
	Message string
}

func (e *TunnelError) Error() string {
	if e.Code == "" {
		return fmt.Sprintf("the endpoint refused the tunnel (HTTP %d)", e.Status)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

// DialTunnel opens a tunnel and returns it as a net.Conn whose bytes are
// the remote port's. Closing it ends the tunnel; so does the end of ctx.
// Reads end with io.EOF when the server closes the tunnel normally, and
// with an error CloseReason explains otherwise.
func DialTunnel(ctx context.Context, cfg aws.Config, p TunnelParams) (net.Conn, error) {
	return DialTunnelWarm(ctx, cfg, p, nil)
}

// DialTunnelWarm is DialTunnel over w's connection when w (which may be
// nil) was made for p's endpoint.
func DialTunnelWarm(ctx context.Context, cfg aws.Config, p TunnelParams, w *WarmTunnel) (net.Conn, error) {
	// A throttled handshake (many tunnels at once with one access key)
	// is tried again after a jittered, growing pause, as the AWS SDKs
	// retry throttled API calls.
	for attempt := 0; ; attempt++ {
		c, err := dialTunnelOnce(ctx, cfg, p, w)
		var te *TunnelError
		if attempt >= maxThrottleRetries || !errors.As(err, &te) || !te.throttled() {
			return c, err
		}
		w = nil // the warm connection is taken once
		pause := time.Duration(100<<attempt)*time.Millisecond + time.Duration(rand.Int64N(int64(100*time.Millisecond)))
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(pause):
		}
	}
}

// maxThrottleRetries bounds the retries of a throttled handshake (about
// 3 s of pauses in all).
const maxThrottleRetries = 4

func (e *TunnelError) throttled() bool {
	return e.Status == http.StatusTooManyRequests || e.Code == "ThrottlingException" || e.Code == "Throttling"
}

func dialTunnelOnce(ctx context.Context, cfg aws.Config, p TunnelParams, w *WarmTunnel) (net.Conn, error) {
	wsURL, err := PresignOpenTunnel(ctx, cfg, p, time.Now())
	if err != nil {
		return nil, err
	}
	hc := w.client(p.Endpoint)
	if hc == nil {
		hc = tunnelHTTPClient(cfg.HTTPClient)
	}
	conn, resp, err := wstunnel.Dial(ctx, hc, wsURL, http.Header{"User-Agent": {"kaginashi"}})
	if err != nil {
		if resp != nil {
			te := &TunnelError{Status: resp.StatusCode}
			if resp.Body != nil {
				b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
				resp.Body.Close()
				parseTunnelError(b, te)
			}
			return nil, te
		}
		return nil, err
	}
	// The tunnel lives as long as the caller's context.
	tc := &tunnelConn{Conn: conn}
	tc.stop = context.AfterFunc(ctx, func() { conn.Close() })
	return tc, nil
}

// tunnelConn is a tunnel bound to a context.
type tunnelConn struct {
	*wstunnel.Conn
	stop func() bool
}

func (t *tunnelConn) Close() error {
	t.stop()
	return t.Conn.Close()
}

// tunnelHTTPClient is the configuration's HTTP client (its TLS settings,
// CA bundle, proxies) on a transport of its own whose connections have
// bulkio under TLS, for the tunnel's bulk data.
func tunnelHTTPClient(d aws.HTTPClient) *http.Client {
	tr := tunnelTransport(d)
	if tr == nil {
		if c, ok := d.(*http.Client); ok {
			return c
		}
		return &http.Client{Transport: doerTransport{d}}
	}
	return &http.Client{Transport: tr}
}

// tunnelTransport is a copy of the configuration's transport whose
// connections have bulkio under TLS; nil when the configuration's HTTP
// client is not built on an *http.Transport.
func tunnelTransport(d aws.HTTPClient) *http.Transport {
	var tr *http.Transport
	switch c := d.(type) {
	case *awshttp.BuildableClient:
		tr = c.GetTransport() // a copy
	case *http.Client:
		switch t := c.Transport.(type) {
		case *http.Transport:
			tr = t.Clone()
		case nil:
			tr = http.DefaultTransport.(*http.Transport).Clone()
		default:
			return nil
		}
	case nil:
		tr = http.DefaultTransport.(*http.Transport).Clone()
	default:
		return nil
	}
	dial := tr.DialContext
	if dial == nil {
		dial = (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	}
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return bulkio.Wrap(c), nil
	}
	return tr
}

// doerTransport adapts an SDK HTTP client to http.RoundTripper.
type doerTransport struct {
	d interface {
		Do(*http.Request) (*http.Response, error)
	}
}

func (t doerTransport) RoundTrip(r *http.Request) (*http.Response, error) { return t.d.Do(r) }

func parseTunnelError(b []byte, te *TunnelError) {
	var v struct {
		ErrorCode string `json:"ErrorCode"`
		Message   string `json:"Message"`
	}
	if err := json.Unmarshal(b, &v); err == nil {
		te.Code, te.Message = v.ErrorCode, v.Message
	}
}

// closeLinger bounds how long EndTunnel waits for the server's answering
// close: the server answers at once, so this is one round trip unless it
// is stuck.
const closeLinger = time.Second

// EndTunnel ends a tunnel from this side (standard input or the local
// connection ended) while reader — the copy from the tunnel, which
// reports on the channel when it ends — may still run. It sends a normal
// close, lets the server's answer arrive (reading what comes before it),
// and only then drops the connection: dropping it with the server's data
// unread resets it, and the reset can destroy the close frame or fail the
// server's writes, and the server then records "client connection lost"
// for an ordinary end.
func EndTunnel(conn net.Conn, reader <-chan error) {
	defer conn.Close()
	sc, ok := conn.(interface{ SendClose(int, string) bool })
	if !ok {
		return
	}
	sc.SendClose(wstunnel.StatusNormalClosure, "")
	timer := time.NewTimer(closeLinger)
	defer timer.Stop()
	select {
	case <-reader:
	case <-timer.C:
		return
	}
	// The reader may have stopped because its own output failed (ssh
	// gone): read on to the server's close, within the same bound.
	_ = conn.SetReadDeadline(time.Now().Add(closeLinger))
	_, _ = io.Copy(io.Discard, conn)
}

// CloseReason explains a tunnel that ended with a close code other than
// normal, or a broken WebSocket: the server's reason, shown to the user.
func CloseReason(err error) string {
	var ce *wstunnel.CloseError
	if errors.As(err, &ce) && ce.Code != wstunnel.StatusNormalClosure {
		return fmt.Sprintf("the tunnel was closed: %s (code %d)", orDefault(ce.Reason, "no reason given"), ce.Code)
	}
	var pe *wstunnel.ProtocolError
	if errors.As(err, &pe) {
		return "the tunnel was closed: " + pe.Error()
	}
	// No close frame: the server went away mid-tunnel (killed, a network
	// cut). Not a clean end, though the copy just stops: say so.
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) {
		return "the tunnel was closed: the connection to the endpoint was lost (no close from the server: it stopped, or the network failed)"
	}
	return ""
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
