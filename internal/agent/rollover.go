package agent

import (
	"bytes"
	"slices"
	"time"

	"github.com/kaginashi/kaginashi/internal/agentproto"
)

// pinnedKey is the record-signing key the agent trusts now.
func (a *Agent) pinnedKey() []byte {
	a.mu.Lock()
	defer a.mu.Unlock()
	return bytes.Clone(a.public.SigningKey)
}

// rollover adopts the server's new record-signing key from the answer to
// the hello, if the server signs with another key than the pinned one and
// the endorsement chain leads there from it. The pinned key then retires
// (accepted RetiredFor more, for records it signed before the rotation),
// as do the keys the chain passed through; identity.json is rewritten
// atomically. A chain that does not verify or does not connect changes
// nothing: the agent keeps its key, logs an error, and says so in its
// status — an unendorsed key is never accepted.
func (a *Agent) rollover(b agentproto.Beat) {
	pinned := a.pinnedKey()
	if b.SigningKey == nil || bytes.Equal(b.SigningKey, pinned) {
		a.setStatus(func(st *Status) {
			st.SigningKey, st.SigningKeyError = agentproto.KeyID(pinned), ""
		})
		return
	}
	path, err := agentproto.WalkChain(pinned, b.SigningKey, b.SigningKeyChain)
	if err != nil {
		a.log.Error("the server signs key records with a key this agent cannot trust; keeping the pinned key, so pushed keys will be refused",
			"pinned", agentproto.KeyID(pinned), "server", agentproto.KeyID(b.SigningKey), "links", len(b.SigningKeyChain), "err", err)
		a.setStatus(func(st *Status) {
			st.SigningKey = agentproto.KeyID(pinned)
			st.SigningKeyError = "the server signs with " + agentproto.KeyID(b.SigningKey) + ", which this agent cannot trust: " + err.Error()
		})
		return
	}
	serverNow := a.now().Add(time.Duration(a.skew()) * time.Millisecond)
	a.mu.Lock()
	pub := a.public
	pub.RetiredSigningKeys = retire(pub.RetiredSigningKeys, append([][]byte{pinned}, path[:len(path)-1]...), serverNow)
	pub.SigningKey = bytes.Clone(path[len(path)-1])
	err = writeJSON(a.paths.public(), pub, 0o644)
	if err == nil {
		a.public = pub
	}
	a.mu.Unlock()
	if err != nil {
		a.log.Error("persisting the new record-signing key failed; keeping the pinned key", "err", err)
		a.setStatus(func(st *Status) {
			st.SigningKey, st.SigningKeyError = agentproto.KeyID(pinned), "persisting the new signing key failed: "+err.Error()
		})
		return
	}
	a.metrics.SigningKeyRotated()
	a.log.Info("adopted the server's new record-signing key, endorsed by the pinned one",
		"old", agentproto.KeyID(pinned), "new", agentproto.KeyID(pub.SigningKey), "links", len(path))
	a.setStatus(func(st *Status) { st.SigningKey, st.SigningKeyError = agentproto.KeyID(pub.SigningKey), "" })
}

// retire adds keys to the retired list until serverNow + RetiredFor and
// drops entries whose window has passed (and repeats).
func retire(list []RetiredKey, keys [][]byte, serverNow time.Time) []RetiredKey {
	now := serverNow.UnixMilli()
	until := serverNow.Add(RetiredFor).UnixMilli()
	out := slices.DeleteFunc(slices.Clone(list), func(k RetiredKey) bool {
		if k.Until <= now {
			return true
		}
		return slices.ContainsFunc(keys, func(n []byte) bool { return bytes.Equal(n, k.Key) })
	})
	for _, k := range keys {
		out = append(out, RetiredKey{Key: bytes.Clone(k), Until: until})
	}
	return out
}
