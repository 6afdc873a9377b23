package groupcommit

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/kaginashi/kaginashi/internal/store"
)

// fakeEngine records the batches it commits.
type fakeEngine struct {
	mu      sync.Mutex
	batches [][]string
	fail    string // a request ID whose write fails, in a batch and alone
}

func (f *fakeEngine) engine() Engine {
	name := func(it *Item) string {
		if it.IsAudit() {
			return "audit:" + it.Events[0].ID
		}
		return "key:" + it.Record.RequestID
	}
	return Engine{
		Commit: func(ctx context.Context, batch []*Item) error {
			f.mu.Lock()
			defer f.mu.Unlock()
			var names []string
			for _, it := range batch {
				if !it.IsAudit() && it.Record.RequestID == f.fail {
					return errors.New("duplicate")
				}
				names = append(names, name(it))
			}
			f.batches = append(f.batches, names)
			return nil
		},
		Alone: func(ctx context.Context, it *Item) {
			f.mu.Lock()
			defer f.mu.Unlock()
			if !it.IsAudit() && it.Record.RequestID == f.fail {
				it.Err = errors.New("duplicate")
				return
			}
			f.batches = append(f.batches, []string{name(it)})
		},
	}
}

func TestQueueKeyCommitsWithTheNextWrite(t *testing.T) {
	ctx := context.Background()
	f := &fakeEngine{}
	b := New(f.engine())
	wait := b.QueueKey(ctx, store.KeyRecord{RequestID: "r1"})
	if len(f.batches) != 0 || b.Queued() != 1 {
		t.Fatalf("a queued key record committed on its own: %v, queued %d", f.batches, b.Queued())
	}
	if err := b.AppendAudit(ctx, []store.AuditEvent{{ID: "e1"}}); err != nil {
		t.Fatal(err)
	}
	if err := wait(); err != nil {
		t.Fatal(err)
	}
	if len(f.batches) != 1 || len(f.batches[0]) != 2 || f.batches[0][0] != "key:r1" || f.batches[0][1] != "audit:e1" {
		t.Fatalf("batches %v, want one [key:r1 audit:e1]", f.batches)
	}
}

func TestQueueKeyWaitCommitsAlone(t *testing.T) {
	ctx := context.Background()
	f := &fakeEngine{}
	b := New(f.engine())
	if err := b.QueueKey(ctx, store.KeyRecord{RequestID: "r1"})(); err != nil {
		t.Fatal(err)
	}
	if len(f.batches) != 1 || f.batches[0][0] != "key:r1" || b.Queued() != 0 {
		t.Fatalf("batches %v, queued %d", f.batches, b.Queued())
	}
}

func TestQueueKeyWhileBusy(t *testing.T) {
	ctx := context.Background()
	f := &fakeEngine{fail: "bad"}
	b := New(f.engine())
	b.Hold()
	waitBad := b.QueueKey(ctx, store.KeyRecord{RequestID: "bad"})
	waitOK := b.QueueKey(ctx, store.KeyRecord{RequestID: "r1"})
	errc := make(chan error, 1)
	go func() { errc <- b.AppendAudit(ctx, []store.AuditEvent{{ID: "e1"}}) }()
	for b.Queued() != 3 {
		// wait for the audit write to queue
	}
	// The key records nobody waits for yet are not handed the commit:
	// the audit write, which waits, leads it.
	b.Release()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if err := waitOK(); err != nil {
		t.Fatal(err)
	}
	if err := waitBad(); err == nil {
		t.Fatal("the failing key record reported success")
	}
	if b.Queued() != 0 {
		t.Fatalf("queued %d after all committed", b.Queued())
	}
}

func TestQueueKeyConcurrent(t *testing.T) {
	ctx := context.Background()
	f := &fakeEngine{}
	b := New(f.engine())
	var wg sync.WaitGroup
	for i := range 200 {
		wg.Go(func() {
			wait := b.QueueKey(ctx, store.KeyRecord{RequestID: string(rune('a' + i%26))})
			var err error
			if i%2 == 0 {
				err = b.AppendAudit(ctx, []store.AuditEvent{{ID: "e"}})
			}
			if werr := wait(); werr != nil || err != nil {
				t.Error(werr, err)
			}
		})
	}
	wg.Wait()
	n := 0
	for _, batch := range f.batches {
		n += len(batch)
	}
	if n != 300 || b.Queued() != 0 {
		t.Fatalf("%d writes committed, %d queued; want 300, 0", n, b.Queued())
	}
}
