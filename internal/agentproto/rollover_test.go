package agentproto

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"testing"
)

func newKey(t testing.TB) ed25519.PrivateKey {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func pubOf(k ed25519.PrivateKey) ed25519.PublicKey { return k.Public().(ed25519.PublicKey) }

// rotations returns n+1 keys and the n links A→B→C...
func rotations(t testing.TB, n int) ([]ed25519.PrivateKey, []KeyLink) {
	keys := []ed25519.PrivateKey{newKey(t)}
	var links []KeyLink
	for i := 0; i < n; i++ {
		next := newKey(t)
		links = append(links, Endorse(keys[i], pubOf(next), int64(i)))
		keys = append(keys, next)
	}
	return keys, links
}

func TestWalkChainTwoRotations(t *testing.T) {
	keys, links := rotations(t, 2)
	a, b, c := pubOf(keys[0]), pubOf(keys[1]), pubOf(keys[2])
	path, err := WalkChain(a, c, links)
	if err != nil {
		t.Fatal(err)
	}
	if len(path) != 2 || !bytes.Equal(path[0], b) || !bytes.Equal(path[1], c) {
		t.Fatalf("path %x, want [B C]", path)
	}
	// From the middle: the whole chain is given (an agent that did not
	// say its key), the walk starts at its own.
	path, err = WalkChain(b, c, links)
	if err != nil || len(path) != 1 || !bytes.Equal(path[0], c) {
		t.Fatalf("from B: %x, %v; want [C]", path, err)
	}
	// Pinned is current: nothing to walk, whatever the links.
	if path, err := WalkChain(c, c, nil); err != nil || path != nil {
		t.Fatalf("current key: %x, %v", path, err)
	}
	// Through JSON, as the Beat carries it.
	raw, err := json.Marshal(Beat{SigningKey: c, SigningKeyChain: links})
	if err != nil {
		t.Fatal(err)
	}
	var got Beat
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatal(err)
	}
	if _, err := WalkChain(a, got.SigningKey, got.SigningKeyChain); err != nil {
		t.Fatalf("after a JSON round trip: %v", err)
	}
}

func TestWalkChainRefuses(t *testing.T) {
	keys, links := rotations(t, 2)
	a, b, c := pubOf(keys[0]), pubOf(keys[1]), pubOf(keys[2])
	stranger := newKey(t)
	tests := []struct {
		name   string
		pinned []byte
		want   []byte
		links  []KeyLink
		is     error
	}{
		{"no links", a, c, nil, ErrNoLink},
		{"unrelated pinned key", pubOf(newKey(t)), c, links, ErrNoLink},
		{"chain ends elsewhere", a, pubOf(stranger), links, ErrChainEnd},
		{"stops short", a, c, links[:1], ErrChainEnd},
		{"a link signed by a stranger", a, pubOf(stranger), []KeyLink{links[0], Endorse(stranger, pubOf(stranger), 0)}, nil},
		{"a link whose Old is the walk's key but signed by another", a, pubOf(stranger),
			[]KeyLink{{Old: a, New: pubOf(stranger), Signature: Endorse(stranger, pubOf(stranger), 0).Signature}}, nil},
		{"broken link (tampered New)", a, c, []KeyLink{links[0], {Old: b, New: pubOf(stranger), Signature: links[1].Signature}}, nil},
		{"gap", a, c, []KeyLink{links[0], Endorse(stranger, c, 0)}, nil},
		{"replayed older link after the current", a, b, []KeyLink{links[0], links[1], links[0]}, nil},
		{"back to a retired key", a, b, []KeyLink{links[0], Endorse(keys[1], a, 0), links[0]}, nil},
		{"short key", a[:31], c, links, nil},
		{"short signature", a, b, []KeyLink{{Old: a, New: b, Signature: links[0].Signature[:63]}}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path, err := WalkChain(tc.pinned, tc.want, tc.links)
			if err == nil {
				t.Fatalf("accepted, path %x", path)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Fatalf("err %v, want %v", err, tc.is)
			}
		})
	}
	// The endorsement is domain-separated: a signature over the raw new
	// key (or a key record's bytes) is no endorsement.
	raw := KeyLink{Old: a, New: b, Signature: ed25519.Sign(keys[0], b)}
	if raw.Verify() == nil {
		t.Fatal("a signature over the bare key passed as an endorsement")
	}
}

// FuzzBeatChain: whatever a server sends in the answer to a hello, the
// agent's decoding and walk never panic, and a key is adopted only if
// every link on the way verifies from the pinned key.
func FuzzBeatChain(f *testing.F) {
	keys, links := rotations(f, 2)
	a := pubOf(keys[0])
	good, _ := json.Marshal(Beat{ServerTime: 1, SigningKey: pubOf(keys[2]), SigningKeyChain: links})
	f.Add(good)
	f.Add([]byte(`{"serverTime":1,"signingKey":"AAAA","signingKeyChain":[{"old":"AA==","new":"","sig":null}]}`))
	f.Add([]byte(`{"signingKeyChain":null}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var b Beat
		if json.Unmarshal(data, &b) != nil {
			return
		}
		path, err := WalkChain(a, b.SigningKey, b.SigningKeyChain)
		if err != nil {
			return
		}
		if len(path) == 0 {
			if !bytes.Equal(b.SigningKey, a) {
				t.Fatal("an empty walk to another key")
			}
			return
		}
		// Re-check independently: a chain of verified links from a.
		cur := []byte(a)
		i := 0
		for ; i < len(b.SigningKeyChain) && !bytes.Equal(b.SigningKeyChain[i].Old, cur); i++ {
		}
		for _, l := range b.SigningKeyChain[i:] {
			if !bytes.Equal(l.Old, cur) || !ed25519.Verify(l.Old, EndorsementMessage(l.New), l.Signature) {
				t.Fatal("accepted a chain with a link that does not verify or connect")
			}
			cur = l.New
		}
		if !bytes.Equal(cur, b.SigningKey) || !bytes.Equal(path[len(path)-1], cur) {
			t.Fatal("accepted a chain that does not end at the server's key")
		}
	})
}
