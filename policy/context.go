package policy

import "strings"

// Context holds a request's condition keys. Key names are case-insensitive;
// a key may have several values (a multivalued key such as aws:TagKeys).
// Values are strings: each operator reads them as its own type, as IAM does.
//
// A Context is filled before evaluation and only read during it, so one
// Context may be evaluated from several goroutines at once.
//
// Lookups are on the evaluation hot path — a decision looks up a dozen keys —
// so instead of a Go map, whose lookup hashes the key every time, a Context
// keeps a small open-addressing table keyed by a hash that the compiled
// policy computed once for each key it uses.
type Context struct {
	entries []ctxEntry
	table   []int32 // index+1 into entries; 0 is empty. len is a power of 2.
}

type ctxEntry struct {
	key  string // lower case
	hash uint64
	vals []string
}

// NewContext returns an empty context.
func NewContext() *Context { return &Context{} }

// Set replaces key's values. Setting no values removes the key.
func (c *Context) Set(key string, values ...string) {
	k := strings.ToLower(key)
	h := keyHash(k)
	if i := c.find(k, h); i >= 0 {
		if len(values) == 0 {
			c.entries = append(c.entries[:i], c.entries[i+1:]...)
			c.rebuild()
			return
		}
		c.entries[i].vals = values
		return
	}
	if len(values) == 0 {
		return
	}
	c.insert(ctxEntry{key: k, hash: h, vals: values})
}

// Add appends one value to key.
func (c *Context) Add(key, value string) {
	k := strings.ToLower(key)
	h := keyHash(k)
	if i := c.find(k, h); i >= 0 {
		c.entries[i].vals = append(c.entries[i].vals, value)
		return
	}
	c.insert(ctxEntry{key: k, hash: h, vals: []string{value}})
}

// Get returns key's values, nil when absent.
func (c *Context) Get(key string) []string { return c.get(strings.ToLower(key)) }

// Keys returns the key names, in lower case, in the order they were added.
func (c *Context) Keys() []string {
	if c == nil {
		return nil
	}
	out := make([]string, len(c.entries))
	for i, e := range c.entries {
		out[i] = e.key
	}
	return out
}

// Len is the number of keys.
func (c *Context) Len() int {
	if c == nil {
		return 0
	}
	return len(c.entries)
}

func (c *Context) get(lower string) []string { return c.lookup(lower, keyHash(lower)) }

// lookup finds a lower-case key whose hash the caller computed beforehand.
func (c *Context) lookup(lower string, h uint64) []string {
	if c == nil {
		return nil
	}
	if i := c.find(lower, h); i >= 0 {
		return c.entries[i].vals
	}
	return nil
}

func (c *Context) find(lower string, h uint64) int {
	if len(c.table) == 0 {
		return -1
	}
	mask := uint64(len(c.table) - 1)
	for p := h & mask; ; p = (p + 1) & mask {
		idx := c.table[p]
		if idx == 0 {
			return -1
		}
		if e := &c.entries[idx-1]; e.hash == h && e.key == lower {
			return int(idx - 1)
		}
	}
}

func (c *Context) insert(e ctxEntry) {
	c.entries = append(c.entries, e)
	if 2*len(c.entries) > len(c.table) {
		c.rebuild()
		return
	}
	c.place(len(c.entries) - 1)
}

// rebuild sizes the table to keep it at most half full and re-places every
// entry.
func (c *Context) rebuild() {
	n := 8
	for n < 2*len(c.entries) {
		n *= 2
	}
	if len(c.table) != n {
		c.table = make([]int32, n)
	} else {
		clear(c.table)
	}
	for i := range c.entries {
		c.place(i)
	}
}

func (c *Context) place(i int) {
	mask := uint64(len(c.table) - 1)
	p := c.entries[i].hash & mask
	for c.table[p] != 0 {
		p = (p + 1) & mask
	}
	c.table[p] = int32(i + 1)
}

// single returns a key's value when it has exactly one: only single-valued
// keys can stand in policy variables.
func (c *Context) single(lower string, h uint64) (string, bool) {
	v := c.lookup(lower, h)
	if len(v) != 1 {
		return "", false
	}
	return v[0], true
}

// keyHash is FNV-1a, finished with a multiply-xorshift so that the low
// bits (the table index) depend on every byte. Key names come from policies
// and the server, not from the request's sender, so a keyed hash against
// flooding is not needed.
func keyHash(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	h ^= h >> 32
	h *= 0x9e3779b97f4a7c15
	return h ^ h>>29
}
