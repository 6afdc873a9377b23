package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/kaginashi/kaginashi/internal/store"
)

// Agent sessions across replicas (migration 0005). SQLite suits one
// server, but the table is the same so the server code is too.

var _ store.AgentSessions = (*DB)(nil)

// ClaimAgentSession records the replica holding an instance's agent.
func (db *DB) ClaimAgentSession(ctx context.Context, s store.AgentSession) (int64, error) {
	var epoch int64
	err := db.writeTx(ctx, func(tx *sql.Tx) error {
		if err := tx.QueryRowContext(ctx, `UPDATE agent_session_epoch SET value = value + 1 WHERE id = 1 RETURNING value`).Scan(&epoch); err != nil {
			return err
		}
		ports, err := json.Marshal(s.AllowedPorts)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO agent_sessions (instance_id, replica_id, peer_url, connected_at, epoch, ssh_port, allowed_ports) VALUES (?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (instance_id) DO UPDATE SET replica_id = excluded.replica_id, peer_url = excluded.peer_url,
				connected_at = excluded.connected_at, epoch = excluded.epoch, ssh_port = excluded.ssh_port, allowed_ports = excluded.allowed_ports`,
			s.InstanceID, s.ReplicaID, s.PeerURL, micros(s.ConnectedAt), epoch, s.SSHPort, string(ports))
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("claim agent session %s: %w", s.InstanceID, err)
	}
	return epoch, nil
}

// GetAgentSession returns the current claim for an instance.
func (db *DB) GetAgentSession(ctx context.Context, instanceID string) (store.AgentSession, error) {
	s := store.AgentSession{InstanceID: instanceID}
	var at int64
	var ports string
	err := db.read.QueryRowContext(ctx, `SELECT replica_id, peer_url, connected_at, epoch, ssh_port, allowed_ports FROM agent_sessions WHERE instance_id = ?`, instanceID).
		Scan(&s.ReplicaID, &s.PeerURL, &at, &s.Epoch, &s.SSHPort, &ports)
	if errors.Is(err, sql.ErrNoRows) {
		return store.AgentSession{}, fmt.Errorf("agent session %s: %w", instanceID, store.ErrNotFound)
	}
	if err != nil {
		return store.AgentSession{}, fmt.Errorf("agent session %s: %w", instanceID, err)
	}
	s.ConnectedAt = fromMicros(at)
	if err := json.Unmarshal([]byte(ports), &s.AllowedPorts); err != nil {
		return store.AgentSession{}, fmt.Errorf("agent session %s ports: %w", instanceID, err)
	}
	return s, nil
}

// ReleaseAgentSession removes a claim that is still current.
func (db *DB) ReleaseAgentSession(ctx context.Context, instanceID, replicaID string, epoch int64) (bool, error) {
	n, err := db.deleteSessions(ctx, `DELETE FROM agent_sessions WHERE instance_id = ? AND replica_id = ? AND epoch = ?`, instanceID, replicaID, epoch)
	if err != nil {
		return false, fmt.Errorf("release agent session %s: %w", instanceID, err)
	}
	return n == 1, nil
}

// ReleaseReplicaSessions removes every claim of a replica.
func (db *DB) ReleaseReplicaSessions(ctx context.Context, replicaID string) (int, error) {
	n, err := db.deleteSessions(ctx, `DELETE FROM agent_sessions WHERE replica_id = ?`, replicaID)
	if err != nil {
		return 0, fmt.Errorf("release the agent sessions of replica %s: %w", replicaID, err)
	}
	return n, nil
}

// ReleasePeerSessions removes the claims other replicas made under peerURL.
func (db *DB) ReleasePeerSessions(ctx context.Context, peerURL, keepReplicaID string) (int, error) {
	n, err := db.deleteSessions(ctx, `DELETE FROM agent_sessions WHERE peer_url = ? AND replica_id <> ?`, peerURL, keepReplicaID)
	if err != nil {
		return 0, fmt.Errorf("release the agent sessions left at %s: %w", peerURL, err)
	}
	return n, nil
}

func (db *DB) deleteSessions(ctx context.Context, query string, args ...any) (int, error) {
	var n int64
	err := db.writeTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, query, args...)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return int(n), err
}
