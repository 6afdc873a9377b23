// Package groupcommit commits concurrent writes of the SendSSHPublicKey
// hot path together: key records, which arrive as fast as the calls, and
// the audit writer's batches of events, one of which follows each key
// record before its call answers. Whatever is queued when the previous
// commit ends goes into one transaction, so a call costs about one commit
// (one fsync, one WAL flush) instead of one for its key record and one for
// its event.
//
// There is no goroutine: the first caller to find no commit in progress
// commits everything queued, then hands the role to the first caller
// queued meanwhile.
package groupcommit

import (
	"context"
	"sync"
	"time"

	"github.com/kaginashi/kaginashi/internal/store"
)

// Item is one caller's write: a key record, or a batch of audit events.
type Item struct {
	Record store.KeyRecord
	Events []store.AuditEvent // nil: Record is the write
	Err    error              // the outcome, set by the engine's functions

	wake chan bool // true: commit the queue now; false: done, see Err
}

// IsAudit tells an audit batch from a key record.
func (it *Item) IsAudit() bool { return it.Events != nil }

// Engine is how a store engine writes.
type Engine struct {
	// Commit writes a whole batch in one transaction.
	Commit func(ctx context.Context, batch []*Item) error
	// Alone writes one item in a transaction of its own and sets its Err:
	// after a failed batch, so that each caller gets its own outcome.
	Alone func(ctx context.Context, it *Item)
}

// MaxBatch bounds one transaction, in items (an audit item holds up to
// the audit writer's batch of events).
const MaxBatch = 256

// Batcher queues writes for one engine.
type Batcher struct {
	eng Engine

	mu    sync.Mutex
	busy  bool // a caller is committing a batch
	queue []*Item
}

// New makes a batcher.
func New(eng Engine) *Batcher { return &Batcher{eng: eng} }

// PutKey writes a key record.
func (b *Batcher) PutKey(ctx context.Context, rec store.KeyRecord) error {
	return b.do(ctx, &Item{Record: rec})
}

// AppendAudit writes a batch of audit events (not empty).
func (b *Batcher) AppendAudit(ctx context.Context, events []store.AuditEvent) error {
	return b.do(ctx, &Item{Events: events})
}

func (b *Batcher) do(ctx context.Context, it *Item) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	it.wake = make(chan bool, 1)
	b.mu.Lock()
	b.queue = append(b.queue, it)
	if b.busy {
		b.mu.Unlock()
		// Wait whatever the context says: the write is queued, and its
		// fate decides the caller's answer.
		if lead := <-it.wake; !lead {
			return it.Err
		}
		b.mu.Lock()
	}
	b.busy = true
	n := min(len(b.queue), MaxBatch)
	batch := b.queue[:n:n]
	b.queue = b.queue[n:]
	b.mu.Unlock()

	// The batch holds other callers' writes: one caller's cancellation
	// must not abandon them half-way.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	b.commit(cctx, batch)
	cancel()

	b.mu.Lock()
	if len(b.queue) > 0 {
		b.queue[0].wake <- true
	} else {
		b.busy = false
		b.queue = nil // let the backing array go
	}
	b.mu.Unlock()
	for _, x := range batch {
		if x != it {
			x.wake <- false
		}
	}
	return it.Err
}

// commit writes a batch in one transaction; if that fails (a duplicate
// request or event ID, say), each item on its own.
func (b *Batcher) commit(ctx context.Context, batch []*Item) {
	err := b.eng.Commit(ctx, batch)
	if err == nil || len(batch) == 1 {
		for _, it := range batch {
			it.Err = err
		}
		return
	}
	for _, it := range batch {
		b.eng.Alone(ctx, it)
	}
}

// Hold makes the batcher behave as if a caller were committing, so that
// writes queue (for tests).
func (b *Batcher) Hold() {
	b.mu.Lock()
	b.busy = true
	b.mu.Unlock()
}

// Queued is how many writes wait (for tests).
func (b *Batcher) Queued() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.queue)
}

// Release hands the queue to its first write (after Hold, for tests).
func (b *Batcher) Release() {
	b.mu.Lock()
	b.queue[0].wake <- true
	b.mu.Unlock()
}
