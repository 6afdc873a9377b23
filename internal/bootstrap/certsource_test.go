package bootstrap

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// fakeClock is an injectable clock tests move by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

var discard = slog.New(slog.DiscardHandler)

// TestGeneratedCertsRenew: a generated certificate is served as is until
// it is within 30 days of expiry by the (injected) clock, then re-issued
// while serving, signed by the same CA.
func TestGeneratedCertsRenew(t *testing.T) {
	dir := t.TempDir()
	clock := &fakeClock{t: time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC)}
	names := []string{"localhost", "127.0.0.1"}
	src, files, err := GeneratedCerts(dir, names, clock.now, discard)
	if err != nil {
		t.Fatal(err)
	}
	first, _ := src.GetCertificate(nil)
	if first.Leaf == nil {
		t.Fatal("no parsed leaf")
	}
	clock.add(300 * 24 * time.Hour) // 97 days left
	if err := src.Check(); err != nil {
		t.Fatal(err)
	}
	if got, _ := src.GetCertificate(nil); got != first {
		t.Fatal("renewed with 97 days left")
	}
	clock.add(70 * 24 * time.Hour) // 27 days left
	if err := src.Check(); err != nil {
		t.Fatal(err)
	}
	renewed, _ := src.GetCertificate(nil)
	if renewed == first || !renewed.Leaf.NotAfter.After(first.Leaf.NotAfter) {
		t.Fatalf("not renewed with 27 days left: NotAfter %v → %v", first.Leaf.NotAfter, renewed.Leaf.NotAfter)
	}
	caPEM, _ := os.ReadFile(files.CA)
	block, _ := pem.Decode(caPEM)
	ca, _ := x509.ParseCertificate(block.Bytes)
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	if _, err := renewed.Leaf.Verify(x509.VerifyOptions{DNSName: "localhost", Roots: pool, CurrentTime: clock.now()}); err != nil {
		t.Errorf("the renewed certificate does not verify against the same CA: %v", err)
	}
	// A restart finds the renewed certificate on disk.
	again, _, err := EnsureTLS(dir, names, clock.now())
	if err != nil || again.Leaf.SerialNumber.Cmp(renewed.Leaf.SerialNumber) != 0 {
		t.Errorf("the renewed certificate was not written: %v", err)
	}
}

// selfSigned writes a self-signed certificate and key for name with the
// given serial.
func selfSigned(t *testing.T, certPath, keyPath string, serial int64) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "kaginashi.example"},
		DNSNames: []string{"kaginashi.example"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestFileCertsReload: files replaced on disk are picked up by Check; a
// half-written pair (a new certificate with the old key) keeps the old one
// in use and is picked up once the key follows; Reload reads regardless.
func TestFileCertsReload(t *testing.T) {
	dir := t.TempDir()
	cp, kp := filepath.Join(dir, "fullchain.pem"), filepath.Join(dir, "privkey.pem")
	selfSigned(t, cp, kp, 1)
	src, err := FileCerts(cp, kp, discard)
	if err != nil {
		t.Fatal(err)
	}
	serial := func() int64 { c, _ := src.GetCertificate(nil); return c.Leaf.SerialNumber.Int64() }
	if err := src.Check(); err != nil || serial() != 1 {
		t.Fatalf("unchanged files: %v, serial %d", err, serial())
	}

	// Only the certificate changes first: a mismatched pair.
	other := t.TempDir()
	selfSigned(t, filepath.Join(other, "c"), filepath.Join(other, "k"), 2)
	copyFile(t, filepath.Join(other, "c"), cp)
	if err := src.Check(); err == nil {
		t.Fatal("a mismatched pair loaded without error")
	}
	if serial() != 1 {
		t.Fatal("a mismatched pair replaced the certificate")
	}
	copyFile(t, filepath.Join(other, "k"), kp)
	if err := src.Check(); err != nil || serial() != 2 {
		t.Fatalf("the completed pair: %v, serial %d, want 2", err, serial())
	}

	// Reload reads even when size and time look the same.
	if err := src.Reload(); err != nil || serial() != 2 {
		t.Fatalf("Reload: %v, serial %d", err, serial())
	}
	if _, err := FileCerts(filepath.Join(dir, "missing.pem"), kp, discard); err == nil {
		t.Error("a missing certificate file: no error")
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	// Write through a rename, as certbot replaces its symlinks' targets,
	// and with a distinct time, so a coarse file system still shows a
	// change.
	tmp := to + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(to)
	if fi != nil {
		_ = os.Chtimes(tmp, fi.ModTime().Add(time.Second), fi.ModTime().Add(time.Second))
	}
	if err := os.Rename(tmp, to); err != nil {
		t.Fatal(err)
	}
}
