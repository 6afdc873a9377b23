package client

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1" //nolint:gosec // OpenSSH's hashed names
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/ssh"
)

func testKey(t *testing.T) string {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pk, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return AuthorizedKey(pk)
}

func hashed(name string) string {
	salt := make([]byte, 20)
	_, _ = rand.Read(salt)
	m := hmac.New(sha1.New, salt)
	m.Write([]byte(name))
	return "|1|" + base64.StdEncoding.EncodeToString(salt) + "|" + base64.StdEncoding.EncodeToString(m.Sum(nil))
}

func TestPinHostKeys(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "kaginashi", "known_hosts")
	id := "i-0123456789abcdef0"
	k1, k2, old, other := testKey(t), testKey(t), testKey(t), testKey(t)

	if err := PinHostKeys(path, id, []string{k1 + " root@host", k2}); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	if want := id + " " + k1 + "\n" + id + " " + k2 + "\n"; string(b) != want {
		t.Errorf("a new file:\n%s\nwant\n%s", b, want)
	}
	for p, mode := range map[string]os.FileMode{path: 0o600, filepath.Dir(path): 0o700} {
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != mode {
			t.Errorf("%s: %v %v; want mode %v", p, fi.Mode(), err, mode)
		}
	}

	// Whatever named the host before goes: plain, in a list, hashed; the
	// rest of the file stays as it was.
	lines := []string{
		"# a comment",
		"other.example " + other,
		id + " " + old,
		"web.example," + strings.ToUpper(id) + " " + old + " a comment",
		hashed(id) + " " + old,
		hashed("other.example") + " " + other,
		"@cert-authority *.example " + other,
		"@revoked " + id + " " + old,
		"[" + id + "]:2222 " + old,
	}
	writeKH(t, path, strings.Join(lines, "\n")+"\n")
	if err := PinHostKeys(path, id, []string{k1}); err != nil {
		t.Fatal(err)
	}
	b, _ = os.ReadFile(path)
	want := strings.Join([]string{lines[0], lines[1], "web.example " + old + " a comment", lines[5], lines[6], lines[7], lines[8], id + " " + k1}, "\n") + "\n"
	if string(b) != want {
		t.Errorf("after pinning:\n%s\nwant\n%s", b, want)
	}

	// No keys known: the file is left alone (ssh's accept-new decides).
	if err := PinHostKeys(path, id, nil); err != nil {
		t.Fatal(err)
	}
	if b2, _ := os.ReadFile(path); string(b2) != want {
		t.Errorf("pinning no keys changed the file:\n%s", b2)
	}
	empty := filepath.Join(dir, "new", "known_hosts")
	if err := PinHostKeys(empty, id, nil); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(empty); err != nil || fi.Size() != 0 || fi.Mode().Perm() != 0o600 {
		t.Errorf("no keys, no file: %v %v; want an empty 0600 file", fi, err)
	}

	// [host]:port names, and nothing that could act as a pattern, a
	// marker or a second field.
	if err := PinHostKeys(path, KnownHostName("web.kaginashi", 2222), []string{k2}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); !strings.HasSuffix(string(b), "[web.kaginashi]:2222 "+k2+"\n") {
		t.Errorf("[host]:port:\n%s", b)
	}
	for _, bad := range []string{"*", "i-1 i-2", "@revoked", "a,b", "", "i-1\nx"} {
		if err := PinHostKeys(path, bad, []string{k1}); err == nil {
			t.Errorf("name %q accepted", bad)
		}
	}
	// Keys are parsed and written by kaginashi: a server cannot slip in a
	// line of its own.
	if err := PinHostKeys(path, id, []string{k1 + "\n* " + other}); err == nil {
		b, _ := os.ReadFile(path)
		if strings.Contains(string(b), "\n* ") {
			t.Errorf("a key with a newline added a line:\n%s", b)
		}
	}
	if err := PinHostKeys(path, id, []string{"not a key"}); err == nil {
		t.Errorf("an unreadable key accepted")
	}
}

func writeKH(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}

// Parallel ssh-proxies (scp -3, Ansible forks) pin keys of different hosts
// in one file: none is lost.
func TestPinHostKeysConcurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "known_hosts")
	var wg sync.WaitGroup
	keys := make([]string, 20)
	for i := range keys {
		keys[i] = testKey(t)
	}
	for i := range keys {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := PinHostKeys(path, KnownHostName("h.kaginashi", 2000+i), []string{keys[i]}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	b, _ := os.ReadFile(path)
	for i, k := range keys {
		if !strings.Contains(string(b), KnownHostName("h.kaginashi", 2000+i)+" "+k+"\n") {
			t.Errorf("host %d lost:\n%s", i, b)
		}
	}
}

func TestKnownHostsPath(t *testing.T) {
	t.Setenv("HOME", "/home/u")
	t.Setenv("XDG_CONFIG_HOME", "")
	if p, _ := KnownHostsPath(); p != "/home/u/.config/kaginashi/known_hosts" {
		t.Errorf("default: %s", p)
	}
	t.Setenv("XDG_CONFIG_HOME", "/x/cfg")
	if p, _ := KnownHostsPath(); p != "/x/cfg/kaginashi/known_hosts" {
		t.Errorf("XDG_CONFIG_HOME: %s", p)
	}
	t.Setenv("XDG_CONFIG_HOME", "relative")
	if p, _ := KnownHostsPath(); p != "/home/u/.config/kaginashi/known_hosts" {
		t.Errorf("a relative XDG_CONFIG_HOME (invalid) is ignored: %s", p)
	}
}

func TestNameFilterValue(t *testing.T) {
	if got := nameFilterValue(`a*b?c\d`); got != `a\*b\?c\\d` {
		t.Errorf("%s", got)
	}
	for s, want := range map[string]bool{"i-0123456789abcdef0": true, "i-01234567": true, "i-web": false, "web": false, "i-0123456789ABCDEF0": false} {
		if IsInstanceID(s) != want {
			t.Errorf("IsInstanceID(%q) = %v", s, !want)
		}
	}
}
