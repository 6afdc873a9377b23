package console

import (
	"strings"
	"sync"
	"time"
)

// Limiter slows down password guessing, per user name and per source
// address: after BackoffAfter failures within Window each further attempt
// waits twice as long as the one before (1 s, 2 s, 4 s, … up to MaxDelay),
// and after LockAfter failures within Window the key is locked until the
// oldest of them leaves the window.
//
// An attempt counts as a failure from the moment it starts (Attempt) and
// is taken back only when it succeeds: password hashing is slow, and
// counting only finished failures would let a burst of parallel guesses
// through before the first one is counted.
type Limiter struct {
	Window       time.Duration // 15 min
	BackoffAfter int           // 3
	LockAfter    int           // 10
	MaxDelay     time.Duration // 60 s
	MaxKeys      int           // keys tracked at most (100000); then the stalest go
	// AddressScale multiplies BackoffAfter and LockAfter for source
	// addresses ("ip:" keys, 5): many people may share one (an office's
	// NAT), and one mistyping user must not lock the others out; a guesser
	// cycling user names from one address is still slowed down.
	AddressScale int

	now func() time.Time
	mu  sync.Mutex
	m   map[string][]time.Time // failure times, oldest first, at most LockAfter
}

// NewLimiter makes a limiter with the defaults and clock now.
func NewLimiter(now func() time.Time) *Limiter {
	if now == nil {
		now = time.Now
	}
	return &Limiter{Window: 15 * time.Minute, BackoffAfter: 3, LockAfter: 10, MaxDelay: time.Minute, MaxKeys: 100000, AddressScale: 5,
		now: now, m: map[string][]time.Time{}}
}

// limits are the thresholds for key.
func (l *Limiter) limits(key string) (backoffAfter, lockAfter int) {
	if strings.HasPrefix(key, "ip:") && l.AddressScale > 1 {
		return l.BackoffAfter * l.AddressScale, l.LockAfter * l.AddressScale
	}
	return l.BackoffAfter, l.LockAfter
}

// wait is how long key must wait before its next attempt at now.
func (l *Limiter) waitLocked(key string, now time.Time) time.Duration {
	fs := l.pruneLocked(key, now)
	n := len(fs)
	backoffAfter, lockAfter := l.limits(key)
	if n >= lockAfter {
		return fs[n-lockAfter].Add(l.Window).Sub(now)
	}
	if n < backoffAfter {
		return 0
	}
	delay := time.Second << min(n-backoffAfter, 30)
	if delay > l.MaxDelay {
		delay = l.MaxDelay
	}
	if d := fs[n-1].Add(delay).Sub(now); d > 0 {
		return d
	}
	return 0
}

func (l *Limiter) pruneLocked(key string, now time.Time) []time.Time {
	fs := l.m[key]
	i := 0
	for i < len(fs) && !now.Before(fs[i].Add(l.Window)) {
		i++
	}
	if i > 0 {
		fs = fs[i:]
		if len(fs) == 0 {
			delete(l.m, key)
		} else {
			l.m[key] = fs
		}
	}
	return fs
}

// Attempt reports how long the caller must wait (0: go ahead). When it
// may go ahead the attempt is counted as a failure against every key
// until Succeeded takes it back.
func (l *Limiter) Attempt(keys ...string) time.Duration {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	var wait time.Duration
	for _, k := range keys {
		wait = max(wait, l.waitLocked(k, now))
	}
	if wait > 0 {
		return wait
	}
	if len(l.m)+len(keys) > l.MaxKeys {
		l.sweepLocked(now)
	}
	for _, k := range keys {
		fs := append(l.m[k], now)
		if _, lockAfter := l.limits(k); len(fs) > lockAfter {
			fs = fs[len(fs)-lockAfter:]
		}
		l.m[k] = fs
	}
	return 0
}

// Succeeded takes back a successful attempt: the user's failures are
// forgotten; the address keeps its earlier ones (a valid account must not
// reset an address that guesses at others).
func (l *Limiter) Succeeded(userKey string, otherKeys ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.m, userKey)
	for _, k := range otherKeys {
		if fs := l.m[k]; len(fs) > 0 {
			if fs = fs[:len(fs)-1]; len(fs) == 0 {
				delete(l.m, k)
			} else {
				l.m[k] = fs
			}
		}
	}
}

// Forgive takes back one attempt of every key without resetting any (a
// correct password that still needs its MFA code).
func (l *Limiter) Forgive(keys ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, k := range keys {
		if fs := l.m[k]; len(fs) > 0 {
			if fs = fs[:len(fs)-1]; len(fs) == 0 {
				delete(l.m, k)
			} else {
				l.m[k] = fs
			}
		}
	}
}

// sweepLocked drops expired keys, then the stalest until under MaxKeys.
func (l *Limiter) sweepLocked(now time.Time) {
	for k := range l.m {
		l.pruneLocked(k, now)
	}
	for len(l.m) >= l.MaxKeys {
		var stalest string
		var at time.Time
		for k, fs := range l.m {
			if last := fs[len(fs)-1]; stalest == "" || last.Before(at) {
				stalest, at = k, last
			}
		}
		delete(l.m, stalest)
	}
}
