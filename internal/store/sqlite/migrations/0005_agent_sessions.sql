-- Agent sessions across server replicas (internal/peer): which replica
-- holds each instance's agent connection, and where the other replicas
-- reach it, with the ports the agent reported when it connected (the
-- console and DescribeInstanceConnectInfo show them). A claim replaces the row; its epoch comes from one counter, so
-- it is higher than every earlier claim's and a stale release (of a
-- session a newer connection replaced) deletes nothing. Rows are deleted
-- when the session ends and at a replica's graceful stop; a crashed
-- replica's rows stay until the agent connects again (the new claim
-- replaces them) or the replica restarts at the same peer URL.

CREATE TABLE agent_session_epoch (
	id    INTEGER PRIMARY KEY CHECK (id = 1),
	value INTEGER NOT NULL
) STRICT;
INSERT INTO agent_session_epoch (id, value) VALUES (1, 0);

CREATE TABLE agent_sessions (
	instance_id  TEXT PRIMARY KEY,
	replica_id   TEXT NOT NULL,
	peer_url     TEXT NOT NULL,
	connected_at INTEGER NOT NULL, -- Unix microseconds
	epoch        INTEGER NOT NULL,
	ssh_port      INTEGER NOT NULL DEFAULT 0,    -- as the agent reported it at connection (0: unknown)
	allowed_ports TEXT NOT NULL DEFAULT 'null'   -- JSON array, or null: unknown
) STRICT;
CREATE INDEX agent_sessions_replica ON agent_sessions (replica_id);
CREATE INDEX agent_sessions_peer ON agent_sessions (peer_url);
