package peer

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/kaginashi/kaginashi/internal/gateway"
	"github.com/kaginashi/kaginashi/internal/syncbuf"
)

// unsigned is a request anyone can send to the peer API: no auth header.
func unsigned(remote string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, pathRevoke, strings.NewReader("{}"))
	r.RemoteAddr = remote
	return r
}

func warnLines(log string) int { return strings.Count(log, "level=WARN msg=\"peer request refused") }

// Refused requests flood no log: the first per source address a minute is
// logged at WARN, the rest are counted (and at DEBUG), and the next WARN
// line says how many were not logged. Before the limit every refusal was
// a WARN line.
func TestRefusalLogRateLimited(t *testing.T) {
	start := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	c := &clock{start}
	b, blog := replica(t, otherB, c)

	for i := range 100 {
		// Another port each time: one source is one address.
		if status, _ := serve(t, b, unsigned(fmt.Sprintf("203.0.113.7:%d", 40000+i))); status != http.StatusUnauthorized {
			t.Fatalf("request %d: %d, want 401", i, status)
		}
	}
	if n := warnLines(blog.String()); n != 1 {
		t.Fatalf("100 refusals from one source: %d WARN lines, want 1:\n%s", n, blog)
	}
	if got := b.Refused(); got != 100 {
		t.Fatalf("Refused() = %d, want 100", got)
	}
	// Another source is logged at once.
	serve(t, b, unsigned("198.51.100.9:5000"))
	if n := warnLines(blog.String()); n != 2 || !strings.Contains(blog.String(), "remote=198.51.100.9:5000") {
		t.Fatalf("a second source: %d WARN lines:\n%s", n, blog)
	}
	// A minute later the first is logged again, with the count of those
	// that were not.
	c.t = start.Add(refusalEvery)
	serve(t, b, unsigned("203.0.113.7:1"))
	if n := warnLines(blog.String()); n != 3 || !strings.Contains(blog.String(), "refusedNotLogged=99") {
		t.Fatalf("a minute later: %d WARN lines, want 3 with refusedNotLogged=99:\n%s", n, blog)
	}
	// A clock stepped back does not silence a source for the step.
	c.t = start.Add(-time.Hour)
	serve(t, b, unsigned("203.0.113.7:2"))
	if n := warnLines(blog.String()); n != 4 {
		t.Fatalf("after the clock stepped back: %d WARN lines, want 4:\n%s", n, blog)
	}
	if got := b.Refused(); got != 103 {
		t.Fatalf("Refused() = %d, want 103", got)
	}
}

// Many sources (an IPv6 prefix holds plenty) get at most refusalBurst
// WARN lines a minute between them.
func TestRefusalLogBurst(t *testing.T) {
	start := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	c := &clock{start}
	b, blog := replica(t, otherB, c)
	for i := range 3 * refusalBurst {
		serve(t, b, unsigned(fmt.Sprintf("[2001:db8::%x]:443", i+1)))
	}
	if n := warnLines(blog.String()); n != refusalBurst {
		t.Fatalf("%d sources in a minute: %d WARN lines, want %d", 3*refusalBurst, n, refusalBurst)
	}
	c.t = start.Add(refusalEvery + time.Second)
	serve(t, b, unsigned("[2001:db8::ffff]:443"))
	if n := warnLines(blog.String()); n != refusalBurst+1 || !strings.Contains(blog.String(), fmt.Sprintf("refusedNotLogged=%d", 2*refusalBurst)) {
		t.Fatalf("the next minute: %d WARN lines:\n%s", n, blog)
	}
	if got := b.Refused(); got != uint64(3*refusalBurst+1) {
		t.Fatalf("Refused() = %d", got)
	}
	// The sources remembered stay bounded.
	for i := range 2 * maxRefusalSources {
		c.t = c.t.Add(refusalEvery / time.Duration(4*maxRefusalSources))
		serve(t, b, unsigned(fmt.Sprintf("[2001:db8:1::%x]:443", i+1)))
	}
	if n := len(b.refusals.last); n > maxRefusalSources {
		t.Fatalf("%d sources remembered, more than %d", n, maxRefusalSources)
	}
}

// With Config.RefuseV1 (--peer-auth-v1=false) a replica still signing v1
// is refused, and the log says why; LastV1 stays zero.
func TestServeHTTPRefuseV1(t *testing.T) {
	c := &clock{time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)}
	b, _ := replica(t, otherB, c)
	b2, blog := replicaRefusingV1(t, otherB, c)
	body := []byte(`{"instanceId":"i-0123456789abcdef0","requestId":"req-1"}`)
	r := signedV1(t, "old999", c.t, http.MethodPost, pathRevoke, body)
	if status, pe := serve(t, b2, r); status != http.StatusUnauthorized || pe.Message != errAuth.Error() {
		t.Fatalf("v1 at a replica refusing it: %d %+v; want 401", status, pe)
	}
	if !strings.Contains(blog.String(), "--peer-auth-v1=false") || !strings.Contains(blog.String(), "level=WARN") {
		t.Fatalf("the refusal's reason is not logged:\n%s", blog)
	}
	if !b2.LastV1().IsZero() {
		t.Fatal("a refused v1 request moved LastV1")
	}
	// The default still accepts it (this release).
	r = signedV1(t, "old999", c.t.Add(time.Millisecond), http.MethodPost, pathRevoke, body)
	if status, pe := serve(t, b, r); status != http.StatusServiceUnavailable || pe.Code != "NotConnected" {
		t.Fatalf("v1 at a default replica: %d %+v; want it authenticated", status, pe)
	}
}

// replicaRefusingV1 is replica's router with Config.RefuseV1.
func replicaRefusingV1(t *testing.T, id string, c *clock) (*Router, *syncbuf.Buffer) {
	t.Helper()
	logs := &syncbuf.Buffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	gw := gateway.New(nil, nil, nil, log, c.now)
	r, err := New(Config{ReplicaID: id, PeerURL: "https://" + id + ".replicas.test:8443", Key: key, RefuseV1: true}, gw, nil, nil, log, c.now)
	if err != nil {
		t.Fatal(err)
	}
	return r, logs
}
