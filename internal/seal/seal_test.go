package seal

import (
	"bytes"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestSealOpen(t *testing.T) {
	key := bytes.Repeat([]byte{7}, KeySize)
	s, err := New(key)
	if err != nil {
		t.Fatal(err)
	}
	ct, err := s.Seal([]byte("secret"), "AKIAEXAMPLE")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(ct, []byte("secret")) {
		t.Fatal("ciphertext contains the plaintext")
	}
	pt, err := s.Open(ct, "AKIAEXAMPLE")
	if err != nil || string(pt) != "secret" {
		t.Fatalf("Open = %q, %v", pt, err)
	}
	ct2, _ := s.Seal([]byte("secret"), "AKIAEXAMPLE")
	if bytes.Equal(ct, ct2) {
		t.Error("two seals of the same secret are equal: the nonce is not random")
	}
	if _, err := s.Open(ct, "AKIAOTHER"); !errors.Is(err, ErrOpen) {
		t.Errorf("a ciphertext moved to another owner opened: %v", err)
	}
	tampered := append([]byte(nil), ct...)
	tampered[len(tampered)-1] ^= 1
	if _, err := s.Open(tampered, "AKIAEXAMPLE"); !errors.Is(err, ErrOpen) {
		t.Errorf("tampered ciphertext opened: %v", err)
	}
	other, _ := New(bytes.Repeat([]byte{8}, KeySize))
	if _, err := other.Open(ct, "AKIAEXAMPLE"); !errors.Is(err, ErrOpen) {
		t.Errorf("opened with another master key: %v", err)
	}
	for _, short := range [][]byte{nil, {1}, ct[:10]} {
		if _, err := s.Open(short, "AKIAEXAMPLE"); !errors.Is(err, ErrOpen) {
			t.Errorf("short ciphertext: %v", err)
		}
	}
	if _, err := New([]byte("short")); err == nil {
		t.Error("a short master key was accepted")
	}
}

func TestLoadOrCreate(t *testing.T) {
	t.Setenv(EnvKey, "")
	path := filepath.Join(t.TempDir(), "master.key")
	k1, created, err := LoadOrCreate(path)
	if err != nil || !created || len(k1) != KeySize {
		t.Fatalf("first: %v %v %d", err, created, len(k1))
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	k2, created, err := LoadOrCreate(path)
	if err != nil || created || !bytes.Equal(k1, k2) {
		t.Fatalf("second: %v %v", err, created)
	}
	os.Chmod(path, 0o644)
	if _, _, err := LoadOrCreate(path); err == nil {
		t.Error("a world-readable master key was accepted")
	}
	t.Setenv(EnvKey, base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{9}, KeySize)))
	k3, created, err := LoadOrCreate(filepath.Join(t.TempDir(), "unused"))
	if err != nil || created || k3[0] != 9 {
		t.Fatalf("env: %v %v", err, created)
	}
	t.Setenv(EnvKey, "not base64!")
	if _, _, err := LoadOrCreate(path); err == nil {
		t.Error("a malformed env key was accepted")
	}
}
