// Package seal encrypts secrets at rest — access keys' secret halves — with
// a master key kept outside the database (a file in the data directory, or
// an environment variable), so that a copy of the database alone reveals no
// secret. AES-256-GCM; each ciphertext is bound to its owner (the access
// key ID) as additional data, so rows cannot be swapped.
package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
)

// KeySize is the master key length: AES-256.
const KeySize = 32

// version prefixes ciphertexts so the format can change later.
const version byte = 1

// Sealer encrypts and decrypts with one master key.
type Sealer struct {
	aead cipher.AEAD
	// prk is HKDF's pseudorandom key from the master key, for DeriveKey.
	prk []byte
}

// New makes a Sealer from a 32-byte key.
func New(key []byte) (*Sealer, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("master key: want %d bytes, got %d", KeySize, len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("master key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("master key: %w", err)
	}
	prk, err := hkdf.Extract(sha256.New, key, nil)
	if err != nil {
		return nil, fmt.Errorf("master key: %w", err)
	}
	return &Sealer{aead: aead, prk: prk}, nil
}

// DeriveKey returns an n-byte key for purpose, derived from the master key
// with HKDF-SHA256: every process holding the same master key derives the
// same key (server replicas authenticate each other with one), and the
// derived key reveals nothing about the master key or other purposes' keys.
func (s *Sealer) DeriveKey(purpose string, n int) ([]byte, error) {
	k, err := hkdf.Expand(sha256.New, s.prk, purpose, n)
	if err != nil {
		return nil, fmt.Errorf("derive a key for %s: %w", purpose, err)
	}
	return k, nil
}

// Seal encrypts plaintext for owner.
func (s *Sealer) Seal(plaintext []byte, owner string) ([]byte, error) {
	nonce := make([]byte, s.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	out := append([]byte{version}, nonce...)
	return s.aead.Seal(out, nonce, plaintext, []byte(owner)), nil
}

// ErrOpen means a ciphertext does not decrypt with this key for this owner:
// a wrong master key, a tampered row, or a row moved to another owner.
var ErrOpen = errors.New("seal: cannot decrypt (wrong master key, or tampered data)")

// Open decrypts a ciphertext made by Seal for owner.
func (s *Sealer) Open(ciphertext []byte, owner string) ([]byte, error) {
	n := s.aead.NonceSize()
	if len(ciphertext) < 1+n+s.aead.Overhead() || ciphertext[0] != version {
		return nil, ErrOpen
	}
	pt, err := s.aead.Open(nil, ciphertext[1:1+n], ciphertext[1+n:], []byte(owner))
	if err != nil {
		return nil, ErrOpen
	}
	return pt, nil
}

// EnvKey names the environment variable that may hold the master key
// (base64), for deployments that keep it in a secret manager.
const EnvKey = "KAGINASHI_MASTER_KEY"

// Load returns the master key from the environment, or from path; unlike
// LoadOrCreate it never writes one: a deployment whose database already
// holds sealed secrets must find the key they were sealed with.
func Load(path string) ([]byte, error) {
	if v := os.Getenv(EnvKey); v != "" {
		key, err := decodeKey(v)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", EnvKey, err)
		}
		return key, nil
	}
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("master key: %w", err)
	}
	key, _, err := LoadOrCreate(path)
	return key, err
}

// LoadOrCreate returns the master key from the environment, or from path,
// creating path (mode 0600, its directory 0700) with a fresh random key on
// first use. created reports that a new key was written.
func LoadOrCreate(path string) (key []byte, created bool, err error) {
	if v := os.Getenv(EnvKey); v != "" {
		key, err := decodeKey(v)
		if err != nil {
			return nil, false, fmt.Errorf("%s: %w", EnvKey, err)
		}
		return key, false, nil
	}
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		if fi, serr := os.Stat(path); serr == nil && fi.Mode().Perm()&0o077 != 0 {
			return nil, false, fmt.Errorf("master key %s is readable by others (mode %v); chmod 600 it", path, fi.Mode().Perm())
		}
		key, err := decodeKey(string(data))
		if err != nil {
			return nil, false, fmt.Errorf("master key %s: %w", path, err)
		}
		return key, false, nil
	case !errors.Is(err, fs.ErrNotExist):
		return nil, false, fmt.Errorf("master key: %w", err)
	}
	key = make([]byte, KeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, false, fmt.Errorf("master key: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, false, fmt.Errorf("master key: %w", err)
	}
	if _, err := f.WriteString(base64.StdEncoding.EncodeToString(key) + "\n"); err != nil {
		f.Close()
		return nil, false, fmt.Errorf("master key: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, false, fmt.Errorf("master key: %w", err)
	}
	return key, true, f.Close()
}

func decodeKey(s string) ([]byte, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil {
		return nil, fmt.Errorf("not base64: %w", err)
	}
	if len(key) != KeySize {
		return nil, fmt.Errorf("want %d bytes, got %d", KeySize, len(key))
	}
	return key, nil
}
