package gateway

import "context"

// SessionHook learns of agent sessions starting and ending in this
// process, so that other server replicas can find the one holding an
// agent (internal/peer records them in the store).
type SessionHook interface {
	// SessionStarted is called once a session is registered here, before
	// the agent gets the answer to its hello. Its result is handed back
	// to SessionEnded.
	SessionStarted(ctx context.Context, instanceID string) int64
	// SessionEnded is called when a session that was still the
	// instance's current one here ends.
	SessionEnded(ctx context.Context, instanceID string, claim int64)
}

// ReplacedHook, when the session hook also implements it, learns of the
// re-enrollments made here, so that the replica holding the replaced
// identity's session ends it (endSession ends it only here).
type ReplacedHook interface {
	// IdentityReplaced is called, in the background, after a
	// re-enrollment of the instance stored its new agent key.
	IdentityReplaced(ctx context.Context, instanceID string)
}

// SetSessionHook installs h; call it before the first session.
func (g *Gateway) SetSessionHook(h SessionHook) { g.hook = h }

// Revoke withdraws a key record from the instance's agent, if its session
// is here, in the background (see revoke). Another replica asks for it
// when a push it forwarded here ran out of time on its side.
func (g *Gateway) Revoke(instanceID, requestID string) bool {
	g.mu.Lock()
	s := g.sessions[instanceID]
	g.mu.Unlock()
	if s == nil {
		return false
	}
	go g.revoke(s, instanceID, requestID)
	return true
}
