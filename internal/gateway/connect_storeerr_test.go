package gateway

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/kaginashi/kaginashi/internal/agentproto"
	"github.com/kaginashi/kaginashi/internal/store"
)

// getFails is a store whose instance reads fail (a database that is down).
type getFails struct{ store.Store }

func (getFails) GetInstance(context.Context, string) (store.Instance, error) {
	return store.Instance{}, errors.New("connection refused")
}

// An agent connection whose instance the store cannot read right now gets
// 503, which the agent retries — not the 403 IdentityRevoked, on which
// agents stop for good (exit 78). A missing instance still gets the 403.
func TestConnectStoreErrorIsNotRevocation(t *testing.T) {
	g, st := newSigningGateway(t)
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, err := g.keys.IssueClientCert(testID, pub, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pem.Decode(certPEM)
	cert, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	connect := func() (int, string) {
		r := httptest.NewRequest(http.MethodGet, agentproto.ConnectPath, nil)
		r.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{cert}}
		w := httptest.NewRecorder()
		g.HandleConnect(w, r)
		var e agentproto.ErrorResponse
		_ = json.Unmarshal(w.Body.Bytes(), &e)
		return w.Code, e.Error
	}

	g.store = getFails{st}
	if code, msg := connect(); code != http.StatusServiceUnavailable || msg == agentproto.IdentityRevoked {
		t.Fatalf("a failing store: %d %q, want 503 (not the revocation)", code, msg)
	}
	g.store = st
	if err := st.DeleteInstance(t.Context(), testID); err != nil {
		t.Fatal(err)
	}
	if code, msg := connect(); code != http.StatusForbidden || msg != agentproto.IdentityRevoked {
		t.Fatalf("a deleted instance: %d %q, want 403 %q", code, msg, agentproto.IdentityRevoked)
	}
}
