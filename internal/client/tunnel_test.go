package client

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/kaginashi/kaginashi/internal/wstunnel"
)

// TestDialTunnelRetriesThrottling: a handshake refused with 429 is tried
// again; other refusals are not.
func TestDialTunnelRetriesThrottling(t *testing.T) {
	var calls, throttle atomic.Int32
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if throttle.Add(-1) >= 0 {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusTooManyRequests)
			_, _ = io.WriteString(w, `{"ErrorCode":"ThrottlingException","Message":"Rate exceeded"}`)
			return
		}
		if r.URL.Query().Get("remotePort") == "23" {
			w.WriteHeader(http.StatusForbidden)
			_, _ = io.WriteString(w, `{"ErrorCode":"AccessDeniedException","Message":"no"}`)
			return
		}
		c, err := wstunnel.Accept(w, r, nil)
		if err != nil {
			return
		}
		_, _ = c.Write([]byte("SSH-2.0-test\r\n"))
		_ = c.Close()
	}))
	defer srv.Close()
	cfg := aws.Config{Region: "us-east-1", HTTPClient: srv.Client(), Credentials: credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", "")}
	p := TunnelParams{Endpoint: srv.URL, EndpointID: "eice-0123456789abcdef0", InstanceID: "i-0123456789abcdef0", RemotePort: 22}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	throttle.Store(2)
	c, err := DialTunnel(ctx, cfg, p)
	if err != nil {
		t.Fatalf("after two throttled handshakes: %v", err)
	}
	b := make([]byte, 7)
	if _, err := io.ReadFull(c, b); err != nil || string(b) != "SSH-2.0" {
		t.Fatalf("read %q, %v", b, err)
	}
	c.Close()
	if n := calls.Load(); n != 3 {
		t.Errorf("%d handshakes, want 3", n)
	}

	calls.Store(0)
	throttle.Store(100)
	_, err = DialTunnel(ctx, cfg, p)
	var te *TunnelError
	if !errors.As(err, &te) || !te.throttled() || calls.Load() != 1+maxThrottleRetries {
		t.Errorf("always throttled: %v after %d handshakes, want ThrottlingException after %d", err, calls.Load(), 1+maxThrottleRetries)
	}

	calls.Store(0)
	throttle.Store(0)
	p.RemotePort = 23
	_, err = DialTunnel(ctx, cfg, p)
	if !errors.As(err, &te) || te.Code != "AccessDeniedException" || calls.Load() != 1 {
		t.Errorf("denied: %v after %d handshakes, want one", err, calls.Load())
	}
}
