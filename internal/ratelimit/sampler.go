package ratelimit

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// DefaultMaxKeys is how many keys a Sampler tracks one by one unless told
// otherwise: about 2 MB at most.
const DefaultMaxKeys = 10000

// maxCodes bounds one tally's codes; more distinct codes than this are
// counted under OtherCode. The callers' codes come from fixed tables, so
// this is a backstop, not a limit anyone should reach.
const maxCodes = 32

// OtherCode is the code under which a tally counts codes beyond maxCodes.
const OtherCode = "other"

// Sampler admits, per key, what a token bucket allows, and tallies what it
// does not admit so that the caller can report it in aggregate. It is what
// bounds the audit rows of calls nobody authenticated (one bucket per
// source address): within the budget each call is audited, beyond it they
// are counted, and a summary says how many.
//
// Memory is bounded: at most MaxKeys keys have buckets of their own; keys
// that arrive while the table is full share one bucket and one tally (the
// "other" keys). A key whose bucket is full again and whose tally is empty
// is forgotten (a new bucket for it would be the same), which is what
// makes room.
type Sampler struct {
	rate    rate.Limit
	burst   int
	maxKeys int
	now     func() time.Time

	mu    sync.Mutex
	keys  map[string]*sampled
	other sampled
	// sweep is when idle keys were last forgotten: at most once a second
	// while the table is full, so that a flood of new keys does not scan
	// it on every call.
	sweep time.Time

	refused atomic.Uint64
}

type sampled struct {
	lim   *rate.Limiter
	tally *Tally // nil: nothing refused since the last Drain
}

// Tally is what a Sampler did not admit for one key since the last Drain.
type Tally struct {
	// Key is the key, or "" for the keys that had no bucket of their own
	// (the table was full).
	Key         string
	Count       int
	First, Last time.Time
	// Codes counts the refused calls by the code the caller gave.
	Codes map[string]int
}

// NewSampler makes a sampler admitting perSecond calls per key with bursts
// of burst, tracking at most maxKeys keys one by one (<= 0:
// DefaultMaxKeys). perSecond <= 0 admits everything.
func NewSampler(perSecond float64, burst, maxKeys int, now func() time.Time) *Sampler {
	if burst < 1 {
		burst = 1
	}
	if maxKeys <= 0 {
		maxKeys = DefaultMaxKeys
	}
	if now == nil {
		now = time.Now
	}
	s := &Sampler{rate: rate.Limit(perSecond), burst: burst, maxKeys: maxKeys, now: now, keys: map[string]*sampled{}}
	s.other.lim = rate.NewLimiter(s.rate, s.burst)
	return s
}

// Budget is what the sampler admits per key: perSecond, with bursts of
// burst.
func (s *Sampler) Budget() (perSecond float64, burst int) { return float64(s.rate), s.burst }

// Enabled says whether the sampler refuses anything ever.
func (s *Sampler) Enabled() bool { return s != nil && s.rate > 0 }

// Allow takes a token from key's bucket. Without one, it counts the call
// under code in key's tally and returns false.
func (s *Sampler) Allow(key, code string) bool {
	if !s.Enabled() {
		return true
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.keys[key]
	if e == nil {
		if len(s.keys) >= s.maxKeys && now.Sub(s.sweep) >= time.Second {
			s.forgetIdle(now)
		}
		if len(s.keys) < s.maxKeys {
			e = &sampled{lim: rate.NewLimiter(s.rate, s.burst)}
			s.keys[key] = e
		} else {
			e = &s.other
		}
	}
	if e.lim.AllowN(now, 1) {
		return true
	}
	if e.tally == nil {
		k := key
		if e == &s.other {
			k = ""
		}
		e.tally = &Tally{Key: k, First: now, Codes: map[string]int{}}
	}
	e.tally.add(code, 1, now, now)
	s.refused.Add(1)
	return false
}

func (t *Tally) add(code string, n int, first, last time.Time) {
	if _, ok := t.Codes[code]; !ok && len(t.Codes) >= maxCodes {
		code = OtherCode
	}
	t.Codes[code] += n
	t.Count += n
	if first.Before(t.First) {
		t.First = first
	}
	if last.After(t.Last) {
		t.Last = last
	}
}

// forgetIdle drops the keys whose bucket is full and tally empty: a new
// bucket would be the same. Called with s.mu held.
func (s *Sampler) forgetIdle(now time.Time) {
	s.sweep = now
	for k, e := range s.keys {
		if e.tally == nil && e.lim.TokensAt(now) >= float64(s.burst) {
			delete(s.keys, k)
		}
	}
}

// Refused is how many calls the sampler has not admitted since it was
// made (a counter for metrics).
func (s *Sampler) Refused() uint64 {
	if s == nil {
		return 0
	}
	return s.refused.Load()
}

// Drain returns the tallies since the last Drain, by key, the other keys'
// last, and starts new ones; it also forgets idle keys.
func (s *Sampler) Drain() []Tally {
	if !s.Enabled() {
		return nil
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Tally
	for _, e := range s.keys {
		if e.tally != nil {
			out = append(out, *e.tally)
			e.tally = nil
		}
	}
	slices.SortFunc(out, func(a, b Tally) int {
		if a.Key < b.Key {
			return -1
		}
		if a.Key > b.Key {
			return 1
		}
		return 0
	})
	if s.other.tally != nil {
		out = append(out, *s.other.tally)
		s.other.tally = nil
	}
	s.forgetIdle(now)
	return out
}

// Restore gives back tallies that Drain returned and the caller could not
// report, so that the next Drain returns them again (merged with what was
// refused meanwhile). A key that has no bucket any more, and cannot get
// one, is merged into the other keys' tally.
func (s *Sampler) Restore(ts []Tally) {
	if !s.Enabled() {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range ts {
		e := &s.other
		if t.Key != "" {
			if e = s.keys[t.Key]; e == nil {
				if len(s.keys) < s.maxKeys {
					e = &sampled{lim: rate.NewLimiter(s.rate, s.burst)}
					s.keys[t.Key] = e
				} else {
					e = &s.other
				}
			}
		}
		if e.tally == nil {
			k := t.Key
			if e == &s.other {
				k = ""
			}
			e.tally = &Tally{Key: k, First: t.First, Last: t.Last, Codes: map[string]int{}}
		}
		for code, n := range t.Codes {
			e.tally.add(code, n, t.First, t.Last)
		}
	}
}
