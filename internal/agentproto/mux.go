package agentproto

import (
	"encoding/binary"
	"net"
	"sync"
)

// StreamWindow is the yamux receive window both ends give each stream
// (yamux's MaxStreamWindowSize; its default is 256 KiB). A tunnel moves at
// most a window per round trip of the window updates, and on a busy host
// that round trip includes waiting for a CPU: 256 KiB held bulk copies
// well below what the hops can carry. The window is also the most a
// stream buffers when its reader stalls (the sender then waits: that is
// the backpressure), so it bounds the memory of a stalled tunnel; the
// receiver's buffer grows only as data actually waits in it.
const StreamWindow = 4 << 20

// yamux frame header: version, type, flags, stream ID, length.
const (
	muxHeaderSize = 12
	muxTypeData   = 0
)

// CoalesceFrames wraps the connection a yamux session writes to so that
// each data frame goes out in one write. yamux writes a frame's 12-byte
// header and its body separately; on TLS each write is a record of its
// own and a system call, and the reader wakes for the header alone. Here
// a data frame's header waits for the body that yamux writes next. Writes
// must come from one goroutine at a time, as yamux's send loop makes them.
func CoalesceFrames(c net.Conn) net.Conn { return &coalescer{Conn: c} }

type coalescer struct {
	net.Conn
	mu   sync.Mutex
	hdr  [muxHeaderSize]byte
	held bool
	buf  []byte
}

func (c *coalescer) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.held {
		c.held = false
		c.buf = append(append(c.buf[:0], c.hdr[:]...), p...)
		_, err := c.Conn.Write(c.buf)
		if cap(c.buf) > 2*StreamWindow {
			c.buf = nil
		}
		if err != nil {
			return 0, err
		}
		return len(p), nil
	}
	if len(p) == muxHeaderSize && p[1] == muxTypeData && binary.BigEndian.Uint32(p[8:12]) > 0 {
		copy(c.hdr[:], p)
		c.held = true
		return len(p), nil
	}
	return c.Conn.Write(p)
}

// NetConn is the wrapped connection.
func (c *coalescer) NetConn() net.Conn { return c.Conn }
