package storetest

import (
	"testing"
	"time"

	"github.com/kaginashi/kaginashi/internal/store"
)

// testDeleteAuditBefore: retention deletes the oldest events before the
// cutoff, at most limit per call, and nothing at or after the cutoff.
func testDeleteAuditBefore(t *testing.T, s store.Store) {
	ctx := ctxOf(t)
	var evs []store.AuditEvent
	for i := range 7 {
		evs = append(evs, event(i+1, at(time.Duration(i)*time.Minute), "CreateUser", "alice"))
	}
	// Two events share a microsecond: seq orders them.
	evs = append(evs, event(8, at(time.Minute), "DeleteUser", "bob"))
	must(t, s.AppendAudit(ctx, evs))

	if _, err := s.DeleteAuditBefore(ctx, at(time.Hour), 0); err == nil {
		t.Fatal("DeleteAuditBefore with limit 0: no error")
	}
	// Before minute 3: events 1, 2, 8 and 3 (minutes 0, 1, 1, 2).
	n, err := s.DeleteAuditBefore(ctx, at(3*time.Minute), 2)
	must(t, err)
	equal(t, "first batch", n, 2)
	n, err = s.DeleteAuditBefore(ctx, at(3*time.Minute), 2)
	must(t, err)
	equal(t, "second batch", n, 2)
	n, err = s.DeleteAuditBefore(ctx, at(3*time.Minute), 2)
	must(t, err)
	equal(t, "nothing left before the cutoff", n, 0)

	got, _, err := s.LookupAudit(ctx, store.AuditFilter{})
	must(t, err)
	equal(t, "left", eventIDs(got), eventIDs([]store.AuditEvent{evs[6], evs[5], evs[4], evs[3]}))

	// The oldest go first: a batch of one before minute 5 takes minute 3.
	n, err = s.DeleteAuditBefore(ctx, at(5*time.Minute), 1)
	must(t, err)
	equal(t, "oldest first", n, 1)
	got, _, err = s.LookupAudit(ctx, store.AuditFilter{})
	must(t, err)
	equal(t, "after the oldest went", eventIDs(got), eventIDs([]store.AuditEvent{evs[6], evs[5], evs[4]}))
}
