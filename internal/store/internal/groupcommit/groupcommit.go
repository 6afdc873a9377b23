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
	"fmt"
	"sync"
	"time"

	"github.com/kaginashi/kaginashi/internal/store"
)

// Item is one caller's write: a key record, or a batch of audit events.
type Item struct {
	Record store.KeyRecord
	Events []store.AuditEvent // nil: Record is the write
	Err    error              // the outcome, set by the engine's functions

	// skipped: events left out of Events because their request's key
	// record failed (event ID → error); the batcher's, not the engine's.
	skipped map[string]error

	wake    chan bool // true: commit the queue now; false: done, see Err
	waiting bool      // someone waits on wake (guarded by the batcher's mu)
	done    bool      // committed or failed, Err set (guarded by the batcher's mu)
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

	// failedKeys are the request IDs whose key record failed, with its
	// error, until their call's success event comes to be left out. It
	// belongs to the caller that commits (busy): the role passes from
	// one to the next under mu, so it is never used by two at once.
	failedKeys map[string]error
}

// maxFailedKeys bounds failedKeys: an entry whose event never comes (the
// audit writer closed, say) must not stay forever. Past the bound a
// failure is not remembered; the API edge still logs it at ERROR.
const maxFailedKeys = 1024

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
	it.waiting = true
	b.mu.Lock()
	b.queue = append(b.queue, it)
	return b.wait(ctx, it)
}

// QueueKey queues a key record without waiting for it, and returns the
// function that waits for its commit. It lets a SendSSHPublicKey call's
// key record ride in the same transaction as that call's audit event,
// queued after it: the queue is first in, first out, so the record commits
// no later than the event, and the event's commit (synchronous) makes it
// durable. Until something waits, nothing commits it on its own: the
// caller must call the function (after recording its event) in every
// case, or the record waits for the next write.
func (b *Batcher) QueueKey(ctx context.Context, rec store.KeyRecord) func() error {
	if err := ctx.Err(); err != nil {
		return func() error { return err }
	}
	it := &Item{Record: rec, wake: make(chan bool, 1)}
	b.mu.Lock()
	b.queue = append(b.queue, it)
	b.mu.Unlock()
	return func() error {
		b.mu.Lock()
		if it.done {
			b.mu.Unlock()
			return it.Err
		}
		it.waiting = true
		return b.wait(ctx, it)
	}
}

// wait waits for it, which is queued (or was, and is now in the batch in
// flight), to be committed, leading the commit if no one else is: called
// with b.mu held, returns with it released.
func (b *Batcher) wait(ctx context.Context, it *Item) error {
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
	// The batch holds other callers' writes: one caller's cancellation
	// must not abandon them half-way.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	for !it.done {
		n := min(len(b.queue), MaxBatch)
		batch := b.queue[:n:n]
		b.queue = b.queue[n:]
		b.mu.Unlock()

		b.commit(cctx, batch)

		b.mu.Lock()
		for _, x := range batch {
			x.done = true
		}
		if it.done {
			b.handOff()
		}
		b.mu.Unlock()
		for _, x := range batch {
			if x != it {
				x.wake <- false // buffered: a queued key record nobody waits for yet finds done set
			}
		}
		if !it.done {
			b.mu.Lock()
		}
	}
	return it.Err
}

// handOff passes the commit role to the first queued write someone waits
// for; with none, the batcher goes idle (queued key records nobody waits
// for stay queued for the next write or their own wait). Called with b.mu
// held.
func (b *Batcher) handOff() {
	for _, x := range b.queue {
		if x.waiting {
			x.wake <- true
			return
		}
	}
	b.busy = false
	if len(b.queue) == 0 {
		b.queue = nil // let the backing array go
	}
}

// commit writes a batch in one transaction; if that fails (a duplicate
// request or event ID, say), each item on its own — key records first, so
// that the success event of a call whose key record then fails is left
// out rather than written (the call answers an error and records that
// instead; see store.SkippedEventsError). Events of key records that
// failed in an earlier batch are left out too.
func (b *Batcher) commit(ctx context.Context, batch []*Item) {
	for _, it := range batch {
		b.leaveOut(it)
	}
	err := b.eng.Commit(ctx, batch)
	if err == nil || len(batch) == 1 {
		for _, it := range batch {
			it.Err = err
		}
	} else {
		for _, it := range batch {
			if !it.IsAudit() {
				b.eng.Alone(ctx, it)
				b.noteKey(it)
			}
		}
		for _, it := range batch {
			if it.IsAudit() {
				b.leaveOut(it)
				if len(it.Events) > 0 {
					b.eng.Alone(ctx, it)
				} else {
					it.Err = nil
				}
			}
		}
	}
	for _, it := range batch {
		b.noteKey(it)
		if it.IsAudit() && it.Err == nil && len(it.skipped) > 0 {
			it.Err = &store.SkippedEventsError{Skipped: it.skipped}
		}
	}
}

// noteKey remembers a key record that failed, for its call's event.
func (b *Batcher) noteKey(it *Item) {
	if it.IsAudit() || it.Err == nil || it.Record.RequestID == "" {
		return
	}
	if b.failedKeys == nil {
		b.failedKeys = map[string]error{}
	}
	if len(b.failedKeys) < maxFailedKeys {
		b.failedKeys[it.Record.RequestID] = it.Err
	}
}

// leaveOut takes out of an audit item the success events of requests
// whose key record failed. Events only ever follow their key record in
// the queue, so by then the failure is known.
func (b *Batcher) leaveOut(it *Item) {
	if !it.IsAudit() || len(b.failedKeys) == 0 {
		return
	}
	var kept []store.AuditEvent
	for i, e := range it.Events {
		kerr, failed := b.failedKeys[e.RequestID]
		if !failed || e.RequestID == "" {
			if kept != nil {
				kept = append(kept, e)
			}
			continue
		}
		delete(b.failedKeys, e.RequestID)
		if e.ErrorCode != "" {
			// The call failed anyway, and its event says so.
			if kept != nil {
				kept = append(kept, e)
			}
			continue
		}
		if kept == nil {
			// The caller's slice is left as it is: copy.
			kept = append(make([]store.AuditEvent, 0, len(it.Events)), it.Events[:i]...)
		}
		if it.skipped == nil {
			it.skipped = map[string]error{}
		}
		it.skipped[e.ID] = fmt.Errorf("%w: %w", store.ErrKeyRecordFailed, kerr)
	}
	if kept != nil {
		it.Events = kept
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
	b.handOff()
	b.mu.Unlock()
}
