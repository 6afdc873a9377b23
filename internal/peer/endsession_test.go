package peer

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/kaginashi/kaginashi/internal/store"
)

// POST /_peer/end-session: only a replica's signed request, for this
// replica, with an instance ID, is served; with no session here it is
// answered ended=false.
func TestServeEndSession(t *testing.T) {
	c := &clock{time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)}
	a, alog := replica(t, selfID, c)
	sender := &Signer{Key: key, Replica: fromID, Now: c.now}
	body := []byte(`{"instanceId":"i-0123456789abcdef0"}`)

	unsigned := httptest.NewRequest(http.MethodPost, pathEndSession, strings.NewReader(string(body)))
	if status, pe := serve(t, a, unsigned); status != http.StatusUnauthorized || pe.Code != "Unauthenticated" {
		t.Fatalf("unsigned: %d %+v; want 401", status, pe)
	}
	if status, pe := serve(t, a, signed(t, sender, otherB, http.MethodPost, pathEndSession, body)); status != http.StatusUnauthorized {
		t.Fatalf("signed for another replica: %d %+v; want 401", status, pe)
	}
	for _, bad := range []string{`{}`, `{"instanceId":"i-nothex"}`, `not json`, `{"instanceId":"i-0123456789abcdef0","reason":"whim"}`} {
		if status, pe := serve(t, a, signed(t, sender, selfID, http.MethodPost, pathEndSession, []byte(bad))); status != http.StatusBadRequest || pe.Code != "Invalid" {
			t.Fatalf("body %s: %d %+v; want 400 Invalid", bad, status, pe)
		}
	}
	w := httptest.NewRecorder()
	a.ServeHTTP(w, signed(t, sender, selfID, http.MethodPost, pathEndSession, body))
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `"ended":false`) {
		t.Fatalf("a valid request with no session here: %d %s; want 200 ended=false", w.Code, w.Body)
	}
	if !strings.Contains(alog.String(), "ended a deregistered instance's agent session for another replica") {
		t.Fatalf("the holder did not log the request:\n%s", alog)
	}
	// A re-enrollment's request (reason replaced), from a replica that
	// has the session's end decided by this one's store.
	w = httptest.NewRecorder()
	a.ServeHTTP(w, signed(t, sender, selfID, http.MethodPost, pathEndSession, []byte(`{"instanceId":"i-0123456789abcdef0","reason":"replaced"}`)))
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `"ended":false`) {
		t.Fatalf("a valid replaced request with no session here: %d %s; want 200 ended=false", w.Code, w.Body)
	}
	if !strings.Contains(alog.String(), "ended a re-enrolled instance's replaced agent session for another replica") {
		t.Fatalf("the holder did not log the replaced request:\n%s", alog)
	}
}

// A deregistration's EndSession reports what the holder answered: the
// store naming B is not enough to say a session was ended, when B held
// none any more (ended=false), and B's refusal is an error.
func TestEndSessionReportsTheHoldersAnswer(t *testing.T) {
	c := &clock{time.Now()}
	b, blog := replica(t, otherB, c)
	srv := httptest.NewServer(b)
	defer srv.Close()
	sessions := &oneSession{}
	a, _ := replicaWith(t, selfID, c, sessions)
	const inst = "i-0123456789abcdef0"

	sessions.set(store.AgentSession{InstanceID: inst, ReplicaID: otherB, PeerURL: srv.URL})
	ended, err := a.EndSession(t.Context(), inst)
	if err != nil || ended {
		t.Fatalf("EndSession with B holding no session: ended %v, err %v; want false, nil", ended, err)
	}
	if !strings.Contains(blog.String(), "ended a deregistered instance's agent session for another replica") || !strings.Contains(blog.String(), "ended=false") {
		t.Fatalf("B was not asked, or did not answer ended=false:\n%s", blog)
	}

	// A record naming B's predecessor: B refuses, and EndSession says so.
	sessions.set(store.AgentSession{InstanceID: inst, ReplicaID: "dead00", PeerURL: srv.URL})
	if ended, err := a.EndSession(t.Context(), inst); err == nil || ended || !strings.Contains(err.Error(), "refused this replica's peer authentication") {
		t.Fatalf("EndSession through a stale record: ended %v, err %v", ended, err)
	}
}
