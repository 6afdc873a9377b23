package gateway

import (
	"context"
	"errors"
	"fmt"

	"github.com/kaginashi/kaginashi/internal/store"
)

// Deregistration (kaginashi:DeregisterInstance): the API deletes the
// instance from the store, which revokes it — HandleConnect refuses its
// agent from then on — and then ends its session wherever it is (here:
// EndSession; on another replica: peer.Router.EndSession asks the holder,
// which calls EndSession there).
//
// A session's own writes cannot put the instance back, whenever the
// delete lands: they are updates of the row, conditional on the agent
// key (writeFacts: store.UpdateAgentFacts; the batched TouchInstances;
// SetAgentState at the end), never inserts. The same condition keeps a
// session whose identity a re-enrollment replaced from writing its old
// facts over the new agent's. Should the replica that deregistered the
// instance not reach this one, the next heartbeat batch ends the session:
// TouchInstances answers the agents it found no longer speaking for their
// instance (flushSeen).

// errDeregistered ends a session whose instance was deregistered.
var errDeregistered = errors.New("the instance was deregistered; its agent must enroll again")

// errReplaced ends a session whose identity a re-enrollment replaced.
var errReplaced = errors.New("a new enrollment replaced this agent's identity")

// EndSession ends the session of a deregistered instance's agent here,
// whatever key it connected with, and deletes the instance again should
// anything have put it back meanwhile (no write of the gateway can: the
// sessions' are conditional updates, a re-enrollment's ReplaceInstance
// too; this stays as a second line). ended says there was a session. Call
// it after the instance is deleted from the store.
func (g *Gateway) EndSession(ctx context.Context, id string) (ended bool, err error) {
	g.mu.Lock()
	s := g.sessions[id]
	// Withdrawals still owed to it are moot: it is not coming back.
	delete(g.withdrawals, id)
	g.mu.Unlock()
	if s == nil {
		return false, nil
	}
	g.log.Info("ending the session of a deregistered instance's agent", "instance", id)
	s.mux.Close()
	if err := g.store.DeleteInstance(ctx, id); err != nil && !errors.Is(err, store.ErrNotFound) {
		return true, fmt.Errorf("deleting deregistered instance %s again: %w", id, err)
	}
	return true, nil
}

// EndReplacedSession ends the session of an instance's agent here if the
// key it connected with is no longer the instance's (a re-enrollment,
// here or on another replica, replaced it; or the instance is gone).
// The store decides, not the caller: a later enrollment's agent may be
// the one connected here by now, and its session must stay. ended says a
// session was ended.
func (g *Gateway) EndReplacedSession(ctx context.Context, id string) (ended bool, err error) {
	g.mu.Lock()
	s := g.sessions[id]
	g.mu.Unlock()
	if s == nil {
		return false, nil
	}
	in, err := g.store.GetInstance(ctx, id)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return false, fmt.Errorf("reading instance %s: %w", id, err)
	}
	if err == nil && in.AgentKey == s.agentKey {
		return false, nil
	}
	g.log.Info("ended the session of an agent whose identity a new enrollment replaced", "instance", id)
	s.mux.Close()
	return true, nil
}

// writeFacts writes a session's copy of its instance — the agent's facts,
// state and last seen — while the instance is still its agent's
// (store.UpdateAgentFacts). When it is not, it reports why: the instance
// deregistered (errDeregistered) or its identity replaced (errReplaced);
// that look-up runs only then, so a write costs one statement.
func (g *Gateway) writeFacts(ctx context.Context, s *session, in *store.Instance) error {
	w := *in
	w.AgentKey = s.agentKey
	err := g.store.UpdateAgentFacts(ctx, w)
	if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	// Either way the session no longer speaks for the instance; the
	// look-up only names the reason (a failed one: the more common).
	if _, gerr := g.store.GetInstance(ctx, in.ID); errors.Is(gerr, store.ErrNotFound) {
		return errDeregistered
	}
	return errReplaced
}
