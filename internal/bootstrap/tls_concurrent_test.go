package bootstrap

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

// Environment of TestEnsureTLSConcurrent's child processes.
const (
	childDirEnv = "KAGINASHI_TEST_TLS_DIR"
	childOutEnv = "KAGINASHI_TEST_TLS_OUT"
	childNowEnv = "KAGINASHI_TEST_TLS_NOW"
)

var concurrentNames = []string{"localhost", "127.0.0.1", "::1", "kaginashi.example"}

// TestEnsureTLSConcurrent: replicas sharing DIR/tls (or two starting
// together) call EnsureTLS at once — goroutines here, and processes, since
// the lock must hold between processes. They end with one CA, and every
// caller's certificate is the same one, on disk, and verifies against the
// CA on disk; then the same when all of them renew at once.
func TestEnsureTLSConcurrent(t *testing.T) {
	if dir := os.Getenv(childDirEnv); dir != "" {
		ensureTLSChild(t, dir)
		return
	}
	dir := t.TempDir()
	now := time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC)

	first := ensureTLSRace(t, dir, now, 1)
	caPEM, err := os.ReadFile(tlsFiles(dir).CA)
	if err != nil {
		t.Fatal(err)
	}

	// All renew at once: one new certificate, the same CA.
	late := now.Add(certLifetime - 10*24*time.Hour)
	renewed := ensureTLSRace(t, dir, late, 2)
	if bytes.Equal(renewed.Raw, first.Raw) {
		t.Error("the expiring certificate was not renewed")
	}
	if again, _ := os.ReadFile(tlsFiles(dir).CA); !bytes.Equal(again, caPEM) {
		t.Error("renewal replaced the CA")
	}
}

// ensureTLSRace runs 8 goroutines and 4 processes calling EnsureTLS(dir,
// now) at once, checks that they all got the certificate on disk, which
// the CA on disk verifies, and returns it.
func ensureTLSRace(t *testing.T, dir string, now time.Time, round int) *x509.Certificate {
	t.Helper()
	const goroutines, procs = 8, 4
	barrier := filepath.Join(dir, fmt.Sprintf("go-%d", round))
	var cmds []*exec.Cmd
	var outs []string
	var logs []*bytes.Buffer
	for i := range procs {
		out := filepath.Join(dir, fmt.Sprintf("out-%d-%d.pem", round, i))
		cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestEnsureTLSConcurrent$", "-test.count=1")
		cmd.Env = append(os.Environ(), childDirEnv+"="+dir, childOutEnv+"="+out, childNowEnv+"="+strconv.FormatInt(now.Unix(), 10),
			"KAGINASHI_TEST_TLS_BARRIER="+barrier)
		log := new(bytes.Buffer)
		cmd.Stdout, cmd.Stderr = log, log
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds, outs, logs = append(cmds, cmd), append(outs, out), append(logs, log)
	}
	start := make(chan struct{})
	var wg sync.WaitGroup
	certs := make([][]byte, goroutines)
	errs := make([]error, goroutines)
	for i := range goroutines {
		wg.Go(func() {
			<-start
			c, _, err := EnsureTLS(dir, concurrentNames, now)
			if err == nil {
				certs[i] = c.Certificate[0]
			}
			errs[i] = err
		})
	}
	// Let the children start up and wait at the barrier too.
	time.Sleep(200 * time.Millisecond)
	if err := os.WriteFile(barrier, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	close(start)
	wg.Wait()
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("child %d: %v\n%s", i, err, logs[i])
		}
		b, err := os.ReadFile(outs[i])
		if err != nil {
			t.Fatalf("child %d: %v", i, err)
		}
		block, _ := pem.Decode(b)
		if block == nil {
			t.Fatalf("child %d wrote no certificate", i)
		}
		certs, errs = append(certs, block.Bytes), append(errs, nil)
	}

	f := tlsFiles(dir)
	caPEM, err := os.ReadFile(f.CA)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(caPEM)
	ca, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	onDisk, err := tls.LoadX509KeyPair(f.Cert, f.Key)
	if err != nil {
		t.Fatalf("the certificate and key on disk: %v", err)
	}
	for i, der := range certs {
		if errs[i] != nil {
			t.Errorf("caller %d: %v", i, errs[i])
			continue
		}
		leaf, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatalf("caller %d: %v", i, err)
		}
		if _, err := leaf.Verify(x509.VerifyOptions{DNSName: "kaginashi.example", Roots: roots, CurrentTime: now}); err != nil {
			t.Errorf("caller %d's certificate does not verify against the CA on disk: %v", i, err)
		}
		if !bytes.Equal(der, onDisk.Certificate[0]) {
			t.Errorf("caller %d got a certificate other than the one on disk (serial %s)", i, leaf.SerialNumber)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	leaf, _ := x509.ParseCertificate(onDisk.Certificate[0])
	return leaf
}

// ensureTLSChild is a child process of TestEnsureTLSConcurrent: it waits
// for the barrier file, calls EnsureTLS and writes the certificate it got.
func ensureTLSChild(t *testing.T, dir string) {
	sec, err := strconv.ParseInt(os.Getenv(childNowEnv), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	barrier := os.Getenv("KAGINASHI_TEST_TLS_BARRIER")
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(time.Millisecond) {
		if _, err := os.Stat(barrier); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no barrier")
		}
	}
	c, _, err := EnsureTLS(dir, concurrentNames, time.Unix(sec, 0).UTC())
	if err != nil {
		t.Fatal(err)
	}
	out := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Certificate[0]})
	if err := os.WriteFile(os.Getenv(childOutEnv), out, 0o600); err != nil {
		t.Fatal(err)
	}
}
