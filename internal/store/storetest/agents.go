package storetest

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/kaginashi/kaginashi/internal/store"
)

func testInstanceAgentFacts(t *testing.T, s store.Store) {
	ctx := ctxOf(t)
	in := newInstance(1)
	in.AgentKey = "SHA256:uJgHe0jPcc8Hs3UVBCRDO0ExCb3fZ6aBm3U6ApDZhkM"
	in.DefaultUserExists = true
	in.SSHDConfigured = true
	in.ClockSkewMillis = -1234 // the host runs ahead
	must(t, s.PutInstance(ctx, in))
	must(t, s.PutInstance(ctx, newInstance(2))) // no agent facts: zero values
	got, err := s.GetInstance(ctx, in.ID)
	must(t, err)
	equal(t, "GetInstance with agent facts", got, in)
	list, _, err := s.ListInstances(ctx, store.InstanceFilter{})
	must(t, err)
	equal(t, "ListInstances with agent facts", list, []store.Instance{in, newInstance(2)})

	// SetInstanceState leaves them alone.
	must(t, s.SetInstanceState(ctx, in.ID, store.StateStopped, at(3*time.Hour)))
	got, err = s.GetInstance(ctx, in.ID)
	must(t, err)
	equal(t, "agent facts after SetInstanceState",
		[]any{got.AgentKey, got.DefaultUserExists, got.SSHDConfigured, got.ClockSkewMillis},
		[]any{in.AgentKey, true, true, int64(-1234)})

	// PutInstance replaces them, back to zero values too.
	for _, c := range []struct {
		key        string
		user, sshd bool
		skew       int64
	}{
		{"SHA256:other", false, true, 1 << 40},
		{"", true, false, 0},
		{"", false, false, -1 << 40},
	} {
		in.AgentKey, in.DefaultUserExists, in.SSHDConfigured, in.ClockSkewMillis = c.key, c.user, c.sshd, c.skew
		must(t, s.PutInstance(ctx, in))
		got, err = s.GetInstance(ctx, in.ID)
		must(t, err)
		equal(t, fmt.Sprintf("agent facts replaced by %+v", c), got, in)
	}
}

func joinTokenID(n int) string { return fmt.Sprintf("jt-%017x", n) }

func secretHash(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

// newJoinToken makes a token created at created, valid for a day, with
// secret "secret<n>".
func newJoinToken(n int, created time.Duration, maxUses int) store.JoinToken {
	return store.JoinToken{
		ID: joinTokenID(n), SecretHash: secretHash(fmt.Sprint("secret", n)),
		CreatedBy: "arn:aws:iam::" + account + ":user/alice",
		CreatedAt: at(created), ExpiresAt: at(created + 24*time.Hour),
		MaxUses: maxUses,
	}
}

func joinTokenIDs(ts []store.JoinToken) []string {
	var out []string
	for _, t := range ts {
		out = append(out, t.ID)
	}
	return out
}

func getJoinToken(t *testing.T, s store.Store, id string) store.JoinToken {
	t.Helper()
	ts, err := s.ListJoinTokens(ctxOf(t))
	must(t, err)
	for _, tok := range ts {
		if tok.ID == id {
			return tok
		}
	}
	t.Fatalf("join token %s not listed", id)
	return store.JoinToken{}
}

func testJoinTokens(t *testing.T, s store.Store) {
	ctx := ctxOf(t)
	ts, err := s.ListJoinTokens(ctx)
	must(t, err)
	equal(t, "no join tokens", len(ts), 0)

	// Created out of order; listed newest first. Two share a creation
	// time: the ID breaks the tie, highest first.
	t1 := newJoinToken(1, 0, 5)
	t2 := newJoinToken(2, time.Hour, 1)
	t3 := newJoinToken(3, 2*time.Hour, 3)
	t4 := newJoinToken(4, time.Hour, 2)
	for _, tok := range []store.JoinToken{t2, t3, t1, t4} {
		must(t, s.CreateJoinToken(ctx, tok))
	}
	ts, err = s.ListJoinTokens(ctx)
	must(t, err)
	equal(t, "ListJoinTokens", ts, []store.JoinToken{t3, t4, t2, t1})

	dup := newJoinToken(1, 5*time.Hour, 9)
	wantErr(t, s.CreateJoinToken(ctx, dup), store.ErrExists, "CreateJoinToken with a used ID")
	equal(t, "token after a refused duplicate", getJoinToken(t, s, t1.ID), t1)

	// A use counts one and returns the token as it now is.
	got, err := s.UseJoinToken(ctx, t1.ID, t1.SecretHash, at(time.Minute))
	must(t, err)
	want := t1
	want.Uses = 1
	equal(t, "UseJoinToken", got, want)
	equal(t, "listed after a use", getJoinToken(t, s, t1.ID), want)

	// Unknown ID, or a hash that differs: not found, and no use counted.
	_, err = s.UseJoinToken(ctx, joinTokenID(99), t1.SecretHash, at(time.Minute))
	wantErr(t, err, store.ErrNotFound, "UseJoinToken of an unknown token")
	for _, h := range [][]byte{secretHash("secret2"), nil, {}, t1.SecretHash[:31], append(slices.Clone(t1.SecretHash), 0)} {
		_, err = s.UseJoinToken(ctx, t1.ID, h, at(time.Minute))
		wantErr(t, err, store.ErrNotFound, fmt.Sprintf("UseJoinToken with secret hash %x", h))
	}
	equal(t, "uses after wrong secrets", getJoinToken(t, s, t1.ID).Uses, 1)

	// Revoked: unusable, but only the secret's holder learns that.
	wantErr(t, s.RevokeJoinToken(ctx, joinTokenID(99)), store.ErrNotFound, "RevokeJoinToken of an unknown token")
	must(t, s.RevokeJoinToken(ctx, t1.ID))
	must(t, s.RevokeJoinToken(ctx, t1.ID)) // twice is no error
	_, err = s.UseJoinToken(ctx, t1.ID, t1.SecretHash, at(time.Minute))
	wantErr(t, err, store.ErrTokenUnusable, "UseJoinToken of a revoked token")
	_, err = s.UseJoinToken(ctx, t1.ID, secretHash("wrong"), at(time.Minute))
	wantErr(t, err, store.ErrNotFound, "UseJoinToken of a revoked token with a wrong secret")
	want.Revoked = true
	equal(t, "revoked token", getJoinToken(t, s, t1.ID), want)

	// MaxUses 1: the second use is refused and not counted.
	_, err = s.UseJoinToken(ctx, t2.ID, t2.SecretHash, t2.CreatedAt)
	must(t, err)
	_, err = s.UseJoinToken(ctx, t2.ID, t2.SecretHash, t2.CreatedAt)
	wantErr(t, err, store.ErrTokenUnusable, "second use of a single-use token")
	equal(t, "uses of a used-up token", getJoinToken(t, s, t2.ID).Uses, 1)

	// A token expires at ExpiresAt: usable just before, not at that
	// instant or after.
	got, err = s.UseJoinToken(ctx, t3.ID, t3.SecretHash, t3.ExpiresAt.Add(-time.Microsecond))
	must(t, err)
	equal(t, "uses just before expiry", got.Uses, 1)
	for _, now := range []time.Time{t3.ExpiresAt, t3.ExpiresAt.Add(time.Nanosecond), t3.ExpiresAt.Add(time.Hour)} {
		_, err = s.UseJoinToken(ctx, t3.ID, t3.SecretHash, now)
		wantErr(t, err, store.ErrTokenUnusable, fmt.Sprintf("UseJoinToken at expiry + %v", now.Sub(t3.ExpiresAt)))
	}
	equal(t, "uses after expiry", getJoinToken(t, s, t3.ID).Uses, 1)

	// Others are untouched.
	equal(t, "untouched token", getJoinToken(t, s, t4.ID), t4)
}

func testJoinTokenTags(t *testing.T, s store.Store) {
	ctx := ctxOf(t)
	tok := newJoinToken(1, 0, 2)
	// Kept as given: not sorted, empty values, text JSON must escape.
	tok.Tags = []store.Tag{
		{Key: "env", Value: "prod"}, {Key: "Name", Value: ""}, {Key: `"quoted" \ back`, Value: "tab\tnew\nline"},
		{Key: "ünïcødé-名前", Value: `o'brien`}, {Key: "a", Value: `{"k":[1]}`},
	}
	must(t, s.CreateJoinToken(ctx, tok))
	equal(t, "listed tags", getJoinToken(t, s, tok.ID), tok)
	got, err := s.UseJoinToken(ctx, tok.ID, tok.SecretHash, at(time.Second))
	must(t, err)
	equal(t, "tags returned by UseJoinToken", got.Tags, tok.Tags)

	// No tags: nil, whether given as nil or empty.
	for i, ts := range [][]store.Tag{nil, {}} {
		bare := newJoinToken(10+i, 0, 1)
		bare.Tags = ts
		must(t, s.CreateJoinToken(ctx, bare))
		equal(t, "no tags", getJoinToken(t, s, bare.ID).Tags, []store.Tag(nil))
	}
}

// testJoinTokenRace has many enrollments race for a token's last uses:
// exactly MaxUses win, each sees a distinct use count, the rest are told
// the token is used up.
func testJoinTokenRace(t *testing.T, s store.Store) {
	ctx := ctxOf(t)
	tok := newJoinToken(1, 0, 3)
	must(t, s.CreateJoinToken(ctx, tok))
	const n = 20
	uses := make([]int, n)
	errs := make([]error, n)
	run(n, func(i int) {
		var got store.JoinToken
		got, errs[i] = s.UseJoinToken(ctx, tok.ID, tok.SecretHash, at(time.Minute))
		uses[i] = got.Uses
	})
	var won []int
	for i, err := range errs {
		switch {
		case err == nil:
			won = append(won, uses[i])
		case errors.Is(err, store.ErrTokenUnusable):
		default:
			t.Fatalf("concurrent UseJoinToken: %v", err)
		}
	}
	slices.Sort(won)
	equal(t, "use counts seen by the winners", won, []int{1, 2, 3})
	equal(t, "uses stored", getJoinToken(t, s, tok.ID).Uses, tok.MaxUses)
}
