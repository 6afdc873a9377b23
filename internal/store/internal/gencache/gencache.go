// Package gencache keeps a store engine's IAM generation in memory, so that
// the authorizer's cache check — three times per API call — costs a mutex
// instead of a database round trip.
//
// The value is exact for writes made through the same engine handle: each
// IAM write reports the generation it committed (Bumped) before it
// returns, so a caller that changes a policy and then makes a request
// always sees the change. Writes made elsewhere — another server replica
// on the same PostgreSQL database, an admin tool on the same SQLite file —
// are seen at the next read of the database, at most MaxAge after the
// previous one. AWS IAM itself is eventually consistent over seconds; a
// replica acting on permissions up to MaxAge old (250 ms by default) is
// the price of not reading the generation row on every request.
package gencache

import (
	"context"
	"sync"
	"time"
)

// DefaultMaxAge is how long a generation read from the database is used
// before it is read again.
const DefaultMaxAge = 250 * time.Millisecond

// Cache is one engine handle's view of the IAM generation.
type Cache struct {
	maxAge time.Duration
	now    func() time.Time

	mu     sync.Mutex
	value  int64
	readAt time.Time // when the database read behind value started; zero: never
	// epoch counts Invalidate calls: a read that started before the
	// latest one does not make the value fresh again.
	epoch uint64
}

// New makes a cache whose database reads are used for maxAge (0 or less:
// never cached, every Get reads). now is the clock (time.Now when nil).
func New(maxAge time.Duration, now func() time.Time) *Cache {
	if now == nil {
		now = time.Now
	}
	return &Cache{maxAge: maxAge, now: now}
}

// Get returns the generation, calling read when the last database read is
// older than maxAge. The generation only grows, so a read that started
// before a local write committed cannot move the value back.
func (c *Cache) Get(ctx context.Context, read func(context.Context) (int64, error)) (int64, error) {
	start := c.now()
	c.mu.Lock()
	if !c.readAt.IsZero() && start.Sub(c.readAt) < c.maxAge && start.Sub(c.readAt) >= 0 {
		v := c.value
		c.mu.Unlock()
		return v, nil
	}
	epoch := c.epoch
	c.mu.Unlock()
	v, err := read(ctx)
	if err != nil {
		return 0, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if v > c.value {
		c.value = v
	}
	// The read saw everything committed before it started.
	if start.After(c.readAt) && epoch == c.epoch {
		c.readAt = start
	}
	return c.value, nil
}

// Invalidate makes the next Get read the database: for a counter that
// triggers bump, so that a write through this handle learns no new value.
// Reads already under way when it is called do not count as fresh.
func (c *Cache) Invalidate() {
	c.mu.Lock()
	c.readAt = time.Time{}
	c.epoch++
	c.mu.Unlock()
}

// Bumped records a generation this handle's own write committed. It does
// not count as a database read: writes from elsewhere are still looked for
// on schedule.
func (c *Cache) Bumped(v int64) {
	c.mu.Lock()
	if v > c.value {
		c.value = v
	}
	c.mu.Unlock()
}
