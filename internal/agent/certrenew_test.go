package agent

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"testing"
	"time"

	"github.com/kaginashi/kaginashi/internal/agentproto"
)

// TestRenewCert: the certificate sent with the answer to a hello is stored
// (0600) only if it certifies this agent's key and instance for client
// authentication.
func TestRenewCert(t *testing.T) {
	now := time.Now()
	a := rolloverAgent(t, pubKey(genKey(t)), now)
	own := genKey(t)
	der, err := x509.MarshalPKCS8PrivateKey(own)
	if err != nil {
		t.Fatal(err)
	}
	if err := writeAtomic(a.paths.key(), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := writeAtomic(a.paths.cert(), []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ca"}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	issue := func(cn string, pub ed25519.PublicKey, usage x509.ExtKeyUsage) []byte {
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: cn}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, pub, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	}
	id := a.cfg.InstanceID
	for name, bad := range map[string][]byte{
		"another key":      issue(id, pubKey(genKey(t)), x509.ExtKeyUsageClientAuth),
		"another instance": issue("i-0123456789abcdef9", pubKey(own), x509.ExtKeyUsageClientAuth),
		"server auth":      issue(id, pubKey(own), x509.ExtKeyUsageServerAuth),
		"not PEM":          []byte("garbage"),
	} {
		if a.renewCert(agentproto.Beat{Certificate: bad}) {
			t.Fatalf("%s: reported stored", name)
		}
		if b, _ := os.ReadFile(a.paths.cert()); string(b) != "old" {
			t.Fatalf("%s: identity.crt replaced", name)
		}
	}
	good := issue(id, pubKey(own), x509.ExtKeyUsageClientAuth)
	if !a.renewCert(agentproto.Beat{Certificate: good}) {
		t.Fatal("a good certificate: not reported stored")
	}
	b, err := os.ReadFile(a.paths.cert())
	if err != nil || !bytes.Equal(b, good) {
		t.Fatalf("identity.crt after a good certificate: %v", err)
	}
	if fi, _ := os.Stat(a.paths.cert()); fi.Mode().Perm() != 0o600 {
		t.Errorf("identity.crt mode %o", fi.Mode().Perm())
	}
}
