// Package sqlite is the embedded store engine: one SQLite file, opened with
// the pure-Go driver modernc.org/sqlite so that kaginashi stays one static
// binary.
//
// Writes go through a single connection, because SQLite admits one writer
// at a time: queueing writers in database/sql costs nothing, while letting
// them contend inside SQLite turns into SQLITE_BUSY retries. Reads use a
// separate pool of read-only connections, which WAL mode lets run beside
// the writer.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/kaginashi/kaginashi/internal/store"
	"github.com/kaginashi/kaginashi/internal/store/internal/gencache"
	"github.com/kaginashi/kaginashi/internal/store/internal/groupcommit"
	"github.com/kaginashi/kaginashi/internal/store/internal/instcache"
	"github.com/kaginashi/kaginashi/internal/store/internal/migrate"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// DB is a store.Store on one SQLite file.
type DB struct {
	write *sql.DB // exactly one connection
	read  *sql.DB // query_only connections
	// gen is the IAM generation, kept in memory (see gencache): IAM
	// writes through this handle update it before they return; writes by
	// another process on the same file are read within genMaxAge.
	gen *gencache.Cache
	// Prepared statements of the hot paths (hot.go), per pool.
	rstmts, wstmts *stmtCache
	writes         *groupcommit.Batcher
	// inst caches instances for CachedInstance under the inventory
	// generation, read at most every genMaxAge.
	inst *instcache.Cache
	// ckpt is the checkpointer's connection (checkpointer).
	ckpt               *sql.DB
	ckptStop, ckptDone chan struct{}
	closeOnce          sync.Once
}

var _ store.Store = (*DB)(nil)

type config struct {
	readers     int
	busyTimeout time.Duration
	genMaxAge   time.Duration
}

// Option configures Open.
type Option func(*config)

// WithReaders sets how many read connections may be open at once
// (default 4).
func WithReaders(n int) Option {
	return func(c *config) {
		if n > 0 {
			c.readers = n
		}
	}
}

// WithBusyTimeout sets how long a connection waits for a lock another
// process holds (default 5s). Within one process the single writer
// connection means writers never wait on each other inside SQLite.
func WithBusyTimeout(d time.Duration) Option {
	return func(c *config) {
		if d > 0 {
			c.busyTimeout = d
		}
	}
}

// WithIAMGenerationMaxAge sets how long the IAM generation read from the
// file is trusted before it is read again (default gencache.DefaultMaxAge,
// 250 ms; 0: read it every time). It bounds how late this handle notices
// IAM writes made by another process on the same file; its own writes it
// notices at once.
// The inventory generation (CachedInstance) is read on the same
// schedule.
func WithIAMGenerationMaxAge(d time.Duration) Option {
	return func(c *config) {
		if d >= 0 {
			c.genMaxAge = d
		}
	}
}

// Open opens (creating if needed) the database file at path and brings its
// schema up to date. A database written by a newer kaginashi is refused.
func Open(ctx context.Context, path string, opts ...Option) (*DB, error) {
	cfg := config{readers: 4, busyTimeout: 5 * time.Second, genMaxAge: gencache.DefaultMaxAge}
	for _, o := range opts {
		o(&cfg)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("open sqlite store: %w", err)
	}
	// Create the file here rather than let SQLite do it: SQLite would use
	// 0644 less the umask, and the -wal and -shm files copy the database
	// file's mode. The store holds password hashes and encrypted secrets.
	f, err := os.OpenFile(abs, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open sqlite store: %w", err)
	}
	f.Close()

	// A file: URI with the path escaped, so that '?' or '#' in a path
	// cannot be read as parameters.
	base := "file:" + (&url.URL{Path: abs}).EscapedPath()
	dsn := func(kv ...string) string {
		q := url.Values{}
		q.Set("_busy_timeout", strconv.FormatInt(cfg.busyTimeout.Milliseconds(), 10))
		q.Set("_foreign_keys", "1")
		for i := 0; i+1 < len(kv); i += 2 {
			q.Set(kv[i], kv[i+1])
		}
		return base + "?" + q.Encode()
	}

	write, err := sql.Open("sqlite", dsn(
		"_journal_mode", "WAL",
		// FULL: a commit is on disk before it returns. Audit events must
		// be durable before the server answers; the caller batches them,
		// so the fsync per commit is paid once per batch.
		"_synchronous", "FULL",
		// IMMEDIATE takes the write lock at BEGIN, so that a transaction
		// that reads before it writes cannot fail with SQLITE_BUSY halfway
		// if another process (an admin command) writes too.
		"_txlock", "immediate",
		// Checkpoints run on their own connection (checkpointer); the
		// writer checkpoints itself only if the WAL grows far beyond
		// what that keeps it at (a safety net: 16384 pages, 64 MiB).
		"_pragma", fmt.Sprintf("wal_autocheckpoint(%d)", writerAutoCheckpoint),
	))
	if err != nil {
		return nil, fmt.Errorf("open sqlite store: %w", err)
	}
	write.SetMaxOpenConns(1)
	write.SetMaxIdleConns(1)
	write.SetConnMaxLifetime(0)
	write.SetConnMaxIdleTime(0)

	db := &DB{write: write, gen: gencache.New(cfg.genMaxAge, nil), wstmts: newStmtCache(write)}
	db.writes = groupcommit.New(db.groupEngine())
	if err := db.migrate(ctx); err != nil {
		write.Close()
		return nil, fmt.Errorf("open sqlite store %s: %w", abs, err)
	}

	read, err := sql.Open("sqlite", dsn("_query_only", "1"))
	if err != nil {
		write.Close()
		return nil, fmt.Errorf("open sqlite store: %w", err)
	}
	read.SetMaxOpenConns(cfg.readers)
	read.SetMaxIdleConns(cfg.readers)
	if err := read.PingContext(ctx); err != nil {
		read.Close()
		write.Close()
		return nil, fmt.Errorf("open sqlite store %s: %w", abs, err)
	}
	db.read = read
	db.rstmts = newStmtCache(read)
	db.inst = instcache.New(cfg.genMaxAge, nil, db.readInventoryGeneration, db.GetInstance)
	ckpt, err := sql.Open("sqlite", dsn())
	if err != nil {
		read.Close()
		write.Close()
		return nil, fmt.Errorf("open sqlite store: %w", err)
	}
	ckpt.SetMaxOpenConns(1)
	ckpt.SetMaxIdleConns(1)
	ckpt.SetConnMaxLifetime(0)
	ckpt.SetConnMaxIdleTime(0)
	db.ckpt = ckpt
	db.ckptStop = make(chan struct{})
	db.ckptDone = make(chan struct{})
	go db.checkpointer(checkpointEvery)
	return db, nil
}

// writerAutoCheckpoint is the writer connection's wal_autocheckpoint, in
// pages: only a safety net, should the checkpointer fall behind.
const writerAutoCheckpoint = 16384

// checkpointEvery is how often the checkpointer copies the WAL into the
// database file.
const checkpointEvery = 100 * time.Millisecond

// checkpointer copies committed WAL frames into the database file on a
// connection of its own (PRAGMA wal_checkpoint(PASSIVE): it waits for no
// reader or writer), so that the writer connection — which every commit,
// and so every SendSSHPublicKey, waits for — does not stop to do it, as
// SQLite's automatic checkpoint would every 1000 pages (about every 80 ms
// under load), copying and fsyncing the database file inside someone's
// commit. With nothing new in the WAL a checkpoint reads its header only.
func (db *DB) checkpointer(every time.Duration) {
	defer close(db.ckptDone)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-db.ckptStop:
			return
		case <-t.C:
		}
		// Errors (SQLITE_BUSY from another process's checkpoint, say)
		// are left for the next tick; the writer's own automatic
		// checkpoint bounds the WAL whatever happens here.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, _ = db.ckpt.ExecContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`)
		cancel()
	}
}

// Close stops the checkpointer and closes the pools.
func (db *DB) Close() error {
	db.closeOnce.Do(func() { close(db.ckptStop) })
	<-db.ckptDone
	return errors.Join(db.rstmts.close(), db.wstmts.close(), db.ckpt.Close(), db.read.Close(), db.write.Close())
}

// migrate applies the embedded migrations that the file lacks, all in one
// transaction with their schema_migrations rows: a failed upgrade leaves
// the file as it was.
func (db *DB) migrate(ctx context.Context) error {
	ms, err := migrate.Load(migrationFS, "migrations")
	if err != nil {
		return err
	}
	// The transaction is IMMEDIATE (see _txlock), so another process
	// opening the same file waits here and then finds the work done.
	return db.writeTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version    INTEGER PRIMARY KEY,
			name       TEXT NOT NULL,
			applied_at INTEGER NOT NULL
		) STRICT`); err != nil {
			return fmt.Errorf("create schema_migrations: %w", err)
		}
		var cur int
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&cur); err != nil {
			return fmt.Errorf("read schema version: %w", err)
		}
		if cur > len(ms) {
			return migrate.TooNew(cur, len(ms))
		}
		for _, m := range ms[cur:] {
			if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
				return fmt.Errorf("apply migration %s: %w", m.Name, err)
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
				m.Version, m.Name, time.Now().UnixMicro()); err != nil {
				return fmt.Errorf("record migration %s: %w", m.Name, err)
			}
		}
		return nil
	})
}

// writeTx runs fn in a transaction on the writer connection.
func (db *DB) writeTx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// iamWrite is writeTx for IAM changes: it bumps the IAM generation in the
// same transaction, so a replica that sees the new generation also sees
// the change.
func (db *DB) iamWrite(ctx context.Context, fn func(*sql.Tx) error) error {
	var gen int64
	err := db.writeTx(ctx, func(tx *sql.Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		return tx.QueryRowContext(ctx, `UPDATE iam_generation SET value = value + 1 WHERE id = 1 RETURNING value`).Scan(&gen)
	})
	if err == nil {
		// Before the write returns: its caller's next request must be
		// decided with the new policies.
		db.gen.Bumped(gen)
	}
	return err
}

// readTx runs fn in a read transaction, so that the several queries one
// method makes see one snapshot.
func (db *DB) readTx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := db.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit()
}

func sqliteCode(err error) int {
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code()
	}
	return 0
}

func isUnique(err error) bool {
	c := sqliteCode(err)
	return c == sqlite3.SQLITE_CONSTRAINT_UNIQUE || c == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
}

func isForeignKey(err error) bool {
	return sqliteCode(err) == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY
}

// micros is how times are stored: microseconds since the epoch, UTC.
func micros(t time.Time) int64 { return t.UnixMicro() }

func fromMicros(v int64) time.Time { return time.UnixMicro(v).UTC() }

// nameKey is the form IAM names are unique in: without regard to case.
func nameKey(name string) string { return strings.ToLower(name) }

func pathOr(p string) string {
	if p == "" {
		return "/"
	}
	return p
}

// nonNil keeps NOT NULL BLOB columns from receiving NULL for an empty slice.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// GetMeta returns a deployment-wide setting.
func (db *DB) GetMeta(ctx context.Context, key string) (string, bool, error) {
	var v string
	err := db.read.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = ?`, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("get meta %q: %w", key, err)
	}
	return v, true, nil
}

// InitMeta sets key unless it is set and returns the value that holds.
func (db *DB) InitMeta(ctx context.Context, key, value string) (string, error) {
	var v string
	err := db.writeTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING`, key, value); err != nil {
			return err
		}
		return tx.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = ?`, key).Scan(&v)
	})
	if err != nil {
		return "", fmt.Errorf("init meta %q: %w", key, err)
	}
	return v, nil
}

// IAMGeneration returns the IAM generation counter: exact for writes
// through this handle, at most the WithIAMGenerationMaxAge old for writes
// by other processes.
func (db *DB) IAMGeneration(ctx context.Context) (int64, error) {
	return db.gen.Get(ctx, db.readIAMGeneration)
}

func (db *DB) readIAMGeneration(ctx context.Context) (int64, error) {
	var g int64
	if err := db.read.QueryRowContext(ctx, `SELECT value FROM iam_generation WHERE id = 1`).Scan(&g); err != nil {
		return 0, fmt.Errorf("iam generation: %w", err)
	}
	return g, nil
}
