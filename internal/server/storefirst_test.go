package server

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kaginashi/kaginashi/internal/store"
	"github.com/kaginashi/kaginashi/internal/store/postgres"
	"github.com/kaginashi/kaginashi/internal/store/postgres/pgtest"
	"github.com/kaginashi/kaginashi/internal/syncbuf"
)

// refusedRun runs o, which must be refused with an error containing want,
// and checks that the new data dir (and the new directory above it) is
// not left behind.
func refusedRun(t *testing.T, o Options, want string) {
	t.Helper()
	top := filepath.Join(t.TempDir(), "new")
	o.DataDir = filepath.Join(top, "kd")
	o.Insecure, o.Listen, o.NoConsole, o.Stdout = true, "127.0.0.1:0", true, io.Discard
	o.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	err := Run(ctx, o)
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("Run = %v, want an error with %q", err, want)
	}
	if _, serr := os.Stat(top); !os.IsNotExist(serr) {
		entries, _ := os.ReadDir(o.DataDir)
		t.Fatalf("the refused start (%v) left %s behind: %v", err, top, entries)
	}
}

// TestStoreRefusalLeavesNothing: a start refused for its store leaves no
// data dir: PostgreSQL unreachable (reached before the data dir is made,
// where it used to leave an empty one), a SQLite file that cannot be made.
func TestStoreRefusalLeavesNothing(t *testing.T) {
	t.Run("PostgreSQL unreachable", func(t *testing.T) {
		refusedRun(t, Options{StoreURL: "postgres://kaginashi@127.0.0.1:1/none?connect_timeout=5"}, "store: ")
	})
	t.Run("SQLite in a missing directory", func(t *testing.T) {
		refusedRun(t, Options{StoreURL: "sqlite:" + filepath.Join(t.TempDir(), "no", "such", "k.db")}, "store: ")
	})
}

// TestStoreChecksBeforeDataDir: with a real PostgreSQL, the refusals that
// need the store leave no new data dir: maintenance holding the store's
// lock (found before the data dir is made), and a new replica's data dir
// without the master key the store's secrets are sealed with, or with an
// --account-id other than the store's (found after; the empty directory
// is removed again).
func TestStoreChecksBeforeDataDir(t *testing.T) {
	pg := pgtest.Start(t)
	// A deployment on it: the first replica, which made the master key.
	first := filepath.Join(t.TempDir(), "kd1")
	_, stop := runServer(t, Options{DataDir: first, Listen: "127.0.0.1:0", StoreURL: pg, NoConsole: true, Insecure: true})(&syncbuf.Buffer{})
	stop()

	t.Run("maintenance running", func(t *testing.T) {
		st, err := postgres.Open(t.Context(), pg)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		release, err := store.Maintenance(st).LockMaintenance(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		defer release()
		refusedRun(t, Options{StoreURL: pg}, "a maintenance command")
	})
	t.Run("master key missing", func(t *testing.T) {
		refusedRun(t, Options{StoreURL: pg}, "the master key")
	})
	t.Run("another account", func(t *testing.T) {
		key, err := os.ReadFile(filepath.Join(first, "master.key"))
		if err != nil {
			t.Fatal(err)
		}
		t.Setenv("KAGINASHI_MASTER_KEY", strings.TrimSpace(string(key)))
		refusedRun(t, Options{StoreURL: pg, AccountID: "999999999999"}, "--account-id 999999999999 differs")
	})
}

// makeDataDir's undo removes only what it made, and only while empty.
func TestMakeDataDirUndo(t *testing.T) {
	base := t.TempDir()
	// There before: kept.
	existing := filepath.Join(base, "existing")
	if err := os.Mkdir(existing, 0o700); err != nil {
		t.Fatal(err)
	}
	undo, err := makeDataDir(existing)
	if err != nil {
		t.Fatal(err)
	}
	undo()
	if _, err := os.Stat(existing); err != nil {
		t.Fatalf("a data dir that was there before was removed: %v", err)
	}
	// Made, then written in: kept.
	written := filepath.Join(base, "a", "written")
	if undo, err = makeDataDir(written); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(written, "master.key"), []byte("k"), 0o600); err != nil {
		t.Fatal(err)
	}
	undo()
	if _, err := os.Stat(filepath.Join(written, "master.key")); err != nil {
		t.Fatalf("a data dir with a file in it was removed: %v", err)
	}
	// Made with its parents, still empty: all removed, nothing above.
	fresh := filepath.Join(base, "b", "c", "fresh")
	if undo, err = makeDataDir(fresh); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(fresh); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("made %v, %v", fi, err)
	}
	undo()
	if _, err := os.Stat(filepath.Join(base, "b")); !os.IsNotExist(err) {
		t.Fatalf("the parents made with it are left: %v", err)
	}
	if _, err := os.Stat(base); err != nil {
		t.Fatalf("a directory above was removed: %v", err)
	}
}
