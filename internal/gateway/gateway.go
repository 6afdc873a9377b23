package gateway

import (
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/yamux"

	"github.com/kaginashi/kaginashi/internal/agentproto"
	"github.com/kaginashi/kaginashi/internal/apierr"
	"github.com/kaginashi/kaginashi/internal/bulkio"
	"github.com/kaginashi/kaginashi/internal/inventory"
	"github.com/kaginashi/kaginashi/internal/keyrecord"
	"github.com/kaginashi/kaginashi/internal/store"
)

// Gateway holds the agents' connections.
type Gateway struct {
	store  store.Store
	keys   *Keys
	tokens *Tokens
	log    *slog.Logger
	now    func() time.Time

	// PushTimeout bounds a key delivery: an agent that does not
	// acknowledge in time is unavailable. It leaves room for the rest of
	// the request within the 2 s in which SendSSHPublicKey answers
	// EC2InstanceUnavailableException.
	PushTimeout time.Duration

	// IdleTimeout ends a session that has sent nothing — no heartbeat, no
	// yamux keepalive ping — for this long: its host is gone. The server
	// sends no pings of its own (see HandleConnect); agents send a
	// heartbeat every 20 s (agents before 2026-11-28 also pinged every
	// 15 s). Set before the first session.
	IdleTimeout time.Duration
	// SeenEvery is how often the hosts that sent anything are recorded as
	// running and seen, all in one store write (see sweep). Set before the
	// first session.
	SeenEvery time.Duration
	// WriteTimeout bounds each write to an agent's connection (default
	// 30 s): an agent that stops reading its socket, while still sending
	// so that the idle sweep keeps it, would otherwise hold the session's
	// send loop, and every push and tunnel to it, until it disconnects.
	// A write that times out ends the session. Set before the first
	// session.
	WriteTimeout time.Duration
	// KeyStreamIdle is how long an agent's key stream stays open with no
	// push (default 1 minute; 0: until the session ends).
	KeyStreamIdle time.Duration

	mu       sync.Mutex
	sessions map[string]*session
	// withdrawals are keys whose push timed out (the API answered
	// failure) and whose withdrawal has not reached the agent yet — its
	// connection may have died with the record stored. They are sent
	// again when the agent reconnects here, until the record would have
	// expired anyway (guarded by mu; in memory: a restarted server or
	// another replica knows none, and the record's 60 s bound them).
	withdrawals map[string]map[string]time.Time // instance → request ID → record expiry

	// hook learns of sessions starting and ending (peer routing: see
	// SetSessionHook in peer.go). Set before the first session.
	hook SessionHook

	// flushMu orders the batched "running" writes against the "stopped"
	// write of a session that ends, so that a batch never marks running a
	// host whose agent has just gone.
	flushMu sync.Mutex
	// epoch is the base of sessions' lastRead (monotonic).
	epoch     time.Time
	sweepOnce sync.Once
	stop      chan struct{}
	closeOnce sync.Once
}

type session struct {
	instanceID string
	// agentKey is the fingerprint of the key the agent connected with.
	agentKey string
	mux      *yamux.Session
	since    time.Time
	// ports are the local ports the agent lets tunnels reach, as its
	// latest inventory says (guarded by Gateway.mu).
	ports []int
	// sshPort is the port the host's sshd listens on, as the agent last
	// reported it (0: unknown; guarded by Gateway.mu).
	sshPort int
	// lastRead is when the agent's connection last delivered bytes, as
	// time since Gateway.epoch; seenRead is lastRead as of the last
	// batch of "seen" writes (sweep's own).
	lastRead atomic.Int64
	seenRead int64
	// claim is what hook.SessionStarted returned, for SessionEnded.
	claim int64
	// renew is the agent's public key when its certificate is from the
	// previous agent CA (see startSession).
	renew any
	// keyStreams: the agent serves a TypeKeys stream (its Hello said so);
	// ks is that stream once opened, guarded by ksMu.
	keyStreams bool
	ksMu       sync.Mutex
	ks         *keyStream
	// keyProblem is the agent's latest SigningKeyProblem (keyproblem.go;
	// guarded by Gateway.mu).
	keyProblem string
}

// New makes a gateway. Close stops it.
func New(st store.Store, keys *Keys, tokens *Tokens, log *slog.Logger, now func() time.Time) *Gateway {
	return &Gateway{store: st, keys: keys, tokens: tokens, log: log, now: now, PushTimeout: 1500 * time.Millisecond,
		IdleTimeout: time.Minute, WriteTimeout: 30 * time.Second, KeyStreamIdle: time.Minute, SeenEvery: 30 * time.Second,
		sessions: map[string]*session{}, withdrawals: map[string]map[string]time.Time{}, epoch: time.Now(), stop: make(chan struct{})}
}

// Connected reports whether an instance's agent is connected here.
func (g *Gateway) Connected(id string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	_, ok := g.sessions[id]
	return ok
}

// Close ends every agent session (at server shutdown: hijacked
// connections are not the HTTP server's to close).
func (g *Gateway) Close() {
	g.closeOnce.Do(func() { close(g.stop) })
	g.mu.Lock()
	sessions := make([]*session, 0, len(g.sessions))
	for _, s := range g.sessions {
		sessions = append(sessions, s)
	}
	g.mu.Unlock()
	for _, s := range sessions {
		s.mux.Close()
	}
}

// Count is the number of connected agents.
func (g *Gateway) Count() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.sessions)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func refuse(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, agentproto.ErrorResponse{Error: msg})
}

// agentCert returns the verified client certificate's instance ID and key
// fingerprint, if the client presented one issued by the agent CA (or,
// during an agent CA rotation, the previous one: then renew is the
// certificate's public key, for a new certificate from the current CA).
func (g *Gateway) agentCert(r *http.Request) (id, fingerprint string, renew any, ok bool) {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return "", "", nil, false
	}
	cert := r.TLS.PeerCertificates[0]
	// The TLS layer verified the chain against ClientCAs; check again
	// against the agent CA alone (ClientCAs may hold more one day).
	chains, err := cert.Verify(x509.VerifyOptions{Roots: g.keys.CAPool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, CurrentTime: g.now()})
	if err != nil {
		return "", "", nil, false
	}
	if inventory.ValidInstanceID(cert.Subject.CommonName) != nil {
		return "", "", nil, false
	}
	if root := chains[0][len(chains[0])-1]; !root.Equal(g.keys.CA) {
		renew = cert.PublicKey
	}
	return cert.Subject.CommonName, KeyFingerprint(cert.RawSubjectPublicKeyInfo), renew, true
}

var hostnameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9.-]{0,252}$`)

// HandleEnroll enrolls an agent: a valid join token buys an identity — an
// instance ID and a client certificate for the agent's own key. An agent
// presenting its old certificate keeps its instance ID.
func (g *Gateway) HandleEnroll(w http.ResponseWriter, r *http.Request) {
	var req agentproto.EnrollRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&req); err != nil {
		refuse(w, http.StatusBadRequest, "the enrollment request is not valid JSON")
		return
	}
	pub, err := x509.ParsePKIXPublicKey(req.PublicKey)
	if err != nil {
		refuse(w, http.StatusBadRequest, "publicKey is not a PKIX public key")
		return
	}
	if _, ok := pub.(ed25519.PublicKey); !ok {
		refuse(w, http.StatusBadRequest, "the agent key must be Ed25519")
		return
	}
	host := req.Hostname
	if !hostnameRE.MatchString(host) {
		host = ""
	}
	// Whatever can refuse the enrollment is checked before the join token
	// is used: a refusal must not spend one of its uses.
	var agentTags []store.Tag
	for _, t := range req.Tags {
		if !strings.HasPrefix(strings.ToLower(t.Key), inventory.SystemTagPrefix) { // mergeTags skips those
			agentTags = append(agentTags, store.Tag{Key: t.Key, Value: t.Value})
		}
	}
	if err := inventory.CheckTags(agentTags); err != nil {
		g.log.Warn("agent enrollment refused: its tags", "remote", r.RemoteAddr, "hostname", host, "err", err)
		refuse(w, http.StatusBadRequest, err.Error())
		return
	}
	now := g.now().UTC()
	in := store.Instance{State: store.StatePending, LaunchTime: now, LastSeen: now, Hostname: host, AgentKey: KeyFingerprint(req.PublicKey)}
	reenrolled, oldKey := false, ""
	if oldID, certKey, _, ok := g.agentCert(r); ok {
		oldKey = certKey
		old, err := g.store.GetInstance(r.Context(), oldID)
		switch {
		case err == nil && old.AgentKey == oldKey:
			reenrolled = true
			in = old
			in.AgentKey, in.LastSeen = KeyFingerprint(req.PublicKey), now
			if host != "" {
				in.Hostname = host
			}
		case err == nil:
			// A certificate the instance's latest enrollment replaced: it
			// no longer speaks for the instance (HandleConnect refuses it
			// too), so with a token it buys a new instance, not this one.
			g.log.Warn("agent enrollment with a replaced certificate: enrolled as a new instance", "replaced", oldID, "remote", r.RemoteAddr, "hostname", host)
		case !errors.Is(err, store.ErrNotFound):
			// Unknown whether the certificate still speaks for its
			// instance: enrolling a new one would leave the host with two.
			g.log.Error("agent enrollment: reading the instance of its certificate failed", "instance", oldID, "remote", r.RemoteAddr, "err", err)
			refuse(w, http.StatusInternalServerError, "internal error")
			return
		}
	}
	jt, err := g.tokens.use(r.Context(), req.Token)
	if err != nil {
		g.log.Warn("agent enrollment refused", "remote", r.RemoteAddr, "hostname", host, "err", err)
		if apierr.KindOf(err) == apierr.Internal {
			refuse(w, http.StatusInternalServerError, "internal error")
			return
		}
		refuse(w, http.StatusForbidden, err.Error())
		return
	}
	if in.ID == "" {
		in.ID = inventory.NewInstanceID()
	}
	var dropped []string
	in.Tags, dropped = mergeTags(in.Tags, jt.Tags, req.Tags)
	if len(dropped) > 0 {
		g.log.Warn("enrollment tags whose keys differ only in case from a tag the host already has were not applied; the existing ones stay",
			"instance", in.ID, "token", jt.ID, "keys", dropped)
	}
	if err := inventory.CheckTags(in.Tags); err != nil {
		refuse(w, http.StatusBadRequest, err.Error())
		return
	}
	cert, err := g.keys.IssueClientCert(in.ID, pub, now)
	if err != nil {
		refuse(w, http.StatusInternalServerError, "internal error")
		return
	}
	// A re-enrollment replaces the instance only while it still has the
	// key read above: a deregistration or another enrollment landing in
	// between wins (the first must not be undone, and of two enrollments
	// with one certificate only one may take the instance).
	if reenrolled {
		err = g.store.ReplaceInstance(r.Context(), in, oldKey)
	} else {
		err = g.store.PutInstance(r.Context(), in)
	}
	if errors.Is(err, store.ErrNotFound) {
		g.log.Warn("agent re-enrollment refused: the instance was deregistered or enrolled again meanwhile", "instance", in.ID, "remote", r.RemoteAddr, "hostname", host)
		refuse(w, http.StatusConflict, "the instance was deregistered or enrolled again during this enrollment; enroll again (with a join token, as a new instance)")
		return
	}
	if err != nil {
		g.log.Error("storing an enrolled instance failed", "instance", in.ID, "err", err)
		refuse(w, http.StatusInternalServerError, "internal error")
		return
	}
	g.recordAgentCA(r.Context(), in.ID, now)
	// The agent whose identity this enrollment replaced may still be
	// connected, here or at another replica: its certificate no longer
	// speaks for the instance. The holder learns of it through the hook;
	// the enrollment's answer does not wait for that.
	if _, err := g.EndReplacedSession(r.Context(), in.ID); err != nil {
		g.log.Warn("ending the replaced identity's session here failed; it ends when it next writes", "instance", in.ID, "err", err)
	}
	if rh, ok := g.hook.(ReplacedHook); ok && reenrolled {
		go func() {
			ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 10*time.Second)
			defer cancel()
			rh.IdentityReplaced(ctx, in.ID)
		}()
	}
	g.log.Info("agent enrolled", "instance", in.ID, "hostname", host, "token", jt.ID, "remote", r.RemoteAddr)
	writeJSON(w, http.StatusOK, agentproto.EnrollResponse{
		InstanceID: in.ID, Certificate: cert, SigningKey: g.keys.Signer.Public().(ed25519.PublicKey), ServerTime: now.UnixMilli(),
	})
}

// mergeTags overlays token tags on the existing, then adds the agent's own.
// A tag whose key differs only in case from one already there (Team over
// team) is not applied and its key is returned in dropped: condition keys
// ignore case, so a host with both would leave ec2:ResourceTag/Team to
// whichever came last (inventory.CheckTagKeyCase; CreateTags refuses the
// same). The existing one stays: a host's own claim, or a token's, does
// not get to change what an administrator set under another spelling.
//
// The agent's own tags only add keys: the token is the administrator's
// word, the agent's tags the host's claim, so a host cannot keep (or set)
// a value that its token or an administrator gave otherwise — a re-enrolled
// host claiming Team=prod under a Team=sandbox token gets sandbox.
func mergeTags(existing, fromToken []store.Tag, fromAgent []agentproto.Tag) (out []store.Tag, dropped []string) {
	out = append([]store.Tag(nil), existing...)
	overwrite := true
	set := func(k, v string) {
		for i := range out {
			if out[i].Key == k {
				if overwrite {
					out[i].Value = v
				}
				return
			}
			if strings.EqualFold(out[i].Key, k) {
				dropped = append(dropped, k)
				return
			}
		}
		out = append(out, store.Tag{Key: k, Value: v})
	}
	for _, t := range fromToken {
		set(t.Key, t.Value)
	}
	overwrite = false
	for _, t := range fromAgent {
		if strings.HasPrefix(strings.ToLower(t.Key), inventory.SystemTagPrefix) {
			continue // reserved for what the agent reports, not what it claims
		}
		set(t.Key, t.Value)
	}
	return out, dropped
}

// HandleConnect takes an agent's connection: mTLS identity, HTTP upgrade,
// then yamux, until the agent goes away.
func (g *Gateway) HandleConnect(w http.ResponseWriter, r *http.Request) {
	id, fp, renew, ok := g.agentCert(r)
	if !ok {
		refuse(w, http.StatusUnauthorized, "an agent connection needs the client certificate issued at enrollment")
		return
	}
	in, err := g.store.GetInstance(r.Context(), id)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		// Not a verdict on the identity: the agent retries.
		g.log.Error("agent connection: reading its instance failed", "instance", id, "err", err)
		refuse(w, http.StatusServiceUnavailable, "the server cannot read its store right now; try again")
		return
	}
	if err != nil || in.AgentKey != fp {
		// Re-enrolled elsewhere, or deleted: this certificate no longer
		// speaks for the instance.
		refuse(w, http.StatusForbidden, agentproto.IdentityRevoked)
		return
	}
	if !strings.EqualFold(r.Header.Get("Upgrade"), agentproto.UpgradeProtocol) {
		refuse(w, http.StatusBadRequest, "want Upgrade: "+agentproto.UpgradeProtocol)
		return
	}
	rc := http.NewResponseController(w)
	conn, brw, err := rc.Hijack()
	if err != nil {
		refuse(w, http.StatusInternalServerError, "cannot take over the connection")
		return
	}
	// The handshake's deadlines are the server's; the tunnel's are yamux's.
	_ = conn.SetDeadline(time.Time{})
	if _, err := io.WriteString(conn, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: "+agentproto.UpgradeProtocol+"\r\nConnection: Upgrade\r\n\r\n"); err != nil {
		conn.Close()
		return
	}
	// Bytes the HTTP server read ahead (an agent that starts yamux
	// without waiting for the 101) are taken over; then neither its read
	// buffer nor its write buffer stays referenced: an idle agent should
	// cost as little memory as possible, times thousands.
	var early []byte
	if n := brw.Reader.Buffered(); n > 0 {
		early = make([]byte, n)
		_, _ = io.ReadFull(brw.Reader, early)
	}
	if err := g.startSession(context.WithoutCancel(r.Context()), bulkio.Batch(conn), early, id, in, renew); err != nil {
		conn.Close()
	}
	// The session runs on its own goroutine and this handler returns, so
	// that the HTTP server's per-connection state (its buffers, the
	// request, a stack grown by the TLS handshake) is released.
}

// startSession runs yamux over an agent's upgraded connection (early: bytes
// already read from it) and serves the session on a goroutine of its own.
// renew, when not nil, is the public key of an agent whose certificate
// came from the previous agent CA: the answer to its hello carries a new
// one.
func (g *Gateway) startSession(ctx context.Context, conn net.Conn, early []byte, id string, in store.Instance, renew any) error {
	cfg := yamux.DefaultConfig()
	cfg.LogOutput = io.Discard
	// No pings from the server: the agents send heartbeats, and a session
	// that has sent nothing for IdleTimeout is ended by sweep, so the
	// server keeps no keepalive goroutine and timer per agent and sends
	// half as many frames. (Detecting a dead host takes up to IdleTimeout
	// plus a sweep, instead of about 25 s; a key pushed to it meanwhile
	// fails after PushTimeout, as before.)
	cfg.EnableKeepAlive = false
	cfg.ConnectionWriteTimeout = 10 * time.Second
	cfg.MaxStreamWindowSize = agentproto.StreamWindow
	// AcceptBacklog sizes a per-session channel (256 by default) and also
	// bounds the streams the server may be opening to the agent at once,
	// unacknowledged; the agent opens only the control stream.
	cfg.AcceptBacklog = 16
	s := &session{instanceID: id, agentKey: in.AgentKey, renew: renew}
	mux, err := yamux.Server(agentproto.CoalesceFrames(&agentConn{Conn: conn, early: early, g: g, s: s}), cfg)
	if err != nil {
		return err
	}
	s.mux = mux
	s.lastRead.Store(int64(time.Since(g.epoch)))
	g.sweepOnce.Do(func() { go g.sweep() })
	go g.serve(ctx, s, in)
	return nil
}

// serve runs one agent session until it ends.
func (g *Gateway) serve(ctx context.Context, s *session, in store.Instance) {
	id, mux := s.instanceID, s.mux
	defer mux.Close()
	// The agent's first stream is the control stream, with its Hello.
	acceptCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	stream, err := acceptStream(acceptCtx, mux)
	cancel()
	if err != nil {
		g.log.Warn("agent opened no control stream", "instance", id, "err", err)
		return
	}
	defer stream.Close()
	// Heartbeats are small; an inventory takes a few reads of this buffer.
	c := agentproto.NewConnSize(stream, 512)
	var h agentproto.Header
	var hello agentproto.Hello
	_ = stream.SetReadDeadline(time.Now().Add(10 * time.Second))
	if err := c.Recv(&h); err != nil || h.Type != agentproto.TypeControl || c.Recv(&hello) != nil || hello.InstanceID != id {
		g.log.Warn("agent sent no valid hello", "instance", id)
		return
	}
	_ = stream.SetReadDeadline(time.Time{})
	now := g.now().UTC()
	g.applyInventory(&in, hello.Inventory, 0)
	in.State, in.LastSeen = store.StateRunning, now
	// Register the session first: an agent that has the answer to its
	// hello is connected, and a key pushed right after must reach it. And
	// an older session of this agent ending meanwhile then finds itself
	// replaced, instead of marking the instance stopped after this one
	// marked it running.
	s.since, s.ports, s.sshPort = now, clipPorts(hello.Inventory.AllowedPorts), clipPort(hello.Inventory.SSHPort)
	s.keyStreams = hello.Has(agentproto.FeatureKeyStream)
	g.mu.Lock()
	old := g.sessions[id]
	g.sessions[id] = s
	g.mu.Unlock()
	if old != nil {
		old.mux.Close() // a newer connection of the same agent wins
	}
	if g.hook != nil {
		// Before the answer to the hello, like the map: other replicas
		// route to this one from now on.
		s.claim = g.hook.SessionStarted(ctx, id)
	}
	go g.resendWithdrawals(s, id)
	g.noteKeyProblem(s, hello.SigningKeyProblem)
	// The hello's facts, over the instance as the store has it when the
	// write lands; not when a deregistration (errDeregistered) or a new
	// enrollment (errReplaced) came since HandleConnect read it. Tags are
	// not written at all.
	helloErr := g.writeFacts(ctx, s, &in)
	if helloErr != nil {
		g.log.Error("recording a connected agent failed", "instance", id, "err", helloErr)
	} else {
		g.log.Info("agent connected", "instance", id, "agentVersion", hello.Inventory.AgentVersion)
		answer := g.helloAnswer(id, hello, now)
		g.renewCert(s, &answer, now)
		helloErr = c.Send(answer)
		if helloErr == nil && s.renew == nil && g.keys != nil && g.keys.PrevCA != nil {
			// During an agent CA rotation: this agent connected with a
			// certificate of the new CA (rotate-agent-ca --finish counts
			// those that have not). Not when it is sent one: an older
			// agent ignores it, and only its use proves it was stored.
			g.recordAgentCA(ctx, id, now)
		}
	}

	// Other streams from the agent are not part of the protocol; nothing
	// accepts them: yamux refuses them once AcceptBacklog are pending.
	for helloErr == nil {
		var hb agentproto.Heartbeat
		if err := c.Recv(&hb); err != nil {
			break
		}
		now := g.now().UTC()
		g.noteKeyProblem(s, hb.SigningKeyProblem)
		// A plain heartbeat writes nothing: sweep records every host
		// heard from, in one write. An inventory is written now.
		if hb.Inventory != nil {
			before := in
			g.applyInventory(&in, *hb.Inventory, hb.ClockSkewMillis)
			g.mu.Lock()
			s.ports, s.sshPort = clipPorts(hb.Inventory.AllowedPorts), clipPort(hb.Inventory.SSHPort)
			g.mu.Unlock()
			// Most inventories repeat the last one: only a change is
			// worth a durable write (the sweep records the host as seen).
			if !sameFacts(before, in) {
				in.LastSeen = now
				g.putInventory(ctx, s, &in)
			} else {
				in.ClockSkewMillis = before.ClockSkewMillis
			}
		}
		if err := c.Send(agentproto.Beat{ServerTime: now.UnixMilli(), Echo: hb.LocalTime}); err != nil {
			break
		}
	}
	g.flushMu.Lock()
	defer g.flushMu.Unlock()
	g.mu.Lock()
	current := g.sessions[id] == s
	if current {
		delete(g.sessions, id)
	}
	g.mu.Unlock()
	if current && g.hook != nil {
		g.hook.SessionEnded(ctx, id, s.claim)
	}
	if current {
		// Disconnected hosts show as "stopped": they exist, but cannot
		// take a login until their agent is back. Only while the instance
		// is still this agent's: after a re-enrollment the new agent's
		// state is not this session's to write (ErrNotFound, as for a
		// deregistered instance, is expected then).
		if err := g.store.SetAgentState(ctx, id, s.agentKey, store.StateStopped, g.now().UTC()); err != nil && !errors.Is(err, store.ErrNotFound) {
			g.log.Warn("recording a disconnected agent failed", "instance", id, "err", err)
		}
		g.log.Info("agent disconnected", "instance", id)
	}
}

// skewNoise is how much a host's measured clock skew may move before
// the change is worth recording: the measurement itself varies by a few
// milliseconds from one round trip to the next.
const skewNoise = 500 // milliseconds

// sameFacts reports whether two versions of an instance carry the same
// agent-reported facts (the skew within skewNoise), ignoring when it was
// seen, its state and its tags.
func sameFacts(a, b store.Instance) bool {
	d := a.ClockSkewMillis - b.ClockSkewMillis
	if d < -skewNoise || d > skewNoise || !slices.Equal(a.HostKeys, b.HostKeys) {
		return false
	}
	a.HostKeys, b.HostKeys = nil, nil
	a.ClockSkewMillis, b.ClockSkewMillis = 0, 0
	a.LastSeen, b.LastSeen = time.Time{}, time.Time{}
	a.State, b.State = "", ""
	a.Tags, b.Tags = nil, nil
	return reflect.DeepEqual(a, b)
}

// putInventory stores an agent's new inventory: its facts only, in one
// conditional write (store.UpdateAgentFacts), so that the tags an
// administrator changed since (EC2 CreateTags) stay, and so that neither a
// deregistration nor a re-enrollment through any replica, landing at any
// time, is undone: when the instance is no longer this agent's, nothing is
// written and the session ends.
func (g *Gateway) putInventory(ctx context.Context, s *session, in *store.Instance) {
	in.State = store.StateRunning
	err := g.writeFacts(ctx, s, in)
	switch {
	case err == nil:
	case errors.Is(err, errDeregistered) || errors.Is(err, errReplaced):
		g.endStale(s, err.Error())
	default:
		g.log.Warn("updating an agent's inventory failed", "instance", in.ID, "err", err)
	}
}

// sweep runs while the gateway does, from the first session on: every
// SeenEvery it records the hosts whose agents sent anything since the last
// time as running and seen, in one store write (a heartbeat writing its
// own row cost a durable write per agent every 20 s); and it ends sessions
// silent for IdleTimeout.
func (g *Gateway) sweep() {
	tick := min(g.SeenEvery, g.IdleTimeout/4)
	t := time.NewTicker(max(tick, 10*time.Millisecond))
	defer t.Stop()
	lastFlush := time.Now()
	for {
		select {
		case <-g.stop:
			return
		case <-t.C:
		}
		elapsed := time.Since(g.epoch)
		var idle []*session
		g.mu.Lock()
		for _, s := range g.sessions {
			if elapsed-time.Duration(s.lastRead.Load()) > g.IdleTimeout {
				idle = append(idle, s)
			}
		}
		g.mu.Unlock()
		for _, s := range idle {
			g.log.Warn("agent silent, ending its session", "instance", s.instanceID, "idleTimeout", g.IdleTimeout)
			s.mux.Close()
		}
		if time.Since(lastFlush) >= g.SeenEvery {
			lastFlush = time.Now()
			g.flushSeen()
		}
	}
}

// flushSeen marks running and seen the hosts heard from since the last
// flush.
func (g *Gateway) flushSeen() {
	g.flushMu.Lock()
	defer g.flushMu.Unlock()
	// Each with its session's agent key: the store touches an instance
	// only while that key speaks for it, so the batch never marks running
	// an instance a re-enrollment gave to another agent (nor re-creates a
	// deregistered one: it updates only rows that exist).
	var agents []store.AgentRef
	batch := map[string]*session{}
	g.mu.Lock()
	for id, s := range g.sessions {
		if r := s.lastRead.Load(); r != s.seenRead {
			s.seenRead = r
			agents = append(agents, store.AgentRef{InstanceID: id, AgentKey: s.agentKey})
			batch[id] = s
		}
	}
	g.mu.Unlock()
	if len(agents) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	stale, err := g.store.TouchInstances(ctx, agents, g.now().UTC())
	if err != nil {
		g.log.Warn("recording heartbeats failed", "instances", len(agents), "err", err)
		return
	}
	// An agent whose instance is gone (deregistered through a replica
	// that could not reach this one) or was given to another key (a
	// re-enrollment elsewhere) speaks for nothing: every push and tunnel
	// would be refused anyway. Ending its session here, within SeenEvery,
	// does not wait for its next inventory report.
	for _, a := range stale {
		g.endStale(batch[a.InstanceID], "its heartbeat found the instance deregistered, or enrolled again with another key")
	}
}

// endStale ends the session of an agent that no longer speaks for its
// instance.
func (g *Gateway) endStale(s *session, reason string) {
	g.log.Info("ending the session of an agent that no longer speaks for its instance", "instance", s.instanceID, "reason", reason)
	s.mux.Close()
}

// AllowedPorts returns the ports the instance's agent lets tunnels reach,
// as it last reported them; false when its agent is not connected here
// (the list lives with the session, not in the store).
func (g *Gateway) AllowedPorts(id string) ([]int, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	s := g.sessions[id]
	if s == nil || s.ports == nil {
		return nil, false
	}
	return append([]int(nil), s.ports...), true
}

// SSHPort returns the port the instance's sshd listens on, as its agent
// last reported it; false when unknown or the agent is not connected here.
func (g *Gateway) SSHPort(id string) (int, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	s := g.sessions[id]
	if s == nil || s.sshPort == 0 {
		return 0, false
	}
	return s.sshPort, true
}

func clipPort(p int) int {
	if p < 1 || p > 65535 {
		return 0
	}
	return p
}

// clipPorts keeps at most 64 valid ports of an agent's report; nil (an
// agent that reports none) stays nil: unknown.
func clipPorts(ports []int) []int {
	if ports == nil {
		return nil
	}
	out := []int{}
	for _, p := range ports {
		if p >= 1 && p <= 65535 && len(out) < 64 {
			out = append(out, p)
		}
	}
	return out
}

func acceptStream(ctx context.Context, mux *yamux.Session) (*yamux.Stream, error) {
	type result struct {
		s   *yamux.Stream
		err error
	}
	ch := make(chan result, 1)
	go func() {
		s, err := mux.AcceptStream()
		ch <- result{s, err}
	}()
	select {
	case r := <-ch:
		return r.s, r.err
	case <-ctx.Done():
		mux.Close()
		return nil, ctx.Err()
	}
}

// applyInventory copies an agent's report into the instance, bounded.
func (g *Gateway) applyInventory(in *store.Instance, inv agentproto.Inventory, skew int64) {
	clip := func(s string, n int) string {
		if len(s) > n {
			return s[:n]
		}
		return s
	}
	if inv.Hostname != "" && hostnameRE.MatchString(inv.Hostname) {
		in.Hostname = inv.Hostname
	}
	in.OSID, in.OSVersion, in.OSPrettyName = clip(inv.OSID, 64), clip(inv.OSVersion, 64), clip(inv.OSPrettyName, 256)
	in.Platform, in.Architecture, in.Kernel = clip(inv.Platform, 64), clip(inv.Architecture, 32), clip(inv.Kernel, 128)
	in.DefaultUser, in.DefaultUserExists = clip(inv.DefaultUser, 32), inv.DefaultUserExists
	// Addresses are condition keys (privateIpAddress) and look-up keys
	// (openTunnel, the private-ip-address filter): only an address, in
	// its canonical form, or nothing.
	in.PrivateIP = canonicalIP(inv.PrivateIP, true)
	in.IPv6 = ""
	if len(inv.IPv6) > 0 {
		in.IPv6 = canonicalIP(inv.IPv6[0], false)
	}
	in.AgentVersion, in.SSHDVersion, in.SSHDConfigured = clip(inv.AgentVersion, 64), clip(inv.SSHDVersion, 128), inv.SSHDConfigured
	in.HostKeys = nil
	for i, k := range inv.HostKeys {
		if i >= 16 || len(k) > 16<<10 {
			break
		}
		in.HostKeys = append(in.HostKeys, k)
	}
	in.ClockSkewMillis = skew
}

// canonicalIP is s as an address in canonical form (inventory.ParseAddr)
// of the family asked for (IPv4 when v4, else IPv6), or "".
func canonicalIP(s string, v4 bool) string {
	a, ok := inventory.ParseAddr(s)
	if !ok || a.Is4() != v4 {
		return ""
	}
	return a.String()
}

// Deliver signs a key record and hands it to the instance's agent,
// returning once the agent has acknowledged it (the agent persists it
// first, so a login right after never races). No connected agent, or no
// acknowledgement within PushTimeout: Unavailable.
func (g *Gateway) Deliver(ctx context.Context, rec store.KeyRecord) error {
	kr := keyrecord.Record{
		RequestID: rec.RequestID, InstanceID: rec.InstanceID, OSUser: rec.OSUser, PublicKey: rec.PublicKey,
		Fingerprint: rec.Fingerprint, CallerARN: rec.CallerARN, IssuedAt: rec.CreatedAt.Unix(), ExpiresAt: rec.ExpiresAt.Unix(),
	}
	g.mu.Lock()
	s := g.sessions[rec.InstanceID]
	g.mu.Unlock()
	if s == nil {
		return apierr.New(apierr.Unavailable, "The agent of instance %s is not connected; the host may be down or unable to reach the server. Try again later.", rec.InstanceID)
	}
	if err := kr.Sign(g.keys.Signer); err != nil {
		return apierr.Wrap(err, "signing the key record")
	}
	ctx, cancel := context.WithTimeout(ctx, g.PushTimeout)
	defer cancel()
	// Both ways of pushing end in one ack: the agent's (OK, or its
	// refusal), or one of ID 0 when the push may have reached the agent
	// but no answer came back (its fate there is unknown).
	var acks <-chan agentproto.Ack
	forget := func() {}
	if s.keyStreams {
		var err error
		acks, forget, err = s.sendKey(ctx, kr, g.KeyStreamIdle)
		if err != nil {
			return apierr.New(apierr.Unavailable, "The agent of instance %s did not accept the key: %v", rec.InstanceID, err)
		}
	} else {
		ch := make(chan agentproto.Ack, 1)
		go func() { ch <- legacyAck(push(s.mux, kr)) }()
		acks = ch
	}
	// The API is about to answer failure: the key must not work, even if
	// the agent holds it or takes it after all. Withdraw it (the agent
	// drops it, or refuses it when the push arrives later), and again
	// when the agent reconnects if this does not reach it.
	withdraw := func() {
		g.addWithdrawal(rec.InstanceID, rec.RequestID, rec.ExpiresAt)
		go g.revoke(s, rec.InstanceID, rec.RequestID)
	}
	select {
	case ack := <-acks:
		switch {
		case ack.OK:
			return nil
		case ack.ID == 0:
			withdraw()
			return apierr.New(apierr.Unavailable, "The agent of instance %s did not acknowledge the key: %s", rec.InstanceID, ack.Error)
		default:
			return apierr.New(apierr.Unavailable, "The agent of instance %s did not accept the key: %s", rec.InstanceID, ack.Error)
		}
	case <-ctx.Done():
		forget()
		withdraw()
		return apierr.New(apierr.Unavailable, "The agent of instance %s did not acknowledge the key in time. Try again later.", rec.InstanceID)
	}
}

// revoke withdraws a pushed record from an agent, best effort: a session
// that is gone took the record nowhere (a reconnecting agent keeps what it
// stored, which its 60 s expiry then bounds).
func (g *Gateway) revoke(s *session, instanceID, requestID string) {
	err := func() error {
		st, err := s.mux.OpenStream()
		if err != nil {
			return err
		}
		defer st.Close()
		_ = st.SetDeadline(time.Now().Add(5 * time.Second))
		c := agentproto.NewConnSize(st, 512)
		if err := c.Send(agentproto.Header{Type: agentproto.TypeRevoke}); err != nil {
			return err
		}
		if err := c.Send(agentproto.Revoke{RequestID: requestID}); err != nil {
			return err
		}
		var ack agentproto.Ack
		if err := c.Recv(&ack); err != nil {
			return err
		}
		if !ack.OK {
			return errors.New(ack.Error)
		}
		return nil
	}()
	if err != nil {
		// The agent may have reconnected already, its new session's
		// resendWithdrawals having run before this withdrawal was added
		// (a push waiting on the old session's key stream fails only
		// when the new session closes the old one): withdraw there.
		g.mu.Lock()
		cur := g.sessions[instanceID]
		g.mu.Unlock()
		if cur != nil && cur != s {
			g.revoke(cur, instanceID, requestID)
			return
		}
		g.log.Warn("withdrawing a key whose push timed out failed; trying again when the agent reconnects", "instance", instanceID, "request", requestID, "err", err)
		return
	}
	g.doneWithdrawal(instanceID, requestID)
	g.log.Info("withdrew a key whose push timed out", "instance", instanceID, "request", requestID)
}

func (g *Gateway) addWithdrawal(instanceID, requestID string, expires time.Time) {
	now := g.now()
	g.mu.Lock()
	defer g.mu.Unlock()
	// Failed pushes are rare: forgetting the expired ones of every
	// instance here keeps agents that never come back from piling up.
	for inst, m := range g.withdrawals {
		for id, exp := range m {
			if now.After(exp) {
				delete(m, id)
			}
		}
		if len(m) == 0 {
			delete(g.withdrawals, inst)
		}
	}
	if g.withdrawals[instanceID] == nil {
		g.withdrawals[instanceID] = map[string]time.Time{}
	}
	g.withdrawals[instanceID][requestID] = expires
}

func (g *Gateway) doneWithdrawal(instanceID, requestID string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.withdrawals[instanceID], requestID)
	if len(g.withdrawals[instanceID]) == 0 {
		delete(g.withdrawals, instanceID)
	}
}

// resendWithdrawals sends a reconnected agent the withdrawals it may have
// missed; those whose record has expired are forgotten.
func (g *Gateway) resendWithdrawals(s *session, instanceID string) {
	now := g.now()
	var pending []string
	g.mu.Lock()
	for id, exp := range g.withdrawals[instanceID] {
		if now.After(exp) {
			delete(g.withdrawals[instanceID], id)
			continue
		}
		pending = append(pending, id)
	}
	if len(g.withdrawals[instanceID]) == 0 {
		delete(g.withdrawals, instanceID)
	}
	g.mu.Unlock()
	for _, id := range pending {
		g.revoke(s, instanceID, id)
	}
}

// keyStreamHeader is agentproto.Header{Type: TypeKey} as a JSON line (a
// test checks it against the encoder).
const keyStreamHeader = `{"type":"` + agentproto.TypeKey + `"}` + "\n"

func push(mux *yamux.Session, kr keyrecord.Record) error {
	st, err := mux.OpenStream()
	if err != nil {
		return err
	}
	defer st.Close()
	_ = st.SetDeadline(time.Now().Add(5 * time.Second))
	c := agentproto.NewConnSize(st, 512)
	// The stream's header and the record go out in one write: one yamux
	// frame, one TLS record, one system call on each side.
	msg, err := json.Marshal(agentproto.KeyPush{Record: kr})
	if err != nil {
		return err
	}
	if _, err := st.Write(append(append([]byte(keyStreamHeader), msg...), '\n')); err != nil {
		return err
	}
	var ack agentproto.Ack
	if err := c.Recv(&ack); err != nil {
		return err
	}
	if !ack.OK {
		return agentRefusal(ack.Error)
	}
	return nil
}

// agentRefusal is an agent's refusal of a pushed key, in its words: the
// agent did not store it.
type agentRefusal string

func (e agentRefusal) Error() string { return string(e) }

// legacyAck is a stream-per-push outcome as the key stream's ack: OK, the
// agent's refusal (ID 1: answered), or, for any other error, ID 0 — the
// stream or session may have ended after the push arrived.
func legacyAck(err error) agentproto.Ack {
	var refused agentRefusal
	switch {
	case err == nil:
		return agentproto.Ack{ID: 1, OK: true}
	case errors.As(err, &refused):
		return agentproto.Ack{ID: 1, Error: string(refused)}
	default:
		return agentproto.Ack{Error: err.Error()}
	}
}

// agentConn is an agent's connection under yamux: it first returns what
// the HTTP server had read ahead, and notes when the agent last sent
// anything, for sweep.
type agentConn struct {
	net.Conn
	early []byte
	g     *Gateway
	s     *session
}

func (c *agentConn) Read(p []byte) (int, error) {
	if len(c.early) > 0 {
		n := copy(p, c.early)
		c.early = c.early[n:]
		if len(c.early) == 0 {
			c.early = nil
		}
		return n, nil
	}
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.s.lastRead.Store(int64(time.Since(c.g.epoch)))
	}
	return n, err
}

// Write bounds each write by WriteTimeout (see there).
func (c *agentConn) Write(p []byte) (int, error) {
	if t := c.g.WriteTimeout; t > 0 {
		_ = c.Conn.SetWriteDeadline(time.Now().Add(t))
	}
	return c.Conn.Write(p)
}

// NetConn is the wrapped connection.
func (c *agentConn) NetConn() net.Conn { return c.Conn }

// ErrNotConnected means the instance's agent has no session here.
var ErrNotConnected = errors.New("the instance's agent is not connected")

// TunnelError is the agent's refusal of a tunnel (a port it does not
// allow, nothing listening), in its words.
type TunnelError struct{ Reason string }

func (e *TunnelError) Error() string { return e.Reason }

// OpenTunnel asks the instance's agent for a connection to 127.0.0.1:port
// on the host and returns it once the agent has connected. The stream has
// yamux's flow control: a slow reader slows the writer, with a bounded
// window in between.
func (g *Gateway) OpenTunnel(ctx context.Context, instanceID string, port int) (io.ReadWriteCloser, error) {
	g.mu.Lock()
	s := g.sessions[instanceID]
	g.mu.Unlock()
	if s == nil {
		return nil, ErrNotConnected
	}
	st, err := s.mux.OpenStream()
	if err != nil {
		return nil, ErrNotConnected
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(10 * time.Second)
	}
	_ = st.SetDeadline(deadline)
	c := agentproto.NewConn(st)
	if err := c.Send(agentproto.Header{Type: agentproto.TypeTunnel}); err != nil {
		st.Close()
		return nil, err
	}
	if err := c.Send(agentproto.TunnelOpen{Port: port}); err != nil {
		st.Close()
		return nil, err
	}
	var ack agentproto.Ack
	if err := c.Recv(&ack); err != nil {
		st.Close()
		return nil, fmt.Errorf("the agent did not answer: %w", err)
	}
	if !ack.OK {
		st.Close()
		return nil, &TunnelError{Reason: ack.Error}
	}
	_ = st.SetDeadline(time.Time{})
	return &tunnelStream{Stream: st, r: c.Reader()}, nil
}

// tunnelStream reads through the protocol reader, which may hold bytes
// that arrived with the Ack.
type tunnelStream struct {
	*yamux.Stream
	r io.Reader
}

// Read reads the host's bytes. yamux ends a stream whose session died
// (the agent's connection lost) with io.EOF, as if the host had closed
// its end; that is told apart here, so the tunnel closes with an error
// (1011) rather than as a clean end.
func (t *tunnelStream) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if err == io.EOF && t.Session().IsClosed() {
		err = ErrTargetLost
	}
	return n, err
}

// ErrTargetLost ends a tunnel whose agent connection was lost.
var ErrTargetLost = errors.New("the connection to the instance's agent was lost")

// CloseWrite ends the direction towards the host: yamux's Close is a
// half-close (the host's answer can still arrive).
func (t *tunnelStream) CloseWrite() error { return t.Stream.Close() }
