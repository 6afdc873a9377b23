package client

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// WarmTunnel is a TCP and TLS connection to the Instance Connect Endpoint
// made ahead of its tunnel: `kaginashi ssh` starts it as soon as it knows
// the server, and looks the instance up meanwhile. Those handshakes are
// two round trips that would otherwise come after the look-up. The
// connection is used for one tunnel (DialTunnelWarm), then the client
// dials as usual.
type WarmTunnel struct {
	addr   string // host:port, as the transport dials it
	hc     *http.Client
	ready  chan struct{}
	cancel context.CancelFunc

	mu    sync.Mutex
	conn  net.Conn // until taken; nil on failure
	at    time.Time
	taken bool
}

// warmMaxAge is how long a warm connection may wait for its request: a
// server closes a connection that sends no request for a while, and a
// request on a connection it closed would fail.
const warmMaxAge = 5 * time.Second

// PrewarmTunnel starts the handshakes with the endpoint at the base URL
// endpoint (the server's, for kaginashi). It returns nil, and the tunnel
// dials as usual, when that cannot help: an endpoint that is not https,
// a proxy for it (the transport then dials the proxy), or an HTTP client
// not built on net/http's transport.
func PrewarmTunnel(ctx context.Context, cfg aws.Config, endpoint string) *WarmTunnel {
	u, err := url.Parse(endpoint)
	if err != nil || u.Scheme != "https" || u.Hostname() == "" {
		return nil
	}
	tr := tunnelTransport(cfg.HTTPClient)
	if tr == nil {
		return nil
	}
	probe := &url.URL{Scheme: "https", Host: u.Host, Path: "/openTunnel"}
	if tr.Proxy != nil {
		if pu, err := tr.Proxy(&http.Request{Method: http.MethodGet, URL: probe, Header: http.Header{}}); err != nil || pu != nil {
			return nil
		}
	}
	port := u.Port()
	if port == "" {
		port = "443"
	}
	w := &WarmTunnel{addr: net.JoinHostPort(u.Hostname(), port), ready: make(chan struct{})}
	tlsConf := &tls.Config{}
	if tr.TLSClientConfig != nil {
		tlsConf = tr.TLSClientConfig.Clone()
	}
	if tlsConf.ServerName == "" {
		tlsConf.ServerName = u.Hostname()
	}
	tlsConf.NextProtos = []string{"http/1.1"} // a WebSocket upgrade is HTTP/1.1
	dialTCP, timeout := tr.DialContext, tr.TLSHandshakeTimeout
	dialTLS := func(ctx context.Context, network, addr string) (net.Conn, error) {
		raw, err := dialTCP(ctx, network, addr) // bulkio under TLS, as tunnelTransport's
		if err != nil {
			return nil, err
		}
		if timeout > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, timeout)
			defer cancel()
		}
		tc := tls.Client(raw, tlsConf)
		if err := tc.HandshakeContext(ctx); err != nil {
			raw.Close()
			return nil, err
		}
		return tc, nil
	}
	tr.DialTLSContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if c := w.take(ctx, addr); c != nil {
			return c, nil
		}
		return dialTLS(ctx, network, addr)
	}
	w.hc = &http.Client{Transport: tr}

	ctx, w.cancel = context.WithCancel(ctx)
	go func() {
		defer close(w.ready)
		c, err := dialTLS(ctx, "tcp", w.addr)
		w.mu.Lock()
		defer w.mu.Unlock()
		if err != nil || w.taken {
			if c != nil {
				c.Close()
			}
			return
		}
		w.conn, w.at = c, time.Now()
	}()
	return w
}

// client is the HTTP client that uses the warm connection, for a tunnel
// through endpoint; nil when w is nil or made for another endpoint.
func (w *WarmTunnel) client(endpoint string) *http.Client {
	if w == nil {
		return nil
	}
	u, err := url.Parse(endpoint)
	if err != nil {
		return nil
	}
	port := u.Port()
	if port == "" {
		port = "443"
	}
	if net.JoinHostPort(u.Hostname(), port) != w.addr {
		return nil
	}
	return w.hc
}

// take returns the warm connection for addr once, waiting for its
// handshakes; nil when it failed, is stale or was taken.
func (w *WarmTunnel) take(ctx context.Context, addr string) net.Conn {
	if addr != w.addr {
		return nil
	}
	select {
	case <-w.ready:
	case <-ctx.Done():
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	c := w.conn
	w.conn, w.taken = nil, true
	if c != nil && time.Since(w.at) > warmMaxAge {
		c.Close()
		return nil
	}
	return c
}

// Close drops the connection if no tunnel took it.
func (w *WarmTunnel) Close() {
	if w == nil {
		return
	}
	w.cancel()
	w.mu.Lock()
	defer w.mu.Unlock()
	w.taken = true
	if w.conn != nil {
		w.conn.Close()
		w.conn = nil
	}
}
