// Package migrate reads an engine's embedded, numbered migrations. Each
// engine applies them itself (the SQL to lock and record them differs);
// this package only keeps the two engines agreeing on what a migration is.
package migrate

import (
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
)

// Migration is one schema step: migrations/0001_init.sql is version 1.
type Migration struct {
	Version int
	Name    string // the file name, recorded for people reading the table
	SQL     string
}

// Load returns the .sql files in dir of fsys ordered by version. Versions
// must start at 1 and have no gaps or duplicates, so that "the highest
// version applied" says exactly which migrations a database has.
func Load(fsys fs.FS, dir string) ([]Migration, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("read migrations: %w", err)
	}
	var ms []Migration
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".sql") {
			continue
		}
		num, _, ok := strings.Cut(name, "_")
		if !ok {
			return nil, fmt.Errorf("migration %s: want NNNN_name.sql", name)
		}
		v, err := strconv.Atoi(num)
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %s: want NNNN_name.sql", name)
		}
		b, err := fs.ReadFile(fsys, path.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("read migration %s: %w", name, err)
		}
		ms = append(ms, Migration{Version: v, Name: name, SQL: string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].Version < ms[j].Version })
	for i, m := range ms {
		if m.Version != i+1 {
			return nil, fmt.Errorf("migration %s: version %d, want %d (no gaps or duplicates)", m.Name, m.Version, i+1)
		}
	}
	if len(ms) == 0 {
		return nil, fmt.Errorf("no migrations in %s", dir)
	}
	return ms, nil
}

// TooNew is the error for a database whose schema is newer than the binary:
// an older binary would misread it, so it refuses to run.
func TooNew(dbVersion, known int) error {
	return fmt.Errorf("database schema is at version %d but this kaginashi knows versions up to %d: run a newer kaginashi (or restore a backup taken before the upgrade)", dbVersion, known)
}
