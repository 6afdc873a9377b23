package postgres

import (
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/kaginashi/kaginashi/internal/store"
	"github.com/kaginashi/kaginashi/internal/store/postgres/pgtest"
	"github.com/kaginashi/kaginashi/internal/syncbuf"
)

// TestKeepServerLock: the server lock's connection is killed
// (pg_terminate_backend, as a PostgreSQL restart or failover would end
// it); the server takes the lock again by itself, says so at WARN while it
// has not, and a rotation is refused again once it has. If maintenance
// got the lock in the gap, the server waits for it and takes it back.
func TestKeepServerLock(t *testing.T) {
	ctx := t.Context()
	db, err := Open(ctx, pgtest.Start(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var logs syncbuf.Buffer
	release, held, err := db.KeepServerLock(ctx, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	holders := func() []int32 {
		t.Helper()
		rows, err := db.pool.Query(ctx, `SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND mode = 'ShareLock' AND granted
			AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`)
		if err != nil {
			t.Fatal(err)
		}
		var pids []int32
		for rows.Next() {
			var p int32
			if err := rows.Scan(&p); err != nil {
				t.Fatal(err)
			}
			pids = append(pids, p)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return pids
	}
	kill := func() int32 {
		t.Helper()
		pids := holders()
		if len(pids) != 1 || !held() {
			t.Fatalf("lock holders %v, held() %v: want one, held", pids, held())
		}
		if _, err := db.pool.Exec(ctx, `SELECT pg_terminate_backend($1)`, pids[0]); err != nil {
			t.Fatal(err)
		}
		return pids[0]
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s; log:\n%s", what, logs.String())
			}
		}
	}
	wantRefused := func(when string) {
		t.Helper()
		if rel, err := db.LockMaintenance(ctx); !errors.Is(err, store.ErrLocked) {
			if err == nil {
				rel()
			}
			t.Fatalf("%s: LockMaintenance = %v, want ErrLocked", when, err)
		}
	}
	wantRefused("at first")

	old := kill()
	waitFor("the lock to be taken again", func() bool { p := holders(); return held() && len(p) == 1 && p[0] != old })
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "server lock lost") {
		t.Errorf("no WARN about the lost lock:\n%s", logs.String())
	}
	wantRefused("after the lock was taken again")

	// Maintenance takes the lock in the gap: the server says so at WARN,
	// and takes the lock back once maintenance is done.
	kill()
	var maint func() error
	waitFor("maintenance to get the lock in the gap", func() bool {
		rel, err := db.LockMaintenance(ctx)
		if err == nil {
			maint = rel
		}
		return err == nil
	})
	waitFor("the server to see maintenance holds the lock", func() bool { return strings.Contains(logs.String(), "maintenance (rotate-master-key) holds it") })
	if held() {
		t.Fatal("held() while maintenance holds the lock")
	}
	if err := maint(); err != nil {
		t.Fatal(err)
	}
	waitFor("the lock to be taken back from maintenance", func() bool { return held() && len(holders()) == 1 })
	wantRefused("after maintenance")

	if err := release(); err != nil {
		t.Fatal(err)
	}
	if held() {
		t.Fatal("held() after release")
	}
	// The lock goes with its backend, which PostgreSQL ends a moment after
	// the connection closes.
	waitFor("the lock's backend to go after release", func() bool { return len(holders()) == 0 })
	rel, err := db.LockMaintenance(ctx)
	if err != nil {
		t.Fatalf("LockMaintenance after the server let go: %v", err)
	}
	rel()
}
