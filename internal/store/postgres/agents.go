package postgres

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/kaginashi/kaginashi/internal/store"
)

const joinTokenColumns = `id, secret_hash, created_by, created_at, expires_at, max_uses, uses, revoked, tags`

// jsonTag is a tag as the tags column of join_tokens holds it. Its own
// type, so that renaming store.Tag's fields cannot change stored data.
type jsonTag struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

func marshalTags(tags []store.Tag) (string, error) {
	out := make([]jsonTag, len(tags))
	for i, t := range tags {
		out[i] = jsonTag(t)
	}
	b, err := json.Marshal(out)
	return string(b), err
}

func unmarshalTags(b []byte) ([]store.Tag, error) {
	var in []jsonTag
	if err := json.Unmarshal(b, &in); err != nil {
		return nil, err
	}
	if len(in) == 0 {
		return nil, nil
	}
	out := make([]store.Tag, len(in))
	for i, t := range in {
		out[i] = store.Tag(t)
	}
	return out, nil
}

func scanJoinToken(r pgx.Row) (store.JoinToken, error) {
	var t store.JoinToken
	var tags []byte // the jsonb text
	if err := r.Scan(&t.ID, &t.SecretHash, &t.CreatedBy, &t.CreatedAt, &t.ExpiresAt, &t.MaxUses, &t.Uses, &t.Revoked, &tags); err != nil {
		return store.JoinToken{}, err
	}
	t.CreatedAt, t.ExpiresAt = utc(t.CreatedAt), utc(t.ExpiresAt)
	var err error
	if t.Tags, err = unmarshalTags(tags); err != nil {
		return store.JoinToken{}, fmt.Errorf("join token %s tags: %w", t.ID, err)
	}
	return t, nil
}

// CreateJoinToken stores a new join token.
func (db *DB) CreateJoinToken(ctx context.Context, t store.JoinToken) error {
	tags, err := marshalTags(t.Tags)
	if err != nil {
		return fmt.Errorf("create join token %s: %w", t.ID, err)
	}
	_, err = db.pool.Exec(ctx, `INSERT INTO join_tokens (`+joinTokenColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb)`,
		t.ID, nonNil(t.SecretHash), t.CreatedBy, t.CreatedAt, t.ExpiresAt, t.MaxUses, t.Uses, t.Revoked, tags)
	if isUnique(err) {
		err = store.ErrExists
	}
	if err != nil {
		return fmt.Errorf("create join token %s: %w", t.ID, err)
	}
	return nil
}

// ListJoinTokens lists join tokens, newest first.
func (db *DB) ListJoinTokens(ctx context.Context) ([]store.JoinToken, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+joinTokenColumns+` FROM join_tokens ORDER BY created_at DESC, id DESC`)
	if err != nil {
		return nil, fmt.Errorf("list join tokens: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.JoinToken, error) { return scanJoinToken(r) })
	if err != nil {
		return nil, fmt.Errorf("list join tokens: %w", err)
	}
	if len(out) == 0 {
		out = nil
	}
	return out, nil
}

// RevokeJoinToken marks a join token revoked.
func (db *DB) RevokeJoinToken(ctx context.Context, id string) error {
	if err := affected(db.pool.Exec(ctx, `UPDATE join_tokens SET revoked = true WHERE id = $1`, id)); err != nil {
		return fmt.Errorf("revoke join token %s: %w", id, err)
	}
	return nil
}

// UseJoinToken counts one use of a join token. FOR UPDATE locks the
// token's row until the transaction ends: another use, from this replica
// or another, waits at its SELECT and then (READ COMMITTED) reads the row
// as this one left it, so two cannot both take the last use.
func (db *DB) UseJoinToken(ctx context.Context, id string, secretHash []byte, now time.Time) (store.JoinToken, error) {
	var t store.JoinToken
	err := db.writeTx(ctx, func(tx pgx.Tx) error {
		var err error
		t, err = scanJoinToken(tx.QueryRow(ctx, `SELECT `+joinTokenColumns+` FROM join_tokens WHERE id = $1 FOR UPDATE`, id))
		if errors.Is(err, pgx.ErrNoRows) {
			return store.ErrNotFound
		}
		if err != nil {
			return err
		}
		if err := checkJoinToken(t, secretHash, now); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE join_tokens SET uses = uses + 1 WHERE id = $1`, id); err != nil {
			return err
		}
		t.Uses++
		return nil
	})
	if err != nil {
		return store.JoinToken{}, fmt.Errorf("use join token %s: %w", id, err)
	}
	return t, nil
}

// checkJoinToken decides whether t may be used at now with secretHash.
// The secret comes first: without it a caller learns nothing about the
// token, not even whether it is revoked or used up. A token stored
// without a hash matches nothing (not even an empty hash).
func checkJoinToken(t store.JoinToken, secretHash []byte, now time.Time) error {
	if len(t.SecretHash) == 0 || subtle.ConstantTimeCompare(t.SecretHash, secretHash) != 1 {
		return store.ErrNotFound
	}
	if t.Revoked || !now.Before(t.ExpiresAt) || t.Uses >= t.MaxUses {
		return store.ErrTokenUnusable
	}
	return nil
}
