package sqlite

import (
	"context"
	"crypto/subtle"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

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

func unmarshalTags(s string) ([]store.Tag, error) {
	var in []jsonTag
	if err := json.Unmarshal([]byte(s), &in); err != nil {
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

// rowScanner is what *sql.Row and *sql.Rows have in common.
type rowScanner interface {
	Scan(dest ...any) error
}

func scanJoinToken(r rowScanner) (store.JoinToken, error) {
	var t store.JoinToken
	var created, expires int64
	var tags string
	if err := r.Scan(&t.ID, &t.SecretHash, &t.CreatedBy, &created, &expires, &t.MaxUses, &t.Uses, &t.Revoked, &tags); err != nil {
		return store.JoinToken{}, err
	}
	t.CreatedAt = fromMicros(created)
	t.ExpiresAt = fromMicros(expires)
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
	_, err = db.write.ExecContext(ctx, `INSERT INTO join_tokens (`+joinTokenColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		t.ID, nonNil(t.SecretHash), t.CreatedBy, micros(t.CreatedAt), micros(t.ExpiresAt), t.MaxUses, t.Uses, t.Revoked, tags)
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
	rows, err := db.read.QueryContext(ctx, `SELECT `+joinTokenColumns+` FROM join_tokens ORDER BY created_at DESC, id DESC`)
	if err != nil {
		return nil, fmt.Errorf("list join tokens: %w", err)
	}
	defer rows.Close()
	var out []store.JoinToken
	for rows.Next() {
		t, err := scanJoinToken(rows)
		if err != nil {
			return nil, fmt.Errorf("list join tokens: %w", err)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list join tokens: %w", err)
	}
	return out, nil
}

// RevokeJoinToken marks a join token revoked.
func (db *DB) RevokeJoinToken(ctx context.Context, id string) error {
	res, err := db.write.ExecContext(ctx, `UPDATE join_tokens SET revoked = 1 WHERE id = ?`, id)
	if err := affected(res, err); err != nil {
		return fmt.Errorf("revoke join token %s: %w", id, err)
	}
	return nil
}

// UseJoinToken counts one use of a join token. The transaction is
// IMMEDIATE (on the one writer connection, and against other processes
// through SQLite's write lock), so the check and the count cannot
// interleave with another use.
func (db *DB) UseJoinToken(ctx context.Context, id string, secretHash []byte, now time.Time) (store.JoinToken, error) {
	var t store.JoinToken
	err := db.writeTx(ctx, func(tx *sql.Tx) error {
		var err error
		t, err = scanJoinToken(tx.QueryRowContext(ctx, `SELECT `+joinTokenColumns+` FROM join_tokens WHERE id = ?`, id))
		if errors.Is(err, sql.ErrNoRows) {
			return store.ErrNotFound
		}
		if err != nil {
			return err
		}
		if err := checkJoinToken(t, secretHash, now); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE join_tokens SET uses = uses + 1 WHERE id = ?`, id); err != nil {
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
