package sqlite

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/kaginashi/kaginashi/internal/store"
	"github.com/kaginashi/kaginashi/internal/store/storetest"
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

// TestGroupCommit: key records and audit events queued together commit
// in one transaction (storetest.GroupCommit).
func TestGroupCommit(t *testing.T) {
	db, err := Open(t.Context(), filepath.Join(t.TempDir(), "k.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	storetest.GroupCommit(t, db, db.writes)
}
