package wstunnel

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha1" //nolint:gosec // RFC 6455 defines Sec-WebSocket-Accept with SHA-1
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"strings"
	"time"

	"github.com/kaginashi/kaginashi/internal/bulkio"
)

const acceptGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

func acceptKey(key string) string {
	h := sha1.Sum([]byte(key + acceptGUID)) //nolint:gosec // RFC 6455
	return base64.StdEncoding.EncodeToString(h[:])
}

// headerHas says whether a comma-separated header holds token.
func headerHas(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// CheckUpgrade says whether r is a WebSocket opening handshake this
// package accepts (RFC 6455 §4.2.1), before any work is done for it.
func CheckUpgrade(r *http.Request) error {
	switch {
	case r.Method != http.MethodGet:
		return fmt.Errorf("%w: the method is %s, not GET", errNotWebSocket, r.Method)
	case r.ProtoMajor != 1:
		return fmt.Errorf("%w: WebSocket needs HTTP/1.1, not %s", errNotWebSocket, r.Proto)
	case !headerHas(r.Header, "Connection", "upgrade"):
		return fmt.Errorf("%w: no Connection: Upgrade", errNotWebSocket)
	case !headerHas(r.Header, "Upgrade", "websocket"):
		return fmt.Errorf("%w: no Upgrade: websocket", errNotWebSocket)
	case r.Header.Get("Sec-WebSocket-Version") != "13":
		return fmt.Errorf("%w: Sec-WebSocket-Version must be 13", errNotWebSocket)
	}
	key, err := base64.StdEncoding.DecodeString(r.Header.Get("Sec-WebSocket-Key"))
	if err != nil || len(key) != 16 {
		return fmt.Errorf("%w: Sec-WebSocket-Key must be 16 bytes in base64", errNotWebSocket)
	}
	return nil
}

// Accept completes the server's side of the opening handshake and takes
// over the connection. No subprotocol and no extension is agreed: a
// client's offer of compression is declined by not answering it. On error
// nothing has been written when the request is not an upgrade; a failed
// takeover leaves the connection to the HTTP server.
func Accept(w http.ResponseWriter, r *http.Request, header http.Header) (*Conn, error) {
	if err := CheckUpgrade(r); err != nil {
		return nil, err
	}
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return nil, fmt.Errorf("taking over the connection: %w", err)
	}
	// The server's read and write timeouts are for HTTP requests; a
	// tunnel's lifetime is the caller's business.
	_ = conn.SetDeadline(time.Time{})
	var b strings.Builder
	b.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ")
	b.WriteString(acceptKey(r.Header.Get("Sec-WebSocket-Key")))
	b.WriteString("\r\n")
	for k, vs := range header {
		for _, v := range vs {
			b.WriteString(k + ": " + strings.NewReplacer("\r", "", "\n", "").Replace(v) + "\r\n")
		}
	}
	b.WriteString("\r\n")
	if _, err := brw.WriteString(b.String()); err != nil {
		conn.Close()
		return nil, err
	}
	if err := brw.Flush(); err != nil {
		conn.Close()
		return nil, err
	}
	// The HTTP server's reader goes on: what it read ahead belongs to the
	// WebSocket. (Payload reads bypass its small buffer.)
	return newConn(bulkio.Batch(conn), brw.Reader, false), nil
}

// Dial opens a WebSocket to wsURL (ws:// or wss://) through hc, which
// brings its TLS settings and proxies. A refused handshake returns the
// server's response (its body still to read and close) with the error.
// ctx bounds the handshake only.
func Dial(ctx context.Context, hc *http.Client, wsURL string, header http.Header) (*Conn, *http.Response, error) {
	u := wsURL
	switch {
	case strings.HasPrefix(u, "wss://"):
		u = "https://" + strings.TrimPrefix(u, "wss://")
	case strings.HasPrefix(u, "ws://"):
		u = "http://" + strings.TrimPrefix(u, "ws://")
	default:
		return nil, nil, fmt.Errorf("%q is not a ws:// or wss:// URL", wsURL)
	}
	var nonce [16]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return nil, nil, err
	}
	key := base64.StdEncoding.EncodeToString(nonce[:])
	var under net.Conn
	trace := &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) { under = info.Conn }}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), http.MethodGet, u, nil)
	if err != nil {
		return nil, nil, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Sec-WebSocket-Version", "13")
	req.Header.Set("Sec-WebSocket-Key", key)
	if hc == nil {
		hc = http.DefaultClient
	}
	// An http.Client.Timeout would cut the tunnel when it runs out.
	if hc.Timeout > 0 {
		c := *hc
		c.Timeout = 0
		hc = &c
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, nil, err
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		return nil, resp, fmt.Errorf("the server answered %s to the WebSocket handshake", resp.Status)
	}
	rwc, ok := resp.Body.(io.ReadWriteCloser)
	if !ok {
		resp.Body.Close()
		return nil, nil, fmt.Errorf("the HTTP client's transport cannot upgrade a connection (%T)", resp.Body)
	}
	switch {
	case !headerHas(resp.Header, "Upgrade", "websocket") || !headerHas(resp.Header, "Connection", "upgrade"):
		err = errors.New("the server's answer is not a WebSocket handshake (no Upgrade: websocket)")
	case resp.Header.Get("Sec-WebSocket-Accept") != acceptKey(key):
		err = errors.New("the server's WebSocket handshake has a wrong Sec-WebSocket-Accept")
	case resp.Header.Get("Sec-WebSocket-Extensions") != "":
		err = fmt.Errorf("the server chose a WebSocket extension the client did not offer: %q", resp.Header.Get("Sec-WebSocket-Extensions"))
	}
	if err != nil {
		rwc.Close()
		return nil, nil, err
	}
	nc := &bodyConn{rwc: rwc, under: under, w: rwc}
	if under != nil {
		// Writes to the body are writes to the connection; through bulkio
		// when it is under TLS there.
		nc.w = bulkio.Batch(under)
	}
	return newConn(nc, bufio.NewReaderSize(nc, 16<<10), true), nil, nil
}

// bodyConn is an upgraded HTTP response body as a net.Conn: reads drain
// what the HTTP client read ahead, writes go straight to the connection;
// addresses and deadlines are the connection's, when the trace saw it.
type bodyConn struct {
	rwc   io.ReadWriteCloser
	under net.Conn
	w     io.Writer
}

func (b *bodyConn) Read(p []byte) (int, error)  { return b.rwc.Read(p) }
func (b *bodyConn) Write(p []byte) (int, error) { return b.w.Write(p) }
func (b *bodyConn) Close() error                { return b.rwc.Close() }

type unknownAddr struct{}

func (unknownAddr) Network() string { return "websocket" }
func (unknownAddr) String() string  { return "websocket/unknown-addr" }

func (b *bodyConn) LocalAddr() net.Addr {
	if b.under != nil {
		return b.under.LocalAddr()
	}
	return unknownAddr{}
}

func (b *bodyConn) RemoteAddr() net.Addr {
	if b.under != nil {
		return b.under.RemoteAddr()
	}
	return unknownAddr{}
}

func (b *bodyConn) SetDeadline(t time.Time) error {
	if b.under == nil {
		return errors.ErrUnsupported
	}
	return b.under.SetDeadline(t)
}

func (b *bodyConn) SetReadDeadline(t time.Time) error {
	if b.under == nil {
		return errors.ErrUnsupported
	}
	return b.under.SetReadDeadline(t)
}

func (b *bodyConn) SetWriteDeadline(t time.Time) error {
	if b.under == nil {
		return errors.ErrUnsupported
	}
	return b.under.SetWriteDeadline(t)
}
