package agent

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kaginashi/kaginashi/internal/agentproto"
	"github.com/kaginashi/kaginashi/internal/keyrecord"
)

func genKey(t *testing.T) ed25519.PrivateKey {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func pubKey(k ed25519.PrivateKey) []byte { return k.Public().(ed25519.PublicKey) }

// rolloverAgent is an enrolled agent's state on disk, pinning pinned, at a
// fixed clock.
func rolloverAgent(t *testing.T, pinned []byte, now time.Time) *Agent {
	t.Helper()
	p := Paths{Dir: filepath.Join(t.TempDir(), "agent")}
	if err := p.ensureDirs(); err != nil {
		t.Fatal(err)
	}
	if err := writeJSON(p.config(), Config{Server: "https://x", InstanceID: "i-0123456789abcdef0"}, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := writeJSON(p.public(), Public{InstanceID: "i-0123456789abcdef0", SigningKey: pinned, ExpiryOption: true}, 0o644); err != nil {
		t.Fatal(err)
	}
	a, err := New(p, Options{Log: slog.New(slog.DiscardHandler), Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func signedRecord(t *testing.T, k ed25519.PrivateKey, now time.Time) keyrecord.Record {
	t.Helper()
	r := keyrecord.Record{RequestID: fmt.Sprintf("req-%x", pubKey(k)[:4]), InstanceID: "i-0123456789abcdef0", OSUser: "alice",
		PublicKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl", Fingerprint: "SHA256:" + strings.Repeat("A", 43),
		CallerARN: "arn:aws:iam::123456789012:user/alice", IssuedAt: now.Unix(), ExpiresAt: now.Unix() + 60}
	if err := r.Sign(k); err != nil {
		t.Fatal(err)
	}
	return r
}

// TestRolloverAdoptsEndorsedKey: two rotations while the agent was away;
// it walks both, pins the newest key, retires the others for RetiredFor,
// accepts records of the new key and (within the window) of the old one,
// and keeps identity.json's other fields.
func TestRolloverAdoptsEndorsedKey(t *testing.T) {
	now := time.UnixMilli(1_800_000_000_000)
	ka, kb, kc := genKey(t), genKey(t), genKey(t)
	links := []agentproto.KeyLink{agentproto.Endorse(ka, pubKey(kb), 1), agentproto.Endorse(kb, pubKey(kc), 2)}
	a := rolloverAgent(t, pubKey(ka), now)
	a.rollover(agentproto.Beat{SigningKey: pubKey(kc), SigningKeyChain: links})

	pub, err := a.paths.LoadPublic()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(pub.SigningKey, pubKey(kc)) {
		t.Fatalf("identity.json pins %s, want the newest key", agentproto.KeyID(pub.SigningKey))
	}
	if !pub.ExpiryOption || pub.InstanceID != "i-0123456789abcdef0" {
		t.Errorf("identity.json lost fields: %+v", pub)
	}
	until := now.Add(RetiredFor).UnixMilli()
	if len(pub.RetiredSigningKeys) != 2 || !bytes.Equal(pub.RetiredSigningKeys[0].Key, pubKey(ka)) || !bytes.Equal(pub.RetiredSigningKeys[1].Key, pubKey(kb)) ||
		pub.RetiredSigningKeys[0].Until != until || pub.RetiredSigningKeys[1].Until != until {
		t.Fatalf("retired keys %+v, want A and B until %d", pub.RetiredSigningKeys, until)
	}
	if st := a.status; st.SigningKeyError != "" || st.SigningKey != agentproto.KeyID(pubKey(kc)) {
		t.Errorf("status %+v", st)
	}
	// The daemon takes records of the new key and, for now, the old.
	for _, k := range []ed25519.PrivateKey{kc, ka} {
		if err := a.accept(signedRecord(t, k, now)); err != nil {
			t.Errorf("record of %s refused: %v", agentproto.KeyID(pubKey(k)), err)
		}
	}
	if err := a.accept(signedRecord(t, genKey(t), now)); err == nil {
		t.Error("a record signed by a random key was accepted")
	}
	// So does the AuthorizedKeysCommand's reading of identity.json, until
	// the window ends.
	rec := signedRecord(t, ka, now.Add(RetiredFor))
	if err := pub.VerifyRecord(&rec, pub.InstanceID, "alice", now.Add(RetiredFor-time.Second)); err != nil {
		t.Errorf("a retired key's record inside the window: %v", err)
	}
	if err := pub.VerifyRecord(&rec, pub.InstanceID, "alice", now.Add(RetiredFor)); err == nil {
		t.Error("a retired key's record was accepted after the window")
	}
	// The next rotation drops the expired entries.
	kd := genKey(t)
	a.now = func() time.Time { return now.Add(RetiredFor + time.Second) }
	a.rollover(agentproto.Beat{SigningKey: pubKey(kd), SigningKeyChain: []agentproto.KeyLink{agentproto.Endorse(kc, pubKey(kd), 3)}})
	pub, _ = a.paths.LoadPublic()
	if !bytes.Equal(pub.SigningKey, pubKey(kd)) || len(pub.RetiredSigningKeys) != 1 || !bytes.Equal(pub.RetiredSigningKeys[0].Key, pubKey(kc)) {
		t.Fatalf("after a third rotation: %+v", pub)
	}
}

// TestRolloverRefusesUnendorsedKey: a chain that does not lead from the
// pinned key changes nothing on disk, and the status says why.
func TestRolloverRefusesUnendorsedKey(t *testing.T) {
	now := time.UnixMilli(1_800_000_000_000)
	ka, kb, evil := genKey(t), genKey(t), genKey(t)
	for name, beat := range map[string]agentproto.Beat{
		"no chain":             {SigningKey: pubKey(evil)},
		"self-endorsed":        {SigningKey: pubKey(evil), SigningKeyChain: []agentproto.KeyLink{agentproto.Endorse(evil, pubKey(evil), 1)}},
		"forged endorsement":   {SigningKey: pubKey(evil), SigningKeyChain: []agentproto.KeyLink{{Old: pubKey(ka), New: pubKey(evil), Signature: agentproto.Endorse(evil, pubKey(evil), 1).Signature}}},
		"good link, wrong end": {SigningKey: pubKey(evil), SigningKeyChain: []agentproto.KeyLink{agentproto.Endorse(ka, pubKey(kb), 1)}},
	} {
		t.Run(name, func(t *testing.T) {
			a := rolloverAgent(t, pubKey(ka), now)
			a.rollover(beat)
			pub, err := a.paths.LoadPublic()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(pub.SigningKey, pubKey(ka)) || len(pub.RetiredSigningKeys) != 0 {
				t.Fatalf("identity.json changed: %+v", pub)
			}
			if a.status.SigningKeyError == "" {
				t.Error("the status does not report the refused key")
			}
			if err := a.accept(signedRecord(t, evil, now)); err == nil {
				t.Error("a record of the refused key was accepted")
			}
		})
	}
}
