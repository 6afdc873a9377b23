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
// A session's own writes must not put the instance back. The hello's
// write and an inventory's are read-modify-writes (putHello,
// putInventory) that find a deleted instance gone; what they cannot see
// is a delete landing between their read and their write. For that, the
// session is marked deregistered before EndSession deletes the row once
// more, and each of those writes checks the mark after it lands: either
// the write came first (EndSession's delete removes it) or the mark was
// set before it (the writer deletes it itself). The other writes of a
// session (TouchInstances, SetInstanceState) only update rows that exist.

// errDeregistered ends a session whose instance was deregistered.
var errDeregistered = errors.New("the instance was deregistered; its agent must enroll again")

// EndSession ends the session of a deregistered instance's agent here,
// whatever key it connected with, and deletes the instance again should
// the session's own write have put it back meanwhile. ended says there
// was a session. Call it after the instance is deleted from the store.
func (g *Gateway) EndSession(ctx context.Context, id string) (ended bool, err error) {
	g.mu.Lock()
	s := g.sessions[id]
	if s != nil {
		s.deregistered = true
	}
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

// wasDeregistered reports whether EndSession marked the session.
func (g *Gateway) wasDeregistered(s *session) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return s.deregistered
}

// undoIfDeregistered deletes an instance a session's write may have put
// back after its deregistration (see the comment at the top), and reports
// whether it did.
func (g *Gateway) undoIfDeregistered(ctx context.Context, s *session) bool {
	if !g.wasDeregistered(s) {
		return false
	}
	if err := g.store.DeleteInstance(ctx, s.instanceID); err != nil && !errors.Is(err, store.ErrNotFound) {
		g.log.Error("deleting a deregistered instance that its agent's session wrote back failed", "instance", s.instanceID, "err", err)
	}
	return true
}

// putHello records a connected agent's hello: its facts over the instance
// as the store has it now. An instance deregistered since HandleConnect
// read it is not put back (its session ends: errDeregistered), nor is one
// whose identity a new enrollment replaced meanwhile; and the tags are the
// store's, not those HandleConnect read.
func (g *Gateway) putHello(ctx context.Context, s *session, in *store.Instance) error {
	cur, err := g.store.GetInstance(ctx, in.ID)
	if errors.Is(err, store.ErrNotFound) {
		return errDeregistered
	}
	if err != nil {
		return err
	}
	if cur.AgentKey != s.agentKey {
		return errors.New("a new enrollment replaced this agent's identity")
	}
	in.Tags = cur.Tags
	if err := g.store.PutInstance(ctx, *in); err != nil {
		return err
	}
	if g.undoIfDeregistered(ctx, s) {
		return errDeregistered
	}
	return nil
}
