package sqlite

import (
	"path/filepath"
	"testing"
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
