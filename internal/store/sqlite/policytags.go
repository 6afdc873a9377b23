package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/kaginashi/kaginashi/internal/store"
)

// TagPolicy adds tags to a managed policy, overwriting the values of
// existing keys. It is an IAM write: policy tags feed aws:ResourceTag/*
// in authorization decisions, so the generation moves.
func (db *DB) TagPolicy(ctx context.Context, arn string, tags []store.Tag) error {
	err := db.iamWrite(ctx, func(tx *sql.Tx) error {
		if err := policyExists(ctx, tx, arn); err != nil {
			return err
		}
		for _, t := range tags {
			if _, err := tx.ExecContext(ctx, `INSERT INTO policy_tags (policy_arn, key, value) VALUES (?, ?, ?)
				ON CONFLICT (policy_arn, key) DO UPDATE SET value = excluded.value`, arn, t.Key, t.Value); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("tag policy %s: %w", arn, err)
	}
	return nil
}

// UntagPolicy removes a managed policy's tags by key; absent keys are no
// error.
func (db *DB) UntagPolicy(ctx context.Context, arn string, keys []string) error {
	err := db.iamWrite(ctx, func(tx *sql.Tx) error {
		if err := policyExists(ctx, tx, arn); err != nil {
			return err
		}
		for _, k := range keys {
			if _, err := tx.ExecContext(ctx, `DELETE FROM policy_tags WHERE policy_arn = ? AND key = ?`, arn, k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("untag policy %s: %w", arn, err)
	}
	return nil
}
