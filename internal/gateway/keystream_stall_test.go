package gateway

import (
	"context"
	"errors"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/kaginashi/kaginashi/internal/agentproto"
	"github.com/kaginashi/kaginashi/internal/apierr"
	"github.com/kaginashi/kaginashi/internal/store"
)

// gatedConn is the agent's end of the connection; pause stops it reading
// (a host that stopped reading its socket: the server's writes block).
type gatedConn struct {
	net.Conn
	mu   sync.Mutex
	open chan struct{}
}

func (c *gatedConn) Read(p []byte) (int, error) {
	for {
		c.mu.Lock()
		open := c.open
		c.mu.Unlock()
		<-open
		n, err := c.Conn.Read(p)
		if n == 0 && errors.Is(err, os.ErrDeadlineExceeded) {
			// pause interrupted this read: wait for resume.
			_ = c.Conn.SetReadDeadline(time.Time{})
			continue
		}
		return n, err
	}
}

// pause stops the agent reading, including a read already waiting (it
// would take the next write whole).
func (c *gatedConn) pause() {
	c.mu.Lock()
	c.open = make(chan struct{})
	c.mu.Unlock()
	_ = c.Conn.SetReadDeadline(time.Now())
}

func (c *gatedConn) resume() {
	c.mu.Lock()
	close(c.open)
	c.mu.Unlock()
}

// connectGated is connectWith (key-stream feature) over a connection the
// test can stop the agent reading.
func connectGated(t *testing.T, g *Gateway, st store.Store) (*testAgent, *gatedConn) {
	t.Helper()
	server, client := net.Pipe()
	open := make(chan struct{})
	close(open)
	gc := &gatedConn{Conn: client, open: open}
	return connectOver(t, g, st, server, gc, 0, testInventory, []string{agentproto.FeatureKeyStream}), gc
}

// TestKeyStreamStalledConnection: when the agent's connection stops
// taking bytes, a push answers within PushTimeout (as a stream per push
// does), not when yamux's connection write timeout (10 s) gives up; and
// the key is withdrawn, since the push may still reach the agent.
func TestKeyStreamStalledConnection(t *testing.T) {
	g, st := newSigningGateway(t)
	g.IdleTimeout = time.Minute // the sweep must not end the stalled session
	g.PushTimeout = 300 * time.Millisecond
	a, gc := connectGated(t, g, st)
	ag := newKeysAgent()
	go ag.serve(a.mux)
	if err := g.Deliver(t.Context(), testKeyRecord(t, "req-first")); err != nil {
		t.Fatalf("a push before the stall: %v", err)
	}

	gc.pause()
	rec := testKeyRecord(t, "req-stalled")
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- g.Deliver(context.Background(), rec) }()
	var err error
	select {
	case err = <-done:
	case <-time.After(3 * time.Second):
		gc.resume()
		<-done
		t.Fatalf("a push to a stalled connection still waited after 3 s (PushTimeout %v)", g.PushTimeout)
	}
	took := time.Since(start)
	gc.resume()
	if apierr.KindOf(err) != apierr.Unavailable {
		t.Fatalf("a push to a stalled connection: %v after %v, want Unavailable", err, took)
	}
	ag.requireWithdrawnIfStored(t, rec.RequestID)
}
