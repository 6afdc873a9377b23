package peer

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// AuthHeader carries a peer request's authentication:
//
//	Kaginashi-Peer-Auth: v2 replica=FROM to=TO ts=UNIXMILLIS nonce=HEX32 sig=HEX64
//
// sig is the HMAC-SHA256, under the key every replica derives from the
// shared master key (seal.Sealer.DeriveKey(KeyPurpose)), of
//
//	kaginashi-peer-v2 \n METHOD \n REQUEST-URI \n FROM \n TO \n ts \n nonce \n hex(SHA-256(body))
//
// (each field followed by a newline). FROM is the sending replica's ID, TO
// the ID of the replica the request is for — the one the sender found in
// the store's agent session record. The timestamp bounds a request's life
// (MaxSkew either way) and the nonce, remembered for that long by the
// replica it is for, makes it single-use; TO makes every other replica
// refuse it, so a captured request can be replayed nowhere: not at its
// target (nonce), not at another replica (TO), not at its target's
// successor at the same peer URL after a restart (a new process has a new
// replica ID, and its empty nonce cache is then no gap). Nor can it be
// moved to another path or given another body.
//
// v1 (kaginashi before the target was bound) had no TO:
//
//	Kaginashi-Peer-Auth: v1 replica=FROM ts=UNIXMILLIS nonce=HEX32 sig=HEX64
//	kaginashi-peer-v1 \n METHOD \n REQUEST-URI \n FROM \n ts \n nonce \n hex(SHA-256(body))
//
// This release signs v2 only and still accepts v1, so that replicas not
// yet upgraded can reach upgraded ones during a rolling upgrade (the
// router logs each v1 sender once, at WARN). The next release refuses v1;
// --peer-auth-v1=false (Config.RefuseV1) refuses it now.
// Accepting it reopens nothing once every replica is upgraded: only an old
// replica makes v1 requests, an upgraded one cannot be made to, and a v2
// request cannot be turned into a v1 one without the key (the domain
// strings differ); a v1 request captured before the last old replica went
// away is past its window 30 s later. See docs/SECURITY.md.
const AuthHeader = "Kaginashi-Peer-Auth"

// KeyPurpose is the HKDF info string of the peer key. Unchanged by v2: the
// key is the same, the MAC's input (its domain string) says the version.
const KeyPurpose = "kaginashi peer auth v1"

// MaxSkew is how far a request's timestamp may be from the verifier's
// clock. Replicas' clocks must agree within it (NTP does far better).
const MaxSkew = 30 * time.Second

// Versions of AuthHeader.
const (
	// V1 is the old form, without the target replica; accepted for one
	// release, never signed.
	V1 = "v1"
	// V2 binds the target replica.
	V2 = "v2"
)

const (
	nonceLen = 16 // bytes
	// maxNonces bounds the replay cache: at most this many requests per
	// 2×MaxSkew are accepted; beyond it requests are refused (fail closed)
	// rather than remembered in unbounded memory.
	maxNonces = 1 << 17
)

// Auth is a parsed AuthHeader.
type Auth struct {
	Version string // V1 or V2
	Replica string // the sender
	To      string // the replica the request is for (V2; "" in V1)
	Time    time.Time
	TS      string // ts as sent: the MAC covers these digits, not a re-formatting of Time
	Nonce   string // hex
	Sig     []byte
}

// errAuth is the one error a refused request gets on the wire: the reason
// is logged, not told.
var errAuth = errors.New("peer authentication failed")

// ParseAuth parses an AuthHeader value. It accepts exactly the forms Sign
// writes (and v1's): the fields in order, each once, single spaces,
// nothing else.
func ParseAuth(v string) (Auth, error) {
	if len(v) > 512 {
		return Auth{}, errors.New("the peer auth header is too long")
	}
	parts := strings.Split(v, " ")
	var names []string
	switch {
	case len(parts) == 6 && parts[0] == V2:
		names = []string{"replica", "to", "ts", "nonce", "sig"}
	case len(parts) == 5 && parts[0] == V1:
		names = []string{"replica", "ts", "nonce", "sig"}
	default:
		return Auth{}, errors.New("the peer auth header is not 'v2 replica=… to=… ts=… nonce=… sig=…' (nor v1's 'v1 replica=… ts=… nonce=… sig=…')")
	}
	a := Auth{Version: parts[0]}
	for i, name := range names {
		k, val, ok := strings.Cut(parts[i+1], "=")
		if !ok || k != name || val == "" {
			return Auth{}, fmt.Errorf("the peer auth header's field %d is not %s=…", i+1, name)
		}
		switch name {
		case "replica", "to":
			if !validReplicaID(val) {
				return Auth{}, fmt.Errorf("the peer auth header's %s is not a replica ID", name)
			}
			if name == "replica" {
				a.Replica = val
			} else {
				a.To = val
			}
		case "ts":
			if len(val) > 15 || strings.TrimLeft(val, "0123456789") != "" {
				return Auth{}, errors.New("the peer auth header's ts is not Unix milliseconds")
			}
			ms, err := strconv.ParseInt(val, 10, 64)
			if err != nil {
				return Auth{}, errors.New("the peer auth header's ts is not Unix milliseconds")
			}
			a.Time, a.TS = time.UnixMilli(ms), val
		case "nonce":
			b, err := hex.DecodeString(val)
			if err != nil || len(b) != nonceLen || strings.ToLower(val) != val {
				return Auth{}, errors.New("the peer auth header's nonce is not 32 lowercase hex digits")
			}
			a.Nonce = val
		case "sig":
			b, err := hex.DecodeString(val)
			if err != nil || len(b) != sha256.Size {
				return Auth{}, errors.New("the peer auth header's sig is not 64 hex digits")
			}
			a.Sig = b
		}
	}
	return a, nil
}

// validReplicaID: 1 to 64 of [a-z0-9-] (NewReplicaID makes 32 hex digits).
func validReplicaID(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// NewReplicaID makes a replica's ID: random, one per process start.
func NewReplicaID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand does not fail
	return hex.EncodeToString(b[:])
}

// mac is the signature of a request in form version. Each version has its
// own domain string, so no input of one is an input of the other.
func mac(key []byte, version, method, requestURI, from, to, ts, nonce string, body []byte) []byte {
	sum := sha256.Sum256(body)
	fields := []string{"kaginashi-peer-v2", method, requestURI, from, to, ts, nonce, hex.EncodeToString(sum[:])}
	if version == V1 {
		fields = []string{"kaginashi-peer-v1", method, requestURI, from, ts, nonce, hex.EncodeToString(sum[:])}
	}
	m := hmac.New(sha256.New, key)
	for _, s := range fields {
		m.Write([]byte(s))
		m.Write([]byte{'\n'})
	}
	return m.Sum(nil)
}

// Signer signs this replica's requests to its peers.
type Signer struct {
	Key     []byte
	Replica string
	Now     func() time.Time
}

// Sign sets r's AuthHeader (v2) for the replica to and body (the bytes r
// will send; nil for none). to is the target's replica ID, as the agent
// session record names it.
func (s *Signer) Sign(r *http.Request, to string, body []byte) error {
	if !validReplicaID(to) {
		return fmt.Errorf("signing a peer request: the target %q is not a replica ID", to)
	}
	var n [nonceLen]byte
	_, _ = rand.Read(n[:])
	nonce := hex.EncodeToString(n[:])
	ts := strconv.FormatInt(s.Now().UnixMilli(), 10)
	sig := mac(s.Key, V2, r.Method, r.URL.RequestURI(), s.Replica, to, ts, nonce, body)
	r.Header.Set(AuthHeader, V2+" replica="+s.Replica+" to="+to+" ts="+ts+" nonce="+nonce+" sig="+hex.EncodeToString(sig))
	return nil
}

// Verifier checks peers' requests for one replica: signature, target,
// time window, single use.
type Verifier struct {
	key  []byte
	self string
	now  func() time.Time
	// refuseV1 refuses v1 requests (--peer-auth-v1=false).
	refuseV1 bool

	mu     sync.Mutex
	nonces map[string]time.Time // nonce → its request's time + MaxSkew
	// high is the latest reading of this replica's wall clock so far. A
	// nonce is forgotten only once high is past its request's window, and
	// a request older than high's window is refused: high never goes
	// back, so a forgotten nonce's request is refused for ever after,
	// even when the clock steps back (NTP after a suspend, an operator's
	// date). Judged by the clock of the moment instead, a step back of S
	// would reopen S of forgotten requests to replay. The price is
	// failing closed: after a step back of more than MaxSkew, requests
	// stamped by a clock that stepped with this one are refused until it
	// has caught up with high (the step less MaxSkew). A restart ends
	// that: a new process is a new replica ID, its empty cache no gap.
	high time.Time
}

// NewVerifier makes the verifier of replica self for key with clock now.
func NewVerifier(key []byte, self string, now func() time.Time) *Verifier {
	return &Verifier{key: key, self: self, now: now, nonces: map[string]time.Time{}}
}

// RefuseV1 makes the verifier refuse v1 requests from now on
// (--peer-auth-v1=false): for a deployment whose replicas are all
// upgraded, which need not accept for the rest of the release a form that
// does not bind its target.
func (v *Verifier) RefuseV1() {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.refuseV1 = true
}

// errV1Refused is a refused v1 request's reason, for the router's log.
var errV1Refused = errors.New("the request is signed v1 (kaginashi before v2 peer authentication), which this replica refuses (--peer-auth-v1=false): upgrade the sending replica")

// wallNow is v.now without a monotonic reading: high must compare by the
// wall clock (the one requests are stamped with and that steps); with
// time.Now's monotonic reading, comparisons would follow the monotonic
// clock, and a stepped-back wall time would become the new high.
func (v *Verifier) wallNow() time.Time { return v.now().Round(0) }

// Verify checks r's AuthHeader against the request and body and returns
// it parsed (Replica is the calling replica; Version says whether it still
// signs v1). Every failure is errAuth wrapped with the reason (for the
// log; the wire gets only errAuth's text).
func (v *Verifier) Verify(r *http.Request, body []byte) (Auth, error) {
	h := r.Header.Values(AuthHeader)
	if len(h) != 1 {
		return Auth{}, fmt.Errorf("%w: want one %s header, got %d", errAuth, AuthHeader, len(h))
	}
	a, err := ParseAuth(h[0])
	if err != nil {
		return Auth{}, fmt.Errorf("%w: %v", errAuth, err)
	}
	now := v.wallNow()
	if d := now.Sub(a.Time); d > MaxSkew || d < -MaxSkew {
		return Auth{}, fmt.Errorf("%w: the request's time is %s from this replica's clock (at most %s)", errAuth, d.Round(time.Millisecond), MaxSkew)
	}
	want := mac(v.key, a.Version, r.Method, r.URL.RequestURI(), a.Replica, a.To, a.TS, a.Nonce, body)
	if !hmac.Equal(want, a.Sig) {
		return Auth{}, fmt.Errorf("%w: wrong signature (another master key, or a changed request)", errAuth)
	}
	// The target is checked after the signature, so that only a request
	// a replica really signed is reported as meant for another one.
	if a.Version == V2 && a.To != v.self {
		return Auth{}, fmt.Errorf("%w: the request from replica %s is for replica %s, not this one (%s): a stale agent session record, or a request replayed here", errAuth, a.Replica, a.To, v.self)
	}
	// Only a correctly signed request reaches the nonce cache, so the
	// cache cannot be filled by anyone without the key.
	if err := v.useNonce(a, now); err != nil {
		return Auth{}, err
	}
	return a, nil
}

// advance moves high to now if now is later, and returns high. v.mu held.
func (v *Verifier) advance(now time.Time) time.Time {
	if now.After(v.high) {
		v.high = now
	}
	return v.high
}

// useNonce remembers a's nonce until high is past its window; a second
// use is a replay. The window is checked against high here, under the
// lock that pruning holds, so that no request whose nonce was forgotten
// can pass (see high).
func (v *Verifier) useNonce(a Auth, now time.Time) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if a.Version == V1 && v.refuseV1 {
		return fmt.Errorf("%w: %w", errAuth, errV1Refused)
	}
	high := v.advance(now)
	forget := a.Time.Add(MaxSkew)
	if high.After(forget) {
		return fmt.Errorf("%w: the request's time is %s before the latest time this replica's clock has shown (at most %s): its clock stepped back, or a replay", errAuth, high.Sub(a.Time).Round(time.Millisecond), MaxSkew)
	}
	if _, seen := v.nonces[a.Nonce]; seen {
		return fmt.Errorf("%w: a replayed request (its nonce was used)", errAuth)
	}
	if len(v.nonces) >= maxNonces {
		v.pruneLocked(high)
		if len(v.nonces) >= maxNonces {
			return fmt.Errorf("%w: too many peer requests in the replay window", errAuth)
		}
	}
	v.nonces[a.Nonce] = forget
	return nil
}

// pruneLocked forgets the nonces whose requests high refuses anyway.
// v.mu held.
func (v *Verifier) pruneLocked(high time.Time) {
	for n, forget := range v.nonces {
		if high.After(forget) {
			delete(v.nonces, n)
		}
	}
}

// Prune forgets nonces whose requests are past the window anyway (their
// timestamps would be refused). The router calls it periodically.
func (v *Verifier) Prune() {
	now := v.wallNow()
	v.mu.Lock()
	defer v.mu.Unlock()
	v.pruneLocked(v.advance(now))
}
