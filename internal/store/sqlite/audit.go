package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"

	"github.com/kaginashi/kaginashi/internal/store"
)

// defaultAuditLimit is AuditFilter's documented default page size.
const defaultAuditLimit = 50

const appendAuditQuery = `INSERT INTO audit_events
	(id, event_time, name, source, user_name, access_key_id, error_code, record)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?)`

// upsertAuditQuery writes an event's final version over its write-ahead
// version. DO UPDATE (not INSERT OR REPLACE, which deletes and inserts)
// keeps the row's seq, so a lookup paging with a cursor neither repeats
// nor skips the event when it changes between pages.
const upsertAuditQuery = `INSERT INTO audit_events
	(id, event_time, name, source, user_name, access_key_id, error_code, record)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?)
	ON CONFLICT (id) DO UPDATE SET event_time = excluded.event_time, name = excluded.name,
		source = excluded.source, user_name = excluded.user_name, access_key_id = excluded.access_key_id,
		error_code = excluded.error_code, record = excluded.record`

// AppendAudit stores a batch of events in one transaction: one fsync for
// the whole batch, shared with the key records and other batches queued
// meanwhile (groupcommit, hot.go).
func (db *DB) AppendAudit(ctx context.Context, events []store.AuditEvent) error {
	if len(events) == 0 {
		return nil
	}
	if err := db.writes.AppendAudit(ctx, events); err != nil {
		return fmt.Errorf("append %d audit events: %w", len(events), err)
	}
	return nil
}

// appendAuditTx stores a batch of events in a transaction of its own.
func (db *DB) appendAuditTx(ctx context.Context, events []store.AuditEvent) error {
	ins, err := db.wstmts.get(ctx, appendAuditQuery)
	if err != nil {
		return err
	}
	return db.writeTx(ctx, func(tx *sql.Tx) error {
		stmt := tx.StmtContext(ctx, ins) // prepared once on the writer connection
		defer stmt.Close()
		return insertAudit(ctx, tx, stmt, events)
	})
}

// insertAudit writes events in tx: new ones with stmt (prepared once),
// final versions of write-ahead events with the upsert, which is rare
// enough (one per mutating call, none on the SendSSHPublicKey path) not to
// need a prepared statement.
func insertAudit(ctx context.Context, tx *sql.Tx, stmt *sql.Stmt, events []store.AuditEvent) error {
	for _, e := range events {
		args := []any{e.ID, micros(e.Time), e.Name, e.Source, e.UserName, e.AccessKeyID, e.ErrorCode, nonNil(e.Record)}
		var err error
		if e.Replace {
			_, err = tx.ExecContext(ctx, upsertAuditQuery, args...)
		} else {
			_, err = stmt.ExecContext(ctx, args...)
		}
		if err != nil {
			if isUnique(err) {
				return fmt.Errorf("event %s: %w", e.ID, store.ErrExists)
			}
			return err
		}
	}
	return nil
}

// auditCursor is where a page ended: the last event's time and sequence
// number. Events sort by (time, seq) descending, so the next page is
// everything strictly below it, which neither repeats nor skips an event.
type auditCursor struct {
	time int64
	seq  int64
}

func (c auditCursor) String() string {
	return strconv.FormatInt(c.time, 10) + "." + strconv.FormatInt(c.seq, 10)
}

func parseAuditCursor(s string) (auditCursor, error) {
	t, q, ok := strings.Cut(s, ".")
	if ok {
		ti, err1 := strconv.ParseInt(t, 10, 64)
		qi, err2 := strconv.ParseInt(q, 10, 64)
		if err1 == nil && err2 == nil {
			return auditCursor{ti, qi}, nil
		}
	}
	return auditCursor{}, fmt.Errorf("audit cursor %q: %w", s, store.ErrInvalidCursor)
}

// LookupAudit returns matching events newest first, a page at a time.
func (db *DB) LookupAudit(ctx context.Context, f store.AuditFilter) ([]store.AuditEvent, string, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = defaultAuditLimit
	}
	// Only conditions that apply are added, so that SQLite can use the
	// index that fits (name, user or time). Values are parameters.
	var conds []string
	var args []any
	if f.EventName != "" {
		conds = append(conds, "name = ?")
		args = append(args, f.EventName)
	}
	if f.UserName != "" {
		conds = append(conds, "user_name = ?")
		args = append(args, f.UserName)
	}
	if !f.Since.IsZero() {
		conds = append(conds, "event_time >= ?")
		args = append(args, micros(f.Since))
	}
	if !f.Until.IsZero() {
		conds = append(conds, "event_time < ?")
		args = append(args, micros(f.Until))
	}
	if f.Cursor != "" {
		c, err := parseAuditCursor(f.Cursor)
		if err != nil {
			return nil, "", fmt.Errorf("lookup audit: %w", err)
		}
		conds = append(conds, "(event_time < ? OR (event_time = ? AND seq < ?))")
		args = append(args, c.time, c.time, c.seq)
	}
	query := `SELECT seq, id, event_time, name, source, user_name, access_key_id, error_code, record FROM audit_events`
	if len(conds) > 0 {
		query += " WHERE " + strings.Join(conds, " AND ")
	}
	query += " ORDER BY event_time DESC, seq DESC LIMIT ?"
	args = append(args, limit+1)

	rows, err := db.read.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, "", fmt.Errorf("lookup audit: %w", err)
	}
	defer rows.Close()
	var out []store.AuditEvent
	var cursors []auditCursor
	for rows.Next() {
		var e store.AuditEvent
		var c auditCursor
		if err := rows.Scan(&c.seq, &e.ID, &c.time, &e.Name, &e.Source, &e.UserName, &e.AccessKeyID, &e.ErrorCode, &e.Record); err != nil {
			return nil, "", fmt.Errorf("lookup audit: %w", err)
		}
		e.Time = fromMicros(c.time)
		out = append(out, e)
		cursors = append(cursors, c)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("lookup audit: %w", err)
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		next = cursors[limit-1].String()
	}
	return out, next, nil
}
