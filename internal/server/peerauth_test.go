package server

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kaginashi/kaginashi/internal/peer"
	"github.com/kaginashi/kaginashi/internal/seal"
	"github.com/kaginashi/kaginashi/internal/store/postgres/pgtest"
	"github.com/kaginashi/kaginashi/internal/syncbuf"
)

// v1Request is a peer request as a replica before v2 signs it, made here
// from the documented form (peer.AuthHeader) rather than the package's
// own MAC, with the key every replica derives from DIR/master.key.
func v1Request(t *testing.T, dir, peerBase, path string, body []byte) *http.Request {
	t.Helper()
	mk, err := seal.Load(filepath.Join(dir, "master.key"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := seal.New(mk)
	if err != nil {
		t.Fatal(err)
	}
	key, err := s.DeriveKey(peer.KeyPurpose, 32)
	if err != nil {
		t.Fatal(err)
	}
	var n [16]byte
	_, _ = rand.Read(n[:])
	nonce := hex.EncodeToString(n[:])
	ts := strconv.FormatInt(time.Now().UnixMilli(), 10)
	const from = "old999"
	sum := sha256.Sum256(body)
	m := hmac.New(sha256.New, key)
	for _, f := range []string{"kaginashi-peer-v1", http.MethodPost, path, from, ts, nonce, hex.EncodeToString(sum[:])} {
		m.Write([]byte(f + "\n"))
	}
	req, err := http.NewRequest(http.MethodPost, peerBase+path, strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set(peer.AuthHeader, "v1 replica="+from+" ts="+ts+" nonce="+nonce+" sig="+hex.EncodeToString(m.Sum(nil)))
	return req
}

// TestPeerAuthV1Flag: by default (this release) a replica accepts a v1
// peer request from one not yet upgraded; with RefusePeerAuthV1
// (--peer-auth-v1=false) it refuses it, says why in its log, and counts it
// in kaginashi_peer_requests_refused_total.
func TestPeerAuthV1Flag(t *testing.T) {
	pg := pgtest.Start(t)
	dir := filepath.Join(t.TempDir(), "kd")
	body := []byte(`{"instanceId":"i-0123456789abcdef0","requestId":"req-1"}`)
	for _, refuse := range []bool{false, true} {
		peerPort := freePort(t)
		peerBase := "https://127.0.0.1:" + strconv.Itoa(peerPort)
		metricsAddr := make(chan string, 1)
		logs := &syncbuf.Buffer{}
		_, stop := runServer(t, Options{DataDir: dir, Listen: "127.0.0.1:0", PeerListen: "127.0.0.1:" + strconv.Itoa(peerPort),
			StoreURL: pg, NoConsole: true, RefusePeerAuthV1: refuse, MetricsListen: "127.0.0.1:0",
			MetricsReady: func(a string) { metricsAddr <- a }})(logs)
		client, _ := tlsClient(t, filepath.Join(dir, "tls", "ca.pem"))
		resp, err := client.Do(v1Request(t, dir, peerBase, "/_peer/revoke", body))
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		// Accepted: past authentication, the agent is not connected here.
		want := http.StatusServiceUnavailable
		if refuse {
			want = http.StatusUnauthorized
		}
		if resp.StatusCode != want {
			t.Fatalf("refuse=%v: a v1 request answered %d, want %d\n%s", refuse, resp.StatusCode, want, logs)
		}
		if got := strings.Contains(logs.String(), "--peer-auth-v1=false"); got != refuse {
			t.Errorf("refuse=%v: the log names --peer-auth-v1=false: %v\n%s", refuse, got, logs)
		}
		mresp, err := http.Get("http://" + <-metricsAddr + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		m, _ := io.ReadAll(mresp.Body)
		mresp.Body.Close()
		wantLine := "kaginashi_peer_requests_refused_total 0"
		if refuse {
			wantLine = "kaginashi_peer_requests_refused_total 1"
		}
		if !strings.Contains(string(m), "\n"+wantLine+"\n") {
			t.Errorf("refuse=%v: metrics do not have %q:\n%s", refuse, wantLine, m)
		}
		stop()
	}
}
