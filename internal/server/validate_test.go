package server

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRefusedStartLeavesNothing: each bad option is refused before the
// data directory (master key, database) is created.
func TestRefusedStartLeavesNothing(t *testing.T) {
	fx := t.TempDir()
	certFile, keyFile := writeCert(t, fx, "a")
	_, otherKey := writeCert(t, fx, "b")
	garbage := filepath.Join(fx, "garbage.pem")
	aFile := filepath.Join(fx, "a-file")
	for _, f := range []string{garbage, aFile} {
		if err := os.WriteFile(f, []byte("not PEM\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	tlsFiles := func(cert, key string) func(*Options) {
		return func(o *Options) { o.Insecure, o.TLSCert, o.TLSKey = false, cert, key }
	}
	type refusal struct {
		name string
		set  func(*Options)
		want string
	}
	more := []refusal{}
	// An audit log that others could redirect (audit.CheckPath).
	auditLink := filepath.Join(fx, "audit-link.jsonl")
	if err := os.Symlink(aFile, auditLink); err != nil {
		t.Fatal(err)
	}
	openDir := filepath.Join(fx, "open")
	if err := os.Mkdir(openDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(openDir, 0o777); err != nil {
		t.Fatal(err)
	}
	more = append(more,
		refusal{"audit log a symlink", func(o *Options) { o.AuditLog = auditLink }, "--audit-log: audit log " + auditLink + ": refused as unsafe: it is a symbolic link"},
		refusal{"audit log in a world-writable directory", func(o *Options) { o.AuditLog = filepath.Join(openDir, "audit.jsonl") }, "is writable by others than its owner"},
	)
	if os.Geteuid() != 0 {
		// root may write any file: this one needs an ordinary user.
		readOnly := filepath.Join(fx, "read-only.jsonl")
		if err := os.WriteFile(readOnly, nil, 0o400); err != nil {
			t.Fatal(err)
		}
		more = append(more, refusal{"audit log read-only", func(o *Options) { o.AuditLog = readOnly }, "--audit-log"})
	}
	for _, c := range append([]refusal{
		{"short account", func(o *Options) { o.AccountID = "12345" }, "--account-id"},
		{"letters in account", func(o *Options) { o.AccountID = "12345678901a" }, "--account-id"},
		{"region with a slash", func(o *Options) { o.Region = "us-east-1/x" }, "--region"},
		{"region in capitals", func(o *Options) { o.Region = "US-EAST-1" }, "--region"},
		{"listen without port", func(o *Options) { o.Listen = "localhost" }, "--listen"},
		{"listen port too big", func(o *Options) { o.Listen = ":70000" }, "--listen"},
		{"metrics listen", func(o *Options) { o.MetricsListen = "9090" }, "--metrics-listen"},
		{"public URL without scheme", func(o *Options) { o.PublicURL = "kaginashi.example.com" }, "--public-url"},
		{"peer URL", func(o *Options) { o.PeerURL = "ftp://x" }, "--peer-url"},
		{"store scheme", func(o *Options) { o.StoreURL = "mysql://u:secret@h/db" }, "--store"},
		{"sqlite without path", func(o *Options) { o.StoreURL = "sqlite:" }, "--store"},
		{"trusted proxy", func(o *Options) { o.TrustedProxies = []string{"10.0.0.0/99"} }, "--trusted-proxy"},
		{"tunnel duration over the cap", func(o *Options) { o.MaxTunnelDuration = 2 * time.Hour }, "--max-tunnel-duration"},
		{"tunnel duration under a second", func(o *Options) { o.MaxTunnelDuration = 500 * time.Millisecond }, "--max-tunnel-duration"},
		{"tunnel duration not whole seconds", func(o *Options) { o.MaxTunnelDuration = 1500 * time.Millisecond }, "--max-tunnel-duration"},
		{"TLS cert missing", tlsFiles(filepath.Join(fx, "none.pem"), keyFile), "--tls-cert"},
		{"TLS key missing", tlsFiles(certFile, filepath.Join(fx, "none.pem")), "--tls-key"},
		{"TLS key a directory", tlsFiles(certFile, fx), "--tls-key"},
		{"TLS cert not PEM", tlsFiles(garbage, keyFile), "--tls-cert"},
		{"TLS key of another cert", tlsFiles(certFile, otherKey), "--tls-cert"},
		{"audit log in a missing directory", func(o *Options) { o.AuditLog = filepath.Join(fx, "no", "audit.jsonl") }, "--audit-log"},
		{"audit log a directory", func(o *Options) { o.AuditLog = fx }, "--audit-log"},
		{"audit log under a file", func(o *Options) { o.AuditLog = filepath.Join(aFile, "audit.jsonl") }, "--audit-log"},
		{"listen port in use", func(o *Options) { o.Listen = busy.Addr().String() }, "listen"},
		{"metrics port in use", func(o *Options) { o.MetricsListen = busy.Addr().String() }, "--metrics-listen"},
		{"peer CA missing", func(o *Options) { o.PeerCA = filepath.Join(fx, "none.pem") }, "--peer-ca"},
		{"peer CA without a certificate", func(o *Options) { o.PeerCA = garbage }, "--peer-ca"},
	}, more...) {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "kd")
			o := Options{DataDir: dir, Insecure: true, Listen: "127.0.0.1:0", Stdout: io.Discard,
				Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
			c.set(&o)
			// A start that is not refused serves until this ends.
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			defer cancel()
			err := Run(ctx, o)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Run = %v, want an error naming %s", err, c.want)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("the error shows the store URL's password: %v", err)
			}
			if _, serr := os.Stat(dir); !os.IsNotExist(serr) {
				entries, _ := os.ReadDir(dir)
				t.Errorf("refused start (%v) left the data dir behind: %v", err, entries)
			}
		})
	}
}

// TestAcceptedFilesStart: the file checks refuse nothing that works — an
// audit log inside a data dir that does not exist yet, a new one in an
// existing directory, a TLS pair, a tunnel cap of whole seconds.
func TestAcceptedFilesStart(t *testing.T) {
	fx := t.TempDir()
	certFile, keyFile := writeCert(t, fx, "a")
	existing := filepath.Join(fx, "existing.jsonl")
	if err := os.WriteFile(existing, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		set  func(o *Options, dir string)
	}{
		{"audit log in the new data dir", func(o *Options, dir string) { o.AuditLog = filepath.Join(dir, "audit.jsonl") }},
		{"new audit log", func(o *Options, dir string) { o.AuditLog = filepath.Join(fx, "new.jsonl") }},
		{"existing audit log", func(o *Options, dir string) { o.AuditLog = existing }},
		{"TLS files", func(o *Options, dir string) { o.Insecure, o.TLSCert, o.TLSKey = false, certFile, keyFile }},
		{"tunnel cap", func(o *Options, dir string) { o.MaxTunnelDuration = 4 * time.Second }},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "kd")
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			o := Options{DataDir: dir, Insecure: true, Listen: "127.0.0.1:0", Stdout: io.Discard, NoConsole: true,
				Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Ready: func(string) { cancel() }}
			c.set(&o, dir)
			if err := Run(ctx, o); err != nil {
				t.Fatalf("Run: %v", err)
			}
			if o.AuditLog != "" {
				if _, err := os.Stat(o.AuditLog); err != nil {
					t.Errorf("audit log: %v", err)
				}
			}
		})
	}
}

// writeCert writes a self-signed certificate for 127.0.0.1 and its key.
func writeCert(t *testing.T, dir, name string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}
