package postgres_test

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/kaginashi/kaginashi/internal/store"
	"github.com/kaginashi/kaginashi/internal/store/postgres"
	"github.com/kaginashi/kaginashi/internal/store/postgres/pgtest"
	"github.com/kaginashi/kaginashi/internal/store/storetest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func open(t *testing.T) store.Store {
	t.Helper()
	db, err := postgres.Open(t.Context(), pgtest.Start(t))
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

// TestConcurrentOpen starts several "replicas" on one empty database at
// once: the advisory lock lets one migrate and the others find it done.
func TestConcurrentOpen(t *testing.T) {
	url := pgtest.Start(t)
	const n = 6
	var wg sync.WaitGroup
	dbs := make([]*postgres.DB, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dbs[i], errs[i] = postgres.Open(t.Context(), url)
		}()
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("replica %d: %v", i, errs[i])
		}
		defer dbs[i].Close()
	}
	// Replicas share data: one writes, another reads.
	if _, err := dbs[0].InitMeta(t.Context(), "account-id", "123456789012"); err != nil {
		t.Fatal(err)
	}
	v, ok, err := dbs[n-1].GetMeta(t.Context(), "account-id")
	if err != nil || !ok || v != "123456789012" {
		t.Fatalf("GetMeta on another replica: %q %v %v", v, ok, err)
	}
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var count int
	if err := conn.QueryRow(t.Context(), `SELECT count(*) FROM schema_migrations`).Scan(&count); err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob("migrations/*.sql")
	if err != nil {
		t.Fatal(err)
	}
	if count != len(files) {
		t.Fatalf("schema_migrations has %d rows, want one per migration (%d)", count, len(files))
	}
}

func TestNewerSchemaRefused(t *testing.T) {
	url := pgtest.Start(t)
	db, err := postgres.Open(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(t.Context(), `INSERT INTO schema_migrations (version, name) VALUES (9999, '9999_future.sql')`); err != nil {
		t.Fatal(err)
	}
	_, err = postgres.Open(t.Context(), url)
	if err == nil || !strings.Contains(err.Error(), "newer kaginashi") {
		t.Fatalf("Open of a newer schema: %v", err)
	}
}
