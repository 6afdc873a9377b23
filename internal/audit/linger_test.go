package audit

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/kaginashi/kaginashi/internal/store"
	"github.com/kaginashi/kaginashi/internal/store/sqlite"
)

// countingStore records the size of every AppendAudit batch.
type countingStore struct {
	store.Store
	mu      sync.Mutex
	batches []int
}

func (c *countingStore) AppendAudit(ctx context.Context, evs []store.AuditEvent) error {
	c.mu.Lock()
	c.batches = append(c.batches, len(evs))
	c.mu.Unlock()
	return c.Store.AppendAudit(ctx, evs)
}

func (c *countingStore) sizes() []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]int(nil), c.batches...)
}

func newCountingWriter(t *testing.T, opts ...Option) (*Writer, *countingStore) {
	t.Helper()
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cs := &countingStore{Store: st}
	w := NewWriter(cs, nil, slog.New(slog.NewTextHandler(io.Discard, nil)), opts...)
	t.Cleanup(func() { w.Close() })
	return w, cs
}

func lingerEvent(i int) *Event {
	return &Event{EventTime: time.Now(), EventSource: "ec2-instance-connect.amazonaws.com", EventName: "SendSSHPublicKey",
		UserIdentity: Identity{Type: "IAMUser", UserName: "alice"}, RequestID: string(rune('a' + i))}
}

// recordStaggered runs n calls that each say they are coming (Expect),
// then record their events 20 ms apart, as calls that arrive together
// and finish their work at different times.
func recordStaggered(t *testing.T, w *Writer, n int) {
	t.Helper()
	arrived := make([]func(), n)
	for i := range arrived {
		arrived[i] = w.Expect()
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer arrived[i]()
			time.Sleep(time.Duration(i) * 20 * time.Millisecond)
			arrived[i]()
			errs <- w.Record(t.Context(), lingerEvent(i))
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestLingerCommitsExpectedEventsTogether: with a linger, the events of
// calls that were being served when the first event came commit in the
// first event's transaction; without one, each commits on its own.
func TestLingerCommitsExpectedEventsTogether(t *testing.T) {
	const n = 5
	w, cs := newCountingWriter(t, WithLinger(2*time.Second))
	recordStaggered(t, w, n)
	if got := cs.sizes(); len(got) != 1 || got[0] != n {
		t.Fatalf("with a linger: batches %v, want one of %d", got, n)
	}

	// Without a linger nothing waits for the calls expected: each event
	// commits alone, even while the others are still expected. Each
	// comes once the one before is committed — staggered 20 ms apart,
	// two shared a commit whenever one took longer than that, as on a
	// loaded machine (batches [1 1 1 2]): group commit, not a linger.
	w, cs = newCountingWriter(t)
	recordChained(t, w, n)
	if got := cs.sizes(); len(got) != n {
		t.Fatalf("without a linger: batches %v, want %d of 1", got, n)
	}
}

// recordChained runs n calls that each say they are coming (Expect),
// then record their events one after the other, each once the one
// before it is committed; a commit that waits for the calls still
// expected fails it.
func recordChained(t *testing.T, w *Writer, n int) {
	t.Helper()
	arrived := make([]func(), n)
	for i := range arrived {
		arrived[i] = w.Expect()
	}
	for i := range n {
		done := make(chan error, 1)
		go func() {
			arrived[i]()
			done <- w.Record(t.Context(), lingerEvent(i))
		}()
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("event %d not committed within 10 s, %d calls still expected", i, n-1-i)
		}
	}
}

// TestLingerIsBounded: a call that never records its event holds a
// commit up to the linger, not longer.
func TestLingerIsBounded(t *testing.T) {
	const linger = 150 * time.Millisecond
	w, cs := newCountingWriter(t, WithLinger(linger))
	never := w.Expect() // a call that is stuck (or records nothing)
	defer never()
	start := time.Now()
	if err := w.Record(t.Context(), lingerEvent(0)); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < linger || d > linger+2*time.Second {
		t.Fatalf("Record took %v, want about the linger (%v)", d, linger)
	}
	if got := cs.sizes(); len(got) != 1 || got[0] != 1 {
		t.Fatalf("batches %v, want one of 1", got)
	}
}

// TestNoLingerWhenIdle: a lone call (nothing else expected) commits at
// once, whatever the linger.
func TestNoLingerWhenIdle(t *testing.T) {
	w, _ := newCountingWriter(t, WithLinger(10*time.Second))
	arrived := w.Expect()
	arrived()
	arrived() // idempotent: must not make the count negative
	start := time.Now()
	if err := w.Record(t.Context(), lingerEvent(0)); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("a lone call waited %v for a commit", d)
	}
	if n := w.expected.Load(); n != 0 {
		t.Fatalf("expected count %d after every call arrived, want 0", n)
	}
}
