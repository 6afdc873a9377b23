package gateway

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/kaginashi/kaginashi/internal/agentproto"
	"github.com/kaginashi/kaginashi/internal/store"
)

// interleaveStore runs a change (a re-enrollment, a deregistration) at the
// worst moment for a session's write: right after the session reads the
// instance, or right before it writes it. A read-then-write (read, check
// the key, write the whole row back) undoes the change; a conditional
// write does not.
type interleaveStore struct {
	store.Store
	mu     sync.Mutex
	change func()
}

func (s *interleaveStore) arm(f func()) {
	s.mu.Lock()
	s.change = f
	s.mu.Unlock()
}

func (s *interleaveStore) fire() {
	s.mu.Lock()
	f := s.change
	s.change = nil
	s.mu.Unlock()
	if f != nil {
		f()
	}
}

func (s *interleaveStore) GetInstance(ctx context.Context, id string) (store.Instance, error) {
	in, err := s.Store.GetInstance(ctx, id)
	s.fire()
	return in, err
}

func (s *interleaveStore) UpdateAgentFacts(ctx context.Context, in store.Instance) error {
	s.fire()
	return s.Store.UpdateAgentFacts(ctx, in)
}

func newInterleavedGateway(t *testing.T) (*Gateway, *countingStore, *interleaveStore) {
	t.Helper()
	g, st := newTestGateway(t)
	is := &interleaveStore{Store: st}
	g.store = is
	return g, st, is
}

// changed is the inventory of an agent whose address changed: written at
// once.
func changed() *agentproto.Inventory {
	inv := testInventory
	inv.PrivateIP = "10.9.9.9"
	return &inv
}

func wantReenrolled(t *testing.T, st store.Store, when string) {
	t.Helper()
	got := instance(t, st)
	if got.AgentKey != "SHA256:new" || len(got.Tags) != 1 || got.Tags[0].Value != "sandbox" || got.PrivateIP == "10.9.9.9" {
		t.Errorf("%s: key %q, tags %v, private IP %q; want the enrollment's SHA256:new, env=sandbox and not the replaced agent's 10.9.9.9",
			when, got.AgentKey, got.Tags, got.PrivateIP)
	}
}

// A re-enrollment landing between an inventory write's read and its write
// (through another replica, or here while the write runs) is not undone:
// the replaced agent's key, tags and facts do not come back, and its
// session ends.
func TestInventoryRacingReenrollment(t *testing.T) {
	g, st, is := newInterleavedGateway(t)
	a := connect(t, g, st, 0, testInventory)
	is.arm(func() { reenroll(t, st.Store, "SHA256:new") })
	// The session may end (the point) before the agent's write returns.
	_ = a.c.Send(agentproto.Heartbeat{LocalTime: time.Now().UnixMilli(), Inventory: changed()})
	var b agentproto.Beat
	_ = a.c.Recv(&b)
	waitFor(t, "the replaced session to end", func() bool { return !g.Connected(testID) })
	time.Sleep(50 * time.Millisecond) // its last write
	wantReenrolled(t, st, "after the replaced session's inventory and end")
}

// A deregistration landing between an inventory write's read and its
// write does not bring the instance back, and the session ends.
func TestInventoryRacingDeregistration(t *testing.T) {
	g, st, is := newInterleavedGateway(t)
	a := connect(t, g, st, 0, testInventory)
	is.arm(func() {
		if err := st.Store.DeleteInstance(context.Background(), testID); err != nil {
			t.Error(err)
		}
	})
	// The session may end (the point) before the agent's write returns.
	_ = a.c.Send(agentproto.Heartbeat{LocalTime: time.Now().UnixMilli(), Inventory: changed()})
	var b agentproto.Beat
	_ = a.c.Recv(&b)
	waitFor(t, "the session to end", func() bool { return !g.Connected(testID) })
	time.Sleep(50 * time.Millisecond)
	wantGone(t, st, "after the inventory")
}

// hello starts a session for in and says hello; it reports whether the
// hello was answered as a connection.
func hello(t *testing.T, g *Gateway, in store.Instance) bool {
	t.Helper()
	server, client := net.Pipe()
	if err := g.startSession(t.Context(), server, nil, testID, in, nil); err != nil {
		t.Fatal(err)
	}
	b, err := agentHello(t, client, *changed())
	return err == nil && b.Error == ""
}

// The hello's write, with a re-enrollment or a deregistration landing
// between its read and its write.
func TestHelloRacingReenrollmentAndDeregistration(t *testing.T) {
	t.Run("reenrollment", func(t *testing.T) {
		g, st, is := newInterleavedGateway(t)
		in := instance(t, st)
		is.arm(func() { reenroll(t, st.Store, "SHA256:new") })
		if hello(t, g, in) {
			t.Error("the replaced identity's hello was answered as a connection")
		}
		waitFor(t, "the session to end", func() bool { return !g.Connected(testID) })
		time.Sleep(50 * time.Millisecond)
		wantReenrolled(t, st, "after the replaced identity's hello")
	})
	t.Run("deregistration", func(t *testing.T) {
		g, st, is := newInterleavedGateway(t)
		in := instance(t, st)
		is.arm(func() {
			if err := st.Store.DeleteInstance(context.Background(), testID); err != nil {
				t.Error(err)
			}
		})
		if hello(t, g, in) {
			t.Error("the hello of a deregistered instance's agent was answered as a connection")
		}
		waitFor(t, "the session to end", func() bool { return !g.Connected(testID) })
		time.Sleep(50 * time.Millisecond)
		wantGone(t, st, "after the hello")
	})
}

// The batched heartbeat write and the end-of-session write of a session
// whose identity a re-enrollment replaced (through another replica: this
// one still holds the old session) do not write the instance's state:
// it is the new agent's. The new agent is connected elsewhere (running);
// the old session's heartbeats do not refresh it, nor does its end mark
// it stopped.
func TestReplacedSessionDoesNotWriteState(t *testing.T) {
	g, st := newTestGateway(t)
	a := connect(t, g, st, 0, testInventory)
	reenroll(t, st.Store, "SHA256:new")
	seen := time.Now().Add(-time.Hour).UTC().Truncate(time.Millisecond)
	if err := st.Store.SetInstanceState(t.Context(), testID, store.StateRunning, seen); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		a.heartbeat(t, nil) // plain heartbeats: only the sweep writes
	}
	waitFor(t, "a sweep of the heartbeats", func() bool {
		_, _, touched := st.counts()
		return len(touched) > 0
	})
	if got := instance(t, st); !got.LastSeen.Equal(seen) {
		t.Errorf("the replaced session's heartbeats moved the new agent's last seen from %v to %v", seen, got.LastSeen)
	}
	a.mux.Close()
	waitFor(t, "the session to end", func() bool { return !g.Connected(testID) })
	time.Sleep(50 * time.Millisecond)
	if got := instance(t, st); got.State != store.StateRunning {
		t.Errorf("the replaced session's end marked the new agent's instance %q, want it left running", got.State)
	}
}
