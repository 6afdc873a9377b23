package console

import (
	"crypto/ed25519"
	"crypto/rand"
	"strings"
	"testing"
	"unicode/utf8"

	"golang.org/x/crypto/ssh"
)

func TestParseControl(t *testing.T) {
	m, err := parseControl([]byte(`{"type":"resize","cols":120,"rows":40}`))
	if err != nil || m.Cols != 120 || m.Rows != 40 {
		t.Fatalf("resize: %+v %v", m, err)
	}
	for _, bad := range []string{``, `{}`, `{"type":"resize","cols":0,"rows":40}`, `{"type":"resize","cols":1001,"rows":1}`,
		`{"type":"exec","cols":1,"rows":1}`, `{"type":"resize","cols":1,"rows":1,"x":1}`, `{"type":"resize","cols":1,"rows":1}{}`, `[1]`} {
		if _, err := parseControl([]byte(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func FuzzParseControl(f *testing.F) {
	f.Add([]byte(`{"type":"resize","cols":80,"rows":24}`))
	f.Add([]byte(`{"type":"resize","cols":-1,"rows":1e9}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := parseControl(b)
		if err != nil {
			return
		}
		if m.Type != "resize" || m.Cols < 1 || m.Rows < 1 || m.Cols > 1000 || m.Rows > 1000 {
			t.Fatalf("accepted %+v from %q", m, b)
		}
	})
}

func TestHostKeyCallback(t *testing.T) {
	key := func() ssh.PublicKey {
		pub, _, _ := ed25519.GenerateKey(rand.Reader)
		k, _ := ssh.NewPublicKey(pub)
		return k
	}
	known, other := key(), key()
	keys := parseHostKeys([]string{string(ssh.MarshalAuthorizedKey(known)), "garbage"})
	if len(keys) != 1 {
		t.Fatalf("parsed %d keys", len(keys))
	}
	cb := hostKeyCallback(keys)
	if err := cb("i-1", nil, known); err != nil {
		t.Errorf("the inventory's key refused: %v", err)
	}
	if err := cb("i-1", nil, other); err == nil {
		t.Error("another key accepted")
	}
	if algos := hostKeyAlgorithms(keys); len(algos) != 1 || algos[0] != ssh.KeyAlgoED25519 {
		t.Errorf("algorithms %v", algos)
	}
}

func TestCloseReason(t *testing.T) {
	long := strings.Repeat("鍵", 100)
	r := closeReason(long)
	if len(r) > 123 || !utf8.ValidString(r) || r == "" {
		t.Errorf("closeReason: %d bytes, valid %v", len(r), utf8.ValidString(r))
	}
	if closeReason("short") != "short" {
		t.Error("a short reason changed")
	}
}

func TestAuthFailedMessage(t *testing.T) {
	plain := authFailedMessage("alice", "i-0123456789abcdef0", "")
	if !strings.Contains(plain, "does the user exist") {
		t.Errorf("without a problem: %q", plain)
	}
	p := "keys/identity.json is mode 0600"
	m := authFailedMessage("alice", "i-0123456789abcdef0", p)
	if !strings.HasSuffix(m, p) || !strings.Contains(m, "i-0123456789abcdef0") || strings.Contains(m, "does the user exist") {
		t.Errorf("with a problem: %q", m)
	}
}
