package agent

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kaginashi/kaginashi/internal/agentproto"
)

type testCert struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newTestCert(t *testing.T, name string, parent *testCert, ca bool) *testCert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: ca, BasicConstraintsValid: true,
	}
	if ca {
		tmpl.KeyUsage = x509.KeyUsageCertSign
	} else {
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	}
	signer, signerKey := tmpl, key
	if parent != nil {
		signer, signerKey = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, &key.PublicKey, signerKey)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return &testCert{c, key}
}

func (c *testCert) pem() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.cert.Raw})
}

// enrollServer answers enrollments, serving leaf + intermediate, as a
// server with a certificate from a public CA does.
func enrollServer(t *testing.T, leaf, inter *testCert) *httptest.Server {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != agentproto.EnrollPath {
			http.NotFound(w, r)
			return
		}
		_ = json.NewEncoder(w).Encode(agentproto.EnrollResponse{
			InstanceID: "i-0123456789abcdef0", Certificate: []byte("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n"),
			SigningKey: make([]byte, 32), ServerTime: time.Now().UnixMilli(),
		})
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{{
		Certificate: [][]byte{leaf.cert.Raw, inter.cert.Raw}, PrivateKey: leaf.key,
	}}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

// TestEnrollPinsTheVerifiedRoot: trusted through the system's roots, the
// agent pins the root the chain verified to, not the intermediate the
// server sent (public CAs rotate intermediates); and a re-enrollment
// without --ca-file/--ca-pin keeps trusting the pinned CA instead of the
// system's roots. Runs in a child process, because the system roots are
// read once per process (from SSL_CERT_FILE here).
func TestEnrollPinsTheVerifiedRoot(t *testing.T) {
	if dir := os.Getenv("KAGINASHI_TEST_ENROLL_DIR"); dir != "" {
		enrollChild(t, dir)
		return
	}
	dir := t.TempDir()
	root := newTestCert(t, "test root", nil, true)
	inter := newTestCert(t, "test intermediate", root, true)
	leaf := newTestCert(t, "server", inter, false)
	srv := enrollServer(t, leaf, inter)
	other := newTestCert(t, "another root", nil, true)
	for name, b := range map[string][]byte{"roots.pem": root.pem(), "root.pem": root.pem(), "inter.pem": inter.pem(), "other.pem": other.pem(), "url": []byte(srv.URL)} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestEnrollPinsTheVerifiedRoot$", "-test.v")
	cmd.Env = append(os.Environ(), "KAGINASHI_TEST_ENROLL_DIR="+dir, "SSL_CERT_FILE="+filepath.Join(dir, "roots.pem"), "SSL_CERT_DIR="+dir+"/none")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS") {
		t.Fatalf("child: %v\n%s", err, out)
	}
}

func enrollChild(t *testing.T, dir string) {
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	server := string(read("url"))
	p := Paths{Dir: filepath.Join(dir, "agent")}
	ctx := context.Background()
	if _, err := Enroll(ctx, p, EnrollOptions{Server: server, Token: "t"}); err != nil {
		t.Fatalf("first enrollment: %v", err)
	}
	got, err := os.ReadFile(p.serverCA())
	if err != nil {
		t.Fatal(err)
	}
	switch string(got) {
	case string(read("root.pem")):
	case string(read("inter.pem")):
		t.Fatal("the agent pinned the intermediate the server sent, not the verified root")
	default:
		t.Fatalf("the agent pinned something else:\n%s", got)
	}
	// Re-enrolling keeps the pinned CA: pin another one, and the same
	// server (trusted by the system's roots) is refused.
	if err := os.WriteFile(p.serverCA(), read("other.pem"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Enroll(ctx, p, EnrollOptions{Server: server, Token: "t"}); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("re-enrollment trusted the system's roots over the pinned CA: %v", err)
	}
	// An explicit --ca-file still wins.
	if _, err := Enroll(ctx, p, EnrollOptions{Server: server, Token: "t", Trust: Trust{CAFile: filepath.Join(dir, "root.pem")}}); err != nil {
		t.Fatalf("re-enrollment with --ca-file: %v", err)
	}
}
