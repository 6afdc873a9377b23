package storetest

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/kaginashi/kaginashi/internal/store"
)

// Batcher is the engine's group-commit queue, as tests hold it.
type Batcher interface {
	Hold()       // behave as if a commit were under way, so that writes queue
	Queued() int // writes waiting
	Release()    // hand the queue to its first write
}

// GroupCommit: key records and audit events queued together commit in one
// batch; when one write in it fails (a duplicate event ID), each write is
// redone on its own and only that caller gets the error. s must be new.
func GroupCommit(t *testing.T, s store.Store, b Batcher) {
	ctx := ctxOf(t)
	now := time.Now().UTC().Truncate(time.Microsecond)
	rec := func(id string) store.KeyRecord {
		return store.KeyRecord{RequestID: id, InstanceID: "i-0123456789abcdef0", OSUser: "u", PublicKey: "ssh-ed25519 AAAA",
			Fingerprint: "SHA256:x", CallerARN: "arn:aws:iam::123456789012:user/a", CreatedAt: now, ExpiresAt: now.Add(time.Minute)}
	}
	ev := func(id string) store.AuditEvent {
		return store.AuditEvent{ID: id, Time: now, Name: "SendSSHPublicKey", Source: "ec2-instance-connect.amazonaws.com", Record: []byte(`{}`)}
	}
	must(t, s.AppendAudit(ctx, []store.AuditEvent{ev("e0")}))
	run := func(writes ...func() error) []error {
		t.Helper()
		b.Hold()
		errs := make([]error, len(writes))
		var wg sync.WaitGroup
		for i, w := range writes {
			wg.Add(1)
			go func() { defer wg.Done(); errs[i] = w() }()
			for b.Queued() != i+1 { // queue them in order
				time.Sleep(time.Millisecond)
			}
		}
		b.Release()
		wg.Wait()
		return errs
	}
	errs := run(
		func() error { return s.PutKeyRecord(ctx, rec("r1")) },
		func() error { return s.AppendAudit(ctx, []store.AuditEvent{ev("e1"), ev("e2")}) },
		func() error { return s.PutKeyRecord(ctx, rec("r2")) },
	)
	for i, err := range errs {
		if err != nil {
			t.Fatalf("write %d of a merged batch: %v", i, err)
		}
	}
	errs = run(
		func() error { return s.PutKeyRecord(ctx, rec("r3")) },
		func() error { return s.AppendAudit(ctx, []store.AuditEvent{ev("e0")}) }, // a duplicate
		func() error { return s.AppendAudit(ctx, []store.AuditEvent{ev("e3")}) },
	)
	if errs[0] != nil || !errors.Is(errs[1], store.ErrExists) || errs[2] != nil {
		t.Fatalf("merged batch with a duplicate event: %v, want nil, ErrExists, nil", errs)
	}
	errs = run(
		func() error { return s.PutKeyRecord(ctx, rec("r4")) },
		func() error { return s.PutKeyRecord(ctx, rec("r1")) }, // a duplicate
	)
	if errs[0] != nil || !errors.Is(errs[1], store.ErrExists) {
		t.Fatalf("batch of key records with a duplicate: %v, want nil, ErrExists", errs)
	}
	recs, err := s.ActiveKeyRecords(ctx, "i-0123456789abcdef0", "u", now)
	must(t, err)
	evs, _, err := s.LookupAudit(ctx, store.AuditFilter{Limit: 100})
	must(t, err)
	if len(recs) != 4 || len(evs) != 4 {
		t.Fatalf("%d key records and %d events stored, want 4 and 4", len(recs), len(evs))
	}

	// A call's key record that fails on its own (here a duplicate request
	// ID) after its batch failed: its success event, queued after it, is
	// left out rather than stored, and the others' events are stored; the
	// event that says the call failed is stored.
	call := func(id, request, code string) store.AuditEvent {
		e := ev(id)
		e.RequestID, e.ErrorCode = request, code
		return e
	}
	errs = run(
		func() error { return s.PutKeyRecord(ctx, rec("r1")) }, // a duplicate
		func() error {
			return s.AppendAudit(ctx, []store.AuditEvent{call("e4", "r1", ""), call("e5", "r5", "")})
		},
	)
	var skipped *store.SkippedEventsError
	if !errors.Is(errs[0], store.ErrExists) || !errors.As(errs[1], &skipped) || len(skipped.Skipped) != 1 ||
		!errors.Is(skipped.Skipped["e4"], store.ErrKeyRecordFailed) {
		t.Fatalf("a failed key record and its success event: %v, %v; want ErrExists, e4 left out", errs[0], errs[1])
	}
	must(t, s.AppendAudit(ctx, []store.AuditEvent{call("e6", "r1", "InternalFailure")}))
	// Its key record failed in an earlier batch: the same.
	errs = run(func() error { return s.PutKeyRecord(ctx, rec("r2")) }) // a duplicate
	if !errors.Is(errs[0], store.ErrExists) {
		t.Fatalf("a duplicate key record alone: %v", errs[0])
	}
	err = s.AppendAudit(ctx, []store.AuditEvent{call("e7", "r2", "")})
	if !errors.As(err, &skipped) || !errors.Is(skipped.Skipped["e7"], store.ErrKeyRecordFailed) {
		t.Fatalf("the success event of a key record that failed before: %v", err)
	}
	// Once: a later event of that request ID is stored.
	must(t, s.AppendAudit(ctx, []store.AuditEvent{call("e8", "r2", "")}))
	evs, _, err = s.LookupAudit(ctx, store.AuditFilter{Limit: 100})
	must(t, err)
	got := map[string]bool{}
	for _, e := range evs {
		got[e.ID] = true
	}
	if len(evs) != 7 || got["e4"] || got["e7"] || !got["e5"] || !got["e6"] || !got["e8"] {
		t.Fatalf("events stored: %v; want e0-e3, e5, e6, e8", got)
	}

	// A write-ahead event's final version (Replace) in a merged batch that
	// fails (a duplicate): redone on its own, it still replaces its pending
	// version rather than failing as a duplicate itself.
	final := ev("e3")
	final.Replace, final.ErrorCode, final.Record = true, "NoSuchEntity", []byte(`{"final":true}`)
	errs = run(
		func() error { return s.AppendAudit(ctx, []store.AuditEvent{final}) },
		func() error { return s.AppendAudit(ctx, []store.AuditEvent{ev("e0")}) }, // a duplicate
		func() error { return s.AppendAudit(ctx, []store.AuditEvent{ev("e9")}) },
	)
	if errs[0] != nil || !errors.Is(errs[1], store.ErrExists) || errs[2] != nil {
		t.Fatalf("merged batch with a final version and a duplicate: %v, want nil, ErrExists, nil", errs)
	}
	evs, _, err = s.LookupAudit(ctx, store.AuditFilter{Limit: 100})
	must(t, err)
	n3 := 0
	for _, e := range evs {
		if e.ID == "e3" {
			n3++
			if e.ErrorCode != "NoSuchEntity" || string(e.Record) != `{"final":true}` {
				t.Fatalf("e3 after its final version: %+v", e)
			}
		}
	}
	if len(evs) != 8 || n3 != 1 {
		t.Fatalf("%d events, e3 %d times; want 8, once", len(evs), n3)
	}
}
