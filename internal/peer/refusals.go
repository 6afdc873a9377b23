package peer

import (
	"net"
	"net/http"
	"sync"
	"time"
)

// How refused peer requests are logged. Without --peer-listen the peer API
// is on the public listener, where anyone can send requests that are
// refused; a WARN line for each would let them fill the log (and the disk
// under it). So at WARN go the first refusal from each source address in
// refusalEvery, and at most refusalBurst lines in refusalEvery over all
// sources (many addresses, e.g. from an IPv6 prefix, must not get around
// the per-source limit); the rest go to DEBUG and are counted: in the next
// WARN line (notLogged), and in Refused (the metric
// kaginashi_peer_requests_refused_total), so refusals stay visible.
const (
	refusalEvery = time.Minute
	refusalBurst = 20
	// maxRefusalSources bounds the sources remembered; a source beyond it
	// is not remembered, and only refusalBurst limits its lines.
	maxRefusalSources = 1024
)

// refusalLog decides which refusals are logged at WARN. Its clock is the
// router's (injectable); a clock that steps back ends the current window
// rather than extending it.
type refusalLog struct {
	mu          sync.Mutex
	total       uint64
	windowStart time.Time
	lines       int                  // WARN lines in the current window
	last        map[string]time.Time // source → its last WARN line
	notLogged   uint64               // refusals not at WARN since the last WARN line
}

func newRefusalLog() *refusalLog { return &refusalLog{last: map[string]time.Time{}} }

// within says whether now is less than refusalEvery after t (and not
// before it: a stepped-back clock does not silence a source for longer).
func within(t, now time.Time) bool {
	return !now.Before(t) && now.Sub(t) < refusalEvery
}

// note counts a refusal from source at now and says whether to log it at
// WARN; when it does, notLogged is how many were not since the last one.
func (l *refusalLog) note(source string, now time.Time) (warn bool, notLogged uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total++
	if !within(l.windowStart, now) {
		l.windowStart, l.lines = now, 0
		for s, t := range l.last {
			if !within(t, now) {
				delete(l.last, s)
			}
		}
	}
	prev, known := l.last[source]
	if (known && within(prev, now)) || l.lines >= refusalBurst {
		l.notLogged++
		return false, 0
	}
	if known || len(l.last) < maxRefusalSources {
		l.last[source] = now
	}
	l.lines++
	notLogged, l.notLogged = l.notLogged, 0
	return true, notLogged
}

// count is the number of refusals so far.
func (l *refusalLog) count() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total
}

// refused logs a refused peer request: at WARN when the rate limit lets
// it, else at DEBUG.
func (r *Router) refused(req *http.Request, err error) {
	source := req.RemoteAddr
	if h, _, serr := net.SplitHostPort(source); serr == nil {
		source = h // one source per address, whatever its port
	}
	warn, notLogged := r.refusals.note(source, r.now())
	if !warn {
		r.log.Debug("peer request refused", "remote", req.RemoteAddr, "path", req.URL.Path, "err", err)
		return
	}
	args := []any{"remote", req.RemoteAddr, "path", req.URL.Path, "err", err}
	if notLogged > 0 {
		args = append(args, "refusedNotLogged", notLogged)
	}
	r.log.Warn("peer request refused (at most one line per source address a minute; all are counted in kaginashi_peer_requests_refused_total)", args...)
}

// Refused is how many peer requests this replica has refused since it
// started: kaginashi_peer_requests_refused_total.
func (r *Router) Refused() uint64 { return r.refusals.count() }
