-- Virtual MFA devices (issue #6): TOTP seeds for console sign-in.
--
-- The seed is sealed by the server before it reaches the store (as access
-- key secrets are). A device is unassigned (user_id and enable_date NULL)
-- from CreateVirtualMFADevice until EnableMFADevice; user_id references
-- users without ON DELETE CASCADE, so a user with a device cannot be
-- deleted (DeleteConflict, as IAM). last_step is the last TOTP time step
-- accepted, so that a code is accepted at most once: AdvanceMFAStep raises
-- it only upwards, in one UPDATE.

CREATE TABLE mfa_devices (
	serial      TEXT PRIMARY KEY,             -- arn:aws:iam::ACCOUNT:mfa/PATH/NAME
	serial_key  TEXT NOT NULL UNIQUE,         -- serial lowered: unique without regard to case
	name        TEXT NOT NULL,
	path        TEXT NOT NULL,
	seed        BLOB NOT NULL,                -- ciphertext; the store never sees the seed
	user_id     TEXT REFERENCES users (id),   -- NULL while unassigned
	enable_date INTEGER,                      -- NULL while unassigned
	create_date INTEGER NOT NULL,
	last_step   INTEGER NOT NULL DEFAULT 0 CHECK (last_step >= 0),
	tags        TEXT NOT NULL DEFAULT '[]' CHECK (json_type(tags) = 'array'),
	CHECK ((user_id IS NULL) = (enable_date IS NULL))
) STRICT;
CREATE INDEX mfa_devices_user ON mfa_devices (user_id);
