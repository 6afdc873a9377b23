package gateway

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/yamux"

	"github.com/kaginashi/kaginashi/internal/agentproto"
	"github.com/kaginashi/kaginashi/internal/store"
	"github.com/kaginashi/kaginashi/internal/store/sqlite"
)

// countingStore is a real SQLite store that counts the writes the gateway
// makes for agents (puts: the sessions' UpdateAgentFacts).
type countingStore struct {
	store.Store
	mu      sync.Mutex
	puts    int
	sets    []string // states set by SetAgentState
	touched []string
}

func (c *countingStore) UpdateAgentFacts(ctx context.Context, in store.Instance) error {
	c.mu.Lock()
	c.puts++
	c.mu.Unlock()
	return c.Store.UpdateAgentFacts(ctx, in)
}

func (c *countingStore) SetAgentState(ctx context.Context, id, agentKey, state string, seen time.Time) error {
	c.mu.Lock()
	c.sets = append(c.sets, state)
	c.mu.Unlock()
	return c.Store.SetAgentState(ctx, id, agentKey, state, seen)
}

func (c *countingStore) TouchInstances(ctx context.Context, agents []store.AgentRef, seen time.Time) ([]store.AgentRef, error) {
	c.mu.Lock()
	for _, a := range agents {
		c.touched = append(c.touched, a.InstanceID)
	}
	c.mu.Unlock()
	return c.Store.TouchInstances(ctx, agents, seen)
}

func (c *countingStore) counts() (puts int, sets, touched []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.puts, slices.Clone(c.sets), slices.Clone(c.touched)
}

const testID = "i-0123456789abcdef0"

func newTestGateway(t *testing.T) (*Gateway, *countingStore) {
	t.Helper()
	db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "k.db"))
	if err != nil {
		t.Fatal(err)
	}
	st := &countingStore{Store: db}
	g := New(st, nil, nil, slog.New(slog.DiscardHandler), time.Now)
	g.IdleTimeout = 600 * time.Millisecond
	g.SeenEvery = 100 * time.Millisecond
	t.Cleanup(func() {
		g.Close()
		time.Sleep(50 * time.Millisecond) // let sessions record their end
		db.Close()
	})
	now := time.Now().UTC()
	in := store.Instance{ID: testID, State: store.StateStopped, LaunchTime: now, LastSeen: now.Add(-time.Hour), AgentKey: "SHA256:x",
		Tags: []store.Tag{{Key: "env", Value: "prod"}}}
	if err := db.PutInstance(t.Context(), in); err != nil {
		t.Fatal(err)
	}
	return g, st
}

// testAgent is the agent's end of a session over an in-memory pipe.
type testAgent struct {
	mux *yamux.Session
	c   *agentproto.Conn
}

// connect starts a session the way HandleConnect does after the upgrade,
// and says hello. keepalive: the agent's yamux ping interval, 0 for none.
func connect(t *testing.T, g *Gateway, st store.Store, keepalive time.Duration, inv agentproto.Inventory) *testAgent {
	t.Helper()
	return connectWith(t, g, st, keepalive, inv, nil)
}

// connectWith is connect for an agent whose hello lists features.
func connectWith(t *testing.T, g *Gateway, st store.Store, keepalive time.Duration, inv agentproto.Inventory, features []string) *testAgent {
	t.Helper()
	server, client := net.Pipe()
	return connectOver(t, g, st, server, client, keepalive, inv, features)
}

// connectOver is connectWith over a given pair of connection ends (the
// agent's may be wrapped).
func connectOver(t *testing.T, g *Gateway, st store.Store, server, client net.Conn, keepalive time.Duration, inv agentproto.Inventory, features []string) *testAgent {
	t.Helper()
	in, err := st.GetInstance(t.Context(), testID)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.startSession(t.Context(), server, nil, testID, in, nil); err != nil {
		t.Fatal(err)
	}
	cfg := yamux.DefaultConfig()
	cfg.LogOutput = io.Discard
	cfg.EnableKeepAlive = keepalive > 0
	if keepalive > 0 {
		cfg.KeepAliveInterval = keepalive
	}
	mux, err := yamux.Client(client, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mux.Close() })
	ctl, err := mux.OpenStream()
	if err != nil {
		t.Fatal(err)
	}
	a := &testAgent{mux: mux, c: agentproto.NewConn(ctl)}
	if err := a.c.Send(agentproto.Header{Type: agentproto.TypeControl}); err != nil {
		t.Fatal(err)
	}
	if err := a.c.Send(agentproto.Hello{InstanceID: testID, Inventory: inv, LocalTime: time.Now().UnixMilli(), Features: features}); err != nil {
		t.Fatal(err)
	}
	var b agentproto.Beat
	if err := a.c.Recv(&b); err != nil || b.Error != "" {
		t.Fatalf("hello: %v %q", err, b.Error)
	}
	return a
}

func (a *testAgent) heartbeat(t *testing.T, inv *agentproto.Inventory) {
	t.Helper()
	if err := a.c.Send(agentproto.Heartbeat{LocalTime: time.Now().UnixMilli(), Inventory: inv}); err != nil {
		t.Fatal(err)
	}
	var b agentproto.Beat
	if err := a.c.Recv(&b); err != nil {
		t.Fatal(err)
	}
}

func instance(t *testing.T, st store.Store) store.Instance {
	t.Helper()
	in, err := st.GetInstance(t.Context(), testID)
	if err != nil {
		t.Fatal(err)
	}
	return in
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

var testInventory = agentproto.Inventory{Hostname: "web1", OSID: "debian", OSVersion: "12", AgentVersion: "1.0", HostKeys: []string{"ssh-ed25519 AAAA"}}

// TestHeartbeatsBatched: heartbeats write nothing themselves; the sweep
// records the host as running and seen in one batch, and a session that
// ends leaves the host stopped, whatever the sweep does next.
func TestHeartbeatsBatched(t *testing.T) {
	g, st := newTestGateway(t)
	a := connect(t, g, st, 0, testInventory)
	if in := instance(t, st); in.State != store.StateRunning || in.Hostname != "web1" {
		t.Fatalf("after hello: state %q hostname %q, want running web1", in.State, in.Hostname)
	}
	// Make last_seen old, then heartbeat: the next sweep moves it.
	old := time.Now().Add(-time.Hour).UTC()
	if err := st.Store.SetInstanceState(t.Context(), testID, store.StateRunning, old); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		a.heartbeat(t, nil)
	}
	waitFor(t, "the sweep to record the heartbeats", func() bool { return instance(t, st).LastSeen.After(old) })
	puts, sets, touched := st.counts()
	if puts != 1 || len(sets) != 0 || !slices.Contains(touched, testID) {
		t.Fatalf("store writes: %d UpdateAgentFacts (want 1, the hello), SetAgentState %v (want none), TouchInstances %v (want %s)", puts, sets, touched, testID)
	}

	a.mux.Close()
	waitFor(t, "the session to end", func() bool { return !g.Connected(testID) })
	waitFor(t, "the host to show stopped", func() bool { return instance(t, st).State == store.StateStopped })
	time.Sleep(3 * g.SeenEvery)
	if in := instance(t, st); in.State != store.StateStopped {
		t.Fatalf("state after more sweeps: %q, want stopped", in.State)
	}
}

// TestSilentSessionEnded: a session that sends nothing for IdleTimeout is
// ended (the server sends no pings of its own); one whose agent pings
// stays, heartbeats or not.
func TestSilentSessionEnded(t *testing.T) {
	g, st := newTestGateway(t)
	connect(t, g, st, 0, testInventory)
	start := time.Now()
	waitFor(t, "the silent session to end", func() bool { return !g.Connected(testID) })
	if d := time.Since(start); d < g.IdleTimeout/2 {
		t.Fatalf("the silent session ended after %v, before IdleTimeout %v", d, g.IdleTimeout)
	}
	waitFor(t, "the host to show stopped", func() bool { return instance(t, st).State == store.StateStopped })

	connect(t, g, st, 100*time.Millisecond, testInventory)
	time.Sleep(3 * g.IdleTimeout)
	if !g.Connected(testID) {
		t.Fatalf("a pinging agent was disconnected")
	}
}

// TestInventoryWrites: an inventory that repeats the last one is not
// written; a changed one is, keeping the tags an administrator set since
// the agent connected.
func TestInventoryWrites(t *testing.T) {
	g, st := newTestGateway(t)
	a := connect(t, g, st, 0, testInventory)
	same := testInventory
	a.heartbeat(t, &same)
	if puts, _, _ := st.counts(); puts != 1 {
		t.Fatalf("%d UpdateAgentFacts after an unchanged inventory, want 1 (the hello)", puts)
	}
	if err := st.TagResource(t.Context(), testID, []store.Tag{{Key: "owner", Value: "ops"}}); err != nil {
		t.Fatal(err)
	}
	changed := testInventory
	changed.OSVersion = "13"
	a.heartbeat(t, &changed)
	puts, _, _ := st.counts()
	in := instance(t, st)
	want := []store.Tag{{Key: "env", Value: "prod"}, {Key: "owner", Value: "ops"}}
	if puts != 2 || in.OSVersion != "13" || !slices.Equal(in.Tags, want) || in.State != store.StateRunning {
		t.Fatalf("after a changed inventory: %d PutInstance (want 2), OS version %q (want 13), tags %v (want %v), state %q",
			puts, in.OSVersion, in.Tags, want, in.State)
	}
}

// TestEarlyBytes: bytes the HTTP server read ahead of the upgrade reach
// yamux first.
func TestEarlyBytes(t *testing.T) {
	server, client := net.Pipe()
	defer server.Close()
	defer client.Close()
	c := &agentConn{Conn: server, early: []byte("abc"), g: &Gateway{epoch: time.Now()}, s: &session{}}
	go func() { _, _ = client.Write([]byte("def")) }()
	got := make([]byte, 0, 6)
	buf := make([]byte, 2)
	for len(got) < 6 {
		n, err := c.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, buf[:n]...)
	}
	if string(got) != "abcdef" || c.s.lastRead.Load() == 0 {
		t.Fatalf("read %q (lastRead %d), want abcdef and a lastRead", got, c.s.lastRead.Load())
	}
}

func TestKeyStreamHeader(t *testing.T) {
	var buf bytes.Buffer
	if err := agentproto.NewConn(struct {
		io.Reader
		io.Writer
	}{nil, &buf}).Send(agentproto.Header{Type: agentproto.TypeKey}); err != nil {
		t.Fatal(err)
	}
	if buf.String() != keyStreamHeader {
		t.Fatalf("keyStreamHeader %q, want %q", keyStreamHeader, buf.String())
	}
}

// serveAgentStreams is a stand-in agent's stream loop: each stream the
// server opens is read up to its header and handed to handle, in a
// goroutine of its own, and closed when handle returns.
func serveAgentStreams(mux *yamux.Session, handle func(h agentproto.Header, c *agentproto.Conn)) {
	for {
		s, err := mux.AcceptStream()
		if err != nil {
			return
		}
		go func() {
			defer s.Close()
			c := agentproto.NewConn(s)
			var h agentproto.Header
			if c.Recv(&h) != nil {
				return
			}
			handle(h, c)
		}()
	}
}

// agentHello is the agent's side of a session whose server side is
// already started over the pipe's other end: it opens the control
// stream, says hello with inv and returns the first beat and the error of
// reading it (3 s at most).
func agentHello(t *testing.T, client net.Conn, inv agentproto.Inventory) (agentproto.Beat, error) {
	t.Helper()
	cfg := yamux.DefaultConfig()
	cfg.LogOutput = io.Discard
	cfg.EnableKeepAlive = false
	mux, err := yamux.Client(client, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mux.Close() })
	ctl, err := mux.OpenStream()
	if err != nil {
		t.Fatal(err)
	}
	c := agentproto.NewConn(ctl)
	_ = c.Send(agentproto.Header{Type: agentproto.TypeControl})
	_ = c.Send(agentproto.Hello{InstanceID: testID, Inventory: inv, LocalTime: time.Now().UnixMilli()})
	var b agentproto.Beat
	_ = ctl.SetReadDeadline(time.Now().Add(3 * time.Second))
	return b, c.Recv(&b)
}
