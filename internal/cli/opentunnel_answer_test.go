package cli

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/kaginashi/kaginashi/internal/client"
	"github.com/kaginashi/kaginashi/internal/syncbuf"
	"github.com/kaginashi/kaginashi/internal/wstunnel"
)

// answerServer is a tunnel endpoint whose remote reads one line, waits
// delay, answers, and then either falls silent or, with stream, keeps
// sending until the tunnel closes.
func answerServer(t *testing.T, delay time.Duration, stream bool) (aws.Config, client.TunnelParams) {
	t.Helper()
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := wstunnel.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		line, err := bufio.NewReader(ws).ReadString('\n')
		if err != nil {
			return
		}
		// Reading answers the client's close, as the server does.
		closed := make(chan struct{})
		go func() {
			_, _ = io.Copy(io.Discard, ws)
			close(closed)
		}()
		time.Sleep(delay)
		if _, err := ws.Write([]byte("answer to " + line)); err != nil {
			return
		}
		for stream {
			select {
			case <-closed:
				return
			case <-time.After(20 * time.Millisecond):
			}
			if _, err := ws.Write([]byte("more\n")); err != nil {
				return
			}
		}
		<-closed
	}))
	t.Cleanup(srv.Close)
	cfg := aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("AKIAEXAMPLEEXAMPLE01", "secretsecretsecretsecretsecretsecret0000", ""),
		HTTPClient:  srv.Client(),
	}
	return cfg, client.TunnelParams{Endpoint: srv.URL, EndpointID: "eice-0123456789abcdef0", InstanceID: "i-0123456789abcdef0", RemotePort: 80}
}

// A request piped into open-tunnel gets its answer, although standard
// input has ended before the answer comes (as with nc): the tunnel has no
// half-close, so the client waits for the answer — and still exits well
// within a second once the remote is quiet. Before, the tunnel closed at
// the input's end and the answer was lost.
func TestStdioTunnelPassesTheAnswerAfterInputEnds(t *testing.T) {
	cfg, p := answerServer(t, 100*time.Millisecond, false)
	var out syncbuf.Buffer
	done := make(chan error, 1)
	go func() {
		done <- stdioTunnel(context.Background(), IO{In: strings.NewReader("GET /\n"), Out: &out, Err: &bytes.Buffer{}}, cfg, p, nil)
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("stdioTunnel: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("open-tunnel still runs 5 s after its input ended")
	}
	if got := out.String(); got != "answer to GET /\n" {
		t.Fatalf("standard output %q, want the remote's answer", got)
	}
}

// A remote that keeps sending does not hold the command: it exits
// answerMax after its input ended.
func TestStdioTunnelEndsWhileTheRemoteStreams(t *testing.T) {
	cfg, p := answerServer(t, 0, true)
	var out syncbuf.Buffer
	done := make(chan error, 1)
	in := &slowEOF{r: strings.NewReader("GET /\n")}
	go func() {
		done <- stdioTunnel(context.Background(), IO{In: in, Out: &out, Err: &bytes.Buffer{}}, cfg, p, nil)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("open-tunnel still runs 5 s after its input ended, with the remote streaming")
	}
	if d := time.Since(in.eofAt()); d < answerMax || d > answerMax+time.Second {
		t.Errorf("exited %v after the input ended, want about answerMax (%v)", d, answerMax)
	}
	if !strings.Contains(out.String(), "more\n") {
		t.Errorf("standard output %q, want the stream", out.String())
	}
}

// slowEOF is a reader that notes when it reached its end.
type slowEOF struct {
	r  *strings.Reader
	at time.Time
}

func (s *slowEOF) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && s.at.IsZero() {
		s.at = time.Now()
	}
	return n, err
}

// eofAt is when the end was read (the copy goroutine has returned by the
// time stdioTunnel does, so there is no race).
func (s *slowEOF) eofAt() time.Time { return s.at }
