package sqlite

import (
	"context"
	"fmt"
	"time"
)

// DeleteAuditBefore deletes up to limit of the oldest events before
// cutoff, in (event_time, seq) order along the time index.
func (db *DB) DeleteAuditBefore(ctx context.Context, cutoff time.Time, limit int) (int, error) {
	if limit <= 0 {
		return 0, fmt.Errorf("delete audit events: limit %d is not positive", limit)
	}
	res, err := db.write.ExecContext(ctx, `DELETE FROM audit_events WHERE seq IN
		(SELECT seq FROM audit_events WHERE event_time < ? ORDER BY event_time, seq LIMIT ?)`, micros(cutoff), limit)
	if err != nil {
		return 0, fmt.Errorf("delete audit events before %s: %w", cutoff.UTC().Format(time.RFC3339), err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("delete audit events: %w", err)
	}
	return int(n), nil
}
