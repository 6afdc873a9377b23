package console

import (
	"fmt"
	"testing"
	"time"
)

func TestLimiterBackoffAndLockout(t *testing.T) {
	clk := newClock()
	l := NewLimiter(clk.now)
	u, ip := "user:alice", "ip:203.0.113.7"
	// Three attempts go straight through (each counts until it succeeds).
	for i := 0; i < 3; i++ {
		if w := l.Attempt(u, ip); w != 0 {
			t.Fatalf("attempt %d must wait %v", i+1, w)
		}
	}
	// Then 1 s, 2 s, 4 s, ...
	for i, want := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second} {
		if w := l.Attempt(u, ip); w != want {
			t.Fatalf("backoff %d: wait %v, want %v", i, w, want)
		}
		clk.add(want - time.Millisecond)
		if w := l.Attempt(u, ip); w != time.Millisecond {
			t.Fatalf("backoff %d: a millisecond early, wait %v", i, w)
		}
		clk.add(time.Millisecond)
		if w := l.Attempt(u, ip); w != 0 {
			t.Fatalf("backoff %d: on time, still wait %v", i, w)
		}
	}
	// 7 failures so far; the limiter caps the delay and locks at 10.
	for l.waitOf(u) < 10 {
		clk.add(l.waitAfter(u))
		if w := l.Attempt(u, ip); w != 0 {
			t.Fatalf("wait %v", w)
		}
	}
	clk.add(time.Minute)
	w := l.Attempt(u)
	if w <= time.Minute || w > 15*time.Minute {
		t.Fatalf("locked: wait %v, want until the oldest failure leaves the 15 min window", w)
	}
	// Another user from another address is not affected.
	if w := l.Attempt("user:bob", "ip:198.51.100.1"); w != 0 {
		t.Fatalf("bob waits %v", w)
	}
	// One user's failures do not lock others out of a shared address.
	if w := l.Attempt("user:carol", ip); w != 0 {
		t.Fatalf("carol, from alice's address, waits %v", w)
	}
	l.Succeeded("user:carol", ip)
	clk.add(16 * time.Minute)
	if w := l.Attempt(u, ip); w != 0 {
		t.Fatalf("after the window: wait %v", w)
	}
	// Success forgets the user's failures, not the address's.
	l.Succeeded(u, ip)
	if n := l.waitOf(u); n != 0 {
		t.Errorf("%d failures left for the user after success", n)
	}
}

func TestLimiterParallelAttemptsCount(t *testing.T) {
	clk := newClock()
	l := NewLimiter(clk.now)
	// Attempts in flight count: a burst cannot pass the backoff by
	// starting before the first one fails.
	passed := 0
	for i := 0; i < 100; i++ {
		if l.Attempt("user:alice", "ip:a") == 0 {
			passed++
		}
	}
	if passed != 3 {
		t.Errorf("%d parallel attempts passed, want 3", passed)
	}
	// A correct password waiting for its MFA code is forgiven.
	l.Forgive("user:alice", "ip:a")
	if n := l.waitOf("user:alice"); n != 2 {
		t.Errorf("after Forgive: %d failures, want 2", n)
	}
}

func TestLimiterBoundsKeys(t *testing.T) {
	clk := newClock()
	l := NewLimiter(clk.now)
	l.MaxKeys = 10
	for i := 0; i < 100; i++ {
		l.Attempt("user:" + itoa(i))
		clk.add(time.Second)
	}
	if len(l.m) > 10 {
		t.Errorf("%d keys tracked, max 10", len(l.m))
	}
}

// waitOf is the number of failures counted for key.
func (l *Limiter) waitOf(key string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.pruneLocked(key, l.now()))
}

// waitAfter is how long key must wait now.
func (l *Limiter) waitAfter(key string) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.waitLocked(key, l.now())
}

func TestLimiterAddressCyclingUsers(t *testing.T) {
	clk := newClock()
	l := NewLimiter(clk.now)
	ip := "ip:203.0.113.9"
	// A guesser trying a new user name each time is slowed down by the
	// address: after 5 × 3 failures it must wait.
	for i := 0; i < 15; i++ {
		if w := l.Attempt("user:u"+string(rune('a'+i)), ip); w != 0 {
			t.Fatalf("attempt %d from the address waits %v already", i+1, w)
		}
	}
	if w := l.Attempt("user:zed", ip); w != time.Second {
		t.Fatalf("the 16th guess from one address: wait %v, want 1s", w)
	}
	// From then on it gets a guess in only as fast as the backoff lets
	// it: within the 15-minute window, far fewer than it could type.
	start, guesses := clk.now(), 15
	for n := 0; clk.now().Sub(start) < 15*time.Minute; n++ {
		w := l.Attempt(fmt.Sprintf("user:g%d", n), ip)
		if w == 0 {
			guesses++
			continue
		}
		clk.add(w)
	}
	if guesses > 35 {
		t.Fatalf("%d guesses from one address in 15 minutes", guesses)
	}
}
