package console

import (
	"testing"

	"github.com/kaginashi/kaginashi/test/e2e/harness"
)

// TestRecreatedLoginProfileEndsSessions: a session is its password's. An
// administrator who deletes a user's console password and sets a new one
// (the way to reset a leaked one) before the old session's next request
// ends that session too: it began before the login profile that now
// exists. Before, the old session only ended if it happened to make a
// request while no profile existed.
func TestRecreatedLoginProfileEndsSessions(t *testing.T) {
	s := harness.StartServer(t, "sqlite", "--rate-limit=-1")
	root := newBrowser(t, s)
	if st, m := root.signIn(t, "root", s.Root.Secret, ""); st != 200 {
		t.Fatalf("root sign-in: %d %v", st, m)
	}
	const pw = "correct horse battery staple 44"
	root.aws(t, "iam", "CreateUser", map[string]any{"UserName": "leaked"})
	root.aws(t, "iam", "CreateLoginProfile", map[string]any{"UserName": "leaked", "Password": pw})
	old := newBrowser(t, s)
	if st, m := old.signIn(t, "leaked", pw, ""); st != 200 {
		t.Fatalf("sign-in: %d %v", st, m)
	}
	if st, m, _ := old.do(t, "GET", "/console/api/session", nil); st != 200 {
		t.Fatalf("session before: %d %v", st, m)
	}
	root.aws(t, "iam", "DeleteLoginProfile", map[string]any{"UserName": "leaked"})
	const pw2 = "another horse battery staple 45"
	root.aws(t, "iam", "CreateLoginProfile", map[string]any{"UserName": "leaked", "Password": pw2})
	if st, m, _ := old.do(t, "GET", "/console/api/session", nil); st != 401 || errCode(m) != "NotSignedIn" {
		t.Fatalf("the session from before the password was reset: %d %v, want 401 NotSignedIn", st, m)
	}
	// A sign-in with the new password works and stays signed in.
	fresh := newBrowser(t, s)
	if st, m := fresh.signIn(t, "leaked", pw2, ""); st != 200 {
		t.Fatalf("sign-in with the new password: %d %v", st, m)
	}
	if st, m, _ := fresh.do(t, "GET", "/console/api/session", nil); st != 200 {
		t.Fatalf("the new session: %d %v, want 200", st, m)
	}
}
