// Package postgres is the store engine for several server replicas sharing
// one PostgreSQL database, through pgx's connection pool.
//
// Replicas hold no state of their own, so the database keeps every
// invariant: unique constraints for names and IDs, foreign keys for "cannot
// delete while it has dependents", and IAM write transactions that begin by
// updating the single iam_generation row. That row lock makes IAM writes
// run one at a time across all replicas, so the counts behind the quotas
// (2 access keys, 5 policy versions) cannot race; IAM writes are
// administrative and rare, so the serialization costs nothing that
// matters, and it rules out deadlocks between IAM writes too.
package postgres

import (
	"cmp"
	"context"
	"embed"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/kaginashi/kaginashi/internal/store"
	"github.com/kaginashi/kaginashi/internal/store/internal/gencache"
	"github.com/kaginashi/kaginashi/internal/store/internal/groupcommit"
	"github.com/kaginashi/kaginashi/internal/store/internal/instcache"
	"github.com/kaginashi/kaginashi/internal/store/internal/migrate"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// migrationLock is the pg_advisory_xact_lock key that serializes schema
// migrations between replicas starting together ("kaginash" in ASCII).
const migrationLock int64 = 0x6b6167696e617368

// DB is a store.Store on a PostgreSQL database.
type DB struct {
	pool *pgxpool.Pool
	// async writes key records with synchronous_commit=off (hot.go).
	async *pgxpool.Pool
	// gen is the IAM generation, kept in memory (see gencache): IAM
	// writes through this replica update it before they return; writes by
	// other replicas are read within the configured max age.
	gen *gencache.Cache
	// inst caches instances for CachedInstance under the inventory
	// generation, read at most every genMaxAge.
	inst *instcache.Cache
	// writes commits key records and audit events together (hot.go).
	writes *groupcommit.Batcher
}

type config struct {
	genMaxAge time.Duration
}

// Option configures Open.
type Option func(*config)

// WithIAMGenerationMaxAge sets how long the IAM generation read from the
// database is trusted before it is read again (default
// gencache.DefaultMaxAge, 250 ms; 0: read it every time). It bounds how
// late a replica notices IAM writes made through another replica; its own
// it notices at once.
// The inventory generation (CachedInstance) is read on the same
// schedule.
func WithIAMGenerationMaxAge(d time.Duration) Option {
	return func(c *config) {
		if d >= 0 {
			c.genMaxAge = d
		}
	}
}

var _ store.Store = (*DB)(nil)

// Open connects to the database at url (a postgres:// URL or key=value
// DSN, as pgx accepts) and brings its schema up to date. A database
// migrated by a newer kaginashi is refused.
func Open(ctx context.Context, url string, opts ...Option) (*DB, error) {
	c := config{genMaxAge: gencache.DefaultMaxAge}
	for _, o := range opts {
		o(&c)
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("open postgres store: %w", err)
	}
	// The writes are written for READ COMMITTED, whatever the database's
	// or role's default (or the URL's): each statement sees what
	// committed before it, so a read after a lock (TagResource's key case
	// check after its advisory lock, an IAM write after the generation
	// row's) sees the previous holder's work. Under REPEATABLE READ the
	// snapshot predates the wait: two spellings of one tag key both
	// landed, or the second writer failed with a serialization error.
	// Reads that need one snapshot ask for REPEATABLE READ (readTx).
	cfg.ConnConfig.RuntimeParams["default_transaction_isolation"] = "read committed"
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open postgres store: %w", err)
	}
	db := &DB{pool: pool, gen: gencache.New(c.genMaxAge, nil)}
	db.inst = instcache.New(c.genMaxAge, nil, db.readInventoryGeneration, db.GetInstance)
	db.writes = groupcommit.New(db.groupEngine())
	if err := db.migrate(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open postgres store: %w", err)
	}
	if db.async, err = openAsyncPool(ctx, cfg); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open postgres store: %w", err)
	}
	return db, nil
}

// Close closes the pool.
func (db *DB) Close() error {
	db.async.Close()
	db.pool.Close()
	return nil
}

// migrate applies the embedded migrations the database lacks, all in one
// transaction with their schema_migrations rows. The transaction-scoped
// advisory lock makes replicas that start together take turns: the first
// migrates, the others then find nothing to do.
func (db *DB) migrate(ctx context.Context) error {
	ms, err := migrate.Load(migrationFS, "migrations")
	if err != nil {
		return err
	}
	return pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, migrationLock); err != nil {
			return fmt.Errorf("lock for migrations: %w", err)
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version    integer PRIMARY KEY,
			name       text NOT NULL,
			applied_at timestamptz NOT NULL DEFAULT now()
		)`); err != nil {
			return fmt.Errorf("create schema_migrations: %w", err)
		}
		var cur int
		if err := tx.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&cur); err != nil {
			return fmt.Errorf("read schema version: %w", err)
		}
		if cur > len(ms) {
			return migrate.TooNew(cur, len(ms))
		}
		for _, m := range ms[cur:] {
			// No arguments: pgx sends it as a simple query, which may
			// hold several statements.
			if _, err := tx.Exec(ctx, m.SQL); err != nil {
				return fmt.Errorf("apply migration %s: %w", m.Name, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, m.Version, m.Name); err != nil {
				return fmt.Errorf("record migration %s: %w", m.Name, err)
			}
		}
		return nil
	})
}

// querier is what pgx.Tx and *pgxpool.Pool have in common.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// writeTx runs fn in a READ COMMITTED transaction.
func (db *DB) writeTx(ctx context.Context, fn func(pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, db.pool, fn)
}

// iamWrite runs fn in a transaction that first bumps the IAM generation.
// Bumping first takes the generation row's lock before anything else, so
// IAM writes from every replica queue up here, in one order.
func (db *DB) iamWrite(ctx context.Context, fn func(pgx.Tx) error) error {
	var gen int64
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `UPDATE iam_generation SET value = value + 1 WHERE id = 1 RETURNING value`).Scan(&gen); err != nil {
			return err
		}
		return fn(tx)
	})
	if err == nil {
		// Before the write returns: its caller's next request must be
		// decided with the new policies.
		db.gen.Bumped(gen)
	}
	return err
}

// readTx runs fn in a read-only REPEATABLE READ transaction, so that the
// several queries of one method see one snapshot.
func (db *DB) readTx(ctx context.Context, fn func(pgx.Tx) error) error {
	return pgx.BeginTxFunc(ctx, db.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, fn)
}

func pgCode(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

func isUnique(err error) bool     { return pgCode(err) == "23505" }
func isForeignKey(err error) bool { return pgCode(err) == "23503" }

// utc is how times leave the store: pgx returns timestamptz in the local
// zone.
func utc(t time.Time) time.Time { return t.UTC() }

// nameKey is the form IAM names are unique in: without regard to case.
// Lowering in Go, not SQL, keeps both engines agreeing whatever the
// database's locale.
func nameKey(name string) string { return strings.ToLower(name) }

func pathOr(p string) string {
	if p == "" {
		return "/"
	}
	return p
}

// nonNil keeps NOT NULL bytea and text[] columns from receiving NULL.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// tagArrays turns tags into parallel key and value arrays for one unnest
// insert: deduplicated by key (the last value wins, as if applied one by
// one; one INSERT ... ON CONFLICT cannot touch a row twice) and sorted, so
// that concurrent writers lock rows in the same order.
func tagArrays(tags []store.Tag) (keys, values []string) {
	last := map[string]string{}
	for _, t := range tags {
		last[t.Key] = t.Value
	}
	for k := range last {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, cmp.Compare)
	for _, k := range keys {
		values = append(values, last[k])
	}
	return nonNil(keys), nonNil(values)
}

// GetMeta returns a deployment-wide setting.
func (db *DB) GetMeta(ctx context.Context, key string) (string, bool, error) {
	var v string
	err := db.pool.QueryRow(ctx, `SELECT value FROM meta WHERE key = $1`, key).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("get meta %q: %w", key, err)
	}
	return v, true, nil
}

// InitMeta sets key unless it is set and returns the value that holds.
func (db *DB) InitMeta(ctx context.Context, key, value string) (string, error) {
	// Two statements, not one: a concurrent INSERT waits for the first
	// writer to commit and then does nothing, and only a statement that
	// starts after that (READ COMMITTED: a new snapshot) sees the winner.
	var v string
	err := db.writeTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING`, key, value); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `SELECT value FROM meta WHERE key = $1`, key).Scan(&v)
	})
	if err != nil {
		return "", fmt.Errorf("init meta %q: %w", key, err)
	}
	return v, nil
}

// IAMGeneration returns the IAM generation counter: exact for writes
// through this replica, at most the WithIAMGenerationMaxAge old for writes
// through others.
func (db *DB) IAMGeneration(ctx context.Context) (int64, error) {
	return db.gen.Get(ctx, db.readIAMGeneration)
}

func (db *DB) readIAMGeneration(ctx context.Context) (int64, error) {
	var g int64
	if err := db.pool.QueryRow(ctx, `SELECT value FROM iam_generation WHERE id = 1`).Scan(&g); err != nil {
		return 0, fmt.Errorf("iam generation: %w", err)
	}
	return g, nil
}
