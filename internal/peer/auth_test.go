package peer

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

var key = bytes.Repeat([]byte{7}, 32)

func signed(t *testing.T, s *Signer, method, target string, body []byte) *http.Request {
	t.Helper()
	r := httptest.NewRequest(method, target, bytes.NewReader(body))
	s.Sign(r, body)
	return r
}

func TestVerify(t *testing.T) {
	c := &clock{time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)}
	s := &Signer{Key: key, Replica: "abc123", Now: c.now}
	v := NewVerifier(key, c.now)
	body := []byte(`{"x":1}`)

	r := signed(t, s, "POST", "/_peer/deliver", body)
	got, err := v.Verify(r, body)
	if err != nil || got != "abc123" {
		t.Fatalf("Verify = %q, %v; want abc123", got, err)
	}

	t.Run("replay", func(t *testing.T) {
		r := signed(t, s, "POST", "/_peer/deliver", body)
		if _, err := v.Verify(r, body); err != nil {
			t.Fatal(err)
		}
		if _, err := v.Verify(r, body); !errors.Is(err, errAuth) || !strings.Contains(err.Error(), "replayed") {
			t.Fatalf("replay: %v", err)
		}
	})
	t.Run("skew", func(t *testing.T) {
		for _, d := range []time.Duration{MaxSkew + time.Millisecond, -MaxSkew - time.Millisecond} {
			old := &Signer{Key: key, Replica: "abc123", Now: func() time.Time { return c.t.Add(d) }}
			r := signed(t, old, "POST", "/_peer/deliver", body)
			if _, err := v.Verify(r, body); !errors.Is(err, errAuth) || !strings.Contains(err.Error(), "clock") {
				t.Fatalf("skew %s: %v", d, err)
			}
		}
		// Within the window it passes.
		near := &Signer{Key: key, Replica: "abc123", Now: func() time.Time { return c.t.Add(-MaxSkew + time.Second) }}
		if _, err := v.Verify(signed(t, near, "POST", "/_peer/deliver", body), body); err != nil {
			t.Fatalf("within the window: %v", err)
		}
	})
	t.Run("wrong key", func(t *testing.T) {
		other := &Signer{Key: bytes.Repeat([]byte{8}, 32), Replica: "abc123", Now: c.now}
		if _, err := v.Verify(signed(t, other, "POST", "/_peer/deliver", body), body); !errors.Is(err, errAuth) || !strings.Contains(err.Error(), "signature") {
			t.Fatalf("wrong key: %v", err)
		}
	})
	t.Run("changed request", func(t *testing.T) {
		r := signed(t, s, "POST", "/_peer/deliver", body)
		if _, err := v.Verify(r, []byte(`{"x":2}`)); !errors.Is(err, errAuth) {
			t.Fatalf("other body: %v", err)
		}
		r = signed(t, s, "GET", "/_peer/tunnel?instanceId=i-1&port=22", nil)
		r.URL.RawQuery = "instanceId=i-1&port=5432"
		if _, err := v.Verify(r, nil); !errors.Is(err, errAuth) {
			t.Fatalf("other query: %v", err)
		}
		r = signed(t, s, "POST", "/_peer/deliver", body)
		r.Header.Set(AuthHeader, strings.Replace(r.Header.Get(AuthHeader), "replica=abc123", "replica=abc124", 1))
		if _, err := v.Verify(r, body); !errors.Is(err, errAuth) {
			t.Fatalf("other replica: %v", err)
		}
	})
	t.Run("missing or doubled", func(t *testing.T) {
		r := httptest.NewRequest("POST", "/_peer/deliver", nil)
		if _, err := v.Verify(r, nil); !errors.Is(err, errAuth) {
			t.Fatalf("no header: %v", err)
		}
		r = signed(t, s, "POST", "/_peer/deliver", body)
		r.Header.Add(AuthHeader, r.Header.Get(AuthHeader))
		if _, err := v.Verify(r, body); !errors.Is(err, errAuth) {
			t.Fatalf("two headers: %v", err)
		}
	})
	t.Run("prune", func(t *testing.T) {
		v := NewVerifier(key, c.now)
		if _, err := v.Verify(signed(t, s, "POST", "/p", nil), nil); err != nil {
			t.Fatal(err)
		}
		c.t = c.t.Add(MaxSkew + time.Second)
		defer func() { c.t = c.t.Add(-MaxSkew - time.Second) }()
		v.Prune()
		if n := len(v.nonces); n != 0 {
			t.Fatalf("%d nonces kept past the window", n)
		}
	})
}

func TestParseAuth(t *testing.T) {
	good := "v1 replica=abc ts=1764331200000 nonce=00112233445566778899aabbccddeeff sig=" + strings.Repeat("ab", 32)
	a, err := ParseAuth(good)
	if err != nil || a.Replica != "abc" || a.Time.UnixMilli() != 1764331200000 || len(a.Sig) != 32 {
		t.Fatalf("ParseAuth(good) = %+v, %v", a, err)
	}
	for _, bad := range []string{
		"",
		"v2" + good[2:],
		strings.Replace(good, "replica=abc", "replica=ABC", 1),
		strings.Replace(good, "replica=abc", "replica=", 1),
		strings.Replace(good, "ts=1764331200000", "ts=-1", 1),
		strings.Replace(good, "ts=1764331200000", "ts=1e3", 1),
		strings.Replace(good, "nonce=00", "nonce=0", 1),
		strings.Replace(good, "nonce=00112233445566778899aabbccddeeff", "nonce=00112233445566778899AABBCCDDEEFF", 1),
		good + " extra=1",
		strings.Replace(good, " ts=", "  ts=", 1),
		strings.Replace(good, "sig=ab", "sig=zz", 1),
		"v1 ts=1 replica=abc nonce=00112233445566778899aabbccddeeff sig=" + strings.Repeat("ab", 32),
	} {
		if _, err := ParseAuth(bad); err == nil {
			t.Errorf("ParseAuth(%q) accepted", bad)
		}
	}
}

func FuzzParseAuth(f *testing.F) {
	f.Add("v1 replica=abc ts=1764331200000 nonce=00112233445566778899aabbccddeeff sig=" + strings.Repeat("ab", 32))
	f.Add("v1 replica= ts= nonce= sig=")
	f.Add("v1 replica=a ts=99999999999999999999 nonce=x sig=y")
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseAuth(s)
		if err != nil {
			return
		}
		// Whatever parses is in the one form Sign writes.
		if !validReplicaID(a.Replica) || len(a.Nonce) != 2*nonceLen || len(a.Sig) != 32 {
			t.Fatalf("ParseAuth(%q) = %+v", s, a)
		}
		if !strings.HasPrefix(s, "v1 replica="+a.Replica+" ts=") {
			t.Fatalf("ParseAuth(%q) accepted another layout", s)
		}
	})
}
