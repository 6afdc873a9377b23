package storetest

import (
	"testing"
	"time"

	"github.com/kaginashi/kaginashi/internal/store"
)

// AgentCAs runs the conformance tests of store.AgentCAs (a separate entry
// point from Run, as AgentSessions). open is Run's.
func AgentCAs(t *testing.T, open func(t *testing.T) store.Store) {
	t.Parallel()
	s := open(t)
	ac, ok := s.(store.AgentCAs)
	if !ok {
		t.Fatalf("%T does not implement store.AgentCAs", s)
	}
	ctx := ctxOf(t)
	ids := []string{"i-00000000000000001", "i-00000000000000002", "i-00000000000000003"}
	for _, id := range ids {
		must(t, s.PutInstance(ctx, store.Instance{ID: id, State: store.StateRunning, LaunchTime: at(0), LastSeen: at(0)}))
	}
	// No row yet: every instance is off any CA.
	got, err := ac.InstancesNotOnCA(ctx, "SHA256:new")
	must(t, err)
	equal(t, "before any record", got, ids)

	must(t, ac.SetAgentCA(ctx, ids[0], "SHA256:old", at(time.Second)))
	must(t, ac.SetAgentCA(ctx, ids[1], "SHA256:new", at(time.Second)))
	got, err = ac.InstancesNotOnCA(ctx, "SHA256:new")
	must(t, err)
	equal(t, "one on the new CA", got, []string{ids[0], ids[2]})

	// A later record replaces the earlier.
	must(t, ac.SetAgentCA(ctx, ids[0], "SHA256:new", at(2*time.Second)))
	must(t, ac.SetAgentCA(ctx, ids[2], "SHA256:new", at(2*time.Second)))
	got, err = ac.InstancesNotOnCA(ctx, "SHA256:new")
	must(t, err)
	equal(t, "all on the new CA", got, []string{})
	got, err = ac.InstancesNotOnCA(ctx, "SHA256:old")
	must(t, err)
	equal(t, "none on the old CA", got, ids)

	// Unknown instances are refused; deleted ones are forgotten.
	wantErr(t, ac.SetAgentCA(ctx, "i-0000000000000000f", "SHA256:new", at(0)), store.ErrNotFound, "SetAgentCA of an unknown instance")
	must(t, s.DeleteInstance(ctx, ids[1]))
	got, err = ac.InstancesNotOnCA(ctx, "SHA256:old")
	must(t, err)
	equal(t, "after a deletion", got, []string{ids[0], ids[2]})
}
