package gateway

import (
	"bytes"
	"crypto/ed25519"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/kaginashi/kaginashi/internal/agentproto"
	"github.com/kaginashi/kaginashi/internal/keyrecord"
	"github.com/kaginashi/kaginashi/internal/seal"
	"github.com/kaginashi/kaginashi/internal/store/sqlite"
)

// TestRotateSigningKey: two rotations on a real store; a server started
// afterwards (any replica: the key is read from the store) signs with the
// newest key, and hands an agent pinned at the first key the two links,
// one pinned at the second only the last link, one pinned at the current
// nothing.
func TestRotateSigningKey(t *testing.T) {
	ctx := t.Context()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "k.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	sealer, err := seal.New(bytes.Repeat([]byte{7}, seal.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	k0, err := LoadKeys(ctx, db, sealer, now)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := RotateSigningKey(ctx, db, mustSealer(t, 8), now); err == nil {
		t.Fatal("a rotation with the wrong master key succeeded")
	}
	r1, err := RotateSigningKey(ctx, db, sealer, now)
	if err != nil {
		t.Fatal(err)
	}
	k1, err := LoadKeys(ctx, db, sealer, now)
	if err != nil {
		t.Fatal(err)
	}
	if r1.Old != agentproto.KeyID(k0.SigningPublic()) || r1.New != agentproto.KeyID(k1.SigningPublic()) || r1.Links != 1 {
		t.Fatalf("rotation %+v; keys %s → %s", r1, agentproto.KeyID(k0.SigningPublic()), agentproto.KeyID(k1.SigningPublic()))
	}
	if _, err := RotateSigningKey(ctx, db, sealer, now); err != nil {
		t.Fatal(err)
	}
	k2, err := LoadKeys(ctx, db, sealer, now)
	if err != nil {
		t.Fatal(err)
	}
	// A second replica reading the same store agrees.
	k2b, err := LoadKeys(ctx, db, sealer, now)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(k2.SigningPublic(), k2b.SigningPublic()) || bytes.Equal(k2.SigningPublic(), k1.SigningPublic()) {
		t.Fatal("replicas disagree on the signing key, or it did not change")
	}
	// The CA is untouched by a signing-key rotation.
	if !bytes.Equal(k0.CA.Raw, k2.CA.Raw) {
		t.Error("the agent CA changed")
	}

	g := New(db, k2, nil, slog.New(slog.DiscardHandler), time.Now)
	defer g.Close()
	for _, tc := range []struct {
		name   string
		pinned []byte
		links  int
		walk   bool
	}{
		{"pinned the first key", k0.SigningPublic(), 2, true},
		{"pinned the second key", k1.SigningPublic(), 1, true},
		{"an older agent (no key said)", nil, 2, false},
		{"a key of another deployment", ed25519.PublicKey(bytes.Repeat([]byte{1}, 32)), 2, false},
	} {
		b := g.helloAnswer(testID, agentproto.Hello{InstanceID: testID, SigningKey: tc.pinned}, now)
		if !bytes.Equal(b.SigningKey, k2.SigningPublic()) || len(b.SigningKeyChain) != tc.links {
			t.Errorf("%s: answer carries key %x and %d links, want the current key and %d", tc.name, b.SigningKey, len(b.SigningKeyChain), tc.links)
			continue
		}
		if tc.walk {
			if _, err := agentproto.WalkChain(tc.pinned, b.SigningKey, b.SigningKeyChain); err != nil {
				t.Errorf("%s: the agent's walk fails: %v", tc.name, err)
			}
		}
	}
	if b := g.helloAnswer(testID, agentproto.Hello{InstanceID: testID, SigningKey: k2.SigningPublic()}, now); b.SigningKey != nil || b.SigningKeyChain != nil {
		t.Errorf("an agent on the current key is sent %+v", b)
	}
	// Never rotated: an older agent gets nothing extra.
	if b := New(db, k0, nil, slog.New(slog.DiscardHandler), time.Now).helloAnswer(testID, agentproto.Hello{}, now); b.SigningKey != nil {
		t.Errorf("before any rotation, an older agent is sent %+v", b)
	}

	// Records are signed with the newest key only.
	rec := keyrecord.Record{RequestID: "req-1", InstanceID: testID, OSUser: "alice",
		PublicKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl", Fingerprint: "SHA256:" + string(bytes.Repeat([]byte("A"), 43)),
		CallerARN: "arn:aws:iam::123456789012:user/alice", IssuedAt: now.Unix(), ExpiresAt: now.Unix() + 60}
	if err := rec.Sign(k2.Signer); err != nil {
		t.Fatal(err)
	}
	if rec.Verify(k1.SigningPublic(), testID, "", now) == nil {
		t.Error("a record of the new key verifies with the old")
	}

	// A tampered chain in the store stops the server's start.
	v, _, _ := db.GetMeta(ctx, metaSigningChain)
	if err := db.UpdateMeta(ctx, []string{metaSigningChain}, func(map[string]string) (map[string]string, []string, error) {
		return map[string]string{metaSigningChain: string(bytes.Replace([]byte(v), []byte(`"sig":"`), []byte(`"sig":"AAAA`), 1))}, nil, nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadKeys(ctx, db, sealer, now); err == nil {
		t.Error("a server started with a tampered endorsement chain")
	}
}

func mustSealer(t *testing.T, b byte) *seal.Sealer {
	t.Helper()
	s, err := seal.New(bytes.Repeat([]byte{b}, seal.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	return s
}
