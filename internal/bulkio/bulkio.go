// Package bulkio makes a TLS connection that carries bulk data cheaper: it
// goes under crypto/tls, between TLS and TCP, where TLS's records are
// only bytes.
//
// crypto/tls writes every record (at most 16 KiB of data) with its own
// system call, and reads the connection a record at a time: a relay that
// moved 256 KiB at once paid sixteen writes for it, and its peer woke up,
// read a record, found nothing more, and went back to wait, sixteen times.
// A Conn in bulk mode gathers the records of one write into one system
// call (see Batch), and reads everything that has arrived, up to
// BufferSize, in one system call. Until Bulk is called it passes
// everything straight through, so a listener can wrap every connection
// and only those that become tunnels change.
//
// Memory stays with the data, not with the connection: the read buffer is
// taken from a pool only once the socket is readable and goes back as
// soon as TLS has consumed it, the write batch is pooled too, so an idle
// tunnel holds no buffer here.
package bulkio

import (
	"crypto/tls"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
)

// BufferSize is the most one read takes from the socket.
const BufferSize = 256 << 10

var bufs = sync.Pool{New: func() any { b := make([]byte, BufferSize); return &b }}

// Conn is a TCP connection under TLS.
type Conn struct {
	net.Conn
	raw  syscall.RawConn // nil: no bulk reads
	bulk atomic.Bool

	// Read state; TLS reads from one goroutine at a time.
	rbuf *[]byte
	r, w int

	wmu     sync.Mutex
	holding bool
	wbuf    *[]byte
}

// Wrap wraps a connection (before TLS goes over it).
func Wrap(c net.Conn) *Conn {
	conn := &Conn{Conn: c}
	if sc, ok := c.(syscall.Conn); ok && haveRawRead {
		if raw, err := sc.SyscallConn(); err == nil {
			conn.raw = raw
		}
	}
	return conn
}

// Bulk switches to bulk mode.
func (c *Conn) Bulk() { c.bulk.Store(true) }

func (c *Conn) Read(p []byte) (int, error) {
	if c.r < c.w {
		return c.take(p), nil
	}
	if !c.bulk.Load() || c.raw == nil || len(p) >= BufferSize/2 {
		return c.Conn.Read(p)
	}
	// Wait for the socket to be readable holding no buffer, then take
	// what has arrived.
	var n int
	var rerr error
	err := c.raw.Read(func(fd uintptr) bool {
		b := bufs.Get().(*[]byte)
		for {
			n, rerr = sysRead(fd, *b)
			if rerr != syscall.EINTR {
				break
			}
		}
		if rerr == syscall.EAGAIN {
			bufs.Put(b)
			return false
		}
		if rerr != nil || n <= 0 {
			bufs.Put(b)
			return true
		}
		c.rbuf, c.r, c.w = b, 0, n
		return true
	})
	switch {
	case err != nil:
		return 0, &net.OpError{Op: "read", Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
	case rerr != nil:
		return 0, &net.OpError{Op: "read", Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: os.NewSyscallError("read", rerr)}
	case n <= 0:
		return 0, io.EOF
	}
	return c.take(p), nil
}

// take copies buffered bytes out, and gives the buffer back once empty.
func (c *Conn) take(p []byte) int {
	n := copy(p, (*c.rbuf)[c.r:c.w])
	c.r += n
	if c.r == c.w {
		bufs.Put(c.rbuf)
		c.rbuf, c.r, c.w = nil, 0, 0
	}
	return n
}

func (c *Conn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.holding {
		if c.wbuf == nil {
			c.wbuf = bufs.Get().(*[]byte)
			*c.wbuf = (*c.wbuf)[:0]
		}
		*c.wbuf = append(*c.wbuf, p...)
		return len(p), nil
	}
	return c.Conn.Write(p)
}

// hold gathers writes until flush.
func (c *Conn) hold() {
	c.wmu.Lock()
	c.holding = true
	c.wmu.Unlock()
}

// flush writes what hold gathered, in one write.
func (c *Conn) flush() error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.holding = false
	if c.wbuf == nil {
		return nil
	}
	b := c.wbuf
	c.wbuf = nil
	_, err := c.Conn.Write(*b)
	if cap(*b) <= 2*BufferSize {
		*b = (*b)[:BufferSize]
		bufs.Put(b)
	}
	return err
}

// batched is a TLS connection over a bulk Conn whose writes go out in one
// system call each.
type batched struct {
	*tls.Conn
	raw *Conn
	mu  sync.Mutex
}

// Write encrypts p into records and sends them all at once. (A record TLS
// writes meanwhile on its own — an alert, a key update — joins the batch
// in its order.)
func (b *batched) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.raw.hold()
	n, err := b.Conn.Write(p)
	if ferr := b.raw.flush(); err == nil && ferr != nil {
		err = ferr
		n = 0
	}
	return n, err
}

// Batch returns c ready for bulk transfer when it is a TLS connection over
// a Conn: reads take everything that has arrived, each Write goes out in
// one system call. Anything else comes back as it is.
func Batch(c net.Conn) net.Conn {
	tc, ok := c.(*tls.Conn)
	if !ok {
		return c
	}
	raw, ok := tc.NetConn().(*Conn)
	if !ok {
		return c
	}
	raw.Bulk()
	return &batched{Conn: tc, raw: raw}
}

// Listener wraps every accepted connection in a Conn.
type Listener struct{ net.Listener }

// Accept accepts a connection, wrapped.
func (l Listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return Wrap(c), nil
}

// SmallBuffer is what Adaptive reads with while a stream is quiet.
const SmallBuffer = 32 << 10

// Adaptive is a relay's read buffer: SmallBuffer while the stream is
// quiet — an idle tunnel waits holding no more than io.Copy's buffer —
// and a pooled BufferSize one while reads fill what they are given.
type Adaptive struct {
	small []byte
	big   *[]byte
}

// Buf is the buffer for the next read.
func (a *Adaptive) Buf() []byte {
	if a.big != nil {
		return *a.big
	}
	if a.small == nil {
		a.small = make([]byte, SmallBuffer)
	}
	return a.small
}

// Used reports how much the last read of Buf took, once its bytes are no
// longer needed: a full small buffer means more is waiting (next: the big
// one); a read the small one would have held means the stream has gone
// quiet (the big one goes back to the pool).
func (a *Adaptive) Used(n int) {
	switch {
	case a.big == nil && n == len(a.small):
		a.big = bufs.Get().(*[]byte)
	case a.big != nil && n < SmallBuffer:
		a.Release()
	}
}

// Release gives the big buffer back.
func (a *Adaptive) Release() {
	if a.big != nil {
		bufs.Put(a.big)
		a.big = nil
	}
}

// Get and Put lend a BufferSize buffer.
func Get() *[]byte  { return bufs.Get().(*[]byte) }
func Put(b *[]byte) { bufs.Put(b) }
