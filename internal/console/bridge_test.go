package console

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/crypto/ssh"

	"github.com/kaginashi/kaginashi/internal/recording"
)

// fakeHost is an in-process SSH server whose shell writes the given
// chunks (one write each, a pause between), then echoes input until "bye",
// then exits with status 7.
func fakeHost(t *testing.T, chunks []string) *ssh.Client {
	t.Helper()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	signer, _ := ssh.NewSignerFromSigner(priv)
	cfg := &ssh.ServerConfig{NoClientAuth: true}
	cfg.AddHostKey(signer)
	// A TCP pair: both sides write their version first, which an
	// unbuffered net.Pipe would deadlock.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		sc, err := ln.Accept()
		if err != nil {
			return
		}
		_, chans, reqs, err := ssh.NewServerConn(sc, cfg)
		if err != nil {
			return
		}
		go ssh.DiscardRequests(reqs)
		for nc := range chans {
			ch, creqs, err := nc.Accept()
			if err != nil {
				return
			}
			go func() {
				for r := range creqs {
					_ = r.Reply(r.Type == "pty-req" || r.Type == "shell" || r.Type == "window-change", nil)
					if r.Type == "shell" {
						go func() {
							for _, c := range chunks {
								if _, err := ch.Write([]byte(c)); err != nil {
									return
								}
								time.Sleep(20 * time.Millisecond)
							}
							buf := make([]byte, 1024)
							for {
								n, err := ch.Read(buf)
								if err != nil {
									return
								}
								_, _ = ch.Write(buf[:n])
								if strings.Contains(string(buf[:n]), "bye") {
									var st [4]byte
									binary.BigEndian.PutUint32(st[:], 7)
									_, _ = ch.SendRequest("exit-status", false, st[:])
									ch.Close()
									return
								}
							}
						}()
					}
				}
			}()
		}
	}()
	cc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	conn, chans, reqs, err := ssh.NewClientConn(cc, "fake", &ssh.ClientConfig{User: "u", HostKeyCallback: hostKeyCallback([]ssh.PublicKey{signer.PublicKey()})})
	if err != nil {
		t.Fatal(err)
	}
	client := ssh.NewClient(conn, chans, reqs)
	t.Cleanup(func() { client.Close() })
	return client
}

type failAfter struct {
	n, writes int
}

func (f *failAfter) Write(p []byte) (int, error) {
	f.writes++
	if f.writes > f.n {
		return 0, errors.New("disk full")
	}
	return len(p), nil
}

type bridgeResult struct {
	reason string
	exit   *int
	end    *endError
}

// runBridge serves one terminal WebSocket with bridge over client and rec,
// ending it as run does, and returns the browser's side.
func runBridge(t *testing.T, client *ssh.Client, rec *recording.Writer) (*websocket.Conn, <-chan bridgeResult) {
	t.Helper()
	c := &Console{sessions: NewSessions(SessionConfig{}, nil), cfg: Config{}}
	_, sess, _ := c.sessions.Create(Session{UserName: "alice"})
	res := make(chan bridgeResult, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		tm := &terminal{c: c, ws: ws, sess: sess, cols: 80, rows: 24}
		reason, exit, end := tm.bridge(r.Context(), client, rec)
		switch {
		case end != nil:
			tm.fail(r.Context(), end)
		case exit != nil:
			_ = tm.send(r.Context(), frame{Type: "exit", Status: exit})
			_ = ws.Close(websocket.StatusNormalClosure, "exit")
		}
		res <- bridgeResult{reason, exit, end}
	}))
	t.Cleanup(srv.Close)
	ws, _, err := websocket.Dial(context.Background(), "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.CloseNow() })
	return ws, res
}

// readAll reads the browser's side to its close.
func readAll(t *testing.T, ws *websocket.Conn) (out string, frames []frame, code websocket.StatusCode) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		typ, b, err := ws.Read(ctx)
		if err != nil {
			var ce websocket.CloseError
			if !errors.As(err, &ce) {
				t.Fatalf("read: %v (output %q)", err, out)
			}
			return out, frames, ce.Code
		}
		if typ == websocket.MessageBinary {
			out += string(b)
			if strings.Contains(out, "ready") && !strings.Contains(out, "bye") {
				_ = ws.Write(ctx, websocket.MessageBinary, []byte("bye"))
			}
			continue
		}
		var f frame
		_ = json.Unmarshal(b, &f)
		frames = append(frames, f)
	}
}

func TestBridgeExit(t *testing.T) {
	var sink strings.Builder
	rec, err := recording.NewWriter(&sink, recording.Header{Width: 80, Height: 24}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ws, res := runBridge(t, fakeHost(t, []string{"hello ", "鍵なし ready\r\n"}), rec)
	out, frames, code := readAll(t, ws)
	r := <-res
	if code != websocket.StatusNormalClosure || r.exit == nil || *r.exit != 7 || r.end != nil {
		t.Fatalf("close %v, result %+v", code, r)
	}
	if !strings.Contains(out, "hello 鍵なし ready") || !strings.Contains(out, "bye") {
		t.Errorf("output %q", out)
	}
	if last := frames[len(frames)-1]; last.Type != "exit" || last.Status == nil || *last.Status != 7 {
		t.Errorf("frames %+v", frames)
	}
	if !strings.Contains(sink.String(), "鍵なし ready") {
		t.Errorf("recording %q", sink.String())
	}
}

// A recording that cannot be written ends the session, and what it could
// not record never reaches the browser.
func TestBridgeRecordingFailureEndsSession(t *testing.T) {
	fw := &failAfter{n: 2} // the header and the first output
	rec, err := recording.NewWriter(fw, recording.Header{Width: 80, Height: 24}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ws, res := runBridge(t, fakeHost(t, []string{"first ", "second ", "third"}), rec)
	out, frames, code := readAll(t, ws)
	r := <-res
	if r.end == nil || r.end.code != "RecordingFailed" || code != closeFailure {
		t.Fatalf("close %v, result %+v", code, r)
	}
	if out != "first " {
		t.Errorf("the browser got %q, want only what was recorded (%q)", out, "first ")
	}
	found := false
	for _, f := range frames {
		found = found || (f.Type == "error" && f.Code == "RecordingFailed")
	}
	if !found {
		t.Errorf("no RecordingFailed frame: %+v", frames)
	}
	var _ io.Writer = fw
}
