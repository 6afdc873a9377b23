package gateway

import (
	"errors"
	"net"
	"testing"
	"time"

	"github.com/kaginashi/kaginashi/internal/agentproto"
	"github.com/kaginashi/kaginashi/internal/store"
)

func wantGone(t *testing.T, st store.Store, when string) {
	t.Helper()
	if _, err := st.GetInstance(t.Context(), testID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("%s: GetInstance = %v, want ErrNotFound (the instance came back)", when, err)
	}
}

// EndSession ends the session of a deregistered instance's agent, and
// the session's end (which marks a host stopped) does not bring the
// instance back.
func TestEndSessionEndsTheSession(t *testing.T) {
	g, st := newTestGateway(t)
	connect(t, g, st, 0, testInventory)
	if err := st.DeleteInstance(t.Context(), testID); err != nil {
		t.Fatal(err)
	}
	ended, err := g.EndSession(t.Context(), testID)
	if err != nil || !ended {
		t.Fatalf("EndSession = %v, %v; want true, nil", ended, err)
	}
	waitFor(t, "the session to end", func() bool { return !g.Connected(testID) })
	time.Sleep(100 * time.Millisecond) // the session's last writes, and a sweep
	wantGone(t, st, "after the session ended")
	if ended, err := g.EndSession(t.Context(), testID); err != nil || ended {
		t.Fatalf("EndSession with no session = %v, %v; want false, nil", ended, err)
	}
}

// A write that put the instance back after the API's delete (an
// enrollment with the old certificate that read it before: PutInstance
// upserts) is undone by EndSession's second delete.
func TestEndSessionDeletesWhatTheSessionPutBack(t *testing.T) {
	g, st := newTestGateway(t)
	connect(t, g, st, 0, testInventory)
	in := instance(t, st)
	if err := st.DeleteInstance(t.Context(), testID); err != nil {
		t.Fatal(err)
	}
	if err := st.PutInstance(t.Context(), in); err != nil { // the late write
		t.Fatal(err)
	}
	if ended, err := g.EndSession(t.Context(), testID); err != nil || !ended {
		t.Fatalf("EndSession = %v, %v", ended, err)
	}
	wantGone(t, st, "after EndSession")
}

// An agent whose connection passed HandleConnect before the instance was
// deregistered, and which says hello after, does not put it back, and is
// not registered as connected.
func TestHelloAfterDeregistration(t *testing.T) {
	g, st := newTestGateway(t)
	in := instance(t, st) // as HandleConnect read it
	server, client := net.Pipe()
	if err := g.startSession(t.Context(), server, nil, testID, in, nil); err != nil {
		t.Fatal(err)
	}
	if err := st.DeleteInstance(t.Context(), testID); err != nil {
		t.Fatal(err)
	}
	if b, err := agentHello(t, client, testInventory); err == nil && b.Error == "" {
		t.Error("the hello of a deregistered instance's agent was answered as a connection")
	}
	waitFor(t, "the session to end", func() bool { return !g.Connected(testID) })
	wantGone(t, st, "after the hello")
}

// Deregistered through a replica that could not reach this one: the
// session's next inventory finds the instance gone, ends the session, and
// does not put the instance back.
func TestInventoryAfterDeregistration(t *testing.T) {
	g, st := newTestGateway(t)
	a := connect(t, g, st, 0, testInventory)
	if err := st.DeleteInstance(t.Context(), testID); err != nil {
		t.Fatal(err)
	}
	inv := testInventory
	inv.PrivateIP = "10.9.9.9" // a change: written at once
	// The session may end (the point) before the agent's write returns.
	_ = a.c.Send(agentproto.Heartbeat{LocalTime: time.Now().UnixMilli(), Inventory: &inv})
	var b agentproto.Beat
	_ = a.c.Recv(&b)
	waitFor(t, "the session to end", func() bool { return !g.Connected(testID) })
	wantGone(t, st, "after the inventory")
}

// Deregistered through a replica that could not reach this one, and the
// agent reports nothing new: its heartbeats alone end the session, at the
// next batch (TouchInstances answers it stale), without putting the
// instance back.
func TestHeartbeatAfterDeregistration(t *testing.T) {
	g, st := newTestGateway(t)
	a := connect(t, g, st, 0, testInventory)
	if err := st.DeleteInstance(t.Context(), testID); err != nil {
		t.Fatal(err)
	}
	heartbeatUntilEnded(t, g, a)
	wantGone(t, st, "after the heartbeats")
}

// A session whose identity a re-enrollment elsewhere replaced ends at the
// next heartbeat batch too; the instance keeps the new agent's key.
func TestHeartbeatAfterReplacement(t *testing.T) {
	g, st := newTestGateway(t)
	a := connect(t, g, st, 0, testInventory)
	in := instance(t, st)
	in.AgentKey = "SHA256:new"
	if err := st.Store.PutInstance(t.Context(), in); err != nil {
		t.Fatal(err)
	}
	heartbeatUntilEnded(t, g, a)
	if got := instance(t, st); got.AgentKey != "SHA256:new" {
		t.Fatalf("the instance's agent key is %q after the old session ended, want SHA256:new", got.AgentKey)
	}
}

// heartbeatUntilEnded sends heartbeats without inventory (only the
// sweep's batch sees them) until the session ends; it fails the test if
// it has not within 25 sweeps, well before IdleTimeout would matter (the
// heartbeats keep the session from idling out).
func heartbeatUntilEnded(t *testing.T, g *Gateway, a *testAgent) {
	t.Helper()
	deadline := time.Now().Add(25 * g.SeenEvery)
	for g.Connected(testID) {
		if time.Now().After(deadline) {
			t.Fatalf("the session is still connected after %v of heartbeats", 25*g.SeenEvery)
		}
		if a.c.Send(agentproto.Heartbeat{LocalTime: time.Now().UnixMilli()}) == nil {
			var b agentproto.Beat
			_ = a.c.Recv(&b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
