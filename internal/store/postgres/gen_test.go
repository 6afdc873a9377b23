package postgres_test

import (
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/kaginashi/kaginashi/internal/store"
	"github.com/kaginashi/kaginashi/internal/store/postgres"
	"github.com/kaginashi/kaginashi/internal/store/postgres/pgtest"
	"github.com/kaginashi/kaginashi/internal/store/storetest"
)

// TestIAMGenerationReplicas: a replica sees its own IAM writes at once
// and another replica's within the max age it is configured with.
func TestIAMGenerationReplicas(t *testing.T) {
	ctx := t.Context()
	url := pgtest.Start(t)
	const maxAge = 300 * time.Millisecond
	a, err := postgres.Open(ctx, url, postgres.WithIAMGenerationMaxAge(maxAge))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := postgres.Open(ctx, url, postgres.WithIAMGenerationMaxAge(maxAge))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	gen := func(db *postgres.DB) int64 {
		t.Helper()
		g, err := db.IAMGeneration(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return g
	}
	ga, gb := gen(a), gen(b)
	start := time.Now()
	if err := a.CreateUser(ctx, store.User{ID: "AIDAEXAMPLEEXAMPLE01", Name: "alice", Path: "/", CreateDate: start}); err != nil {
		t.Fatal(err)
	}
	if g := gen(a); g <= ga {
		t.Fatalf("writer's generation after its write: %d, want more than %d", g, ga)
	}
	deadline := time.Now().Add(maxAge + 2*time.Second)
	for gen(b) <= gb {
		if time.Now().After(deadline) {
			t.Fatalf("the other replica did not see the write within %v", maxAge)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if waited := time.Since(start); waited > maxAge+time.Second {
		t.Fatalf("the other replica saw the write after %v, want about %v at most", waited, maxAge)
	}
}

// TestCachedInstanceReplicas: replicas see each other's inventory writes
// through CachedInstance within their max age; a heartbeat of a running
// instance does not bump the inventory generation.
func TestCachedInstanceReplicas(t *testing.T) {
	ctx := t.Context()
	url := pgtest.Start(t)
	const maxAge = 300 * time.Millisecond
	handle := func(opts ...postgres.Option) *postgres.DB {
		db, err := postgres.Open(ctx, url, opts...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
	writer := handle()
	storetest.CachedInstanceReplicas(t, writer, handle(postgres.WithIAMGenerationMaxAge(time.Hour)), handle(postgres.WithIAMGenerationMaxAge(maxAge)), maxAge)

	raw, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close(ctx)
	gen := func() int64 {
		t.Helper()
		var g int64
		if err := raw.QueryRow(ctx, `SELECT value FROM inventory_generation WHERE id = 1`).Scan(&g); err != nil {
			t.Fatal(err)
		}
		return g
	}
	storetest.InventoryGenerationHeartbeat(t, writer, gen)
}
