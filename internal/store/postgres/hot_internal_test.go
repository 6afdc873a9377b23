package postgres

import (
	"testing"

	"github.com/kaginashi/kaginashi/internal/store/postgres/pgtest"
	"github.com/kaginashi/kaginashi/internal/store/storetest"
)

// TestAsyncPoolOnlyForKeyRecords: key records go through a pool whose
// sessions commit asynchronously; every other write keeps PostgreSQL's
// synchronous commit.
func TestAsyncPoolOnlyForKeyRecords(t *testing.T) {
	ctx := t.Context()
	db, err := Open(ctx, pgtest.Start(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// The test cluster runs with synchronous_commit=off for speed, so the
	// main pool is checked for not setting it (production servers default
	// to on), the key-record pool for setting it.
	if v, ok := db.pool.Config().ConnConfig.RuntimeParams["synchronous_commit"]; ok {
		t.Fatalf("the main pool sets synchronous_commit=%s; it must keep the server's setting", v)
	}
	var async string
	if err := db.async.QueryRow(ctx, `SHOW synchronous_commit`).Scan(&async); err != nil {
		t.Fatal(err)
	}
	if async != "off" {
		t.Fatalf("synchronous_commit of the key-record pool: %q, want off", async)
	}
}

// TestGroupCommit: key records and audit events queued together commit
// in one transaction (storetest.GroupCommit).
func TestGroupCommit(t *testing.T) {
	db, err := Open(t.Context(), pgtest.Start(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	storetest.GroupCommit(t, db, db.writes)
}
