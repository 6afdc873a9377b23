package sqlite

import (
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/kaginashi/kaginashi/internal/store"
)

// TestKeyBatchRestoresFullSync: key records commit with synchronous=NORMAL
// (their call's audit event fsyncs them), and the writer connection is
// back at FULL afterwards, for every other write.
func TestKeyBatchRestoresFullSync(t *testing.T) {
	ctx := t.Context()
	db, err := Open(ctx, filepath.Join(t.TempDir(), "k.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	sync := func() int {
		t.Helper()
		var v int
		if err := db.write.QueryRowContext(ctx, `PRAGMA synchronous`).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	const full = 2
	if v := sync(); v != full {
		t.Fatalf("synchronous before: %d, want %d (FULL)", v, full)
	}
	now := time.Now()
	if err := db.PutKeyRecord(ctx, store.KeyRecord{RequestID: "r1", InstanceID: "i-0123456789abcdef0", OSUser: "u", PublicKey: "k",
		Fingerprint: "f", CallerARN: "a", CreatedAt: now, ExpiresAt: now.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	if v := sync(); v != full {
		t.Fatalf("synchronous after a key record: %d, want %d (FULL)", v, full)
	}
}

// TestWriteBatchMergesKeysAndAudit: key records and audit events queued
// together commit in one transaction; when one write in it fails (a
// duplicate event ID), each write is redone on its own and only that
// caller gets the error.
func TestWriteBatchMergesKeysAndAudit(t *testing.T) {
	ctx := t.Context()
	db, err := Open(ctx, filepath.Join(t.TempDir(), "k.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	now := time.Now()
	rec := func(id string) store.KeyRecord {
		return store.KeyRecord{RequestID: id, InstanceID: "i-0123456789abcdef0", OSUser: "u", PublicKey: "k",
			Fingerprint: "f", CallerARN: "a", CreatedAt: now, ExpiresAt: now.Add(time.Minute)}
	}
	ev := func(id string) store.AuditEvent {
		return store.AuditEvent{ID: id, Time: now, Name: "SendSSHPublicKey", Source: "ec2-instance-connect.amazonaws.com", Record: []byte(`{}`)}
	}
	if err := db.AppendAudit(ctx, []store.AuditEvent{ev("e0")}); err != nil {
		t.Fatal(err)
	}
	// Hold the batcher as a committing caller would, so that the writes
	// below queue; then hand the queue to the first of them.
	run := func(writes ...func() error) []error {
		t.Helper()
		b := db.writes
		b.mu.Lock()
		b.busy = true
		b.mu.Unlock()
		errs := make([]error, len(writes))
		var wg sync.WaitGroup
		for i, w := range writes {
			wg.Add(1)
			go func() { defer wg.Done(); errs[i] = w() }()
			for { // queue them in order
				b.mu.Lock()
				n := len(b.queue)
				b.mu.Unlock()
				if n == i+1 {
					break
				}
				time.Sleep(time.Millisecond)
			}
		}
		b.mu.Lock()
		b.queue[0].wake <- true
		b.mu.Unlock()
		wg.Wait()
		return errs
	}
	errs := run(
		func() error { return db.PutKeyRecord(ctx, rec("r1")) },
		func() error { return db.AppendAudit(ctx, []store.AuditEvent{ev("e1"), ev("e2")}) },
		func() error { return db.PutKeyRecord(ctx, rec("r2")) },
	)
	for i, err := range errs {
		if err != nil {
			t.Fatalf("write %d of a merged batch: %v", i, err)
		}
	}
	errs = run(
		func() error { return db.PutKeyRecord(ctx, rec("r3")) },
		func() error { return db.AppendAudit(ctx, []store.AuditEvent{ev("e0")}) }, // a duplicate
		func() error { return db.AppendAudit(ctx, []store.AuditEvent{ev("e3")}) },
	)
	if errs[0] != nil || !errors.Is(errs[1], store.ErrExists) || errs[2] != nil {
		t.Fatalf("merged batch with a duplicate event: %v, want nil, ErrExists, nil", errs)
	}
	var keys, events int
	if err := db.read.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM key_records), (SELECT count(*) FROM audit_events)`).Scan(&keys, &events); err != nil {
		t.Fatal(err)
	}
	if keys != 3 || events != 4 {
		t.Fatalf("%d key records and %d events stored, want 3 and 4", keys, events)
	}
}
