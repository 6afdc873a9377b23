package postgres

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/kaginashi/kaginashi/internal/store"
)

// defaultAuditLimit is AuditFilter's documented default page size.
const defaultAuditLimit = 50

// AppendAudit stores a batch of events in one transaction, sent with COPY:
// one round trip and one commit for the whole batch, shared with the key
// records and other batches queued meanwhile (groupcommit, hot.go).
func (db *DB) AppendAudit(ctx context.Context, events []store.AuditEvent) error {
	if len(events) == 0 {
		return nil
	}
	err := db.writes.AppendAudit(ctx, events)
	if isUnique(err) {
		err = store.ErrExists
	}
	if err != nil {
		return fmt.Errorf("append %d audit events: %w", len(events), err)
	}
	return nil
}

func auditRow(e store.AuditEvent) []any {
	return []any{e.ID, e.Time, e.Name, e.Source, e.UserName, e.AccessKeyID, e.ErrorCode, nonNil(e.Record)}
}

// appendAuditTx stores a batch of events in a transaction of its own.
func (db *DB) appendAuditTx(ctx context.Context, events []store.AuditEvent) error {
	var rows [][]any
	var finals []store.AuditEvent
	for _, e := range events {
		if e.Replace {
			finals = append(finals, e)
			continue
		}
		rows = append(rows, auditRow(e))
	}
	return db.writeTx(ctx, func(tx pgx.Tx) error {
		if len(rows) > 0 {
			if _, err := tx.CopyFrom(ctx, pgx.Identifier{"audit_events"}, auditEventColumns, pgx.CopyFromRows(rows)); err != nil {
				return err
			}
		}
		return upsertAudit(ctx, tx, finals)
	})
}

// upsertAuditQuery writes an event's final version over its write-ahead
// version (COPY cannot): the row keeps its seq, so a lookup paging with a
// cursor neither repeats nor skips the event when it changes between
// pages.
const upsertAuditQuery = `INSERT INTO audit_events
	(id, event_time, name, source, user_name, access_key_id, error_code, record)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
	ON CONFLICT (id) DO UPDATE SET event_time = excluded.event_time, name = excluded.name,
		source = excluded.source, user_name = excluded.user_name, access_key_id = excluded.access_key_id,
		error_code = excluded.error_code, record = excluded.record`

// upsertAudit writes final versions of write-ahead events in tx, sent in
// one round trip.
func upsertAudit(ctx context.Context, tx pgx.Tx, events []store.AuditEvent) error {
	if len(events) == 0 {
		return nil
	}
	var b pgx.Batch
	for _, e := range events {
		b.Queue(upsertAuditQuery, auditRow(e)...)
	}
	return tx.SendBatch(ctx, &b).Close()
}

// auditCursor is where a page ended: the last event's time (in
// microseconds) and sequence number. Events sort by (time, seq)
// descending, so the next page is everything strictly below it, which
// neither repeats nor skips an event.
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
	// Only conditions that apply are added, so that the planner can use
	// the index that fits (name, user or time). Values are parameters.
	var conds []string
	var args []any
	param := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if f.EventName != "" {
		conds = append(conds, "name = "+param(f.EventName))
	}
	if f.UserName != "" {
		conds = append(conds, "user_name = "+param(f.UserName))
	}
	if !f.Since.IsZero() {
		conds = append(conds, "event_time >= "+param(f.Since))
	}
	if !f.Until.IsZero() {
		conds = append(conds, "event_time < "+param(f.Until))
	}
	if f.Cursor != "" {
		c, err := parseAuditCursor(f.Cursor)
		if err != nil {
			return nil, "", fmt.Errorf("lookup audit: %w", err)
		}
		conds = append(conds, "(event_time, seq) < ("+param(time.UnixMicro(c.time))+", "+param(c.seq)+")")
	}
	query := `SELECT seq, id, event_time, name, source, user_name, access_key_id, error_code, record FROM audit_events`
	if len(conds) > 0 {
		query += " WHERE " + strings.Join(conds, " AND ")
	}
	query += " ORDER BY event_time DESC, seq DESC LIMIT " + param(limit+1)

	rows, err := db.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, "", fmt.Errorf("lookup audit: %w", err)
	}
	var cursors []auditCursor
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.AuditEvent, error) {
		var e store.AuditEvent
		var seq int64
		err := r.Scan(&seq, &e.ID, &e.Time, &e.Name, &e.Source, &e.UserName, &e.AccessKeyID, &e.ErrorCode, &e.Record)
		e.Time = utc(e.Time)
		cursors = append(cursors, auditCursor{e.Time.UnixMicro(), seq})
		return e, err
	})
	if err != nil {
		return nil, "", fmt.Errorf("lookup audit: %w", err)
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		next = cursors[limit-1].String()
	}
	if len(out) == 0 {
		out = nil
	}
	return out, next, nil
}
