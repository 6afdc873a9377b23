package bootstrap

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// renewBefore is how long before expiry a generated certificate is
// re-issued (as EnsureTLS does at start).
const renewBefore = 30 * 24 * time.Hour

// CertSource serves the server certificate through
// tls.Config.GetCertificate and replaces it while the server runs: a
// generated certificate is re-issued before it expires; files given with
// --tls-cert/--tls-key are read again when they change on disk (or on
// Reload, which SIGHUP calls), so that certbot-style renewal needs no
// restart. A failed reload keeps the certificate in use and says why.
type CertSource struct {
	cur  atomic.Pointer[tls.Certificate]
	mu   sync.Mutex // serialises check: the ticker and SIGHUP may race
	load func(force bool) (*tls.Certificate, bool, error)
	log  *slog.Logger
}

// GeneratedCerts serves the generated certificate of dataDir for names,
// re-issuing it (EnsureTLS) once it is within 30 days of expiry by now.
func GeneratedCerts(dataDir string, names []string, now func() time.Time, log *slog.Logger) (*CertSource, TLSFiles, error) {
	cert, files, err := EnsureTLS(dataDir, names, now())
	if err != nil {
		return nil, files, err
	}
	s := &CertSource{log: log}
	s.cur.Store(&cert)
	s.load = func(force bool) (*tls.Certificate, bool, error) {
		leaf := s.cur.Load().Leaf
		if !force && leaf != nil && now().Add(renewBefore).Before(leaf.NotAfter) {
			return nil, false, nil
		}
		c, _, err := EnsureTLS(dataDir, names, now())
		if err != nil {
			return nil, false, err
		}
		return &c, leaf == nil || !bytes.Equal(c.Leaf.Raw, leaf.Raw), nil
	}
	return s, files, nil
}

// FileCerts serves the certificate chain and key in certFile and keyFile,
// reading them again when either file's size or modification time changes.
func FileCerts(certFile, keyFile string, log *slog.Logger) (*CertSource, error) {
	var seen [2]fileStamp
	read := func() (*tls.Certificate, error) {
		c, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("--tls-cert/--tls-key: %w", err)
		}
		return &c, nil
	}
	cert, err := read()
	if err != nil {
		return nil, err
	}
	seen[0], seen[1] = stamp(certFile), stamp(keyFile)
	s := &CertSource{log: log}
	s.cur.Store(cert)
	s.load = func(force bool) (*tls.Certificate, bool, error) {
		now := [2]fileStamp{stamp(certFile), stamp(keyFile)}
		if !force && now == seen {
			return nil, false, nil
		}
		c, err := read()
		if err != nil {
			// A renewal tool may write the two files one after the
			// other: a mismatched pair is retried at the next look,
			// since seen is not advanced.
			return nil, false, err
		}
		seen = now
		return c, !bytes.Equal(c.Leaf.Raw, s.cur.Load().Leaf.Raw), nil
	}
	return s, nil
}

type fileStamp struct {
	size int64
	mod  time.Time
	ok   bool
}

func stamp(path string) fileStamp {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}
	}
	return fileStamp{size: fi.Size(), mod: fi.ModTime(), ok: true}
}

// GetCertificate is tls.Config.GetCertificate.
func (s *CertSource) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return s.cur.Load(), nil
}

// Leaf is the certificate served now.
func (s *CertSource) Leaf() *x509.Certificate { return s.cur.Load().Leaf }

// Check replaces the certificate when it is due (generated) or its files
// changed; Reload does so whatever the files' stamps say.
func (s *CertSource) Check() error { return s.check(false) }

// Reload reads the certificate again now (SIGHUP).
func (s *CertSource) Reload() error { return s.check(true) }

func (s *CertSource) check(force bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, changed, err := s.load(force)
	if err != nil {
		return err
	}
	if c == nil {
		return nil
	}
	if c.Leaf == nil {
		return errors.New("tls: the certificate has no parsed leaf")
	}
	s.cur.Store(c)
	if changed {
		s.log.Info("TLS certificate replaced", "subject", c.Leaf.Subject.String(), "notAfter", c.Leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	return nil
}

// Run checks every interval until ctx ends, logging failures (the old
// certificate stays in use).
func (s *CertSource) Run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := s.Check(); err != nil {
				s.log.Warn("TLS certificate renewal failed; the current one stays in use", "err", err, "notAfter", s.Leaf().NotAfter.UTC().Format(time.RFC3339))
			}
		}
	}
}
