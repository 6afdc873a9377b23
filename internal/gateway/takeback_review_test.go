package gateway

import (
	"net"
	"testing"
	"time"

	"github.com/kaginashi/kaginashi/internal/agentproto"
	"github.com/kaginashi/kaginashi/internal/store"
)

// reenroll stands for an enrollment that replaced the instance's agent
// key (HandleEnroll's store write) — here or on another replica.
func reenroll(t *testing.T, st store.Store, key string) {
	t.Helper()
	in := instance(t, st)
	in.AgentKey = key
	in.Tags = []store.Tag{{Key: "env", Value: "sandbox"}}
	if err := st.PutInstance(t.Context(), in); err != nil {
		t.Fatal(err)
	}
}

// An agent whose connection passed HandleConnect's key check before a
// re-enrollment, and which sends its hello only after it (an agent may
// take 10 s for it), must not write its old key back: that would give the
// instance back to the replaced (perhaps stolen) identity and lock out
// the new one — what re-enrolling a host is for. Its old copy of the tags
// must not come back either.
func TestHelloAfterReenrollmentDoesNotTakeInstanceBack(t *testing.T) {
	g, st := newTestGateway(t)
	in := instance(t, st) // as HandleConnect read it: key SHA256:x
	server, client := net.Pipe()
	if err := g.startSession(t.Context(), server, nil, testID, in, nil); err != nil {
		t.Fatal(err)
	}
	reenroll(t, st, "SHA256:new")

	b, helloErr := agentHello(t, client, testInventory)

	got := instance(t, st)
	if got.AgentKey != "SHA256:new" {
		t.Errorf("after the replaced identity's hello the instance's agent key is %q, want the new enrollment's SHA256:new", got.AgentKey)
	}
	if len(got.Tags) != 1 || got.Tags[0].Value != "sandbox" {
		t.Errorf("after the replaced identity's hello the tags are %v, want the enrollment's env=sandbox", got.Tags)
	}
	if helloErr == nil && b.Error == "" && g.Connected(testID) {
		t.Error("the replaced identity's session was registered as the instance's agent")
	}
}

// A session that a re-enrollment elsewhere replaced (endSession ends only
// the sessions of this server) must not write its old key back with its
// next inventory; it ends instead.
func TestInventoryAfterReenrollmentDoesNotTakeInstanceBack(t *testing.T) {
	g, st := newTestGateway(t)
	a := connect(t, g, st, 0, testInventory)
	reenroll(t, st, "SHA256:new")

	inv := testInventory
	inv.PrivateIP = "10.9.9.9" // a change: written at once
	// The session may end (the point) before the agent's write returns.
	_ = a.c.Send(agentproto.Heartbeat{LocalTime: time.Now().UnixMilli(), Inventory: &inv})
	var b agentproto.Beat
	_ = a.c.Recv(&b) // answered or ended: either way the write is done

	if got := instance(t, st); got.AgentKey != "SHA256:new" {
		t.Errorf("after the replaced session's inventory the instance's agent key is %q, want SHA256:new", got.AgentKey)
	}
	waitFor(t, "the replaced session to end", func() bool { return !g.Connected(testID) })
}
