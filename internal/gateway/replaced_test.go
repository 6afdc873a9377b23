package gateway

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"
)

// EndReplacedSession (a holder's answer to another replica's
// re-enrollment) ends the session only when the store says its key is no
// longer the instance's: a later enrollment's agent connected here stays.
func TestEndReplacedSession(t *testing.T) {
	g, st := newTestGateway(t)
	connect(t, g, st, 0, testInventory)
	if ended, err := g.EndReplacedSession(t.Context(), testID); err != nil || ended {
		t.Fatalf("EndReplacedSession of the current identity's session = %v, %v; want false, nil", ended, err)
	}
	time.Sleep(50 * time.Millisecond)
	if !g.Connected(testID) {
		t.Fatal("EndReplacedSession ended the current identity's session")
	}
	reenroll(t, st.Store, "SHA256:new")
	if ended, err := g.EndReplacedSession(t.Context(), testID); err != nil || !ended {
		t.Fatalf("EndReplacedSession of a replaced identity's session = %v, %v; want true, nil", ended, err)
	}
	waitFor(t, "the replaced session to end", func() bool { return !g.Connected(testID) })
	if ended, err := g.EndReplacedSession(t.Context(), testID); err != nil || ended {
		t.Fatalf("EndReplacedSession with no session = %v, %v; want false, nil", ended, err)
	}
}

// replacedHook records the re-enrollments a gateway reports.
type replacedHook struct {
	mu  sync.Mutex
	ids []string
}

func (*replacedHook) SessionStarted(context.Context, string) int64 { return 0 }
func (*replacedHook) SessionEnded(context.Context, string, int64)  {}
func (h *replacedHook) IdentityReplaced(_ context.Context, id string) {
	h.mu.Lock()
	h.ids = append(h.ids, id)
	h.mu.Unlock()
}

func (h *replacedHook) calls() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.ids)
}

// A re-enrollment tells the session hook (peer routing), so that the
// replica holding the replaced identity's session ends it; a first
// enrollment, or one with a replaced certificate (a new instance), has no
// old session to end.
func TestReenrollmentTellsReplacedHook(t *testing.T) {
	g, st := newSigningGateway(t)
	h := &replacedHook{}
	g.SetSessionHook(h)
	g.tokens = NewTokens(st, time.Now)
	tok, err := g.tokens.Create(t.Context(), "test", time.Hour, 10, nil)
	if err != nil {
		t.Fatal(err)
	}
	first, _ := enrollAs(t, g, tok.Token, nil)
	again, _ := enrollAs(t, g, tok.Token, first.Certificate)
	enrollAs(t, g, tok.Token, first.Certificate) // replaced: a new instance
	waitFor(t, "the hook to hear of the re-enrollment", func() bool { return len(h.calls()) > 0 })
	time.Sleep(100 * time.Millisecond)
	if got := h.calls(); !slices.Equal(got, []string{again.InstanceID}) {
		t.Fatalf("IdentityReplaced calls %v, want [%s] (the re-enrollment's only)", got, again.InstanceID)
	}
}
