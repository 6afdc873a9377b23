-- Agents (issue #4): what an enrolled agent reports about its host, and
-- the join tokens agents enroll with.
--
-- Databases in the field have 0001: this file only adds. The new instance
-- columns are NOT NULL with defaults, so that rows written before the
-- upgrade read as "no agent key, nothing known" (false, 0) until their
-- agent next reports.

ALTER TABLE instances ADD COLUMN agent_key TEXT NOT NULL DEFAULT '';           -- SHA256:... of the agent's public key
ALTER TABLE instances ADD COLUMN default_user_exists INTEGER NOT NULL DEFAULT 0; -- boolean
ALTER TABLE instances ADD COLUMN sshd_configured INTEGER NOT NULL DEFAULT 0;     -- boolean
ALTER TABLE instances ADD COLUMN clock_skew_millis INTEGER NOT NULL DEFAULT 0;   -- server minus host

-- Only a hash of a token's secret is stored. Tags are a JSON array of
-- {"key", "value"} objects, in the order given: they are written once,
-- with the token, and only ever read whole. The CHECK on uses backs
-- UseJoinToken: whatever the code does, a token is never used more than
-- max_uses times.
CREATE TABLE join_tokens (
	id          TEXT PRIMARY KEY,
	secret_hash BLOB NOT NULL,
	created_by  TEXT NOT NULL,
	created_at  INTEGER NOT NULL,
	expires_at  INTEGER NOT NULL,
	max_uses    INTEGER NOT NULL CHECK (max_uses >= 1),
	uses        INTEGER NOT NULL CHECK (uses BETWEEN 0 AND max_uses),
	revoked     INTEGER NOT NULL,
	tags        TEXT NOT NULL CHECK (json_type(tags) = 'array')
) STRICT;
CREATE INDEX join_tokens_created ON join_tokens (created_at, id);
