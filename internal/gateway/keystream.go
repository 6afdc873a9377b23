package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/yamux"

	"github.com/kaginashi/kaginashi/internal/agentproto"
	"github.com/kaginashi/kaginashi/internal/keyrecord"
)

// keyStream is a session's long-lived TypeKeys stream: pushes go out as
// one frame each and their acks come back on it, matched by ID. A stream
// per push costs six yamux frames (open, data and close, each way), each
// a TLS record and a system call on both ends; this costs two.
type keyStream struct {
	st *yamux.Stream

	wmu sync.Mutex // one writer at a time; the frame is written whole

	mu      sync.Mutex
	nextID  uint64
	waiters map[uint64]chan agentproto.Ack
	err     error     // set once the stream is broken; no new pushes then
	last    time.Time // when the latest push was queued
	idle    *time.Timer
}

// errKeyStreamBroken is the fate of pushes waiting on a stream that ended.
var errKeyStreamBroken = errors.New("the key stream to the agent ended")

// errKeyStreamIdle closes a stream no push used for the idle time: a
// push that finds it so, before queuing anything, opens a new one.
var errKeyStreamIdle = errors.New("the key stream to the agent was idle")

// openKeyStream opens the stream and starts reading acks from it.
func openKeyStream(mux *yamux.Session) (*keyStream, error) {
	st, err := mux.OpenStream()
	if err != nil {
		return nil, err
	}
	ks := &keyStream{st: st, waiters: map[uint64]chan agentproto.Ack{}}
	go ks.readAcks()
	return ks, nil
}

// readAcks hands each ack to its push until the stream ends, then fails
// the pushes still waiting.
func (ks *keyStream) readAcks() {
	c := agentproto.NewConnSize(ks.st, 512)
	var err error
	for {
		var ack agentproto.Ack
		if err = c.Recv(&ack); err != nil {
			break
		}
		ks.mu.Lock()
		w := ks.waiters[ack.ID]
		delete(ks.waiters, ack.ID)
		ks.mu.Unlock()
		if w != nil {
			w <- ack // buffered
		}
	}
	ks.fail(fmt.Errorf("%w: %w", errKeyStreamBroken, err))
}

// fail marks the stream broken, closes it, and fails every waiting push
// with an ack of ID 0 (the agent's acks never have it): such a push went
// out, and its fate on the agent is unknown.
func (ks *keyStream) fail(err error) {
	ks.mu.Lock()
	if ks.err == nil {
		ks.err = err
	}
	waiters := ks.waiters
	ks.waiters = map[uint64]chan agentproto.Ack{}
	ks.mu.Unlock()
	_ = ks.st.Close()
	for _, w := range waiters {
		w <- agentproto.Ack{Error: err.Error()}
	}
}

// broken reports whether the stream can take no more pushes.
func (ks *keyStream) broken() bool {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	return ks.err != nil
}

// send writes a push and returns the channel its ack arrives on, and
// forget, which drops the wait (for a push the caller gave up on).
func (ks *keyStream) send(ctx context.Context, kr keyrecord.Record) (ack <-chan agentproto.Ack, forget func(), err error) {
	ch := make(chan agentproto.Ack, 1)
	ks.mu.Lock()
	if ks.err != nil {
		ks.mu.Unlock()
		return nil, nil, ks.err
	}
	ks.nextID++
	id := ks.nextID
	ks.waiters[id] = ch
	ks.last = time.Now()
	ks.mu.Unlock()
	forget = func() {
		ks.mu.Lock()
		delete(ks.waiters, id)
		ks.mu.Unlock()
	}
	msg, err := json.Marshal(agentproto.KeyPush{ID: id, Record: kr})
	if err != nil {
		forget()
		return nil, nil, err
	}
	msg = append(msg, '\n')
	// A stalled agent (a full window) must not hold the writer past the
	// push's own deadline: the next push waits on wmu meanwhile.
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(5 * time.Second)
	}
	ks.wmu.Lock()
	_ = ks.st.SetWriteDeadline(deadline)
	n, err := ks.st.Write(msg)
	ks.wmu.Unlock()
	if err != nil {
		// A frame may be half written: nothing after it would parse.
		ks.fail(fmt.Errorf("%w: %w", errKeyStreamBroken, err))
		if n == 0 && (errors.Is(err, yamux.ErrStreamClosed) || errors.Is(err, yamux.ErrTimeout) || errors.Is(err, yamux.ErrConnectionReset)) {
			forget() // refused before a byte went out
			return nil, nil, err
		}
		// Part of the push went out (the rest of the line may be all
		// but its newline, which the stream's end completes: the agent
		// parses it), or all of it may yet go (yamux stops waiting for
		// the connection, not the frame). fail gave ch an ack of ID 0:
		// the caller withdraws the key.
		return ch, forget, nil
	}
	return ch, forget, nil
}

// keyStreamFor returns the session's key stream, opening it (and sending
// its header) on first use, after the previous one broke, or after it was
// closed for being idle longer than idle (0: never).
func (s *session) keyStreamFor(idle time.Duration) (*keyStream, error) {
	s.ksMu.Lock()
	defer s.ksMu.Unlock()
	if s.ks != nil && !s.ks.broken() {
		return s.ks, nil
	}
	ks, err := openKeyStream(s.mux)
	if err != nil {
		return nil, err
	}
	_ = ks.st.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := ks.st.Write([]byte(keysStreamHeader)); err != nil {
		ks.fail(err)
		return nil, err
	}
	s.ks = ks
	if idle > 0 {
		// A stream costs the server a goroutine and buffers for as long
		// as it is open: with thousands of agents, most pushed to once
		// in a while, keep only the busy ones.
		ks.mu.Lock()
		ks.last = time.Now()
		ks.idle = time.AfterFunc(idle, func() { s.closeIdleKeyStream(ks, idle) })
		ks.mu.Unlock()
	}
	return ks, nil
}

// closeIdleKeyStream closes ks if no push used it for idle and none is
// waiting for its ack; otherwise it looks again when that may be so.
func (s *session) closeIdleKeyStream(ks *keyStream, idle time.Duration) {
	s.ksMu.Lock()
	defer s.ksMu.Unlock()
	if s.ks != ks {
		return
	}
	ks.mu.Lock()
	broken, busy := ks.err != nil, len(ks.waiters) > 0
	wait := idle - time.Since(ks.last)
	if !broken && (busy || wait > 0) {
		ks.idle.Reset(max(wait, idle/8))
		ks.mu.Unlock()
		return
	}
	ks.mu.Unlock()
	s.ks = nil
	if !broken {
		ks.fail(errKeyStreamIdle) // nobody waits: this only closes it
	}
}

const keysStreamHeader = `{"type":"` + agentproto.TypeKeys + `"}` + "\n"

// sendKey is keyStreamFor and send, given up when ctx ends (with no
// error and no ack: the caller's timeout withdraws the key, which may
// yet go out). Opening the stream and writing wait for the connection
// with yamux's connection write timeout (10 s), not the push's: a
// stalled connection would hold the API call that long, and every push
// queued behind it on ksMu or wmu longer. (The stream per push ran in a
// goroutine of its own too.)
func (s *session) sendKey(ctx context.Context, kr keyrecord.Record, idle time.Duration) (<-chan agentproto.Ack, func(), error) {
	type sent struct {
		acks   <-chan agentproto.Ack
		forget func()
		err    error
	}
	sc := make(chan sent) // unbuffered: a result nobody takes is forgotten below
	go func() {
		var r sent
		var err error
		for try := 0; try < 2; try++ {
			var ks *keyStream
			ks, err = s.keyStreamFor(idle)
			if err == nil {
				r.acks, r.forget, err = ks.send(ctx, kr)
			}
			if !errors.Is(err, errKeyStreamIdle) {
				break
			}
			// Closed for idleness between keyStreamFor and send: nothing
			// was queued; a new stream takes it.
		}
		r.err = err
		select {
		case sc <- r:
		case <-ctx.Done():
			if r.forget != nil {
				r.forget() // the push's caller gave up: no waiter left behind
			}
		}
	}()
	select {
	case r := <-sc:
		return r.acks, r.forget, r.err
	case <-ctx.Done():
		return nil, func() {}, nil
	}
}
