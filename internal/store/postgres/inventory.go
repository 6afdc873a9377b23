package postgres

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/kaginashi/kaginashi/internal/store"
)

const instanceColumns = `id, state, launch_time, last_seen, hostname, private_ip, ipv6,
	os_id, os_version, os_pretty_name, platform, architecture, kernel, default_user,
	agent_version, sshd_version, host_keys, availability_zone,
	agent_key, default_user_exists, sshd_configured, clock_skew_millis`

const resourceTagsQuery = `SELECT resource_id, key, value FROM resource_tags WHERE resource_id = ANY($1) ORDER BY resource_id, key`

// PutInstance creates or replaces an instance and its tags.
func (db *DB) PutInstance(ctx context.Context, in store.Instance) error {
	defer db.inst.Invalidate() // after the commit: see CachedInstance
	err := db.writeTx(ctx, func(tx pgx.Tx) error {
		// The upsert locks the instance row first, so concurrent puts and
		// tag changes of one instance take turns (see checkResource).
		if _, err := tx.Exec(ctx, `INSERT INTO instances (`+instanceColumns+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18,
				$19, $20, $21, $22)
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
			in.ID, in.State, in.LaunchTime, in.LastSeen, in.Hostname, in.PrivateIP, in.IPv6,
			in.OSID, in.OSVersion, in.OSPrettyName, in.Platform, in.Architecture, in.Kernel, in.DefaultUser,
			in.AgentVersion, in.SSHDVersion, nonNil(in.HostKeys), in.AvailabilityZ,
			in.AgentKey, in.DefaultUserExists, in.SSHDConfigured, in.ClockSkewMillis); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM resource_tags WHERE resource_id = $1`, in.ID); err != nil {
			return err
		}
		return upsertResourceTags(ctx, tx, in.ID, in.Tags)
	})
	if err != nil {
		return fmt.Errorf("put instance %s: %w", in.ID, err)
	}
	return nil
}

func upsertResourceTags(ctx context.Context, tx pgx.Tx, id string, tags []store.Tag) error {
	if len(tags) == 0 {
		return nil
	}
	keys, values := tagArrays(tags)
	_, err := tx.Exec(ctx, `INSERT INTO resource_tags (resource_id, key, value)
		SELECT $1, k, v FROM unnest($2::text[], $3::text[]) AS t (k, v)
		ON CONFLICT (resource_id, key) DO UPDATE SET value = excluded.value`, id, keys, values)
	return err
}

func scanInstances(ctx context.Context, q querier, query string, args ...any) ([]store.Instance, error) {
	rows, err := q.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Instance, error) {
		var in store.Instance
		err := r.Scan(&in.ID, &in.State, &in.LaunchTime, &in.LastSeen, &in.Hostname, &in.PrivateIP, &in.IPv6,
			&in.OSID, &in.OSVersion, &in.OSPrettyName, &in.Platform, &in.Architecture, &in.Kernel, &in.DefaultUser,
			&in.AgentVersion, &in.SSHDVersion, &in.HostKeys, &in.AvailabilityZ,
			&in.AgentKey, &in.DefaultUserExists, &in.SSHDConfigured, &in.ClockSkewMillis)
		in.LaunchTime, in.LastSeen = utc(in.LaunchTime), utc(in.LastSeen)
		if len(in.HostKeys) == 0 {
			in.HostKeys = nil
		}
		return in, err
	})
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(out))
	for i, in := range out {
		ids[i] = in.ID
	}
	tags, err := loadTags(ctx, q, resourceTagsQuery, ids)
	if err != nil {
		return nil, err
	}
	for i := range out {
		out[i].Tags = tags[out[i].ID]
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
	if err := db.pool.QueryRow(ctx, `SELECT value FROM inventory_generation WHERE id = 1`).Scan(&g); err != nil {
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
	var limit *int // NULL: LIMIT ALL
	if f.Limit > 0 {
		n := f.Limit + 1 // one more tells whether a next page exists
		limit = &n
	}
	var ins []store.Instance
	err := db.readTx(ctx, func(tx pgx.Tx) error {
		var err error
		ins, err = scanInstances(ctx, tx, `SELECT `+instanceColumns+` FROM instances
			WHERE (cardinality($1::text[]) = 0 OR id = ANY($1)) AND id > $2
			ORDER BY id LIMIT $3`, nonNil(f.IDs), f.After, limit)
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
	err := db.writeTx(ctx, func(tx pgx.Tx) error {
		// The instance row first: its lock makes a concurrent TagResource
		// either finish before (its tags are deleted here) or find the
		// instance gone.
		if err := affected(tx.Exec(ctx, `DELETE FROM instances WHERE id = $1`, id)); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `DELETE FROM resource_tags WHERE resource_id = $1`, id)
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
	if err := affected(db.pool.Exec(ctx, `UPDATE instances SET state = $1, last_seen = $2 WHERE id = $3`, state, seen, id)); err != nil {
		return fmt.Errorf("set state of instance %s: %w", id, err)
	}
	return nil
}

// ReplaceInstance replaces an instance and its tags while its agent key is
// agentKey (see store.Store). The UPDATE locks the row first, so
// concurrent puts, deletes and tag changes of the instance take turns.
func (db *DB) ReplaceInstance(ctx context.Context, in store.Instance, agentKey string) error {
	defer db.inst.Invalidate() // after the commit: see CachedInstance
	err := db.writeTx(ctx, func(tx pgx.Tx) error {
		if err := affected(tx.Exec(ctx, `UPDATE instances SET state = $1, launch_time = $2, last_seen = $3,
				hostname = $4, private_ip = $5, ipv6 = $6, os_id = $7, os_version = $8, os_pretty_name = $9,
				platform = $10, architecture = $11, kernel = $12, default_user = $13, agent_version = $14, sshd_version = $15,
				host_keys = $16, availability_zone = $17, agent_key = $18, default_user_exists = $19, sshd_configured = $20,
				clock_skew_millis = $21
			WHERE id = $22 AND agent_key = $23`,
			in.State, in.LaunchTime, in.LastSeen, in.Hostname, in.PrivateIP, in.IPv6,
			in.OSID, in.OSVersion, in.OSPrettyName, in.Platform, in.Architecture, in.Kernel, in.DefaultUser,
			in.AgentVersion, in.SSHDVersion, nonNil(in.HostKeys), in.AvailabilityZ,
			in.AgentKey, in.DefaultUserExists, in.SSHDConfigured, in.ClockSkewMillis, in.ID, agentKey)); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM resource_tags WHERE resource_id = $1`, in.ID); err != nil {
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
	if err := affected(db.pool.Exec(ctx, `UPDATE instances SET state = $1, last_seen = $2,
			hostname = $3, private_ip = $4, ipv6 = $5, os_id = $6, os_version = $7, os_pretty_name = $8,
			platform = $9, architecture = $10, kernel = $11, default_user = $12, agent_version = $13, sshd_version = $14,
			host_keys = $15, default_user_exists = $16, sshd_configured = $17, clock_skew_millis = $18
		WHERE id = $19 AND agent_key = $20`,
		in.State, in.LastSeen,
		in.Hostname, in.PrivateIP, in.IPv6, in.OSID, in.OSVersion, in.OSPrettyName,
		in.Platform, in.Architecture, in.Kernel, in.DefaultUser, in.AgentVersion, in.SSHDVersion,
		nonNil(in.HostKeys), in.DefaultUserExists, in.SSHDConfigured, in.ClockSkewMillis,
		in.ID, in.AgentKey)); err != nil {
		return fmt.Errorf("update agent facts of instance %s: %w", in.ID, err)
	}
	return nil
}

// SetAgentState is SetInstanceState while agentKey is the instance's.
func (db *DB) SetAgentState(ctx context.Context, id, agentKey, state string, seen time.Time) error {
	defer db.inst.Invalidate() // after the commit: see CachedInstance
	if err := affected(db.pool.Exec(ctx, `UPDATE instances SET state = $1, last_seen = $2 WHERE id = $3 AND agent_key = $4`,
		state, seen, id, agentKey)); err != nil {
		return fmt.Errorf("set state of instance %s: %w", id, err)
	}
	return nil
}

// TouchInstances marks instances running and seen, in one statement, each
// while its agent key is the given one.
func (db *DB) TouchInstances(ctx context.Context, agents []store.AgentRef, seen time.Time) ([]store.AgentRef, error) {
	defer db.inst.Invalidate() // after the commit: see CachedInstance
	if len(agents) == 0 {
		return nil, nil
	}
	ids, keys := make([]string, len(agents)), make([]string, len(agents))
	for i, a := range agents {
		ids[i], keys[i] = a.InstanceID, a.AgentKey
	}
	rows, err := db.pool.Query(ctx, `UPDATE instances AS i SET state = 'running', last_seen = $1
		FROM unnest($2::text[], $3::text[]) AS t (id, agent_key)
		WHERE i.id = t.id AND i.agent_key = t.agent_key
		RETURNING i.id`, seen, ids, keys)
	if err != nil {
		return nil, fmt.Errorf("touch %d instances: %w", len(agents), err)
	}
	touched, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("touch %d instances: %w", len(agents), err)
	}
	return store.Untouched(agents, touched), nil
}

// checkResource refuses tags on an instance that does not exist, and
// holds the instance row (FOR SHARE) until the transaction ends so that a
// concurrent DeleteInstance cannot leave the new tags behind. Other
// resources (the endpoint) are the caller's to check.
func checkResource(ctx context.Context, tx pgx.Tx, id string) error {
	if !strings.HasPrefix(id, "i-") {
		return nil
	}
	var one int
	err := tx.QueryRow(ctx, `SELECT 1 FROM instances WHERE id = $1 FOR SHARE`, id).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.ErrNotFound
	}
	return err
}

// tagLockClass is the first key of the two-key transaction advisory lock
// TagResource takes per resource ("ktag" in ASCII). Two-key advisory locks
// are a space apart from the one-key migrationLock and serverLock.
const tagLockClass int32 = 0x6b746167

// TagResource adds or overwrites tags of an EC2 resource. A key that
// differs only in case from one the resource has is refused
// (*store.TagKeyCaseError), checked in the write transaction under a lock
// of the resource: the instance row's FOR SHARE does not exclude another
// TagResource, and an endpoint has no row at all, so two concurrent calls
// (Team and team) would both see neither key and both land. The advisory
// lock (the resource ID's hash; a collision only makes two resources take
// turns) makes them take turns; READ COMMITTED then lets the second read
// the first's key. A unique index on (resource_id, lower(key)) would do it
// too, but could not be built on a database that already holds such a
// pair, and deleting either tag is not the migration's call.
func (db *DB) TagResource(ctx context.Context, resourceID string, tags []store.Tag) error {
	defer db.inst.Invalidate() // after the commit: see CachedInstance
	err := db.writeTx(ctx, func(tx pgx.Tx) error {
		if err := checkResource(ctx, tx, resourceID); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2))`, tagLockClass, resourceID); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT key FROM resource_tags WHERE resource_id = $1 ORDER BY key`, resourceID)
		if err != nil {
			return err
		}
		keys, err := pgx.CollectRows(rows, pgx.RowTo[string])
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

// UntagResource removes tags as EC2 DeleteTags does: by key, or by key and
// value; no tags at all removes every tag of the resource.
func (db *DB) UntagResource(ctx context.Context, resourceID string, tags []store.TagMatch) error {
	defer db.inst.Invalidate() // after the commit: see CachedInstance
	// In key order, as TagResource writes, so that the two lock rows in
	// one order.
	tags = slices.Clone(tags)
	slices.SortStableFunc(tags, func(a, b store.TagMatch) int { return cmp.Compare(a.Key, b.Key) })
	err := db.writeTx(ctx, func(tx pgx.Tx) error {
		if err := checkResource(ctx, tx, resourceID); err != nil {
			return err
		}
		if len(tags) == 0 {
			_, err := tx.Exec(ctx, `DELETE FROM resource_tags WHERE resource_id = $1`, resourceID)
			return err
		}
		for _, t := range tags {
			if _, err := tx.Exec(ctx, `DELETE FROM resource_tags WHERE resource_id = $1 AND key = $2 AND (NOT $3::boolean OR value = $4)`,
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
	tags, err := loadTags(ctx, db.pool, resourceTagsQuery, []string{resourceID})
	if err != nil {
		return nil, fmt.Errorf("tags of resource %s: %w", resourceID, err)
	}
	return tags[resourceID], nil
}

// ListResourceTags returns the tags of every resource, or of the given
// ones, ordered by resource ID and key.
func (db *DB) ListResourceTags(ctx context.Context, resourceIDs []string) ([]store.ResourceTag, error) {
	rows, err := db.pool.Query(ctx, `SELECT resource_id, key, value FROM resource_tags
		WHERE cardinality($1::text[]) = 0 OR resource_id = ANY($1)
		ORDER BY resource_id, key`, nonNil(resourceIDs))
	if err != nil {
		return nil, fmt.Errorf("list resource tags: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.ResourceTag, error) {
		var t store.ResourceTag
		err := r.Scan(&t.ResourceID, &t.Key, &t.Value)
		return t, err
	})
	if err != nil {
		return nil, fmt.Errorf("list resource tags: %w", err)
	}
	if len(out) == 0 {
		out = nil
	}
	return out, nil
}

// PutKeyRecord stores a pushed key.
func (db *DB) PutKeyRecord(ctx context.Context, r store.KeyRecord) error {
	err := db.writes.PutKey(ctx, r) // with other writes, or asynchronously: see groupcommit and openAsyncPool
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
	rows, err := db.pool.Query(ctx, `SELECT request_id, instance_id, os_user, public_key, fingerprint, caller_arn, created_at, expires_at
		FROM key_records WHERE instance_id = $1 AND ($2 = '' OR os_user = $2) AND expires_at > $3
		ORDER BY created_at, request_id`, instanceID, osUser, now)
	if err != nil {
		return nil, fmt.Errorf("active keys of instance %s: %w", instanceID, err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.KeyRecord, error) {
		var r store.KeyRecord
		err := row.Scan(&r.RequestID, &r.InstanceID, &r.OSUser, &r.PublicKey, &r.Fingerprint, &r.CallerARN, &r.CreatedAt, &r.ExpiresAt)
		r.CreatedAt, r.ExpiresAt = utc(r.CreatedAt), utc(r.ExpiresAt)
		return r, err
	})
	if err != nil {
		return nil, fmt.Errorf("active keys of instance %s: %w", instanceID, err)
	}
	if len(out) == 0 {
		out = nil
	}
	return out, nil
}

// PurgeKeyRecords deletes records that expired before cutoff.
func (db *DB) PurgeKeyRecords(ctx context.Context, cutoff time.Time) (int, error) {
	tag, err := db.pool.Exec(ctx, `DELETE FROM key_records WHERE expires_at < $1`, cutoff)
	if err != nil {
		return 0, fmt.Errorf("purge key records: %w", err)
	}
	return int(tag.RowsAffected()), nil
}
