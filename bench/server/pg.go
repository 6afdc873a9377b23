package main

import (
	"context"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/kaginashi/kaginashi/internal/store/postgres/pgtest"
)

// startPG starts a private PostgreSQL cluster (pgtest's) with the
// production durability defaults — the benchmark measures "durable before
// the answer leaves" — plus pg_stat_statements and whatever -pg-opts adds.
func startPG(ctx context.Context, opts []string) (*pgtest.Server, error) {
	return pgtest.NewServerWith(ctx, pgtest.Options{
		Durable:  true,
		Settings: append([]string{"shared_preload_libraries=pg_stat_statements"}, opts...),
	})
}

// pgSettingsOf reads the durability settings in force, for the report.
func pgSettingsOf(ctx context.Context, s *pgtest.Server) string {
	c, err := pgx.Connect(ctx, s.URL("postgres"))
	if err != nil {
		return "?"
	}
	defer c.Close(ctx)
	var parts []string
	for _, name := range []string{"server_version", "fsync", "synchronous_commit", "full_page_writes", "wal_sync_method", "shared_buffers"} {
		var v string
		if err := c.QueryRow(ctx, "SELECT current_setting($1)", name).Scan(&v); err == nil {
			parts = append(parts, name+"="+v)
		}
	}
	return strings.Join(parts, ", ")
}

// stmtStat is one pg_stat_statements row.
type stmtStat struct {
	Query  string
	Calls  int64
	TotalM float64 // total execution time, ms
}

// pgStatements reads pg_stat_statements for database db, most called first.
func pgStatements(ctx context.Context, s *pgtest.Server, db string) ([]stmtStat, error) {
	c, err := pgx.Connect(ctx, s.URL(db))
	if err != nil {
		return nil, err
	}
	defer c.Close(ctx)
	rows, err := c.Query(ctx, `SELECT regexp_replace(query, '\s+', ' ', 'g'), calls, total_exec_time
		FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
		ORDER BY calls DESC LIMIT 15`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (stmtStat, error) {
		var st stmtStat
		err := r.Scan(&st.Query, &st.Calls, &st.TotalM)
		return st, err
	})
}
