-- kaginashi's first SQLite schema.
--
-- Times are INTEGER microseconds since the Unix epoch (UTC): SQLite has no
-- timestamp type, and integers compare and sort exactly.
-- IAM names are unique without regard to case: name_key holds the lowered
-- name under a UNIQUE constraint, name the spelling the caller chose.
-- Dependents reference their parent without ON DELETE CASCADE where IAM
-- refuses the delete (DeleteConflict), so the database itself backs the
-- checks the Go code makes; tags, which IAM deletes with their entity,
-- cascade.

CREATE TABLE meta (
	key   TEXT PRIMARY KEY,
	value TEXT NOT NULL
) STRICT;

-- One row, bumped by every IAM write in the same transaction.
CREATE TABLE iam_generation (
	id    INTEGER PRIMARY KEY CHECK (id = 1),
	value INTEGER NOT NULL
) STRICT;
INSERT INTO iam_generation (id, value) VALUES (1, 0);

CREATE TABLE users (
	id                   TEXT PRIMARY KEY,
	name                 TEXT NOT NULL,
	name_key             TEXT NOT NULL UNIQUE,
	path                 TEXT NOT NULL,
	create_date          INTEGER NOT NULL,
	permissions_boundary TEXT NOT NULL
) STRICT;

CREATE TABLE user_tags (
	user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	key     TEXT NOT NULL,
	value   TEXT NOT NULL,
	PRIMARY KEY (user_id, key)
) STRICT;

CREATE TABLE access_keys (
	id          TEXT PRIMARY KEY,
	user_id     TEXT REFERENCES users (id), -- NULL: a key of the account root
	secret      BLOB NOT NULL,              -- ciphertext; the store never sees the secret
	status      TEXT NOT NULL CHECK (status IN ('Active', 'Inactive')),
	create_date INTEGER NOT NULL
) STRICT;
CREATE INDEX access_keys_user ON access_keys (user_id);

CREATE TABLE login_profiles (
	user_id        TEXT PRIMARY KEY REFERENCES users (id),
	password_hash  TEXT NOT NULL,
	reset_required INTEGER NOT NULL,
	create_date    INTEGER NOT NULL
) STRICT;

CREATE TABLE user_policies (
	user_id  TEXT NOT NULL REFERENCES users (id),
	name     TEXT NOT NULL,
	document TEXT NOT NULL,
	PRIMARY KEY (user_id, name)
) STRICT;

-- "groups" is an SQL keyword (window frames), hence iam_groups.
CREATE TABLE iam_groups (
	id          TEXT PRIMARY KEY,
	name        TEXT NOT NULL,
	name_key    TEXT NOT NULL UNIQUE,
	path        TEXT NOT NULL,
	create_date INTEGER NOT NULL
) STRICT;

CREATE TABLE group_members (
	group_id TEXT NOT NULL REFERENCES iam_groups (id),
	user_id  TEXT NOT NULL REFERENCES users (id),
	PRIMARY KEY (group_id, user_id)
) STRICT;
CREATE INDEX group_members_user ON group_members (user_id);

CREATE TABLE policies (
	arn             TEXT PRIMARY KEY,
	id              TEXT NOT NULL UNIQUE,
	name            TEXT NOT NULL,
	name_key        TEXT NOT NULL UNIQUE,
	path            TEXT NOT NULL,
	description     TEXT NOT NULL,
	default_version INTEGER NOT NULL,
	next_version    INTEGER NOT NULL, -- version numbers are never reused
	create_date     INTEGER NOT NULL,
	update_date     INTEGER NOT NULL
) STRICT;

CREATE TABLE policy_tags (
	policy_arn TEXT NOT NULL REFERENCES policies (arn) ON DELETE CASCADE,
	key        TEXT NOT NULL,
	value      TEXT NOT NULL,
	PRIMARY KEY (policy_arn, key)
) STRICT;

CREATE TABLE policy_versions (
	policy_arn  TEXT NOT NULL REFERENCES policies (arn) ON DELETE CASCADE,
	version     INTEGER NOT NULL,
	document    TEXT NOT NULL,
	create_date INTEGER NOT NULL,
	PRIMARY KEY (policy_arn, version)
) STRICT;

CREATE TABLE user_policy_attachments (
	user_id    TEXT NOT NULL REFERENCES users (id),
	policy_arn TEXT NOT NULL REFERENCES policies (arn),
	PRIMARY KEY (user_id, policy_arn)
) STRICT;
CREATE INDEX user_policy_attachments_policy ON user_policy_attachments (policy_arn);

CREATE TABLE group_policy_attachments (
	group_id   TEXT NOT NULL REFERENCES iam_groups (id),
	policy_arn TEXT NOT NULL REFERENCES policies (arn),
	PRIMARY KEY (group_id, policy_arn)
) STRICT;
CREATE INDEX group_policy_attachments_policy ON group_policy_attachments (policy_arn);

CREATE TABLE instances (
	id                TEXT PRIMARY KEY,
	state             TEXT NOT NULL,
	launch_time       INTEGER NOT NULL,
	last_seen         INTEGER NOT NULL,
	hostname          TEXT NOT NULL,
	private_ip        TEXT NOT NULL,
	ipv6              TEXT NOT NULL,
	os_id             TEXT NOT NULL,
	os_version        TEXT NOT NULL,
	os_pretty_name    TEXT NOT NULL,
	platform          TEXT NOT NULL,
	architecture      TEXT NOT NULL,
	kernel            TEXT NOT NULL,
	default_user      TEXT NOT NULL,
	agent_version     TEXT NOT NULL,
	sshd_version      TEXT NOT NULL,
	host_keys         TEXT NOT NULL, -- JSON array of OpenSSH public key lines
	availability_zone TEXT NOT NULL
) STRICT;

-- Tags of EC2 resources: instances (i-...) and the endpoint (eice-...).
CREATE TABLE resource_tags (
	resource_id TEXT NOT NULL,
	key         TEXT NOT NULL,
	value       TEXT NOT NULL,
	PRIMARY KEY (resource_id, key)
) STRICT;

CREATE TABLE key_records (
	request_id  TEXT PRIMARY KEY,
	instance_id TEXT NOT NULL,
	os_user     TEXT NOT NULL,
	public_key  TEXT NOT NULL,
	fingerprint TEXT NOT NULL,
	caller_arn  TEXT NOT NULL,
	created_at  INTEGER NOT NULL,
	expires_at  INTEGER NOT NULL
) STRICT;
CREATE INDEX key_records_instance ON key_records (instance_id, expires_at);
CREATE INDEX key_records_expiry ON key_records (expires_at);

-- seq (the rowid) breaks ties between events of the same microsecond, so
-- that the (event_time, seq) cursor pages without duplicates or gaps.
CREATE TABLE audit_events (
	seq           INTEGER PRIMARY KEY,
	id            TEXT NOT NULL UNIQUE,
	event_time    INTEGER NOT NULL,
	name          TEXT NOT NULL,
	source        TEXT NOT NULL,
	user_name     TEXT NOT NULL,
	access_key_id TEXT NOT NULL,
	error_code    TEXT NOT NULL,
	record        BLOB NOT NULL
) STRICT;
CREATE INDEX audit_events_time ON audit_events (event_time, seq);
CREATE INDEX audit_events_name ON audit_events (name, event_time, seq);
CREATE INDEX audit_events_user ON audit_events (user_name, event_time, seq);
