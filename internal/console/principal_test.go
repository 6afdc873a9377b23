package console

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/kaginashi/kaginashi/internal/store"
)

// profileStore holds one user and, maybe, its login profile.
type profileStore struct {
	store.Store
	user    store.User
	profile *store.LoginProfile
}

func (s *profileStore) GetUser(_ context.Context, name string) (store.User, error) {
	if name != s.user.Name {
		return store.User{}, store.ErrNotFound
	}
	return s.user, nil
}

func (s *profileStore) GetLoginProfile(_ context.Context, name string) (store.LoginProfile, error) {
	if name != s.user.Name || s.profile == nil {
		return store.LoginProfile{}, store.ErrNotFound
	}
	return *s.profile, nil
}

// A session lives as long as the login profile it began with, whatever
// the clocks: replicas' clocks disagree, so the profile's CreateDate
// (written by the replica that made it) is compared with the one the
// session began with, never with the session's own start on this
// replica's clock.
func TestSessionEndsWithItsLoginProfile(t *testing.T) {
	signedIn := time.Date(2026, 11, 29, 3, 0, 0, 0, time.UTC)
	st := &profileStore{user: store.User{ID: "AIDAEXAMPLEEXAMPLE1", Name: "alice", Path: "/"}}
	c := &Console{cfg: Config{Account: "123456789012"}, deps: Deps{Store: st}}

	// The profile was made on a replica whose clock is 2 s ahead of this
	// one's: its CreateDate is after the session began here.
	made := signedIn.Add(2 * time.Second)
	st.profile = &store.LoginProfile{UserName: "alice", CreateDate: made}
	sess := Session{UserName: "alice", UserID: st.user.ID, Created: signedIn, ProfileCreated: made}
	if p, err := c.principal(t.Context(), sess); err != nil || p.UserName != "alice" {
		t.Fatalf("the session's own profile, made on a clock ahead: %v, %v; want alice", p, err)
	}

	// Deleted and made again on a replica whose clock is 10 s behind:
	// its CreateDate is before the session began here, and it is another
	// profile all the same.
	st.profile = &store.LoginProfile{UserName: "alice", CreateDate: signedIn.Add(-10 * time.Second)}
	if _, err := c.principal(t.Context(), sess); !errors.Is(err, ErrNoSession) {
		t.Fatalf("a re-created profile with an earlier CreateDate: %v; want ErrNoSession", err)
	}

	// Deleted: the session ends.
	st.profile = nil
	if _, err := c.principal(t.Context(), sess); !errors.Is(err, ErrNoSession) {
		t.Fatalf("no profile: %v; want ErrNoSession", err)
	}
}
