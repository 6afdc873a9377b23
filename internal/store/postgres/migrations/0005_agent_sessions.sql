-- Agent sessions across server replicas (internal/peer): which replica
-- holds each instance's agent connection, and where the other replicas
-- reach it, with the ports the agent reported when it connected (the
-- console and DescribeInstanceConnectInfo show them). A claim replaces the row; its epoch comes from one sequence, so
-- it is higher than every earlier claim's and a stale release (of a
-- session a newer connection replaced) deletes nothing. Rows are deleted
-- when the session ends and at a replica's graceful stop; a crashed
-- replica's rows stay until the agent connects again (the new claim
-- replaces them) or the replica restarts at the same peer URL.

CREATE SEQUENCE agent_session_epoch;

CREATE TABLE agent_sessions (
	instance_id  text PRIMARY KEY,
	replica_id   text NOT NULL,
	peer_url     text NOT NULL,
	connected_at timestamptz NOT NULL,
	epoch        bigint NOT NULL,
	ssh_port      integer NOT NULL DEFAULT 0,    -- as the agent reported it at connection (0: unknown)
	allowed_ports text NOT NULL DEFAULT 'null'   -- JSON array, or null: unknown
);
CREATE INDEX agent_sessions_replica ON agent_sessions (replica_id);
CREATE INDEX agent_sessions_peer ON agent_sessions (peer_url);
