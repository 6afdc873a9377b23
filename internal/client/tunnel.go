package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/coder/websocket"
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
// the remote port's. Closing it ends the tunnel.
func DialTunnel(ctx context.Context, cfg aws.Config, p TunnelParams) (net.Conn, error) {
	wsURL, err := PresignOpenTunnel(ctx, cfg, p, time.Now())
	if err != nil {
		return nil, err
	}
	hc := cfg.HTTPClient
	opts := &websocket.DialOptions{HTTPHeader: http.Header{"User-Agent": {"kaginashi"}}}
	if c, ok := hc.(*http.Client); ok {
		opts.HTTPClient = c
	} else if hc != nil {
		opts.HTTPClient = &http.Client{Transport: doerTransport{hc}}
	}
	ws, resp, err := websocket.Dial(ctx, wsURL, opts)
	if err != nil {
		if resp != nil {
			te := &TunnelError{Status: resp.StatusCode}
			if resp.Body != nil {
				b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
				parseTunnelError(b, te)
			}
			return nil, te
		}
		return nil, err
	}
	ws.SetReadLimit(1 << 20)
	// The tunnel lives as long as the caller's context.
	return websocket.NetConn(ctx, ws, websocket.MessageBinary), nil
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

// CloseReason explains a tunnel that ended with a close code other than
// normal: the server's reason, shown to the user.
func CloseReason(err error) string {
	var ce websocket.CloseError
	if errors.As(err, &ce) && ce.Code != websocket.StatusNormalClosure {
		return fmt.Sprintf("the tunnel was closed: %s (code %d)", ce.Reason, ce.Code)
	}
	return ""
}
