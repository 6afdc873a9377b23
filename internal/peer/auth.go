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
//	Kaginashi-Peer-Auth: v1 replica=ID ts=UNIXMILLIS nonce=HEX32 sig=HEX64
//
// sig is the HMAC-SHA256, under the key every replica derives from the
// shared master key (seal.Sealer.DeriveKey(KeyPurpose)), of
//
//	kaginashi-peer-v1 \n METHOD \n REQUEST-URI \n replica \n ts \n nonce \n hex(SHA-256(body))
//
// The timestamp bounds a request's life (MaxSkew either way) and the nonce,
// remembered for that long, makes it single-use: a captured request cannot
// be replayed, nor moved to another path or given another body.
const AuthHeader = "Kaginashi-Peer-Auth"

// KeyPurpose is the HKDF info string of the peer key.
const KeyPurpose = "kaginashi peer auth v1"

// MaxSkew is how far a request's timestamp may be from the verifier's
// clock. Replicas' clocks must agree within it (NTP does far better).
const MaxSkew = 30 * time.Second

const (
	authVersion = "v1"
	nonceLen    = 16 // bytes
	// maxNonces bounds the replay cache: at most this many requests per
	// 2×MaxSkew are accepted; beyond it requests are refused (fail closed)
	// rather than remembered in unbounded memory.
	maxNonces = 1 << 17
)

// Auth is a parsed AuthHeader.
type Auth struct {
	Replica string
	Time    time.Time
	Nonce   string // hex
	Sig     []byte
}

// errAuth is the one error a refused request gets on the wire: the reason
// is logged, not told.
var errAuth = errors.New("peer authentication failed")

// ParseAuth parses an AuthHeader value. It accepts exactly the form Sign
// writes: the four fields in order, each once, nothing else.
func ParseAuth(v string) (Auth, error) {
	if len(v) > 512 {
		return Auth{}, errors.New("the peer auth header is too long")
	}
	parts := strings.Split(v, " ")
	if len(parts) != 5 || parts[0] != authVersion {
		return Auth{}, errors.New("the peer auth header is not 'v1 replica=… ts=… nonce=… sig=…'")
	}
	var a Auth
	for i, name := range []string{"replica", "ts", "nonce", "sig"} {
		k, val, ok := strings.Cut(parts[i+1], "=")
		if !ok || k != name || val == "" {
			return Auth{}, fmt.Errorf("the peer auth header's field %d is not %s=…", i+1, name)
		}
		switch name {
		case "replica":
			if !validReplicaID(val) {
				return Auth{}, errors.New("the peer auth header's replica is not a replica ID")
			}
			a.Replica = val
		case "ts":
			if len(val) > 15 || strings.TrimLeft(val, "0123456789") != "" {
				return Auth{}, errors.New("the peer auth header's ts is not Unix milliseconds")
			}
			ms, err := strconv.ParseInt(val, 10, 64)
			if err != nil {
				return Auth{}, errors.New("the peer auth header's ts is not Unix milliseconds")
			}
			a.Time = time.UnixMilli(ms)
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

func mac(key []byte, method, requestURI, replica, ts, nonce string, body []byte) []byte {
	sum := sha256.Sum256(body)
	m := hmac.New(sha256.New, key)
	for _, s := range []string{"kaginashi-peer-v1", method, requestURI, replica, ts, nonce, hex.EncodeToString(sum[:])} {
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

// Sign sets r's AuthHeader for body (the bytes r will send; nil for none).
func (s *Signer) Sign(r *http.Request, body []byte) {
	var n [nonceLen]byte
	_, _ = rand.Read(n[:])
	nonce := hex.EncodeToString(n[:])
	ts := strconv.FormatInt(s.Now().UnixMilli(), 10)
	sig := mac(s.Key, r.Method, r.URL.RequestURI(), s.Replica, ts, nonce, body)
	r.Header.Set(AuthHeader, authVersion+" replica="+s.Replica+" ts="+ts+" nonce="+nonce+" sig="+hex.EncodeToString(sig))
}

// Verifier checks peers' requests: signature, time window, single use.
type Verifier struct {
	key []byte
	now func() time.Time

	mu     sync.Mutex
	nonces map[string]time.Time // nonce → when it may be forgotten
}

// NewVerifier makes a verifier for key with clock now.
func NewVerifier(key []byte, now func() time.Time) *Verifier {
	return &Verifier{key: key, now: now, nonces: map[string]time.Time{}}
}

// Verify checks r's AuthHeader against the request and body and returns
// the calling replica's ID. Every failure is errAuth wrapped with the
// reason (for the log; the wire gets only errAuth's text).
func (v *Verifier) Verify(r *http.Request, body []byte) (string, error) {
	h := r.Header.Values(AuthHeader)
	if len(h) != 1 {
		return "", fmt.Errorf("%w: want one %s header, got %d", errAuth, AuthHeader, len(h))
	}
	a, err := ParseAuth(h[0])
	if err != nil {
		return "", fmt.Errorf("%w: %v", errAuth, err)
	}
	now := v.now()
	if d := now.Sub(a.Time); d > MaxSkew || d < -MaxSkew {
		return "", fmt.Errorf("%w: the request's time is %s from this replica's clock (at most %s)", errAuth, d.Round(time.Millisecond), MaxSkew)
	}
	// The signed ts is the header's own digits (as sent), not a
	// re-formatting of the parsed time.
	ts := fieldValue(h[0], "ts")
	want := mac(v.key, r.Method, r.URL.RequestURI(), a.Replica, ts, a.Nonce, body)
	if !hmac.Equal(want, a.Sig) {
		return "", fmt.Errorf("%w: wrong signature (another master key, or a changed request)", errAuth)
	}
	// Only a correctly signed request reaches the nonce cache, so the
	// cache cannot be filled by anyone without the key.
	if err := v.useNonce(a.Nonce, a.Time.Add(MaxSkew), now); err != nil {
		return "", err
	}
	return a.Replica, nil
}

func fieldValue(h, name string) string {
	for _, p := range strings.Split(h, " ") {
		if k, val, ok := strings.Cut(p, "="); ok && k == name {
			return val
		}
	}
	return ""
}

// useNonce remembers a nonce until forget; a second use is a replay.
func (v *Verifier) useNonce(nonce string, forget, now time.Time) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if _, seen := v.nonces[nonce]; seen {
		return fmt.Errorf("%w: a replayed request (its nonce was used)", errAuth)
	}
	if len(v.nonces) >= maxNonces {
		for n, t := range v.nonces {
			if !now.Before(t) {
				delete(v.nonces, n)
			}
		}
		if len(v.nonces) >= maxNonces {
			return fmt.Errorf("%w: too many peer requests in the replay window", errAuth)
		}
	}
	v.nonces[nonce] = forget
	return nil
}

// Prune forgets nonces whose requests are past the window anyway (their
// timestamps would be refused). The router calls it periodically.
func (v *Verifier) Prune() {
	now := v.now()
	v.mu.Lock()
	defer v.mu.Unlock()
	for n, t := range v.nonces {
		if !now.Before(t) {
			delete(v.nonces, n)
		}
	}
}
