package agent

import (
	"errors"
	"strings"
	"time"

	"github.com/kaginashi/kaginashi/internal/keyrecord"
)

// Metrics receives the agent's events for its Prometheus metrics
// (package agentmetrics implements it). The agent calls it without knowing
// Prometheus, so that an agent run without --metrics-listen keeps its
// small footprint: the default is a no-op. Every label value the agent
// passes is one of a small fixed set — never a user name, key, request ID
// or address.
type Metrics interface {
	// Connection is one attempt to connect: ok when the server answered
	// the hello, not ok when it failed before.
	Connection(ok bool)
	// KeyRecord is one pushed key record: accepted (reason "") or refused
	// with one of the Refused* reasons.
	KeyRecord(reason string)
	// Revoke is one withdrawal of a key record by the server.
	Revoke()
	// Tunnel is one tunnel request: ok when the agent connected it to the
	// local port, not ok when it refused it or the port did not answer.
	Tunnel(ok bool)
	// TunnelBytes adds n bytes carried by a tunnel: in (server to the
	// host's service) or out (host's service to the server).
	TunnelBytes(in bool, n int)
	// SigningKeyRotated is one adoption of the server's new
	// record-signing key.
	SigningKeyRotated()
}

// Reasons a pushed key record is refused (the reason label of
// kaginashi_agent_key_records_total).
const (
	RefusedSignature = "signature" // not signed by the pinned (or a retired) key
	RefusedInstance  = "instance"  // for another instance
	RefusedUser      = "user"      // for another user
	RefusedExpired   = "expired"   // past its expiry, by the server's clock
	RefusedMalformed = "malformed" // a field fails its shape check
	RefusedWithdrawn = "withdrawn" // the server withdrew it (its push timed out)
	RefusedStorage   = "storage"   // the agent could not persist it
	RefusedOther     = "other"
)

// RefusalReasons lists every reason, for tests and for registering the
// label values up front (a refusal that never happened reads 0, not
// absent, so alerts on increase() work from the first one).
var RefusalReasons = [...]string{RefusedSignature, RefusedInstance, RefusedUser, RefusedExpired, RefusedMalformed, RefusedWithdrawn, RefusedStorage, RefusedOther}

// errWithdrawn is accept's refusal of a record the server withdrew.
var errWithdrawn = errors.New("key record: withdrawn by the server (its push had timed out)")

// errPersist wraps accept's failure to persist a record.
var errPersist = errors.New("persisting the key")

// RefusalReason maps accept's error to its metric label.
func RefusalReason(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, keyrecord.ErrSignature):
		return RefusedSignature
	case errors.Is(err, keyrecord.ErrInstance):
		return RefusedInstance
	case errors.Is(err, keyrecord.ErrUser):
		return RefusedUser
	case errors.Is(err, keyrecord.ErrExpired):
		return RefusedExpired
	case errors.Is(err, errWithdrawn):
		return RefusedWithdrawn
	case errors.Is(err, errPersist):
		return RefusedStorage
	// keyrecord.Check's errors carry no sentinel: they all say "malformed"
	// or name the lifetime.
	case strings.HasPrefix(err.Error(), "key record: malformed"), strings.HasPrefix(err.Error(), "key record: lifetime"):
		return RefusedMalformed
	}
	return RefusedOther
}

// nopMetrics is the default: no metrics.
type nopMetrics struct{}

func (nopMetrics) Connection(bool)       {}
func (nopMetrics) KeyRecord(string)      {}
func (nopMetrics) Revoke()               {}
func (nopMetrics) Tunnel(bool)           {}
func (nopMetrics) TunnelBytes(bool, int) {}
func (nopMetrics) SigningKeyRotated()    {}

// Stats are the agent's current state for gauges read at scrape time (so
// nothing is paid per heartbeat).
type Stats struct {
	Connected bool
	// LastBeat is when the server last answered a hello or heartbeat
	// (zero before the first).
	LastBeat time.Time
	// ClockSkew is server time minus host time, as last measured.
	ClockSkew time.Duration
	// SigningKeyError: a signing-key problem makes logins with pushed
	// keys fail (keyhealth.go): the server signs with a key the agent
	// cannot trust, the AuthorizedKeysCommand cannot read the pinned key,
	// or pushed records keep failing their signature check.
	SigningKeyError bool
	// ActiveKeyRecords are the held records not yet expired.
	ActiveKeyRecords int
	// TunnelsOpen are the tunnels being carried now.
	TunnelsOpen int
}

// Stats returns the agent's current state.
func (a *Agent) Stats() Stats {
	a.statusMu.Lock()
	st := a.status
	a.statusMu.Unlock()
	s := Stats{Connected: st.Connected, LastBeat: st.LastBeat, SigningKeyError: a.signingKeyProblem() != "",
		TunnelsOpen: int(a.tunnelsOpen.Load())}
	serverNow := a.now().Add(time.Duration(a.skew()) * time.Millisecond).Unix()
	a.mu.Lock()
	s.ClockSkew = time.Duration(a.public.ClockSkewMillis) * time.Millisecond
	for _, r := range a.records {
		if r.ExpiresAt > serverNow {
			s.ActiveKeyRecords++
		}
	}
	a.mu.Unlock()
	return s
}
