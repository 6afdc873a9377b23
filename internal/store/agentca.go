package store

import (
	"context"
	"time"
)

// AgentCAs records which agent CA issued the client certificate each
// instance's agent holds, for the agent CA rotation: `rotate-agent-ca
// --finish` refuses to drop the old CA while agents still depend on it.
// The SQLite and PostgreSQL engines both implement it; a separate
// interface, as AgentSessions, because only the gateway and the rotation
// use it.
type AgentCAs interface {
	// SetAgentCA records that instanceID's agent holds a certificate of
	// the CA named ca (its key's SHA256:... fingerprint). ErrNotFound for
	// an unknown instance.
	SetAgentCA(ctx context.Context, instanceID, ca string, at time.Time) error
	// InstancesNotOnCA returns, sorted, the IDs of the instances whose
	// agent is not known to hold a certificate of ca.
	InstancesNotOnCA(ctx context.Context, ca string) ([]string, error)
}
