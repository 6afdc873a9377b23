package gateway

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/kaginashi/kaginashi/internal/agentproto"
	"github.com/kaginashi/kaginashi/internal/store"
	"github.com/kaginashi/kaginashi/internal/store/sqlite"
)

// TestRotateAgentCA: after a rotation, certificates of both CAs are
// accepted, one of the old CA is marked for renewal and renewed from the
// new CA for the same key; --finish refuses while an instance has not
// connected since, then drops the old CA.
func TestRotateAgentCA(t *testing.T) {
	ctx := t.Context()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "k.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	sealer := mustSealer(t, 7)
	now := time.Now()
	k0, err := LoadKeys(ctx, db, sealer, now)
	if err != nil {
		t.Fatal(err)
	}
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{testID, "i-0123456789abcdef1"} {
		if err := db.PutInstance(ctx, store.Instance{ID: id, State: store.StateRunning, LaunchTime: now, LastSeen: now}); err != nil {
			t.Fatal(err)
		}
	}
	oldCert := parseTestCert(t, must1(k0.IssueClientCert(testID, pub, now)))

	if _, err := RotateAgentCA(ctx, db, mustSealer(t, 8), now); err == nil {
		t.Fatal("a CA rotation with the wrong master key succeeded")
	}
	rot, err := RotateAgentCA(ctx, db, sealer, now)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := RotateAgentCA(ctx, db, sealer, now); !errors.Is(err, ErrRotationPending) {
		t.Fatalf("a second rotation before --finish: %v", err)
	}
	k1, err := LoadKeys(ctx, db, sealer, now)
	if err != nil {
		t.Fatal(err)
	}
	if k1.PrevCA == nil || !k1.PrevCA.Equal(k0.CA) || k1.CA.Equal(k0.CA) || rot.Old != CAID(k0.CA) || rot.New != CAID(k1.CA) {
		t.Fatalf("after the rotation: %+v", rot)
	}
	if !bytes.Equal(k0.SigningPublic(), k1.SigningPublic()) {
		t.Error("the signing key changed with the CA")
	}
	g := New(db, k1, nil, slog.New(slog.DiscardHandler), time.Now)
	defer g.Close()
	req := func(c *x509.Certificate) (string, any, bool) {
		r := httptest.NewRequest("GET", agentproto.ConnectPath, nil)
		r.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{c}}
		id, _, renew, ok := g.agentCert(r)
		return id, renew, ok
	}
	id, renew, ok := req(oldCert)
	if !ok || id != testID || renew == nil {
		t.Fatalf("a certificate of the old CA: id %q renew %v ok %v", id, renew, ok)
	}
	s := &session{instanceID: testID, renew: renew}
	var b agentproto.Beat
	g.renewCert(s, &b, now)
	newCert := parseTestCert(t, b.Certificate)
	if !bytes.Equal(newCert.RawSubjectPublicKeyInfo, oldCert.RawSubjectPublicKeyInfo) || newCert.Subject.CommonName != testID {
		t.Fatal("the renewed certificate is not for the same key and instance")
	}
	if _, renew, ok := req(newCert); !ok || renew != nil {
		t.Fatalf("a certificate of the new CA: renew %v ok %v", renew, ok)
	}
	g.recordAgentCA(ctx, testID, now)

	// The other instance has not connected: --finish refuses, then --force.
	res, err := FinishAgentCA(ctx, db, db, false)
	if !errors.Is(err, ErrAgentsPending) || len(res.Pending) != 1 || res.Pending[0] != "i-0123456789abcdef1" {
		t.Fatalf("--finish with an instance pending: %+v %v", res, err)
	}
	if k, _ := LoadKeys(ctx, db, sealer, now); k.PrevCA == nil {
		t.Fatal("a refused --finish dropped the old CA")
	}
	if res, err = FinishAgentCA(ctx, db, db, true); err != nil || !res.Finished {
		t.Fatalf("--finish --force: %+v %v", res, err)
	}
	k2, err := LoadKeys(ctx, db, sealer, now)
	if err != nil || k2.PrevCA != nil {
		t.Fatalf("after --finish: prev %v, %v", k2.PrevCA, err)
	}
	g2 := New(db, k2, nil, slog.New(slog.DiscardHandler), time.Now)
	defer g2.Close()
	r := httptest.NewRequest("GET", agentproto.ConnectPath, nil)
	r.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{oldCert}}
	if _, _, _, ok := g2.agentCert(r); ok {
		t.Error("a certificate of the old CA is accepted after --finish")
	}
	if _, err := FinishAgentCA(ctx, db, db, false); err == nil {
		t.Error("--finish without a rotation in progress succeeded")
	}
}

func must1[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func parseTestCert(t *testing.T, p []byte) *x509.Certificate {
	t.Helper()
	block, _ := pem.Decode(p)
	if block == nil {
		t.Fatal("no PEM certificate")
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
