// Package instcache keeps instances a store engine read for
// SendSSHPublicKey in memory, valid while the inventory generation is
// unchanged.
//
// Every change to an instance or a resource tag bumps the generation in
// the same transaction (triggers in migration 0004), whoever makes it. A
// cached instance is used only while the generation, as last read, is the
// one it was loaded under. The generation itself is read through a
// gencache.Cache: a write through the same engine handle invalidates it
// (the next lookup reads the database), so a caller that tags or stops an
// instance and then pushes a key always sees its change; writes by other
// replicas are seen at most gencache.DefaultMaxAge (250 ms) later — the
// same bound as for IAM policies, and for the same reason.
//
// Heartbeats move only last_seen and do not bump the generation: a cached
// instance's LastSeen may lag behind the database.
package instcache

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/kaginashi/kaginashi/internal/store"
	"github.com/kaginashi/kaginashi/internal/store/internal/gencache"
)

// MaxEntries bounds the cache: when it is full, it starts over. Only
// instances that exist are kept, so unknown IDs cannot fill it.
const MaxEntries = 16384

// Cache is one engine handle's cache.
type Cache struct {
	gen      *gencache.Cache
	readGen  func(context.Context) (int64, error)
	load     func(context.Context, string) (store.Instance, error)
	mu       sync.Mutex
	entryGen int64 // the generation the entries were loaded under
	m        map[string]store.Instance
}

// New makes a cache. readGen reads the generation row; load is the
// engine's uncached GetInstance. maxAge is how long a generation read is
// trusted (0: read it on every lookup); now is the clock (nil: time.Now).
func New(maxAge time.Duration, now func() time.Time, readGen func(context.Context) (int64, error),
	load func(context.Context, string) (store.Instance, error)) *Cache {
	return &Cache{gen: gencache.New(maxAge, now), readGen: readGen, load: load, m: map[string]store.Instance{}}
}

// Invalidate is called after every inventory write through the engine
// handle (whether or not it committed): the next Get reads the generation.
func (c *Cache) Invalidate() { c.gen.Invalidate() }

// Get returns the instance with its tags, from memory when the generation
// has not moved since it was loaded. The caller may keep and change the
// result: it is a copy.
func (c *Cache) Get(ctx context.Context, id string) (store.Instance, error) {
	// The generation is read before the instance: the row read afterwards
	// is at least as new as the generation it is filed under, never older.
	g, err := c.gen.Get(ctx, c.readGen)
	if err != nil {
		return store.Instance{}, err
	}
	c.mu.Lock()
	if c.entryGen != g {
		// Something changed: nothing loaded before is known to be
		// current.
		clear(c.m)
		c.entryGen = g
	}
	in, ok := c.m[id]
	c.mu.Unlock()
	if ok {
		return clone(in), nil
	}
	in, err = c.load(ctx, id)
	if err != nil {
		return in, err
	}
	c.mu.Lock()
	if c.entryGen == g {
		if len(c.m) >= MaxEntries {
			clear(c.m)
		}
		c.m[id] = clone(in)
	}
	c.mu.Unlock()
	return in, nil
}

func clone(in store.Instance) store.Instance {
	in.Tags = slices.Clone(in.Tags)
	in.HostKeys = slices.Clone(in.HostKeys)
	return in
}
