package store

import (
	"context"
	"time"
)

// AgentSession says which server replica holds an instance's agent
// connection, so that a push or a tunnel arriving at another replica can be
// forwarded to it (internal/peer). The SQLite and PostgreSQL engines both
// implement AgentSessions; it is a separate interface because only the
// replica routing uses it.
type AgentSession struct {
	InstanceID string
	// ReplicaID names the server process that holds the connection (a
	// random ID per process start).
	ReplicaID string
	// PeerURL is where the other replicas reach that process.
	PeerURL     string
	ConnectedAt time.Time
	// Epoch orders claims: every claim gets a number higher than any
	// before it (for any instance), so a stale release — of a session that
	// another claim has replaced since — changes nothing.
	Epoch int64
	// SSHPort and AllowedPorts are the agent's report at connection time
	// (0 and nil: unknown), so that every replica can show them.
	SSHPort      int
	AllowedPorts []int
}

// AgentSessions is the table of agent connections across replicas.
type AgentSessions interface {
	// ClaimAgentSession records that s.ReplicaID now holds s.InstanceID's
	// agent, replacing any earlier claim (a newer connection wins: the
	// old one is dead or about to be), and returns the claim's epoch.
	ClaimAgentSession(ctx context.Context, s AgentSession) (int64, error)
	// GetAgentSession returns the current claim for an instance, or
	// ErrNotFound.
	GetAgentSession(ctx context.Context, instanceID string) (AgentSession, error)
	// ReleaseAgentSession removes the claim if it is still this one (same
	// replica and epoch); it reports whether it did.
	ReleaseAgentSession(ctx context.Context, instanceID, replicaID string, epoch int64) (bool, error)
	// ReleaseReplicaSessions removes every claim of a replica (its
	// graceful stop) and returns how many.
	ReleaseReplicaSessions(ctx context.Context, replicaID string) (int, error)
	// ReleasePeerSessions removes the claims made under peerURL by any
	// replica but keepReplicaID: a process that restarts at the same peer
	// URL clears what its crashed predecessor left.
	ReleasePeerSessions(ctx context.Context, peerURL, keepReplicaID string) (int, error)
}
