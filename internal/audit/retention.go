package audit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Pruner is the store's side of retention.
type Pruner interface {
	DeleteAuditBefore(ctx context.Context, cutoff time.Time, limit int) (int, error)
}

// Retention deletes audit events older than Keep, in batches, and records
// each pruning run as an audit event of its own (eventName
// DeleteAuditEvents), so that a gap in the trail is explained in it.
type Retention struct {
	Store Pruner
	// Audit records the run's event; nil: not recorded (tests only).
	Audit Recorder
	// Keep is how long events are kept; 0 or less keeps them forever
	// (Run returns at once).
	Keep time.Duration
	// Every is how often to look (default 1 h); the first run is right
	// at start.
	Every time.Duration
	// Batch is how many events one DELETE removes (default 1000): small
	// enough that API calls' audit commits, which share SQLite's one
	// writer, wait at most a few milliseconds behind it.
	Batch int
	// Pause between batches (default 50 ms) lets those commits through.
	Pause time.Duration
	// Account and Region fill the event's recipientAccountId and awsRegion.
	Account, Region string
	// Deleted, when set, is told each run's count (the metrics).
	Deleted func(n int)
	Log     *slog.Logger
	Now     func() time.Time
}

func (r *Retention) defaults() {
	if r.Every <= 0 {
		r.Every = time.Hour
	}
	if r.Batch <= 0 {
		r.Batch = 1000
	}
	if r.Pause <= 0 {
		r.Pause = 50 * time.Millisecond
	}
	if r.Now == nil {
		r.Now = time.Now
	}
	if r.Log == nil {
		r.Log = slog.New(slog.DiscardHandler)
	}
}

// Run prunes now and then every Every until ctx ends.
func (r *Retention) Run(ctx context.Context) {
	if r.Keep <= 0 {
		return
	}
	r.defaults()
	t := time.NewTicker(r.Every)
	defer t.Stop()
	for {
		if _, err := r.Prune(ctx); err != nil && ctx.Err() == nil {
			r.Log.Warn("audit retention: deleting old events failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Prune deletes every event older than Keep, a batch at a time, and
// records the run when it deleted anything. It returns how many it
// deleted; on an error, the count so far.
func (r *Retention) Prune(ctx context.Context) (int, error) {
	r.defaults()
	if r.Keep <= 0 {
		return 0, nil
	}
	start := r.Now()
	// One cutoff for the whole run: events that age past it meanwhile
	// wait for the next run rather than keeping this one going.
	cutoff := start.Add(-r.Keep)
	total := 0
	var err error
	for {
		var n int
		n, err = r.Store.DeleteAuditBefore(ctx, cutoff, r.Batch)
		total += n
		if err != nil || n < r.Batch {
			break
		}
		select {
		case <-ctx.Done():
			err = ctx.Err()
		case <-time.After(r.Pause):
			continue
		}
		break
	}
	if total > 0 {
		r.Log.Info("audit retention: deleted old events", "count", total, "before", cutoff.UTC().Format(time.RFC3339))
		if r.Deleted != nil {
			r.Deleted(total)
		}
		if rerr := r.record(ctx, start, cutoff, total, err); rerr != nil {
			err = errors.Join(err, rerr)
		}
	}
	if err != nil {
		return total, fmt.Errorf("audit retention: %w", err)
	}
	return total, nil
}

// record writes the run's own event: the server deleted events, by
// policy, and how many.
func (r *Retention) record(ctx context.Context, start, cutoff time.Time, n int, failure error) error {
	if r.Audit == nil {
		return nil
	}
	ev := serviceEvent("DeleteAuditEvents", start, r.Region, r.Account)
	ev.RequestParameters = map[string]any{
		"retention": r.Keep.String(), "deleteBefore": cutoff.UTC().Format(time.RFC3339),
	}
	ev.ResponseElements = map[string]any{"deletedCount": n}
	if failure != nil {
		ev.ErrorCode, ev.ErrorMessage = "InternalError", "stopped after deleting "+fmt.Sprint(n)+" events: "+failure.Error()
	}
	if err := r.Audit.Record(context.WithoutCancel(ctx), ev); err != nil {
		return fmt.Errorf("recording the deletion: %w", err)
	}
	return nil
}
