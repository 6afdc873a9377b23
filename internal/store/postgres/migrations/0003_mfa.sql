-- Virtual MFA devices (issue #6): TOTP seeds for console sign-in.
--
-- The seed is sealed by the server before it reaches the store (as access
-- key secrets are). A device is unassigned (user_id and enable_date NULL)
-- from CreateVirtualMFADevice until EnableMFADevice; user_id references
-- users without ON DELETE CASCADE, so a user with a device cannot be
-- deleted (DeleteConflict, as IAM). last_step is the last TOTP time step
-- accepted, so that a code is accepted at most once: AdvanceMFAStep raises
-- it only upwards, in one conditional UPDATE, which replicas racing with
-- the same code serialize on the row lock — one of them wins.

CREATE TABLE mfa_devices (
	serial      text PRIMARY KEY,                     -- arn:aws:iam::ACCOUNT:mfa/PATH/NAME
	serial_key  text COLLATE "C" NOT NULL UNIQUE,     -- serial lowered: unique without regard to case
	name        text NOT NULL,
	path        text NOT NULL,
	seed        bytea NOT NULL,                       -- ciphertext; the store never sees the seed
	user_id     text REFERENCES users (id),           -- NULL while unassigned
	enable_date timestamptz,                          -- NULL while unassigned
	create_date timestamptz NOT NULL,
	last_step   bigint NOT NULL DEFAULT 0 CHECK (last_step >= 0),
	tags        jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(tags) = 'array'),
	CHECK ((user_id IS NULL) = (enable_date IS NULL))
);
CREATE INDEX mfa_devices_user ON mfa_devices (user_id);
