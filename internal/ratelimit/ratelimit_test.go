package ratelimit

import (
	"testing"
	"time"
)

func TestLimiter(t *testing.T) {
	now := time.Unix(1000, 0)
	l := New(2, 3, func() time.Time { return now })
	for i := 0; i < 3; i++ {
		if !l.Allow("a") {
			t.Fatalf("call %d of the burst refused", i)
		}
	}
	if l.Allow("a") {
		t.Fatal("a fourth call within the same instant was allowed")
	}
	if !l.Allow("b") {
		t.Fatal("another key shares the bucket")
	}
	now = now.Add(time.Second) // 2 tokens back
	if !l.Allow("a") || !l.Allow("a") || l.Allow("a") {
		t.Fatal("refill rate is wrong")
	}
	now = now.Add(time.Hour) // idle buckets are forgotten
	l.Allow("c")
	if _, ok := l.buckets["b"]; ok {
		t.Error("idle bucket kept")
	}
	var off *Limiter
	if !off.Allow("x") || !New(0, 1, time.Now).Allow("x") {
		t.Error("a disabled limiter refuses")
	}
}
