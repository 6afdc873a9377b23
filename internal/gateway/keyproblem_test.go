package gateway

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/kaginashi/kaginashi/internal/agentproto"
)

func TestCleanKeyProblem(t *testing.T) {
	for in, want := range map[string]string{
		"":                         "",
		"  identity.json is 0600 ": "identity.json is 0600",
		"a\nforged\x1b[2Jline":     "a forged [2Jline",
		"bad \xff utf-8":           "bad ? utf-8",
		strings.Repeat("é", 400):   strings.Repeat("é", agentproto.MaxSigningKeyProblem/2),
		strings.Repeat("x", 600):   strings.Repeat("x", agentproto.MaxSigningKeyProblem),
	} {
		got := cleanKeyProblem(in)
		if got != want {
			t.Errorf("cleanKeyProblem(%.20q...) = %.40q..., want %.40q...", in, got, want)
		}
		if !utf8.ValidString(got) || len(got) > agentproto.MaxSigningKeyProblem {
			t.Errorf("cleanKeyProblem(%.20q...) is not bounded UTF-8", in)
		}
	}
}

// TestNoteKeyProblem: a problem is logged when it appears and when it
// changes (WARN, naming the instance), not on every heartbeat; its end
// once (INFO); the count and the lookup follow.
func TestNoteKeyProblem(t *testing.T) {
	var logs bytes.Buffer
	g := &Gateway{log: slog.New(slog.NewTextHandler(&logs, nil)), sessions: map[string]*session{}}
	a, b := &session{instanceID: "i-0000000000000000a"}, &session{instanceID: "i-0000000000000000b"}
	g.sessions[a.instanceID], g.sessions[b.instanceID] = a, b
	g.noteKeyProblem(a, "")
	if logs.Len() != 0 || g.SigningKeyProblems() != 0 {
		t.Fatalf("no problem: %q, count %d", logs.String(), g.SigningKeyProblems())
	}
	for range 3 {
		g.noteKeyProblem(a, "identity.json is mode 0600")
	}
	g.noteKeyProblem(b, "")
	if n := strings.Count(logs.String(), "level=WARN"); n != 1 || !strings.Contains(logs.String(), "instance=i-0000000000000000a") {
		t.Errorf("one problem over three heartbeats: %d WARN lines\n%s", n, logs.String())
	}
	if g.SigningKeyProblems() != 1 || g.SigningKeyProblem(a.instanceID) != "identity.json is mode 0600" || g.SigningKeyProblem(b.instanceID) != "" {
		t.Errorf("count %d, a %q, b %q", g.SigningKeyProblems(), g.SigningKeyProblem(a.instanceID), g.SigningKeyProblem(b.instanceID))
	}
	g.noteKeyProblem(a, "another problem")
	if n := strings.Count(logs.String(), "level=WARN"); n != 2 {
		t.Errorf("a changed problem is logged again: %d WARN lines", n)
	}
	g.noteKeyProblem(a, "")
	g.noteKeyProblem(a, "")
	if n := strings.Count(logs.String(), "signing-key problem is solved"); n != 1 || g.SigningKeyProblems() != 0 {
		t.Errorf("solved: %d INFO lines, count %d", n, g.SigningKeyProblems())
	}
	if g.SigningKeyProblem("i-00000000000000000") != "" {
		t.Error("a problem for an agent not connected")
	}
}
