package gateway

import (
	"fmt"
	"testing"
	"time"

	"github.com/kaginashi/kaginashi/internal/agentproto"
	"github.com/kaginashi/kaginashi/internal/apierr"
)

// TestKeyStreamReconnectWithdrawsOnNewSession: when the agent reconnects
// while a push waits for its ack on the old session's key stream, the
// push fails and its withdrawal reaches the agent on its new session
// (the old one is gone; the new one may have sent its pending
// withdrawals before this one existed). The order is a race: many rounds.
func TestKeyStreamReconnectWithdrawsOnNewSession(t *testing.T) {
	g, st := newSigningGateway(t)
	g.IdleTimeout = time.Minute
	g.PushTimeout = 5 * time.Second
	// Every connection takes keys and never answers: each round's is
	// replaced by the next while its push waits.
	connectAgent := func() *keysAgent {
		a := connectWith(t, g, st, 0, testInventory, []string{agentproto.FeatureKeyStream})
		k := newKeysAgent()
		k.noAck = true
		go k.serve(a.mux)
		return k
	}
	cur := connectAgent()
	for i := range 40 {
		rec := testKeyRecord(t, fmt.Sprintf("req-reconnect-%d", i))
		done := make(chan error, 1)
		go func() { done <- g.Deliver(t.Context(), rec) }()
		select {
		case <-cur.pushed:
		case <-time.After(5 * time.Second):
			t.Fatalf("round %d: the agent did not get the push", i)
		}
		next := connectAgent()
		if err := <-done; apierr.KindOf(err) != apierr.Unavailable {
			t.Fatalf("round %d: a push whose session was replaced: %v, want Unavailable", i, err)
		}
		deadline := time.Now().Add(3 * time.Second)
		for !next.has(next.revoked, rec.RequestID) {
			if time.Now().After(deadline) {
				t.Fatalf("round %d: the agent holds a key the API refused, and its new session never got the withdrawal", i)
			}
			time.Sleep(5 * time.Millisecond)
		}
		cur = next
	}
}
