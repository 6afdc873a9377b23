-- The inventory generation: a counter that every change to an instance or
-- a resource tag bumps, in the same transaction, through triggers (so
-- every writer bumps it: every replica, and an administrator's psql). A
-- replica keeps instances it looked up for SendSSHPublicKey in memory and
-- uses them while the generation it last read is unchanged (store.Store
-- CachedInstance); it reads the generation at most every 250 ms.
--
-- A heartbeat only moves last_seen (TouchInstances sets state = 'running'
-- again, which changes nothing for a running instance): the update
-- trigger fires only when another column changes, so that thousands of
-- agents' heartbeats neither empty the caches every few seconds nor queue
-- on the generation row's lock.

CREATE TABLE inventory_generation (
	id    integer PRIMARY KEY CHECK (id = 1),
	value bigint NOT NULL
);
INSERT INTO inventory_generation (id, value) VALUES (1, 0);

CREATE FUNCTION bump_inventory_generation() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	UPDATE inventory_generation SET value = value + 1 WHERE id = 1;
	RETURN NULL;
END
$$;

CREATE TRIGGER instances_insert_delete_generation AFTER INSERT OR DELETE ON instances
	FOR EACH STATEMENT EXECUTE FUNCTION bump_inventory_generation();

CREATE TRIGGER instances_update_generation AFTER UPDATE ON instances
	FOR EACH ROW WHEN (
		(OLD.id, OLD.state, OLD.launch_time, OLD.hostname, OLD.private_ip, OLD.ipv6,
		 OLD.os_id, OLD.os_version, OLD.os_pretty_name, OLD.platform, OLD.architecture, OLD.kernel,
		 OLD.default_user, OLD.agent_version, OLD.sshd_version, OLD.host_keys, OLD.availability_zone,
		 OLD.agent_key, OLD.default_user_exists, OLD.sshd_configured, OLD.clock_skew_millis)
		IS DISTINCT FROM
		(NEW.id, NEW.state, NEW.launch_time, NEW.hostname, NEW.private_ip, NEW.ipv6,
		 NEW.os_id, NEW.os_version, NEW.os_pretty_name, NEW.platform, NEW.architecture, NEW.kernel,
		 NEW.default_user, NEW.agent_version, NEW.sshd_version, NEW.host_keys, NEW.availability_zone,
		 NEW.agent_key, NEW.default_user_exists, NEW.sshd_configured, NEW.clock_skew_millis))
	EXECUTE FUNCTION bump_inventory_generation();

CREATE TRIGGER resource_tags_generation AFTER INSERT OR UPDATE OR DELETE ON resource_tags
	FOR EACH STATEMENT EXECUTE FUNCTION bump_inventory_generation();
