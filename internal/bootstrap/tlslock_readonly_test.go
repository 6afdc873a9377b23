//go:build linux

package bootstrap

import (
	"bytes"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// roDirEnv makes TestEnsureTLSReadOnlyDir's child process (root's case)
// check the data dir it names under a read-only bind mount of its tls/.
const roDirEnv = "KAGINASHI_TEST_TLS_RO_DIR"

var roNames = []string{"localhost", "127.0.0.1"}

// TestEnsureTLSReadOnlyDir: a DIR/tls with valid files that this process
// cannot write to (a read-only mount of files made elsewhere, such as a
// Kubernetes Secret), with or without a lock file in it, still serves
// their certificate, as before the lock. EnsureTLS failed there since the
// lock: 'tls: open DIR/tls/.lock: permission denied' (or 'read-only file
// system'). An ordinary user gets a directory without write permission;
// root, whom that does not stop, a child process in a mount namespace of
// its own with a read-only bind mount.
func TestEnsureTLSReadOnlyDir(t *testing.T) {
	if dir := os.Getenv(roDirEnv); dir != "" {
		tlsDir := filepath.Join(dir, "tls")
		if err := syscall.Mount(tlsDir, tlsDir, "", syscall.MS_BIND, ""); err != nil {
			t.Fatalf("bind mount: %v", err)
		}
		if err := syscall.Mount("", tlsDir, "", syscall.MS_BIND|syscall.MS_REMOUNT|syscall.MS_RDONLY, ""); err != nil {
			t.Fatalf("read-only remount: %v", err)
		}
		checkReadOnlyTLS(t, dir)
		return
	}
	now := time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC)
	for _, withLock := range []bool{false, true} {
		name := "no lock file"
		if withLock {
			name = "a lock file"
		}
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			_, files, err := EnsureTLS(dir, roNames, now)
			if err != nil {
				t.Fatal(err)
			}
			tlsDir := filepath.Dir(files.CA)
			lock := filepath.Join(tlsDir, ".lock")
			if withLock {
				err = os.Chmod(lock, 0o400)
			} else {
				err = os.Remove(lock)
			}
			if err != nil {
				t.Fatal(err)
			}
			if os.Geteuid() != 0 {
				if err := os.Chmod(tlsDir, 0o500); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = os.Chmod(tlsDir, 0o700) })
				checkReadOnlyTLS(t, dir)
				return
			}
			cmd := exec.Command(os.Args[0], "-test.run=^TestEnsureTLSReadOnlyDir$", "-test.v")
			cmd.Env = append(os.Environ(), roDirEnv+"="+dir)
			cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}
			out, err := cmd.CombinedOutput()
			if err != nil {
				if bytes.Contains(out, []byte("bind mount:")) || bytes.Contains(out, []byte("read-only remount:")) {
					t.Skipf("no read-only bind mount here: %s", out)
				}
				t.Fatalf("child: %v\n%s", err, out)
			}
		})
	}
}

// checkReadOnlyTLS: EnsureTLS on dir, whose tls/ cannot be written, gives
// the certificate on disk, and a renewal there fails with an error.
func checkReadOnlyTLS(t *testing.T, dir string) {
	t.Helper()
	now := time.Date(2026, 11, 28, 1, 0, 0, 0, time.UTC)
	onDisk, err := os.ReadFile(tlsFiles(dir).Cert)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(onDisk)
	got, _, err := EnsureTLS(dir, roNames, now)
	if err != nil {
		t.Fatalf("EnsureTLS on a read-only DIR/tls: %v", err)
	}
	if block == nil || !bytes.Equal(got.Certificate[0], block.Bytes) {
		t.Error("a different certificate than the one on disk")
	}
	if _, _, err := EnsureTLS(dir, append(roNames, "new.example"), now); err == nil {
		t.Error("a certificate was issued into a read-only DIR/tls")
	}
}
