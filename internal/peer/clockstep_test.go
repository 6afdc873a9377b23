package peer

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
)

// A request captured and replayed after this replica's clock stepped back
// is refused, although its nonce was forgotten and its time is within
// MaxSkew of the stepped clock. Judged by the clock of the moment (as
// before the high-water mark), the replays below were accepted.
func TestVerifyClockStepsBack(t *testing.T) {
	start := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	c := &clock{start}
	s := &Signer{Key: key, Replica: fromID, Now: c.now}
	v := NewVerifier(key, selfID, c.now)
	body := []byte(`{"x":1}`)

	captured := signed(t, s, selfID, http.MethodPost, pathDeliver, body)
	if _, err := v.Verify(captured, body); err != nil {
		t.Fatal(err)
	}
	// The clock runs on past the request's window; the router prunes.
	high := start.Add(MaxSkew + time.Second)
	c.t = high
	v.Prune()
	if n := len(v.nonces); n != 0 {
		t.Fatalf("%d nonces kept past the window: the test needs the captured one forgotten", n)
	}
	// The clock steps back by various amounts, each putting the captured
	// request within MaxSkew of it again.
	for _, back := range []time.Duration{time.Second, 20 * time.Second, MaxSkew, MaxSkew + time.Second - time.Millisecond} {
		c.t = high.Add(-back)
		if _, err := v.Verify(captured, body); !errors.Is(err, errAuth) || !strings.Contains(err.Error(), "stepped back") {
			t.Fatalf("replayed after a step back of %s (the clock %s after the request): %v; want refused", back, c.t.Sub(start), err)
		}
		v.Prune()
	}

	// Requests made after a step of less than MaxSkew pass: the step
	// costs nothing while it is within the window.
	c.t = high.Add(-20 * time.Second)
	if _, err := v.Verify(signed(t, s, selfID, http.MethodPost, pathDeliver, body), body); err != nil {
		t.Fatalf("a fresh request after a 20 s step back: %v", err)
	}
	// After a longer step, requests stamped by a clock that stepped with
	// this one are refused (fail closed) until it has caught up with the
	// high-water mark less MaxSkew; then they pass again.
	c.t = high.Add(-MaxSkew - 15*time.Second)
	if _, err := v.Verify(signed(t, s, selfID, http.MethodPost, pathDeliver, body), body); !errors.Is(err, errAuth) || !strings.Contains(err.Error(), "stepped back") {
		t.Fatalf("a request within the step's shadow: %v; want refused", err)
	}
	c.t = high.Add(-MaxSkew)
	if _, err := v.Verify(signed(t, s, selfID, http.MethodPost, pathDeliver, body), body); err != nil {
		t.Fatalf("once the clock caught up: %v", err)
	}
	// And the mark moves on with the clock.
	c.t = high.Add(time.Hour)
	if _, err := v.Verify(signed(t, s, selfID, http.MethodPost, pathDeliver, body), body); err != nil {
		t.Fatalf("an hour later: %v", err)
	}
	if _, err := v.Verify(captured, body); !errors.Is(err, errAuth) {
		t.Fatalf("the captured request an hour later: %v", err)
	}
}

// At exactly MaxSkew after a request's time, its nonce is still
// remembered: the time check lets the request through at that instant
// (it refuses only beyond MaxSkew), so pruning it then reopened it to
// replay for that millisecond.
func TestVerifyPruneBoundary(t *testing.T) {
	start := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	c := &clock{start}
	s := &Signer{Key: key, Replica: fromID, Now: c.now}
	v := NewVerifier(key, selfID, c.now)
	r := signed(t, s, selfID, http.MethodPost, pathRevoke, nil)
	if _, err := v.Verify(r, nil); err != nil {
		t.Fatal(err)
	}
	c.t = start.Add(MaxSkew)
	v.Prune()
	if _, err := v.Verify(r, nil); !errors.Is(err, errAuth) || !strings.Contains(err.Error(), "replayed") {
		t.Fatalf("replayed at exactly MaxSkew after pruning: %v; want refused as a replay", err)
	}
	c.t = start.Add(MaxSkew + time.Millisecond)
	v.Prune()
	if n := len(v.nonces); n != 0 {
		t.Fatalf("%d nonces kept past the window", n)
	}
	if _, err := v.Verify(r, nil); !errors.Is(err, errAuth) {
		t.Fatalf("replayed past the window: %v", err)
	}
}

// A verifier told to refuse v1 refuses a correctly signed v1 request and
// says why in the error (the router's log); v2 is unaffected.
func TestVerifyRefuseV1(t *testing.T) {
	c := &clock{time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)}
	v := NewVerifier(key, selfID, c.now)
	body := []byte(`{"x":1}`)
	v.RefuseV1()
	if _, err := v.Verify(signedV1(t, "old999", c.t, http.MethodPost, pathDeliver, body), body); !errors.Is(err, errAuth) || !errors.Is(err, errV1Refused) {
		t.Fatalf("v1 with RefuseV1: %v; want refused", err)
	}
	s := &Signer{Key: key, Replica: fromID, Now: c.now}
	if got, err := v.Verify(signed(t, s, selfID, http.MethodPost, pathDeliver, body), body); err != nil || got.Version != V2 {
		t.Fatalf("v2 with RefuseV1: %+v, %v", got, err)
	}
	// A v1 request with a bad signature is refused for its signature:
	// only a key holder learns that v1 is off.
	bad := signedV1(t, "old999", c.t, http.MethodPost, pathDeliver, body)
	if _, err := v.Verify(bad, []byte(`{"x":2}`)); errors.Is(err, errV1Refused) || !strings.Contains(err.Error(), "signature") {
		t.Fatalf("v1 with a bad signature: %v", err)
	}
}
