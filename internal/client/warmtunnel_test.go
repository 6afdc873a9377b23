package client

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

func TestPrewarmTunnel(t *testing.T) {
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Proto)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()
	cfg := aws.Config{HTTPClient: srv.Client()}

	w := PrewarmTunnel(context.Background(), cfg, srv.URL)
	if w == nil {
		t.Fatal("PrewarmTunnel: nil for a plain https endpoint")
	}
	defer w.Close()
	deadline := time.Now().Add(5 * time.Second)
	for conns.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if conns.Load() != 1 {
		t.Fatalf("%d connections before any request; want the warm one", conns.Load())
	}
	if w.client("https://elsewhere.example") != nil {
		t.Error("a warm client for another endpoint")
	}
	hc := w.client(srv.URL + "/")
	if hc == nil {
		t.Fatal("no warm client for its own endpoint")
	}
	resp, err := hc.Get(srv.URL + "/openTunnel")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	// HTTP/1.1 on the warm connection (a WebSocket upgrade needs it,
	// though the server speaks HTTP/2 too).
	if string(b) != "HTTP/1.1" || conns.Load() != 1 {
		t.Errorf("the request went %s on %d connections; want HTTP/1.1 on the warm one", b, conns.Load())
	}
	// Taken once: the next connection is an ordinary one.
	hc.CloseIdleConnections()
	if resp, err := hc.Get(srv.URL + "/openTunnel"); err != nil {
		t.Fatal(err)
	} else {
		resp.Body.Close()
	}
	if conns.Load() != 2 {
		t.Errorf("%d connections; want a second, new one", conns.Load())
	}
}

// Where the warm connection would not be used: a proxy, another scheme.
func TestPrewarmTunnelNot(t *testing.T) {
	proxied := aws.Config{HTTPClient: &http.Client{Transport: &http.Transport{Proxy: func(*http.Request) (*url.URL, error) {
		return url.Parse("http://proxy.example:3128")
	}}}}
	if w := PrewarmTunnel(context.Background(), proxied, "https://kaginashi.example"); w != nil {
		w.Close()
		t.Error("prewarmed through a proxy")
	}
	if w := PrewarmTunnel(context.Background(), aws.Config{}, "http://kaginashi.example"); w != nil {
		w.Close()
		t.Error("prewarmed plain http")
	}
	var w *WarmTunnel
	w.Close() // nil is fine
	if w.client("https://x") != nil {
		t.Error("a nil WarmTunnel has a client")
	}
}
