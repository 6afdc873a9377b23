package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/kaginashi/kaginashi/internal/store"
)

var _ store.ServerLockKeeper = (*DB)(nil)

// Keeping the server lock: how often its connection is checked, and the
// backoff between attempts to take it again once lost.
const (
	lockCheckEvery = 2 * time.Second
	lockRetryMin   = 500 * time.Millisecond
	lockRetryMax   = 30 * time.Second
	lockPingWait   = 5 * time.Second
)

// KeepServerLock takes the server lock shared on a connection of its own
// and keeps it while the server runs. A session-level advisory lock dies
// with its connection: when PostgreSQL restarts, fails over, or the
// network drops the connection, nothing else would take it again until
// the server's next start, and rotate-master-key could then run beside a
// live server. So a goroutine pings the connection every lockCheckEvery;
// once it fails, it reconnects and takes the lock again, backing off from
// lockRetryMin to lockRetryMax, logging at WARN each attempt until it
// holds it. If maintenance took the lock meanwhile, the server keeps
// serving (stopping would be worse) and keeps asking — loudly.
func (db *DB) KeepServerLock(ctx context.Context, log *slog.Logger) (func() error, func() bool, error) {
	conn, err := db.lockConn(ctx, `SELECT pg_try_advisory_lock_shared($1)`)
	if err != nil {
		return nil, nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	k := &lockKeeper{db: db, log: log, conn: conn, stop: make(chan struct{}), done: make(chan struct{}),
		every: lockCheckEvery, retryMin: lockRetryMin, retryMax: lockRetryMax}
	k.held.Store(true)
	go k.run()
	return k.release, k.held.Load, nil
}

// lockConn connects outside the pool and runs a pg_try_advisory_lock
// query on the server lock's key: the connection, holding the lock, or
// store.ErrLocked.
func (db *DB) lockConn(ctx context.Context, query string) (*pgx.Conn, error) {
	conn, err := pgx.ConnectConfig(ctx, db.pool.Config().ConnConfig.Copy())
	if err != nil {
		return nil, fmt.Errorf("server lock: %w", err)
	}
	var ok bool
	if err := conn.QueryRow(ctx, query, serverLock).Scan(&ok); err != nil {
		conn.Close(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("server lock: %w", err)
	}
	if !ok {
		conn.Close(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("server lock: %w", store.ErrLocked)
	}
	return conn, nil
}

type lockKeeper struct {
	db   *DB
	log  *slog.Logger
	conn *pgx.Conn // nil while not held; only run (then release) uses it
	held atomic.Bool

	every, retryMin, retryMax time.Duration
	stop, done                chan struct{}
	stopped                   atomic.Bool
}

func (k *lockKeeper) release() error {
	if k.stopped.Swap(true) {
		return nil
	}
	close(k.stop)
	<-k.done
	k.held.Store(false)
	if k.conn != nil {
		return unlockAndClose(k.conn)
	}
	return nil
}

// unlockAndClose releases a lock connection's advisory locks, then closes
// it. Closing alone drops them too, but only when the backend process
// exits, after Close has returned: a lock tried right after (maintenance
// as soon as a server stopped) could still find them held.
func unlockAndClose(conn *pgx.Conn) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// An error here (a connection already broken) is no matter: its
	// locks went with it.
	_, _ = conn.Exec(ctx, `SELECT pg_advisory_unlock_all()`)
	return conn.Close(ctx)
}

func (k *lockKeeper) run() {
	defer close(k.done)
	tick := time.NewTicker(k.every)
	defer tick.Stop()
	for {
		select {
		case <-k.stop:
			return
		case <-tick.C:
		}
		if k.alive() {
			continue
		}
		k.held.Store(false)
		k.log.Warn("server lock lost: its PostgreSQL connection ended; taking it again. Until then maintenance (rotate-master-key) is not kept away from this server")
		if !k.retake() {
			return
		}
	}
}

// alive pings the lock's connection.
func (k *lockKeeper) alive() bool {
	ctx, cancel := context.WithTimeout(context.Background(), lockPingWait)
	defer cancel()
	if err := k.conn.Ping(ctx); err != nil {
		k.conn.Close(ctx)
		k.conn = nil
		return false
	}
	return true
}

// retake takes the lock again, with backoff; false when stopped first.
func (k *lockKeeper) retake() bool {
	wait := k.retryMin
	for attempt := 1; ; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		conn, err := k.db.lockConn(ctx, `SELECT pg_try_advisory_lock_shared($1)`)
		cancel()
		if err == nil {
			k.conn = conn
			k.held.Store(true)
			k.log.Info("server lock taken again", "attempts", attempt)
			return true
		}
		if errors.Is(err, store.ErrLocked) {
			k.log.Warn("server lock not held: maintenance (rotate-master-key) holds it while this server runs; retrying", "attempt", attempt, "retry_in", wait)
		} else {
			k.log.Warn("server lock not held: cannot reach PostgreSQL; retrying", "attempt", attempt, "retry_in", wait, "err", err)
		}
		select {
		case <-k.stop:
			return false
		case <-time.After(wait):
		}
		wait = min(2*wait, k.retryMax)
	}
}
