package console

import (
	"net"
	"net/http"
	"path/filepath"
	"testing"

	"github.com/kaginashi/kaginashi/test/e2e/harness"
)

// TestDeletedLoginProfileEndsSessions: deleting a user's console password
// (DeleteLoginProfile) signs out that user's sessions at their next
// request, as deleting the user does. Before, a session outlived it by up
// to 12 hours.
func TestDeletedLoginProfileEndsSessions(t *testing.T) {
	s := harness.StartServer(t, "sqlite", "--rate-limit=-1")
	root := newBrowser(t, s)
	if st, m := root.signIn(t, "root", s.Root.Secret, ""); st != 200 {
		t.Fatalf("root sign-in: %d %v", st, m)
	}
	const pw = "correct horse battery staple 42"
	root.aws(t, "iam", "CreateUser", map[string]any{"UserName": "leaver"})
	root.aws(t, "iam", "CreateLoginProfile", map[string]any{"UserName": "leaver", "Password": pw})
	user := newBrowser(t, s)
	if st, m := user.signIn(t, "leaver", pw, ""); st != 200 {
		t.Fatalf("sign-in: %d %v", st, m)
	}
	if st, m, _ := user.do(t, "GET", "/console/api/session", nil); st != 200 {
		t.Fatalf("session before: %d %v", st, m)
	}
	root.aws(t, "iam", "DeleteLoginProfile", map[string]any{"UserName": "leaver"})
	if st, m, _ := user.do(t, "GET", "/console/api/session", nil); st != 401 || errCode(m) != "NotSignedIn" {
		t.Fatalf("session after DeleteLoginProfile: %d %v, want 401 NotSignedIn", st, m)
	}
	// A new password does not bring the old session back.
	root.aws(t, "iam", "CreateLoginProfile", map[string]any{"UserName": "leaver", "Password": pw})
	if st, m, _ := user.do(t, "GET", "/console/api/instances", nil); st != 401 {
		t.Fatalf("the old session after a new password: %d %v, want 401", st, m)
	}
}

// TestRootSignInNotLockedByOthers: failed root sign-ins from one address
// do not lock the account's owner out from another. Root's password is
// the root secret access key, which nobody guesses, so its failures count
// per source address only; before, they also counted for the name "root",
// and anyone could keep the owner out of the console.
func TestRootSignInNotLockedByOthers(t *testing.T) {
	s := harness.StartServer(t, "sqlite", "--rate-limit=-1")
	attacker := newBrowserFrom(t, s, net.IPv4(127, 0, 0, 2))
	for i := range 5 {
		if st, m := attacker.signIn(t, "root", "not-the-secret", ""); st != http.StatusUnauthorized {
			t.Fatalf("wrong root password %d from 127.0.0.2: %d %v, want 401", i+1, st, m)
		}
	}
	owner := newBrowser(t, s)
	if st, m := owner.signIn(t, "root", s.Root.Secret, ""); st != http.StatusOK {
		t.Fatalf("the owner's root sign-in from 127.0.0.1 after others' failures: %d %v, want 200", st, m)
	}
	// A user's name still counts: its password can be guessed.
	root := owner
	const pw = "correct horse battery staple 42"
	root.aws(t, "iam", "CreateUser", map[string]any{"UserName": "guessed"})
	root.aws(t, "iam", "CreateLoginProfile", map[string]any{"UserName": "guessed", "Password": pw})
	for range 3 {
		attacker.signIn(t, "guessed", "wrong password", "")
	}
	if st, m := newBrowser(t, s).signIn(t, "guessed", pw, ""); st != http.StatusTooManyRequests {
		t.Fatalf("a user's sign-in after 3 failures for its name: %d %v, want 429 (backoff)", st, m)
	}
}

// TestSignInFloodAuditBounded: sign-ins refused as TooManyAttempts (no
// password check: cheap to send in a flood) are audited within their
// source's --unauthenticated-audit-rate budget and summed up beyond it,
// like the API's unauthenticated calls; before, each was an audit row, so
// anyone could fill the disk through the sign-in page.
func TestSignInFloodAuditBounded(t *testing.T) {
	auditLog := filepath.Join(t.TempDir(), "audit.jsonl")
	s := harness.StartServer(t, "sqlite", "--rate-limit=-1", "--audit-log", auditLog,
		"--unauthenticated-audit-rate", "0.01", "--unauthenticated-audit-burst", "3")
	b := newBrowser(t, s)
	refused := 0
	for range 30 {
		if st, _ := b.signIn(t, "nobody-here", "wrong password", ""); st == http.StatusTooManyRequests {
			refused++
		}
	}
	if refused < 20 {
		t.Fatalf("only %d of 30 sign-ins were refused as TooManyAttempts; the test needs a flood", refused)
	}
	n := 0
	for _, ev := range events(t, auditLog, "ConsoleLogin") {
		if ev["errorCode"] == "TooManyAttempts" {
			n++
		}
	}
	if n > 3 {
		t.Fatalf("%d TooManyAttempts sign-ins audited one by one with a burst of 3 (of %d refused)", n, refused)
	}
	if n == 0 {
		t.Fatal("no TooManyAttempts sign-in audited: the budget's first ones must be")
	}
}
