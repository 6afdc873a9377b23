package agent

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kaginashi/kaginashi/internal/agentproto"
)

// The gateway's answer to a connection whose identity is no longer valid
// (internal/gateway HandleConnect).
const gatewayRefusal = `{"error":"this agent identity is no longer valid; enroll again"}`

// refusingAgent is an enrolled agent whose server answers every connection
// with answer(attempt) (status, body); it counts the attempts.
func refusingAgent(t *testing.T, answer func(n int64) (int, string)) (*Agent, Paths, *atomic.Int64) {
	t.Helper()
	root := newTestCert(t, "test root", nil, true)
	leaf := newTestCert(t, "server", root, false)
	var attempts atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != agentproto.ConnectPath {
			http.NotFound(w, r)
			return
		}
		st, body := answer(attempts.Add(1))
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(st)
		_, _ = w.Write([]byte(body))
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{leaf.cert.Raw, root.cert.Raw}, PrivateKey: leaf.key}}}
	srv.StartTLS()
	t.Cleanup(srv.Close)

	p := Paths{Dir: filepath.Join(t.TempDir(), "agent")}
	if err := p.ensureDirs(); err != nil {
		t.Fatal(err)
	}
	client := newTestCert(t, "i-0123456789abcdef0", nil, false)
	keyDER, err := x509.MarshalECPrivateKey(client.key)
	if err != nil {
		t.Fatal(err)
	}
	for path, b := range map[string][]byte{
		p.cert(): client.pem(), p.key(): pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), p.serverCA(): root.pem(),
	} {
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := writeJSON(p.config(), Config{Server: srv.URL, InstanceID: "i-0123456789abcdef0"}, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := writeJSON(p.public(), Public{InstanceID: "i-0123456789abcdef0", SigningKey: make([]byte, 32)}, 0o644); err != nil {
		t.Fatal(err)
	}
	a, err := New(p, Options{Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	a.MaxBackoff, a.RevokedAfter = 20*time.Millisecond, 300*time.Millisecond
	return a, p, &attempts
}

// TestRunStopsWhenIdentityRevoked: refused with the server's word for
// RevokedAfter, Run ends with ErrIdentityRevoked (not at the first
// refusal) and the status file says so, for doctor.
func TestRunStopsWhenIdentityRevoked(t *testing.T) {
	a, p, attempts := refusingAgent(t, func(int64) (int, string) { return http.StatusForbidden, gatewayRefusal })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	err := a.Run(ctx)
	took := time.Since(start)
	if !errors.Is(err, ErrIdentityRevoked) || !strings.Contains(err.Error(), "enroll again") {
		t.Fatalf("Run: %v, want ErrIdentityRevoked saying to enroll again", err)
	}
	if ctx.Err() != nil {
		t.Fatal("Run kept retrying until the test's deadline")
	}
	if took < a.RevokedAfter || attempts.Load() < 3 {
		t.Errorf("Run gave up after %v and %d attempts: want it to keep trying for RevokedAfter (%v)", took, attempts.Load(), a.RevokedAfter)
	}
	st, err := p.ReadStatus()
	if err != nil {
		t.Fatal(err)
	}
	if !st.Revoked || st.RevokedAt.IsZero() || st.Connected || !strings.Contains(st.LastError, "no longer valid") || st.InstanceID != "i-0123456789abcdef0" {
		t.Errorf("status.json: %+v", st)
	}
}

// TestRunRetriesOtherRefusals: a 403 that is not the server's identity
// refusal (a proxy's), or identity refusals broken by other failures (the
// server's store failing and recovering), never stop the agent.
func TestRunRetriesOtherRefusals(t *testing.T) {
	for name, answer := range map[string]func(int64) (int, string){
		"a proxy's 403":      func(int64) (int, string) { return http.StatusForbidden, "<html>Forbidden by policy</html>" },
		"403 JSON of other":  func(int64) (int, string) { return http.StatusForbidden, `{"error":"request blocked"}` },
		"refusals, then 503": func(n int64) (int, string) { return map[bool]int{true: 403, false: 503}[n%4 != 0], gatewayRefusal },
	} {
		t.Run(name, func(t *testing.T) {
			a, p, attempts := refusingAgent(t, answer)
			// RevokedAfter passes several times over.
			ctx, cancel := context.WithTimeout(context.Background(), 4*a.RevokedAfter)
			defer cancel()
			if err := a.Run(ctx); err != nil {
				t.Fatalf("Run: %v, want nil when its context ends", err)
			}
			if attempts.Load() < 10 {
				t.Errorf("only %d attempts", attempts.Load())
			}
			if st, err := p.ReadStatus(); err != nil || st.Revoked {
				t.Errorf("status.json: %+v %v", st, err)
			}
		})
	}
}

// TestEnrollClearsStatus: enrolling again removes the previous identity's
// status file, so doctor does not report the old revocation for the new
// identity before its agent runs.
func TestEnrollClearsStatus(t *testing.T) {
	root := newTestCert(t, "test root", nil, true)
	inter := newTestCert(t, "test intermediate", root, true)
	srv := enrollServer(t, newTestCert(t, "server", inter, false), inter)
	dir := t.TempDir()
	caFile := filepath.Join(dir, "root.pem")
	if err := os.WriteFile(caFile, root.pem(), 0o600); err != nil {
		t.Fatal(err)
	}
	p := Paths{Dir: filepath.Join(dir, "agent")}
	if err := p.ensureDirs(); err != nil {
		t.Fatal(err)
	}
	old, _ := json.Marshal(Status{InstanceID: "i-0fedcba9876543210", Revoked: true, RevokedAt: time.Now()})
	if err := os.WriteFile(p.status(), old, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Enroll(context.Background(), p, EnrollOptions{Server: srv.URL, Token: "t", Trust: Trust{CAFile: caFile}}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p.status()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the previous identity's status file is still there: %v", err)
	}
}
