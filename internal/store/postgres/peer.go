package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/kaginashi/kaginashi/internal/store"
)

// Agent sessions across replicas (migration 0005).

var _ store.AgentSessions = (*DB)(nil)

// ClaimAgentSession records the replica holding an instance's agent. The
// epoch is taken first; a claim whose epoch is below the row's (a claim
// that took its number earlier but reached the row lock later) changes
// nothing: it was superseded before it landed, and its release will be a
// no-op too.
func (db *DB) ClaimAgentSession(ctx context.Context, s store.AgentSession) (int64, error) {
	var epoch int64
	if err := db.pool.QueryRow(ctx, `SELECT nextval('agent_session_epoch')`).Scan(&epoch); err != nil {
		return 0, fmt.Errorf("claim agent session %s: %w", s.InstanceID, err)
	}
	ports, err := json.Marshal(s.AllowedPorts)
	if err != nil {
		return 0, fmt.Errorf("claim agent session %s: %w", s.InstanceID, err)
	}
	_, err = db.pool.Exec(ctx, `INSERT INTO agent_sessions (instance_id, replica_id, peer_url, connected_at, epoch, ssh_port, allowed_ports)
		VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (instance_id) DO UPDATE SET replica_id = EXCLUDED.replica_id, peer_url = EXCLUDED.peer_url,
			connected_at = EXCLUDED.connected_at, epoch = EXCLUDED.epoch, ssh_port = EXCLUDED.ssh_port, allowed_ports = EXCLUDED.allowed_ports
		WHERE agent_sessions.epoch < EXCLUDED.epoch`, s.InstanceID, s.ReplicaID, s.PeerURL, s.ConnectedAt.UTC(), epoch, s.SSHPort, string(ports))
	if err != nil {
		return 0, fmt.Errorf("claim agent session %s: %w", s.InstanceID, err)
	}
	return epoch, nil
}

// GetAgentSession returns the current claim for an instance.
func (db *DB) GetAgentSession(ctx context.Context, instanceID string) (store.AgentSession, error) {
	s := store.AgentSession{InstanceID: instanceID}
	var ports string
	err := db.pool.QueryRow(ctx, `SELECT replica_id, peer_url, connected_at, epoch, ssh_port, allowed_ports FROM agent_sessions WHERE instance_id = $1`, instanceID).
		Scan(&s.ReplicaID, &s.PeerURL, &s.ConnectedAt, &s.Epoch, &s.SSHPort, &ports)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.AgentSession{}, fmt.Errorf("agent session %s: %w", instanceID, store.ErrNotFound)
	}
	if err != nil {
		return store.AgentSession{}, fmt.Errorf("agent session %s: %w", instanceID, err)
	}
	s.ConnectedAt = s.ConnectedAt.UTC()
	if err := json.Unmarshal([]byte(ports), &s.AllowedPorts); err != nil {
		return store.AgentSession{}, fmt.Errorf("agent session %s ports: %w", instanceID, err)
	}
	return s, nil
}

// ReleaseAgentSession removes a claim that is still current.
func (db *DB) ReleaseAgentSession(ctx context.Context, instanceID, replicaID string, epoch int64) (bool, error) {
	tag, err := db.pool.Exec(ctx, `DELETE FROM agent_sessions WHERE instance_id = $1 AND replica_id = $2 AND epoch = $3`, instanceID, replicaID, epoch)
	if err != nil {
		return false, fmt.Errorf("release agent session %s: %w", instanceID, err)
	}
	return tag.RowsAffected() == 1, nil
}

// ReleaseReplicaSessions removes every claim of a replica.
func (db *DB) ReleaseReplicaSessions(ctx context.Context, replicaID string) (int, error) {
	tag, err := db.pool.Exec(ctx, `DELETE FROM agent_sessions WHERE replica_id = $1`, replicaID)
	if err != nil {
		return 0, fmt.Errorf("release the agent sessions of replica %s: %w", replicaID, err)
	}
	return int(tag.RowsAffected()), nil
}

// ReleasePeerSessions removes the claims other replicas made under peerURL.
func (db *DB) ReleasePeerSessions(ctx context.Context, peerURL, keepReplicaID string) (int, error) {
	tag, err := db.pool.Exec(ctx, `DELETE FROM agent_sessions WHERE peer_url = $1 AND replica_id <> $2`, peerURL, keepReplicaID)
	if err != nil {
		return 0, fmt.Errorf("release the agent sessions left at %s: %w", peerURL, err)
	}
	return int(tag.RowsAffected()), nil
}
