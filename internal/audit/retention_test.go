package audit

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kaginashi/kaginashi/internal/store"
	"github.com/kaginashi/kaginashi/internal/store/sqlite"
)

// TestRetentionPrunes: on a real SQLite store, events older than Keep go,
// in batches of Batch, newer ones stay, and the run is itself an event.
func TestRetentionPrunes(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	w := NewWriter(st, nil, discardLog())
	defer w.Close()
	for i := range 25 {
		age := 100*24*time.Hour - time.Duration(i)*time.Hour // 100 days old and younger
		if i >= 20 {
			age = time.Duration(i) * time.Hour // recent
		}
		if err := w.Record(ctx, &Event{EventTime: now.Add(-age), EventSource: "iam.amazonaws.com", EventName: "GetUser"}); err != nil {
			t.Fatal(err)
		}
	}
	var deleted int
	var batches countingPruner
	batches.next = st
	r := &Retention{Store: &batches, Audit: w, Keep: 90 * 24 * time.Hour, Batch: 7, Pause: time.Millisecond,
		Account: "123456789012", Region: "us-east-1", Deleted: func(n int) { deleted += n }, Log: discardLog(),
		Now: func() time.Time { return now }}
	n, err := r.Prune(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n != 20 || deleted != 20 {
		t.Fatalf("deleted %d (reported %d), want 20", n, deleted)
	}
	if batches.calls != 3 { // 7 + 7 + 6
		t.Errorf("%d DELETEs, want 3 batches of at most 7", batches.calls)
	}
	left, _, err := st.LookupAudit(ctx, store.AuditFilter{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]int{}
	for _, e := range left {
		names[e.Name]++
	}
	if names["GetUser"] != 5 || names["DeleteAuditEvents"] != 1 {
		t.Fatalf("left %v, want 5 recent GetUser and 1 DeleteAuditEvents", names)
	}
	var ev Event
	for _, e := range left {
		if e.Name == "DeleteAuditEvents" {
			if err := json.Unmarshal(e.Record, &ev); err != nil {
				t.Fatal(err)
			}
		}
	}
	if ev.EventType != "AwsServiceEvent" || ev.ResponseElements["deletedCount"] != float64(20) ||
		ev.RequestParameters["deleteBefore"] != "2026-08-30T12:00:00Z" || ev.RecipientAccountID != "123456789012" {
		t.Errorf("the deletion's event: %+v", ev)
	}

	// Nothing more to delete: no event either.
	if n, err := r.Prune(ctx); n != 0 || err != nil {
		t.Fatalf("second run: %d, %v", n, err)
	}
	left2, _, _ := st.LookupAudit(ctx, store.AuditFilter{Limit: 100})
	if len(left2) != len(left) {
		t.Errorf("a run that deleted nothing recorded something: %d events, want %d", len(left2), len(left))
	}
}

type countingPruner struct {
	next  Pruner
	calls int
	err   error
}

func (c *countingPruner) DeleteAuditBefore(ctx context.Context, cutoff time.Time, limit int) (int, error) {
	c.calls++
	if c.err != nil && c.calls > 1 {
		return 0, c.err
	}
	return c.next.DeleteAuditBefore(ctx, cutoff, limit)
}

// TestRetentionFailureIsRecorded: a run that fails half-way still records
// what it deleted, with the failure.
func TestRetentionFailureIsRecorded(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Now()
	w := NewWriter(st, nil, discardLog())
	defer w.Close()
	for range 5 {
		if err := w.Record(ctx, &Event{EventTime: now.Add(-48 * time.Hour), EventName: "GetUser"}); err != nil {
			t.Fatal(err)
		}
	}
	boom := errors.New("disk on fire")
	p := &countingPruner{next: st, err: boom}
	r := &Retention{Store: p, Audit: w, Keep: 24 * time.Hour, Batch: 2, Pause: time.Millisecond}
	n, err := r.Prune(ctx)
	if n != 2 || !errors.Is(err, boom) {
		t.Fatalf("Prune = %d, %v; want 2 and the store's error", n, err)
	}
	evs, _, _ := st.LookupAudit(ctx, store.AuditFilter{EventName: "DeleteAuditEvents"})
	if len(evs) != 1 || !strings.Contains(string(evs[0].Record), "disk on fire") {
		t.Fatalf("the failed run's event: %d events %v", len(evs), evs)
	}
}

// TestRetentionOff: Keep 0 keeps everything; Run returns at once.
func TestRetentionOff(t *testing.T) {
	p := &countingPruner{}
	r := &Retention{Store: p}
	done := make(chan struct{})
	go func() { r.Run(context.Background()); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run with Keep 0 did not return")
	}
	if p.calls != 0 {
		t.Errorf("%d deletes with retention off", p.calls)
	}
}

// TestFileSinkReopen: after the file is moved away (logrotate), Reopen
// starts a new one at the path; the moved file keeps what it had.
func TestFileSinkReopen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.jsonl")
	s, err := OpenFileSink(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	mustWrite := func(line string) {
		if _, err := s.Write([]byte(line + "\n")); err != nil {
			t.Fatal(err)
		}
	}
	mustWrite("one")
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	mustWrite("two") // still the old file, as before the SIGHUP
	if err := s.Reopen(); err != nil {
		t.Fatal(err)
	}
	mustWrite("three")
	old, _ := os.ReadFile(path + ".1")
	cur, _ := os.ReadFile(path)
	if string(old) != "one\ntwo\n" || string(cur) != "three\n" {
		t.Fatalf("rotated %q, current %q", old, cur)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("the new file's mode: %v %v, want 0600", fi.Mode(), err)
	}
	// A path that cannot be opened keeps the old file.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o500); err != nil {
		t.Fatal(err)
	}
	defer os.Chmod(dir, 0o700)
	if os.Geteuid() != 0 {
		if err := s.Reopen(); err == nil {
			t.Error("Reopen into an unwritable directory: no error")
		}
		mustWrite("four")
	}
}

func discardLog() *slog.Logger { return slog.New(slog.DiscardHandler) }
