package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/kaginashi/kaginashi/internal/agentproto"
	"github.com/kaginashi/kaginashi/internal/store"
)

// enrollRaw is enrollRequest's answer alone.
func enrollRaw(t *testing.T, g *Gateway, token string, cert []byte, tags []agentproto.Tag) *httptest.ResponseRecorder {
	t.Helper()
	w, _ := enrollRequest(t, g, token, cert, tags)
	return w
}

func tokenUses(t *testing.T, st store.Store, id string) int {
	t.Helper()
	ts, err := st.ListJoinTokens(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, jt := range ts {
		if jt.ID == id {
			return jt.Uses
		}
	}
	t.Fatalf("token %s not found", id)
	return 0
}

func instanceCount(t *testing.T, st store.Store) int {
	t.Helper()
	ins, _, err := st.ListInstances(t.Context(), store.InstanceFilter{})
	if err != nil {
		t.Fatal(err)
	}
	return len(ins)
}

// failingGets is a store whose instance reads fail (not "not found").
type failingGets struct{ store.Store }

func (failingGets) GetInstance(context.Context, string) (store.Instance, error) {
	return store.Instance{}, errors.New("the database is unreachable")
}

// A store error reading the instance of the certificate an agent
// re-enrolls with refuses the enrollment (500): it must not enroll a
// second, new instance for the host (as if the certificate were unknown),
// nor spend a use of the token.
func TestEnrollStoreErrorOnOldCertificate(t *testing.T) {
	g, st := newSigningGateway(t)
	g.tokens = NewTokens(st, time.Now)
	tok, err := g.tokens.Create(t.Context(), "test", time.Hour, 10, nil)
	if err != nil {
		t.Fatal(err)
	}
	first, _ := enrollAs(t, g, tok.Token, nil)
	before := instanceCount(t, st)
	g.store = failingGets{st}
	w := enrollRaw(t, g, tok.Token, first.Certificate, nil)
	if w.Code != http.StatusInternalServerError {
		t.Errorf("re-enrollment while the instance cannot be read: %d %s, want 500", w.Code, w.Body)
	}
	if n := instanceCount(t, st); n != before {
		t.Errorf("%d instances after the failed re-enrollment, want %d (no new one)", n, before)
	}
	if n := tokenUses(t, st, tok.ID); n != 1 {
		t.Errorf("the token has %d uses after the failed re-enrollment, want 1 (the first enrollment's)", n)
	}
}

// An enrollment refused for the agent's own tags (kaginashi-agent enroll
// --tag) does not spend a use of the join token: a one-use token stays
// good for the corrected command.
func TestEnrollBadTagKeepsTokenUse(t *testing.T) {
	g, st := newSigningGateway(t)
	g.tokens = NewTokens(st, time.Now)
	tok, err := g.tokens.Create(t.Context(), "test", time.Hour, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []agentproto.Tag{{Key: "aws:owner", Value: "x"}, {Key: "", Value: "x"}, {Key: "k", Value: string(bytes.Repeat([]byte("v"), 257))}} {
		if w := enrollRaw(t, g, tok.Token, nil, []agentproto.Tag{{Key: "team", Value: "ops"}, bad}); w.Code != http.StatusBadRequest {
			t.Errorf("tag %q: %d %s, want 400", bad.Key, w.Code, w.Body)
		}
	}
	if n := tokenUses(t, st, tok.ID); n != 0 {
		t.Fatalf("the one-use token has %d uses after refused enrollments, want 0", n)
	}
	// The agent's reserved kaginashi: tags are skipped, not refused.
	w := enrollRaw(t, g, tok.Token, nil, []agentproto.Tag{{Key: "team", Value: "ops"}, {Key: "kaginashi:os", Value: "claimed"}})
	if w.Code != http.StatusOK {
		t.Fatalf("the corrected enrollment: %d %s, want 200", w.Code, w.Body)
	}
	var er agentproto.EnrollResponse
	if err := json.Unmarshal(w.Body.Bytes(), &er); err != nil {
		t.Fatal(err)
	}
	in, err := st.GetInstance(t.Context(), er.InstanceID)
	if err != nil {
		t.Fatal(err)
	}
	if len(in.Tags) != 1 || in.Tags[0] != (store.Tag{Key: "team", Value: "ops"}) {
		t.Errorf("tags %v, want team=ops alone", in.Tags)
	}
}

// A deregistration landing between a re-enrollment's read of the
// instance and its write is not undone: the enrollment is refused (409)
// and the instance stays deleted. (PutInstance, an upsert, put it back
// with the new key.) Likewise a second enrollment with the same old
// certificate that lands first: the later one is refused, the first one's
// key stays.
func TestReenrollmentRacing(t *testing.T) {
	t.Run("deregistration", func(t *testing.T) {
		g, st := newSigningGateway(t)
		g.tokens = NewTokens(st, time.Now)
		tok, err := g.tokens.Create(t.Context(), "test", time.Hour, 10, nil)
		if err != nil {
			t.Fatal(err)
		}
		first, _ := enrollAs(t, g, tok.Token, nil)
		is := &interleaveStore{Store: st}
		g.store = is
		is.arm(func() {
			if err := st.Store.DeleteInstance(context.Background(), first.InstanceID); err != nil {
				t.Error(err)
			}
		})
		if w := enrollRaw(t, g, tok.Token, first.Certificate, nil); w.Code != http.StatusConflict {
			t.Errorf("re-enrollment racing a deregistration: %d %s, want 409", w.Code, w.Body)
		}
		if _, err := st.GetInstance(t.Context(), first.InstanceID); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("the deregistered instance after a racing re-enrollment: %v, want ErrNotFound (it came back)", err)
		}
	})
	t.Run("enrollment", func(t *testing.T) {
		g, st := newSigningGateway(t)
		g.tokens = NewTokens(st, time.Now)
		tok, err := g.tokens.Create(t.Context(), "test", time.Hour, 10, nil)
		if err != nil {
			t.Fatal(err)
		}
		first, _ := enrollAs(t, g, tok.Token, nil)
		is := &interleaveStore{Store: st}
		g.store = is
		var winner string
		is.arm(func() {
			// The other enrollment with the same certificate, all of it
			// (fire disarmed itself first).
			_, winner = enrollAs(t, g, tok.Token, first.Certificate)
		})
		if w := enrollRaw(t, g, tok.Token, first.Certificate, nil); w.Code != http.StatusConflict {
			t.Errorf("re-enrollment racing another with the same certificate: %d %s, want 409", w.Code, w.Body)
		}
		if in, err := st.GetInstance(t.Context(), first.InstanceID); err != nil || in.AgentKey != winner {
			t.Fatalf("the instance's key after two racing re-enrollments: %q (%v), want the first to land's %q", in.AgentKey, err, winner)
		}
	})
}
