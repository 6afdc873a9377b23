package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/kaginashi/kaginashi/internal/store"
)

var _ store.Maintenance = (*DB)(nil)

// file returns the database file's path, as SQLite opened it.
func (db *DB) file(ctx context.Context) (string, error) {
	rows, err := db.read.QueryContext(ctx, `PRAGMA database_list`)
	if err != nil {
		return "", fmt.Errorf("database file: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var seq int
		var name, file string
		if err := rows.Scan(&seq, &name, &file); err != nil {
			return "", fmt.Errorf("database file: %w", err)
		}
		if name == "main" && file != "" {
			return file, nil
		}
	}
	if err := rows.Err(); err != nil {
		return "", fmt.Errorf("database file: %w", err)
	}
	return "", errors.New("database file: not a file-backed database")
}

// LockServer takes an exclusive flock(2) on the database file: SQLite
// serves one server at a time (see SingleServer). flock, not SQLite's own
// fcntl locks: those come and go with transactions, while this one lasts
// as long as the server — and flock and fcntl locks do not interact on
// Linux, so SQLite is not disturbed.
func (db *DB) LockServer(ctx context.Context) (func() error, error) {
	return db.flock(ctx, true)
}

// SingleServer: two server processes on one SQLite file would each hold
// only their own agents' connections (a push reaching the other would
// fail), and SQLite has one writer anyway; replicas use PostgreSQL.
func (db *DB) SingleServer() bool { return true }

// LockMaintenance takes an exclusive flock(2) on the database file.
func (db *DB) LockMaintenance(ctx context.Context) (func() error, error) {
	return db.flock(ctx, true)
}

func (db *DB) flock(ctx context.Context, exclusive bool) (func() error, error) {
	path, err := db.file(ctx)
	if err != nil {
		return nil, err
	}
	return flockFile(path, exclusive)
}

// ResealSecrets rewrites every sealed value in one IMMEDIATE transaction
// on the writer connection: all or nothing.
func (db *DB) ResealSecrets(ctx context.Context, metaKeys []string, reseal func(store.SealedValue) ([]byte, error)) (int, error) {
	n := 0
	err := db.writeTx(ctx, func(tx *sql.Tx) error {
		n = 0
		type row struct {
			id  string
			val []byte
		}
		// Read each table whole before writing it: one connection, and
		// no cursor open across the updates.
		readAll := func(q string) ([]row, error) {
			rows, err := tx.QueryContext(ctx, q)
			if err != nil {
				return nil, err
			}
			defer rows.Close()
			var out []row
			for rows.Next() {
				var r row
				if err := rows.Scan(&r.id, &r.val); err != nil {
					return nil, err
				}
				out = append(out, r)
			}
			return out, rows.Err()
		}
		tables := []struct {
			kind   store.SealedKind
			query  string
			update string
		}{
			{store.SealedAccessKeySecret, `SELECT id, secret FROM access_keys ORDER BY id`, `UPDATE access_keys SET secret = ? WHERE id = ?`},
			{store.SealedMFASeed, `SELECT serial, seed FROM mfa_devices ORDER BY serial`, `UPDATE mfa_devices SET seed = ? WHERE serial = ?`},
		}
		for _, tb := range tables {
			rows, err := readAll(tb.query)
			if err != nil {
				return fmt.Errorf("read %ss: %w", tb.kind, err)
			}
			for _, r := range rows {
				nv, err := reseal(store.SealedValue{Kind: tb.kind, Owner: r.id, Value: r.val})
				if err != nil {
					return fmt.Errorf("%s %s: %w", tb.kind, r.id, err)
				}
				if _, err := tx.ExecContext(ctx, tb.update, nv, r.id); err != nil {
					return fmt.Errorf("write %s %s: %w", tb.kind, r.id, err)
				}
				n++
			}
		}
		for _, k := range metaKeys {
			var v string
			err := tx.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = ?`, k).Scan(&v)
			if errors.Is(err, sql.ErrNoRows) {
				continue
			}
			if err != nil {
				return fmt.Errorf("read meta %s: %w", k, err)
			}
			nv, err := reseal(store.SealedValue{Kind: store.SealedMeta, Owner: k, Value: []byte(v)})
			if err != nil {
				return fmt.Errorf("meta %s: %w", k, err)
			}
			if _, err := tx.ExecContext(ctx, `UPDATE meta SET value = ? WHERE key = ?`, string(nv), k); err != nil {
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
