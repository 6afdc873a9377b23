package storetest

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/kaginashi/kaginashi/internal/store"
)

func instanceID(n int) string { return fmt.Sprintf("i-%017x", n) }

func newInstance(n int) store.Instance {
	return store.Instance{
		ID: instanceID(n), State: store.StateRunning,
		LaunchTime: at(time.Duration(n) * time.Second), LastSeen: at(time.Hour),
		Hostname: fmt.Sprintf("host%d", n), PrivateIP: fmt.Sprintf("10.0.0.%d", n), IPv6: "fd00::1",
		OSID: "debian", OSVersion: "12", OSPrettyName: "Debian GNU/Linux 12 (bookworm)",
		Platform: "Linux/UNIX", Architecture: "x86_64", Kernel: "6.1.0-18-amd64", DefaultUser: "admin",
		AgentVersion: "0.1.0", SSHDVersion: "OpenSSH_9.2p1",
		HostKeys:      []string{"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA host", "ecdsa-sha2-nistp256 AAAAE2 host"},
		AvailabilityZ: "home-1a",
		Tags:          []store.Tag{{Key: "Name", Value: fmt.Sprintf("host%d", n)}, {Key: "env", Value: "prod"}},
	}
}

func instanceIDs(ins []store.Instance) []string {
	var out []string
	for _, in := range ins {
		out = append(out, in.ID)
	}
	return out
}

func testInstances(t *testing.T, s store.Store) {
	ctx := ctxOf(t)
	in := newInstance(1)
	must(t, s.PutInstance(ctx, in))
	got, err := s.GetInstance(ctx, in.ID)
	must(t, err)
	equal(t, "GetInstance", got, in)
	tags, err := s.ResourceTags(ctx, in.ID)
	must(t, err)
	equal(t, "ResourceTags of an instance", tags, in.Tags)

	// PutInstance replaces every field, tags included.
	in2 := in
	in2.State = store.StateStopped
	in2.Hostname = "renamed"
	in2.HostKeys = nil
	in2.Tags = []store.Tag{{Key: "only", Value: "this"}}
	must(t, s.PutInstance(ctx, in2))
	got, err = s.GetInstance(ctx, in.ID)
	must(t, err)
	if len(got.HostKeys) != 0 {
		t.Fatalf("host keys after replace: %v", got.HostKeys)
	}
	got.HostKeys = nil
	equal(t, "GetInstance after replace", got, in2)

	must(t, s.SetInstanceState(ctx, in.ID, store.StateRunning, at(2*time.Hour)))
	got, err = s.GetInstance(ctx, in.ID)
	must(t, err)
	equal(t, "state and last seen", []any{got.State, got.LastSeen, got.LaunchTime}, []any{store.StateRunning, at(2 * time.Hour), in.LaunchTime})
	wantErr(t, s.SetInstanceState(ctx, instanceID(99), store.StateRunning, at(0)), store.ErrNotFound, "SetInstanceState of a missing instance")

	_, err = s.GetInstance(ctx, instanceID(99))
	wantErr(t, err, store.ErrNotFound, "GetInstance of a missing instance")

	must(t, s.DeleteInstance(ctx, in.ID))
	_, err = s.GetInstance(ctx, in.ID)
	wantErr(t, err, store.ErrNotFound, "GetInstance after delete")
	wantErr(t, s.DeleteInstance(ctx, in.ID), store.ErrNotFound, "DeleteInstance twice")
	tags, err = s.ResourceTags(ctx, in.ID)
	must(t, err)
	equal(t, "tags of a deleted instance", len(tags), 0)

	testTouchInstances(t, s)
}

// testTouchInstances: one call marks several instances running and seen,
// leaves the others and every other field alone, and skips unknown IDs and
// instances whose agent key is not the one given.
func testTouchInstances(t *testing.T, s store.Store) {
	ctx := ctxOf(t)
	var ins []store.Instance
	for n := 10; n < 13; n++ {
		in := newInstance(n)
		in.State = store.StateStopped
		in.AgentKey = fmt.Sprintf("SHA256:key%d", n)
		must(t, s.PutInstance(ctx, in))
		ins = append(ins, in)
	}
	if stale, err := s.TouchInstances(ctx, nil, at(0)); err != nil || stale != nil {
		t.Fatalf("TouchInstances of none: stale %v, err %v", stale, err)
	}
	// ins[1] is named with a key a re-enrollment replaced: left alone, and
	// answered stale with the unknown ID (a deregistered instance's).
	stale, err := s.TouchInstances(ctx, []store.AgentRef{
		{InstanceID: ins[0].ID, AgentKey: ins[0].AgentKey}, {InstanceID: instanceID(99), AgentKey: "SHA256:key99"},
		{InstanceID: ins[1].ID, AgentKey: "SHA256:replaced"}, {InstanceID: ins[2].ID, AgentKey: ins[2].AgentKey},
	}, at(3*time.Hour))
	must(t, err)
	equal(t, "the stale agents TouchInstances answers", stale, []store.AgentRef{
		{InstanceID: instanceID(99), AgentKey: "SHA256:key99"}, {InstanceID: ins[1].ID, AgentKey: "SHA256:replaced"}})
	for i, in := range ins {
		got, err := s.GetInstance(ctx, in.ID)
		must(t, err)
		want := in
		if i != 1 {
			want.State, want.LastSeen = store.StateRunning, at(3*time.Hour)
		}
		equal(t, fmt.Sprintf("instance %d after TouchInstances", i), got, want)
		must(t, s.DeleteInstance(ctx, in.ID))
	}
	_, err = s.GetInstance(ctx, instanceID(99))
	wantErr(t, err, store.ErrNotFound, "an unknown ID after TouchInstances")
}

func testListInstancesPaging(t *testing.T, s store.Store) {
	ctx := ctxOf(t)
	// Inserted out of order; listed by ID.
	var all []string
	for _, n := range []int{7, 3, 11, 1, 5, 9, 2} {
		in := newInstance(n)
		must(t, s.PutInstance(ctx, in))
	}
	for _, n := range []int{1, 2, 3, 5, 7, 9, 11} {
		all = append(all, instanceID(n))
	}
	got, next, err := s.ListInstances(ctx, store.InstanceFilter{})
	must(t, err)
	equal(t, "ListInstances", instanceIDs(got), all)
	equal(t, "next without a limit", next, "")
	equal(t, "ListInstances fills tags", got[0].Tags, newInstance(1).Tags)
	equal(t, "ListInstances fills host keys", got[0].HostKeys, newInstance(1).HostKeys)

	var paged []string
	after := ""
	for page := 0; ; page++ {
		if page > 10 {
			t.Fatal("paging does not end")
		}
		got, next, err := s.ListInstances(ctx, store.InstanceFilter{Limit: 3, After: after})
		must(t, err)
		if len(got) > 3 {
			t.Fatalf("page of %d, limit 3", len(got))
		}
		paged = append(paged, instanceIDs(got)...)
		if next == "" {
			break
		}
		equal(t, "next is the page's last ID", next, got[len(got)-1].ID)
		after = next
	}
	equal(t, "paged", paged, all)

	// Exactly a page's worth left: no next page.
	got, next, err = s.ListInstances(ctx, store.InstanceFilter{Limit: 7})
	must(t, err)
	equal(t, "limit equal to the count", []any{len(got), next}, []any{7, ""})

	got, next, err = s.ListInstances(ctx, store.InstanceFilter{IDs: []string{instanceID(9), instanceID(2), instanceID(404), instanceID(5)}, Limit: 2})
	must(t, err)
	equal(t, "IDs, first page", []any{instanceIDs(got), next}, []any{[]string{instanceID(2), instanceID(5)}, instanceID(5)})
	got, next, err = s.ListInstances(ctx, store.InstanceFilter{IDs: []string{instanceID(9), instanceID(2), instanceID(404), instanceID(5)}, Limit: 2, After: next})
	must(t, err)
	equal(t, "IDs, second page", []any{instanceIDs(got), next}, []any{[]string{instanceID(9)}, ""})
	got, _, err = s.ListInstances(ctx, store.InstanceFilter{IDs: []string{instanceID(404)}})
	must(t, err)
	equal(t, "unknown IDs", len(got), 0)
}

func testResourceTags(t *testing.T, s store.Store) {
	ctx := ctxOf(t)
	in := newInstance(1)
	in.Tags = nil
	must(t, s.PutInstance(ctx, in))
	must(t, s.PutInstance(ctx, store.Instance{ID: instanceID(2), State: store.StatePending, LaunchTime: at(0), LastSeen: at(0)}))
	const eice = "eice-0123456789abcdef0"

	must(t, s.TagResource(ctx, in.ID, []store.Tag{{Key: "b", Value: "1"}, {Key: "a", Value: "1"}, {Key: "c", Value: "1"}}))
	must(t, s.TagResource(ctx, in.ID, []store.Tag{{Key: "b", Value: "2"}}))
	must(t, s.TagResource(ctx, eice, []store.Tag{{Key: "Name", Value: "endpoint"}}))
	must(t, s.TagResource(ctx, instanceID(2), []store.Tag{{Key: "x", Value: ""}}))
	tags, err := s.ResourceTags(ctx, in.ID)
	must(t, err)
	equal(t, "after TagResource", tags, []store.Tag{{Key: "a", Value: "1"}, {Key: "b", Value: "2"}, {Key: "c", Value: "1"}})
	wantErr(t, s.TagResource(ctx, instanceID(99), []store.Tag{{Key: "a", Value: "b"}}), store.ErrNotFound, "TagResource of a missing instance")

	all, err := s.ListResourceTags(ctx, nil)
	must(t, err)
	equal(t, "ListResourceTags", all, []store.ResourceTag{
		{ResourceID: eice, Tag: store.Tag{Key: "Name", Value: "endpoint"}},
		{ResourceID: in.ID, Tag: store.Tag{Key: "a", Value: "1"}},
		{ResourceID: in.ID, Tag: store.Tag{Key: "b", Value: "2"}},
		{ResourceID: in.ID, Tag: store.Tag{Key: "c", Value: "1"}},
		{ResourceID: instanceID(2), Tag: store.Tag{Key: "x", Value: ""}},
	})
	some, err := s.ListResourceTags(ctx, []string{instanceID(2), eice, "i-missing"})
	must(t, err)
	equal(t, "ListResourceTags of some", some, []store.ResourceTag{
		{ResourceID: eice, Tag: store.Tag{Key: "Name", Value: "endpoint"}},
		{ResourceID: instanceID(2), Tag: store.Tag{Key: "x", Value: ""}},
	})

	// As EC2 DeleteTags: a value given removes the tag only while it has
	// that value; a key alone removes it whatever the value.
	must(t, s.UntagResource(ctx, in.ID, []store.TagMatch{
		{Key: "a", Value: "other", MatchValue: true}, // kept: value differs
		{Key: "b", Value: "2", MatchValue: true},     // removed
		{Key: "c", Value: "ignored"},                 // removed: no MatchValue
		{Key: "absent"},
	}))
	tags, err = s.ResourceTags(ctx, in.ID)
	must(t, err)
	equal(t, "after UntagResource", tags, []store.Tag{{Key: "a", Value: "1"}})
	must(t, s.UntagResource(ctx, instanceID(2), []store.TagMatch{{Key: "x", Value: "", MatchValue: true}}))
	tags, err = s.ResourceTags(ctx, instanceID(2))
	must(t, err)
	equal(t, "empty value matched", len(tags), 0)
	wantErr(t, s.UntagResource(ctx, instanceID(99), []store.TagMatch{{Key: "a"}}), store.ErrNotFound, "UntagResource of a missing instance")

	// No tags at all: every tag goes, as DeleteTags without Tags.
	must(t, s.TagResource(ctx, eice, []store.Tag{{Key: "more", Value: "1"}}))
	must(t, s.UntagResource(ctx, eice, nil))
	tags, err = s.ResourceTags(ctx, eice)
	must(t, err)
	equal(t, "after UntagResource without tags", len(tags), 0)

	tags, err = s.ResourceTags(ctx, "eice-unknown")
	must(t, err)
	equal(t, "tags of an unknown resource", len(tags), 0)
}

func testKeyRecords(t *testing.T, s store.Store) {
	ctx := ctxOf(t)
	rec := func(id, instance, user string, created time.Duration) store.KeyRecord {
		return store.KeyRecord{
			RequestID: id, InstanceID: instance, OSUser: user,
			PublicKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI" + id, Fingerprint: "SHA256:" + id,
			CallerARN: "arn:aws:iam::" + account + ":user/alice",
			CreatedAt: at(created), ExpiresAt: at(created + 60*time.Second),
		}
	}
	i1, i2 := instanceID(1), instanceID(2)
	r1 := rec("r1", i1, "admin", 0)
	r2 := rec("r2", i1, "admin", 30*time.Second)
	r3 := rec("r3", i1, "ec2-user", 10*time.Second)
	r4 := rec("r4", i2, "admin", 0)
	for _, r := range []store.KeyRecord{r2, r1, r3, r4} {
		must(t, s.PutKeyRecord(ctx, r))
	}
	wantErr(t, s.PutKeyRecord(ctx, r1), store.ErrExists, "PutKeyRecord with a used request ID")

	got, err := s.ActiveKeyRecords(ctx, i1, "admin", at(time.Second))
	must(t, err)
	equal(t, "active admin keys", got, []store.KeyRecord{r1, r2})
	got, err = s.ActiveKeyRecords(ctx, i1, "", at(time.Second))
	must(t, err)
	equal(t, "active keys, every user", got, []store.KeyRecord{r1, r3, r2})
	// A record expires at ExpiresAt: not active at that instant.
	got, err = s.ActiveKeyRecords(ctx, i1, "admin", r1.ExpiresAt)
	must(t, err)
	equal(t, "at r1's expiry", got, []store.KeyRecord{r2})
	got, err = s.ActiveKeyRecords(ctx, i1, "admin", r1.ExpiresAt.Add(-time.Microsecond))
	must(t, err)
	equal(t, "just before r1's expiry", got, []store.KeyRecord{r1, r2})
	got, err = s.ActiveKeyRecords(ctx, i1, "", at(time.Hour))
	must(t, err)
	equal(t, "all expired", len(got), 0)
	got, err = s.ActiveKeyRecords(ctx, instanceID(3), "", at(0))
	must(t, err)
	equal(t, "unknown instance", len(got), 0)

	// Purge: records that expired before the cutoff (r1, r4 at 60s; r3 at 70s).
	n, err := s.PurgeKeyRecords(ctx, at(60*time.Second))
	must(t, err)
	equal(t, "purged at the expiry instant", n, 0)
	n, err = s.PurgeKeyRecords(ctx, at(75*time.Second))
	must(t, err)
	equal(t, "purged", n, 3)
	got, err = s.ActiveKeyRecords(ctx, i1, "", at(0))
	must(t, err)
	equal(t, "left after purge", got, []store.KeyRecord{r2})
	must(t, s.PutKeyRecord(ctx, r1)) // its ID is free again
}

func event(n int, tm time.Time, name, user string) store.AuditEvent {
	id := fmt.Sprintf("00000000-0000-4000-8000-%012d", n)
	return store.AuditEvent{
		ID: id, Time: tm, Name: name, Source: "iam.amazonaws.com", UserName: user,
		AccessKeyID: "AKIAEXAMPLE", ErrorCode: "",
		Record: []byte(`{"eventID":"` + id + `","eventName":"` + name + `"}`),
	}
}

func eventIDs(es []store.AuditEvent) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.ID)
	}
	return out
}

func testAudit(t *testing.T, s store.Store) {
	ctx := ctxOf(t)
	must(t, s.AppendAudit(ctx, nil)) // an empty batch is no error

	e1 := event(1, at(1*time.Second), "CreateUser", "alice")
	e2 := event(2, at(2*time.Second), "SendSSHPublicKey", "bob")
	e3 := event(3, at(3*time.Second), "CreateUser", "bob")
	e3.ErrorCode = "EntityAlreadyExists"
	e3.Record = []byte{0, 1, 2, 0xff, '\n', '"', '\''} // bytes, not text
	e4 := event(4, at(4*time.Second), "SendSSHPublicKey", "alice")
	must(t, s.AppendAudit(ctx, []store.AuditEvent{e1, e2}))
	must(t, s.AppendAudit(ctx, []store.AuditEvent{e4, e3})) // appended out of time order

	got, next, err := s.LookupAudit(ctx, store.AuditFilter{})
	must(t, err)
	equal(t, "LookupAudit newest first", eventIDs(got), eventIDs([]store.AuditEvent{e4, e3, e2, e1}))
	equal(t, "no next page", next, "")
	equal(t, "event fields", got[1], e3)
	if !bytes.Equal(got[1].Record, e3.Record) {
		t.Fatal("record bytes changed")
	}

	for _, c := range []struct {
		f    store.AuditFilter
		want []store.AuditEvent
	}{
		{store.AuditFilter{EventName: "CreateUser"}, []store.AuditEvent{e3, e1}},
		{store.AuditFilter{UserName: "alice"}, []store.AuditEvent{e4, e1}},
		{store.AuditFilter{EventName: "SendSSHPublicKey", UserName: "bob"}, []store.AuditEvent{e2}},
		{store.AuditFilter{EventName: "DeleteUser"}, nil},
		{store.AuditFilter{Since: at(2 * time.Second)}, []store.AuditEvent{e4, e3, e2}}, // inclusive
		{store.AuditFilter{Until: at(3 * time.Second)}, []store.AuditEvent{e2, e1}},     // exclusive
		{store.AuditFilter{Since: at(2 * time.Second), Until: at(4 * time.Second)}, []store.AuditEvent{e3, e2}},
		{store.AuditFilter{Since: at(2 * time.Second), UserName: "bob", EventName: "CreateUser"}, []store.AuditEvent{e3}},
	} {
		got, _, err := s.LookupAudit(ctx, c.f)
		must(t, err)
		equal(t, fmt.Sprintf("LookupAudit(%+v)", c.f), eventIDs(got), eventIDs(c.want))
	}

	// A batch is one transaction: a duplicate ID refuses all of it.
	err = s.AppendAudit(ctx, []store.AuditEvent{event(5, at(5*time.Second), "X", "x"), e1})
	wantErr(t, err, store.ErrExists, "AppendAudit with a used event ID")
	got, _, err = s.LookupAudit(ctx, store.AuditFilter{EventName: "X"})
	must(t, err)
	equal(t, "events of a refused batch", len(got), 0)

	_, _, err = s.LookupAudit(ctx, store.AuditFilter{Cursor: "not a cursor"})
	wantErr(t, err, store.ErrInvalidCursor, "LookupAudit with a malformed cursor")

	// Limit 0 means 50.
	var many []store.AuditEvent
	for i := range 60 {
		many = append(many, event(100+i, at(time.Hour), "Bulk", "carol"))
	}
	must(t, s.AppendAudit(ctx, many))
	got, next, err = s.LookupAudit(ctx, store.AuditFilter{EventName: "Bulk"})
	must(t, err)
	equal(t, "default page size", len(got), 50)
	if next == "" {
		t.Fatal("no next cursor after a full default page")
	}
	got, next, err = s.LookupAudit(ctx, store.AuditFilter{EventName: "Bulk", Cursor: next})
	must(t, err)
	equal(t, "second page", []any{len(got), next}, []any{10, ""})
}

func testAuditPaging(t *testing.T, s store.Store) {
	ctx := ctxOf(t)
	// 41 events over 7 distinct times, many sharing one microsecond, in
	// several batches: pages must neither repeat nor skip any.
	var want []string
	var batch []store.AuditEvent
	for i := range 41 {
		e := event(i, at(time.Duration(i%7)*time.Millisecond), []string{"A", "B"}[i%2], "u")
		batch = append(batch, e)
		if len(batch) == 6 {
			must(t, s.AppendAudit(ctx, batch))
			batch = nil
		}
	}
	must(t, s.AppendAudit(ctx, batch))
	all, next, err := s.LookupAudit(ctx, store.AuditFilter{Limit: 1000})
	must(t, err)
	equal(t, "all, no next", []any{len(all), next}, []any{41, ""})
	for i := 1; i < len(all); i++ {
		if all[i].Time.After(all[i-1].Time) {
			t.Fatalf("event %d is newer than event %d", i, i-1)
		}
	}
	want = eventIDs(all)

	for _, limit := range []int{1, 4, 7, 40, 41} {
		for _, f := range []store.AuditFilter{{}, {EventName: "A"}, {Since: at(2 * time.Millisecond), Until: at(6 * time.Millisecond)}} {
			f.Limit = limit
			var paged []string
			for page := 0; ; page++ {
				if page > 50 {
					t.Fatal("paging does not end")
				}
				got, next, err := s.LookupAudit(ctx, f)
				must(t, err)
				if len(got) > limit {
					t.Fatalf("page of %d, limit %d", len(got), limit)
				}
				paged = append(paged, eventIDs(got)...)
				if next == "" {
					break
				}
				f.Cursor = next
			}
			f.Cursor, f.Limit = "", 1000
			whole, _, err := s.LookupAudit(ctx, f)
			must(t, err)
			equal(t, fmt.Sprintf("paged by %d with %+v", limit, f), paged, eventIDs(whole))
		}
	}

	// Events appended while paging, newer than the first page, do not
	// disturb the pages that follow.
	first, next, err := s.LookupAudit(ctx, store.AuditFilter{Limit: 10})
	must(t, err)
	must(t, s.AppendAudit(ctx, []store.AuditEvent{event(999, at(time.Hour), "Late", "u")}))
	paged := eventIDs(first)
	for next != "" {
		var got []store.AuditEvent
		got, next, err = s.LookupAudit(ctx, store.AuditFilter{Limit: 10, Cursor: next})
		must(t, err)
		paged = append(paged, eventIDs(got)...)
	}
	equal(t, "paging across a later append", paged, want)
}
