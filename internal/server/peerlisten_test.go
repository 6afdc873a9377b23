package server

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kaginashi/kaginashi/internal/store/postgres/pgtest"
	"github.com/kaginashi/kaginashi/internal/syncbuf"
)

// TestPeerListenRefused: each --peer-listen that cannot work is refused
// before the data directory is created. The store URL points nowhere: the
// refusals come before the store is opened.
func TestPeerListenRefused(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	free := strconv.Itoa(freePort(t))
	const pg = "postgres://kaginashi@127.0.0.1:1/none"
	for _, c := range []struct {
		name string
		set  func(*Options)
		want string
	}{
		{"no port", func(o *Options) { o.PeerListen = "10.0.0.1" }, "--peer-listen \"10.0.0.1\": want HOST:PORT"},
		{"port too big", func(o *Options) { o.PeerListen = ":70000" }, "--peer-listen \":70000\": the port must be"},
		{"SQLite store", func(o *Options) { o.StoreURL = "" }, "share a PostgreSQL store"},
		{"same as --listen", func(o *Options) { o.Listen, o.PeerListen = "127.0.0.1:"+free, "127.0.0.1:"+free }, "the same address as --listen"},
		{"wildcard --listen", func(o *Options) { o.Listen, o.PeerListen = ":"+free, "127.0.0.1:"+free }, "the same address as --listen"},
		{"wildcard --peer-listen", func(o *Options) { o.Listen, o.PeerListen = "127.0.0.1:"+free, "0.0.0.0:"+free }, "the same address as --listen"},
		{"IPv6 wildcard", func(o *Options) { o.Listen, o.PeerListen = "127.0.0.1:"+free, "[::]:"+free }, "the same address as --listen"},
		{"same as --metrics-listen", func(o *Options) { o.MetricsListen, o.PeerListen = "127.0.0.1:"+free, "localhost:"+free }, "--metrics-listen"},
		{"port in use", func(o *Options) { o.PeerListen = busy.Addr().String() }, "--peer-listen " + busy.Addr().String() + ": listen tcp"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "kd")
			o := Options{DataDir: dir, Listen: "127.0.0.1:0", PeerListen: "127.0.0.1:0", StoreURL: pg, Stdout: io.Discard,
				Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
			c.set(&o)
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			defer cancel()
			err := Run(ctx, o)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Run = %v, want an error with %q", err, c.want)
			}
			if _, serr := os.Stat(dir); !os.IsNotExist(serr) {
				t.Errorf("refused start (%v) left the data dir behind", err)
			}
		})
	}
}

func TestSameListenAddr(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want bool
	}{
		{":8443", ":8443", true},
		{":8443", ":8444", false},
		{":0", ":0", false}, // two free ports
		{"10.0.0.5:8443", "10.0.0.5:8443", true},
		{"10.0.0.5:8443", "10.0.0.6:8443", false},
		{"10.0.0.5:8443", ":8443", true},
		{"0.0.0.0:8443", "10.0.0.6:8443", true},
		{"[::]:8443", "[fd00::1]:8443", true},
		{"[fd00::1]:8443", "[fd00:0::1]:8443", true},
		{"[fd00::1]:8443", "[fd00::2]:8443", false},
		{"Peer.example:8443", "peer.example:8443", true},
		{"localhost:8443", "127.0.0.1:8443", true},
		{"localhost:8443", "10.9.9.9:8443", false},
		{"bad", ":8443", false},
	} {
		if got := sameListenAddr(c.a, c.b); got != c.want {
			t.Errorf("sameListenAddr(%q, %q) = %v, want %v", c.a, c.b, got, c.want)
		}
		if got := sameListenAddr(c.b, c.a); got != c.want {
			t.Errorf("sameListenAddr(%q, %q) = %v, want %v", c.b, c.a, got, c.want)
		}
	}
}

func TestPeerURLPortDiffers(t *testing.T) {
	for _, c := range []struct {
		url      string
		port     int
		wantPort string
		differs  bool
	}{
		{"https://10.0.0.5:9443", 9443, "9443", false},
		{"https://10.0.0.5:9443", 9444, "9443", true},
		{"https://peer.example", 443, "443", false},
		{"https://peer.example", 9443, "443", true},
		{"http://peer.example", 80, "80", false},
		{"https://[fd00::1]:9443/", 9443, "9443", false},
	} {
		p, d := peerURLPortDiffers(c.url, c.port)
		if p != c.wantPort || d != c.differs {
			t.Errorf("peerURLPortDiffers(%q, %d) = %q, %v; want %q, %v", c.url, c.port, p, d, c.wantPort, c.differs)
		}
	}
}

// TestPeerListenServes: a real server on PostgreSQL with --peer-listen
// serves the peer API and /healthz there, under the API listener's
// certificate, and 404 for everything else; the API listener answers
// /_peer/ with 404; the default peer URL is the peer listener's; a peer
// URL with another port is served, with a warning.
func TestPeerListenServes(t *testing.T) {
	pg := pgtest.Start(t)
	peerPort := freePort(t)
	logs := &syncbuf.Buffer{}
	dir := filepath.Join(t.TempDir(), "kd")
	base, stop := runServer(t, Options{DataDir: dir, Listen: "127.0.0.1:0", PeerListen: "127.0.0.1:" + strconv.Itoa(peerPort),
		StoreURL: pg, NoConsole: true})(logs)
	peerBase := "https://127.0.0.1:" + strconv.Itoa(peerPort)

	if got := logValue(t, logs, "routing between replicas", "peerURL"); got != peerBase {
		t.Errorf("default peer URL %q, want %q (the peer listener's address)", got, peerBase)
	}
	if strings.Contains(logs.String(), "another port than --peer-listen") {
		t.Errorf("a port warning without --peer-url:\n%s", logs)
	}
	client, pool := tlsClient(t, filepath.Join(dir, "tls", "ca.pem"))
	status := func(method, u string) int {
		t.Helper()
		req, err := http.NewRequest(method, u, strings.NewReader("{}"))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, u, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, c := range []struct {
		method, url string
		want        int
	}{
		{"GET", peerBase + "/healthz", http.StatusOK},
		{"GET", base + "/healthz", http.StatusOK},
		// Unsigned: the peer router refuses it — it is there to refuse.
		{"POST", peerBase + "/_peer/deliver", http.StatusUnauthorized},
		{"GET", peerBase + "/_peer/tunnel", http.StatusUnauthorized},
		{"POST", base + "/_peer/deliver", http.StatusNotFound},
		{"GET", base + "/_peer/tunnel", http.StatusNotFound},
		{"POST", base + "/_peer/revoke", http.StatusNotFound},
		// Nothing of the API's listener on the peer listener.
		{"POST", peerBase + "/", http.StatusNotFound},
		{"GET", peerBase + "/openTunnel", http.StatusNotFound},
		{"POST", peerBase + "/agent/v1/enroll", http.StatusNotFound},
		{"GET", peerBase + "/metrics", http.StatusNotFound},
	} {
		if got := status(c.method, c.url); got != c.want {
			t.Errorf("%s %s: %d, want %d", c.method, c.url, got, c.want)
		}
	}
	// One certificate source: both listeners present the same leaf.
	leaf := func(addr string) []byte {
		t.Helper()
		conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool, ServerName: "localhost", MinVersion: tls.VersionTLS12})
		if err != nil {
			t.Fatalf("TLS to %s: %v", addr, err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].Raw
	}
	if !bytes.Equal(leaf(strings.TrimPrefix(base, "https://")), leaf(strings.TrimPrefix(peerBase, "https://"))) {
		t.Error("the peer listener serves another certificate than the API listener")
	}
	stop()

	// Another port in --peer-url (NAT): served, with a warning.
	logs = &syncbuf.Buffer{}
	_, stop = runServer(t, Options{DataDir: dir, Listen: "127.0.0.1:0", PeerListen: "127.0.0.1:0", PeerURL: "https://10.1.2.3:19443",
		StoreURL: pg, NoConsole: true})(logs)
	if got := logValue(t, logs, "--peer-url names another port", "peerURLPort"); got != "19443" {
		t.Errorf("port warning: peerURLPort %q, want 19443\n%s", got, logs)
	}
	if got := logValue(t, logs, "routing between replicas", "peerURL"); got != "https://10.1.2.3:19443" {
		t.Errorf("peer URL %q, want --peer-url's", got)
	}
	stop()
}

// runServer returns a function that starts o (logging JSON to logs) and
// waits until it serves; it returns the API's base URL and a stop function
// that waits for Run to end (also called when the test ends).
func runServer(t *testing.T, o Options) func(logs *syncbuf.Buffer) (string, func()) {
	return func(logs *syncbuf.Buffer) (string, func()) {
		t.Helper()
		o.Stdout = io.Discard
		o.Log = slog.New(slog.NewJSONHandler(logs, nil))
		ready := make(chan string, 1)
		o.Ready = func(u string) { ready <- u }
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- Run(ctx, o) }()
		var once sync.Once
		stop := func() {
			once.Do(func() {
				cancel()
				if err := <-done; err != nil {
					t.Errorf("Run: %v", err)
				}
			})
		}
		t.Cleanup(stop)
		select {
		case u := <-ready:
			return strings.Replace(u, "127.0.0.1", "localhost", 1), stop
		case err := <-done:
			t.Fatalf("Run: %v\n%s", err, logs)
		case <-time.After(60 * time.Second):
			t.Fatalf("server did not start\n%s", logs)
		}
		return "", nil
	}
}

// logValue is attribute key of the first JSON log line whose message
// starts with msg.
func logValue(t *testing.T, logs *syncbuf.Buffer, msg, key string) string {
	t.Helper()
	for _, line := range strings.Split(logs.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) != nil {
			continue
		}
		if s, _ := m["msg"].(string); strings.HasPrefix(s, msg) {
			v, _ := m[key].(string)
			return v
		}
	}
	t.Fatalf("no log line %q:\n%s", msg, logs)
	return ""
}

func tlsClient(t *testing.T, caFile string) (*http.Client, *x509.CertPool) {
	t.Helper()
	b, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		t.Fatalf("%s: no certificate", caFile)
	}
	// ServerName localhost: the generated certificate's name, whichever
	// address is dialled (as the replicas verify each other).
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "localhost", MinVersion: tls.VersionTLS12}}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}, pool
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
