package gateway

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kaginashi/kaginashi/internal/agentproto"
	"github.com/kaginashi/kaginashi/internal/apierr"
)

// TestKeyStreamCarriesEveryPush: to an agent that lists the key-stream
// feature, concurrent pushes go over one stream, and acks that come back
// in another order than the pushes reach the right callers.
func TestKeyStreamCarriesEveryPush(t *testing.T) {
	g, st := newSigningGateway(t)
	g.PushTimeout = 5 * time.Second
	a := connectWith(t, g, st, 0, testInventory, []string{agentproto.FeatureKeyStream})

	const n = 6
	var streams atomic.Int32
	go serveAgentStreams(a.mux, func(h agentproto.Header, c *agentproto.Conn) {
		streams.Add(1)
		if h.Type != agentproto.TypeKeys {
			return
		}
		// Take all n pushes, then answer in reverse order; refuse the
		// one for req-3.
		var got []agentproto.KeyPush
		for len(got) < n {
			var kp agentproto.KeyPush
			if c.Recv(&kp) != nil {
				return
			}
			got = append(got, kp)
		}
		for i := len(got) - 1; i >= 0; i-- {
			ack := agentproto.Ack{ID: got[i].ID, OK: true}
			if got[i].Record.RequestID == "req-3" {
				ack = agentproto.Ack{ID: got[i].ID, Error: "refused for the test"}
			}
			if c.Send(ack) != nil {
				return
			}
		}
	})

	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = g.Deliver(t.Context(), testKeyRecord(t, fmt.Sprintf("req-%d", i)))
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if i == 3 {
			if err == nil || !strings.Contains(err.Error(), "refused for the test") {
				t.Errorf("push %d: %v, want the agent's refusal", i, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("push %d: %v", i, err)
		}
	}
	if got := streams.Load(); got != 1 {
		t.Fatalf("%d streams opened for %d pushes, want 1", got, n)
	}
}

// TestKeyStreamBreakWithdraws: when the key stream ends after a push went
// out and before its ack, the push fails and the key is withdrawn (the
// agent may hold it); the next push opens a new stream.
func TestKeyStreamBreakWithdraws(t *testing.T) {
	g, st := newSigningGateway(t)
	g.PushTimeout = 5 * time.Second
	a := connectWith(t, g, st, 0, testInventory, []string{agentproto.FeatureKeyStream})

	revoked := make(chan string, 4)
	var keyStreams atomic.Int32
	go serveAgentStreams(a.mux, func(h agentproto.Header, c *agentproto.Conn) {
		switch h.Type {
		case agentproto.TypeKeys:
			first := keyStreams.Add(1) == 1
			for {
				var kp agentproto.KeyPush
				if c.Recv(&kp) != nil {
					return
				}
				if first {
					return // the stream ends, unanswered
				}
				if c.Send(agentproto.Ack{ID: kp.ID, OK: true}) != nil {
					return
				}
			}
		case agentproto.TypeRevoke:
			acceptRevoke(c, revoked)
		}
	})

	err := g.Deliver(t.Context(), testKeyRecord(t, "req-lost"))
	if apierr.KindOf(err) != apierr.Unavailable {
		t.Fatalf("a push whose stream ended: %v, want Unavailable", err)
	}
	select {
	case id := <-revoked:
		if id != "req-lost" {
			t.Errorf("withdrew %q, want req-lost", id)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the unacknowledged key was not withdrawn")
	}
	if err := g.Deliver(t.Context(), testKeyRecord(t, "req-next")); err != nil {
		t.Fatalf("the push after a broken stream: %v", err)
	}
	if got := keyStreams.Load(); got != 2 {
		t.Fatalf("%d key streams, want 2 (the broken one and its replacement)", got)
	}
}

// acceptRevoke answers a withdrawal and reports its request ID.
func acceptRevoke(c *agentproto.Conn, revoked chan<- string) {
	var rv agentproto.Revoke
	if c.Recv(&rv) != nil {
		return
	}
	_ = c.Send(agentproto.Ack{OK: true})
	revoked <- rv.RequestID
}

// TestLegacyPushLostWithdraws: to an agent without the key-stream
// feature (a stream per push), a push whose stream ends before its ack is
// withdrawn (the agent may hold the key); one the agent refuses is not.
func TestLegacyPushLostWithdraws(t *testing.T) {
	g, st := newSigningGateway(t)
	g.PushTimeout = 5 * time.Second
	a := connect(t, g, st, 0, testInventory)

	revoked := make(chan string, 4)
	go serveAgentStreams(a.mux, func(h agentproto.Header, c *agentproto.Conn) {
		switch h.Type {
		case agentproto.TypeKey:
			var kp agentproto.KeyPush
			if c.Recv(&kp) != nil {
				return
			}
			if kp.Record.RequestID == "req-refused" {
				_ = c.Send(agentproto.Ack{Error: "refused for the test"})
			}
			// Otherwise the stream ends, unanswered.
		case agentproto.TypeRevoke:
			acceptRevoke(c, revoked)
		}
	})

	if err := g.Deliver(t.Context(), testKeyRecord(t, "req-lost")); apierr.KindOf(err) != apierr.Unavailable {
		t.Fatalf("a push whose stream ended: %v, want Unavailable", err)
	}
	select {
	case id := <-revoked:
		if id != "req-lost" {
			t.Fatalf("withdrew %q, want req-lost", id)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the unacknowledged key was not withdrawn")
	}
	err := g.Deliver(t.Context(), testKeyRecord(t, "req-refused"))
	if err == nil || !strings.Contains(err.Error(), "refused for the test") {
		t.Fatalf("a refused push: %v, want the agent's reason", err)
	}
	select {
	case id := <-revoked:
		t.Fatalf("withdrew %q, which the agent refused", id)
	case <-time.After(300 * time.Millisecond):
	}
}

// TestKeyStreamIdleClosed: a key stream no push used for KeyStreamIdle
// is closed (the agent sees its end), one in steady use is not, and the
// push after an idle close opens a new one.
func TestKeyStreamIdleClosed(t *testing.T) {
	g, st := newSigningGateway(t)
	g.PushTimeout = 5 * time.Second
	g.KeyStreamIdle = 300 * time.Millisecond
	a := connectWith(t, g, st, 0, testInventory, []string{agentproto.FeatureKeyStream})

	var opened, ended atomic.Int32
	go serveAgentStreams(a.mux, func(h agentproto.Header, c *agentproto.Conn) {
		if h.Type != agentproto.TypeKeys {
			return
		}
		opened.Add(1)
		defer ended.Add(1)
		for {
			var kp agentproto.KeyPush
			if c.Recv(&kp) != nil {
				return
			}
			if c.Send(agentproto.Ack{ID: kp.ID, OK: true}) != nil {
				return
			}
		}
	})
	push := func(id string) {
		t.Helper()
		if err := g.Deliver(t.Context(), testKeyRecord(t, id)); err != nil {
			t.Fatalf("push %s: %v", id, err)
		}
	}
	// Steady use, a push every 100 ms for a second: one stream throughout.
	for i := 0; i < 10; i++ {
		push(fmt.Sprintf("req-steady-%d", i))
		time.Sleep(100 * time.Millisecond)
	}
	if o, e := opened.Load(), ended.Load(); o != 1 || e != 0 {
		t.Fatalf("in steady use: %d streams opened, %d ended; want 1 and 0", o, e)
	}
	waitFor(t, "the idle stream's end", func() bool { return ended.Load() == 1 })
	push("req-after-idle")
	if o := opened.Load(); o != 2 {
		t.Fatalf("%d streams opened, want 2 (a new one after the idle close)", o)
	}
}
