package audit

import (
	"encoding/json"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kaginashi/kaginashi/internal/store"
	"github.com/kaginashi/kaginashi/internal/store/sqlite"
)

// fakeClock is a settable clock for Health's Since.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

func newHealthWriter(t *testing.T, opts ...Option) (*Writer, *failingStore) {
	t.Helper()
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	fs := &failingStore{Store: st}
	w := NewWriter(fs, nil, slog.New(slog.NewTextHandler(io.Discard, nil)), opts...)
	t.Cleanup(func() { w.Close() })
	return w, fs
}

// TestHealthFollowsTheLatestCommit: Health is failing from the first
// failed commit of a streak, keeps that start while later commits fail
// (with the latest error), and clears on the first success.
func TestHealthFollowsTheLatestCommit(t *testing.T) {
	t0 := time.Date(2026, 11, 28, 20, 0, 0, 0, time.UTC)
	clk := &fakeClock{t: t0}
	w, fs := newHealthWriter(t, WithClock(clk.now))
	if f := w.Health(); f != nil {
		t.Fatalf("a new writer is failing: %+v", f)
	}
	if err := w.Record(t.Context(), callEvent("a")); err != nil {
		t.Fatal(err)
	}
	if f := w.Health(); f != nil {
		t.Fatalf("failing after a commit succeeded: %+v", f)
	}

	fs.failAll.Store(true)
	if err := w.Record(t.Context(), callEvent("b")); err == nil {
		t.Fatal("Record succeeded on a failing store")
	}
	f := w.Health()
	if f == nil {
		t.Fatal("healthy after a commit failed")
	}
	if !f.Since.Equal(t0) || !strings.Contains(f.Err.Error(), errDiskFull.Error()) {
		t.Fatalf("Health = %v, %v; want since %v, %q", f.Since, f.Err, t0, errDiskFull)
	}

	clk.set(t0.Add(time.Minute))
	if err := w.Record(t.Context(), callEvent("c")); err == nil {
		t.Fatal("Record succeeded on a failing store")
	}
	if f := w.Health(); f == nil || !f.Since.Equal(t0) {
		t.Fatalf("a second failure moved the streak's start: %+v", f)
	}

	fs.failAll.Store(false)
	if err := w.Record(t.Context(), callEvent("d")); err != nil {
		t.Fatal(err)
	}
	if f := w.Health(); f != nil {
		t.Fatalf("still failing after a commit succeeded: %+v", f)
	}
}

// TestRecoveryProbeClearsHealthWithoutTraffic: a replica out of a load
// balancer gets no calls; the writer's own probe commits once the store
// works again, and leaves one event that marks the gap.
func TestRecoveryProbeClearsHealthWithoutTraffic(t *testing.T) {
	w, fs := newHealthWriter(t, WithRecoveryProbe(10*time.Millisecond, "123456789012", "us-east-1"))
	fs.failAll.Store(true)
	if err := w.Record(t.Context(), callEvent("b")); err == nil {
		t.Fatal("Record succeeded on a failing store")
	}
	f := w.Health()
	if f == nil {
		t.Fatal("healthy after a commit failed")
	}
	// Probes fail while the store does: still failing, same streak.
	time.Sleep(100 * time.Millisecond)
	if g := w.Health(); g == nil || !g.Since.Equal(f.Since) {
		t.Fatalf("Health while probes fail = %+v, want since %v", g, f.Since)
	}
	fs.failAll.Store(false)
	deadline := time.Now().Add(5 * time.Second)
	for w.Health() != nil {
		if time.Now().After(deadline) {
			t.Fatal("still failing 5 s after the store works again, with no traffic")
		}
		time.Sleep(5 * time.Millisecond)
	}
	evs, _, err := w.st.LookupAudit(t.Context(), store.AuditFilter{EventName: "AuditStoreRecovered", Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 {
		t.Fatalf("%d AuditStoreRecovered events, want 1", len(evs))
	}
	var rec struct {
		EventType         string         `json:"eventType"`
		RequestParameters map[string]any `json:"requestParameters"`
	}
	if err := json.Unmarshal(evs[0].Record, &rec); err != nil {
		t.Fatal(err)
	}
	if rec.EventType != "AwsServiceEvent" || rec.RequestParameters["failingSince"] != f.Since.UTC().Format(time.RFC3339) ||
		!strings.Contains(rec.RequestParameters["lastError"].(string), errDiskFull.Error()) {
		t.Fatalf("recovery event = %+v", rec)
	}
	// Healthy: no more probes.
	time.Sleep(100 * time.Millisecond)
	evs, _, err = w.st.LookupAudit(t.Context(), store.AuditFilter{EventName: "AuditStoreRecovered", Limit: 10})
	if err != nil || len(evs) != 1 {
		t.Fatalf("probes after recovery: %d events, %v", len(evs), err)
	}
}
