package gateway

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/kaginashi/kaginashi/internal/agentproto"
	"github.com/kaginashi/kaginashi/internal/seal"
	"github.com/kaginashi/kaginashi/internal/store"
)

// signingChain is metaSigningChain's value.
type signingChain struct {
	Links []agentproto.KeyLink `json:"links"`
}

func loadChain(ctx context.Context, st store.Store) ([]agentproto.KeyLink, error) {
	v, ok, err := st.GetMeta(ctx, metaSigningChain)
	if err != nil {
		return nil, fmt.Errorf("signing key chain: %w", err)
	}
	if !ok {
		return nil, nil
	}
	return parseChain(v)
}

// parseChain reads the stored chain and checks every link, so that a
// server never hands agents a chain they would refuse.
func parseChain(v string) ([]agentproto.KeyLink, error) {
	var c signingChain
	if err := json.Unmarshal([]byte(v), &c); err != nil {
		return nil, fmt.Errorf("signing key chain: %w", err)
	}
	for i, l := range c.Links {
		if err := l.Verify(); err != nil {
			return nil, fmt.Errorf("signing key chain: link %d: %w", i, err)
		}
		if i > 0 && !bytes.Equal(l.Old, c.Links[i-1].New) {
			return nil, fmt.Errorf("signing key chain: link %d does not start where link %d ends", i, i-1)
		}
	}
	return c.Links, nil
}

// SigningPublic is the current record-signing public key.
func (k *Keys) SigningPublic() ed25519.PublicKey { return k.Signer.Public().(ed25519.PublicKey) }

// ChainFrom returns the endorsement links an agent that pinned pinned
// needs to reach the current key: nil when pinned is current; the links
// from pinned on when it is in the chain; the whole chain when pinned is
// empty (an agent that did not say) or unknown (the agent then finds no
// link from its key, and says so).
func (k *Keys) ChainFrom(pinned []byte) []agentproto.KeyLink {
	if bytes.Equal(pinned, k.SigningPublic()) || len(k.Chain) == 0 {
		return nil
	}
	links := k.Chain
	for i, l := range links {
		if bytes.Equal(l.Old, pinned) {
			links = links[i:]
			break
		}
	}
	if len(links) > agentproto.MaxChain {
		links = links[len(links)-agentproto.MaxChain:]
	}
	return links
}

// SigningRotation says what RotateSigningKey did.
type SigningRotation struct {
	// Old and New are the public keys' IDs (SHA256:...), for the
	// operator and the audit trail.
	Old, New string
	// Links is the chain's length now.
	Links int
}

// RotateSigningKey replaces the record-signing key, in one transaction: a
// new Ed25519 key, sealed with the master key like the old one, and the
// old key's endorsement of it appended to the chain. The old private key
// is gone afterwards (its endorsement is all that remains of it). The
// caller holds the maintenance lock: no server runs, so none keeps
// signing with the old key.
func RotateSigningKey(ctx context.Context, m store.Maintenance, sealer *seal.Sealer, now time.Time) (SigningRotation, error) {
	var res SigningRotation
	err := m.UpdateMeta(ctx, []string{metaSigningKey, metaSigningChain}, func(cur map[string]string) (map[string]string, []string, error) {
		val, ok := cur[metaSigningKey]
		if !ok {
			return nil, nil, errors.New("this store has no record-signing key yet: start the server once first")
		}
		old, err := openSigningKey(sealer, val)
		if err != nil {
			return nil, nil, err
		}
		var chain []agentproto.KeyLink
		if v, ok := cur[metaSigningChain]; ok {
			if chain, err = parseChain(v); err != nil {
				return nil, nil, err
			}
		}
		oldPub := old.Public().(ed25519.PublicKey)
		if n := len(chain); n > 0 && !bytes.Equal(chain[n-1].New, oldPub) {
			return nil, nil, errors.New("the endorsement chain does not end at the stored signing key; the store is inconsistent, nothing was changed")
		}
		newPub, newPriv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, nil, err
		}
		chain = append(chain, agentproto.Endorse(old, newPub, now.UnixMilli()))
		chainJSON, err := json.Marshal(signingChain{Links: chain})
		if err != nil {
			return nil, nil, err
		}
		sealed, err := sealer.Seal(newPriv.Seed(), metaSigningKey)
		if err != nil {
			return nil, nil, err
		}
		res = SigningRotation{Old: agentproto.KeyID(oldPub), New: agentproto.KeyID(newPub), Links: len(chain)}
		return map[string]string{
			metaSigningKey:   base64.StdEncoding.EncodeToString(sealed),
			metaSigningChain: string(chainJSON),
		}, nil, nil
	})
	if err != nil {
		return SigningRotation{}, err
	}
	return res, nil
}

// openSigningKey opens the stored (sealed, base64) signing key.
func openSigningKey(sealer *seal.Sealer, val string) (ed25519.PrivateKey, error) {
	ct, err := base64.StdEncoding.DecodeString(val)
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	seed, err := sealer.Open(ct, metaSigningKey)
	if err != nil || len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("signing key: cannot open it with this master key: %v", err)
	}
	return ed25519.NewKeyFromSeed(seed), nil
}

// helloAnswer is the Beat that answers an agent's Hello: with the current
// signing key and the links to it when the agent pinned another one (or,
// after a rotation, did not say which: an older agent, which ignores them).
func (g *Gateway) helloAnswer(id string, hello agentproto.Hello, now time.Time) agentproto.Beat {
	b := agentproto.Beat{ServerTime: now.UnixMilli(), Echo: hello.LocalTime}
	if g.keys == nil {
		return b // a gateway without keys (session tests) signs nothing
	}
	cur := g.keys.SigningPublic()
	switch {
	case bytes.Equal(hello.SigningKey, cur):
		return b
	case hello.SigningKey == nil && len(g.keys.Chain) == 0:
		return b // never rotated: nothing an older agent could need
	}
	b.SigningKey, b.SigningKeyChain = cur, g.keys.ChainFrom(hello.SigningKey)
	switch {
	case hello.SigningKey == nil:
	case len(b.SigningKeyChain) > 0 && bytes.Equal(b.SigningKeyChain[0].Old, hello.SigningKey):
		g.log.Info("agent pinned an earlier record-signing key; sending the endorsements to the current one",
			"instance", id, "pinned", agentproto.KeyID(hello.SigningKey), "current", agentproto.KeyID(cur), "links", len(b.SigningKeyChain))
	default:
		// The agent will refuse the current key, and so every push:
		// the operator must re-enrol the host.
		g.log.Warn("agent pinned a record-signing key that no endorsement leads from; it will refuse pushed keys until it enrols again",
			"instance", id, "pinned", agentproto.KeyID(hello.SigningKey), "current", agentproto.KeyID(cur))
	}
	return b
}
