package gateway

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"regexp"
	"strings"
	"time"

	"github.com/kaginashi/kaginashi/internal/apierr"
	"github.com/kaginashi/kaginashi/internal/store"
)

// A join token is "ID.SECRET": the ID (jt- and 17 hex digits) names it in
// lists and audit logs; the secret (32 random bytes, base64url) is shown
// once and only its SHA-256 is stored.

var tokenIDRE = regexp.MustCompile(`^jt-[0-9a-f]{17}$`)

// Token limits.
const (
	DefaultTokenTTL = time.Hour
	MaxTokenTTL     = 30 * 24 * time.Hour
	MaxTokenUses    = 100000
)

// NewTokenID returns jt- and 17 hex digits.
func NewTokenID() string {
	b := make([]byte, 9)
	_, _ = rand.Read(b)
	return "jt-" + hex.EncodeToString(b)[:17]
}

func hashSecret(secret string) []byte {
	sum := sha256.Sum256([]byte(secret))
	return sum[:]
}

// SplitToken splits "ID.SECRET", checking the shape.
func SplitToken(token string) (id, secret string, err error) {
	id, secret, ok := strings.Cut(strings.TrimSpace(token), ".")
	if !ok || !tokenIDRE.MatchString(id) || len(secret) < 32 || len(secret) > 128 {
		return "", "", errors.New("the join token is malformed (want jt-....SECRET, as `kaginashi agent-token create` prints)")
	}
	return id, secret, nil
}

// Tokens manages join tokens.
type Tokens struct {
	store store.Store
	now   func() time.Time
}

// NewTokens makes the token service.
func NewTokens(st store.Store, now func() time.Time) *Tokens { return &Tokens{store: st, now: now} }

// NewToken is a created token with its secret: shown once.
type NewToken struct {
	store.JoinToken
	Token string // ID.SECRET
}

// Create makes a token valid for ttl, usable maxUses times, giving tags to
// the instances it enrolls.
func (t *Tokens) Create(ctx context.Context, createdBy string, ttl time.Duration, maxUses int, tags []store.Tag) (NewToken, error) {
	if ttl == 0 {
		ttl = DefaultTokenTTL
	}
	if ttl < time.Second || ttl > MaxTokenTTL {
		return NewToken{}, apierr.New(apierr.InvalidInput, "the token lifetime must be from 1 second to %v", MaxTokenTTL)
	}
	if maxUses == 0 {
		maxUses = 1
	}
	if maxUses < 1 || maxUses > MaxTokenUses {
		return NewToken{}, apierr.New(apierr.InvalidInput, "MaxUses must be from 1 to %d", MaxTokenUses)
	}
	if len(tags) > 50 {
		return NewToken{}, apierr.New(apierr.InvalidInput, "at most 50 tags")
	}
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return NewToken{}, apierr.Wrap(err, "making a token")
	}
	s := base64.RawURLEncoding.EncodeToString(secret)
	now := t.now().UTC()
	jt := store.JoinToken{ID: NewTokenID(), SecretHash: hashSecret(s), CreatedBy: createdBy, CreatedAt: now,
		ExpiresAt: now.Add(ttl), MaxUses: maxUses, Tags: tags}
	if err := t.store.CreateJoinToken(ctx, jt); err != nil {
		return NewToken{}, apierr.Wrap(err, "storing the token")
	}
	return NewToken{JoinToken: jt, Token: jt.ID + "." + s}, nil
}

// List lists tokens, newest first.
func (t *Tokens) List(ctx context.Context) ([]store.JoinToken, error) {
	ts, err := t.store.ListJoinTokens(ctx)
	if err != nil {
		return nil, apierr.Wrap(err, "listing tokens")
	}
	return ts, nil
}

// Revoke revokes a token.
func (t *Tokens) Revoke(ctx context.Context, id string) error {
	if !tokenIDRE.MatchString(id) {
		return apierr.New(apierr.InvalidInput, "token ID %q is malformed (jt- and 17 hex digits)", id)
	}
	err := t.store.RevokeJoinToken(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return apierr.New(apierr.NotFound, "join token %s does not exist", id)
	}
	if err != nil {
		return apierr.Wrap(err, "revoking the token")
	}
	return nil
}

// use spends one use of a token presented by an agent.
func (t *Tokens) use(ctx context.Context, token string) (store.JoinToken, error) {
	id, secret, err := SplitToken(token)
	if err != nil {
		return store.JoinToken{}, apierr.New(apierr.AccessDenied, "the join token is not valid: %v", err)
	}
	jt, err := t.store.UseJoinToken(ctx, id, hashSecret(secret), t.now().UTC())
	switch {
	case errors.Is(err, store.ErrNotFound):
		return jt, apierr.New(apierr.AccessDenied, "the join token is not valid; create one with `kaginashi agent-token create`")
	case errors.Is(err, store.ErrTokenUnusable):
		return jt, apierr.New(apierr.AccessDenied, "the join token is expired, revoked or used up; create another with `kaginashi agent-token create`")
	case err != nil:
		return jt, apierr.Wrap(err, "checking the join token")
	}
	return jt, nil
}
