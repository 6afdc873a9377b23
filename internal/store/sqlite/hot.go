package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/kaginashi/kaginashi/internal/store"
)

// The hot paths — every SendSSHPublicKey reads an instance and writes a key
// record; every agent heartbeat touches an instance — use statements
// prepared once per connection: the driver prepares every other statement
// anew on each call, and parsing SQL costs as much as running these.

// stmtCache holds prepared statements of one pool, by SQL text. Only
// constant SQL texts go through it, so it stays small.
type stmtCache struct {
	db *sql.DB
	mu sync.Mutex
	m  map[string]*sql.Stmt
}

func newStmtCache(db *sql.DB) *stmtCache { return &stmtCache{db: db, m: map[string]*sql.Stmt{}} }

// get returns the prepared statement for query. database/sql prepares it
// again on each connection of the pool the first time it runs there.
func (c *stmtCache) get(ctx context.Context, query string) (*sql.Stmt, error) {
	c.mu.Lock()
	st := c.m[query]
	c.mu.Unlock()
	if st != nil {
		return st, nil
	}
	st, err := c.db.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old := c.m[query]; old != nil {
		st.Close()
		return old, nil
	}
	c.m[query] = st
	return st, nil
}

func (c *stmtCache) close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var errs []error
	for q, st := range c.m {
		errs = append(errs, st.Close())
		delete(c.m, q)
	}
	return errors.Join(errs...)
}

// getInstanceQuery reads an instance and its tags in one statement, one
// row per tag (tag columns NULL for an instance without tags): one
// statement sees one snapshot, so no transaction is needed.
const getInstanceQuery = `SELECT ` + instanceColumns + `, resource_tags.key, resource_tags.value
	FROM instances LEFT JOIN resource_tags ON resource_tags.resource_id = instances.id
	WHERE instances.id = ? ORDER BY resource_tags.key`

const putKeyRecordQuery = `INSERT INTO key_records
	(request_id, instance_id, os_user, public_key, fingerprint, caller_arn, created_at, expires_at)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?)`

// writeBatcher commits concurrent PutKeyRecord and AppendAudit calls
// together (group commit): with synchronous=FULL every commit is an fsync,
// key records arrive as fast as SendSSHPublicKey calls, and every call's
// audit event follows its key record. Both share the one writer
// connection, so rather than take turns — a key-record transaction, then
// an audit transaction — whatever is queued when the connection comes
// free goes into one transaction: a SendSSHPublicKey costs about one
// commit instead of two. There is no goroutine: the first caller to find
// no commit in progress commits everything queued, then hands the role to
// the first caller queued meanwhile.
type writeBatcher struct {
	db *DB

	mu    sync.Mutex
	busy  bool // a caller is committing a batch
	queue []*writeItem
}

// writeItem is one caller's write: a key record, or a batch of audit
// events (the audit writer's).
type writeItem struct {
	rec    store.KeyRecord
	events []store.AuditEvent // nil: rec is the write
	err    error
	wake   chan bool // true: commit the queue now; false: done, see err
}

// maxWriteBatch bounds one transaction (in items: an audit item is up to
// the audit writer's batch of events).
const maxWriteBatch = 256

func (b *writeBatcher) putKey(ctx context.Context, rec store.KeyRecord) error {
	return b.do(ctx, &writeItem{rec: rec})
}

func (b *writeBatcher) appendAudit(ctx context.Context, events []store.AuditEvent) error {
	return b.do(ctx, &writeItem{events: events})
}

func (b *writeBatcher) do(ctx context.Context, it *writeItem) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	it.wake = make(chan bool, 1)
	b.mu.Lock()
	b.queue = append(b.queue, it)
	if b.busy {
		b.mu.Unlock()
		// Wait whatever the context says: the write is queued, and its
		// fate decides the caller's answer.
		if lead := <-it.wake; !lead {
			return it.err
		}
		b.mu.Lock()
	}
	b.busy = true
	n := min(len(b.queue), maxWriteBatch)
	batch := b.queue[:n:n]
	b.queue = b.queue[n:]
	b.mu.Unlock()

	// The batch holds other callers' writes: one caller's cancellation
	// must not abandon them half-way.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	b.commit(cctx, batch)
	cancel()

	b.mu.Lock()
	if len(b.queue) > 0 {
		b.queue[0].wake <- true
	} else {
		b.busy = false
		b.queue = nil // let the backing array go
	}
	b.mu.Unlock()
	for _, x := range batch {
		if x != it {
			x.wake <- false
		}
	}
	return it.err
}

// commit writes a batch in one transaction. If that fails (a duplicate
// request or event ID, say), each item is written on its own, so that each
// caller gets its own write's outcome.
//
// A batch of key records only commits with synchronous=NORMAL: its WAL
// frames are written but not fsynced. That is safe and still durable
// before the answer leaves, because every key record is followed, before
// its SendSSHPublicKey call answers, by that call's audit event, committed
// with synchronous=FULL on the same WAL file: that fsync flushes the key
// record's frames too. A crash in between loses at most a record whose
// call never answered; WAL mode never corrupts the database either way.
// A batch with audit events commits with synchronous=FULL (the writer
// connection's setting), which makes its key records durable at once.
func (b *writeBatcher) commit(ctx context.Context, batch []*writeItem) {
	err := b.commitBatch(ctx, batch)
	if err == nil || len(batch) == 1 {
		for _, it := range batch {
			it.err = err
		}
		return
	}
	ins, err := b.db.wstmts.get(ctx, putKeyRecordQuery)
	for _, it := range batch {
		switch {
		case it.events != nil:
			it.err = b.db.appendAuditTx(ctx, it.events)
		case err != nil:
			it.err = err
		default:
			it.err = execKeyRecord(ctx, ins, it.rec)
		}
	}
}

func (b *writeBatcher) commitBatch(ctx context.Context, batch []*writeItem) (err error) {
	audit := false
	for _, it := range batch {
		audit = audit || it.events != nil
	}
	// Prepared before the transaction takes the one writer connection
	// (preparing needs it too).
	keys, err := b.db.wstmts.get(ctx, putKeyRecordQuery)
	if err != nil {
		return err
	}
	events, err := b.db.wstmts.get(ctx, appendAuditQuery)
	if err != nil {
		return err
	}
	if audit {
		return b.db.writeTx(ctx, func(tx *sql.Tx) error { return writeItems(ctx, tx, keys, events, batch) })
	}
	// The pragma is the connection's: hold the connection so that no
	// other write commits under it, and restore it before letting go.
	conn, err := b.db.write.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `PRAGMA synchronous = NORMAL`); err != nil {
		return err
	}
	defer func() {
		if _, rerr := conn.ExecContext(ctx, `PRAGMA synchronous = FULL`); rerr != nil {
			// Never hand back a connection that would commit without
			// fsync: drop it; the pool opens a fresh one with the DSN's
			// synchronous=FULL.
			_ = conn.Raw(func(any) error { return driver.ErrBadConn })
			err = errors.Join(err, fmt.Errorf("restoring synchronous=FULL: %w", rerr))
		}
	}()
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := writeItems(ctx, tx, keys, events, batch); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// writeItems inserts a batch's key records and audit events in tx with the
// writer pool's prepared statements.
func writeItems(ctx context.Context, tx *sql.Tx, keyIns, eventIns *sql.Stmt, batch []*writeItem) error {
	var keys, events *sql.Stmt
	for _, it := range batch {
		if it.events != nil {
			if events == nil {
				events = tx.StmtContext(ctx, eventIns)
				defer events.Close()
			}
			if err := insertAudit(ctx, events, it.events); err != nil {
				return err
			}
			continue
		}
		if keys == nil {
			keys = tx.StmtContext(ctx, keyIns)
			defer keys.Close()
		}
		if err := execKeyRecord(ctx, keys, it.rec); err != nil {
			return err
		}
	}
	return nil
}

func execKeyRecord(ctx context.Context, st *sql.Stmt, r store.KeyRecord) error {
	_, err := st.ExecContext(ctx, r.RequestID, r.InstanceID, r.OSUser, r.PublicKey, r.Fingerprint, r.CallerARN, micros(r.CreatedAt), micros(r.ExpiresAt))
	return err
}

// getInstance is GetInstance's query.
func (db *DB) getInstance(ctx context.Context, id string) (store.Instance, error) {
	st, err := db.rstmts.get(ctx, getInstanceQuery)
	if err != nil {
		return store.Instance{}, err
	}
	rows, err := st.QueryContext(ctx, id)
	if err != nil {
		return store.Instance{}, err
	}
	defer rows.Close()
	var in store.Instance
	found := false
	for rows.Next() {
		var launch, seen int64
		var hostKeys string
		var key, value sql.NullString
		if err := rows.Scan(&in.ID, &in.State, &launch, &seen, &in.Hostname, &in.PrivateIP, &in.IPv6,
			&in.OSID, &in.OSVersion, &in.OSPrettyName, &in.Platform, &in.Architecture, &in.Kernel, &in.DefaultUser,
			&in.AgentVersion, &in.SSHDVersion, &hostKeys, &in.AvailabilityZ,
			&in.AgentKey, &in.DefaultUserExists, &in.SSHDConfigured, &in.ClockSkewMillis, &key, &value); err != nil {
			return store.Instance{}, err
		}
		if !found {
			found = true
			in.LaunchTime = fromMicros(launch)
			in.LastSeen = fromMicros(seen)
			if in.HostKeys, err = decodeHostKeys(hostKeys); err != nil {
				return store.Instance{}, fmt.Errorf("instance %s host keys: %w", in.ID, err)
			}
		}
		if key.Valid {
			in.Tags = append(in.Tags, store.Tag{Key: key.String, Value: value.String})
		}
	}
	if err := rows.Err(); err != nil {
		return store.Instance{}, err
	}
	if !found {
		return store.Instance{}, store.ErrNotFound
	}
	return in, nil
}

// decodeHostKeys reads the host_keys column (a JSON array; none: nil).
func decodeHostKeys(s string) ([]string, error) {
	var keys []string
	if err := json.Unmarshal([]byte(s), &keys); err != nil {
		return nil, err
	}
	if len(keys) == 0 {
		return nil, nil
	}
	return keys, nil
}
