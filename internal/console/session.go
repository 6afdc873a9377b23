package console

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"sync"
	"time"
)

// Sessions are kept in memory, per server process: a restart signs
// everyone out, and behind several replicas a browser must stick to one
// (documented in docs/CONSOLE-API.md). The browser holds a random 32-byte
// token; the server keeps only its SHA-256, so a memory dump or a log line
// of the table gives no usable cookie.

// Session is a signed-in console session.
type Session struct {
	key      [32]byte // SHA-256 of the cookie's token
	Account  string
	UserName string // "root" for the account root
	UserID   string // the IAM user's ID at sign-in: a user deleted and re-created does not inherit it
	Root     bool
	MFA      bool
	CSRF     string
	Created  time.Time
	LastSeen time.Time
	// ProfileCreated is the CreateDate of the login profile whose password
	// began the session, as the store keeps it (zero for root): another
	// profile — the old one deleted and a new one set — ends the session.
	// Compared for equality with what the store holds, never with this
	// replica's clock, which need not agree with the clock of the replica
	// that made the profile.
	ProfileCreated time.Time
}

// Expiry is when the session ends at the latest (absolute timeout).
func (s *Session) Expiry(abs time.Duration) time.Time { return s.Created.Add(abs) }

// SessionConfig are the timeouts and bounds of the session table.
type SessionConfig struct {
	Idle     time.Duration // default 30 min
	Absolute time.Duration // default 12 h
	// Max sessions held; at the bound expired ones are dropped, then the
	// least recently used (default 10000).
	Max int
	// PerUser bounds one user's sessions; a new sign-in drops that user's
	// least recently used beyond it (default 20).
	PerUser int
}

// Sessions is the session table.
type Sessions struct {
	cfg SessionConfig
	now func() time.Time

	mu sync.Mutex
	m  map[[32]byte]*Session
}

// NewSessions makes a session table with clock now.
func NewSessions(cfg SessionConfig, now func() time.Time) *Sessions {
	if cfg.Idle <= 0 {
		cfg.Idle = 30 * time.Minute
	}
	if cfg.Absolute <= 0 {
		cfg.Absolute = 12 * time.Hour
	}
	if cfg.Max <= 0 {
		cfg.Max = 10000
	}
	if cfg.PerUser <= 0 {
		cfg.PerUser = 20
	}
	if now == nil {
		now = time.Now
	}
	return &Sessions{cfg: cfg, now: now, m: map[[32]byte]*Session{}}
}

func randomToken() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

func tokenKey(token string) [32]byte { return sha256.Sum256([]byte(token)) }

// Create starts a session for who and returns the cookie's token and a
// copy of the session.
func (s *Sessions) Create(who Session) (string, Session, error) {
	token, err := randomToken()
	if err != nil {
		return "", Session{}, err
	}
	csrf, err := randomToken()
	if err != nil {
		return "", Session{}, err
	}
	now := s.now()
	sess := who
	sess.key, sess.CSRF, sess.Created, sess.LastSeen = tokenKey(token), csrf, now, now
	s.mu.Lock()
	defer s.mu.Unlock()
	s.evictLocked(now, sess.UserName)
	s.m[sess.key] = &sess
	return token, sess, nil
}

// evictLocked makes room for one more session of user.
func (s *Sessions) evictLocked(now time.Time, user string) {
	var mine []*Session
	for k, v := range s.m {
		if s.expired(v, now) {
			delete(s.m, k)
			continue
		}
		if v.UserName == user {
			mine = append(mine, v)
		}
	}
	for len(mine) >= s.cfg.PerUser {
		i := oldest(mine)
		delete(s.m, mine[i].key)
		mine = append(mine[:i], mine[i+1:]...)
	}
	for len(s.m) >= s.cfg.Max {
		var lru *Session
		for _, v := range s.m {
			if lru == nil || v.LastSeen.Before(lru.LastSeen) {
				lru = v
			}
		}
		delete(s.m, lru.key)
	}
}

func oldest(ss []*Session) int {
	j := 0
	for i, v := range ss {
		if v.LastSeen.Before(ss[j].LastSeen) {
			j = i
		}
	}
	return j
}

func (s *Sessions) expired(v *Session, now time.Time) bool {
	return !now.Before(v.Created.Add(s.cfg.Absolute)) || !now.Before(v.LastSeen.Add(s.cfg.Idle))
}

// ErrNoSession means the token names no live session.
var ErrNoSession = errors.New("console: not signed in, or the session expired")

// Get returns the live session of token; touch counts the request as
// activity (resetting the idle timeout).
func (s *Sessions) Get(token string, touch bool) (Session, error) {
	if token == "" {
		return Session{}, ErrNoSession
	}
	return s.byKey(tokenKey(token), touch)
}

func (s *Sessions) byKey(key [32]byte, touch bool) (Session, error) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[key]
	if !ok {
		return Session{}, ErrNoSession
	}
	if s.expired(v, now) {
		delete(s.m, key)
		return Session{}, ErrNoSession
	}
	if touch {
		v.LastSeen = now
	}
	return *v, nil
}

// Alive reports whether sess is still live, counting activity when touch
// (a terminal's keystrokes keep its session alive).
func (s *Sessions) Alive(sess Session, touch bool) bool {
	_, err := s.byKey(sess.key, touch)
	return err == nil
}

// Delete ends the session of token.
func (s *Sessions) Delete(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, tokenKey(token))
}

// Len is the number of sessions held (live or not yet swept).
func (s *Sessions) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}

// IdleExpiry is when sess ends without activity.
func (s *Sessions) IdleExpiry(sess Session) time.Time {
	t := sess.LastSeen.Add(s.cfg.Idle)
	if abs := sess.Expiry(s.cfg.Absolute); abs.Before(t) {
		return abs
	}
	return t
}

// CheckCSRF compares a request's token with the session's in constant
// time.
func CheckCSRF(sess Session, token string) bool {
	if token == "" || sess.CSRF == "" {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(sess.CSRF), []byte(token)) == 1
}
