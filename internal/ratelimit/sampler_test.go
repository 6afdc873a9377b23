package ratelimit

import (
	"fmt"
	"testing"
	"time"
)

func TestSamplerBudgetAndTally(t *testing.T) {
	now := time.Unix(1000, 0)
	s := NewSampler(1, 3, 0, func() time.Time { return now })
	for i := 0; i < 3; i++ {
		if !s.Allow("10.0.0.1", "MissingAuthenticationToken") {
			t.Fatalf("call %d of the burst refused", i)
		}
	}
	first := now
	if s.Allow("10.0.0.1", "MissingAuthenticationToken") {
		t.Fatal("a call beyond the burst was admitted")
	}
	now = now.Add(100 * time.Millisecond)
	if s.Allow("10.0.0.1", "SignatureDoesNotMatch") {
		t.Fatal("a call beyond the burst was admitted")
	}
	if !s.Allow("10.0.0.2", "MissingAuthenticationToken") {
		t.Fatal("another source shares the bucket")
	}
	if got := s.Refused(); got != 2 {
		t.Fatalf("Refused = %d, want 2", got)
	}
	ts := s.Drain()
	if len(ts) != 1 {
		t.Fatalf("Drain = %+v, want one tally", ts)
	}
	tl := ts[0]
	if tl.Key != "10.0.0.1" || tl.Count != 2 || !tl.First.Equal(first) || !tl.Last.Equal(now) ||
		tl.Codes["MissingAuthenticationToken"] != 1 || tl.Codes["SignatureDoesNotMatch"] != 1 {
		t.Fatalf("tally = %+v", tl)
	}
	if ts := s.Drain(); len(ts) != 0 {
		t.Fatalf("a second Drain returned %+v, want nothing", ts)
	}
	// The bucket refills at the rate.
	now = now.Add(time.Second)
	if !s.Allow("10.0.0.1", "x") || s.Allow("10.0.0.1", "x") {
		t.Fatal("refill rate is wrong")
	}
}

func TestSamplerBoundedKeys(t *testing.T) {
	now := time.Unix(1000, 0)
	s := NewSampler(1, 1, 2, func() time.Time { return now })
	for _, k := range []string{"a", "b"} {
		if !s.Allow(k, "c") {
			t.Fatalf("%s's first call refused", k)
		}
	}
	// The table is full: c and d share the other keys' bucket.
	if !s.Allow("c", "c") {
		t.Fatal("the other keys' first call refused")
	}
	if s.Allow("d", "c") || s.Allow("c", "c") || s.Allow("a", "c") {
		t.Fatal("a call beyond the budget was admitted")
	}
	if len(s.keys) != 2 {
		t.Fatalf("%d keys tracked, want at most 2", len(s.keys))
	}
	ts := s.Drain()
	if len(ts) != 2 || ts[0].Key != "a" || ts[0].Count != 1 || ts[1].Key != "" || ts[1].Count != 2 {
		t.Fatalf("Drain = %+v, want a's 1 then the other keys' 2", ts)
	}
	// Once a and b are idle (full buckets, nothing tallied), they are
	// forgotten, and a new key gets a bucket of its own.
	now = now.Add(10 * time.Second)
	if !s.Allow("e", "c") || s.Allow("e", "c") {
		t.Fatal("e's budget is wrong")
	}
	if _, ok := s.keys["e"]; !ok {
		t.Fatal("a new key went to the other keys though idle keys could be forgotten")
	}
	if ts := s.Drain(); len(ts) != 1 || ts[0].Key != "e" {
		t.Fatalf("Drain = %+v, want e's tally", ts)
	}
}

func TestSamplerManyKeysStayBounded(t *testing.T) {
	now := time.Unix(1000, 0)
	s := NewSampler(0.001, 1, 100, func() time.Time { return now })
	for i := 0; i < 10000; i++ {
		k := fmt.Sprintf("2001:db8::%x", i)
		s.Allow(k, "c")
		s.Allow(k, "c")
	}
	if len(s.keys) > 100 {
		t.Fatalf("%d keys tracked, want at most 100", len(s.keys))
	}
	total := 0
	for _, tl := range s.Drain() {
		total += tl.Count
	}
	if uint64(total) != s.Refused() {
		t.Fatalf("tallies count %d, Refused says %d", total, s.Refused())
	}
}

func TestSamplerCodesBounded(t *testing.T) {
	now := time.Unix(1000, 0)
	s := NewSampler(0.001, 1, 0, func() time.Time { return now })
	s.Allow("a", "x")
	for i := 0; i < 100; i++ {
		s.Allow("a", fmt.Sprint("code", i))
	}
	tl := s.Drain()[0]
	if len(tl.Codes) > maxCodes+1 || tl.Count != 100 || tl.Codes[OtherCode] != 100-maxCodes {
		t.Fatalf("tally has %d codes, count %d, other %d", len(tl.Codes), tl.Count, tl.Codes[OtherCode])
	}
}

func TestSamplerRestore(t *testing.T) {
	now := time.Unix(1000, 0)
	s := NewSampler(0.001, 1, 0, func() time.Time { return now })
	s.Allow("a", "x")
	s.Allow("a", "x")
	ts := s.Drain()
	now = now.Add(time.Second)
	s.Allow("a", "y")
	s.Restore(ts)
	got := s.Drain()
	if len(got) != 1 || got[0].Count != 2 || got[0].Codes["x"] != 1 || got[0].Codes["y"] != 1 ||
		!got[0].First.Equal(time.Unix(1000, 0)) || !got[0].Last.Equal(now) {
		t.Fatalf("after Restore, Drain = %+v", got)
	}
}

func TestSamplerDisabled(t *testing.T) {
	s := NewSampler(0, 1, 0, nil)
	for i := 0; i < 1000; i++ {
		if !s.Allow("a", "x") {
			t.Fatal("a disabled sampler refused")
		}
	}
	var nilS *Sampler
	if !nilS.Allow("a", "x") || nilS.Drain() != nil || nilS.Refused() != 0 {
		t.Fatal("a nil sampler is not a disabled one")
	}
}
