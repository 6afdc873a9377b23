package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/kaginashi/kaginashi/internal/store"
)

// PolicyEntities lists the users and groups a policy is attached to and
// the users whose permissions boundary it is, in one read transaction so
// that the three lists agree.
func (db *DB) PolicyEntities(ctx context.Context, arn string) (store.PolicyEntities, error) {
	var e store.PolicyEntities
	err := db.readTx(ctx, func(tx *sql.Tx) error {
		if err := policyExists(ctx, tx, arn); err != nil {
			return err
		}
		var err error
		if e.Users, err = scanUsers(ctx, tx, `SELECT `+userColumns+` FROM users u
			JOIN user_policy_attachments a ON a.user_id = u.id WHERE a.policy_arn = ? ORDER BY u.name_key`, arn); err != nil {
			return err
		}
		if e.Groups, err = scanGroups(ctx, tx, `SELECT `+groupColumns+` FROM iam_groups g
			JOIN group_policy_attachments a ON a.group_id = g.id WHERE a.policy_arn = ? ORDER BY g.name_key`, arn); err != nil {
			return err
		}
		e.BoundaryUsers, err = scanUsers(ctx, tx, `SELECT `+userColumns+` FROM users u
			WHERE u.permissions_boundary = ? ORDER BY u.name_key`, arn)
		return err
	})
	if err != nil {
		return store.PolicyEntities{}, fmt.Errorf("list entities for policy %s: %w", arn, err)
	}
	return e, nil
}
