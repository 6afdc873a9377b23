package client

import (
	"bytes"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

func TestPrivateAgent(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	key, err := NewEphemeralKey()
	if err != nil {
		t.Fatal(err)
	}
	a, err := StartPrivateAgent(key)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(a.Dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("%s: %v %v; want mode 0700", a.Dir, fi, err)
	}
	ents, _ := os.ReadDir(a.Dir)
	if len(ents) != 2 {
		t.Errorf("%s holds %d entries; want the socket and the public key", a.Dir, len(ents))
	}
	b, err := os.ReadFile(a.PubFile)
	if err != nil {
		t.Fatal(err)
	}
	pk, _, _, _, err := ssh.ParseAuthorizedKey(b)
	if err != nil || !bytes.Equal(pk.Marshal(), key.Public.Marshal()) {
		t.Fatalf("%s: %v; want the public key", a.PubFile, err)
	}

	c, err := net.Dial("unix", a.Socket)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ac := agent.NewClient(c)
	keys, err := ac.List()
	if err != nil || len(keys) != 1 || !bytes.Equal(keys[0].Blob, key.Public.Marshal()) {
		t.Fatalf("List: %v %v; want the one key", keys, err)
	}
	sig, err := ac.Sign(key.Public, []byte("data"))
	if err != nil || key.Public.Verify([]byte("data"), sig) != nil {
		t.Errorf("Sign: %v", err)
	}
	// Nobody changes it through the socket.
	other, _ := NewEphemeralKey()
	if err := ac.Add(agent.AddedKey{PrivateKey: other.Private}); err == nil {
		t.Errorf("Add accepted")
	}
	if err := ac.RemoveAll(); err == nil {
		t.Errorf("RemoveAll accepted")
	}
	if err := ac.Lock([]byte("x")); err == nil {
		t.Errorf("Lock accepted")
	}
	if keys, _ := ac.List(); len(keys) != 1 {
		t.Errorf("the agent holds %d keys after refused changes", len(keys))
	}

	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(a.Dir); !os.IsNotExist(err) {
		t.Errorf("%s is still there after Close: %v", a.Dir, err)
	}
	if _, err := ac.List(); err == nil {
		t.Errorf("the agent still answers after Close")
	}
}

func TestAddToUserAgent(t *testing.T) {
	t.Setenv("SSH_AUTH_SOCK", "")
	key, _ := NewEphemeralKey()
	if err := AddToUserAgent(key, 60); err == nil {
		t.Errorf("added without an agent")
	}
	sock := filepath.Join(t.TempDir(), "a.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	kr := agent.NewKeyring()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { _ = agent.ServeAgent(kr, c); c.Close() }()
		}
	}()
	t.Setenv("SSH_AUTH_SOCK", sock)
	if err := AddToUserAgent(key, 60); err != nil {
		t.Fatal(err)
	}
	keys, _ := kr.List()
	if len(keys) != 1 || !bytes.Equal(keys[0].Blob, key.Public.Marshal()) {
		t.Errorf("the user's agent holds %v", keys)
	}
}

func TestPublicKeyOfFile(t *testing.T) {
	dir := t.TempDir()
	key, _ := NewEphemeralKey()
	block, err := ssh.MarshalPrivateKey(key.Private, "")
	if err != nil {
		t.Fatal(err)
	}
	priv := filepath.Join(dir, "id")
	if err := os.WriteFile(priv, pemEncode(block), 0o600); err != nil {
		t.Fatal(err)
	}
	want := AuthorizedKey(key.Public)
	if got, err := PublicKeyOfFile(priv); err != nil || got != want {
		t.Errorf("from the private key: %q %v", got, err)
	}
	other, _ := NewEphemeralKey()
	if err := os.WriteFile(priv+".pub", []byte(AuthorizedKey(other.Public)+" c\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, _ := PublicKeyOfFile(priv); got != AuthorizedKey(other.Public) {
		t.Errorf("the .pub next to it comes first: %q", got)
	}
	enc, err := ssh.MarshalPrivateKeyWithPassphrase(key.Private, "", []byte("secret"))
	if err != nil {
		t.Fatal(err)
	}
	encPath := filepath.Join(dir, "enc")
	if err := os.WriteFile(encPath, pemEncode(enc), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err := PublicKeyOfFile(encPath); err != nil || got != want {
		t.Errorf("an encrypted key (its public half is in clear): %q %v", got, err)
	}
	if _, err := PublicKeyOfFile(filepath.Join(dir, "none")); err == nil {
		t.Errorf("a missing file gave a key")
	}
}

func TestDefaultPublicKey(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	if _, _, err := DefaultPublicKey(); err == nil {
		t.Errorf("a key without ~/.ssh")
	}
	if err := os.MkdirAll(filepath.Join(home, ".ssh"), 0o700); err != nil {
		t.Fatal(err)
	}
	rsa, ed := mustKey(t), mustKey(t)
	writeAt(t, filepath.Join(home, ".ssh", "id_rsa.pub"), rsa)
	if p, l, err := DefaultPublicKey(); err != nil || filepath.Base(p) != "id_rsa.pub" || l != rsa {
		t.Errorf("%s %s %v", p, l, err)
	}
	writeAt(t, filepath.Join(home, ".ssh", "id_ed25519.pub"), ed)
	if p, l, err := DefaultPublicKey(); err != nil || filepath.Base(p) != "id_ed25519.pub" || l != ed {
		t.Errorf("id_ed25519.pub comes first: %s %s %v", p, l, err)
	}
}

func mustKey(t *testing.T) string {
	t.Helper()
	k, err := NewEphemeralKey()
	if err != nil {
		t.Fatal(err)
	}
	return AuthorizedKey(k.Public)
}

func writeAt(t *testing.T, p, line string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(line+" me@host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

func pemEncode(b *pem.Block) []byte { return pem.EncodeToMemory(b) }
