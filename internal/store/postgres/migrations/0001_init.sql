-- kaginashi's first PostgreSQL schema.
--
-- Several server replicas share this database, so every invariant that two
-- replicas could race on is the database's to keep:
--  * uniqueness by UNIQUE constraints (IAM names through name_key, the
--    lowered name, because IAM names are unique without regard to case);
--  * "cannot delete while it has dependents" by foreign keys without
--    ON DELETE CASCADE (tags, which go with their entity, cascade);
--  * quotas (access keys per user, versions per policy) by counting inside
--    IAM write transactions, which all begin by updating the one
--    iam_generation row and so run one at a time across replicas.
-- Times are timestamptz (microsecond precision). Text that results are
-- ordered by, or paged through, is COLLATE "C": byte order, as in SQLite,
-- whatever locale the database was created with.

CREATE TABLE meta (
	key   text PRIMARY KEY,
	value text NOT NULL
);

CREATE TABLE iam_generation (
	id    integer PRIMARY KEY CHECK (id = 1),
	value bigint NOT NULL
);
INSERT INTO iam_generation (id, value) VALUES (1, 0);

CREATE TABLE users (
	id                   text PRIMARY KEY,
	name                 text NOT NULL,
	name_key             text COLLATE "C" NOT NULL UNIQUE,
	path                 text NOT NULL,
	create_date          timestamptz NOT NULL,
	permissions_boundary text NOT NULL
);

CREATE TABLE user_tags (
	user_id text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	key     text COLLATE "C" NOT NULL,
	value   text NOT NULL,
	PRIMARY KEY (user_id, key)
);

CREATE TABLE access_keys (
	id          text COLLATE "C" PRIMARY KEY,
	user_id     text REFERENCES users (id), -- NULL: a key of the account root
	secret      bytea NOT NULL,             -- ciphertext; the store never sees the secret
	status      text NOT NULL CHECK (status IN ('Active', 'Inactive')),
	create_date timestamptz NOT NULL
);
CREATE INDEX access_keys_user ON access_keys (user_id);

CREATE TABLE login_profiles (
	user_id        text PRIMARY KEY REFERENCES users (id),
	password_hash  text NOT NULL,
	reset_required boolean NOT NULL,
	create_date    timestamptz NOT NULL
);

CREATE TABLE user_policies (
	user_id  text NOT NULL REFERENCES users (id),
	name     text COLLATE "C" NOT NULL,
	document text NOT NULL,
	PRIMARY KEY (user_id, name)
);

CREATE TABLE iam_groups (
	id          text PRIMARY KEY,
	name        text NOT NULL,
	name_key    text COLLATE "C" NOT NULL UNIQUE,
	path        text NOT NULL,
	create_date timestamptz NOT NULL
);

CREATE TABLE group_members (
	group_id text NOT NULL REFERENCES iam_groups (id),
	user_id  text NOT NULL REFERENCES users (id),
	PRIMARY KEY (group_id, user_id)
);
CREATE INDEX group_members_user ON group_members (user_id);

CREATE TABLE policies (
	arn             text COLLATE "C" PRIMARY KEY,
	id              text NOT NULL UNIQUE,
	name            text NOT NULL,
	name_key        text COLLATE "C" NOT NULL UNIQUE,
	path            text NOT NULL,
	description     text NOT NULL,
	default_version integer NOT NULL,
	next_version    integer NOT NULL, -- version numbers are never reused
	create_date     timestamptz NOT NULL,
	update_date     timestamptz NOT NULL
);

CREATE TABLE policy_tags (
	policy_arn text NOT NULL REFERENCES policies (arn) ON DELETE CASCADE,
	key        text COLLATE "C" NOT NULL,
	value      text NOT NULL,
	PRIMARY KEY (policy_arn, key)
);

CREATE TABLE policy_versions (
	policy_arn  text NOT NULL REFERENCES policies (arn) ON DELETE CASCADE,
	version     integer NOT NULL,
	document    text NOT NULL,
	create_date timestamptz NOT NULL,
	PRIMARY KEY (policy_arn, version)
);

CREATE TABLE user_policy_attachments (
	user_id    text NOT NULL REFERENCES users (id),
	policy_arn text NOT NULL REFERENCES policies (arn),
	PRIMARY KEY (user_id, policy_arn)
);
CREATE INDEX user_policy_attachments_policy ON user_policy_attachments (policy_arn);

CREATE TABLE group_policy_attachments (
	group_id   text NOT NULL REFERENCES iam_groups (id),
	policy_arn text NOT NULL REFERENCES policies (arn),
	PRIMARY KEY (group_id, policy_arn)
);
CREATE INDEX group_policy_attachments_policy ON group_policy_attachments (policy_arn);

CREATE TABLE instances (
	id                text COLLATE "C" PRIMARY KEY,
	state             text NOT NULL,
	launch_time       timestamptz NOT NULL,
	last_seen         timestamptz NOT NULL,
	hostname          text NOT NULL,
	private_ip        text NOT NULL,
	ipv6              text NOT NULL,
	os_id             text NOT NULL,
	os_version        text NOT NULL,
	os_pretty_name    text NOT NULL,
	platform          text NOT NULL,
	architecture      text NOT NULL,
	kernel            text NOT NULL,
	default_user      text NOT NULL,
	agent_version     text NOT NULL,
	sshd_version      text NOT NULL,
	host_keys         text[] NOT NULL,
	availability_zone text NOT NULL
);

-- Tags of EC2 resources: instances (i-...) and the endpoint (eice-...).
CREATE TABLE resource_tags (
	resource_id text COLLATE "C" NOT NULL,
	key         text COLLATE "C" NOT NULL,
	value       text NOT NULL,
	PRIMARY KEY (resource_id, key)
);

CREATE TABLE key_records (
	request_id  text COLLATE "C" PRIMARY KEY,
	instance_id text NOT NULL,
	os_user     text NOT NULL,
	public_key  text NOT NULL,
	fingerprint text NOT NULL,
	caller_arn  text NOT NULL,
	created_at  timestamptz NOT NULL,
	expires_at  timestamptz NOT NULL
);
CREATE INDEX key_records_instance ON key_records (instance_id, expires_at);
CREATE INDEX key_records_expiry ON key_records (expires_at);

-- seq breaks ties between events of the same microsecond, so that the
-- (event_time, seq) cursor pages without duplicates or gaps. It need not
-- follow commit order: pages are ordered by (event_time, seq), not by
-- arrival.
CREATE TABLE audit_events (
	seq           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	id            text NOT NULL UNIQUE,
	event_time    timestamptz NOT NULL,
	name          text NOT NULL,
	source        text NOT NULL,
	user_name     text NOT NULL,
	access_key_id text NOT NULL,
	error_code    text NOT NULL,
	record        bytea NOT NULL
);
CREATE INDEX audit_events_time ON audit_events (event_time, seq);
CREATE INDEX audit_events_name ON audit_events (name, event_time, seq);
CREATE INDEX audit_events_user ON audit_events (user_name, event_time, seq);
