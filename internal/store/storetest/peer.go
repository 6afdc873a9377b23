package storetest

import (
	"context"
	"errors"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/kaginashi/kaginashi/internal/store"
)

// AgentSessions runs the conformance tests of store.AgentSessions (a
// separate entry point from Run, so that engines opt in from their own
// test files). open is Run's.
func AgentSessions(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.AgentSessions)
	}{
		{"ClaimRelease", testSessionClaimRelease},
		{"StaleRelease", testSessionStaleRelease},
		{"ReleaseReplica", testSessionReleaseReplica},
		{"ConcurrentClaims", testSessionConcurrentClaims},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			st := open(t)
			as, ok := st.(store.AgentSessions)
			if !ok {
				t.Fatalf("%T does not implement store.AgentSessions", st)
			}
			tc.fn(t, as)
		})
	}
}

func testSessionClaimRelease(t *testing.T, s store.AgentSessions) {
	ctx := context.Background()
	const id = "i-0123456789abcdef0"
	if _, err := s.GetAgentSession(ctx, id); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetAgentSession of nothing: %v, want ErrNotFound", err)
	}
	e1, err := s.ClaimAgentSession(ctx, store.AgentSession{InstanceID: id, ReplicaID: "a", PeerURL: "https://10.0.0.1:8443", ConnectedAt: at(0),
		SSHPort: 2222, AllowedPorts: []int{2222, 5432}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.GetAgentSession(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	want := store.AgentSession{InstanceID: id, ReplicaID: "a", PeerURL: "https://10.0.0.1:8443", ConnectedAt: at(0), Epoch: e1,
		SSHPort: 2222, AllowedPorts: []int{2222, 5432}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	// The agent reconnects to replica b: b's claim replaces a's.
	e2, err := s.ClaimAgentSession(ctx, store.AgentSession{InstanceID: id, ReplicaID: "b", PeerURL: "https://10.0.0.2:8443", ConnectedAt: at(time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	if e2 <= e1 {
		t.Fatalf("second claim's epoch %d is not above the first's %d", e2, e1)
	}
	if got, _ := s.GetAgentSession(ctx, id); got.ReplicaID != "b" || got.Epoch != e2 || !got.ConnectedAt.Equal(at(time.Second)) ||
		got.SSHPort != 0 || got.AllowedPorts != nil {
		t.Fatalf("after b's claim: %+v", got)
	}
	if ok, err := s.ReleaseAgentSession(ctx, id, "b", e2); err != nil || !ok {
		t.Fatalf("ReleaseAgentSession = %v, %v; want true", ok, err)
	}
	if _, err := s.GetAgentSession(ctx, id); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("after release: %v, want ErrNotFound", err)
	}
	// Epochs keep rising after a row is gone.
	e3, err := s.ClaimAgentSession(ctx, store.AgentSession{InstanceID: id, ReplicaID: "a", PeerURL: "https://10.0.0.1:8443", ConnectedAt: at(2 * time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	if e3 <= e2 {
		t.Fatalf("epoch %d after a release is not above %d", e3, e2)
	}
}

func testSessionStaleRelease(t *testing.T, s store.AgentSessions) {
	ctx := context.Background()
	const id = "i-0123456789abcdef1"
	e1, err := s.ClaimAgentSession(ctx, store.AgentSession{InstanceID: id, ReplicaID: "a", PeerURL: "u1", ConnectedAt: at(0)})
	if err != nil {
		t.Fatal(err)
	}
	e2, err := s.ClaimAgentSession(ctx, store.AgentSession{InstanceID: id, ReplicaID: "a", PeerURL: "u1", ConnectedAt: at(time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	// The old session of the same replica ends late: nothing changes.
	if ok, err := s.ReleaseAgentSession(ctx, id, "a", e1); err != nil || ok {
		t.Fatalf("stale release = %v, %v; want false", ok, err)
	}
	// Another replica's release of the current epoch: nothing either.
	if ok, err := s.ReleaseAgentSession(ctx, id, "b", e2); err != nil || ok {
		t.Fatalf("other replica's release = %v, %v; want false", ok, err)
	}
	if got, err := s.GetAgentSession(ctx, id); err != nil || got.Epoch != e2 {
		t.Fatalf("after stale releases: %+v, %v", got, err)
	}
}

func testSessionReleaseReplica(t *testing.T, s store.AgentSessions) {
	ctx := context.Background()
	ids := []string{"i-0000000000000000a", "i-0000000000000000b", "i-0000000000000000c"}
	claims := []store.AgentSession{
		{InstanceID: ids[0], ReplicaID: "a", PeerURL: "ua", ConnectedAt: at(0)},
		{InstanceID: ids[1], ReplicaID: "a-old", PeerURL: "ua", ConnectedAt: at(0)},
		{InstanceID: ids[2], ReplicaID: "b", PeerURL: "ub", ConnectedAt: at(0)},
	}
	for _, c := range claims {
		if _, err := s.ClaimAgentSession(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	// A restarted replica at ua clears its predecessor's rows, not its own.
	if n, err := s.ReleasePeerSessions(ctx, "ua", "a"); err != nil || n != 1 {
		t.Fatalf("ReleasePeerSessions = %d, %v; want 1", n, err)
	}
	if _, err := s.GetAgentSession(ctx, ids[1]); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("predecessor's row: %v, want ErrNotFound", err)
	}
	if n, err := s.ReleaseReplicaSessions(ctx, "a"); err != nil || n != 1 {
		t.Fatalf("ReleaseReplicaSessions = %d, %v; want 1", n, err)
	}
	if _, err := s.GetAgentSession(ctx, ids[0]); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a's row: %v, want ErrNotFound", err)
	}
	if got, err := s.GetAgentSession(ctx, ids[2]); err != nil || got.ReplicaID != "b" {
		t.Fatalf("b's row: %+v, %v", got, err)
	}
}

// testSessionConcurrentClaims: replicas racing to claim one instance end
// with one row, whose epoch is the highest handed out.
func testSessionConcurrentClaims(t *testing.T, s store.AgentSessions) {
	ctx := context.Background()
	const id = "i-0123456789abcdef2"
	var mu sync.Mutex
	var maxEpoch int64
	var maxReplica string
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := string(rune('a' + i))
			e, err := s.ClaimAgentSession(ctx, store.AgentSession{InstanceID: id, ReplicaID: r, PeerURL: "u" + r, ConnectedAt: at(0)})
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			if e > maxEpoch {
				maxEpoch, maxReplica = e, r
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	got, err := s.GetAgentSession(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if got.Epoch != maxEpoch || got.ReplicaID != maxReplica {
		t.Fatalf("after racing claims: %+v; want epoch %d of %s", got, maxEpoch, maxReplica)
	}
}
