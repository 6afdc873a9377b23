-- Agent CA rotation (kaginashi server rotate-agent-ca): which agent CA
-- issued the client certificate each instance's agent holds, as far as the
-- server knows — written at enrollment and when a connecting agent is
-- given a certificate from a new CA. rotate-agent-ca --finish counts the
-- instances not on the current CA (no row: enrolled before this table, so
-- on whatever CA was current then) before it stops trusting the old one.

CREATE TABLE agent_cas (
	instance_id TEXT PRIMARY KEY REFERENCES instances (id) ON DELETE CASCADE,
	ca          TEXT NOT NULL,    -- SHA256:... of the CA certificate's public key
	updated_at  INTEGER NOT NULL  -- Unix microseconds
) STRICT;
