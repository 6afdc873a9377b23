package sqlite_test

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kaginashi/kaginashi/internal/store"
	"github.com/kaginashi/kaginashi/internal/store/sqlite"
	"github.com/kaginashi/kaginashi/internal/store/storetest"
)

func open(t *testing.T) store.Store {
	t.Helper()
	db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "kaginashi.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Error(err)
		}
	})
	return db
}

func TestConformance(t *testing.T) {
	storetest.Run(t, open)
}

func TestFileMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kaginashi.db")
	db, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// A write makes sure the WAL file exists.
	if _, err := db.InitMeta(t.Context(), "k", "v"); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if m := fi.Mode().Perm(); m != 0o600 {
			t.Errorf("%s: mode %o, want 600", filepath.Base(p), m)
		}
	}
}

func TestReopenKeepsData(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "odd ?#% name.db")
	db, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.InitMeta(ctx, "account-id", "123456789012"); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	// The data went to the file at path, not to a mangled name.
	if fi, err := os.Stat(path); err != nil || fi.Size() == 0 {
		t.Fatalf("database file at %q: %v", path, err)
	}
	if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 1 {
		t.Fatalf("files beside the database: %v", entries)
	}
	db, err = sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	v, ok, err := db.GetMeta(ctx, "account-id")
	if err != nil || !ok || v != "123456789012" {
		t.Fatalf("after reopen: %q %v %v", v, ok, err)
	}
}

func TestNewerSchemaRefused(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "kaginashi.db")
	db, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	markNewer(t, path)
	_, err = sqlite.Open(ctx, path)
	if err == nil || !strings.Contains(err.Error(), "newer kaginashi") {
		t.Fatalf("Open of a newer schema: %v", err)
	}
}

// markNewer records a migration this binary does not know, as a newer
// kaginashi would have.
func markNewer(t *testing.T, path string) {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (9999, '9999_future.sql', 0)`); err != nil {
		t.Fatal(err)
	}
}

// TestCachedInstanceReplicas: handles on one file see each other's
// inventory writes through CachedInstance within their max age; a
// heartbeat of a running instance does not bump the inventory generation
// (it would empty every cache every few seconds).
func TestCachedInstanceReplicas(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "kaginashi.db")
	const maxAge = 300 * time.Millisecond
	handle := func(opts ...sqlite.Option) *sqlite.DB {
		db, err := sqlite.Open(ctx, path, opts...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
	writer := handle()
	storetest.CachedInstanceReplicas(t, writer, handle(sqlite.WithIAMGenerationMaxAge(time.Hour)), handle(sqlite.WithIAMGenerationMaxAge(maxAge)), maxAge)

	raw, err := sql.Open("sqlite", "file:"+path+"?_query_only=1")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	gen := func() int64 {
		t.Helper()
		var g int64
		if err := raw.QueryRowContext(ctx, `SELECT value FROM inventory_generation WHERE id = 1`).Scan(&g); err != nil {
			t.Fatal(err)
		}
		return g
	}
	storetest.InventoryGenerationHeartbeat(t, writer, gen)
}
