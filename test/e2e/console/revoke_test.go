package console

import (
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
