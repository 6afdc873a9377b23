package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/kaginashi/kaginashi/internal/store"
	"github.com/kaginashi/kaginashi/internal/store/internal/groupcommit"
)

// The hot path of SendSSHPublicKey: one instance read and one key record
// write per call.

// getInstanceQuery reads an instance and its tags in one statement (one
// round trip, one snapshot), one row per tag; the tag columns are NULL
// for an instance without tags.
const getInstanceQuery = `SELECT ` + instanceColumns + `, resource_tags.key, resource_tags.value
	FROM instances LEFT JOIN resource_tags ON resource_tags.resource_id = instances.id
	WHERE instances.id = $1 ORDER BY resource_tags.key`

func (db *DB) getInstance(ctx context.Context, id string) (store.Instance, error) {
	rows, err := db.pool.Query(ctx, getInstanceQuery, id)
	if err != nil {
		return store.Instance{}, err
	}
	defer rows.Close()
	var in store.Instance
	found := false
	for rows.Next() {
		var row store.Instance
		var key, value *string
		if err := rows.Scan(&row.ID, &row.State, &row.LaunchTime, &row.LastSeen, &row.Hostname, &row.PrivateIP, &row.IPv6,
			&row.OSID, &row.OSVersion, &row.OSPrettyName, &row.Platform, &row.Architecture, &row.Kernel, &row.DefaultUser,
			&row.AgentVersion, &row.SSHDVersion, &row.HostKeys, &row.AvailabilityZ,
			&row.AgentKey, &row.DefaultUserExists, &row.SSHDConfigured, &row.ClockSkewMillis, &key, &value); err != nil {
			return store.Instance{}, err
		}
		if !found {
			found = true
			in = row
			in.LaunchTime, in.LastSeen = utc(in.LaunchTime), utc(in.LastSeen)
			if len(in.HostKeys) == 0 {
				in.HostKeys = nil
			}
		}
		if key != nil && value != nil {
			in.Tags = append(in.Tags, store.Tag{Key: *key, Value: *value})
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

// openAsyncPool opens the small pool that key records are written
// through, its sessions set to synchronous_commit=off: an insert returns
// without waiting for its WAL to reach the disk.
//
// That is safe, and the record is still durable before SendSSHPublicKey
// answers, because the call's audit event is committed after it with the
// default synchronous_commit: PostgreSQL flushes the WAL up to that
// commit, and the WAL is one sequence, so the earlier key record's commit
// is flushed with it. A crash in between loses at most a record whose
// call never answered. A push thus waits for one WAL flush, not two.
func openAsyncPool(ctx context.Context, cfg *pgxpool.Config) (*pgxpool.Pool, error) {
	c := cfg.Copy()
	c.ConnConfig.RuntimeParams["synchronous_commit"] = "off"
	c.MaxConns = min(c.MaxConns, 4)
	c.MinConns = 0
	return pgxpool.NewWithConfig(ctx, c)
}

const putKeyRecordQuery = `INSERT INTO key_records
	(request_id, instance_id, os_user, public_key, fingerprint, caller_arn, created_at, expires_at)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`

func (db *DB) putKeyRecord(ctx context.Context, r store.KeyRecord) error {
	_, err := db.async.Exec(ctx, putKeyRecordQuery,
		r.RequestID, r.InstanceID, r.OSUser, r.PublicKey, r.Fingerprint, r.CallerARN, r.CreatedAt, r.ExpiresAt)
	if err != nil {
		return fmt.Errorf("asynchronous commit: %w", err)
	}
	return nil
}

// The key records and audit events of SendSSHPublicKey calls commit
// together (groupcommit): whatever is queued when the previous commit
// ends goes into one transaction, sent with COPY, so a call costs about
// one transaction and one WAL flush instead of a key-record transaction
// and an audit transaction.
func (db *DB) groupEngine() groupcommit.Engine {
	return groupcommit.Engine{Commit: db.commitGroup, Alone: db.writeAlone}
}

var (
	keyRecordColumns  = []string{"request_id", "instance_id", "os_user", "public_key", "fingerprint", "caller_arn", "created_at", "expires_at"}
	auditEventColumns = []string{"id", "event_time", "name", "source", "user_name", "access_key_id", "error_code", "record"}
)

// commitGroup writes a batch in one transaction. A batch with audit
// events commits on the main pool (synchronous_commit on: the events are
// durable when it returns, and the key records with them); a batch of key
// records only commits on the asynchronous pool (see openAsyncPool: their
// calls' audit events flush them).
func (db *DB) commitGroup(ctx context.Context, batch []*groupcommit.Item) error {
	var keys, events [][]any
	var finals []store.AuditEvent // final versions of write-ahead events: upserted, not copied
	audit := false
	for _, it := range batch {
		if it.IsAudit() {
			audit = true
			for _, e := range it.Events {
				if e.Replace {
					finals = append(finals, e)
					continue
				}
				events = append(events, auditRow(e))
			}
			continue
		}
		r := it.Record
		keys = append(keys, []any{r.RequestID, r.InstanceID, r.OSUser, r.PublicKey, r.Fingerprint, r.CallerARN, r.CreatedAt, r.ExpiresAt})
	}
	if !audit && len(keys) == 1 {
		return db.putKeyRecord(ctx, batch[0].Record) // one round trip, no transaction
	}
	pool := db.async
	if audit {
		pool = db.pool
	}
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if len(keys) > 0 {
			if _, err := tx.CopyFrom(ctx, pgx.Identifier{"key_records"}, keyRecordColumns, pgx.CopyFromRows(keys)); err != nil {
				return err
			}
		}
		if len(events) > 0 {
			if _, err := tx.CopyFrom(ctx, pgx.Identifier{"audit_events"}, auditEventColumns, pgx.CopyFromRows(events)); err != nil {
				return err
			}
		}
		return upsertAudit(ctx, tx, finals)
	})
}

// writeAlone writes one item of a failed batch in a transaction of its own.
func (db *DB) writeAlone(ctx context.Context, it *groupcommit.Item) {
	if it.IsAudit() {
		it.Err = db.appendAuditTx(ctx, it.Events)
		return
	}
	it.Err = db.putKeyRecord(ctx, it.Record)
}
