package agent

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/kaginashi/kaginashi/internal/agentproto"
)

// TestKeyHealthOnDisk: the agent finds what makes the AuthorizedKeysCommand
// fail while pushes succeed — identity.json unreadable by sshd's
// unprivileged user, unparsable, or pinning another key — and the problem
// ends when the file is right again.
func TestKeyHealthOnDisk(t *testing.T) {
	now := time.UnixMilli(1_800_000_000_000)
	ka, kb := genKey(t), genKey(t)
	a := rolloverAgent(t, pubKey(ka), now)
	check := func(what, want string) {
		t.Helper()
		a.refreshKeyHealth()
		got := a.signingKeyProblem()
		if (want == "") != (got == "") || !strings.Contains(got, want) {
			t.Errorf("%s: problem %q, want one containing %q", what, got, want)
		}
		if st := a.Stats(); st.SigningKeyError != (want != "") {
			t.Errorf("%s: Stats.SigningKeyError = %v", what, st.SigningKeyError)
		}
	}
	check("as enrolled", "")

	pub := a.paths.public()
	good, err := os.ReadFile(pub)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(pub, 0o600); err != nil {
		t.Fatal(err)
	}
	check("identity.json 0600", "is mode 0600")
	// For kaginashi-agent doctor, in another process.
	if st, err := a.paths.ReadStatus(); err != nil || !strings.Contains(st.SigningKeyProblem, "is mode 0600") {
		t.Errorf("status.json: %q, %v", st.SigningKeyProblem, err)
	}
	if err := os.Chmod(pub, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(a.paths.keysDir(), 0o750); err != nil {
		t.Fatal(err)
	}
	check("keys/ 0750", "is mode 0750")
	if err := os.Chmod(a.paths.keysDir(), 0o755); err != nil {
		t.Fatal(err)
	}
	check("fixed", "")

	if err := os.WriteFile(pub, []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	check("unparsable", "cannot read the pinned signing key")
	os.Remove(pub)
	check("missing", "cannot read the pinned signing key")
	if err := writeJSON(pub, Public{InstanceID: "i-0123456789abcdef0", SigningKey: pubKey(kb)}, 0o644); err != nil {
		t.Fatal(err)
	}
	check("another key", "not the one the agent pinned ("+agentproto.KeyID(pubKey(ka))+")")
	if err := os.WriteFile(pub, good, 0o644); err != nil {
		t.Fatal(err)
	}
	check("restored", "")
	if st, err := a.paths.ReadStatus(); err != nil || st.SigningKeyProblem != "" {
		t.Errorf("status.json after the fix: %q, %v", st.SigningKeyProblem, err)
	}
}

// TestKeyHealthSignatureStreak: pushed records failing their signature
// check make a problem after sigStreakProblem in a row; one accepted
// record ends it. A rollover error comes first: it explains the refusals.
func TestKeyHealthSignatureStreak(t *testing.T) {
	now := time.UnixMilli(1_800_000_000_000)
	ka, kx := genKey(t), genKey(t)
	a := rolloverAgent(t, pubKey(ka), now)
	for i := 0; i < sigStreakProblem; i++ {
		if p := a.signingKeyProblem(); p != "" {
			t.Fatalf("after %d refusals: %q", i, p)
		}
		r := signedRecord(t, kx, now)
		r.RequestID = r.RequestID + string(rune('a'+i))
		r.Sign(kx)
		if ack := a.acceptPush(agentproto.KeyPush{Record: r}); ack.OK {
			t.Fatal("a record of an unknown key was accepted")
		}
	}
	if p := a.signingKeyProblem(); !strings.Contains(p, "the last 3 pushed key records failed their signature check") {
		t.Errorf("after %d refusals: %q", sigStreakProblem, p)
	}
	// An unendorsed server key: the rollover's words win.
	a.rollover(agentproto.Beat{SigningKey: pubKey(kx)})
	if p := a.signingKeyProblem(); !strings.Contains(p, "cannot trust") {
		t.Errorf("with a rollover error: %q", p)
	}
	a.rollover(agentproto.Beat{SigningKey: pubKey(ka)})
	if ack := a.acceptPush(agentproto.KeyPush{Record: signedRecord(t, ka, now)}); !ack.OK {
		t.Fatalf("a good record was refused: %s", ack.Error)
	}
	if p := a.signingKeyProblem(); p != "" {
		t.Errorf("after an accepted record: %q", p)
	}
}
