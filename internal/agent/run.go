package agent

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/yamux"

	"github.com/kaginashi/kaginashi/internal/agentproto"
	"github.com/kaginashi/kaginashi/internal/bulkio"
	"github.com/kaginashi/kaginashi/internal/keyrecord"
)

// Version is the agent's version, set at build time.
var Version = "dev"

// Agent is a running agent.
type Agent struct {
	paths Paths
	cfg   Config
	log   *slog.Logger
	now   func() time.Time
	// Inventory collects the host's facts for the server.
	inventory func(context.Context) agentproto.Inventory

	// Heartbeat is how often the agent reports in (and measures the
	// clock); InventoryEvery how often it sends a fresh inventory.
	Heartbeat      time.Duration
	InventoryEvery time.Duration
	// MaxBackoff caps the wait between reconnection attempts, so the
	// agent is back within a few seconds of the server.
	MaxBackoff time.Duration
	// RevokedAfter is how long the server must keep refusing the agent's
	// identity, on every attempt, before Run gives up with
	// ErrIdentityRevoked (see identityRefused).
	RevokedAfter time.Duration
	// AllowedPorts are the local ports tunnels may reach, besides sshd's
	// own port (as the latest inventory found it in sshd's configuration).
	AllowedPorts []int
	sshPort      atomic.Int32

	mu      sync.Mutex
	records []keyrecord.Record
	public  Public
	// revoked are request IDs the server withdrew, until (server time,
	// Unix seconds) no record of theirs could still be valid.
	revoked map[string]int64

	statusMu sync.Mutex
	status   Status // what DIR/status.json says (see setStatus)

	// Signing-key health (keyhealth.go).
	keyMu          sync.Mutex
	diskKeyProblem string // checkDiskKey's last finding
	sigStreak      int    // pushes refused for their signature since the last accepted one

	metrics     Metrics // nopMetrics unless Options.Metrics
	tunnelsOpen atomic.Int64
}

// Options configure New.
type Options struct {
	Log       *slog.Logger
	Now       func() time.Time
	Inventory func(context.Context) agentproto.Inventory
	// Metrics receives the agent's events (kaginashi-agent run
	// --metrics-listen); nil is none.
	Metrics Metrics
}

// New loads an enrolled agent's state.
func New(p Paths, o Options) (*Agent, error) {
	cfg, err := p.loadConfig()
	if err != nil {
		return nil, fmt.Errorf("agent state in %s: %w (enroll first with --server and --join-token)", p.Dir, err)
	}
	pub, err := p.LoadPublic()
	if err != nil {
		return nil, err
	}
	recs, err := p.LoadRecords()
	if err != nil {
		o.Log.Warn("the persisted key records are unreadable; starting with none", "err", err)
		recs = nil
	}
	a := &Agent{paths: p, cfg: cfg, log: o.Log, now: o.Now, inventory: o.Inventory,
		Heartbeat: 20 * time.Second, InventoryEvery: 5 * time.Minute, MaxBackoff: 2 * time.Second, RevokedAfter: 10 * time.Second,
		AllowedPorts: []int{22}, records: recs, public: pub}
	if a.now == nil {
		a.now = time.Now
	}
	a.metrics = o.Metrics
	if a.metrics == nil {
		a.metrics = nopMetrics{}
	}
	if a.inventory == nil {
		a.inventory = func(context.Context) agentproto.Inventory { return agentproto.Inventory{AgentVersion: Version} }
	}
	return a, nil
}

// InstanceID is the agent's instance.
func (a *Agent) InstanceID() string { return a.cfg.InstanceID }

// Run keeps the agent connected until ctx ends, reconnecting with jittered
// backoff. It returns nil when ctx ends, and an error wrapping
// ErrIdentityRevoked when the server has refused the agent's identity on
// every attempt for RevokedAfter: retrying cannot help then.
func (a *Agent) Run(ctx context.Context) error {
	backoff := 100 * time.Millisecond
	var refusedSince time.Time // the first of an unbroken run of identity refusals
	for {
		start := a.now()
		err := a.session(ctx)
		if ctx.Err() != nil {
			a.setStatus(func(st *Status) { st.Connected, st.LastError = false, "the agent stopped" })
			return nil
		}
		if a.now().Sub(start) > 30*time.Second {
			backoff = 100 * time.Millisecond // it had been up: retry soon
		}
		if errors.Is(err, errNewCert) {
			backoff = 100 * time.Millisecond
		}
		var refused *identityRefused
		if !errors.As(err, &refused) {
			refusedSince = time.Time{}
		} else if refusedSince.IsZero() {
			refusedSince = start
		}
		if refused != nil && a.now().Sub(refusedSince) >= a.RevokedAfter {
			a.setStatus(func(st *Status) {
				st.Connected, st.LastError = false, err.Error()
				st.Revoked, st.RevokedAt = true, a.now().UTC()
			})
			return fmt.Errorf("%w: %w", ErrIdentityRevoked, err)
		}
		a.setStatus(func(st *Status) {
			st.Connected = false
			if err != nil {
				st.LastError = err.Error()
			}
		})
		wait := backoff/2 + rand.N(backoff/2+1)
		if refused != nil {
			a.log.Warn("the server refused this agent's identity; retrying until it has refused it for a while, then stopping",
				"err", err, "in", wait.Round(time.Millisecond), "stopsAfter", a.RevokedAfter)
		} else {
			a.log.Warn("disconnected from the server; retrying", "err", err, "in", wait.Round(time.Millisecond))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		backoff = min(backoff*2, a.MaxBackoff)
	}
}

// errNewCert ends a session whose hello was answered with a new client
// certificate: the agent reconnects at once, presenting it.
var errNewCert = errors.New("reconnecting with the new client certificate")

// ExitIdentityRevoked is kaginashi-agent run's exit status when Run ends
// with ErrIdentityRevoked. It is 78, EX_CONFIG of sysexits(3) ("something
// was found in an unconfigured or misconfigured state": the enrolment is
// no longer valid), which systemd shows as status=78/CONFIG; it is none of
// the agent's other statuses (0, 1 error, 2 usage; Go's runtime uses 2,
// signals 128+N, systemd 200-243). The unit install-service writes has
// RestartPreventExitStatus=78, so that systemd leaves a revoked agent
// stopped instead of restarting it every RestartSec for ever.
const ExitIdentityRevoked = 78

// ErrIdentityRevoked ends Run: the server no longer accepts this agent's
// identity — its instance was deregistered, or enrolled again with the
// identity's files on another host. Only enrolling again (with a new join
// token) helps.
var ErrIdentityRevoked = errors.New("the server no longer accepts this host's agent identity (its instance was deregistered, or enrolled again elsewhere)")

// identityRefusal is what the server's 403 to an agent connection says
// when the identity is no longer valid (agentproto.IdentityRevoked,
// internal/gateway HandleConnect). A 403 without
// it — a proxy's, a firewall's — is retried like any failure: stopping
// for good is only for the server's own word. Even then Run retries for
// RevokedAfter first: a refusal is final only when it lasts (servers
// before this one answered it also when their store failed to read the
// instance, and a transient failure must not stop a fleet for good).
const identityRefusal = agentproto.IdentityRevoked

// identityRefused is a connection the server refused with identityRefusal.
type identityRefused struct{ err error }

func (r *identityRefused) Error() string { return r.err.Error() }
func (r *identityRefused) Unwrap() error { return r.err }

// dial opens the TLS connection and upgrades it to the agent protocol.
func (a *Agent) dial(ctx context.Context) (net.Conn, *bufio.Reader, error) {
	u, err := url.Parse(a.cfg.Server)
	if err != nil {
		return nil, nil, err
	}
	caPEM, err := a.paths.readFile(a.paths.serverCA())
	if err != nil {
		return nil, nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, nil, errors.New("server-ca.pem holds no certificate")
	}
	cert, err := tls.LoadX509KeyPair(a.paths.cert(), a.paths.key())
	if err != nil {
		return nil, nil, err
	}
	tcfg := &tls.Config{ServerName: u.Hostname(), RootCAs: pool, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	// A pinned leaf certificate (no CA) verifies by being the chain's top.
	if c, err := x509.ParseCertificate(pemFirst(caPEM)); err == nil && !c.IsCA {
		tcfg.InsecureSkipVerify = true //nolint:gosec // checked by VerifyPeerCertificate against the pinned certificate
		tcfg.VerifyPeerCertificate = func(raw [][]byte, _ [][]*x509.Certificate) error {
			if len(raw) > 0 && string(raw[0]) == string(c.Raw) {
				return nil
			}
			return errors.New("the server's certificate is not the pinned one")
		}
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "443")
	}
	d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	tcp, err := d.DialContext(ctx, "tcp", host)
	if err != nil {
		return nil, nil, err
	}
	// Tunnels carry bulk data over this connection: bulkio under TLS
	// lets each of yamux's writes go out in one system call.
	tc := tls.Client(bulkio.Wrap(tcp), tcfg)
	hctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	err = tc.HandshakeContext(hctx)
	cancel()
	if err != nil {
		tcp.Close()
		return nil, nil, err
	}
	conn := bulkio.Batch(tc)
	_ = conn.SetDeadline(time.Now().Add(15 * time.Second))
	req := "GET " + agentproto.ConnectPath + " HTTP/1.1\r\nHost: " + u.Host + "\r\nUser-Agent: kaginashi-agent/" + Version +
		"\r\nConnection: Upgrade\r\nUpgrade: " + agentproto.UpgradeProtocol + "\r\n\r\n"
	if _, err := io.WriteString(conn, req); err != nil {
		conn.Close()
		return nil, nil, err
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		conn.Close()
		return nil, nil, err
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		conn.Close()
		msg := fmt.Errorf("the server refused the connection: %s %s", resp.Status, strings.TrimSpace(string(body)))
		var refusal agentproto.ErrorResponse
		if resp.StatusCode == http.StatusForbidden && json.Unmarshal(body, &refusal) == nil && strings.Contains(refusal.Error, identityRefusal) {
			return nil, nil, &identityRefused{fmt.Errorf("the server refused the connection: %s: %s — this host must enroll again", resp.Status, refusal.Error)}
		}
		return nil, nil, msg
	}
	_ = conn.SetDeadline(time.Time{})
	return conn, br, nil
}

// pemFirst returns the first certificate's DER in a PEM file.
func pemFirst(b []byte) []byte {
	for {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			return nil
		}
		if block.Type == "CERTIFICATE" {
			return block.Bytes
		}
	}
}

// session runs one connection.
func (a *Agent) session(ctx context.Context) error {
	answered := false
	defer func() {
		if !answered && ctx.Err() == nil {
			a.metrics.Connection(false)
		}
	}()
	conn, br, err := a.dial(ctx)
	if err != nil {
		return err
	}
	cfg := yamux.DefaultConfig()
	cfg.LogOutput = io.Discard
	// No yamux pings: the heartbeat below already crosses the connection
	// every Heartbeat (20 s) and waits at most 15 s for its answer, so it
	// detects a dead server (and keeps NAT state alive) on its own. Pings
	// on top of it were a third of the frames a server holding thousands
	// of idle agents had to read and decrypt. The server ends a session
	// silent for its IdleTimeout.
	cfg.EnableKeepAlive = false
	cfg.ConnectionWriteTimeout = 10 * time.Second
	cfg.MaxStreamWindowSize = agentproto.StreamWindow
	mux, err := yamux.Client(agentproto.CoalesceFrames(readConn{conn, br}), cfg)
	if err != nil {
		conn.Close()
		return err
	}
	defer mux.Close()
	ctl, err := mux.OpenStream()
	if err != nil {
		return err
	}
	c := agentproto.NewConn(ctl)
	inv := a.collect(ctx)
	a.refreshKeyHealth()
	t0 := a.now()
	if err := c.Send(agentproto.Header{Type: agentproto.TypeControl}); err != nil {
		return err
	}
	if err := c.Send(agentproto.Hello{InstanceID: a.cfg.InstanceID, Inventory: inv, LocalTime: t0.UnixMilli(), SigningKey: a.pinnedKey(),
		Features: []string{agentproto.FeatureKeyStream}, SigningKeyProblem: a.signingKeyProblem()}); err != nil {
		return err
	}
	var beat agentproto.Beat
	if err := c.Recv(&beat); err != nil {
		return fmt.Errorf("no answer to hello: %w", err)
	}
	answered = true
	a.metrics.Connection(true)
	a.measure(beat, t0)
	// Before any pushed record is read (acceptStreams starts below): a
	// record signed with a new key must find it adopted.
	a.rollover(beat)
	if a.renewCert(beat) {
		return errNewCert
	}
	a.log.Info("connected to the server", "server", a.cfg.Server, "instance", a.cfg.InstanceID, "clockSkewMillis", a.skew())
	a.setStatus(func(st *Status) {
		st.Connected, st.LastError = true, ""
		st.ConnectedAt, st.LastBeat = a.now().UTC(), a.now().UTC()
	})

	go a.acceptStreams(ctx, mux)

	tick := time.NewTicker(a.Heartbeat)
	defer tick.Stop()
	lastInv := a.now()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-mux.CloseChan():
			return errors.New("the connection closed")
		case <-tick.C:
		}
		// A few small reads every Heartbeat: a key the login path cannot
		// read is found within one, and reported with it.
		a.refreshKeyHealth()
		hb := agentproto.Heartbeat{ClockSkewMillis: a.skew(), SigningKeyProblem: a.signingKeyProblem()}
		if a.now().Sub(lastInv) >= a.InventoryEvery {
			inv := a.collect(ctx)
			hb.Inventory = &inv
			lastInv = a.now()
		}
		t0 := a.now()
		hb.LocalTime = t0.UnixMilli()
		_ = ctl.SetDeadline(t0.Add(15 * time.Second))
		if err := c.Send(hb); err != nil {
			return err
		}
		if err := c.Recv(&beat); err != nil {
			return err
		}
		a.measure(beat, t0)
		a.setStatus(func(st *Status) { st.LastBeat = a.now().UTC() })
	}
}

func (a *Agent) collect(ctx context.Context) agentproto.Inventory {
	inv := a.inventory(ctx)
	inv.AgentVersion = Version
	if inv.SSHPort > 0 && inv.SSHPort <= 65535 {
		a.sshPort.Store(int32(inv.SSHPort))
	}
	inv.AllowedPorts = a.allowedPorts()
	return inv
}

// measure updates the clock skew from a Beat: the server's time against the
// middle of the round trip. It persists the skew when it moved, for the
// AuthorizedKeysCommand.
func (a *Agent) measure(b agentproto.Beat, t0 time.Time) {
	t1 := a.now()
	mid := t0.UnixMilli() + (t1.UnixMilli()-t0.UnixMilli())/2
	skew := b.ServerTime - mid
	a.mu.Lock()
	moved := abs(skew-a.public.ClockSkewMillis) >= 100
	if moved {
		a.public.ClockSkewMillis = skew
	}
	pub := a.public
	a.mu.Unlock()
	if moved {
		if err := writeJSON(a.paths.public(), pub, 0o644); err != nil {
			a.log.Warn("persisting the clock skew failed", "err", err)
		}
	}
}

func abs(x int64) int64 {
	if x < 0 {
		return -x
	}
	return x
}

func (a *Agent) skew() int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.public.ClockSkewMillis
}

// SetExpiryOption records whether this host's sshd understands
// expiry-time (OpenSSH 7.7+).
func (a *Agent) SetExpiryOption(ok bool) error {
	a.mu.Lock()
	changed := a.public.ExpiryOption != ok
	a.public.ExpiryOption = ok
	pub := a.public
	a.mu.Unlock()
	if !changed {
		return nil
	}
	return writeJSON(a.paths.public(), pub, 0o644)
}

// acceptStreams serves the server's streams: key pushes and tunnels.
func (a *Agent) acceptStreams(ctx context.Context, mux *yamux.Session) {
	for {
		st, err := mux.AcceptStream()
		if err != nil {
			return
		}
		go a.serveStream(ctx, st)
	}
}

func (a *Agent) serveStream(ctx context.Context, st *yamux.Stream) {
	defer st.Close()
	_ = st.SetDeadline(time.Now().Add(10 * time.Second))
	c := agentproto.NewConn(st)
	var h agentproto.Header
	if err := c.Recv(&h); err != nil {
		return
	}
	switch h.Type {
	case agentproto.TypeKey:
		var kp agentproto.KeyPush
		if err := c.Recv(&kp); err != nil {
			return
		}
		_ = c.Send(a.acceptPush(kp))
	case agentproto.TypeKeys:
		a.serveKeys(st, c)
	case agentproto.TypeRevoke:
		var rv agentproto.Revoke
		if err := c.Recv(&rv); err != nil {
			return
		}
		err := a.revoke(rv.RequestID)
		a.metrics.Revoke()
		ack := agentproto.Ack{OK: err == nil}
		if err != nil {
			ack.Error = err.Error()
		}
		a.log.Info("the server withdrew a key whose push timed out", "request", rv.RequestID, "err", err)
		_ = c.Send(ack)
	case agentproto.TypeTunnel:
		var to agentproto.TunnelOpen
		if err := c.Recv(&to); err != nil {
			return
		}
		a.tunnel(ctx, st, c, to.Port)
	default:
		_ = c.Send(agentproto.Ack{Error: "unknown stream type"})
	}
}

// serveKeys serves the server's long-lived key stream: pushes one after
// the other, each answered with an ack carrying its ID, until the server
// closes the stream or the session ends. (accept serializes them anyway.)
func (a *Agent) serveKeys(st *yamux.Stream, c *agentproto.Conn) {
	_ = st.SetDeadline(time.Time{})
	for {
		var kp agentproto.KeyPush
		if err := c.Recv(&kp); err != nil {
			return
		}
		// The write may wait for the server's window: bounded, so that a
		// server that stopped reading does not hold this forever.
		_ = st.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if err := c.Send(a.acceptPush(kp)); err != nil {
			return
		}
	}
}

// acceptPush accepts a pushed record, counts and logs the outcome, and
// makes the ack.
func (a *Agent) acceptPush(kp agentproto.KeyPush) agentproto.Ack {
	err := a.accept(kp.Record)
	a.metrics.KeyRecord(RefusalReason(err))
	a.noteSignature(RefusalReason(err))
	ack := agentproto.Ack{ID: kp.ID, OK: err == nil}
	if err != nil {
		ack.Error = err.Error()
		a.log.Warn("refused a key record", "request", kp.Record.RequestID, "err", err)
	}
	return ack
}

// accept verifies a pushed record against the pinned key (or a retired
// one, within its window) and persists it before it is acknowledged.
func (a *Agent) accept(r keyrecord.Record) error {
	serverNow := a.now().Add(time.Duration(a.skew()) * time.Millisecond)
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := a.public.VerifyRecord(&r, a.cfg.InstanceID, "", serverNow); err != nil {
		return err
	}
	if isRevoked(a.revoked, r.RequestID, serverNow.Unix()) {
		return errWithdrawn
	}
	kept := a.records[:0:0]
	for _, old := range a.records {
		if old.ExpiresAt > serverNow.Unix() && old.RequestID != r.RequestID {
			kept = append(kept, old)
		}
	}
	kept = append(kept, r)
	sort.Slice(kept, func(i, j int) bool { return kept[i].ExpiresAt < kept[j].ExpiresAt })
	if len(kept) > 10000 {
		kept = kept[len(kept)-10000:]
	}
	if err := a.paths.saveAccepted(Records{Records: kept}); err != nil { // no fsync: see saveAccepted
		return fmt.Errorf("%w: %w", errPersist, err)
	}
	a.records = kept
	return nil
}

// revoke withdraws a record by request ID: dropped if held, refused if it
// arrives later.
func (a *Agent) revoke(requestID string) error {
	serverNow := a.now().Add(time.Duration(a.skew()) * time.Millisecond).Unix()
	a.mu.Lock()
	defer a.mu.Unlock()
	a.revoked = markRevoked(a.revoked, requestID, serverNow)
	kept, dropped := dropRecord(a.records, requestID)
	if !dropped {
		return nil
	}
	if err := writeJSON(a.paths.records(), Records{Records: kept}, 0o644); err != nil {
		return fmt.Errorf("persisting the withdrawal: %w", err)
	}
	a.records = kept
	return nil
}

// markRevoked adds id to the withdrawn set until no record pushed before
// now can be valid, and forgets entries past that.
func markRevoked(set map[string]int64, id string, now int64) map[string]int64 {
	if set == nil {
		set = map[string]int64{}
	}
	for k, until := range set {
		if until <= now {
			delete(set, k)
		}
	}
	if len(set) < 100000 {
		set[id] = now + keyrecord.MaxLifetime + 5
	}
	return set
}

func isRevoked(set map[string]int64, id string, now int64) bool {
	until, ok := set[id]
	return ok && until > now
}

// dropRecord returns records without the one of requestID.
func dropRecord(records []keyrecord.Record, requestID string) ([]keyrecord.Record, bool) {
	kept := make([]keyrecord.Record, 0, len(records))
	for _, r := range records {
		if r.RequestID != requestID {
			kept = append(kept, r)
		}
	}
	return kept, len(kept) != len(records)
}

// readConn reads through the buffered reader that read the HTTP response.
type readConn struct {
	net.Conn
	r *bufio.Reader
}

func (c readConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// allowedPorts are the configured ports and sshd's, sorted, no repeats.
func (a *Agent) allowedPorts() []int {
	ports := slices.Clone(a.AllowedPorts)
	if p := int(a.sshPort.Load()); p > 0 {
		ports = append(ports, p)
	}
	slices.Sort(ports)
	return slices.Compact(ports)
}

// tunnel connects a server stream to 127.0.0.1:port, if the port is on the
// agent's allow-list, and copies both ways until either side ends.
func (a *Agent) tunnel(ctx context.Context, st *yamux.Stream, c *agentproto.Conn, port int) {
	allowed := a.allowedPorts()
	if !slices.Contains(allowed, port) {
		_ = c.Send(agentproto.Ack{Error: fmt.Sprintf("port %d is not allowed by this host's agent (allowed: %v); add it with kaginashi-agent run --allow-port %d", port, allowed, port)})
		a.log.Warn("refused a tunnel to a port that is not allowed", "port", port)
		a.metrics.Tunnel(false)
		return
	}
	d := net.Dialer{Timeout: 5 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort("127.0.0.1", fmt.Sprint(port)))
	if err != nil {
		_ = c.Send(agentproto.Ack{Error: fmt.Sprintf("Unable to connect to target: nothing accepts connections on 127.0.0.1:%d of this host (%v)", port, err)})
		a.metrics.Tunnel(false)
		return
	}
	defer conn.Close()
	if err := c.Send(agentproto.Ack{OK: true}); err != nil {
		a.metrics.Tunnel(false)
		return
	}
	a.metrics.Tunnel(true)
	a.tunnelsOpen.Add(1)
	defer a.tunnelsOpen.Add(-1)
	out := func(n int) { a.metrics.TunnelBytes(false, n) }
	in := func(n int) { a.metrics.TunnelBytes(true, n) }
	_ = st.SetDeadline(time.Time{})
	done := make(chan struct{})
	go func() {
		// host service → server, until the service closes its side.
		defer close(done)
		_ = relay(st, conn, out)
		_ = st.Close()
	}()
	// server → host service, until the server ends the stream: then the
	// tunnel is over (its protocol has no half-close) and the connection
	// to the service closes, which ends the copy above; a write of that
	// copy waiting for the server's window ends with the deadline.
	_ = relay(conn, c.Reader(), in)
	conn.Close()
	_ = st.SetWriteDeadline(time.Now())
	<-done
}

// relay copies src to dst until src ends (nil) or either fails, with a
// buffer as large as what is waiting (see bulkio.Adaptive): large writes
// to the service and to the server while busy, little memory while idle.
// counted is told each chunk written (for the byte counters: per chunk,
// so that a long tunnel's traffic shows while it lasts).
func relay(dst io.Writer, src io.Reader, counted func(int)) error {
	var buf bulkio.Adaptive
	defer buf.Release()
	for {
		b := buf.Buf()
		n, err := src.Read(b)
		if n > 0 {
			w, werr := dst.Write(b[:n])
			if w > 0 {
				counted(w)
			}
			if werr != nil {
				return werr
			}
		}
		buf.Used(n) // after the write: it may give b back
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}
