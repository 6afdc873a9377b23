package wstunnel

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	gorilla "github.com/gorilla/websocket"
)

// echoServer accepts WebSockets and echoes what they carry, through
// ReadBatch and Write as the server's splice does.
func echoServer(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := Accept(w, r, http.Header{"X-Test": {"yes"}})
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		defer c.Close()
		buf := make([]byte, BatchSize)
		for {
			n, err := c.ReadBatch(buf)
			if n > 0 {
				if _, werr := c.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				if ce := (*CloseError)(nil); errors.As(err, &ce) {
					return
				}
				return
			}
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func wsURL(srv *httptest.Server) string { return "wss" + strings.TrimPrefix(srv.URL, "https") }

func TestEchoLarge(t *testing.T) {
	srv := echoServer(t)
	c, resp, err := Dial(context.Background(), srv.Client(), wsURL(srv), nil)
	if err != nil {
		t.Fatalf("Dial: %v (%v)", err, resp)
	}
	defer c.Close()
	const size = 32 << 20
	src := rand.NewChaCha8([32]byte{1})
	want := sha256.New()
	errc := make(chan error, 1)
	go func() {
		// Writes of odd sizes, some larger than a frame and a batch.
		r := rand.New(rand.NewPCG(1, 2))
		buf := make([]byte, 1<<20)
		for sent := 0; sent < size; {
			n := min(size-sent, 1+r.IntN(len(buf)))
			src.Read(buf[:n])
			want.Write(buf[:n])
			if _, err := c.Write(buf[:n]); err != nil {
				errc <- err
				return
			}
			sent += n
		}
		errc <- nil
	}()
	got := sha256.New()
	if n, err := io.CopyN(got, c, size); err != nil || n != size {
		t.Fatalf("read %d of %d bytes: %v", n, size, err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Sum(nil), want.Sum(nil)) {
		t.Fatal("the echo differs from what was sent")
	}
}

func TestThirdPartyClients(t *testing.T) {
	srv := echoServer(t)
	msg := bytes.Repeat([]byte("kaginashi "), 10000)

	t.Run("gorilla", func(t *testing.T) {
		d := gorilla.Dialer{TLSClientConfig: srv.Client().Transport.(*http.Transport).TLSClientConfig}
		c, resp, err := d.Dial(wsURL(srv), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if resp.Header.Get("X-Test") != "yes" {
			t.Errorf("the 101 lacks the extra header: %v", resp.Header)
		}
		// Empty messages are ignored; a message longer than a frame comes
		// back (in pieces).
		for _, m := range [][]byte{{}, msg, {}} {
			if err := c.WriteMessage(gorilla.BinaryMessage, m); err != nil {
				t.Fatal(err)
			}
		}
		var got []byte
		for len(got) < len(msg) {
			typ, p, err := c.ReadMessage()
			if err != nil || typ != gorilla.BinaryMessage {
				t.Fatalf("ReadMessage: %v %v", typ, err)
			}
			got = append(got, p...)
		}
		if !bytes.Equal(got, msg) {
			t.Fatal("echo differs")
		}
		// A text message is an error: close 1003 with a reason.
		if err := c.WriteMessage(gorilla.TextMessage, []byte("hello")); err != nil {
			t.Fatal(err)
		}
		_, _, err = c.ReadMessage()
		var ce *gorilla.CloseError
		if !errors.As(err, &ce) || ce.Code != StatusUnsupportedData || !strings.Contains(ce.Text, "binary") {
			t.Fatalf("after a text message: %v, want close 1003 with a reason", err)
		}
	})

	t.Run("coder", func(t *testing.T) {
		c, _, err := websocket.Dial(context.Background(), wsURL(srv), &websocket.DialOptions{HTTPClient: srv.Client()})
		if err != nil {
			t.Fatal(err)
		}
		defer c.CloseNow()
		nc := websocket.NetConn(context.Background(), c, websocket.MessageBinary)
		go nc.Write(msg)
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(nc, got); err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("echo: %v", err)
		}
		if err := c.Close(websocket.StatusNormalClosure, ""); err != nil {
			t.Fatalf("close: %v", err)
		}
	})
}

// TestOurClientAgainstCoderServer: kaginashi's client against another
// server implementation, with pings and a close reason.
func TestOurClientAgainstCoderServer(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		ctx := context.Background()
		_, p, err := ws.Read(ctx)
		if err != nil {
			return
		}
		go ws.Ping(ctx) // answered by the client's reader
		_ = ws.Write(ctx, websocket.MessageBinary, append([]byte("re: "), p...))
		_ = ws.Write(ctx, websocket.MessageBinary, nil)
		time.Sleep(50 * time.Millisecond)
		ws.Close(websocket.StatusPolicyViolation, "Maximum tunnel duration reached")
	}))
	defer srv.Close()
	c, _, err := Dial(context.Background(), srv.Client(), wsURL(srv), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("hi")); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	_, err = io.Copy(&out, c)
	var ce *CloseError
	if !errors.As(err, &ce) || ce.Code != StatusPolicyViolation || ce.Reason != "Maximum tunnel duration reached" {
		t.Fatalf("end: %v, want close 1008 with the reason", err)
	}
	if out.String() != "re: hi" {
		t.Fatalf("got %q", out.String())
	}
}

// --- frames on a pipe ----------------------------------------------------------

func frame(fin bool, op byte, masked bool, payload []byte) []byte {
	b := []byte{op}
	if fin {
		b[0] |= 0x80
	}
	var m byte
	if masked {
		m = 0x80
	}
	switch n := len(payload); {
	case n <= 125:
		b = append(b, m|byte(n))
	case n <= 0xffff:
		b = append(b, m|126, byte(n>>8), byte(n))
	default:
		b = append(b, m|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	if !masked {
		return append(b, payload...)
	}
	key := [4]byte{0x11, 0x22, 0x33, 0x44}
	b = append(b, key[:]...)
	for i, c := range payload {
		b = append(b, c^key[i&3])
	}
	return b
}

// serverOn returns a server-side Conn reading in and writing to out.
func serverOn(in []byte) (*Conn, *bytes.Buffer) {
	out := &bytes.Buffer{}
	return newConn(&fakeConn{r: bytes.NewReader(in), w: out}, nil, false), out
}

type fakeConn struct {
	net.Conn
	r  io.Reader
	mu sync.Mutex
	w  *bytes.Buffer
}

func (f *fakeConn) Read(p []byte) (int, error) { return f.r.Read(p) }
func (f *fakeConn) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.w.Write(p)
}
func (f *fakeConn) Close() error { return nil }

func TestFrames(t *testing.T) {
	cat := func(fs ...[]byte) []byte { return bytes.Join(fs, nil) }
	closeFrame := func(code int, reason string) []byte {
		return frame(true, opClose, true, append(binary.BigEndian.AppendUint16(nil, uint16(code)), reason...))
	}
	for _, tc := range []struct {
		name     string
		in       []byte
		want     string
		wantErr  string // substring; "" means io.EOF
		wantCode int    // the close code this end sends, 0: 1000 echo
	}{
		{"empty frames are ignored", cat(frame(true, opBinary, true, nil), frame(true, opBinary, true, []byte("ab")), frame(true, opBinary, true, nil), closeFrame(1000, "")), "ab", "", 0},
		{"fragments", cat(frame(false, opBinary, true, []byte("a")), frame(true, opPing, true, []byte("p")), frame(true, opContinuation, true, []byte("bc")), closeFrame(1001, "")), "abc", "", 0},
		{"close without code", cat(frame(true, opBinary, true, []byte("x")), frame(true, opClose, true, nil)), "x", "", 0},
		{"close with a code", cat(frame(true, opBinary, true, []byte("x")), closeFrame(4000, "bye")), "x", "closed: bye (code 4000)", 0},
		{"text", cat(frame(true, opBinary, true, []byte("x")), frame(true, opText, true, []byte("hi"))), "x", "text messages are not part of the tunnel protocol", StatusUnsupportedData},
		{"unmasked", frame(true, opBinary, false, []byte("x")), "", "unmasked", StatusProtocolError},
		{"reserved bits", append([]byte{0xc2, 0x80, 0, 0, 0, 0}, 'x'), "", "reserved bits", StatusProtocolError},
		{"unknown opcode", frame(true, 0x3, true, nil), "", "unknown opcode", StatusProtocolError},
		{"long control frame", frame(true, opPing, true, make([]byte, 126)), "", "control frame", StatusProtocolError},
		{"fragmented control frame", frame(false, opPing, true, nil), "", "control frame", StatusProtocolError},
		{"stray continuation", frame(true, opContinuation, true, []byte("x")), "", "continuation", StatusProtocolError},
		{"message inside a message", cat(frame(false, opBinary, true, []byte("x")), frame(true, opBinary, true, []byte("y"))), "x", "inside a fragmented", StatusProtocolError},
		{"one-byte close", frame(true, opClose, true, []byte{3}), "", "one byte", StatusProtocolError},
		{"truncated", frame(true, opBinary, true, []byte("xyz"))[:8], "xy", "lost", -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, out := serverOn(tc.in)
			var got bytes.Buffer
			_, err := c.WriteTo(&got)
			if got.String() != tc.want {
				t.Errorf("read %q, want %q", got.String(), tc.want)
			}
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("err %v, want a clean end", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("err %v, want %q", err, tc.wantErr)
			}
			// What the server sent back: pongs and a close frame.
			sent := out.Bytes()
			if bytes.Contains(tc.in, []byte{0x80 | opPing}) && tc.wantCode == 0 && !bytes.HasPrefix(sent, []byte{0x80 | opPong, 1, 'p'}) {
				t.Errorf("no pong first: %x", sent)
			}
			if tc.wantCode < 0 {
				return
			}
			i := bytes.LastIndexByte(sent, 0x80|opClose)
			if i < 0 || len(sent) < i+4 {
				t.Fatalf("no close frame sent: %x", sent)
			}
			code := int(binary.BigEndian.Uint16(sent[i+2:]))
			want := max(tc.wantCode, StatusNormalClosure)
			if code != want {
				t.Errorf("sent close code %d, want %d", code, want)
			}
		})
	}
}

func TestClientMasksAndServerUnmasks(t *testing.T) {
	a, b := net.Pipe()
	client := newConn(a, nil, true)
	server := newConn(b, nil, false)
	msg := make([]byte, 200000)
	rand.NewChaCha8([32]byte{2}).Read(msg)
	go func() {
		client.Write(msg[:3]) // short: the byte loop
		client.Write(msg[3:]) // long: frames of 64 KiB, vectorized
		client.Close()
	}()
	got, err := io.ReadAll(server)
	if err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("%d bytes, %v", len(got), err)
	}
}

func TestReadBatchTakesWholeFrames(t *testing.T) {
	a, b := net.Pipe()
	client := newConn(a, nil, true)
	server := newConn(b, nil, false)
	msg := bytes.Repeat([]byte{7}, MaxFramePayload)
	go client.Write(msg)
	buf := make([]byte, BatchSize)
	n, err := server.ReadBatch(buf)
	// net.Pipe hands over what each Write wrote: ReadBatch waited for the
	// rest of the frame instead of returning the first piece.
	if err != nil || n != MaxFramePayload {
		t.Fatalf("ReadBatch: %d, %v; want the whole %d-byte frame", n, err, MaxFramePayload)
	}
	go client.Close()
	if _, err := server.ReadBatch(buf); err != io.EOF {
		t.Fatalf("after close: %v", err)
	}
}

func TestMaskCopy(t *testing.T) {
	key := [4]byte{1, 2, 3, 4}
	for _, n := range []int{0, 1, 5, 63, 64, 100, 2047, 2048, 5000} {
		for pos := 0; pos < 4; pos++ {
			src := make([]byte, n)
			rand.NewChaCha8([32]byte{byte(n)}).Read(src)
			dst := make([]byte, n)
			end := maskCopy(dst, src, key, pos)
			for i := range src {
				if dst[i] != src[i]^key[(pos+i)&3] {
					t.Fatalf("n=%d pos=%d: byte %d wrong", n, pos, i)
				}
			}
			if end != (pos+n)&3 {
				t.Fatalf("n=%d pos=%d: end %d", n, pos, end)
			}
		}
	}
}

func TestHandshakeRefusals(t *testing.T) {
	srv := echoServer(t)
	req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("a plain GET: %s", resp.Status)
	}
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("Connection", "keep-alive, Upgrade")
	r.Header.Set("Upgrade", "WebSocket")
	r.Header.Set("Sec-WebSocket-Version", "13")
	r.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
	if err := CheckUpgrade(r); err != nil {
		t.Fatalf("RFC 6455's sample handshake: %v", err)
	}
	if got := acceptKey("dGhlIHNhbXBsZSBub25jZQ=="); got != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
		t.Fatalf("accept key %s", got)
	}
	r.Header.Set("Sec-WebSocket-Key", "short")
	if err := CheckUpgrade(r); err == nil {
		t.Fatal("a bad key passed")
	}
}

func FuzzServerFrames(f *testing.F) {
	f.Add(frame(true, opBinary, true, []byte("hello")))
	f.Add(append(frame(false, opBinary, true, []byte("a")), frame(true, opContinuation, true, []byte("b"))...))
	f.Add(frame(true, opClose, true, []byte{3, 232, 'x'}))
	f.Add(frame(true, opPing, true, []byte("p")))
	f.Add(frame(true, opBinary, true, make([]byte, 70000)))
	f.Fuzz(func(t *testing.T, in []byte) {
		c, _ := serverOn(in)
		var got bytes.Buffer
		_, _ = c.WriteTo(&got)
		if got.Len() > len(in) {
			t.Fatalf("read %d bytes of payload from %d bytes of input", got.Len(), len(in))
		}
		c2, _ := newConn(&fakeConn{r: bytes.NewReader(in), w: &bytes.Buffer{}}, nil, true), 0
		_, _ = io.Copy(io.Discard, c2)
	})
}
