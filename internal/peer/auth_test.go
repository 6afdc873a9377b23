package peer

import (
	"bytes"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

var key = bytes.Repeat([]byte{7}, 32)

// The replicas of these tests: the sender, and the two it may address.
const (
	fromID = "abc123"
	selfID = "aaa111"
	otherB = "bbb222"
)

func signed(t *testing.T, s *Signer, to, method, target string, body []byte) *http.Request {
	t.Helper()
	r := httptest.NewRequest(method, target, bytes.NewReader(body))
	if err := s.Sign(r, to, body); err != nil {
		t.Fatal(err)
	}
	return r
}

// signedV1 signs as kaginashi before v2 did (an old replica).
func signedV1(t *testing.T, from string, now time.Time, method, target string, body []byte) *http.Request {
	t.Helper()
	r := httptest.NewRequest(method, target, bytes.NewReader(body))
	ts := strconv.FormatInt(now.UnixMilli(), 10)
	nonce := hex.EncodeToString([]byte(strconv.FormatInt(now.UnixNano(), 10) + "0123456789abcdef")[:nonceLen])
	sig := mac(key, V1, method, r.URL.RequestURI(), from, "", ts, nonce, body)
	r.Header.Set(AuthHeader, "v1 replica="+from+" ts="+ts+" nonce="+nonce+" sig="+hex.EncodeToString(sig))
	return r
}

func TestVerify(t *testing.T) {
	c := &clock{time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)}
	s := &Signer{Key: key, Replica: fromID, Now: c.now}
	v := NewVerifier(key, selfID, c.now)
	body := []byte(`{"x":1}`)

	r := signed(t, s, selfID, "POST", "/_peer/deliver", body)
	if !strings.HasPrefix(r.Header.Get(AuthHeader), "v2 replica="+fromID+" to="+selfID+" ts=") {
		t.Fatalf("header %q", r.Header.Get(AuthHeader))
	}
	got, err := v.Verify(r, body)
	if err != nil || got.Replica != fromID || got.Version != V2 || got.To != selfID {
		t.Fatalf("Verify = %+v, %v; want v2 from %s to %s", got, err, fromID, selfID)
	}

	t.Run("replay", func(t *testing.T) {
		r := signed(t, s, selfID, "POST", "/_peer/deliver", body)
		if _, err := v.Verify(r, body); err != nil {
			t.Fatal(err)
		}
		if _, err := v.Verify(r, body); !errors.Is(err, errAuth) || !strings.Contains(err.Error(), "replayed") {
			t.Fatalf("replay: %v", err)
		}
	})
	t.Run("for another replica", func(t *testing.T) {
		// Signed for B, presented at A (this verifier): refused, and
		// the nonce is not spent, so it is the target that refused it.
		r := signed(t, s, otherB, "POST", "/_peer/deliver", body)
		if _, err := v.Verify(r, body); !errors.Is(err, errAuth) || !strings.Contains(err.Error(), "is for replica "+otherB+", not this one ("+selfID+")") {
			t.Fatalf("another replica's request: %v", err)
		}
		b := NewVerifier(key, otherB, c.now)
		if got, err := b.Verify(r, body); err != nil || got.To != otherB {
			t.Fatalf("at its own target: %+v, %v", got, err)
		}
		// The other way round too: B spent it, A still refuses it.
		if _, err := v.Verify(r, body); !errors.Is(err, errAuth) || !strings.Contains(err.Error(), "not this one") {
			t.Fatalf("after use at B: %v", err)
		}
	})
	t.Run("changed target", func(t *testing.T) {
		r := signed(t, s, otherB, "POST", "/_peer/deliver", body)
		r.Header.Set(AuthHeader, strings.Replace(r.Header.Get(AuthHeader), "to="+otherB, "to="+selfID, 1))
		if _, err := v.Verify(r, body); !errors.Is(err, errAuth) || !strings.Contains(err.Error(), "signature") {
			t.Fatalf("retargeted: %v", err)
		}
	})
	t.Run("downgraded to v1", func(t *testing.T) {
		// Dropping to= and calling it v1 would make it valid anywhere;
		// v1's MAC has another domain string, so it does not verify.
		r := signed(t, s, otherB, "POST", "/_peer/deliver", body)
		r.Header.Set(AuthHeader, strings.Replace(strings.Replace(r.Header.Get(AuthHeader), " to="+otherB, "", 1), "v2 ", "v1 ", 1))
		if _, err := v.Verify(r, body); !errors.Is(err, errAuth) || !strings.Contains(err.Error(), "signature") {
			t.Fatalf("downgraded: %v", err)
		}
	})
	t.Run("v1 accepted for one release", func(t *testing.T) {
		r := signedV1(t, "old999", c.t, "POST", "/_peer/deliver", body)
		got, err := v.Verify(r, body)
		if err != nil || got.Version != V1 || got.Replica != "old999" || got.To != "" {
			t.Fatalf("v1: %+v, %v", got, err)
		}
		if _, err := v.Verify(r, body); !errors.Is(err, errAuth) || !strings.Contains(err.Error(), "replayed") {
			t.Fatalf("v1 replay: %v", err)
		}
		r = signedV1(t, "old999", c.t.Add(time.Millisecond), "POST", "/_peer/deliver", body)
		if _, err := v.Verify(r, []byte(`{"x":2}`)); !errors.Is(err, errAuth) || !strings.Contains(err.Error(), "signature") {
			t.Fatalf("v1 other body: %v", err)
		}
	})
	t.Run("skew", func(t *testing.T) {
		for _, d := range []time.Duration{MaxSkew + time.Millisecond, -MaxSkew - time.Millisecond} {
			old := &Signer{Key: key, Replica: fromID, Now: func() time.Time { return c.t.Add(d) }}
			r := signed(t, old, selfID, "POST", "/_peer/deliver", body)
			if _, err := v.Verify(r, body); !errors.Is(err, errAuth) || !strings.Contains(err.Error(), "clock") {
				t.Fatalf("skew %s: %v", d, err)
			}
		}
		// Within the window it passes.
		near := &Signer{Key: key, Replica: fromID, Now: func() time.Time { return c.t.Add(-MaxSkew + time.Second) }}
		if _, err := v.Verify(signed(t, near, selfID, "POST", "/_peer/deliver", body), body); err != nil {
			t.Fatalf("within the window: %v", err)
		}
	})
	t.Run("wrong key", func(t *testing.T) {
		other := &Signer{Key: bytes.Repeat([]byte{8}, 32), Replica: fromID, Now: c.now}
		if _, err := v.Verify(signed(t, other, selfID, "POST", "/_peer/deliver", body), body); !errors.Is(err, errAuth) || !strings.Contains(err.Error(), "signature") {
			t.Fatalf("wrong key: %v", err)
		}
	})
	t.Run("changed request", func(t *testing.T) {
		r := signed(t, s, selfID, "POST", "/_peer/deliver", body)
		if _, err := v.Verify(r, []byte(`{"x":2}`)); !errors.Is(err, errAuth) {
			t.Fatalf("other body: %v", err)
		}
		r = signed(t, s, selfID, "GET", "/_peer/tunnel?instanceId=i-1&port=22", nil)
		r.URL.RawQuery = "instanceId=i-1&port=5432"
		if _, err := v.Verify(r, nil); !errors.Is(err, errAuth) {
			t.Fatalf("other query: %v", err)
		}
		r = signed(t, s, selfID, "POST", "/_peer/deliver", body)
		r.Header.Set(AuthHeader, strings.Replace(r.Header.Get(AuthHeader), "replica="+fromID, "replica=abc124", 1))
		if _, err := v.Verify(r, body); !errors.Is(err, errAuth) {
			t.Fatalf("other replica: %v", err)
		}
	})
	t.Run("missing or doubled", func(t *testing.T) {
		r := httptest.NewRequest("POST", "/_peer/deliver", nil)
		if _, err := v.Verify(r, nil); !errors.Is(err, errAuth) {
			t.Fatalf("no header: %v", err)
		}
		r = signed(t, s, selfID, "POST", "/_peer/deliver", body)
		r.Header.Add(AuthHeader, r.Header.Get(AuthHeader))
		if _, err := v.Verify(r, body); !errors.Is(err, errAuth) {
			t.Fatalf("two headers: %v", err)
		}
	})
	t.Run("prune", func(t *testing.T) {
		v := NewVerifier(key, selfID, c.now)
		if _, err := v.Verify(signed(t, s, selfID, "POST", "/p", nil), nil); err != nil {
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

func TestSignTarget(t *testing.T) {
	s := &Signer{Key: key, Replica: fromID, Now: time.Now}
	for _, to := range []string{"", "ABC", "a b", strings.Repeat("a", 65), "a\nb"} {
		r := httptest.NewRequest("POST", "/_peer/deliver", nil)
		if err := s.Sign(r, to, nil); err == nil || r.Header.Get(AuthHeader) != "" {
			t.Errorf("Sign(to=%q) = %v, header %q", to, err, r.Header.Get(AuthHeader))
		}
	}
}

// format writes a parsed header back in the one form ParseAuth accepts.
func format(a Auth) string {
	to := ""
	if a.Version == V2 {
		to = " to=" + a.To
	}
	return a.Version + " replica=" + a.Replica + to + " ts=" + a.TS + " nonce=" + a.Nonce + " sig=" + hex.EncodeToString(a.Sig)
}

func TestParseAuth(t *testing.T) {
	sig := strings.Repeat("ab", 32)
	good := "v2 replica=abc to=def ts=1764331200000 nonce=00112233445566778899aabbccddeeff sig=" + sig
	a, err := ParseAuth(good)
	if err != nil || a.Version != V2 || a.Replica != "abc" || a.To != "def" || a.Time.UnixMilli() != 1764331200000 || a.TS != "1764331200000" || len(a.Sig) != 32 {
		t.Fatalf("ParseAuth(good) = %+v, %v", a, err)
	}
	goodV1 := "v1 replica=abc ts=1764331200000 nonce=00112233445566778899aabbccddeeff sig=" + sig
	a, err = ParseAuth(goodV1)
	if err != nil || a.Version != V1 || a.Replica != "abc" || a.To != "" || a.TS != "1764331200000" {
		t.Fatalf("ParseAuth(goodV1) = %+v, %v", a, err)
	}
	for _, bad := range []string{
		"",
		"v3" + good[2:],
		"v1" + good[2:],   // v1 has no to=
		"v2" + goodV1[2:], // v2 must have it
		"V2" + good[2:],
		strings.Replace(good, "replica=abc", "replica=ABC", 1),
		strings.Replace(good, "replica=abc", "replica=", 1),
		strings.Replace(good, "to=def", "to=", 1),
		strings.Replace(good, "to=def", "to=DEF", 1),
		strings.Replace(good, "to=def", "to="+strings.Repeat("d", 65), 1),
		strings.Replace(good, "to=def", "target=def", 1),
		strings.Replace(good, "replica=abc to=def", "to=def replica=abc", 1),
		strings.Replace(good, "ts=1764331200000", "ts=-1", 1),
		strings.Replace(good, "ts=1764331200000", "ts=1e3", 1),
		strings.Replace(good, "nonce=00", "nonce=0", 1),
		strings.Replace(good, "nonce=00112233445566778899aabbccddeeff", "nonce=00112233445566778899AABBCCDDEEFF", 1),
		good + " extra=1",
		good + " ",
		strings.Replace(good, " ts=", "  ts=", 1),
		strings.Replace(good, " ts=", "\tts=", 1),
		strings.Replace(good, "sig=ab", "sig=zz", 1),
		"v1 ts=1 replica=abc nonce=00112233445566778899aabbccddeeff sig=" + sig,
		"v2 replica=abc to=def ts=1 nonce=00112233445566778899aabbccddeeff sig=" + sig + strings.Repeat("x", 512),
	} {
		if _, err := ParseAuth(bad); err == nil {
			t.Errorf("ParseAuth(%q) accepted", bad)
		}
	}
}

func FuzzParseAuth(f *testing.F) {
	f.Add("v2 replica=abc to=def ts=1764331200000 nonce=00112233445566778899aabbccddeeff sig=" + strings.Repeat("ab", 32))
	f.Add("v1 replica=abc ts=1764331200000 nonce=00112233445566778899aabbccddeeff sig=" + strings.Repeat("ab", 32))
	f.Add("v2 replica= to= ts= nonce= sig=")
	f.Add("v1 replica= ts= nonce= sig=")
	f.Add("v2 replica=a to=b ts=99999999999999999999 nonce=x sig=y")
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseAuth(s)
		if err != nil {
			return
		}
		// Whatever parses is in the one form Sign (or v1) writes: fields
		// valid, and written back it is the same text (the MAC covers
		// exactly what was sent, and there is one spelling of each
		// header). Only sig's hex may differ in case.
		if !validReplicaID(a.Replica) || len(a.Nonce) != 2*nonceLen || len(a.Sig) != 32 {
			t.Fatalf("ParseAuth(%q) = %+v", s, a)
		}
		switch a.Version {
		case V2:
			if !validReplicaID(a.To) {
				t.Fatalf("ParseAuth(%q): v2 without a valid target: %+v", s, a)
			}
		case V1:
			if a.To != "" {
				t.Fatalf("ParseAuth(%q): v1 with a target: %+v", s, a)
			}
		default:
			t.Fatalf("ParseAuth(%q): version %q", s, a.Version)
		}
		if back := format(a); !strings.EqualFold(back, s) || back[:len(back)-64] != s[:len(s)-64] {
			t.Fatalf("ParseAuth(%q) reads as %q: another layout accepted", s, back)
		}
		if a.Time.UnixMilli() < 0 || strconv.FormatInt(a.Time.UnixMilli(), 10) != strings.TrimLeft(a.TS, "0") && a.TS != strings.Repeat("0", len(a.TS)) {
			t.Fatalf("ParseAuth(%q): ts %q read as %v", s, a.TS, a.Time)
		}
	})
}
