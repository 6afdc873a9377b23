package peer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kaginashi/kaginashi/internal/apierr"
	"github.com/kaginashi/kaginashi/internal/gateway"
	"github.com/kaginashi/kaginashi/internal/store"
	"github.com/kaginashi/kaginashi/internal/syncbuf"
)

// replica is a router as the server makes it, with no agent connected and
// no store: the requests here are refused, or answered NotConnected,
// before either would be asked.
func replica(t *testing.T, id string, c *clock) (*Router, *syncbuf.Buffer) {
	t.Helper()
	return replicaWith(t, id, c, nil)
}

func replicaWith(t *testing.T, id string, c *clock, sessions store.AgentSessions) (*Router, *syncbuf.Buffer) {
	t.Helper()
	logs := &syncbuf.Buffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	gw := gateway.New(nil, nil, nil, log, c.now)
	r, err := New(Config{ReplicaID: id, PeerURL: "https://" + id + ".replicas.test:8443", Key: key}, gw, sessions, nil, log, c.now)
	if err != nil {
		t.Fatal(err)
	}
	return r, logs
}

// serve sends req to the router and returns the status and error code.
func serve(t *testing.T, r *Router, req *http.Request) (int, peerError) {
	t.Helper()
	w := httptest.NewRecorder()
	r.ServeHTTP(w, req)
	var pe peerError
	if w.Code != http.StatusOK {
		if err := json.Unmarshal(w.Body.Bytes(), &pe); err != nil {
			t.Fatalf("answer %d %q: %v", w.Code, w.Body, err)
		}
	}
	return w.Code, pe
}

// A request signed for replica A is refused by replica B: the reason in
// B's log, the generic error on the wire. A itself accepts it.
func TestServeHTTPTarget(t *testing.T) {
	c := &clock{time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)}
	a, _ := replica(t, selfID, c)
	b, blog := replica(t, otherB, c)
	sender := &Signer{Key: key, Replica: fromID, Now: c.now}
	body := []byte(`{"instanceId":"i-0123456789abcdef0","requestId":"req-1"}`)

	r := signed(t, sender, selfID, http.MethodPost, pathRevoke, body)
	status, pe := serve(t, b, r)
	if status != http.StatusUnauthorized || pe.Code != "Unauthenticated" || pe.Message != errAuth.Error() {
		t.Fatalf("B answered %d %+v; want 401 Unauthenticated %q", status, pe, errAuth)
	}
	if l := blog.String(); !strings.Contains(l, "peer request refused") || !strings.Contains(l, "is for replica "+selfID+", not this one ("+otherB+")") {
		t.Fatalf("B's log does not say why:\n%s", l)
	}
	// The same request (header and body) at A is past authentication:
	// no agent here, so NotConnected.
	again := httptest.NewRequest(http.MethodPost, pathRevoke, bytes.NewReader(body))
	again.Header = r.Header.Clone()
	if status, pe := serve(t, a, again); status != http.StatusServiceUnavailable || pe.Code != "NotConnected" {
		t.Fatalf("A answered %d %+v; want 503 NotConnected (authenticated)", status, pe)
	}
	// A tunnel request likewise.
	tr := signed(t, sender, selfID, http.MethodGet, pathTunnel+"?instanceId=i-0123456789abcdef0&port=22", nil)
	if status, pe := serve(t, b, tr); status != http.StatusUnauthorized || pe.Message != errAuth.Error() {
		t.Fatalf("B answered a tunnel for A %d %+v", status, pe)
	}
}

// A replica still signing v1 is served, logged once at WARN, and shown
// by LastV1.
func TestServeHTTPV1(t *testing.T) {
	c := &clock{time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)}
	b, blog := replica(t, otherB, c)
	if !b.LastV1().IsZero() {
		t.Fatal("LastV1 set before any v1 request")
	}
	body := []byte(`{"instanceId":"i-0123456789abcdef0","requestId":"req-1"}`)
	for i := range 3 {
		c.t = c.t.Add(time.Second)
		r := signedV1(t, "old999", c.t, http.MethodPost, pathRevoke, body)
		if status, pe := serve(t, b, r); status != http.StatusServiceUnavailable || pe.Code != "NotConnected" {
			t.Fatalf("v1 request %d: %d %+v; want it authenticated (503 NotConnected)", i, status, pe)
		}
	}
	if got := b.LastV1(); !got.Equal(c.t) {
		t.Fatalf("LastV1 = %v, want %v", got, c.t)
	}
	const warn = "a replica still signs peer requests v1"
	if n := strings.Count(blog.String(), warn); n != 1 {
		t.Fatalf("the v1 warning was logged %d times for one sender, want 1:\n%s", n, blog)
	}
	if !strings.Contains(blog.String(), "level=WARN") || !strings.Contains(blog.String(), "fromReplica=old999") {
		t.Fatalf("the v1 warning does not name its sender at WARN:\n%s", blog)
	}
	// Another old replica is named too.
	c.t = c.t.Add(time.Second)
	serve(t, b, signedV1(t, "old888", c.t, http.MethodPost, pathRevoke, body))
	if n := strings.Count(blog.String(), warn); n != 2 || !strings.Contains(blog.String(), "fromReplica=old888") {
		t.Fatalf("a second v1 sender: %d warnings:\n%s", n, blog)
	}
	// v2 requests do not touch it.
	before := b.LastV1()
	c.t = c.t.Add(time.Second)
	sender := &Signer{Key: key, Replica: fromID, Now: c.now}
	serve(t, b, signed(t, sender, otherB, http.MethodPost, pathRevoke, body))
	if !b.LastV1().Equal(before) {
		t.Fatal("a v2 request moved LastV1")
	}
}

// oneSession is the agent session table as a sender sees it: one record.
// Only the lookup is used here (test/e2e/replicas runs the real table).
type oneSession struct {
	store.AgentSessions
	mu sync.Mutex
	s  store.AgentSession
}

func (o *oneSession) set(s store.AgentSession) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.s = s
}

func (o *oneSession) GetAgentSession(_ context.Context, id string) (store.AgentSession, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if id != o.s.InstanceID {
		return store.AgentSession{}, store.ErrNotFound
	}
	return o.s, nil
}

// The sender signs for the replica its session record names. A record
// naming a replica that is gone (B's predecessor at B's peer URL) gets a
// refusal from B, which the sender tells the user as "try again", not as
// an authentication failure; a record naming B is authenticated there.
func TestSenderTarget(t *testing.T) {
	c := &clock{time.Now()}
	b, blog := replica(t, otherB, c)
	srv := httptest.NewServer(b)
	defer srv.Close()
	sessions := &oneSession{}
	a, alog := replicaWith(t, selfID, c, sessions)
	const inst = "i-0123456789abcdef0"
	rec := store.KeyRecord{RequestID: "req-1", InstanceID: inst, OSUser: "ec2-user", PublicKey: "ssh-ed25519 AAAA", CallerARN: "arn:aws:iam::123456789012:root"}

	// Stale: the record names B's predecessor.
	sessions.set(store.AgentSession{InstanceID: inst, ReplicaID: "dead00", PeerURL: srv.URL})
	err := a.Deliver(context.Background(), rec)
	if ae := apierr.As(err); ae.Kind != apierr.Unavailable || !strings.Contains(ae.Message, "refused this replica's request") {
		t.Fatalf("Deliver through a stale record: %v", err)
	}
	if !strings.Contains(blog.String(), "is for replica dead00, not this one ("+otherB+")") {
		t.Fatalf("B's log does not say why it refused:\n%s", blog)
	}
	if !strings.Contains(alog.String(), "refused this replica's peer authentication") || !strings.Contains(alog.String(), "replica=dead00") {
		t.Fatalf("A's log does not name the refusal:\n%s", alog)
	}
	if _, err := a.OpenTunnel(context.Background(), inst, 22); err == nil || errors.Is(err, gateway.ErrNotConnected) || !strings.Contains(err.Error(), "refused this replica's request") {
		t.Fatalf("OpenTunnel through a stale record: %v", err)
	}

	// Current: the record names B. B authenticates the requests and
	// answers that the agent is not connected there.
	sessions.set(store.AgentSession{InstanceID: inst, ReplicaID: otherB, PeerURL: srv.URL})
	err = a.Deliver(context.Background(), rec)
	if ae := apierr.As(err); ae.Kind != apierr.Unavailable || !strings.Contains(ae.Message, "is not connected") {
		t.Fatalf("Deliver through B: %v", err)
	}
	if _, err := a.OpenTunnel(context.Background(), inst, 22); !errors.Is(err, gateway.ErrNotConnected) {
		t.Fatalf("OpenTunnel through B: %v", err)
	}
}
