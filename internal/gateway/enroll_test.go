package gateway

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/kaginashi/kaginashi/internal/agentproto"
)

// enrollRequest sends an enrollment with a new key, presenting cert (PEM;
// nil: none) as the TLS client certificate, with the agent's tags, and
// returns the answer and the new key's fingerprint.
func enrollRequest(t *testing.T, g *Gateway, token string, cert []byte, tags []agentproto.Tag) (*httptest.ResponseRecorder, string) {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	spki, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(agentproto.EnrollRequest{Token: token, PublicKey: spki, Hostname: "h", Tags: tags})
	r := httptest.NewRequest(http.MethodPost, agentproto.EnrollPath, bytes.NewReader(body))
	r.TLS = &tls.ConnectionState{}
	if cert != nil {
		b, _ := pem.Decode(cert)
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		r.TLS.PeerCertificates = []*x509.Certificate{c}
	}
	w := httptest.NewRecorder()
	g.HandleEnroll(w, r)
	return w, KeyFingerprint(spki)
}

// enrollAs is enrollRequest without tags, which must succeed; it returns
// the decoded answer and the new key's fingerprint.
func enrollAs(t *testing.T, g *Gateway, token string, cert []byte) (agentproto.EnrollResponse, string) {
	t.Helper()
	w, key := enrollRequest(t, g, token, cert, nil)
	if w.Code != http.StatusOK {
		t.Fatalf("enrollment: %d %s", w.Code, w.Body)
	}
	var er agentproto.EnrollResponse
	if err := json.Unmarshal(w.Body.Bytes(), &er); err != nil {
		t.Fatal(err)
	}
	return er, key
}

// A certificate that a later enrollment replaced no longer keeps the
// instance: with a join token it enrolls a new instance. Before, the
// replaced (revoked) certificate plus any token took the instance back.
func TestEnrollWithReplacedCertificate(t *testing.T) {
	g, st := newSigningGateway(t)
	g.tokens = NewTokens(st, time.Now)
	tok, err := g.tokens.Create(t.Context(), "test", time.Hour, 10, nil)
	if err != nil {
		t.Fatal(err)
	}
	first, _ := enrollAs(t, g, tok.Token, nil)
	again, key := enrollAs(t, g, tok.Token, first.Certificate)
	if again.InstanceID != first.InstanceID {
		t.Fatalf("re-enrollment with the current certificate: instance %s, want %s", again.InstanceID, first.InstanceID)
	}
	if in, err := st.GetInstance(t.Context(), first.InstanceID); err != nil || in.AgentKey != key {
		t.Fatalf("the instance's key after re-enrollment: %q (%v), want %q", in.AgentKey, err, key)
	}
	stale, _ := enrollAs(t, g, tok.Token, first.Certificate)
	if stale.InstanceID == first.InstanceID {
		t.Fatalf("the replaced certificate took instance %s back", first.InstanceID)
	}
	if in, err := st.GetInstance(t.Context(), first.InstanceID); err != nil || in.AgentKey != key {
		t.Fatalf("the instance's key after the stale enrollment: %q (%v), want it unchanged (%q)", in.AgentKey, err, key)
	}
}

// Re-enrolling an instance ends the session of its agent's old identity
// here; the agent with the current identity stays connected.
func TestEnrollEndsReplacedSession(t *testing.T) {
	g, st := newSigningGateway(t)
	g.tokens = NewTokens(st, time.Now)
	tok, err := g.tokens.Create(t.Context(), "test", time.Hour, 10, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The test instance's agent holds a real certificate.
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	spki, _ := x509.MarshalPKIXPublicKey(pub)
	cert, err := g.keys.IssueClientCert(testID, pub, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	in, err := st.GetInstance(t.Context(), testID)
	if err != nil {
		t.Fatal(err)
	}
	in.AgentKey = KeyFingerprint(spki)
	if err := st.PutInstance(t.Context(), in); err != nil {
		t.Fatal(err)
	}
	connect(t, g, st, 0, testInventory)
	if ended, err := g.EndReplacedSession(t.Context(), testID); err != nil || ended { // its own key: kept
		t.Fatalf("EndReplacedSession of the current identity's session: ended %v, %v", ended, err)
	}
	time.Sleep(100 * time.Millisecond)
	if !g.Connected(testID) {
		t.Fatal("endSession with the session's own key ended it")
	}

	if er, _ := enrollAs(t, g, tok.Token, cert); er.InstanceID != testID {
		t.Fatalf("re-enrollment: instance %s, want %s", er.InstanceID, testID)
	}
	deadline := time.Now().Add(5 * time.Second)
	for g.Connected(testID) {
		if time.Now().After(deadline) {
			t.Fatal("the replaced identity's session is still connected after the re-enrollment")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
