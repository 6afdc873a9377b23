package postgres

import (
	"context"
	"fmt"
	"time"
)

// DeleteAuditBefore deletes up to limit of the oldest events before
// cutoff, in (event_time, seq) order along the time index. Replicas
// running retention at once skip each other's rows (SKIP LOCKED) instead
// of waiting on them.
func (db *DB) DeleteAuditBefore(ctx context.Context, cutoff time.Time, limit int) (int, error) {
	if limit <= 0 {
		return 0, fmt.Errorf("delete audit events: limit %d is not positive", limit)
	}
	tag, err := db.pool.Exec(ctx, `DELETE FROM audit_events WHERE seq IN
		(SELECT seq FROM audit_events WHERE event_time < $1 ORDER BY event_time, seq LIMIT $2 FOR UPDATE SKIP LOCKED)`, cutoff, limit)
	if err != nil {
		return 0, fmt.Errorf("delete audit events before %s: %w", cutoff.UTC().Format(time.RFC3339), err)
	}
	return int(tag.RowsAffected()), nil
}
