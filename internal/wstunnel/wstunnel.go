// Package wstunnel is the WebSocket of EC2 Instance Connect Endpoint's
// open-tunnel (RFC 6455), both ends, built for carrying a byte stream fast:
// binary messages are the bytes of one TCP connection, text messages are
// an error, and pings, pongs and close frames are handled here.
//
// Why not a general WebSocket library: a tunnel carries bulk data (scp,
// rsync, git, database dumps) and the goal is to cost little more than the
// TLS it runs in. coder/websocket, which served first, masks a client's
// frames through a 4 KiB buffer, so every 4 KiB became its own TLS record
// and write system call; its net.Conn adapter returns at most one TLS
// record per read and arms a context timer for every read and write. Here:
//
//   - One Write is one call on the connection: all its frames (at most
//     MaxFramePayload bytes each) assembled in one pooled buffer, the
//     client's masking done in the same pass as the copy, vectorized.
//   - WriteTo reads whole frames: it waits for the rest of a frame whose
//     header has arrived (its sender is committed to those bytes) and takes
//     any further frames already buffered, so the next hop gets large
//     writes — but it never waits for a frame that has not begun, so
//     interactive traffic is not held back.
//   - No per-call contexts or timers: deadlines are the connection's own.
//
// Limits: no extensions (compression is never offered or accepted), no
// subprotocols, no message size limit (bytes stream through, nothing is
// buffered per message).
package wstunnel

import (
	"bufio"
	"crypto/rand"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// MaxFramePayload bounds one frame this package sends. The AWS CLI sends
// at most 65,000 bytes a frame to EC2 Instance Connect Endpoint; keeping
// within 64 KiB keeps kaginashi's client as acceptable to AWS's endpoint
// as the AWS CLI, and the frames kaginashi's server sends as easy on
// third-party clients (coder/websocket's default read limit is 32 KiB per
// message for its whole-message API; streaming readers have none).
// Larger frames buy nothing measurable: TLS cuts records of 16 KiB anyway.
const MaxFramePayload = 64 << 10

// BatchSize is the buffer of WriteTo and ReadFrom: the most one step moves.
const BatchSize = 256 << 10

// Close codes (RFC 6455 §7.4.1).
const (
	StatusNormalClosure   = 1000
	StatusGoingAway       = 1001
	StatusProtocolError   = 1002
	StatusUnsupportedData = 1003
	StatusNoStatusRcvd    = 1005
	StatusPolicyViolation = 1008
	StatusInternalError   = 1011
	StatusTryAgainLater   = 1013
)

// CloseError is the peer's close frame with a code other than a normal
// closure, as Read reports it.
type CloseError struct {
	Code   int
	Reason string
}

func (e *CloseError) Error() string {
	if e.Reason == "" {
		return fmt.Sprintf("the WebSocket was closed with code %d", e.Code)
	}
	return fmt.Sprintf("the WebSocket was closed: %s (code %d)", e.Reason, e.Code)
}

// ProtocolError is a frame that breaks RFC 6455 or the tunnel's rules (a
// text message); the connection has been closed with Code.
type ProtocolError struct {
	Code   int
	Reason string
}

func (e *ProtocolError) Error() string { return "WebSocket protocol error: " + e.Reason }

const (
	opContinuation = 0x0
	opText         = 0x1
	opBinary       = 0x2
	opClose        = 0x8
	opPing         = 0x9
	opPong         = 0xa
)

// Conn is one end of a tunnel's WebSocket. Read, WriteTo and the answers
// to control frames may run concurrently with Write, ReadFrom and Close;
// reads are serialized among themselves, and so are writes.
type Conn struct {
	client bool // masks what it sends; expects unmasked frames
	conn   net.Conn
	br     *bufio.Reader

	wmu      sync.Mutex
	werr     error // sticky: after a write error or a sent close frame
	sentCode int   // the close code sent, 0 before

	rmu       sync.Mutex
	remaining int64 // payload bytes left in the current data frame
	mask      [4]byte
	maskPos   int  // position in the mask (server: client frames are masked)
	masked    bool // the current frame is masked
	inMessage bool // inside a fragmented binary message
	rerr      error

	closeOnce sync.Once
	closed    chan struct{}
}

func newConn(conn net.Conn, br *bufio.Reader, client bool) *Conn {
	if br == nil {
		br = bufio.NewReaderSize(conn, 16<<10)
	}
	return &Conn{client: client, conn: conn, br: br, closed: make(chan struct{})}
}

var (
	wbufPool  = sync.Pool{New: func() any { b := make([]byte, 0, BatchSize+(BatchSize/MaxFramePayload+1)*14); return &b }}
	batchPool = sync.Pool{New: func() any { b := make([]byte, BatchSize); return &b }}
)

// --- writing -------------------------------------------------------------------

// Write sends p as binary frames, in one write on the connection.
func (c *Conn) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.werr != nil {
		return 0, c.werr
	}
	if err := c.writeFramesLocked(opBinary, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// ReadFrom copies r to the peer in batches of up to BatchSize: io.Copy
// from a pipe or socket ends up here. It returns nil at r's end.
func (c *Conn) ReadFrom(r io.Reader) (int64, error) {
	bp := batchPool.Get().(*[]byte)
	defer batchPool.Put(bp)
	buf := *bp
	var total int64
	for {
		n, err := r.Read(buf)
		if n > 0 {
			if _, werr := c.Write(buf[:n]); werr != nil {
				return total, werr
			}
			total += int64(n)
		}
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

// writeFramesLocked writes p as FIN frames of opcode op (for data: each
// frame its own binary message), BatchSize bytes per write on the
// connection.
func (c *Conn) writeFramesLocked(op byte, p []byte) error {
	bp := wbufPool.Get().(*[]byte)
	defer wbufPool.Put(bp)
	for {
		b := (*bp)[:0]
		for batch := 0; ; {
			chunk := p[:min(len(p), MaxFramePayload)]
			p = p[len(chunk):]
			b = c.appendFrame(b, op, chunk)
			batch += len(chunk)
			if len(p) == 0 || batch >= BatchSize {
				break
			}
		}
		*bp = b[:0] // keeps what append grew
		if _, err := c.conn.Write(b); err != nil {
			c.werr = err
			return err
		}
		if len(p) == 0 {
			return nil
		}
	}
}

// appendFrame appends one FIN frame.
func (c *Conn) appendFrame(b []byte, op byte, payload []byte) []byte {
	n := len(payload)
	var maskBit byte
	if c.client {
		maskBit = 0x80
	}
	b = append(b, 0x80|op)
	switch {
	case n <= 125:
		b = append(b, maskBit|byte(n))
	case n <= 0xffff:
		b = append(b, maskBit|126, byte(n>>8), byte(n))
	default:
		b = append(b, maskBit|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	if !c.client {
		return append(b, payload...)
	}
	// A client masks every frame with a fresh, unpredictable key (RFC 6455
	// §5.3).
	var key [4]byte
	if _, err := rand.Read(key[:]); err != nil {
		panic(err) // crypto/rand does not fail on supported systems
	}
	b = append(b, key[:]...)
	start := len(b)
	b = slices.Grow(b, n)[:start+n]
	maskCopy(b[start:], payload, key, 0)
	return b
}

// maskCopy sets dst to src XOR the 4-byte key repeated from position pos
// of the key, and returns the position after. crypto/subtle's XORBytes is
// vectorized; a 2 KiB pattern of the key feeds it.
func maskCopy(dst, src []byte, key [4]byte, pos int) int {
	if len(src) < 64 {
		for i := range src {
			dst[i] = src[i] ^ key[(pos+i)&3]
		}
		return (pos + len(src)) & 3
	}
	var pat [2048]byte
	for i := 0; i < 4; i++ {
		pat[i] = key[(pos+i)&3]
	}
	for n := 4; n < len(pat); n *= 2 {
		copy(pat[n:], pat[:n])
	}
	end := (pos + len(src)) & 3
	for len(src) > 0 {
		n := min(len(src), len(pat))
		subtle.XORBytes(dst[:n], src[:n], pat[:n])
		dst, src = dst[n:], src[n:]
	}
	return end
}

// --- reading -------------------------------------------------------------------

// Read returns payload bytes of binary messages, answering control frames
// on the way. The peer's close frame ends the stream: io.EOF for a normal
// closure (1000, 1001 or no code), a *CloseError otherwise. A text message
// or a broken frame closes the connection and returns a *ProtocolError.
func (c *Conn) Read(p []byte) (int, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	return c.readLocked(p)
}

func (c *Conn) readLocked(p []byte) (int, error) {
	for c.remaining == 0 {
		if c.rerr != nil {
			return 0, c.rerr
		}
		if err := c.nextFrame(); err != nil {
			c.rerr = err
			return 0, err
		}
	}
	if len(p) == 0 {
		return 0, nil
	}
	if int64(len(p)) > c.remaining {
		p = p[:c.remaining]
	}
	n, err := c.br.Read(p)
	if c.masked && n > 0 {
		c.maskPos = maskCopy(p[:n], p[:n], c.mask, c.maskPos)
	}
	c.remaining -= int64(n)
	if err != nil {
		c.rerr = c.lost(err)
		return n, c.rerr
	}
	return n, nil
}

// Wait blocks until payload can be read or the stream ends (the error
// Read would return), reading frame headers and answering control frames
// but no payload: a relay takes a buffer only for data that is there.
func (c *Conn) Wait() error {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	for c.remaining == 0 {
		if c.rerr != nil {
			return c.rerr
		}
		if err := c.nextFrame(); err != nil {
			c.rerr = err
			return err
		}
	}
	return nil
}

// ReadBatch reads at least one byte into p and then as much as can be had
// without waiting for anything that has not begun to arrive: the rest of
// the current frame (its sender has committed to those bytes) and any
// further frames already buffered. It is Read for relays, which then pass
// on larger pieces.
func (c *Conn) ReadBatch(p []byte) (int, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	n, err := c.readLocked(p)
	for err == nil && n < len(p) && (c.remaining > 0 || c.headerBuffered()) {
		var m int
		m, err = c.readLocked(p[n:])
		n += m
	}
	if n > 0 && err != nil {
		// Deliver the bytes now; the error comes again with the next call.
		return n, nil
	}
	return n, err
}

// headerBuffered says whether a whole frame header is in the buffer.
func (c *Conn) headerBuffered() bool {
	b, _ := c.br.Peek(min(c.br.Buffered(), 14))
	if len(b) < 2 {
		return false
	}
	need := 2
	switch b[1] & 0x7f {
	case 126:
		need += 2
	case 127:
		need += 8
	}
	if b[1]&0x80 != 0 {
		need += 4
	}
	return len(b) >= need
}

// WriteTo copies the stream to w in batches (see ReadBatch): io.Copy to a
// pipe or socket ends up here. It returns nil at a normal closure.
func (c *Conn) WriteTo(w io.Writer) (int64, error) {
	bp := batchPool.Get().(*[]byte)
	defer batchPool.Put(bp)
	buf := *bp
	var total int64
	for {
		n, err := c.ReadBatch(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return total, werr
			}
			total += int64(n)
		}
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

// lost describes a failed read: the connection closed here, or lost.
func (c *Conn) lost(err error) error {
	select {
	case <-c.closed:
		return net.ErrClosed
	default:
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("the tunnel's connection was lost: %w", err)
}

// nextFrame reads frame headers, answering control frames, until a data
// frame with payload begins (c.remaining > 0) or the stream ends.
func (c *Conn) nextFrame() error {
	var hdr [8]byte
	if _, err := io.ReadFull(c.br, hdr[:2]); err != nil {
		return c.lost(err)
	}
	fin, op := hdr[0]&0x80 != 0, hdr[0]&0x0f
	masked := hdr[1]&0x80 != 0
	if hdr[0]&0x70 != 0 {
		return c.fail(StatusProtocolError, "reserved bits set in a frame (no extension was negotiated)")
	}
	if masked == c.client {
		if c.client {
			return c.fail(StatusProtocolError, "the server masked a frame")
		}
		return c.fail(StatusProtocolError, "the client sent an unmasked frame")
	}
	n := uint64(hdr[1] & 0x7f)
	switch n {
	case 126:
		if _, err := io.ReadFull(c.br, hdr[:2]); err != nil {
			return c.lost(err)
		}
		n = uint64(binary.BigEndian.Uint16(hdr[:2]))
	case 127:
		if _, err := io.ReadFull(c.br, hdr[:8]); err != nil {
			return c.lost(err)
		}
		n = binary.BigEndian.Uint64(hdr[:8])
		if n > 1<<63-1 {
			return c.fail(StatusProtocolError, "a frame length with its top bit set")
		}
	}
	c.masked = masked
	c.maskPos = 0
	if masked {
		if _, err := io.ReadFull(c.br, c.mask[:]); err != nil {
			return c.lost(err)
		}
	}
	if op >= opClose {
		if n > 125 || !fin {
			return c.fail(StatusProtocolError, "a control frame longer than 125 bytes or fragmented")
		}
		var payload [125]byte
		if _, err := io.ReadFull(c.br, payload[:n]); err != nil {
			return c.lost(err)
		}
		if masked {
			maskCopy(payload[:n], payload[:n], c.mask, 0)
		}
		return c.control(op, payload[:n])
	}
	switch op {
	case opBinary:
		if c.inMessage {
			return c.fail(StatusProtocolError, "a new message began inside a fragmented one")
		}
	case opContinuation:
		if !c.inMessage {
			return c.fail(StatusProtocolError, "a continuation frame outside a message")
		}
	case opText:
		return c.fail(StatusUnsupportedData, "text messages are not part of the tunnel protocol: binary messages carry its bytes")
	default:
		return c.fail(StatusProtocolError, fmt.Sprintf("unknown opcode %d", op))
	}
	c.inMessage = !fin
	c.remaining = int64(n) // empty frames leave it 0: the caller reads on
	return nil
}

// control answers a control frame.
func (c *Conn) control(op byte, payload []byte) error {
	switch op {
	case opPing:
		c.wmu.Lock()
		var err error
		if c.werr == nil {
			err = c.writeFramesLocked(opPong, payload)
		}
		c.wmu.Unlock()
		if err != nil {
			return c.lost(err)
		}
		return nil
	case opPong:
		return nil
	case opClose:
		code, reason := StatusNoStatusRcvd, ""
		switch {
		case len(payload) == 1:
			return c.fail(StatusProtocolError, "a close frame of one byte")
		case len(payload) >= 2:
			code = int(binary.BigEndian.Uint16(payload))
			reason = string(payload[2:])
			if !utf8.ValidString(reason) {
				reason = strings.ToValidUTF8(reason, "\uFFFD")
			}
		}
		// Echo the close (RFC 6455 §5.5.1) unless this end sent one first.
		c.sendClose(StatusNormalClosure, "")
		switch code {
		case StatusNormalClosure, StatusGoingAway, StatusNoStatusRcvd:
			return io.EOF
		}
		return &CloseError{Code: code, Reason: reason}
	}
	return c.fail(StatusProtocolError, fmt.Sprintf("unknown opcode %d", op))
}

// fail closes the connection for a frame that breaks the protocol.
func (c *Conn) fail(code int, why string) error {
	c.sendClose(code, why)
	c.shut()
	return &ProtocolError{Code: code, Reason: why}
}

// --- closing -------------------------------------------------------------------

// sendClose writes a close frame, once, waiting at most a second for the
// write (a stuck connection must not hold up the caller). It reports
// whether this call sent it.
func (c *Conn) sendClose(code int, reason string) bool {
	sent := make(chan bool, 1)
	go func() {
		c.wmu.Lock()
		defer c.wmu.Unlock()
		if c.sentCode != 0 || c.werr != nil {
			sent <- false
			return
		}
		p := binary.BigEndian.AppendUint16(make([]byte, 0, 2+len(reason)), uint16(code))
		p = append(p, reason...)
		if len(p) > 125 {
			p = p[:125]
			for !utf8.Valid(p[2:]) {
				p = p[:len(p)-1]
			}
		}
		c.sentCode = code
		_ = c.writeFramesLocked(opClose, p)
		c.werr = net.ErrClosed
		sent <- true
	}()
	select {
	case ok := <-sent:
		return ok
	case <-time.After(time.Second):
		return false
	}
}

// shut closes the connection underneath, once.
func (c *Conn) shut() {
	c.closeOnce.Do(func() {
		close(c.closed)
		c.conn.Close()
	})
}

// Close ends the WebSocket with a normal closure and closes the
// connection at once.
func (c *Conn) Close() error {
	c.sendClose(StatusNormalClosure, "")
	c.shut()
	return nil
}

// SendClose sends a close frame with code and reason (cut to fit a
// control frame), once; later writes fail. Reading goes on until the
// peer's answering close (io.EOF from Read), after which Close drops the
// connection: closing a TCP connection with unread data resets it, and a
// reset can destroy what the peer has not read yet, the close frame too.
// It reports whether this call sent the frame.
func (c *Conn) SendClose(code int, reason string) bool { return c.sendClose(code, reason) }

// Closed is closed once the connection is.
func (c *Conn) Closed() <-chan struct{} { return c.closed }

// --- net.Conn ---------------------------------------------------------------------

// LocalAddr is the connection's local address.
func (c *Conn) LocalAddr() net.Addr { return c.conn.LocalAddr() }

// RemoteAddr is the connection's remote address.
func (c *Conn) RemoteAddr() net.Addr { return c.conn.RemoteAddr() }

// SetDeadline sets the connection's deadlines.
func (c *Conn) SetDeadline(t time.Time) error { return c.conn.SetDeadline(t) }

// SetReadDeadline sets the connection's read deadline.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.conn.SetReadDeadline(t) }

// SetWriteDeadline sets the connection's write deadline.
func (c *Conn) SetWriteDeadline(t time.Time) error { return c.conn.SetWriteDeadline(t) }

var errNotWebSocket = errors.New("not a WebSocket handshake")
