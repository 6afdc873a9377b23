// Package gateway is the server's side of its host agents: the agent CA
// and the key-record signing key (shared by every replica through the
// store, sealed with the master key), join tokens, enrollment, and the
// agents' outbound connections, through which key records are delivered
// (and, later, tunnels opened).
package gateway

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/kaginashi/kaginashi/internal/agentproto"
	"github.com/kaginashi/kaginashi/internal/seal"
	"github.com/kaginashi/kaginashi/internal/store"
)

// Store meta keys of the gateway's secrets (sealed with the master key).
const (
	metaAgentCA    = "agent_ca"
	metaSigningKey = "record_signing_key"
	// metaSigningChain is the record-signing key's endorsement chain
	// (public: keys and signatures), JSON of signingChain; not set until
	// the first rotation.
	metaSigningChain = "record_signing_chain"
	// metaAgentCAPrevious is the agent CA that rotate-agent-ca replaced:
	// its certificate only (PEM; its key is gone), trusted for client
	// certificates until rotate-agent-ca --finish deletes it.
	metaAgentCAPrevious = "agent_ca_previous"
)

// Keys are the gateway's long-lived secrets.
type Keys struct {
	// CA issues the agents' client certificates.
	CA    *x509.Certificate
	caKey *ecdsa.PrivateKey
	// PrevCA, during an agent CA rotation, is the CA it replaced: its
	// certificates are still accepted, and an agent presenting one is
	// given a new one from CA. Nil otherwise.
	PrevCA *x509.Certificate
	// Signer signs key records; agents pin its public half.
	Signer ed25519.PrivateKey
	// Chain are the endorsements from the first signing key to Signer's,
	// oldest first (empty until the first rotate-signing-key).
	Chain []agentproto.KeyLink

	// pool verifies agents' client certificates: CA and PrevCA, built
	// once by LoadKeys (keys never change while a server runs).
	pool *x509.CertPool
}

type sealedCA struct {
	Cert string `json:"cert"` // PEM
	Key  string `json:"key"`  // base64 of the sealed PKCS#8 DER
}

// LoadKeys returns the gateway's keys, creating them on first use. Replicas
// starting together agree through the store's InitMeta.
func LoadKeys(ctx context.Context, st store.Store, sealer *seal.Sealer, now time.Time) (*Keys, error) {
	k := &Keys{}
	// The agent CA.
	fresh, err := newCA(sealer, now)
	if err != nil {
		return nil, err
	}
	val, err := st.InitMeta(ctx, metaAgentCA, fresh)
	if err != nil {
		return nil, fmt.Errorf("agent CA: %w", err)
	}
	var sc sealedCA
	if err := json.Unmarshal([]byte(val), &sc); err != nil {
		return nil, fmt.Errorf("agent CA: %w", err)
	}
	block, _ := pem.Decode([]byte(sc.Cert))
	if block == nil {
		return nil, errors.New("agent CA: no certificate")
	}
	if k.CA, err = x509.ParseCertificate(block.Bytes); err != nil {
		return nil, fmt.Errorf("agent CA: %w", err)
	}
	ct, err := base64.StdEncoding.DecodeString(sc.Key)
	if err != nil {
		return nil, fmt.Errorf("agent CA key: %w", err)
	}
	der, err := sealer.Open(ct, metaAgentCA)
	if err != nil {
		return nil, fmt.Errorf("agent CA key: %w", err)
	}
	pk, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("agent CA key: %w", err)
	}
	var ok bool
	if k.caKey, ok = pk.(*ecdsa.PrivateKey); !ok {
		return nil, errors.New("agent CA key: not ECDSA")
	}
	if k.PrevCA, err = loadPrevCA(ctx, st); err != nil {
		return nil, err
	}
	// The record signing key.
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	sealed, err := sealer.Seal(priv.Seed(), metaSigningKey)
	if err != nil {
		return nil, err
	}
	val, err = st.InitMeta(ctx, metaSigningKey, base64.StdEncoding.EncodeToString(sealed))
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	if k.Signer, err = openSigningKey(sealer, val); err != nil {
		return nil, err
	}
	// Read once at start: a rotation is offline (every replica stopped),
	// so a running server never sees the key or the chain change.
	if k.Chain, err = loadChain(ctx, st); err != nil {
		return nil, err
	}
	if n := len(k.Chain); n > 0 && !bytes.Equal(k.Chain[n-1].New, k.Signer.Public().(ed25519.PublicKey)) {
		return nil, errors.New("signing key: the endorsement chain does not end at the stored key; the store is inconsistent")
	}
	k.pool = x509.NewCertPool()
	k.pool.AddCert(k.CA)
	if k.PrevCA != nil {
		k.pool.AddCert(k.PrevCA)
	}
	return k, nil
}

func newCA(sealer *seal.Sealer, now time.Time) (string, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "kaginashi agent CA", Organization: []string{"kaginashi"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(20 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return "", err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return "", err
	}
	sealed, err := sealer.Seal(keyDER, metaAgentCA)
	if err != nil {
		return "", err
	}
	b, err := json.Marshal(sealedCA{
		Cert: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		Key:  base64.StdEncoding.EncodeToString(sealed),
	})
	return string(b), err
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand does not fail
	}
	return n
}

// CAPool is the pool that verifies agents' client certificates.
// It is built once, not per agent connection.
func (k *Keys) CAPool() *x509.CertPool { return k.pool }

// certLifetime: long, because an agent's standing is checked against the
// store on every connection (its key fingerprint), not by expiry.
const certLifetime = 10 * 365 * 24 * time.Hour

// IssueClientCert makes the client certificate of an instance's agent.
func (k *Keys) IssueClientCert(instanceID string, pub any, now time.Time) ([]byte, error) {
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: instanceID, Organization: []string{"kaginashi agent"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(certLifetime),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, k.CA, pub, k.caKey)
	if err != nil {
		return nil, fmt.Errorf("client certificate: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}

// KeyFingerprint is "SHA256:" and the unpadded base64 of the SHA-256 of a
// public key's PKIX encoding: what the store keeps as Instance.AgentKey.
func KeyFingerprint(spki []byte) string {
	sum := sha256.Sum256(spki)
	return "SHA256:" + base64.RawStdEncoding.EncodeToString(sum[:])
}
