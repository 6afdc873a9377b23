package sqlite_test

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/kaginashi/kaginashi/internal/store"
	"github.com/kaginashi/kaginashi/internal/store/sqlite"
)

// TestKeyRecordGroupCommit sends many concurrent key records, one of them
// a duplicate: they share transactions, yet each caller gets its own
// record's outcome and every other record is stored.
func TestKeyRecordGroupCommit(t *testing.T) {
	ctx := t.Context()
	db := open(t)
	now := time.Now().UTC().Truncate(time.Microsecond)
	rec := func(i int) store.KeyRecord {
		return store.KeyRecord{RequestID: fmt.Sprintf("req-%03d", i), InstanceID: "i-0123456789abcdef0", OSUser: "ec2-user",
			PublicKey: "ssh-ed25519 AAAA", Fingerprint: "SHA256:x", CallerARN: "arn:aws:iam::123456789012:user/a",
			CreatedAt: now, ExpiresAt: now.Add(time.Minute)}
	}
	if err := db.PutKeyRecord(ctx, rec(0)); err != nil {
		t.Fatal(err)
	}
	const n = 200
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { errs[i] = db.PutKeyRecord(ctx, rec(i)) }) // rec(0) again: a duplicate
	}
	wg.Wait()
	if !errors.Is(errs[0], store.ErrExists) {
		t.Errorf("duplicate record: %v, want ErrExists", errs[0])
	}
	for i := 1; i < n; i++ {
		if errs[i] != nil {
			t.Errorf("record %d: %v", i, errs[i])
		}
	}
	got, err := db.ActiveKeyRecords(ctx, "i-0123456789abcdef0", "", now)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != n {
		t.Fatalf("%d active records, want %d", len(got), n)
	}
}

// TestIAMGenerationAcrossHandles: a handle sees its own IAM writes at
// once, and another process's (another handle on the same file) within
// the max age.
func TestIAMGenerationAcrossHandles(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "kaginashi.db")
	const maxAge = 300 * time.Millisecond
	a, err := sqlite.Open(ctx, path, sqlite.WithIAMGenerationMaxAge(maxAge))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := sqlite.Open(ctx, path, sqlite.WithIAMGenerationMaxAge(maxAge))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	gen := func(db *sqlite.DB) int64 {
		t.Helper()
		g, err := db.IAMGeneration(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return g
	}
	ga, gb := gen(a), gen(b)
	start := time.Now()
	if err := a.CreateUser(ctx, store.User{ID: "AIDAEXAMPLEEXAMPLE01", Name: "alice", Path: "/", CreateDate: start}); err != nil {
		t.Fatal(err)
	}
	if g := gen(a); g <= ga {
		t.Fatalf("writer's generation after its write: %d, want more than %d", g, ga)
	}
	// The other handle notices within maxAge, by reading the file again.
	deadline := time.Now().Add(maxAge + 2*time.Second)
	for gen(b) <= gb {
		if time.Now().After(deadline) {
			t.Fatalf("the other handle did not see the write within %v", maxAge)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if waited := time.Since(start); waited > maxAge+time.Second {
		t.Fatalf("the other handle saw the write after %v, want about %v at most", waited, maxAge)
	}
}

// TestGetInstanceTags: the single-statement read returns the instance with
// its tags sorted by key, and without tags a nil slice.
func TestGetInstanceTags(t *testing.T) {
	ctx := t.Context()
	db := open(t)
	now := time.Now().UTC().Truncate(time.Microsecond)
	in := store.Instance{ID: "i-0123456789abcdef0", State: store.StateRunning, LaunchTime: now, LastSeen: now,
		HostKeys: []string{"ssh-ed25519 AAAA host"}, Tags: []store.Tag{{Key: "b", Value: "2"}, {Key: "a", Value: "1"}, {Key: "c", Value: ""}}}
	if err := db.PutInstance(ctx, in); err != nil {
		t.Fatal(err)
	}
	got, err := db.GetInstance(ctx, in.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := []store.Tag{{Key: "a", Value: "1"}, {Key: "b", Value: "2"}, {Key: "c", Value: ""}}
	if fmt.Sprint(got.Tags) != fmt.Sprint(want) || len(got.HostKeys) != 1 || !got.LastSeen.Equal(now) {
		t.Fatalf("GetInstance: %+v", got)
	}
	in.ID, in.Tags, in.HostKeys = "i-0123456789abcdef1", nil, nil
	if err := db.PutInstance(ctx, in); err != nil {
		t.Fatal(err)
	}
	if got, err = db.GetInstance(ctx, in.ID); err != nil || got.Tags != nil || got.HostKeys != nil {
		t.Fatalf("GetInstance without tags: %+v, %v", got, err)
	}
	if _, err := db.GetInstance(ctx, "i-0123456789abcdeff"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetInstance of an unknown ID: %v, want ErrNotFound", err)
	}
}
