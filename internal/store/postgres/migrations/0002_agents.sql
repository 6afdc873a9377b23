-- Agents (issue #4): what an enrolled agent reports about its host, and
-- the join tokens agents enroll with.
--
-- Databases in the field have 0001: this file only adds. The new instance
-- columns are NOT NULL with constant defaults (no table rewrite), so that
-- rows written before the upgrade read as "no agent key, nothing known"
-- until their agent next reports.

ALTER TABLE instances
	ADD COLUMN agent_key           text NOT NULL DEFAULT '',      -- SHA256:... of the agent's public key
	ADD COLUMN default_user_exists boolean NOT NULL DEFAULT false,
	ADD COLUMN sshd_configured     boolean NOT NULL DEFAULT false,
	ADD COLUMN clock_skew_millis   bigint NOT NULL DEFAULT 0;     -- server minus host

-- Only a hash of a token's secret is stored. Tags are a JSON array of
-- {"key", "value"} objects, in the order given: they are written once,
-- with the token, and only ever read whole. UseJoinToken locks the row
-- (SELECT ... FOR UPDATE) so that replicas racing for the last use take
-- turns; the CHECK on uses backs that: a token is never used more than
-- max_uses times.
CREATE TABLE join_tokens (
	id          text COLLATE "C" PRIMARY KEY,
	secret_hash bytea NOT NULL,
	created_by  text NOT NULL,
	created_at  timestamptz NOT NULL,
	expires_at  timestamptz NOT NULL,
	max_uses    integer NOT NULL CHECK (max_uses >= 1),
	uses        integer NOT NULL CHECK (uses BETWEEN 0 AND max_uses),
	revoked     boolean NOT NULL,
	tags        jsonb NOT NULL CHECK (jsonb_typeof(tags) = 'array')
);
CREATE INDEX join_tokens_created ON join_tokens (created_at, id);
