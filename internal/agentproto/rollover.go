package agentproto

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
)

// A record-signing key rollover (`kaginashi server rotate-signing-key`)
// makes a new Ed25519 key and has the old key endorse it: the old key's
// signature over EndorsementMessage(new). The server keeps every link, so
// an agent offline for months still walks from the key it pinned at
// enrollment, link by link, to the current one. An endorsement proves
// continuity — whoever held the old key approved the new one — not who is
// speaking: the pinned TLS CA authenticates the channel.

// endorsementPrefix separates the endorsement's signed bytes from every
// other message the signing key signs (key records begin with
// "kaginashi-key-record-v1\n"), so that neither can pass for the other.
const endorsementPrefix = "kaginashi signing-key rollover v1\n"

// MaxChain bounds the links one answer carries and an agent walks.
const MaxChain = 1000

// KeyLink is one endorsement: Old signed New.
type KeyLink struct {
	Old       []byte `json:"old"` // Ed25519 public key
	New       []byte `json:"new"` // Ed25519 public key
	Signature []byte `json:"sig"` // Old's signature over EndorsementMessage(New)
	At        int64  `json:"at"`  // when the rotation happened, Unix milliseconds (informative)
}

// EndorsementMessage is what the old key signs to endorse newPub.
func EndorsementMessage(newPub []byte) []byte {
	return []byte(endorsementPrefix + base64.StdEncoding.EncodeToString(newPub))
}

// Endorse makes the link by which old endorses newPub.
func Endorse(old ed25519.PrivateKey, newPub ed25519.PublicKey, at int64) KeyLink {
	return KeyLink{
		Old: bytes.Clone(old.Public().(ed25519.PublicKey)), New: bytes.Clone(newPub),
		Signature: ed25519.Sign(old, EndorsementMessage(newPub)), At: at,
	}
}

// Verify checks the link's shape and its signature.
func (l KeyLink) Verify() error {
	if len(l.Old) != ed25519.PublicKeySize || len(l.New) != ed25519.PublicKeySize {
		return errors.New("signing-key link: a key is not an Ed25519 public key")
	}
	if len(l.Signature) != ed25519.SignatureSize || !ed25519.Verify(l.Old, EndorsementMessage(l.New), l.Signature) {
		return fmt.Errorf("signing-key link %s → %s: bad endorsement signature", KeyID(l.Old), KeyID(l.New))
	}
	return nil
}

// Errors of WalkChain.
var (
	// ErrNoLink: no link starts at the pinned key — the chain is of
	// another deployment, or the server's current key was never endorsed
	// by the pinned one.
	ErrNoLink = errors.New("no endorsement starts at the pinned signing key")
	// ErrChainEnd: the walk did not end at the key the server says is
	// current.
	ErrChainEnd = errors.New("the endorsement chain does not lead to the server's signing key")
)

// WalkChain follows links from pinned to want and returns the keys it
// passed, pinned excluded, want last (the keys the agent retires are all
// but the last). Links before the one that starts at pinned are skipped
// (an agent that did not say which key it pinned gets the whole chain);
// from there each link must start where the previous one ended, verify,
// and lead to a key not seen before (a replayed older link, or a chain
// that comes back to a retired key, is refused); the last must end at
// want. Nothing here trusts want: it is adopted only if the pinned key
// endorsed the way to it.
func WalkChain(pinned, want []byte, links []KeyLink) ([][]byte, error) {
	if len(pinned) != ed25519.PublicKeySize || len(want) != ed25519.PublicKeySize {
		return nil, errors.New("signing-key chain: a key is not an Ed25519 public key")
	}
	if bytes.Equal(pinned, want) {
		return nil, nil
	}
	if len(links) > MaxChain {
		return nil, fmt.Errorf("signing-key chain: %d links, more than %d", len(links), MaxChain)
	}
	start := -1
	for i, l := range links {
		if bytes.Equal(l.Old, pinned) {
			start = i
			break
		}
	}
	if start < 0 {
		return nil, fmt.Errorf("%w (%s)", ErrNoLink, KeyID(pinned))
	}
	seen := map[string]bool{string(pinned): true}
	cur := pinned
	var path [][]byte
	for i, l := range links[start:] {
		if !bytes.Equal(l.Old, cur) {
			return nil, fmt.Errorf("signing-key chain: link %d starts at %s, not at %s where the walk is", start+i, KeyID(l.Old), KeyID(cur))
		}
		if err := l.Verify(); err != nil {
			return nil, fmt.Errorf("signing-key chain: link %d: %w", start+i, err)
		}
		if seen[string(l.New)] {
			return nil, fmt.Errorf("signing-key chain: link %d leads back to %s, a key already passed", start+i, KeyID(l.New))
		}
		seen[string(l.New)] = true
		cur = bytes.Clone(l.New)
		path = append(path, cur)
	}
	if !bytes.Equal(cur, want) {
		return nil, fmt.Errorf("%w: it ends at %s, the server signs with %s", ErrChainEnd, KeyID(cur), KeyID(want))
	}
	return path, nil
}

// KeyID names a public key in logs and messages: "SHA256:" and the
// unpadded base64 of its SHA-256, as OpenSSH names keys.
func KeyID(pub []byte) string {
	sum := sha256.Sum256(pub)
	return "SHA256:" + base64.RawStdEncoding.EncodeToString(sum[:])
}
