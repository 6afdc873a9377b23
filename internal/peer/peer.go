// Package peer routes agent work between server replicas that share one
// PostgreSQL. An agent's connection lives in the replica it dialled; each
// replica records the sessions it holds in the store (store.AgentSessions:
// instance → replica, peer URL, epoch), and a push or a tunnel arriving at
// another replica is forwarded to the holder over HTTPS on internal paths
// (POST /_peer/deliver, POST /_peer/revoke, POST /_peer/end-session for a
// deregistered instance (endsession.go), GET /_peer/tunnel, a
// WebSocket), authenticated with an HMAC key derived from the shared master
// key (see auth.go). The originating replica has already authenticated,
// authorized and audited the request; the holder audits what it did for a
// peer (PeerDeliver, PeerTunnel, PeerEndSession).
package peer

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kaginashi/kaginashi/internal/apierr"
	"github.com/kaginashi/kaginashi/internal/audit"
	"github.com/kaginashi/kaginashi/internal/gateway"
	"github.com/kaginashi/kaginashi/internal/store"
	"github.com/kaginashi/kaginashi/internal/wstunnel"
)

// Paths of the peer API, on the replica's own listener.
const (
	PathPrefix  = "/_peer/"
	pathDeliver = "/_peer/deliver"
	pathRevoke  = "/_peer/revoke"
	pathTunnel  = "/_peer/tunnel"
)

// Config configures a replica's router.
type Config struct {
	// ReplicaID is this process's ID (NewReplicaID).
	ReplicaID string
	// PeerURL is where the other replicas reach this one.
	PeerURL string
	// Key authenticates replicas to each other (DeriveKey(KeyPurpose)).
	Key []byte
	// RootCAs verify the peers' TLS certificates (nil: the system's).
	RootCAs *x509.CertPool
	// ServerName is the name the peers' certificates are verified for:
	// every replica serves the same certificate, made for the public
	// URL's host, whatever address the peer URL has.
	ServerName string
	// Account and Region fill the holder's audit events.
	Account, Region string
	// RefuseV1 refuses peer requests signed v1 (--peer-auth-v1=false),
	// which this release otherwise accepts from replicas not yet
	// upgraded (see AuthHeader).
	RefuseV1 bool
}

// Router is the gateway as the API sees it: local sessions first, else
// the replica holding the agent.
type Router struct {
	cfg      Config
	gw       *gateway.Gateway
	st       store.AgentSessions
	audit    audit.Recorder
	log      *slog.Logger
	now      func() time.Time
	signer   *Signer
	verifier *Verifier
	client   *http.Client

	cacheMu sync.Mutex
	cache   map[string]cachedSession

	// v1Mu guards what the router knows of replicas still signing v1.
	v1Mu   sync.Mutex
	v1Seen map[string]bool // sender replica IDs already warned about
	v1Last time.Time       // when the last v1 request was accepted

	// refusals rate-limits the WARN lines of refused peer requests.
	refusals *refusalLog
}

// maxV1Senders bounds v1Seen. Only a key holder can add to it (a v1
// request is counted once its signature checks), and every restart of an
// old replica is a new ID; beyond the bound a sender is warned about again
// rather than remembered.
const maxV1Senders = 1024

type cachedSession struct {
	s    store.AgentSession
	ok   bool
	when time.Time
}

// cacheTTL is how long Connected, SSHPort and AllowedPorts trust a looked
// up session (a list of instances asks for each); Deliver and OpenTunnel
// always look again.
const cacheTTL = time.Second

// New makes a router and installs it as gw's session hook.
func New(cfg Config, gw *gateway.Gateway, st store.AgentSessions, rec audit.Recorder, log *slog.Logger, now func() time.Time) (*Router, error) {
	if len(cfg.Key) < 32 {
		return nil, errors.New("peer: the key must have 32 bytes or more")
	}
	if !validReplicaID(cfg.ReplicaID) {
		return nil, fmt.Errorf("peer: %q is not a replica ID", cfg.ReplicaID)
	}
	u, err := url.Parse(cfg.PeerURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		return nil, fmt.Errorf("--peer-url %q: want https://HOST:PORT (or http:// with --insecure-http)", cfg.PeerURL)
	}
	cfg.PeerURL = strings.TrimSuffix(cfg.PeerURL, "/")
	tr := &http.Transport{
		DialContext:           (&net.Dialer{Timeout: time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       &tls.Config{RootCAs: cfg.RootCAs, ServerName: cfg.ServerName, MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:   time.Second,
		MaxIdleConnsPerHost:   16,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: 10 * time.Second,
		ForceAttemptHTTP2:     false, // the tunnel is an HTTP/1.1 upgrade
	}
	r := &Router{cfg: cfg, gw: gw, st: st, audit: rec, log: log, now: now,
		signer:   &Signer{Key: cfg.Key, Replica: cfg.ReplicaID, Now: now},
		verifier: NewVerifier(cfg.Key, cfg.ReplicaID, now),
		client:   &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		cache:    map[string]cachedSession{},
		v1Seen:   map[string]bool{},
		refusals: newRefusalLog(),
	}
	if cfg.RefuseV1 {
		r.verifier.RefuseV1()
	}
	gw.SetSessionHook(r)
	return r, nil
}

// Start clears what a crashed predecessor at this peer URL left, and
// prunes the replay cache until ctx ends.
func (r *Router) Start(ctx context.Context) error {
	n, err := r.st.ReleasePeerSessions(ctx, r.cfg.PeerURL, r.cfg.ReplicaID)
	if err != nil {
		return fmt.Errorf("peer: %w", err)
	}
	if n > 0 {
		r.log.Info("dropped agent sessions a previous server at this peer URL left", "peerURL", r.cfg.PeerURL, "count", n)
	}
	go func() {
		t := time.NewTicker(MaxSkew)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				r.verifier.Prune()
				r.pruneCache()
			}
		}
	}()
	return nil
}

// Stop removes this replica's sessions from the store (its graceful stop:
// the other replicas stop routing here at once, instead of finding the
// listener gone).
func (r *Router) Stop(ctx context.Context) {
	n, err := r.st.ReleaseReplicaSessions(ctx, r.cfg.ReplicaID)
	if err != nil {
		r.log.Warn("removing this replica's agent sessions failed", "err", err)
		return
	}
	r.log.Info("removed this replica's agent sessions", "count", n)
}

// SessionStarted records that this replica holds the instance's agent.
func (r *Router) SessionStarted(ctx context.Context, instanceID string) int64 {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	s := store.AgentSession{InstanceID: instanceID, ReplicaID: r.cfg.ReplicaID, PeerURL: r.cfg.PeerURL, ConnectedAt: r.now().UTC()}
	s.SSHPort, _ = r.gw.SSHPort(instanceID)
	s.AllowedPorts, _ = r.gw.AllowedPorts(instanceID)
	epoch, err := r.st.ClaimAgentSession(ctx, s)
	if err != nil {
		// The agent works through this replica; the others cannot find it.
		r.log.Error("recording an agent session for the other replicas failed", "instance", instanceID, "err", err)
		return 0
	}
	return epoch
}

// SessionEnded removes the record, if it is still this session's.
func (r *Router) SessionEnded(ctx context.Context, instanceID string, claim int64) {
	if claim == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := r.st.ReleaseAgentSession(ctx, instanceID, r.cfg.ReplicaID, claim); err != nil {
		r.log.Warn("removing an ended agent session failed", "instance", instanceID, "err", err)
	}
}

// holder returns the session of another replica holding the instance's
// agent; false when there is none (or the record names this replica,
// whose session is gone).
func (r *Router) holder(ctx context.Context, instanceID string) (store.AgentSession, bool, error) {
	s, err := r.st.GetAgentSession(ctx, instanceID)
	if errors.Is(err, store.ErrNotFound) {
		return store.AgentSession{}, false, nil
	}
	if err != nil {
		return store.AgentSession{}, false, err
	}
	return s, s.ReplicaID != r.cfg.ReplicaID, nil
}

func (r *Router) cached(instanceID string) (store.AgentSession, bool) {
	now := time.Now()
	r.cacheMu.Lock()
	c, hit := r.cache[instanceID]
	r.cacheMu.Unlock()
	if hit && now.Sub(c.when) < cacheTTL {
		return c.s, c.ok
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	s, ok, err := r.holder(ctx, instanceID)
	if err != nil {
		r.log.Warn("looking up an agent's replica failed", "instance", instanceID, "err", err)
		return store.AgentSession{}, false
	}
	r.cacheMu.Lock()
	if len(r.cache) < 100_000 {
		r.cache[instanceID] = cachedSession{s: s, ok: ok, when: now}
	}
	r.cacheMu.Unlock()
	return s, ok
}

func (r *Router) pruneCache() {
	now := time.Now()
	r.cacheMu.Lock()
	defer r.cacheMu.Unlock()
	for id, c := range r.cache {
		if now.Sub(c.when) >= cacheTTL {
			delete(r.cache, id)
		}
	}
}

// Connected reports whether the instance's agent is connected to any
// replica.
func (r *Router) Connected(instanceID string) bool {
	if r.gw.Connected(instanceID) {
		return true
	}
	_, ok := r.cached(instanceID)
	return ok
}

// SSHPort is the agent's reported sshd port, from whichever replica
// holds it (another replica's: as reported when the agent connected).
func (r *Router) SSHPort(instanceID string) (int, bool) {
	if p, ok := r.gw.SSHPort(instanceID); ok || r.gw.Connected(instanceID) {
		return p, ok
	}
	if s, ok := r.cached(instanceID); ok && s.SSHPort > 0 {
		return s.SSHPort, true
	}
	return 0, false
}

// SigningKeyProblem is the signing-key problem the instance's agent
// reports (gateway.Gateway.SigningKeyProblem), when it is connected to
// this replica; "" otherwise (each replica logs and counts its own agents').
func (r *Router) SigningKeyProblem(instanceID string) string {
	return r.gw.SigningKeyProblem(instanceID)
}

// AllowedPorts is the agent's reported tunnel ports, like SSHPort.
func (r *Router) AllowedPorts(instanceID string) ([]int, bool) {
	if p, ok := r.gw.AllowedPorts(instanceID); ok || r.gw.Connected(instanceID) {
		return p, ok
	}
	if s, ok := r.cached(instanceID); ok && s.AllowedPorts != nil {
		return append([]int(nil), s.AllowedPorts...), true
	}
	return nil, false
}

// Count is the number of agents connected to this replica.
func (r *Router) Count() int { return r.gw.Count() }

// deliverRequest is POST /_peer/deliver's body.
type deliverRequest struct {
	Record store.KeyRecord `json:"record"`
	// BudgetMillis is how long the holder may wait for the agent's
	// acknowledgement: the originating replica answers the API call
	// within its own PushTimeout, and must not answer failure for a key
	// the holder then lets work.
	BudgetMillis int64 `json:"budgetMillis"`
}

// peerError is the peer API's error body.
type peerError struct {
	Code    string `json:"code"` // NotConnected, Unavailable, Refused, Invalid, Internal
	Message string `json:"message"`
}

// hopMargin is what the originating replica keeps of its budget for the
// hop itself (the answer's way back).
const hopMargin = 200 * time.Millisecond

// Deliver hands a key record to the instance's agent, here or at the
// replica holding it, and returns once the agent acknowledged it; within
// the gateway's PushTimeout either way (EC2InstanceUnavailableException
// within 2 s).
func (r *Router) Deliver(ctx context.Context, rec store.KeyRecord) error {
	if r.gw.Connected(rec.InstanceID) {
		return r.gw.Deliver(ctx, rec)
	}
	ctx, cancel := context.WithTimeout(ctx, r.gw.PushTimeout)
	defer cancel()
	h, ok, err := r.holder(ctx, rec.InstanceID)
	if err != nil {
		return apierr.New(apierr.Unavailable, "The agent of instance %s cannot be located: %v. Try again later.", rec.InstanceID, err)
	}
	if !ok {
		// Not connected anywhere: the gateway's own answer.
		return r.gw.Deliver(ctx, rec)
	}
	deadline, _ := ctx.Deadline()
	budget := time.Until(deadline) - hopMargin
	if budget <= 0 {
		return apierr.New(apierr.Unavailable, "The agent of instance %s did not acknowledge the key in time. Try again later.", rec.InstanceID)
	}
	body, err := json.Marshal(deliverRequest{Record: rec, BudgetMillis: budget.Milliseconds()})
	if err != nil {
		return apierr.Wrap(err, "encoding a peer delivery")
	}
	status, _, perr, err := r.post(ctx, h, pathDeliver, body)
	switch {
	case err != nil && ctx.Err() != nil:
		// The holder may still get the agent's acknowledgement after
		// this replica answers failure: withdraw the key there.
		go r.revokeAt(h, rec.InstanceID, rec.RequestID)
		r.log.Warn("a forwarded key push timed out", "instance", rec.InstanceID, "replica", h.ReplicaID, "peerURL", h.PeerURL)
		return apierr.New(apierr.Unavailable, "The agent of instance %s did not acknowledge the key in time. Try again later.", rec.InstanceID)
	case err != nil:
		r.log.Warn("the replica holding an agent is unreachable", "instance", rec.InstanceID, "replica", h.ReplicaID, "peerURL", h.PeerURL, "err", err)
		return apierr.New(apierr.Unavailable, "The agent of instance %s is connected to another server replica, which does not answer; the agent reconnects to a live one shortly. Try again later.", rec.InstanceID)
	case status == http.StatusOK:
		return nil
	case status == http.StatusUnauthorized:
		r.refusedByPeer(h, rec.InstanceID)
		return apierr.New(apierr.Unavailable, "The agent of instance %s is connected to another server replica, which refused this replica's request; the agent reconnects to a live one shortly. Try again later.", rec.InstanceID)
	default:
		return apierr.New(apierr.Unavailable, "%s", perr.Message)
	}
}

// revokeAt asks the holder to withdraw a record, best effort.
func (r *Router) revokeAt(h store.AgentSession, instanceID, requestID string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	body, _ := json.Marshal(map[string]string{"instanceId": instanceID, "requestId": requestID})
	if _, _, _, err := r.post(ctx, h, pathRevoke, body); err != nil {
		r.log.Warn("asking the holding replica to withdraw a late key failed", "instance", instanceID, "request", requestID, "err", err)
	}
}

// refusedByPeer logs a holder's refusal of this replica's authentication.
// The holder logs why; from here the likely causes are named.
func (r *Router) refusedByPeer(h store.AgentSession, instanceID string) {
	r.log.Warn("the replica holding an agent refused this replica's peer authentication (its log says why: another master key, clocks more than 30 s apart, a stale agent session record naming a replica that restarted, or a replica too old for v2 peer authentication)",
		"instance", instanceID, "replica", h.ReplicaID, "peerURL", h.PeerURL)
}

// post sends a request signed for the holder h and returns the status and,
// unless 200, the error body.
func (r *Router) post(ctx context.Context, h store.AgentSession, path string, body []byte) (int, []byte, peerError, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.PeerURL+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, peerError{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	if err := r.signer.Sign(req, h.ReplicaID, body); err != nil {
		return 0, nil, peerError{}, err
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return 0, nil, peerError{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return 0, nil, peerError{}, err
	}
	if resp.StatusCode == http.StatusOK {
		return resp.StatusCode, b, peerError{}, nil
	}
	var pe peerError
	if json.Unmarshal(b, &pe) != nil || pe.Message == "" {
		pe = peerError{Code: "Internal", Message: fmt.Sprintf("the replica holding the agent answered %s", resp.Status)}
	}
	return resp.StatusCode, nil, pe, nil
}

// OpenTunnel opens a connection to a port of the instance through its
// agent: here, or through a WebSocket to the replica holding it. The
// returned stream is the peer WebSocket itself (binary frames carry the
// bytes; TCP's flow control on the hop keeps backpressure end to end).
func (r *Router) OpenTunnel(ctx context.Context, instanceID string, port int) (io.ReadWriteCloser, error) {
	st, err := r.gw.OpenTunnel(ctx, instanceID, port)
	if !errors.Is(err, gateway.ErrNotConnected) {
		return st, err
	}
	h, ok, lerr := r.holder(ctx, instanceID)
	if lerr != nil {
		return nil, fmt.Errorf("locating the agent's replica: %w", lerr)
	}
	if !ok {
		return nil, gateway.ErrNotConnected
	}
	q := url.Values{"instanceId": {instanceID}, "port": {strconv.Itoa(port)}}
	target := h.PeerURL + pathTunnel + "?" + q.Encode()
	req, err := http.NewRequest(http.MethodGet, target, nil)
	if err != nil {
		return nil, fmt.Errorf("a peer tunnel request: %w", err)
	}
	if err := r.signer.Sign(req, h.ReplicaID, nil); err != nil {
		return nil, err
	}
	wsURL := "wss" + strings.TrimPrefix(target, "https")
	if strings.HasPrefix(target, "http://") {
		wsURL = "ws" + strings.TrimPrefix(target, "http")
	}
	ws, resp, err := wstunnel.Dial(ctx, r.client, wsURL, http.Header{AuthHeader: req.Header.Values(AuthHeader)})
	if err != nil {
		if resp == nil {
			r.log.Warn("the replica holding an agent is unreachable", "instance", instanceID, "replica", h.ReplicaID, "peerURL", h.PeerURL, "err", err)
			// A dead replica's leftover record: the agent is not
			// reachable, as if not connected.
			return nil, gateway.ErrNotConnected
		}
		defer resp.Body.Close()
		var pe peerError
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		if json.Unmarshal(b, &pe) != nil {
			pe = peerError{Code: "Internal", Message: "the replica holding the agent answered " + resp.Status}
		}
		if resp.StatusCode == http.StatusUnauthorized {
			r.refusedByPeer(h, instanceID)
			return nil, errors.New("the server replica holding the agent refused this replica's request; try again later")
		}
		switch pe.Code {
		case "NotConnected":
			return nil, gateway.ErrNotConnected
		case "Refused":
			return nil, &gateway.TunnelError{Reason: pe.Message}
		}
		return nil, errors.New(pe.Message)
	}
	return ws, nil
}

// sawV1 notes an accepted v1 request from replica from: the first from
// each sender is logged at WARN, and LastV1 tells the metrics.
func (r *Router) sawV1(from string) {
	r.v1Mu.Lock()
	r.v1Last = r.now()
	first := !r.v1Seen[from]
	if first && len(r.v1Seen) < maxV1Senders {
		r.v1Seen[from] = true
	}
	r.v1Mu.Unlock()
	if first {
		r.log.Warn("a replica still signs peer requests v1, which does not bind the replica a request is for: upgrade it (the next release refuses v1)",
			"fromReplica", from)
	}
}

// LastV1 is when this replica last accepted a v1 peer request (zero:
// never since it started). kaginashi_peer_v1_last_accepted_timestamp_seconds.
func (r *Router) LastV1() time.Time {
	r.v1Mu.Lock()
	defer r.v1Mu.Unlock()
	return r.v1Last
}

// SetRootCAs sets the CAs that verify the peers' certificates; call it
// before serving (the server knows them only once its TLS material exists).
func (r *Router) SetRootCAs(pool *x509.CertPool) {
	r.client.Transport.(*http.Transport).TLSClientConfig.RootCAs = pool
}
