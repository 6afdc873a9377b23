package console

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/kaginashi/kaginashi/test/e2e/harness"
)

// forwardedFor is a transport that says, as a trusted proxy would, that
// each request comes from the next address addr gives.
type forwardedFor struct {
	rt   http.RoundTripper
	n    int
	addr func(int) string
}

func (f *forwardedFor) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("X-Forwarded-For", f.addr(f.n))
	f.n++
	return f.rt.RoundTrip(r)
}

// TestSignInFailuresCountPerIPv6Prefix: a guesser spraying passwords at
// many user names (one guess each, under every name's own limit) from
// many addresses of one IPv6 /64 — which one host holds all of — is
// slowed down as one source. Before, each address counted alone, so the
// address limit (backoff after 15 failures) never applied.
func TestSignInFailuresCountPerIPv6Prefix(t *testing.T) {
	s := harness.StartServer(t, "sqlite", "--rate-limit=-1", "--trusted-proxy=127.0.0.1/32")
	b := newBrowser(t, s)
	b.http.Transport = &forwardedFor{rt: b.http.Transport, addr: func(i int) string { return fmt.Sprintf("2001:db8:5:6::%x", i+1) }}
	for i := range 15 {
		if st, m := b.signIn(t, fmt.Sprintf("spray%d", i), "Winter2026!", ""); st != http.StatusUnauthorized {
			t.Fatalf("guess %d: %d %v, want 401", i+1, st, m)
		}
	}
	if st, m := b.signIn(t, "spray15", "Winter2026!", ""); st != http.StatusTooManyRequests {
		t.Fatalf("the 16th guess from the same /64 (another address): %d %v, want 429 (the source backs off)", st, m)
	}
	// Another /64 is another source.
	other := newBrowser(t, s)
	other.http.Transport = &forwardedFor{rt: other.http.Transport, addr: func(int) string { return "2001:db8:5:7::1" }}
	if st, m := other.signIn(t, "spray16", "Winter2026!", ""); st != http.StatusUnauthorized {
		t.Fatalf("a guess from another /64: %d %v, want 401", st, m)
	}
}
