package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kaginashi/kaginashi/internal/store"
	"github.com/kaginashi/kaginashi/internal/store/sqlite"
)

// failingStore is a real SQLite store whose audit commits fail on demand,
// as they do when the disk is full.
type failingStore struct {
	store.Store
	failAll, failFinals atomic.Bool
}

var errDiskFull = errors.New("database or disk is full")

func (f *failingStore) AppendAudit(ctx context.Context, evs []store.AuditEvent) error {
	if f.failAll.Load() {
		return errDiskFull
	}
	for _, e := range evs {
		if e.Replace && f.failFinals.Load() {
			return errDiskFull
		}
	}
	return f.Store.AppendAudit(ctx, evs)
}

func newWriteAheadWriter(t *testing.T) (*Writer, *failingStore, *bytes.Buffer, *sync.Mutex) {
	t.Helper()
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	fs := &failingStore{Store: st}
	var sink bytes.Buffer
	var mu sync.Mutex
	w := NewWriter(fs, lockedWriter{&sink, &mu}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	t.Cleanup(func() { w.Close() })
	return w, fs, &sink, &mu
}

func callEvent(user string) *Event {
	return &Event{EventTime: time.Now(), EventSource: "iam.amazonaws.com", EventName: "CreateUser",
		UserIdentity:        Identity{Type: "Root", AccountID: "123456789012"},
		RequestParameters:   map[string]any{"userName": user},
		AdditionalEventData: map[string]any{"decision": "Allowed"}}
}

func finalOf(pending *Event, user string) *Event {
	ev := callEvent(user)
	ev.EventTime = pending.EventTime
	ev.ResponseElements = map[string]any{"user": map[string]any{"userName": user}}
	ev.Completes = pending
	return ev
}

func storedEvents(t *testing.T, w *Writer) []map[string]any {
	t.Helper()
	evs, _, err := w.st.LookupAudit(t.Context(), store.AuditFilter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	for _, e := range evs {
		var m map[string]any
		if err := json.Unmarshal(e.Record, &m); err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

func sinkLines(t *testing.T, sink *bytes.Buffer, mu *sync.Mutex) []map[string]any {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(sink.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("sink line %q: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

func outcome(m map[string]any) any {
	a, _ := m["additionalEventData"].(map[string]any)
	return a["outcome"]
}

// TestWriteAheadThenFinal: the pending version is durable (outcome
// pending) before the call runs and not in the sink; the final version
// replaces it under the same event ID, so the store and the sink each
// hold the call once, final.
func TestWriteAheadThenFinal(t *testing.T) {
	w, _, sink, mu := newWriteAheadWriter(t)
	ctx := t.Context()
	pending := callEvent("alice")
	pending.WriteAhead = true
	if err := w.Record(ctx, pending); err != nil {
		t.Fatal(err)
	}
	got := storedEvents(t, w)
	if len(got) != 1 || got[0]["eventID"] != pending.EventID || outcome(got[0]) != "pending" || got[0]["responseElements"] != nil {
		t.Fatalf("after the write-ahead record, the store has %v", got)
	}
	if lines := sinkLines(t, sink, mu); len(lines) != 0 {
		t.Fatalf("the sink got the pending version: %v", lines)
	}

	final := finalOf(pending, "alice")
	if err := w.Record(ctx, final); err != nil {
		t.Fatal(err)
	}
	if final.EventID != pending.EventID {
		t.Fatalf("final event ID %s, pending %s", final.EventID, pending.EventID)
	}
	got = storedEvents(t, w)
	if len(got) != 1 || got[0]["eventID"] != pending.EventID || outcome(got[0]) != nil || got[0]["responseElements"] == nil {
		t.Fatalf("after the final record, the store has %v", got)
	}
	lines := sinkLines(t, sink, mu)
	if len(lines) != 1 || lines[0]["eventID"] != pending.EventID || outcome(lines[0]) != nil {
		t.Fatalf("sink: %v", lines)
	}
}

// TestWriteAheadFinalFails: when the final version cannot be committed
// (the disk filled while the call ran), Record says so, the pending
// version stays in the store, and the sink gets it, once.
func TestWriteAheadFinalFails(t *testing.T) {
	w, fs, sink, mu := newWriteAheadWriter(t)
	ctx := t.Context()
	pending := callEvent("bob")
	pending.WriteAhead = true
	if err := w.Record(ctx, pending); err != nil {
		t.Fatal(err)
	}
	fs.failFinals.Store(true)
	if err := w.Record(ctx, finalOf(pending, "bob")); err == nil {
		t.Fatal("the final version's failed commit was not reported")
	}
	got := storedEvents(t, w)
	if len(got) != 1 || got[0]["eventID"] != pending.EventID || outcome(got[0]) != "pending" {
		t.Fatalf("store: %v", got)
	}
	lines := sinkLines(t, sink, mu)
	if len(lines) != 1 || lines[0]["eventID"] != pending.EventID || outcome(lines[0]) != "pending" {
		t.Fatalf("sink: %v", lines)
	}

	// After Close the final cannot be queued: the pending version still
	// reaches the sink.
	fs.failFinals.Store(false)
	p2 := callEvent("carol")
	p2.WriteAhead = true
	if err := w.Record(ctx, p2); err != nil {
		t.Fatal(err)
	}
	w.Close()
	if err := w.Record(ctx, finalOf(p2, "carol")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Record after Close: %v", err)
	}
	lines = sinkLines(t, sink, mu)
	if len(lines) != 2 || lines[1]["eventID"] != p2.EventID || outcome(lines[1]) != "pending" {
		t.Fatalf("sink after Close: %v", lines)
	}
}

// TestWriteAheadRefused: when the write-ahead version cannot be
// committed, Record says so (the call must not run) and nothing of it
// reaches the sink, not even once its failure is recorded.
func TestWriteAheadRefused(t *testing.T) {
	w, fs, sink, mu := newWriteAheadWriter(t)
	ctx := t.Context()
	fs.failAll.Store(true)
	pending := callEvent("dave")
	pending.WriteAhead = true
	if err := w.Record(ctx, pending); err == nil {
		t.Fatal("a write-ahead record on a full disk succeeded")
	}
	final := finalOf(pending, "dave")
	final.ErrorCode, final.ResponseElements = "ServiceFailure", nil
	if err := w.Record(ctx, final); err == nil {
		t.Fatal("the failure's record on a full disk succeeded")
	}
	if lines := sinkLines(t, sink, mu); len(lines) != 0 {
		t.Fatalf("sink: %v", lines)
	}
	// The disk has room again: the next call is recorded at once.
	fs.failAll.Store(false)
	if err := w.Record(ctx, final); err != nil {
		t.Fatal(err)
	}
	if got := storedEvents(t, w); len(got) != 1 || got[0]["errorCode"] != "ServiceFailure" {
		t.Fatalf("store: %v", got)
	}
}

// TestWriteAheadConcurrent: many calls' pending and final versions share
// group commits; each call ends as one final event in the store and one
// line in the sink.
func TestWriteAheadConcurrent(t *testing.T) {
	w, _, sink, mu := newWriteAheadWriter(t)
	ctx := t.Context()
	const n = 100
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			user := fmt.Sprint("u", i)
			p := callEvent(user)
			p.WriteAhead = true
			if err := w.Record(ctx, p); err != nil {
				errs <- err
				return
			}
			if err := w.Record(ctx, finalOf(p, user)); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	got := storedEvents(t, w)
	lines := sinkLines(t, sink, mu)
	if len(got) != n || len(lines) != n {
		t.Fatalf("%d stored events and %d sink lines, want %d each", len(got), len(lines), n)
	}
	for _, m := range append(got, lines...) {
		if outcome(m) != nil {
			t.Fatalf("a pending version remains: %v", m)
		}
	}
}
