package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/kaginashi/kaginashi/internal/store"
)

// UpdateMeta reads (FOR UPDATE), updates and writes meta values in one
// transaction: all or nothing.
func (db *DB) UpdateMeta(ctx context.Context, keys []string, update func(map[string]string) (map[string]string, []string, error)) error {
	err := db.writeTx(ctx, func(tx pgx.Tx) error {
		cur := make(map[string]string, len(keys))
		for _, k := range keys {
			var v string
			err := tx.QueryRow(ctx, `SELECT value FROM meta WHERE key = $1 FOR UPDATE`, k).Scan(&v)
			if errors.Is(err, pgx.ErrNoRows) {
				continue
			}
			if err != nil {
				return fmt.Errorf("read meta %s: %w", k, err)
			}
			cur[k] = v
		}
		set, del, err := update(cur)
		if err != nil {
			return err
		}
		if err := store.CheckMetaUpdate(keys, set, del); err != nil {
			return err
		}
		for k, v := range set {
			if _, err := tx.Exec(ctx, `INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value`, k, v); err != nil {
				return fmt.Errorf("write meta %s: %w", k, err)
			}
		}
		for _, k := range del {
			if _, err := tx.Exec(ctx, `DELETE FROM meta WHERE key = $1`, k); err != nil {
				return fmt.Errorf("delete meta %s: %w", k, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("update meta: %w", err)
	}
	return nil
}
