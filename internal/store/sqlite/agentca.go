package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/kaginashi/kaginashi/internal/store"
)

var _ store.AgentCAs = (*DB)(nil)

// SetAgentCA upserts the instance's agent CA.
func (db *DB) SetAgentCA(ctx context.Context, instanceID, ca string, at time.Time) error {
	err := db.writeTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO agent_cas (instance_id, ca, updated_at) VALUES (?, ?, ?)
			ON CONFLICT (instance_id) DO UPDATE SET ca = excluded.ca, updated_at = excluded.updated_at`, instanceID, ca, at.UnixMicro())
		return err
	})
	if err != nil && strings.Contains(err.Error(), "FOREIGN KEY") {
		return fmt.Errorf("set agent CA of %s: %w", instanceID, store.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("set agent CA of %s: %w", instanceID, err)
	}
	return nil
}

// InstancesNotOnCA lists the instances without a row for ca.
func (db *DB) InstancesNotOnCA(ctx context.Context, ca string) ([]string, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT i.id FROM instances i LEFT JOIN agent_cas a ON a.instance_id = i.id
		WHERE a.ca IS NULL OR a.ca <> ? ORDER BY i.id`, ca)
	if err != nil {
		return nil, fmt.Errorf("instances not on the agent CA: %w", err)
	}
	defer rows.Close()
	ids := []string{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("instances not on the agent CA: %w", err)
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}
