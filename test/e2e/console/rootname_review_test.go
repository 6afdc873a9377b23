package console

import (
	"net"
	"net/http"
	"testing"

	"github.com/kaginashi/kaginashi/test/e2e/harness"
)

// TestRootSpellingStillCountsPerName: only the account root's own sign-in
// ("root" exactly, as the console's verify tells it) counts per source
// address alone. Any other spelling ("ROOT") is an IAM user's name — one
// made before CreateUser reserved "root" in any case can still exist —
// and guesses at it must back off per name; before, any spelling of root
// skipped the per-name count, so guesses spread over addresses went on
// unslowed.
func TestRootSpellingStillCountsPerName(t *testing.T) {
	s := harness.StartServer(t, "sqlite", "--rate-limit=-1")
	attacker := newBrowserFrom(t, s, net.IPv4(127, 0, 0, 3))
	for i := range 3 {
		if st, m := attacker.signIn(t, "ROOT", "wrong password", ""); st != http.StatusUnauthorized {
			t.Fatalf("wrong password %d for ROOT from 127.0.0.3: %d %v, want 401", i+1, st, m)
		}
	}
	if st, m := newBrowser(t, s).signIn(t, "ROOT", "another guess", ""); st != http.StatusTooManyRequests {
		t.Fatalf("a sign-in as ROOT after 3 failures for that name from another address: %d %v, want 429 (the name backs off)", st, m)
	}
	// The account root itself is not locked by them.
	if st, m := newBrowser(t, s).signIn(t, "root", s.Root.Secret, ""); st != http.StatusOK {
		t.Fatalf("root sign-in after failures for ROOT: %d %v, want 200", st, m)
	}
}
