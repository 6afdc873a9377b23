package postgres

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/kaginashi/kaginashi/internal/store"
)

// SetUserPermissionsBoundary sets or (with "") removes a user's
// permissions boundary.
func (db *DB) SetUserPermissionsBoundary(ctx context.Context, name, policyARN string) error {
	err := db.iamWrite(ctx, func(tx pgx.Tx) error {
		return affected(tx.Exec(ctx, `UPDATE users SET permissions_boundary = $1 WHERE name_key = $2`, policyARN, nameKey(name)))
	})
	if err != nil {
		return fmt.Errorf("set permissions boundary of user %q: %w", name, err)
	}
	return nil
}

// awsPolicyNameKey keeps AWS-managed policies out of the account's name
// space: policies.name_key is unique, and an account may have a policy
// called AdministratorAccess of its own. A customer name cannot contain
// ':', so the lowered ARN never collides with one.
func awsPolicyNameKey(arn string) string { return strings.ToLower(arn) }

// PutAWSManagedPolicy installs or refreshes an AWS-managed policy with
// one version, its default.
func (db *DB) PutAWSManagedPolicy(ctx context.Context, p store.ManagedPolicy, document string) error {
	v, err := parseVersion(p.DefaultVersionID)
	if err != nil {
		return fmt.Errorf("put AWS-managed policy %s: %w", p.ARN, err)
	}
	updated := p.UpdateDate
	if updated.IsZero() {
		updated = p.CreateDate
	}
	err = db.iamWrite(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO policies
			(arn, id, name, name_key, path, description, default_version, next_version, create_date, update_date)
			VALUES ($1, $2, $3, $4, $5, $6, $7::integer, $7::integer + 1, $8, $9)
			ON CONFLICT (arn) DO UPDATE SET description = excluded.description,
				default_version = excluded.default_version,
				next_version = greatest(policies.next_version, excluded.next_version),
				create_date = excluded.create_date, update_date = excluded.update_date`,
			p.ARN, p.ID, p.Name, awsPolicyNameKey(p.ARN), pathOr(p.Path), p.Description, v, p.CreateDate, updated); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM policy_versions WHERE policy_arn = $1 AND version <> $2`, p.ARN, v); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO policy_versions (policy_arn, version, document, create_date) VALUES ($1, $2, $3, $4)
			ON CONFLICT (policy_arn, version) DO UPDATE SET document = excluded.document, create_date = excluded.create_date`,
			p.ARN, v, document, updated)
		return err
	})
	if err != nil {
		return fmt.Errorf("put AWS-managed policy %s: %w", p.ARN, err)
	}
	return nil
}
