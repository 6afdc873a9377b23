package console

import (
	"sync"
	"testing"
	"time"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)} }

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestSessionTimeouts(t *testing.T) {
	clk := newClock()
	s := NewSessions(SessionConfig{}, clk.now)
	token, sess, err := s.Create(Session{Account: "123456789012", UserName: "alice", UserID: "AIDA1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(token) != 43 || sess.CSRF == "" || sess.CSRF == token {
		t.Fatalf("token %q csrf %q: want 32 random bytes each, different", token, sess.CSRF)
	}
	if _, ok := s.m[tokenKey(token)]; !ok {
		t.Fatal("the table is not keyed by the token's hash")
	}
	for k := range s.m {
		if string(k[:]) == token {
			t.Fatal("the token itself is stored")
		}
	}
	// Activity keeps it alive past the idle timeout...
	for i := 0; i < 28; i++ {
		clk.add(25 * time.Minute)
		if _, err := s.Get(token, true); err != nil {
			t.Fatalf("after %v of activity: %v", time.Duration(i+1)*25*time.Minute, err)
		}
	}
	// ...but not past the absolute one.
	clk.add(time.Hour)
	if _, err := s.Get(token, true); err != ErrNoSession {
		t.Fatalf("after 12 h 40 min: %v, want ErrNoSession", err)
	}

	token, _, _ = s.Create(Session{UserName: "bob"})
	clk.add(29 * time.Minute)
	if _, err := s.Get(token, false); err != nil { // a look without activity
		t.Fatal(err)
	}
	clk.add(time.Minute)
	if _, err := s.Get(token, true); err != ErrNoSession {
		t.Fatalf("30 min idle: %v, want ErrNoSession", err)
	}
	if _, err := s.Get("", true); err != ErrNoSession {
		t.Fatal("an empty token found a session")
	}
	if _, err := s.Get("not-a-token", true); err != ErrNoSession {
		t.Fatal("a wrong token found a session")
	}
	token, _, _ = s.Create(Session{UserName: "carol"})
	s.Delete(token)
	if _, err := s.Get(token, true); err != ErrNoSession {
		t.Fatal("a signed-out session still works")
	}
}

func TestSessionBounds(t *testing.T) {
	clk := newClock()
	s := NewSessions(SessionConfig{Max: 5, PerUser: 2}, clk.now)
	var alice []string
	for i := 0; i < 3; i++ {
		tok, _, _ := s.Create(Session{UserName: "alice"})
		alice = append(alice, tok)
		clk.add(time.Second)
	}
	if _, err := s.Get(alice[0], false); err != ErrNoSession {
		t.Error("alice's oldest session survived her third sign-in (2 per user)")
	}
	if _, err := s.Get(alice[2], false); err != nil {
		t.Error("alice's newest session is gone")
	}
	for i := 0; i < 10; i++ {
		_, _, _ = s.Create(Session{UserName: string(rune('a' + i))})
		clk.add(time.Second)
	}
	if n := s.Len(); n > 5 {
		t.Errorf("%d sessions held, max 5", n)
	}
}

func TestCSRF(t *testing.T) {
	s := NewSessions(SessionConfig{}, nil)
	_, sess, _ := s.Create(Session{UserName: "alice"})
	if !CheckCSRF(sess, sess.CSRF) {
		t.Error("the session's own token is refused")
	}
	// The first character changed (to another one: a random token may
	// begin with any letter).
	other := "x"
	if sess.CSRF[0] == 'x' {
		other = "y"
	}
	for _, bad := range []string{"", sess.CSRF[:len(sess.CSRF)-1], sess.CSRF + "x", other + sess.CSRF[1:]} {
		if CheckCSRF(sess, bad) {
			t.Errorf("token %q accepted", bad)
		}
	}
	if CheckCSRF(Session{}, "") {
		t.Error("an empty token matched an empty session token")
	}
}

func TestTerminalSlots(t *testing.T) {
	c := &Console{cfg: Config{MaxTerminals: 3, MaxTerminalsPerUser: 2}, terminals: map[string]int{}}
	if !c.takeTerminal("a") || !c.takeTerminal("a") {
		t.Fatal("a's first two terminals refused")
	}
	if c.takeTerminal("a") {
		t.Error("a third terminal for a (max 2 per user)")
	}
	if !c.takeTerminal("b") || c.takeTerminal("c") {
		t.Error("the total bound of 3 is not kept")
	}
	c.releaseTerminal("a")
	if !c.takeTerminal("c") {
		t.Error("a released slot is not reusable")
	}
}
