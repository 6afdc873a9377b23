package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/kaginashi/kaginashi/internal/store"
	"github.com/kaginashi/kaginashi/internal/store/internal/groupcommit"
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

// The key records and audit events of SendSSHPublicKey calls commit
// together (groupcommit): both share the one writer connection, so rather
// than take turns — a key-record transaction, then an audit transaction —
// whatever is queued when the connection comes free goes into one
// transaction.
func (db *DB) groupEngine() groupcommit.Engine {
	return groupcommit.Engine{Commit: db.commitGroup, Alone: db.writeAlone}
}

// writeAlone writes one item of a failed batch in a transaction of its own.
func (db *DB) writeAlone(ctx context.Context, it *groupcommit.Item) {
	if it.IsAudit() {
		it.Err = db.appendAuditTx(ctx, it.Events)
		return
	}
	ins, err := db.wstmts.get(ctx, putKeyRecordQuery)
	if err == nil {
		err = execKeyRecord(ctx, ins, it.Record)
	}
	it.Err = err
}

// commitGroup writes a batch in one transaction.
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
func (db *DB) commitGroup(ctx context.Context, batch []*groupcommit.Item) (err error) {
	audit := false
	for _, it := range batch {
		audit = audit || it.IsAudit()
	}
	// Prepared before the transaction takes the one writer connection
	// (preparing needs it too).
	keys, err := db.wstmts.get(ctx, putKeyRecordQuery)
	if err != nil {
		return err
	}
	events, err := db.wstmts.get(ctx, appendAuditQuery)
	if err != nil {
		return err
	}
	if audit {
		return db.writeTx(ctx, func(tx *sql.Tx) error { return writeItems(ctx, tx, keys, events, batch) })
	}
	// The pragma is the connection's: hold the connection so that no
	// other write commits under it, and restore it before letting go.
	conn, err := db.write.Conn(ctx)
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
func writeItems(ctx context.Context, tx *sql.Tx, keyIns, eventIns *sql.Stmt, batch []*groupcommit.Item) error {
	var keys, events *sql.Stmt
	for _, it := range batch {
		if it.IsAudit() {
			if events == nil {
				events = tx.StmtContext(ctx, eventIns)
				defer events.Close()
			}
			if err := insertAudit(ctx, tx, events, it.Events); err != nil {
				return err
			}
			continue
		}
		if keys == nil {
			keys = tx.StmtContext(ctx, keyIns)
			defer keys.Close()
		}
		if err := execKeyRecord(ctx, keys, it.Record); err != nil {
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
