package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/kaginashi/kaginashi/internal/store"
)

const instanceColumns = `id, state, launch_time, last_seen, hostname, private_ip, ipv6,
	os_id, os_version, os_pretty_name, platform, architecture, kernel, default_user,
	agent_version, sshd_version, host_keys, availability_zone,
	agent_key, default_user_exists, sshd_configured, clock_skew_millis`

const resourceTagsQuery = `SELECT key, value FROM resource_tags WHERE resource_id = ? ORDER BY key`

// PutInstance creates or replaces an instance and its tags.
func (db *DB) PutInstance(ctx context.Context, in store.Instance) error {
	defer db.inst.Invalidate() // after the commit: see CachedInstance
	hostKeys, err := json.Marshal(nonNilStrings(in.HostKeys))
	if err != nil {
		return fmt.Errorf("put instance %s: %w", in.ID, err)
	}
	err = db.writeTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO instances (`+instanceColumns+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (id) DO UPDATE SET
				state = excluded.state, launch_time = excluded.launch_time, last_seen = excluded.last_seen,
				hostname = excluded.hostname, private_ip = excluded.private_ip, ipv6 = excluded.ipv6,
				os_id = excluded.os_id, os_version = excluded.os_version, os_pretty_name = excluded.os_pretty_name,
				platform = excluded.platform, architecture = excluded.architecture, kernel = excluded.kernel,
				default_user = excluded.default_user, agent_version = excluded.agent_version,
				sshd_version = excluded.sshd_version, host_keys = excluded.host_keys,
				availability_zone = excluded.availability_zone,
				agent_key = excluded.agent_key, default_user_exists = excluded.default_user_exists,
				sshd_configured = excluded.sshd_configured, clock_skew_millis = excluded.clock_skew_millis`,
			in.ID, in.State, micros(in.LaunchTime), micros(in.LastSeen), in.Hostname, in.PrivateIP, in.IPv6,
			in.OSID, in.OSVersion, in.OSPrettyName, in.Platform, in.Architecture, in.Kernel, in.DefaultUser,
			in.AgentVersion, in.SSHDVersion, string(hostKeys), in.AvailabilityZ,
			in.AgentKey, in.DefaultUserExists, in.SSHDConfigured, in.ClockSkewMillis); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM resource_tags WHERE resource_id = ?`, in.ID); err != nil {
			return err
		}
		return upsertResourceTags(ctx, tx, in.ID, in.Tags)
	})
	if err != nil {
		return fmt.Errorf("put instance %s: %w", in.ID, err)
	}
	return nil
}

func nonNilStrings(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func upsertResourceTags(ctx context.Context, tx *sql.Tx, id string, tags []store.Tag) error {
	for _, t := range tags {
		if _, err := tx.ExecContext(ctx, `INSERT INTO resource_tags (resource_id, key, value) VALUES (?, ?, ?)
			ON CONFLICT (resource_id, key) DO UPDATE SET value = excluded.value`, id, t.Key, t.Value); err != nil {
			return err
		}
	}
	return nil
}

func scanInstances(ctx context.Context, q querier, query string, args ...any) ([]store.Instance, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.Instance
	for rows.Next() {
		var in store.Instance
		var launch, seen int64
		var hostKeys string
		if err := rows.Scan(&in.ID, &in.State, &launch, &seen, &in.Hostname, &in.PrivateIP, &in.IPv6,
			&in.OSID, &in.OSVersion, &in.OSPrettyName, &in.Platform, &in.Architecture, &in.Kernel, &in.DefaultUser,
			&in.AgentVersion, &in.SSHDVersion, &hostKeys, &in.AvailabilityZ,
			&in.AgentKey, &in.DefaultUserExists, &in.SSHDConfigured, &in.ClockSkewMillis); err != nil {
			return nil, err
		}
		in.LaunchTime = fromMicros(launch)
		in.LastSeen = fromMicros(seen)
		if err := json.Unmarshal([]byte(hostKeys), &in.HostKeys); err != nil {
			return nil, fmt.Errorf("instance %s host keys: %w", in.ID, err)
		}
		if len(in.HostKeys) == 0 {
			in.HostKeys = nil
		}
		out = append(out, in)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows.Close()
	for i := range out {
		if out[i].Tags, err = readTags(ctx, q, resourceTagsQuery, out[i].ID); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// CachedInstance is GetInstance from memory while the inventory
// generation is unchanged (see store.Store and instcache). Every inventory
// write method of this handle invalidates the generation after it commits.
func (db *DB) CachedInstance(ctx context.Context, id string) (store.Instance, error) {
	return db.inst.Get(ctx, id)
}

func (db *DB) readInventoryGeneration(ctx context.Context) (int64, error) {
	var g int64
	if err := db.read.QueryRowContext(ctx, `SELECT value FROM inventory_generation WHERE id = 1`).Scan(&g); err != nil {
		return 0, fmt.Errorf("inventory generation: %w", err)
	}
	return g, nil
}

// GetInstance returns an instance with its tags.
func (db *DB) GetInstance(ctx context.Context, id string) (store.Instance, error) {
	in, err := db.getInstance(ctx, id)
	if err != nil {
		return store.Instance{}, fmt.Errorf("get instance %s: %w", id, err)
	}
	return in, nil
}

// ListInstances pages through instances by ID.
func (db *DB) ListInstances(ctx context.Context, f store.InstanceFilter) ([]store.Instance, string, error) {
	// The ID list travels as one JSON parameter, expanded by json_each,
	// so that the SQL text never depends on the input.
	ids, err := json.Marshal(nonNilStrings(f.IDs))
	if err != nil {
		return nil, "", fmt.Errorf("list instances: %w", err)
	}
	limit := -1 // SQLite: no limit
	if f.Limit > 0 {
		limit = f.Limit + 1 // one more tells whether a next page exists
	}
	var ins []store.Instance
	err = db.readTx(ctx, func(tx *sql.Tx) error {
		var err error
		ins, err = scanInstances(ctx, tx, `SELECT `+instanceColumns+` FROM instances
			WHERE (?1 = 0 OR id IN (SELECT value FROM json_each(?2))) AND id > ?3
			ORDER BY id LIMIT ?4`, len(f.IDs), string(ids), f.After, limit)
		return err
	})
	if err != nil {
		return nil, "", fmt.Errorf("list instances: %w", err)
	}
	next := ""
	if f.Limit > 0 && len(ins) > f.Limit {
		ins = ins[:f.Limit]
		next = ins[len(ins)-1].ID
	}
	return ins, next, nil
}

// DeleteInstance deletes an instance and its tags.
func (db *DB) DeleteInstance(ctx context.Context, id string) error {
	defer db.inst.Invalidate() // after the commit: see CachedInstance
	err := db.writeTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM instances WHERE id = ?`, id)
		if err := affected(res, err); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM resource_tags WHERE resource_id = ?`, id)
		return err
	})
	if err != nil {
		return fmt.Errorf("delete instance %s: %w", id, err)
	}
	return nil
}

// SetInstanceState records a state change and when the host was seen.
func (db *DB) SetInstanceState(ctx context.Context, id, state string, seen time.Time) error {
	defer db.inst.Invalidate() // after the commit: see CachedInstance
	res, err := db.write.ExecContext(ctx, `UPDATE instances SET state = ?, last_seen = ? WHERE id = ?`, state, micros(seen), id)
	if err := affected(res, err); err != nil {
		return fmt.Errorf("set state of instance %s: %w", id, err)
	}
	return nil
}

// ReplaceInstance replaces an instance and its tags while its agent key is
// agentKey (see store.Store).
func (db *DB) ReplaceInstance(ctx context.Context, in store.Instance, agentKey string) error {
	defer db.inst.Invalidate() // after the commit: see CachedInstance
	hostKeys, err := json.Marshal(nonNilStrings(in.HostKeys))
	if err != nil {
		return fmt.Errorf("replace instance %s: %w", in.ID, err)
	}
	err = db.writeTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE instances SET state = ?, launch_time = ?, last_seen = ?,
				hostname = ?, private_ip = ?, ipv6 = ?, os_id = ?, os_version = ?, os_pretty_name = ?,
				platform = ?, architecture = ?, kernel = ?, default_user = ?, agent_version = ?, sshd_version = ?,
				host_keys = ?, availability_zone = ?, agent_key = ?, default_user_exists = ?, sshd_configured = ?,
				clock_skew_millis = ?
			WHERE id = ? AND agent_key = ?`,
			in.State, micros(in.LaunchTime), micros(in.LastSeen), in.Hostname, in.PrivateIP, in.IPv6,
			in.OSID, in.OSVersion, in.OSPrettyName, in.Platform, in.Architecture, in.Kernel, in.DefaultUser,
			in.AgentVersion, in.SSHDVersion, string(hostKeys), in.AvailabilityZ,
			in.AgentKey, in.DefaultUserExists, in.SSHDConfigured, in.ClockSkewMillis, in.ID, agentKey)
		if err := affected(res, err); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM resource_tags WHERE resource_id = ?`, in.ID); err != nil {
			return err
		}
		return upsertResourceTags(ctx, tx, in.ID, in.Tags)
	})
	if err != nil {
		return fmt.Errorf("replace instance %s: %w", in.ID, err)
	}
	return nil
}

// UpdateAgentFacts writes an agent's report while the instance is still
// its (see store.Store): one UPDATE, conditional on the agent key, so that
// neither a deregistration nor a re-enrollment landing since the session
// read the instance is undone.
func (db *DB) UpdateAgentFacts(ctx context.Context, in store.Instance) error {
	defer db.inst.Invalidate() // after the commit: see CachedInstance
	hostKeys, err := json.Marshal(nonNilStrings(in.HostKeys))
	if err != nil {
		return fmt.Errorf("update agent facts of instance %s: %w", in.ID, err)
	}
	st, err := db.wstmts.get(ctx, `UPDATE instances SET state = ?, last_seen = ?,
			hostname = ?, private_ip = ?, ipv6 = ?, os_id = ?, os_version = ?, os_pretty_name = ?,
			platform = ?, architecture = ?, kernel = ?, default_user = ?, agent_version = ?, sshd_version = ?,
			host_keys = ?, default_user_exists = ?, sshd_configured = ?, clock_skew_millis = ?
		WHERE id = ? AND agent_key = ?`)
	var res sql.Result
	if err == nil {
		res, err = st.ExecContext(ctx, in.State, micros(in.LastSeen),
			in.Hostname, in.PrivateIP, in.IPv6, in.OSID, in.OSVersion, in.OSPrettyName,
			in.Platform, in.Architecture, in.Kernel, in.DefaultUser, in.AgentVersion, in.SSHDVersion,
			string(hostKeys), in.DefaultUserExists, in.SSHDConfigured, in.ClockSkewMillis,
			in.ID, in.AgentKey)
	}
	if err := affected(res, err); err != nil {
		return fmt.Errorf("update agent facts of instance %s: %w", in.ID, err)
	}
	return nil
}

// SetAgentState is SetInstanceState while agentKey is the instance's.
func (db *DB) SetAgentState(ctx context.Context, id, agentKey, state string, seen time.Time) error {
	defer db.inst.Invalidate() // after the commit: see CachedInstance
	res, err := db.write.ExecContext(ctx, `UPDATE instances SET state = ?, last_seen = ? WHERE id = ? AND agent_key = ?`,
		state, micros(seen), id, agentKey)
	if err := affected(res, err); err != nil {
		return fmt.Errorf("set state of instance %s: %w", id, err)
	}
	return nil
}

// TouchInstances marks instances running and seen, in one statement, each
// while its agent key is the given one. The list travels as one JSON
// parameter of [id, key] pairs, so the SQL text is constant; the id IN
// drives primary-key look-ups, the pair IN is a probe of the subquery's
// materialized index.
func (db *DB) TouchInstances(ctx context.Context, agents []store.AgentRef, seen time.Time) ([]store.AgentRef, error) {
	defer db.inst.Invalidate() // after the commit: see CachedInstance
	if len(agents) == 0 {
		return nil, nil
	}
	pairs := make([][2]string, len(agents))
	for i, a := range agents {
		pairs[i] = [2]string{a.InstanceID, a.AgentKey}
	}
	list, err := json.Marshal(pairs)
	if err != nil {
		return nil, fmt.Errorf("touch %d instances: %w", len(agents), err)
	}
	st, err := db.wstmts.get(ctx, `UPDATE instances SET state = 'running', last_seen = ?1
		WHERE id IN (SELECT value ->> 0 FROM json_each(?2))
			AND (id, agent_key) IN (SELECT value ->> 0, value ->> 1 FROM json_each(?2))
		RETURNING id`)
	if err != nil {
		return nil, fmt.Errorf("touch %d instances: %w", len(agents), err)
	}
	rows, err := st.QueryContext(ctx, micros(seen), string(list))
	if err != nil {
		return nil, fmt.Errorf("touch %d instances: %w", len(agents), err)
	}
	touched, err := scanStrings(rows)
	if err != nil {
		return nil, fmt.Errorf("touch %d instances: %w", len(agents), err)
	}
	return store.Untouched(agents, touched), nil
}

// scanStrings reads a one-column result of strings and closes it.
func scanStrings(rows *sql.Rows) ([]string, error) {
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// checkResource refuses tags on an instance that does not exist. Other
// resources (the endpoint) are the caller's to check.
func checkResource(ctx context.Context, q querier, id string) error {
	if !strings.HasPrefix(id, "i-") {
		return nil
	}
	found, err := exists(ctx, q, `SELECT EXISTS (SELECT 1 FROM instances WHERE id = ?)`, id)
	if err != nil {
		return err
	}
	if !found {
		return store.ErrNotFound
	}
	return nil
}

// TagResource adds or overwrites tags of an EC2 resource. A key that
// differs only in case from one the resource has is refused
// (*store.TagKeyCaseError), checked in the write transaction: the single
// writer connection and IMMEDIATE transactions serialize it with every
// other write, so two concurrent calls (Team and team) cannot both land.
func (db *DB) TagResource(ctx context.Context, resourceID string, tags []store.Tag) error {
	defer db.inst.Invalidate() // after the commit: see CachedInstance
	err := db.writeTx(ctx, func(tx *sql.Tx) error {
		if err := checkResource(ctx, tx, resourceID); err != nil {
			return err
		}
		keys, err := resourceTagKeys(ctx, tx, resourceID)
		if err != nil {
			return err
		}
		if err := store.CheckTagKeyCase(resourceID, keys, tags); err != nil {
			return err
		}
		return upsertResourceTags(ctx, tx, resourceID, tags)
	})
	if err != nil {
		return fmt.Errorf("tag resource %s: %w", resourceID, err)
	}
	return nil
}

// resourceTagKeys are the keys of a resource's tags, sorted.
func resourceTagKeys(ctx context.Context, tx *sql.Tx, id string) ([]string, error) {
	rows, err := tx.QueryContext(ctx, `SELECT key FROM resource_tags WHERE resource_id = ? ORDER BY key`, id)
	if err != nil {
		return nil, err
	}
	return scanStrings(rows)
}

// UntagResource removes tags as EC2 DeleteTags does: by key, or by key and
// value; no tags at all removes every tag of the resource.
func (db *DB) UntagResource(ctx context.Context, resourceID string, tags []store.TagMatch) error {
	defer db.inst.Invalidate() // after the commit: see CachedInstance
	err := db.writeTx(ctx, func(tx *sql.Tx) error {
		if err := checkResource(ctx, tx, resourceID); err != nil {
			return err
		}
		if len(tags) == 0 {
			_, err := tx.ExecContext(ctx, `DELETE FROM resource_tags WHERE resource_id = ?`, resourceID)
			return err
		}
		for _, t := range tags {
			if _, err := tx.ExecContext(ctx, `DELETE FROM resource_tags WHERE resource_id = ? AND key = ? AND (NOT ? OR value = ?)`,
				resourceID, t.Key, t.MatchValue, t.Value); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("untag resource %s: %w", resourceID, err)
	}
	return nil
}

// ResourceTags returns one resource's tags, sorted by key.
func (db *DB) ResourceTags(ctx context.Context, resourceID string) ([]store.Tag, error) {
	tags, err := readTags(ctx, db.read, resourceTagsQuery, resourceID)
	if err != nil {
		return nil, fmt.Errorf("tags of resource %s: %w", resourceID, err)
	}
	return tags, nil
}

// ListResourceTags returns the tags of every resource, or of the given
// ones, ordered by resource ID and key.
func (db *DB) ListResourceTags(ctx context.Context, resourceIDs []string) ([]store.ResourceTag, error) {
	ids, err := json.Marshal(nonNilStrings(resourceIDs))
	if err != nil {
		return nil, fmt.Errorf("list resource tags: %w", err)
	}
	rows, err := db.read.QueryContext(ctx, `SELECT resource_id, key, value FROM resource_tags
		WHERE ?1 = 0 OR resource_id IN (SELECT value FROM json_each(?2))
		ORDER BY resource_id, key`, len(resourceIDs), string(ids))
	if err != nil {
		return nil, fmt.Errorf("list resource tags: %w", err)
	}
	defer rows.Close()
	var out []store.ResourceTag
	for rows.Next() {
		var t store.ResourceTag
		if err := rows.Scan(&t.ResourceID, &t.Key, &t.Value); err != nil {
			return nil, fmt.Errorf("list resource tags: %w", err)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list resource tags: %w", err)
	}
	return out, nil
}

// PutKeyRecord stores a pushed key.
// Concurrent calls share one transaction (groupcommit, hot.go).
func (db *DB) PutKeyRecord(ctx context.Context, r store.KeyRecord) error {
	err := db.writes.PutKey(ctx, r)
	if isUnique(err) {
		err = store.ErrExists
	}
	if err != nil {
		return fmt.Errorf("put key record %s: %w", r.RequestID, err)
	}
	return nil
}

// QueueKeyRecord queues a key record to commit with the next write (the
// call's audit event, queued after it) and returns the function that waits
// for it: see groupcommit.Batcher.QueueKey. The function must be called.
func (db *DB) QueueKeyRecord(ctx context.Context, r store.KeyRecord) func() error {
	wait := db.writes.QueueKey(ctx, r)
	return func() error {
		err := wait()
		if isUnique(err) {
			err = store.ErrExists
		}
		if err != nil {
			return fmt.Errorf("put key record %s: %w", r.RequestID, err)
		}
		return nil
	}
}

// ActiveKeyRecords lists an instance's keys unexpired at now, oldest first.
func (db *DB) ActiveKeyRecords(ctx context.Context, instanceID, osUser string, now time.Time) ([]store.KeyRecord, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT request_id, instance_id, os_user, public_key, fingerprint, caller_arn, created_at, expires_at
		FROM key_records WHERE instance_id = ?1 AND (?2 = '' OR os_user = ?2) AND expires_at > ?3
		ORDER BY created_at, request_id`, instanceID, osUser, micros(now))
	if err != nil {
		return nil, fmt.Errorf("active keys of instance %s: %w", instanceID, err)
	}
	defer rows.Close()
	var out []store.KeyRecord
	for rows.Next() {
		var r store.KeyRecord
		var created, expires int64
		if err := rows.Scan(&r.RequestID, &r.InstanceID, &r.OSUser, &r.PublicKey, &r.Fingerprint, &r.CallerARN, &created, &expires); err != nil {
			return nil, fmt.Errorf("active keys of instance %s: %w", instanceID, err)
		}
		r.CreatedAt = fromMicros(created)
		r.ExpiresAt = fromMicros(expires)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("active keys of instance %s: %w", instanceID, err)
	}
	return out, nil
}

// PurgeKeyRecords deletes records that expired before cutoff.
func (db *DB) PurgeKeyRecords(ctx context.Context, cutoff time.Time) (int, error) {
	res, err := db.write.ExecContext(ctx, `DELETE FROM key_records WHERE expires_at < ?`, micros(cutoff))
	if err != nil {
		return 0, fmt.Errorf("purge key records: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("purge key records: %w", err)
	}
	return int(n), nil
}
