package agentproto

import (
	"bytes"
	"encoding/binary"
	"net"
	"testing"
)

type recordConn struct {
	net.Conn
	writes [][]byte
}

func (r *recordConn) Write(p []byte) (int, error) {
	r.writes = append(r.writes, append([]byte(nil), p...))
	return len(p), nil
}

func header(typ byte, length uint32) []byte {
	h := make([]byte, muxHeaderSize)
	h[1] = typ
	binary.BigEndian.PutUint32(h[4:], 7)
	binary.BigEndian.PutUint32(h[8:], length)
	return h
}

// TestCoalesceFrames: a data frame's header and body go out in one write;
// window updates, pings and empty data frames go out as they come.
func TestCoalesceFrames(t *testing.T) {
	rc := &recordConn{}
	c := CoalesceFrames(rc)
	body := bytes.Repeat([]byte("x"), 1000)
	steps := [][]byte{
		header(muxTypeData, 1000), body, // one write
		header(1, 65536),       // a window update: alone
		header(2, 0),           // a ping: alone
		header(muxTypeData, 0), // a data frame with flags only (FIN): alone
		header(muxTypeData, 3), []byte("abc"),
	}
	for _, p := range steps {
		if n, err := c.Write(p); n != len(p) || err != nil {
			t.Fatalf("Write: %d, %v", n, err)
		}
	}
	want := [][]byte{
		append(header(muxTypeData, 1000), body...),
		header(1, 65536),
		header(2, 0),
		header(muxTypeData, 0),
		append(header(muxTypeData, 3), "abc"...),
	}
	if len(rc.writes) != len(want) {
		t.Fatalf("%d writes, want %d", len(rc.writes), len(want))
	}
	for i := range want {
		if !bytes.Equal(rc.writes[i], want[i]) {
			t.Errorf("write %d: %x, want %x", i, rc.writes[i], want[i])
		}
	}
}
