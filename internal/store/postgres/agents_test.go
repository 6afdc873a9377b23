package postgres_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"os"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/kaginashi/kaginashi/internal/store"
	"github.com/kaginashi/kaginashi/internal/store/postgres"
	"github.com/kaginashi/kaginashi/internal/store/postgres/pgtest"
)

// TestUpgradeFrom0001 opens a database as the release before the agents
// migration left it (0001 applied, data in it) and checks that 0002 brings
// it up to date without losing anything.
func TestUpgradeFrom0001(t *testing.T) {
	ctx := t.Context()
	url := pgtest.Start(t)
	schema0001, err := os.ReadFile("migrations/0001_init.sql")
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	launch := time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)
	for _, stmt := range []struct {
		sql  string
		args []any
	}{
		// schema_migrations as the engine creates it.
		{`CREATE TABLE schema_migrations (
			version    integer PRIMARY KEY,
			name       text NOT NULL,
			applied_at timestamptz NOT NULL DEFAULT now()
		)`, nil},
		{string(schema0001), nil},
		{`INSERT INTO schema_migrations (version, name) VALUES (1, '0001_init.sql')`, nil},
		{`INSERT INTO meta (key, value) VALUES ('account-id', '123456789012')`, nil},
		{`INSERT INTO instances (id, state, launch_time, last_seen, hostname, private_ip, ipv6,
			os_id, os_version, os_pretty_name, platform, architecture, kernel, default_user,
			agent_version, sshd_version, host_keys, availability_zone)
			VALUES ('i-00000000000000001', 'running', $1, $1, 'old', '10.0.0.1', '', 'debian', '12', 'Debian 12',
			'Linux/UNIX', 'x86_64', '6.1', 'admin', '0.1.0', 'OpenSSH_9.2p1', $2, 'home-1a')`,
			[]any{launch, []string{"ssh-ed25519 AAAA host"}}},
		{`INSERT INTO resource_tags (resource_id, key, value) VALUES ('i-00000000000000001', 'Name', 'old')`, nil},
	} {
		if _, err := conn.Exec(ctx, stmt.sql, stmt.args...); err != nil {
			t.Fatalf("set up a 0001 database: %v", err)
		}
	}

	db, err := postgres.Open(ctx, url)
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

	// The new columns and table work on the upgraded database.
	want.AgentKey, want.SSHDConfigured, want.ClockSkewMillis = "SHA256:x", true, 42
	if err := db.PutInstance(ctx, want); err != nil {
		t.Fatal(err)
	}
	if got, err := db.GetInstance(ctx, want.ID); err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("instance written after upgrade: %+v %v", got, err)
	}
	h := sha256.Sum256([]byte("secret"))
	now := time.Now()
	tok := store.JoinToken{ID: "jt-00000000000000001", SecretHash: h[:], CreatedAt: now, ExpiresAt: now.Add(time.Hour), MaxUses: 1}
	if err := db.CreateJoinToken(ctx, tok); err != nil {
		t.Fatal(err)
	}
	if got, err := db.UseJoinToken(ctx, tok.ID, h[:], now); err != nil || got.Uses != 1 {
		t.Fatalf("UseJoinToken: %+v %v", got, err)
	}

	// Another replica opening it finds nothing left to do.
	db2, err := postgres.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	db2.Close()
	var versions []int32
	var names []string
	if err := conn.QueryRow(ctx, `SELECT array_agg(version ORDER BY version), array_agg(name ORDER BY version) FROM schema_migrations`).
		Scan(&versions, &names); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(versions, []int32{1, 2, 3, 4, 5, 6}) || !reflect.DeepEqual(names, []string{"0001_init.sql", "0002_agents.sql", "0003_mfa.sql", "0004_inventory_generation.sql", "0005_agent_sessions.sql", "0006_agent_ca.sql"}) {
		t.Fatalf("schema_migrations after upgrade: %v %v", versions, names)
	}
}

// TestJoinTokenReplicas races uses of one token through several replicas
// (pools) on one database: the row lock, not anything in one process,
// keeps the count.
func TestJoinTokenReplicas(t *testing.T) {
	ctx := t.Context()
	url := pgtest.Start(t)
	const replicas, n, maxUses = 3, 21, 3
	dbs := make([]*postgres.DB, replicas)
	for i := range dbs {
		db, err := postgres.Open(ctx, url)
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
		wg.Go(func() { _, errs[i] = dbs[i%replicas].UseJoinToken(ctx, tok.ID, h[:], now) })
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
