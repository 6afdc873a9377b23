// Package bootstrap prepares a server's data directory on first start and
// finds it again on later ones: the TLS CA and certificate, the master key
// for secrets at rest, the account's identity and the root credentials.
package bootstrap

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// TLSFiles are the generated TLS files under DIR/tls.
type TLSFiles struct {
	CA, CAKey, Cert, Key string
}

func tlsFiles(dir string) TLSFiles {
	d := filepath.Join(dir, "tls")
	return TLSFiles{
		CA: filepath.Join(d, "ca.pem"), CAKey: filepath.Join(d, "ca-key.pem"),
		Cert: filepath.Join(d, "server.pem"), Key: filepath.Join(d, "server-key.pem"),
	}
}

// certLifetime keeps generated certificates under the 398-day limit
// browsers apply, so the console works too; the server renews them.
const certLifetime = 397 * 24 * time.Hour

// EnsureTLS returns the server certificate for dataDir, generating a CA on
// first use and a server certificate whenever the current one is missing,
// expiring within 30 days, or lacks one of the names. The CA is written to
// DIR/tls/ca.pem for clients (AWS_CA_BUNDLE) and agents to trust.
//
// Replicas may share DIR/tls (one data dir on shared storage, or several
// starting at once): checking and writing happen under an exclusive lock
// on DIR/tls/.lock, so one of them creates the CA or re-issues the
// certificate and the others, once they have the lock, find its files
// valid and use them. Without it, two CAs or a certificate and key from
// different callers could end up on disk.
func EnsureTLS(dataDir string, names []string, now time.Time) (tls.Certificate, TLSFiles, error) {
	f := tlsFiles(dataDir)
	if err := os.MkdirAll(filepath.Dir(f.CA), 0o700); err != nil {
		return tls.Certificate{}, f, fmt.Errorf("tls: %w", err)
	}
	unlock, err := lockFile(filepath.Join(filepath.Dir(f.CA), ".lock"))
	if err != nil {
		return tls.Certificate{}, f, fmt.Errorf("tls: %w", err)
	}
	defer unlock()
	ca, caKey, err := loadOrCreateCA(f, now)
	if err != nil {
		return tls.Certificate{}, f, err
	}
	if cert, err := tls.LoadX509KeyPair(f.Cert, f.Key); err == nil {
		leaf, perr := x509.ParseCertificate(cert.Certificate[0])
		if perr == nil && leaf.CheckSignatureFrom(ca) == nil && now.Add(30*24*time.Hour).Before(leaf.NotAfter) && coversNames(leaf, names) {
			return cert, f, nil
		}
	}
	cert, err := issueServerCert(f, ca, caKey, names, now)
	return cert, f, err
}

func coversNames(c *x509.Certificate, names []string) bool {
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			if !slices.ContainsFunc(c.IPAddresses, func(a net.IP) bool { return a.Equal(ip) }) {
				return false
			}
		} else if !slices.Contains(c.DNSNames, n) {
			return false
		}
	}
	return true
}

func loadOrCreateCA(f TLSFiles, now time.Time) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	certPEM, err1 := os.ReadFile(f.CA)
	keyPEM, err2 := os.ReadFile(f.CAKey)
	if err1 == nil && err2 == nil {
		pair, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			return nil, nil, fmt.Errorf("tls: the CA in %s: %w", filepath.Dir(f.CA), err)
		}
		ca, err := x509.ParseCertificate(pair.Certificate[0])
		if err != nil {
			return nil, nil, fmt.Errorf("tls: the CA: %w", err)
		}
		key, ok := pair.PrivateKey.(*ecdsa.PrivateKey)
		if !ok {
			return nil, nil, errors.New("tls: the CA key is not an ECDSA key")
		}
		return ca, key, nil
	}
	if !errors.Is(err1, fs.ErrNotExist) && err1 != nil {
		return nil, nil, fmt.Errorf("tls: %w", err1)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("tls: %w", err)
	}
	host, _ := os.Hostname()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "kaginashi CA " + host, Organization: []string{"kaginashi"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("tls: %w", err)
	}
	if err := writePEM(f.CAKey, "EC PRIVATE KEY", mustMarshalEC(key), 0o600); err != nil {
		return nil, nil, err
	}
	if err := writePEM(f.CA, "CERTIFICATE", der, 0o644); err != nil {
		return nil, nil, err
	}
	ca, err := x509.ParseCertificate(der)
	return ca, key, err
}

func issueServerCert(f TLSFiles, ca *x509.Certificate, caKey *ecdsa.PrivateKey, names []string, now time.Time) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("tls: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: firstOr(names, "localhost"), Organization: []string{"kaginashi"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(certLifetime),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("tls: %w", err)
	}
	if err := writePEM(f.Key, "EC PRIVATE KEY", mustMarshalEC(key), 0o600); err != nil {
		return tls.Certificate{}, err
	}
	chain := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Raw})...)
	if err := writeFileAtomic(f.Cert, chain, 0o644); err != nil {
		return tls.Certificate{}, err
	}
	return tls.LoadX509KeyPair(f.Cert, f.Key)
}

func firstOr(s []string, def string) string {
	if len(s) > 0 {
		return s[0]
	}
	return def
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand does not fail
	}
	return n
}

func mustMarshalEC(k *ecdsa.PrivateKey) []byte {
	der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		panic(err) // a P-256 key always marshals
	}
	return der
}

func writePEM(path, typ string, der []byte, mode os.FileMode) error {
	return writeFileAtomic(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), mode)
}

// writeFileAtomic writes through a temporary file, fsync, a rename and an
// fsync of the directory, so a crash never leaves half a key nor loses
// the rename.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path))
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := syncRename(filepath.Dir(path)); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
