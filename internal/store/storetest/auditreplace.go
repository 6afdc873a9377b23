package storetest

import (
	"bytes"
	"testing"
	"time"

	"github.com/kaginashi/kaginashi/internal/store"
)

// testAuditReplace: a write-ahead event's final version (Replace) takes
// the place of its pending version under the same event ID — one event
// per call for lookups, paging and retention — in a batch of its own or
// mixed with new events; it is inserted when no pending version exists;
// and without Replace a used event ID is still refused.
func testAuditReplace(t *testing.T, s store.Store) {
	ctx := ctxOf(t)
	before := event(1, at(1*time.Second), "CreateUser", "alice")
	pending := event(2, at(2*time.Second), "CreateUser", "alice")
	pending.Record = []byte(`{"eventID":"` + pending.ID + `","additionalEventData":{"outcome":"pending"}}`)
	after := event(3, at(3*time.Second), "CreateUser", "alice")
	must(t, s.AppendAudit(ctx, []store.AuditEvent{before, pending, after}))

	// A cursor taken before the replacement still pages correctly after it.
	first, cursor, err := s.LookupAudit(ctx, store.AuditFilter{Limit: 1})
	must(t, err)
	equal(t, "first page", eventIDs(first), []string{after.ID})

	final := pending
	final.Replace = true
	final.ErrorCode = "EntityAlreadyExists"
	final.Name = "CreateUser"
	final.Record = []byte(`{"eventID":"` + pending.ID + `","errorCode":"EntityAlreadyExists"}`)
	fresh := event(4, at(4*time.Second), "DeleteUser", "bob")
	// Mixed with a new event in one batch (one transaction, as the group
	// commit sends them).
	must(t, s.AppendAudit(ctx, []store.AuditEvent{fresh, final}))

	got, _, err := s.LookupAudit(ctx, store.AuditFilter{Limit: 100})
	must(t, err)
	equal(t, "one event per ID, in place", eventIDs(got), eventIDs([]store.AuditEvent{fresh, after, pending, before}))
	stored := got[2]
	if !bytes.Equal(stored.Record, final.Record) {
		t.Fatalf("stored record %s, want the final version %s", stored.Record, final.Record)
	}
	equal(t, "indexed error code follows the final version", stored.ErrorCode, "EntityAlreadyExists")
	equal(t, "replace flag not stored", stored.Replace, false)

	rest, next, err := s.LookupAudit(ctx, store.AuditFilter{Limit: 100, Cursor: cursor})
	must(t, err)
	equal(t, "pages after the cursor", []any{eventIDs(rest), next}, []any{eventIDs([]store.AuditEvent{pending, before}), ""})

	byName, _, err := s.LookupAudit(ctx, store.AuditFilter{EventName: "CreateUser", Limit: 100})
	must(t, err)
	equal(t, "by name", eventIDs(byName), eventIDs([]store.AuditEvent{after, pending, before}))

	// A final version whose pending version never committed is inserted.
	orphan := event(5, at(5*time.Second), "CreateGroup", "carol")
	orphan.Replace = true
	must(t, s.AppendAudit(ctx, []store.AuditEvent{orphan}))
	got, _, err = s.LookupAudit(ctx, store.AuditFilter{EventName: "CreateGroup"})
	must(t, err)
	equal(t, "orphan final inserted", eventIDs(got), []string{orphan.ID})
	// Replacing twice leaves one event.
	must(t, s.AppendAudit(ctx, []store.AuditEvent{orphan}))
	got, _, err = s.LookupAudit(ctx, store.AuditFilter{EventName: "CreateGroup"})
	must(t, err)
	equal(t, "replaced twice", eventIDs(got), []string{orphan.ID})

	// Without Replace a used ID is refused, the whole batch with it.
	dup := pending
	dup.Replace = false
	err = s.AppendAudit(ctx, []store.AuditEvent{event(6, at(6*time.Second), "X", "x"), dup})
	wantErr(t, err, store.ErrExists, "AppendAudit of a used event ID without Replace")

	// Retention deletes the event once.
	n, err := s.DeleteAuditBefore(ctx, at(2500*time.Millisecond), 100)
	must(t, err)
	equal(t, "deleted before 2.5s", n, 2)
	got, _, err = s.LookupAudit(ctx, store.AuditFilter{Limit: 100})
	must(t, err)
	equal(t, "left after retention", eventIDs(got), eventIDs([]store.AuditEvent{orphan, fresh, after}))
}
