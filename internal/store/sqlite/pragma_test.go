package sqlite

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kaginashi/kaginashi/internal/store"
)

// TestPragmas checks the settings the store's guarantees rest on.
func TestPragmas(t *testing.T) {
	db, err := Open(t.Context(), filepath.Join(t.TempDir(), "k.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, c := range []struct {
		pragma string
		want   string
	}{
		{"journal_mode", "wal"},
		{"synchronous", "2"}, // FULL
		{"foreign_keys", "1"},
		{"busy_timeout", "5000"},
		{"wal_autocheckpoint", "16384"}, // a safety net: the checkpointer does it
	} {
		var got string
		if err := db.write.QueryRowContext(t.Context(), "PRAGMA "+c.pragma).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != c.want {
			t.Errorf("writer %s = %s, want %s", c.pragma, got, c.want)
		}
	}
	var queryOnly string
	if err := db.read.QueryRowContext(t.Context(), "PRAGMA query_only").Scan(&queryOnly); err != nil {
		t.Fatal(err)
	}
	if queryOnly != "1" {
		t.Errorf("reader query_only = %s", queryOnly)
	}
	if _, err := db.read.ExecContext(t.Context(), `INSERT INTO meta (key, value) VALUES ('x', 'y')`); err == nil {
		t.Error("a reader connection wrote")
	}
}

// TestCheckpointer: committed pages reach the database file without the
// writer checkpointing (its automatic checkpoint is far off).
func TestCheckpointer(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "k.db")
	db, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	size := func() int64 {
		t.Helper()
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	before := size()
	rec := []byte(strings.Repeat("x", 1000))
	now := time.Now()
	for i := range 200 {
		if err := db.AppendAudit(ctx, []store.AuditEvent{{ID: fmt.Sprint(i), Time: now, Name: "n", Source: "s", Record: rec}}); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for size() < before+150_000 {
		if time.Now().After(deadline) {
			t.Fatalf("the database file grew from %d to %d bytes only: no checkpoint", before, size())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}
