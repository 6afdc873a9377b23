package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/kaginashi/kaginashi/internal/store"
)

func userID(ctx context.Context, q querier, name string) (string, error) {
	var id string
	err := q.QueryRow(ctx, `SELECT id FROM users WHERE name_key = $1`, nameKey(name)).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", fmt.Errorf("user %q: %w", name, store.ErrNotFound)
	}
	return id, err
}

func groupID(ctx context.Context, q querier, name string) (string, error) {
	var id string
	err := q.QueryRow(ctx, `SELECT id FROM iam_groups WHERE name_key = $1`, nameKey(name)).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", fmt.Errorf("group %q: %w", name, store.ErrNotFound)
	}
	return id, err
}

func policyExists(ctx context.Context, q querier, arn string) error {
	found, err := exists(ctx, q, `SELECT EXISTS (SELECT 1 FROM policies WHERE arn = $1)`, arn)
	if err == nil && !found {
		err = fmt.Errorf("policy %s: %w", arn, store.ErrNotFound)
	}
	return err
}

// exists runs a SELECT EXISTS(...) query.
func exists(ctx context.Context, q querier, query string, args ...any) (bool, error) {
	var b bool
	err := q.QueryRow(ctx, query, args...).Scan(&b)
	return b, err
}

// dependent is one kind of row that blocks a delete, and what IAM says
// about it.
type dependent struct {
	query string // SELECT EXISTS(...) with one parameter, the parent's key
	msg   string
}

// checkDependents returns ErrConflict naming the first dependent found.
// The foreign keys refuse the delete anyway; this gives the reason.
func checkDependents(ctx context.Context, q querier, key string, deps []dependent) error {
	for _, d := range deps {
		found, err := exists(ctx, q, d.query, key)
		if err != nil {
			return err
		}
		if found {
			return fmt.Errorf("%s: %w", d.msg, store.ErrConflict)
		}
	}
	return nil
}

// affected turns "no row changed" into ErrNotFound.
func affected(tag pgconn.CommandTag, err error) error {
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return store.ErrNotFound
	}
	return nil
}

// loadTags reads (owner, key, value) rows for the given owners, keyed by
// owner, each owner's tags sorted by key.
func loadTags(ctx context.Context, q querier, query string, owners []string) (map[string][]store.Tag, error) {
	out := map[string][]store.Tag{}
	if len(owners) == 0 {
		return out, nil
	}
	rows, err := q.Query(ctx, query, owners)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var owner string
		var t store.Tag
		if err := rows.Scan(&owner, &t.Key, &t.Value); err != nil {
			return nil, err
		}
		out[owner] = append(out[owner], t)
	}
	return out, rows.Err()
}

const (
	userTagsQuery   = `SELECT user_id, key, value FROM user_tags WHERE user_id = ANY($1) ORDER BY user_id, key`
	policyTagsQuery = `SELECT policy_arn, key, value FROM policy_tags WHERE policy_arn = ANY($1) ORDER BY policy_arn, key`
	userColumns     = `u.id, u.name, u.path, u.create_date, u.permissions_boundary`
	groupColumns    = `g.id, g.name, g.path, g.create_date`
)

// scanUsers reads rows of userColumns and fills in the users' tags.
func scanUsers(ctx context.Context, q querier, query string, args ...any) ([]store.User, error) {
	rows, err := q.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	users, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.User, error) {
		var u store.User
		err := r.Scan(&u.ID, &u.Name, &u.Path, &u.CreateDate, &u.PermissionsBoundary)
		u.CreateDate = utc(u.CreateDate)
		return u, err
	})
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(users))
	for i, u := range users {
		ids[i] = u.ID
	}
	tags, err := loadTags(ctx, q, userTagsQuery, ids)
	if err != nil {
		return nil, err
	}
	for i := range users {
		users[i].Tags = tags[users[i].ID]
	}
	return users, nil
}

func scanGroups(ctx context.Context, q querier, query string, args ...any) ([]store.Group, error) {
	rows, err := q.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Group, error) {
		var g store.Group
		err := r.Scan(&g.ID, &g.Name, &g.Path, &g.CreateDate)
		g.CreateDate = utc(g.CreateDate)
		return g, err
	})
}

// CreateUser stores a new user.
func (db *DB) CreateUser(ctx context.Context, u store.User) error {
	err := db.iamWrite(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO users (id, name, name_key, path, create_date, permissions_boundary)
			VALUES ($1, $2, $3, $4, $5, $6)`,
			u.ID, u.Name, nameKey(u.Name), pathOr(u.Path), u.CreateDate, u.PermissionsBoundary)
		if isUnique(err) {
			return store.ErrExists
		}
		if err != nil {
			return err
		}
		return upsertUserTags(ctx, tx, u.ID, u.Tags)
	})
	if err != nil {
		return fmt.Errorf("create user %q: %w", u.Name, err)
	}
	return nil
}

func upsertUserTags(ctx context.Context, tx pgx.Tx, id string, tags []store.Tag) error {
	if len(tags) == 0 {
		return nil
	}
	keys, values := tagArrays(tags)
	_, err := tx.Exec(ctx, `INSERT INTO user_tags (user_id, key, value)
		SELECT $1, k, v FROM unnest($2::text[], $3::text[]) AS t (k, v)
		ON CONFLICT (user_id, key) DO UPDATE SET value = excluded.value`, id, keys, values)
	return err
}

// GetUser finds a user by name in any case.
func (db *DB) GetUser(ctx context.Context, name string) (store.User, error) {
	var users []store.User
	err := db.readTx(ctx, func(tx pgx.Tx) error {
		var err error
		users, err = scanUsers(ctx, tx, `SELECT `+userColumns+` FROM users u WHERE u.name_key = $1`, nameKey(name))
		return err
	})
	if err == nil && len(users) == 0 {
		err = store.ErrNotFound
	}
	if err != nil {
		return store.User{}, fmt.Errorf("get user %q: %w", name, err)
	}
	return users[0], nil
}

// ListUsers lists users whose path starts with pathPrefix, by name.
func (db *DB) ListUsers(ctx context.Context, pathPrefix string) ([]store.User, error) {
	var users []store.User
	err := db.readTx(ctx, func(tx pgx.Tx) error {
		var err error
		// starts_with, not LIKE: a prefix may contain % or _.
		users, err = scanUsers(ctx, tx, `SELECT `+userColumns+` FROM users u
			WHERE starts_with(u.path, $1) ORDER BY u.name_key`, pathPrefix)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	return users, nil
}

// DeleteUser deletes a user that has no dependents left.
func (db *DB) DeleteUser(ctx context.Context, name string) error {
	err := db.iamWrite(ctx, func(tx pgx.Tx) error {
		id, err := userID(ctx, tx, name)
		if err != nil {
			return err
		}
		if err := checkDependents(ctx, tx, id, []dependent{
			{`SELECT EXISTS (SELECT 1 FROM access_keys WHERE user_id = $1)`, "must delete access keys first"},
			{`SELECT EXISTS (SELECT 1 FROM login_profiles WHERE user_id = $1)`, "must delete login profile first"},
			{`SELECT EXISTS (SELECT 1 FROM user_policies WHERE user_id = $1)`, "must delete policies first"},
			{`SELECT EXISTS (SELECT 1 FROM user_policy_attachments WHERE user_id = $1)`, "must detach all policies first"},
			{`SELECT EXISTS (SELECT 1 FROM group_members WHERE user_id = $1)`, "must remove user from all groups first"},
			{`SELECT EXISTS (SELECT 1 FROM mfa_devices WHERE user_id = $1)`, "must deactivate MFA devices first"},
		}); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `DELETE FROM users WHERE id = $1`, id)
		if isForeignKey(err) {
			return fmt.Errorf("user has dependents: %w", store.ErrConflict)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("delete user %q: %w", name, err)
	}
	return nil
}

// TagUser adds tags to a user, overwriting the values of existing keys.
func (db *DB) TagUser(ctx context.Context, name string, tags []store.Tag) error {
	err := db.iamWrite(ctx, func(tx pgx.Tx) error {
		id, err := userID(ctx, tx, name)
		if err != nil {
			return err
		}
		return upsertUserTags(ctx, tx, id, tags)
	})
	if err != nil {
		return fmt.Errorf("tag user %q: %w", name, err)
	}
	return nil
}

// UntagUser removes tags by key; absent keys are no error.
func (db *DB) UntagUser(ctx context.Context, name string, keys []string) error {
	err := db.iamWrite(ctx, func(tx pgx.Tx) error {
		id, err := userID(ctx, tx, name)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `DELETE FROM user_tags WHERE user_id = $1 AND key = ANY($2)`, id, nonNil(keys))
		return err
	})
	if err != nil {
		return fmt.Errorf("untag user %q: %w", name, err)
	}
	return nil
}

func checkStatus(status string) error {
	if status != store.StatusActive && status != store.StatusInactive {
		return fmt.Errorf("invalid access key status %q", status)
	}
	return nil
}

// CreateAccessKey stores a key, within the per-user quota.
func (db *DB) CreateAccessKey(ctx context.Context, k store.AccessKey) error {
	if k.Status == "" {
		k.Status = store.StatusActive
	}
	if err := checkStatus(k.Status); err != nil {
		return fmt.Errorf("create access key: %w", err)
	}
	err := db.iamWrite(ctx, func(tx pgx.Tx) error {
		var uid *string
		if k.UserName != "" {
			id, err := userID(ctx, tx, k.UserName)
			if err != nil {
				return err
			}
			uid = &id
			// iamWrite's generation lock makes this count and the insert
			// below atomic with respect to every other replica.
			var n int
			if err := tx.QueryRow(ctx, `SELECT count(*) FROM access_keys WHERE user_id = $1`, id).Scan(&n); err != nil {
				return err
			}
			if n >= store.MaxAccessKeysPerUser {
				return fmt.Errorf("user has %d access keys: %w", n, store.ErrLimitExceeded)
			}
		}
		_, err := tx.Exec(ctx, `INSERT INTO access_keys (id, user_id, secret, status, create_date) VALUES ($1, $2, $3, $4, $5)`,
			k.ID, uid, nonNil(k.SecretCiphertext), k.Status, k.CreateDate)
		if isUnique(err) {
			return store.ErrExists
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("create access key %s for %q: %w", k.ID, k.UserName, err)
	}
	return nil
}

const accessKeyColumns = `k.id, COALESCE(u.name, ''), k.secret, k.status, k.create_date`

func scanAccessKey(r pgx.Row) (store.AccessKey, error) {
	var k store.AccessKey
	err := r.Scan(&k.ID, &k.UserName, &k.SecretCiphertext, &k.Status, &k.CreateDate)
	k.CreateDate = utc(k.CreateDate)
	return k, err
}

// GetAccessKey finds a key by ID.
func (db *DB) GetAccessKey(ctx context.Context, id string) (store.AccessKey, error) {
	k, err := scanAccessKey(db.pool.QueryRow(ctx, `SELECT `+accessKeyColumns+`
		FROM access_keys k LEFT JOIN users u ON u.id = k.user_id WHERE k.id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		err = store.ErrNotFound
	}
	if err != nil {
		return store.AccessKey{}, fmt.Errorf("get access key %s: %w", id, err)
	}
	return k, nil
}

// keyOwner resolves userName ("" for root) to the access_keys.user_id value.
func keyOwner(ctx context.Context, q querier, userName string) (*string, error) {
	if userName == "" {
		return nil, nil
	}
	id, err := userID(ctx, q, userName)
	if err != nil {
		return nil, err
	}
	return &id, nil
}

// ListAccessKeys lists a user's keys, or the root's for "".
func (db *DB) ListAccessKeys(ctx context.Context, userName string) ([]store.AccessKey, error) {
	var keys []store.AccessKey
	err := db.readTx(ctx, func(tx pgx.Tx) error {
		uid, err := keyOwner(ctx, tx, userName)
		if err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT `+accessKeyColumns+`
			FROM access_keys k LEFT JOIN users u ON u.id = k.user_id
			WHERE k.user_id IS NOT DISTINCT FROM $1 ORDER BY k.create_date, k.id`, uid)
		if err != nil {
			return err
		}
		keys, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.AccessKey, error) { return scanAccessKey(r) })
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list access keys of %q: %w", userName, err)
	}
	return keys, nil
}

// UpdateAccessKey sets a key's status. The key must belong to userName.
func (db *DB) UpdateAccessKey(ctx context.Context, userName, id, status string) error {
	if err := checkStatus(status); err != nil {
		return fmt.Errorf("update access key %s: %w", id, err)
	}
	err := db.iamWrite(ctx, func(tx pgx.Tx) error {
		uid, err := keyOwner(ctx, tx, userName)
		if err != nil {
			return err
		}
		return affected(tx.Exec(ctx, `UPDATE access_keys SET status = $1 WHERE id = $2 AND user_id IS NOT DISTINCT FROM $3`, status, id, uid))
	})
	if err != nil {
		return fmt.Errorf("update access key %s of %q: %w", id, userName, err)
	}
	return nil
}

// DeleteAccessKey deletes a key of userName.
func (db *DB) DeleteAccessKey(ctx context.Context, userName, id string) error {
	err := db.iamWrite(ctx, func(tx pgx.Tx) error {
		uid, err := keyOwner(ctx, tx, userName)
		if err != nil {
			return err
		}
		return affected(tx.Exec(ctx, `DELETE FROM access_keys WHERE id = $1 AND user_id IS NOT DISTINCT FROM $2`, id, uid))
	})
	if err != nil {
		return fmt.Errorf("delete access key %s of %q: %w", id, userName, err)
	}
	return nil
}

// CreateGroup stores a new group.
func (db *DB) CreateGroup(ctx context.Context, g store.Group) error {
	err := db.iamWrite(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO iam_groups (id, name, name_key, path, create_date) VALUES ($1, $2, $3, $4, $5)`,
			g.ID, g.Name, nameKey(g.Name), pathOr(g.Path), g.CreateDate)
		if isUnique(err) {
			return store.ErrExists
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("create group %q: %w", g.Name, err)
	}
	return nil
}

// GetGroup returns a group and its members, by name.
func (db *DB) GetGroup(ctx context.Context, name string) (store.Group, []store.User, error) {
	var g store.Group
	var members []store.User
	err := db.readTx(ctx, func(tx pgx.Tx) error {
		groups, err := scanGroups(ctx, tx, `SELECT `+groupColumns+` FROM iam_groups g WHERE g.name_key = $1`, nameKey(name))
		if err != nil {
			return err
		}
		if len(groups) == 0 {
			return store.ErrNotFound
		}
		g = groups[0]
		members, err = scanUsers(ctx, tx, `SELECT `+userColumns+` FROM users u
			JOIN group_members m ON m.user_id = u.id WHERE m.group_id = $1 ORDER BY u.name_key`, g.ID)
		return err
	})
	if err != nil {
		return store.Group{}, nil, fmt.Errorf("get group %q: %w", name, err)
	}
	return g, members, nil
}

// ListGroups lists groups whose path starts with pathPrefix, by name.
func (db *DB) ListGroups(ctx context.Context, pathPrefix string) ([]store.Group, error) {
	groups, err := scanGroups(ctx, db.pool, `SELECT `+groupColumns+` FROM iam_groups g
		WHERE starts_with(g.path, $1) ORDER BY g.name_key`, pathPrefix)
	if err != nil {
		return nil, fmt.Errorf("list groups: %w", err)
	}
	return groups, nil
}

// DeleteGroup deletes a group without members or attached policies.
func (db *DB) DeleteGroup(ctx context.Context, name string) error {
	err := db.iamWrite(ctx, func(tx pgx.Tx) error {
		id, err := groupID(ctx, tx, name)
		if err != nil {
			return err
		}
		if err := checkDependents(ctx, tx, id, []dependent{
			{`SELECT EXISTS (SELECT 1 FROM group_members WHERE group_id = $1)`, "must remove users from group first"},
			{`SELECT EXISTS (SELECT 1 FROM group_policy_attachments WHERE group_id = $1)`, "must detach all policies first"},
		}); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `DELETE FROM iam_groups WHERE id = $1`, id)
		if isForeignKey(err) {
			return fmt.Errorf("group has dependents: %w", store.ErrConflict)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("delete group %q: %w", name, err)
	}
	return nil
}

// AddUserToGroup makes user a member; adding a member again is no error.
func (db *DB) AddUserToGroup(ctx context.Context, group, user string) error {
	err := db.iamWrite(ctx, func(tx pgx.Tx) error {
		gid, err := groupID(ctx, tx, group)
		if err != nil {
			return err
		}
		uid, err := userID(ctx, tx, user)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO group_members (group_id, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING`, gid, uid)
		return err
	})
	if err != nil {
		return fmt.Errorf("add user %q to group %q: %w", user, group, err)
	}
	return nil
}

// RemoveUserFromGroup ends a membership.
func (db *DB) RemoveUserFromGroup(ctx context.Context, group, user string) error {
	err := db.iamWrite(ctx, func(tx pgx.Tx) error {
		gid, err := groupID(ctx, tx, group)
		if err != nil {
			return err
		}
		uid, err := userID(ctx, tx, user)
		if err != nil {
			return err
		}
		if err := affected(tx.Exec(ctx, `DELETE FROM group_members WHERE group_id = $1 AND user_id = $2`, gid, uid)); err != nil {
			return fmt.Errorf("not a member: %w", err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("remove user %q from group %q: %w", user, group, err)
	}
	return nil
}

// ListGroupsForUser lists the groups user is in, by name.
func (db *DB) ListGroupsForUser(ctx context.Context, user string) ([]store.Group, error) {
	var groups []store.Group
	err := db.readTx(ctx, func(tx pgx.Tx) error {
		uid, err := userID(ctx, tx, user)
		if err != nil {
			return err
		}
		groups, err = scanGroups(ctx, tx, `SELECT `+groupColumns+` FROM iam_groups g
			JOIN group_members m ON m.group_id = g.id WHERE m.user_id = $1 ORDER BY g.name_key`, uid)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list groups for user %q: %w", user, err)
	}
	return groups, nil
}

// policyColumns select a policy, its attachment count and its
// permissions-boundary usage count. (users.permissions_boundary has no
// index: an account's users are few, and the count is read only by
// policy listings, not by the authorization path.)
const policyColumns = `p.arn, p.id, p.name, p.path, p.description, p.default_version, p.create_date, p.update_date,
	(SELECT count(*) FROM user_policy_attachments a WHERE a.policy_arn = p.arn) +
	(SELECT count(*) FROM group_policy_attachments a WHERE a.policy_arn = p.arn),
	(SELECT count(*) FROM users b WHERE b.permissions_boundary = p.arn)`

func scanPolicies(ctx context.Context, q querier, query string, args ...any) ([]store.ManagedPolicy, error) {
	rows, err := q.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	ps, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.ManagedPolicy, error) {
		var p store.ManagedPolicy
		var def int
		err := r.Scan(&p.ARN, &p.ID, &p.Name, &p.Path, &p.Description, &def, &p.CreateDate, &p.UpdateDate, &p.AttachmentCount, &p.PermissionsBoundaryUsageCount)
		p.DefaultVersionID = versionID(def)
		p.CreateDate, p.UpdateDate = utc(p.CreateDate), utc(p.UpdateDate)
		return p, err
	})
	if err != nil {
		return nil, err
	}
	arns := make([]string, len(ps))
	for i, p := range ps {
		arns[i] = p.ARN
	}
	tags, err := loadTags(ctx, q, policyTagsQuery, arns)
	if err != nil {
		return nil, err
	}
	for i := range ps {
		ps[i].Tags = tags[ps[i].ARN]
	}
	return ps, nil
}

func versionID(n int) string { return "v" + strconv.Itoa(n) }

// parseVersion accepts exactly the IDs versionID makes; anything else
// names no version.
func parseVersion(id string) (int, error) {
	if len(id) >= 2 && id[0] == 'v' {
		if n, err := strconv.Atoi(id[1:]); err == nil && n > 0 && versionID(n) == id {
			return n, nil
		}
	}
	return 0, fmt.Errorf("version %q: %w", id, store.ErrNotFound)
}

// CreatePolicy stores a policy with document as its default version v1.
func (db *DB) CreatePolicy(ctx context.Context, p store.ManagedPolicy, document string) error {
	updated := p.UpdateDate
	if updated.IsZero() {
		updated = p.CreateDate
	}
	err := db.iamWrite(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO policies
			(arn, id, name, name_key, path, description, default_version, next_version, create_date, update_date)
			VALUES ($1, $2, $3, $4, $5, $6, 1, 2, $7, $8)`,
			p.ARN, p.ID, p.Name, nameKey(p.Name), pathOr(p.Path), p.Description, p.CreateDate, updated)
		if isUnique(err) {
			return store.ErrExists
		}
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO policy_versions (policy_arn, version, document, create_date) VALUES ($1, 1, $2, $3)`,
			p.ARN, document, p.CreateDate); err != nil {
			return err
		}
		if len(p.Tags) == 0 {
			return nil
		}
		keys, values := tagArrays(p.Tags)
		_, err = tx.Exec(ctx, `INSERT INTO policy_tags (policy_arn, key, value)
			SELECT $1, k, v FROM unnest($2::text[], $3::text[]) AS t (k, v)`, p.ARN, keys, values)
		return err
	})
	if err != nil {
		return fmt.Errorf("create policy %s: %w", p.ARN, err)
	}
	return nil
}

// GetPolicy finds a policy by ARN.
func (db *DB) GetPolicy(ctx context.Context, arn string) (store.ManagedPolicy, error) {
	var ps []store.ManagedPolicy
	err := db.readTx(ctx, func(tx pgx.Tx) error {
		var err error
		ps, err = scanPolicies(ctx, tx, `SELECT `+policyColumns+` FROM policies p WHERE p.arn = $1`, arn)
		return err
	})
	if err == nil && len(ps) == 0 {
		err = store.ErrNotFound
	}
	if err != nil {
		return store.ManagedPolicy{}, fmt.Errorf("get policy %s: %w", arn, err)
	}
	return ps[0], nil
}

// ListPolicies lists policies under pathPrefix, by name.
func (db *DB) ListPolicies(ctx context.Context, pathPrefix string, onlyAttached bool) ([]store.ManagedPolicy, error) {
	var ps []store.ManagedPolicy
	err := db.readTx(ctx, func(tx pgx.Tx) error {
		var err error
		ps, err = scanPolicies(ctx, tx, `SELECT `+policyColumns+` FROM policies p
			WHERE starts_with(p.path, $1)
			AND (NOT $2::boolean
				OR EXISTS (SELECT 1 FROM user_policy_attachments a WHERE a.policy_arn = p.arn)
				OR EXISTS (SELECT 1 FROM group_policy_attachments a WHERE a.policy_arn = p.arn))
			ORDER BY p.name_key`, pathPrefix, onlyAttached)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list policies: %w", err)
	}
	return ps, nil
}

// DeletePolicy deletes an unattached policy that has only its default
// version left; that version goes with it.
func (db *DB) DeletePolicy(ctx context.Context, arn string) error {
	err := db.iamWrite(ctx, func(tx pgx.Tx) error {
		if err := policyExists(ctx, tx, arn); err != nil {
			return err
		}
		if err := checkDependents(ctx, tx, arn, []dependent{
			{`SELECT EXISTS (SELECT 1 FROM user_policy_attachments WHERE policy_arn = $1)
				OR EXISTS (SELECT 1 FROM group_policy_attachments WHERE policy_arn = $1)`,
				"cannot delete a policy attached to entities"},
			{`SELECT EXISTS (SELECT 1 FROM users WHERE permissions_boundary = $1)`,
				"cannot delete a policy that is a user's permissions boundary"},
			{`SELECT (SELECT count(*) FROM policy_versions WHERE policy_arn = $1) > 1`,
				"must delete the policy's non-default versions first"},
		}); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `DELETE FROM policies WHERE arn = $1`, arn)
		if isForeignKey(err) {
			return fmt.Errorf("policy is attached: %w", store.ErrConflict)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("delete policy %s: %w", arn, err)
	}
	return nil
}

// CreatePolicyVersion adds the policy's next version.
func (db *DB) CreatePolicyVersion(ctx context.Context, arn, document string, setDefault bool, now time.Time) (store.PolicyVersion, error) {
	var v store.PolicyVersion
	err := db.iamWrite(ctx, func(tx pgx.Tx) error {
		// iamWrite's generation lock makes this count and the insert
		// below atomic with respect to every other replica.
		var next, count int
		err := tx.QueryRow(ctx, `SELECT next_version, (SELECT count(*) FROM policy_versions v WHERE v.policy_arn = p.arn)
			FROM policies p WHERE p.arn = $1`, arn).Scan(&next, &count)
		if errors.Is(err, pgx.ErrNoRows) {
			return store.ErrNotFound
		}
		if err != nil {
			return err
		}
		if count >= store.MaxPolicyVersions {
			return fmt.Errorf("policy has %d versions: %w", count, store.ErrLimitExceeded)
		}
		var created time.Time
		if err := tx.QueryRow(ctx, `INSERT INTO policy_versions (policy_arn, version, document, create_date) VALUES ($1, $2, $3, $4)
			RETURNING create_date`, arn, next, document, now).Scan(&created); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE policies SET next_version = $1::integer + 1, update_date = $2,
			default_version = CASE WHEN $3::boolean THEN $1::integer ELSE default_version END WHERE arn = $4`,
			next, now, setDefault, arn); err != nil {
			return err
		}
		v = store.PolicyVersion{PolicyARN: arn, VersionID: versionID(next), Document: document, IsDefault: setDefault, CreateDate: utc(created)}
		return nil
	})
	if err != nil {
		return store.PolicyVersion{}, fmt.Errorf("create version of policy %s: %w", arn, err)
	}
	return v, nil
}

const versionColumns = `v.policy_arn, v.version, v.document, v.version = p.default_version, v.create_date`

func scanVersions(ctx context.Context, q querier, query string, args ...any) ([]store.PolicyVersion, error) {
	rows, err := q.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.PolicyVersion, error) {
		var v store.PolicyVersion
		var n int
		err := r.Scan(&v.PolicyARN, &n, &v.Document, &v.IsDefault, &v.CreateDate)
		v.VersionID = versionID(n)
		v.CreateDate = utc(v.CreateDate)
		return v, err
	})
}

// GetPolicyVersion returns one version of a policy.
func (db *DB) GetPolicyVersion(ctx context.Context, arn, versionID string) (store.PolicyVersion, error) {
	n, err := parseVersion(versionID)
	if err != nil {
		return store.PolicyVersion{}, fmt.Errorf("get policy %s version: %w", arn, err)
	}
	vs, err := scanVersions(ctx, db.pool, `SELECT `+versionColumns+` FROM policy_versions v
		JOIN policies p ON p.arn = v.policy_arn WHERE v.policy_arn = $1 AND v.version = $2`, arn, n)
	if err == nil && len(vs) == 0 {
		err = store.ErrNotFound
	}
	if err != nil {
		return store.PolicyVersion{}, fmt.Errorf("get policy %s version %s: %w", arn, versionID, err)
	}
	return vs[0], nil
}

// ListPolicyVersions lists a policy's versions, oldest first.
func (db *DB) ListPolicyVersions(ctx context.Context, arn string) ([]store.PolicyVersion, error) {
	var vs []store.PolicyVersion
	err := db.readTx(ctx, func(tx pgx.Tx) error {
		if err := policyExists(ctx, tx, arn); err != nil {
			return err
		}
		var err error
		vs, err = scanVersions(ctx, tx, `SELECT `+versionColumns+` FROM policy_versions v
			JOIN policies p ON p.arn = v.policy_arn WHERE v.policy_arn = $1 ORDER BY v.version`, arn)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list versions of policy %s: %w", arn, err)
	}
	return vs, nil
}

// SetDefaultPolicyVersion makes an existing version the default.
func (db *DB) SetDefaultPolicyVersion(ctx context.Context, arn, versionID string, now time.Time) error {
	err := db.iamWrite(ctx, func(tx pgx.Tx) error {
		n, err := parseVersion(versionID)
		if err != nil {
			return err
		}
		if err := policyExists(ctx, tx, arn); err != nil {
			return err
		}
		return affected(tx.Exec(ctx, `UPDATE policies SET default_version = $1, update_date = $2
			WHERE arn = $3 AND EXISTS (SELECT 1 FROM policy_versions WHERE policy_arn = $3 AND version = $1)`,
			n, now, arn))
	})
	if err != nil {
		return fmt.Errorf("set default version of policy %s to %s: %w", arn, versionID, err)
	}
	return nil
}

// DeletePolicyVersion deletes a version that is not the default.
func (db *DB) DeletePolicyVersion(ctx context.Context, arn, versionID string) error {
	err := db.iamWrite(ctx, func(tx pgx.Tx) error {
		n, err := parseVersion(versionID)
		if err != nil {
			return err
		}
		var def int
		err = tx.QueryRow(ctx, `SELECT default_version FROM policies WHERE arn = $1`, arn).Scan(&def)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("policy: %w", store.ErrNotFound)
		}
		if err != nil {
			return err
		}
		if n == def {
			return fmt.Errorf("cannot delete the default version: %w", store.ErrConflict)
		}
		return affected(tx.Exec(ctx, `DELETE FROM policy_versions WHERE policy_arn = $1 AND version = $2`, arn, n))
	})
	if err != nil {
		return fmt.Errorf("delete policy %s version %s: %w", arn, versionID, err)
	}
	return nil
}

// AttachUserPolicy attaches a managed policy to a user; attaching it
// again is no error.
func (db *DB) AttachUserPolicy(ctx context.Context, user, policyARN string) error {
	err := db.iamWrite(ctx, func(tx pgx.Tx) error {
		uid, err := userID(ctx, tx, user)
		if err != nil {
			return err
		}
		if err := policyExists(ctx, tx, policyARN); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO user_policy_attachments (user_id, policy_arn) VALUES ($1, $2) ON CONFLICT DO NOTHING`, uid, policyARN)
		return err
	})
	if err != nil {
		return fmt.Errorf("attach policy %s to user %q: %w", policyARN, user, err)
	}
	return nil
}

// DetachUserPolicy detaches a managed policy from a user.
func (db *DB) DetachUserPolicy(ctx context.Context, user, policyARN string) error {
	err := db.iamWrite(ctx, func(tx pgx.Tx) error {
		uid, err := userID(ctx, tx, user)
		if err != nil {
			return err
		}
		if err := affected(tx.Exec(ctx, `DELETE FROM user_policy_attachments WHERE user_id = $1 AND policy_arn = $2`, uid, policyARN)); err != nil {
			return fmt.Errorf("not attached: %w", err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("detach policy %s from user %q: %w", policyARN, user, err)
	}
	return nil
}

// ListAttachedUserPolicies lists the managed policies attached to a user,
// by ARN.
func (db *DB) ListAttachedUserPolicies(ctx context.Context, user string) ([]store.ManagedPolicy, error) {
	var ps []store.ManagedPolicy
	err := db.readTx(ctx, func(tx pgx.Tx) error {
		uid, err := userID(ctx, tx, user)
		if err != nil {
			return err
		}
		ps, err = scanPolicies(ctx, tx, `SELECT `+policyColumns+` FROM policies p
			JOIN user_policy_attachments x ON x.policy_arn = p.arn WHERE x.user_id = $1 ORDER BY p.arn`, uid)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list policies attached to user %q: %w", user, err)
	}
	return ps, nil
}

// AttachGroupPolicy attaches a managed policy to a group; attaching it
// again is no error.
func (db *DB) AttachGroupPolicy(ctx context.Context, group, policyARN string) error {
	err := db.iamWrite(ctx, func(tx pgx.Tx) error {
		gid, err := groupID(ctx, tx, group)
		if err != nil {
			return err
		}
		if err := policyExists(ctx, tx, policyARN); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO group_policy_attachments (group_id, policy_arn) VALUES ($1, $2) ON CONFLICT DO NOTHING`, gid, policyARN)
		return err
	})
	if err != nil {
		return fmt.Errorf("attach policy %s to group %q: %w", policyARN, group, err)
	}
	return nil
}

// DetachGroupPolicy detaches a managed policy from a group.
func (db *DB) DetachGroupPolicy(ctx context.Context, group, policyARN string) error {
	err := db.iamWrite(ctx, func(tx pgx.Tx) error {
		gid, err := groupID(ctx, tx, group)
		if err != nil {
			return err
		}
		if err := affected(tx.Exec(ctx, `DELETE FROM group_policy_attachments WHERE group_id = $1 AND policy_arn = $2`, gid, policyARN)); err != nil {
			return fmt.Errorf("not attached: %w", err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("detach policy %s from group %q: %w", policyARN, group, err)
	}
	return nil
}

// ListAttachedGroupPolicies lists the managed policies attached to a
// group, by ARN.
func (db *DB) ListAttachedGroupPolicies(ctx context.Context, group string) ([]store.ManagedPolicy, error) {
	var ps []store.ManagedPolicy
	err := db.readTx(ctx, func(tx pgx.Tx) error {
		gid, err := groupID(ctx, tx, group)
		if err != nil {
			return err
		}
		ps, err = scanPolicies(ctx, tx, `SELECT `+policyColumns+` FROM policies p
			JOIN group_policy_attachments x ON x.policy_arn = p.arn WHERE x.group_id = $1 ORDER BY p.arn`, gid)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list policies attached to group %q: %w", group, err)
	}
	return ps, nil
}

// PutUserPolicy creates or replaces an inline policy.
func (db *DB) PutUserPolicy(ctx context.Context, p store.InlinePolicy) error {
	err := db.iamWrite(ctx, func(tx pgx.Tx) error {
		uid, err := userID(ctx, tx, p.UserName)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO user_policies (user_id, name, document) VALUES ($1, $2, $3)
			ON CONFLICT (user_id, name) DO UPDATE SET document = excluded.document`, uid, p.PolicyName, p.Document)
		return err
	})
	if err != nil {
		return fmt.Errorf("put policy %q of user %q: %w", p.PolicyName, p.UserName, err)
	}
	return nil
}

// GetUserPolicy returns an inline policy.
func (db *DB) GetUserPolicy(ctx context.Context, user, name string) (store.InlinePolicy, error) {
	p := store.InlinePolicy{PolicyName: name}
	err := db.pool.QueryRow(ctx, `SELECT u.name, p.document FROM user_policies p JOIN users u ON u.id = p.user_id
		WHERE u.name_key = $1 AND p.name = $2`, nameKey(user), name).Scan(&p.UserName, &p.Document)
	if errors.Is(err, pgx.ErrNoRows) {
		err = store.ErrNotFound
	}
	if err != nil {
		return store.InlinePolicy{}, fmt.Errorf("get policy %q of user %q: %w", name, user, err)
	}
	return p, nil
}

// ListUserPolicies lists a user's inline policy names, sorted.
func (db *DB) ListUserPolicies(ctx context.Context, user string) ([]string, error) {
	var names []string
	err := db.readTx(ctx, func(tx pgx.Tx) error {
		uid, err := userID(ctx, tx, user)
		if err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT name FROM user_policies WHERE user_id = $1 ORDER BY name`, uid)
		if err != nil {
			return err
		}
		names, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list policies of user %q: %w", user, err)
	}
	if len(names) == 0 {
		names = nil
	}
	return names, nil
}

// DeleteUserPolicy deletes an inline policy.
func (db *DB) DeleteUserPolicy(ctx context.Context, user, name string) error {
	err := db.iamWrite(ctx, func(tx pgx.Tx) error {
		uid, err := userID(ctx, tx, user)
		if err != nil {
			return err
		}
		return affected(tx.Exec(ctx, `DELETE FROM user_policies WHERE user_id = $1 AND name = $2`, uid, name))
	})
	if err != nil {
		return fmt.Errorf("delete policy %q of user %q: %w", name, user, err)
	}
	return nil
}

// CreateLoginProfile gives a user a console password.
func (db *DB) CreateLoginProfile(ctx context.Context, p store.LoginProfile) error {
	err := db.iamWrite(ctx, func(tx pgx.Tx) error {
		uid, err := userID(ctx, tx, p.UserName)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO login_profiles (user_id, password_hash, reset_required, create_date) VALUES ($1, $2, $3, $4)`,
			uid, p.PasswordHash, p.ResetRequired, p.CreateDate)
		if isUnique(err) {
			return store.ErrExists
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("create login profile of user %q: %w", p.UserName, err)
	}
	return nil
}

// GetLoginProfile returns a user's login profile.
func (db *DB) GetLoginProfile(ctx context.Context, user string) (store.LoginProfile, error) {
	var p store.LoginProfile
	err := db.pool.QueryRow(ctx, `SELECT u.name, l.password_hash, l.reset_required, l.create_date
		FROM login_profiles l JOIN users u ON u.id = l.user_id WHERE u.name_key = $1`, nameKey(user)).
		Scan(&p.UserName, &p.PasswordHash, &p.ResetRequired, &p.CreateDate)
	if errors.Is(err, pgx.ErrNoRows) {
		err = store.ErrNotFound
	}
	if err != nil {
		return store.LoginProfile{}, fmt.Errorf("get login profile of user %q: %w", user, err)
	}
	p.CreateDate = utc(p.CreateDate)
	return p, nil
}

// UpdateLoginProfile changes the password hash and reset flag; the
// creation date stays.
func (db *DB) UpdateLoginProfile(ctx context.Context, p store.LoginProfile) error {
	err := db.iamWrite(ctx, func(tx pgx.Tx) error {
		uid, err := userID(ctx, tx, p.UserName)
		if err != nil {
			return err
		}
		return affected(tx.Exec(ctx, `UPDATE login_profiles SET password_hash = $1, reset_required = $2 WHERE user_id = $3`,
			p.PasswordHash, p.ResetRequired, uid))
	})
	if err != nil {
		return fmt.Errorf("update login profile of user %q: %w", p.UserName, err)
	}
	return nil
}

// DeleteLoginProfile removes a user's console password.
func (db *DB) DeleteLoginProfile(ctx context.Context, user string) error {
	err := db.iamWrite(ctx, func(tx pgx.Tx) error {
		uid, err := userID(ctx, tx, user)
		if err != nil {
			return err
		}
		return affected(tx.Exec(ctx, `DELETE FROM login_profiles WHERE user_id = $1`, uid))
	})
	if err != nil {
		return fmt.Errorf("delete login profile of user %q: %w", user, err)
	}
	return nil
}

// PrincipalPolicies returns the documents that apply to a user: inline
// policies by name, then the default versions of the policies attached to
// the user, then of those attached to its groups, each by ARN. A managed
// policy reached more than one way appears once, at its first place.
func (db *DB) PrincipalPolicies(ctx context.Context, user string) ([]store.PrincipalPolicy, error) {
	var out []store.PrincipalPolicy
	err := db.readTx(ctx, func(tx pgx.Tx) error {
		uid, err := userID(ctx, tx, user)
		if err != nil {
			return err
		}
		seen := map[string]bool{}
		for i, query := range []string{
			`SELECT name, document FROM user_policies WHERE user_id = $1 ORDER BY name`,
			`SELECT p.arn, v.document FROM user_policy_attachments a
				JOIN policies p ON p.arn = a.policy_arn
				JOIN policy_versions v ON v.policy_arn = p.arn AND v.version = p.default_version
				WHERE a.user_id = $1 ORDER BY p.arn`,
			`SELECT DISTINCT p.arn, v.document FROM group_members m
				JOIN group_policy_attachments a ON a.group_id = m.group_id
				JOIN policies p ON p.arn = a.policy_arn
				JOIN policy_versions v ON v.policy_arn = p.arn AND v.version = p.default_version
				WHERE m.user_id = $1 ORDER BY p.arn`,
		} {
			rows, err := tx.Query(ctx, query, uid)
			if err != nil {
				return err
			}
			ps, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.PrincipalPolicy, error) {
				var p store.PrincipalPolicy
				err := r.Scan(&p.Name, &p.Document)
				return p, err
			})
			if err != nil {
				return err
			}
			for _, p := range ps {
				if i > 0 { // managed: the same ARN through another group
					if seen[p.Name] {
						continue
					}
					seen[p.Name] = true
				}
				out = append(out, p)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("policies of user %q: %w", user, err)
	}
	return out, nil
}
