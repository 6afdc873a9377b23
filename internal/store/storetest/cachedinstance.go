package storetest

import (
	"testing"
	"time"

	"github.com/kaginashi/kaginashi/internal/store"
)

// testCachedInstance: CachedInstance answers as GetInstance does, and sees
// every inventory write made through the same handle at once, whatever
// the cache holds.
func testCachedInstance(t *testing.T, s store.Store) {
	ctx := ctxOf(t)
	in := newInstance(40)
	_, err := s.CachedInstance(ctx, in.ID)
	wantErr(t, err, store.ErrNotFound, "CachedInstance of a missing instance")
	must(t, s.PutInstance(ctx, in))
	cached := func(what string) store.Instance {
		t.Helper()
		got, err := s.CachedInstance(ctx, in.ID)
		must(t, err)
		want, err := s.GetInstance(ctx, in.ID)
		must(t, err)
		equal(t, "CachedInstance "+what, got, want)
		return got
	}
	got := cached("after PutInstance")
	equal(t, "CachedInstance", got, in)

	// The answer is a copy: changing it changes nothing cached.
	got.Tags[0].Value = "changed"
	got.HostKeys[0] = "changed"
	cached("after its answer was changed")

	must(t, s.TagResource(ctx, in.ID, []store.Tag{{Key: "access", Value: "granted"}}))
	cached("after TagResource")
	must(t, s.UntagResource(ctx, in.ID, []store.TagMatch{{Key: "access"}}))
	cached("after UntagResource")
	must(t, s.SetInstanceState(ctx, in.ID, store.StateStopped, at(2*time.Hour)))
	if got := cached("after SetInstanceState"); got.State != store.StateStopped {
		t.Fatalf("state %q after SetInstanceState(stopped)", got.State)
	}
	if stale, err := s.TouchInstances(ctx, []store.AgentRef{{InstanceID: in.ID, AgentKey: in.AgentKey}}, at(3*time.Hour)); err != nil || len(stale) != 0 {
		t.Fatalf("TouchInstances of the instance with its own key: stale %v, err %v", stale, err)
	}
	if got := cached("after TouchInstances"); got.State != store.StateRunning {
		t.Fatalf("state %q after TouchInstances", got.State)
	}
	facts := in
	facts.Hostname = "reported"
	must(t, s.UpdateAgentFacts(ctx, facts))
	if got := cached("after UpdateAgentFacts"); got.Hostname != "reported" {
		t.Fatalf("hostname %q after UpdateAgentFacts", got.Hostname)
	}
	in2 := in
	in2.AgentKey = "SHA256:another"
	in2.Tags = nil
	must(t, s.PutInstance(ctx, in2))
	cached("after PutInstance replaced it")
	must(t, s.DeleteInstance(ctx, in.ID))
	_, err = s.CachedInstance(ctx, in.ID)
	wantErr(t, err, store.ErrNotFound, "CachedInstance after DeleteInstance")
}

// CachedInstanceReplicas checks CachedInstance across handles on one
// database (replicas): writer changes an instance's tags; stale, whose
// generation max age is far longer than the test, still answers from its
// cache (so the cache is used at all); fresh, configured with maxAge,
// sees the change within maxAge.
func CachedInstanceReplicas(t *testing.T, writer, stale, fresh store.Store, maxAge time.Duration) {
	ctx := ctxOf(t)
	in := newInstance(41)
	must(t, writer.PutInstance(ctx, in))
	for _, s := range []store.Store{stale, fresh} {
		got, err := s.CachedInstance(ctx, in.ID)
		must(t, err)
		equal(t, "CachedInstance on another handle", got, in)
	}
	must(t, writer.TagResource(ctx, in.ID, []store.Tag{{Key: "access", Value: "granted"}}))
	changed, err := writer.GetInstance(ctx, in.ID)
	must(t, err)
	start := time.Now()
	for {
		got, err := fresh.CachedInstance(ctx, in.ID)
		must(t, err)
		if len(got.Tags) == len(changed.Tags) {
			equal(t, "CachedInstance after another handle's write", got, changed)
			break
		}
		if time.Since(start) > maxAge+2*time.Second {
			t.Fatalf("another handle's tag was not seen within %v", maxAge)
		}
		time.Sleep(10 * time.Millisecond)
	}
	got, err := stale.CachedInstance(ctx, in.ID)
	must(t, err)
	equal(t, "CachedInstance of a handle that read the generation less than its max age ago", got, in)
}

// InventoryGenerationHeartbeat checks that a heartbeat of a running
// instance leaves the inventory generation alone (it would empty every
// replica's cache every few seconds) and a state change moves it. gen
// reads the generation straight from the database.
func InventoryGenerationHeartbeat(t *testing.T, writer store.Store, gen func() int64) {
	t.Helper()
	ctx := ctxOf(t)
	in := store.Instance{ID: "i-0123456789abcdef0", State: store.StateRunning, LaunchTime: time.Unix(1, 0), LastSeen: time.Unix(2, 0)}
	must(t, writer.PutInstance(ctx, in))
	g := gen()
	if stale, err := writer.TouchInstances(ctx, []store.AgentRef{{InstanceID: in.ID}}, time.Unix(3, 0)); err != nil || len(stale) != 0 {
		t.Fatalf("TouchInstances of the instance with its own (empty) key: stale %v, err %v", stale, err)
	}
	if g2 := gen(); g2 != g {
		t.Fatalf("a heartbeat of a running instance moved the inventory generation from %d to %d", g, g2)
	}
	must(t, writer.SetInstanceState(ctx, in.ID, store.StateStopped, time.Unix(4, 0)))
	if g2 := gen(); g2 <= g {
		t.Fatalf("a state change left the inventory generation at %d", g2)
	}
}
