package audit

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kaginashi/kaginashi/internal/ratelimit"
	"github.com/kaginashi/kaginashi/internal/store"
	"github.com/kaginashi/kaginashi/internal/store/sqlite"
	"github.com/kaginashi/kaginashi/internal/syncbuf"
)

// TestUnauthenticatedSummaries: on a real SQLite store, calls beyond a
// source's budget become one summary event per source, with the right
// count, times and codes, and the sources beyond the sampler's table one
// "other sources" summary.
func TestUnauthenticatedSummaries(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var sink syncbuf.Buffer
	w := NewWriter(st, &sink, discardLog())
	defer w.Close()
	clock := &fakeClock{t: time.Date(2026, 11, 29, 1, 0, 0, 0, time.UTC)}
	u := &Unauthenticated{
		Sampler: ratelimit.NewSampler(1, 2, 2, clock.now), Audit: w,
		Account: "123456789012", Region: "eu-west-1", Log: discardLog(), Now: clock.now,
	}
	start := clock.now()
	admitted := 0
	for i := 0; i < 10; i++ {
		code := "MissingAuthenticationToken"
		if i%2 == 1 {
			code = "SignatureDoesNotMatch"
		}
		if u.Admit("192.0.2.1", code) {
			admitted++
		}
		clock.set(clock.now().Add(10 * time.Millisecond))
	}
	if admitted != 2 {
		t.Fatalf("%d of 10 admitted, want the burst of 2", admitted)
	}
	last := clock.now().Add(-10 * time.Millisecond)
	u.Admit("192.0.2.2", "x")
	// The table (2) is full: the others share one budget (burst 2).
	for _, src := range []string{"198.51.100.1", "198.51.100.2", "198.51.100.2", "198.51.100.3"} {
		u.Admit(src, "InvalidClientTokenId")
	}
	if got := u.Suppressed(); got != 8+2 {
		t.Fatalf("Suppressed = %d, want 10", got)
	}
	clock.set(start.Add(time.Minute))
	if err := u.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	evs, _, err := st.LookupAudit(ctx, store.AuditFilter{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 2 {
		t.Fatalf("%d events, want 2 summaries", len(evs))
	}
	recs := map[string]map[string]any{}
	for _, e := range evs {
		if e.Name != SuppressedEventName || e.Source != "kaginashi" {
			t.Fatalf("event %s from %s, want %s from kaginashi", e.Name, e.Source, SuppressedEventName)
		}
		var r map[string]any
		if err := json.Unmarshal(e.Record, &r); err != nil {
			t.Fatal(err)
		}
		recs[r["sourceIPAddress"].(string)] = r
	}
	r := recs["192.0.2.1"]
	if r == nil {
		t.Fatalf("no summary for 192.0.2.1: %v", recs)
	}
	if r["eventType"] != "AwsServiceEvent" || r["awsRegion"] != "eu-west-1" || r["recipientAccountId"] != "123456789012" ||
		r["eventTime"] != "2026-11-29T01:01:00Z" {
		t.Errorf("summary's envelope: %v", r)
	}
	resp := r["responseElements"].(map[string]any)
	codes := resp["errorCodes"].(map[string]any)
	if resp["suppressedCount"] != 8.0 || codes["MissingAuthenticationToken"] != 4.0 || codes["SignatureDoesNotMatch"] != 4.0 {
		t.Errorf("summary's counts: %v", resp)
	}
	if resp["firstEventTime"] != start.Add(20*time.Millisecond).Format(time.RFC3339Nano) || resp["lastEventTime"] != last.Format(time.RFC3339Nano) {
		t.Errorf("summary's times: %v, want %s to %s", resp, start.Add(20*time.Millisecond), last)
	}
	if p := r["requestParameters"].(map[string]any); p["auditRatePerSecond"] != 1.0 || p["auditBurst"] != 2.0 {
		t.Errorf("summary's budget: %v", p)
	}
	if o := recs[OtherSources]; o == nil || o["responseElements"].(map[string]any)["suppressedCount"] != 2.0 {
		t.Errorf("other sources' summary: %v", o)
	}
	if n := strings.Count(sink.String(), SuppressedEventName); n != 2 {
		t.Errorf("the sink got %d summaries, want 2", n)
	}
	// Nothing new: no summary.
	if err := u.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if evs, _, _ := st.LookupAudit(ctx, store.AuditFilter{Limit: 10}); len(evs) != 2 {
		t.Fatalf("%d events after an empty flush, want 2", len(evs))
	}
}

// flakyRecorder fails while fail is set.
type flakyRecorder struct {
	mu   sync.Mutex
	fail bool
	evs  []*Event
}

func (f *flakyRecorder) Record(_ context.Context, ev *Event) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail {
		return errors.New("disk full")
	}
	f.evs = append(f.evs, ev)
	return nil
}

// TestUnauthenticatedSummaryRetried: a summary that cannot be recorded
// is not lost: the next flush records it, with what came meanwhile.
func TestUnauthenticatedSummaryRetried(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 11, 29, 1, 0, 0, 0, time.UTC)}
	rec := &flakyRecorder{fail: true}
	u := &Unauthenticated{Sampler: ratelimit.NewSampler(1, 1, 0, clock.now), Audit: rec, Now: clock.now}
	for range 4 {
		u.Admit("192.0.2.1", "c")
	}
	if err := u.Flush(t.Context()); err == nil || !strings.Contains(err.Error(), "3 calls") {
		t.Fatalf("Flush = %v, want the failure with its 3 calls", err)
	}
	u.Admit("192.0.2.1", "c")
	rec.fail = false
	if err := u.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if len(rec.evs) != 1 || rec.evs[0].ResponseElements["suppressedCount"] != 4 {
		t.Fatalf("recorded %d summaries (%v), want one of 4 calls", len(rec.evs), rec.evs)
	}
}

// TestUnauthenticatedRun: Run records summaries on its own, every Every.
func TestUnauthenticatedRun(t *testing.T) {
	rec := &flakyRecorder{}
	u := &Unauthenticated{Sampler: ratelimit.NewSampler(1, 1, 0, nil), Audit: rec, Every: 10 * time.Millisecond}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { u.Run(ctx); close(done) }()
	u.Admit("192.0.2.1", "c")
	u.Admit("192.0.2.1", "c")
	deadline := time.Now().Add(5 * time.Second)
	for {
		rec.mu.Lock()
		n := len(rec.evs)
		rec.mu.Unlock()
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Run recorded no summary")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
}

// TestUnauthenticatedOff: with no budget (rate 0) every call is admitted
// and nothing is summarized; a nil Unauthenticated admits too.
func TestUnauthenticatedOff(t *testing.T) {
	rec := &flakyRecorder{}
	u := &Unauthenticated{Sampler: ratelimit.NewSampler(0, 1, 0, nil), Audit: rec}
	for range 100 {
		if !u.Admit("192.0.2.1", "c") {
			t.Fatal("refused with the budget off")
		}
	}
	if err := u.Flush(t.Context()); err != nil || len(rec.evs) != 0 {
		t.Fatalf("Flush = %v, %d events", err, len(rec.evs))
	}
	var none *Unauthenticated
	if !none.Admit("x", "c") || none.Suppressed() != 0 || none.Flush(t.Context()) != nil {
		t.Fatal("a nil Unauthenticated is not off")
	}
}
