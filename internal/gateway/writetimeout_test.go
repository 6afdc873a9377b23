package gateway

import (
	"testing"
	"time"

	"github.com/kaginashi/kaginashi/internal/agentproto"
)

// TestStalledAgentSessionEnds: an agent that stops reading its socket but
// keeps sending (heartbeats, so the idle sweep keeps it) loses its
// session once a write to it times out, instead of holding pushes to it
// for as long as it likes.
func TestStalledAgentSessionEnds(t *testing.T) {
	g, st := newSigningGateway(t)
	g.WriteTimeout = 300 * time.Millisecond
	a, gc := connectGated(t, g, st)
	gc.pause()
	defer gc.resume()

	stop := make(chan struct{})
	defer close(stop)
	go func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if a.c.Send(agentproto.Heartbeat{LocalTime: time.Now().UnixMilli()}) != nil {
					return
				}
			}
		}
	}()
	_ = g.Deliver(t.Context(), testKeyRecord(t, "req-stalled")) // fails at PushTimeout; its write stalls
	deadline := time.Now().Add(3 * time.Second)
	for g.Connected(testID) {
		if time.Now().After(deadline) {
			t.Fatal("the session of an agent that stopped reading is still up 3 s later")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
