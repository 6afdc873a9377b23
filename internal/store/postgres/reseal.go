package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/kaginashi/kaginashi/internal/store"
)

var _ store.Maintenance = (*DB)(nil)

// serverLock is the session-level advisory lock key every running server
// holds shared and offline maintenance takes exclusively ("kaginsrv" in
// ASCII; migrationLock is another key).
const serverLock int64 = 0x6b6167696e737276

// LockServer takes the server lock shared on a connection of its own,
// outside the pool: a session-level advisory lock lives as long as its
// connection, and a pooled connection would be recycled under it.
// PostgreSQL drops the lock when the connection ends (the process dies, or
// the network fails). A running server uses KeepServerLock, which takes it
// again when its connection is lost.
func (db *DB) LockServer(ctx context.Context) (func() error, error) {
	return db.advisoryLock(ctx, `SELECT pg_try_advisory_lock_shared($1)`)
}

// LockMaintenance takes the server lock exclusively on a connection of its
// own.
func (db *DB) LockMaintenance(ctx context.Context) (func() error, error) {
	return db.advisoryLock(ctx, `SELECT pg_try_advisory_lock($1)`)
}

func (db *DB) advisoryLock(ctx context.Context, query string) (func() error, error) {
	conn, err := db.lockConn(ctx, query)
	if err != nil {
		return nil, err
	}
	return func() error { return unlockAndClose(conn) }, nil
}

// ResealSecrets rewrites every sealed value in one transaction. The rows
// are locked (FOR UPDATE) as they are read, so that no write slips in
// between the read and the rewrite even if a server ignored the lock.
func (db *DB) ResealSecrets(ctx context.Context, metaKeys []string, reseal func(store.SealedValue) ([]byte, error)) (int, error) {
	n := 0
	err := db.writeTx(ctx, func(tx pgx.Tx) error {
		n = 0
		type row struct {
			id  string
			val []byte
		}
		tables := []struct {
			kind   store.SealedKind
			query  string
			update string
		}{
			{store.SealedAccessKeySecret, `SELECT id, secret FROM access_keys ORDER BY id FOR UPDATE`, `UPDATE access_keys SET secret = $1 WHERE id = $2`},
			{store.SealedMFASeed, `SELECT serial, seed FROM mfa_devices ORDER BY serial FOR UPDATE`, `UPDATE mfa_devices SET seed = $1 WHERE serial = $2`},
		}
		for _, tb := range tables {
			rows, err := tx.Query(ctx, tb.query)
			if err != nil {
				return fmt.Errorf("read %ss: %w", tb.kind, err)
			}
			all, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (row, error) {
				var x row
				err := r.Scan(&x.id, &x.val)
				return x, err
			})
			if err != nil {
				return fmt.Errorf("read %ss: %w", tb.kind, err)
			}
			for _, r := range all {
				nv, err := reseal(store.SealedValue{Kind: tb.kind, Owner: r.id, Value: r.val})
				if err != nil {
					return fmt.Errorf("%s %s: %w", tb.kind, r.id, err)
				}
				if _, err := tx.Exec(ctx, tb.update, nv, r.id); err != nil {
					return fmt.Errorf("write %s %s: %w", tb.kind, r.id, err)
				}
				n++
			}
		}
		for _, k := range metaKeys {
			var v string
			err := tx.QueryRow(ctx, `SELECT value FROM meta WHERE key = $1 FOR UPDATE`, k).Scan(&v)
			if errors.Is(err, pgx.ErrNoRows) {
				continue
			}
			if err != nil {
				return fmt.Errorf("read meta %s: %w", k, err)
			}
			nv, err := reseal(store.SealedValue{Kind: store.SealedMeta, Owner: k, Value: []byte(v)})
			if err != nil {
				return fmt.Errorf("meta %s: %w", k, err)
			}
			if _, err := tx.Exec(ctx, `UPDATE meta SET value = $1 WHERE key = $2`, string(nv), k); err != nil {
				return fmt.Errorf("write meta %s: %w", k, err)
			}
			n++
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("reseal secrets: %w", err)
	}
	return n, nil
}
