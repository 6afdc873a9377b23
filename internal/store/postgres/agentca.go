package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/kaginashi/kaginashi/internal/store"
)

var _ store.AgentCAs = (*DB)(nil)

// SetAgentCA upserts the instance's agent CA.
func (db *DB) SetAgentCA(ctx context.Context, instanceID, ca string, at time.Time) error {
	err := db.writeTx(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO agent_cas (instance_id, ca, updated_at) VALUES ($1, $2, $3)
			ON CONFLICT (instance_id) DO UPDATE SET ca = excluded.ca, updated_at = excluded.updated_at`, instanceID, ca, at)
		return err
	})
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "23503" { // foreign_key_violation
		return fmt.Errorf("set agent CA of %s: %w", instanceID, store.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("set agent CA of %s: %w", instanceID, err)
	}
	return nil
}

// InstancesNotOnCA lists the instances without a row for ca.
func (db *DB) InstancesNotOnCA(ctx context.Context, ca string) ([]string, error) {
	rows, err := db.pool.Query(ctx, `SELECT i.id FROM instances i LEFT JOIN agent_cas a ON a.instance_id = i.id
		WHERE a.ca IS NULL OR a.ca <> $1 ORDER BY i.id`, ca)
	if err != nil {
		return nil, fmt.Errorf("instances not on the agent CA: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("instances not on the agent CA: %w", err)
	}
	if ids == nil {
		ids = []string{}
	}
	return ids, nil
}
