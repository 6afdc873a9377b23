package sqlite_test

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/kaginashi/kaginashi/internal/store"
	"github.com/kaginashi/kaginashi/internal/store/sqlite"
)

// TestUpgradeFrom0001 opens a database as the release before the agents
// migration left it (0001 applied, data in it) and checks that 0002 brings
// it up to date without losing anything.
func TestUpgradeFrom0001(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "kaginashi.db")
	schema0001, err := os.ReadFile("migrations/0001_init.sql")
	if err != nil {
		t.Fatal(err)
	}
	old, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	launch := time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)
	for _, stmt := range []struct {
		sql  string
		args []any
	}{
		// schema_migrations as the engine creates it.
		{`CREATE TABLE schema_migrations (
			version    INTEGER PRIMARY KEY,
			name       TEXT NOT NULL,
			applied_at INTEGER NOT NULL
		) STRICT`, nil},
		{string(schema0001), nil},
		{`INSERT INTO schema_migrations (version, name, applied_at) VALUES (1, '0001_init.sql', 0)`, nil},
		{`INSERT INTO meta (key, value) VALUES ('account-id', '123456789012')`, nil},
		{`INSERT INTO instances (id, state, launch_time, last_seen, hostname, private_ip, ipv6,
			os_id, os_version, os_pretty_name, platform, architecture, kernel, default_user,
			agent_version, sshd_version, host_keys, availability_zone)
			VALUES ('i-00000000000000001', 'running', ?1, ?1, 'old', '10.0.0.1', '', 'debian', '12', 'Debian 12',
			'Linux/UNIX', 'x86_64', '6.1', 'admin', '0.1.0', 'OpenSSH_9.2p1', '["ssh-ed25519 AAAA host"]', 'home-1a')`,
			[]any{launch.UnixMicro()}},
		{`INSERT INTO resource_tags (resource_id, key, value) VALUES ('i-00000000000000001', 'Name', 'old')`, nil},
	} {
		if _, err := old.ExecContext(ctx, stmt.sql, stmt.args...); err != nil {
			t.Fatalf("set up a 0001 database: %v", err)
		}
	}
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}

	db, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatalf("upgrade: %v", err)
	}
	defer db.Close()

	want := store.Instance{
		ID: "i-00000000000000001", State: store.StateRunning, LaunchTime: launch, LastSeen: launch,
		Hostname: "old", PrivateIP: "10.0.0.1", OSID: "debian", OSVersion: "12", OSPrettyName: "Debian 12",
		Platform: "Linux/UNIX", Architecture: "x86_64", Kernel: "6.1", DefaultUser: "admin",
		AgentVersion: "0.1.0", SSHDVersion: "OpenSSH_9.2p1", HostKeys: []string{"ssh-ed25519 AAAA host"},
		AvailabilityZ: "home-1a", Tags: []store.Tag{{Key: "Name", Value: "old"}},
	}
	got, err := db.GetInstance(ctx, want.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("instance after upgrade:\n got  %#v\n want %#v", got, want)
	}
	if v, ok, err := db.GetMeta(ctx, "account-id"); err != nil || !ok || v != "123456789012" {
		t.Fatalf("meta after upgrade: %q %v %v", v, ok, err)
	}

	// The new columns and table work on the upgraded file.
	want.AgentKey, want.SSHDConfigured, want.ClockSkewMillis = "SHA256:x", true, 42
	if err := db.PutInstance(ctx, want); err != nil {
		t.Fatal(err)
	}
	if got, err := db.GetInstance(ctx, want.ID); err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("instance written after upgrade: %+v %v", got, err)
	}
	useOnce(t, db)
	db.Close()

	// Reopening finds nothing left to do.
	db, err = sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	check, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer check.Close()
	var versions, names string
	if err := check.QueryRowContext(ctx, `SELECT group_concat(version, ','), group_concat(name, ',')
		FROM (SELECT version, name FROM schema_migrations ORDER BY version)`).Scan(&versions, &names); err != nil {
		t.Fatal(err)
	}
	if versions != "1,2,3,4,5,6" || names != "0001_init.sql,0002_agents.sql,0003_mfa.sql,0004_inventory_generation.sql,0005_agent_sessions.sql,0006_agent_ca.sql" {
		t.Fatalf("schema_migrations after upgrade: %s / %s", versions, names)
	}
}

// useOnce creates a join token and uses it.
func useOnce(t *testing.T, s store.Store) {
	t.Helper()
	h := sha256.Sum256([]byte("secret"))
	now := time.Now()
	tok := store.JoinToken{ID: "jt-00000000000000001", SecretHash: h[:], CreatedAt: now, ExpiresAt: now.Add(time.Hour), MaxUses: 1}
	if err := s.CreateJoinToken(t.Context(), tok); err != nil {
		t.Fatal(err)
	}
	if got, err := s.UseJoinToken(t.Context(), tok.ID, h[:], now); err != nil || got.Uses != 1 {
		t.Fatalf("UseJoinToken: %+v %v", got, err)
	}
}

// TestJoinTokenProcesses races uses of one token through several stores
// on one file, as several processes would: SQLite's write lock (BEGIN
// IMMEDIATE), not the one writer connection of a store, keeps the count.
func TestJoinTokenProcesses(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "kaginashi.db")
	const stores, n, maxUses = 3, 21, 3
	dbs := make([]*sqlite.DB, stores)
	for i := range dbs {
		db, err := sqlite.Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		dbs[i] = db
	}
	h := sha256.Sum256([]byte("secret"))
	now := time.Now()
	tok := store.JoinToken{ID: "jt-00000000000000001", SecretHash: h[:], CreatedAt: now, ExpiresAt: now.Add(time.Hour), MaxUses: maxUses}
	if err := dbs[0].CreateJoinToken(ctx, tok); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { _, errs[i] = dbs[i%stores].UseJoinToken(ctx, tok.ID, h[:], now) })
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, store.ErrTokenUnusable):
			t.Fatal(err)
		}
	}
	if won != maxUses {
		t.Fatalf("%d uses won, want %d", won, maxUses)
	}
}
