-- The inventory generation: a counter that every change to an instance or
-- a resource tag bumps, in the same transaction, through triggers (so
-- every writer bumps it: this server, another process on the file, an
-- administrator's sqlite3 shell). A server keeps instances it looked up
-- for SendSSHPublicKey in memory and uses them while the generation it
-- last read is unchanged (store.Store CachedInstance).
--
-- A heartbeat only moves last_seen (TouchInstances sets state = 'running'
-- again, which changes nothing for a running instance): the update
-- trigger fires only when another column changes, so that thousands of
-- agents' heartbeats do not empty the cache every few seconds.

CREATE TABLE inventory_generation (
	id    INTEGER PRIMARY KEY CHECK (id = 1),
	value INTEGER NOT NULL
) STRICT;
INSERT INTO inventory_generation (id, value) VALUES (1, 0);

CREATE TRIGGER instances_insert_generation AFTER INSERT ON instances
BEGIN
	UPDATE inventory_generation SET value = value + 1 WHERE id = 1;
END;

CREATE TRIGGER instances_delete_generation AFTER DELETE ON instances
BEGIN
	UPDATE inventory_generation SET value = value + 1 WHERE id = 1;
END;

CREATE TRIGGER instances_update_generation AFTER UPDATE ON instances
WHEN OLD.id IS NOT NEW.id OR OLD.state IS NOT NEW.state OR OLD.launch_time IS NOT NEW.launch_time
	OR OLD.hostname IS NOT NEW.hostname OR OLD.private_ip IS NOT NEW.private_ip OR OLD.ipv6 IS NOT NEW.ipv6
	OR OLD.os_id IS NOT NEW.os_id OR OLD.os_version IS NOT NEW.os_version OR OLD.os_pretty_name IS NOT NEW.os_pretty_name
	OR OLD.platform IS NOT NEW.platform OR OLD.architecture IS NOT NEW.architecture OR OLD.kernel IS NOT NEW.kernel
	OR OLD.default_user IS NOT NEW.default_user OR OLD.agent_version IS NOT NEW.agent_version
	OR OLD.sshd_version IS NOT NEW.sshd_version OR OLD.host_keys IS NOT NEW.host_keys
	OR OLD.availability_zone IS NOT NEW.availability_zone OR OLD.agent_key IS NOT NEW.agent_key
	OR OLD.default_user_exists IS NOT NEW.default_user_exists OR OLD.sshd_configured IS NOT NEW.sshd_configured
	OR OLD.clock_skew_millis IS NOT NEW.clock_skew_millis
BEGIN
	UPDATE inventory_generation SET value = value + 1 WHERE id = 1;
END;

CREATE TRIGGER resource_tags_insert_generation AFTER INSERT ON resource_tags
BEGIN
	UPDATE inventory_generation SET value = value + 1 WHERE id = 1;
END;

CREATE TRIGGER resource_tags_update_generation AFTER UPDATE ON resource_tags
BEGIN
	UPDATE inventory_generation SET value = value + 1 WHERE id = 1;
END;

CREATE TRIGGER resource_tags_delete_generation AFTER DELETE ON resource_tags
BEGIN
	UPDATE inventory_generation SET value = value + 1 WHERE id = 1;
END;
