package gateway

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kaginashi/kaginashi/internal/apierr"
	"github.com/kaginashi/kaginashi/internal/store/sqlite"
)

// TestTokenRefusals: every unusable token is the agent's fault (403 with
// the reason), never the server's (500).
func TestTokenRefusals(t *testing.T) {
	db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "t.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	now := time.Now()
	tokens := NewTokens(db, func() time.Time { return now })
	nt, err := tokens.Create(t.Context(), "arn:aws:iam::123456789012:root", 2*time.Second, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tokens.use(t.Context(), nt.Token); err != nil {
		t.Fatalf("first use: %v", err)
	}
	refused := func(what, token, want string) {
		t.Helper()
		_, err := tokens.use(t.Context(), token)
		if err == nil {
			t.Fatalf("%s: accepted", what)
		}
		if k := apierr.KindOf(err); k != apierr.AccessDenied {
			t.Errorf("%s: kind %v, want AccessDenied (%v)", what, k, err)
		}
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %q does not say %q", what, err, want)
		}
	}
	refused("used up", nt.Token, "expired, revoked or used up")
	refused("garbage", "not-a-token", "malformed")
	id, _, _ := SplitToken(nt.Token)
	refused("unknown secret", id+"."+strings.Repeat("x", 40), "not valid")

	nt2, err := tokens.Create(t.Context(), "arn:aws:iam::123456789012:root", 2*time.Second, 5, nil)
	if err != nil {
		t.Fatal(err)
	}
	now = now.Add(3 * time.Second)
	refused("expired", nt2.Token, "expired, revoked or used up")

	if _, err := tokens.Create(t.Context(), "x", 500*time.Millisecond, 1, nil); apierr.KindOf(err) != apierr.InvalidInput {
		t.Errorf("a sub-second lifetime: %v", err)
	}
}
