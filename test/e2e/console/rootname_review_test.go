package console

import (
	"net"
	"net/http"
	"testing"

	"github.com/kaginashi/kaginashi/test/e2e/harness"
)

// TestRootSpellingStillCountsPerName: only the account root's own sign-in
// ("root", as the console's verify tells it) counts per source address
// alone. A user named Root exists as an IAM user — the store finds it
// whatever the case of the name asked for — and a guesser asking for
// "ROOT" guesses that user's password, which must still back off per
// name; before, any spelling of root skipped the per-name count, so
// guesses spread over addresses went on unslowed.
func TestRootSpellingStillCountsPerName(t *testing.T) {
	s := harness.StartServer(t, "sqlite", "--rate-limit=-1")
	owner := newBrowser(t, s)
	if st, m := owner.signIn(t, "root", s.Root.Secret, ""); st != http.StatusOK {
		t.Fatalf("root sign-in: %d %v", st, m)
	}
	const pw = "correct horse battery staple 43"
	owner.aws(t, "iam", "CreateUser", map[string]any{"UserName": "Root"})
	owner.aws(t, "iam", "CreateLoginProfile", map[string]any{"UserName": "Root", "Password": pw})

	attacker := newBrowser(t, s)
	tr, ok := attacker.http.Transport.(*http.Transport)
	if !ok {
		t.Fatalf("the harness client's transport is a %T", attacker.http.Transport)
	}
	tr = tr.Clone()
	tr.DialContext = (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 3)}}).DialContext
	attacker.http.Transport = tr
	for i := range 3 {
		if st, m := attacker.signIn(t, "ROOT", "wrong password", ""); st != http.StatusUnauthorized {
			t.Fatalf("wrong password %d for ROOT from 127.0.0.3: %d %v, want 401", i+1, st, m)
		}
	}
	if st, m := newBrowser(t, s).signIn(t, "Root", pw, ""); st != http.StatusTooManyRequests {
		t.Fatalf("user Root's sign-in after 3 failures for ROOT from another address: %d %v, want 429 (the name backs off)", st, m)
	}
}
