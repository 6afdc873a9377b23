package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/kaginashi/kaginashi/internal/store"
)

// TagPolicy adds tags to a managed policy, overwriting the values of
// existing keys. It is an IAM write: policy tags feed aws:ResourceTag/*
// in authorization decisions, so the generation moves.
func (db *DB) TagPolicy(ctx context.Context, arn string, tags []store.Tag) error {
	err := db.iamWrite(ctx, func(tx pgx.Tx) error {
		if err := policyExists(ctx, tx, arn); err != nil {
			return err
		}
		if len(tags) == 0 {
			return nil
		}
		keys, values := tagArrays(tags)
		_, err := tx.Exec(ctx, `INSERT INTO policy_tags (policy_arn, key, value)
			SELECT $1, k, v FROM unnest($2::text[], $3::text[]) AS t (k, v)
			ON CONFLICT (policy_arn, key) DO UPDATE SET value = excluded.value`, arn, keys, values)
		return err
	})
	if err != nil {
		return fmt.Errorf("tag policy %s: %w", arn, err)
	}
	return nil
}

// UntagPolicy removes a managed policy's tags by key; absent keys are no
// error.
func (db *DB) UntagPolicy(ctx context.Context, arn string, keys []string) error {
	err := db.iamWrite(ctx, func(tx pgx.Tx) error {
		if err := policyExists(ctx, tx, arn); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `DELETE FROM policy_tags WHERE policy_arn = $1 AND key = ANY($2)`, arn, nonNil(keys))
		return err
	})
	if err != nil {
		return fmt.Errorf("untag policy %s: %w", arn, err)
	}
	return nil
}
