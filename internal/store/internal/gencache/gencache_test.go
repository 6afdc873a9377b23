package gencache

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestCacheReadsOncePerMaxAge(t *testing.T) {
	clk := &clock{t: time.Unix(1000, 0)}
	c := New(250*time.Millisecond, clk.now)
	db, reads := int64(7), 0
	read := func(context.Context) (int64, error) { reads++; return db, nil }
	get := func() int64 {
		t.Helper()
		v, err := c.Get(t.Context(), read)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	if v := get(); v != 7 || reads != 1 {
		t.Fatalf("first Get: %d after %d reads, want 7 after 1", v, reads)
	}
	db = 9 // a write elsewhere
	clk.add(100 * time.Millisecond)
	if v := get(); v != 7 || reads != 1 {
		t.Fatalf("Get within maxAge: %d after %d reads, want the cached 7 after 1", v, reads)
	}
	clk.add(150 * time.Millisecond)
	if v := get(); v != 9 || reads != 2 {
		t.Fatalf("Get at maxAge: %d after %d reads, want 9 after 2", v, reads)
	}
	// A local write is seen at once, without a read.
	c.Bumped(10)
	if v := get(); v != 10 || reads != 2 {
		t.Fatalf("Get after Bumped(10): %d after %d reads, want 10 after 2", v, reads)
	}
	// A read that returns an older value (it started before the local
	// commit) does not move the generation back.
	clk.add(time.Second)
	if v := get(); v != 10 || reads != 3 {
		t.Fatalf("Get after a stale read: %d after %d reads, want 10 after 3", v, reads)
	}
	// A clock stepping back does not extend the cache's life.
	clk.add(-time.Hour)
	if get(); reads != 4 {
		t.Fatalf("after the clock went back: %d reads, want 4", reads)
	}
}

func TestCacheZeroMaxAgeAlwaysReads(t *testing.T) {
	c := New(0, nil)
	reads := 0
	for range 3 {
		if _, err := c.Get(t.Context(), func(context.Context) (int64, error) { reads++; return 1, nil }); err != nil {
			t.Fatal(err)
		}
	}
	if reads != 3 {
		t.Fatalf("%d reads, want 3", reads)
	}
}

func TestCacheErrorIsNotCached(t *testing.T) {
	c := New(time.Hour, nil)
	boom := errors.New("boom")
	if _, err := c.Get(t.Context(), func(context.Context) (int64, error) { return 0, boom }); !errors.Is(err, boom) {
		t.Fatalf("Get: %v, want boom", err)
	}
	v, err := c.Get(t.Context(), func(context.Context) (int64, error) { return 3, nil })
	if err != nil || v != 3 {
		t.Fatalf("Get after a failed read: %d, %v; want 3", v, err)
	}
}
