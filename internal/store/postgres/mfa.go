package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/kaginashi/kaginashi/internal/store"
)

// MFA devices (migration 0003). Serial numbers are looked up by
// serial_key, the lowered serial, as IAM names are.

const mfaColumns = `d.serial, d.name, d.path, d.seed, COALESCE(u.name, ''), d.enable_date, d.create_date, d.last_step, d.tags`

const mfaFrom = ` FROM mfa_devices d LEFT JOIN users u ON u.id = d.user_id`

// serialKey lowers in Go, not SQL, as nameKey does.
func serialKey(serial string) string { return strings.ToLower(serial) }

func scanMFADevice(r pgx.Row) (store.MFADevice, error) {
	var d store.MFADevice
	var enabled *time.Time
	var tags []byte // the jsonb text
	if err := r.Scan(&d.SerialNumber, &d.Name, &d.Path, &d.SeedCiphertext, &d.UserName, &enabled, &d.CreateDate, &d.LastStep, &tags); err != nil {
		return store.MFADevice{}, err
	}
	if enabled != nil {
		d.EnableDate = utc(*enabled)
	}
	d.CreateDate = utc(d.CreateDate)
	var err error
	if d.Tags, err = unmarshalTags(tags); err != nil {
		return store.MFADevice{}, fmt.Errorf("MFA device %s tags: %w", d.SerialNumber, err)
	}
	return d, nil
}

func scanMFADevices(ctx context.Context, q querier, query string, args ...any) ([]store.MFADevice, error) {
	rows, err := q.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.MFADevice
	for rows.Next() {
		d, err := scanMFADevice(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// CreateMFADevice stores a new, unassigned virtual MFA device.
func (db *DB) CreateMFADevice(ctx context.Context, d store.MFADevice) error {
	tags, err := marshalTags(d.Tags)
	if err != nil {
		return fmt.Errorf("create MFA device %s: %w", d.SerialNumber, err)
	}
	err = db.iamWrite(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO mfa_devices (serial, serial_key, name, path, seed, create_date, last_step, tags)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb)`,
			d.SerialNumber, serialKey(d.SerialNumber), d.Name, pathOr(d.Path), nonNil(d.SeedCiphertext), d.CreateDate, d.LastStep, tags)
		if isUnique(err) {
			return store.ErrExists
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("create MFA device %s: %w", d.SerialNumber, err)
	}
	return nil
}

// GetMFADevice finds a device by serial number in any case.
func (db *DB) GetMFADevice(ctx context.Context, serial string) (store.MFADevice, error) {
	d, err := scanMFADevice(db.pool.QueryRow(ctx, `SELECT `+mfaColumns+mfaFrom+` WHERE d.serial_key = $1`, serialKey(serial)))
	if errors.Is(err, pgx.ErrNoRows) {
		err = store.ErrNotFound
	}
	if err != nil {
		return store.MFADevice{}, fmt.Errorf("get MFA device %s: %w", serial, err)
	}
	return d, nil
}

// ListMFADevices lists the devices enabled for a user.
func (db *DB) ListMFADevices(ctx context.Context, user string) ([]store.MFADevice, error) {
	var out []store.MFADevice
	err := db.readTx(ctx, func(tx pgx.Tx) error {
		uid, err := userID(ctx, tx, user)
		if err != nil {
			return err
		}
		out, err = scanMFADevices(ctx, tx, `SELECT `+mfaColumns+mfaFrom+` WHERE d.user_id = $1 ORDER BY d.enable_date, d.serial_key`, uid)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list MFA devices of user %q: %w", user, err)
	}
	return out, nil
}

// ListVirtualMFADevices lists every device.
func (db *DB) ListVirtualMFADevices(ctx context.Context) ([]store.MFADevice, error) {
	out, err := scanMFADevices(ctx, db.pool, `SELECT `+mfaColumns+mfaFrom+` ORDER BY d.serial_key`)
	if err != nil {
		return nil, fmt.Errorf("list virtual MFA devices: %w", err)
	}
	return out, nil
}

// EnableMFADevice assigns an unassigned device to a user. iamWrite
// serializes IAM writes across replicas, so the count below cannot race.
func (db *DB) EnableMFADevice(ctx context.Context, user, serial string, step int64, at time.Time) error {
	err := db.iamWrite(ctx, func(tx pgx.Tx) error {
		uid, err := userID(ctx, tx, user)
		if err != nil {
			return err
		}
		var owner *string
		err = tx.QueryRow(ctx, `SELECT user_id FROM mfa_devices WHERE serial_key = $1`, serialKey(serial)).Scan(&owner)
		if errors.Is(err, pgx.ErrNoRows) {
			return store.ErrNotFound
		}
		if err != nil {
			return err
		}
		if owner != nil {
			return fmt.Errorf("device is in use: %w", store.ErrExists)
		}
		var n int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM mfa_devices WHERE user_id = $1`, uid).Scan(&n); err != nil {
			return err
		}
		if n >= store.MaxMFADevicesPerUser {
			return fmt.Errorf("user has %d MFA devices: %w", n, store.ErrLimitExceeded)
		}
		return affected(tx.Exec(ctx, `UPDATE mfa_devices SET user_id = $1, enable_date = $2, last_step = GREATEST(last_step, $3)
			WHERE serial_key = $4 AND user_id IS NULL`, uid, at, step, serialKey(serial)))
	})
	if err != nil {
		return fmt.Errorf("enable MFA device %s for user %q: %w", serial, user, err)
	}
	return nil
}

// DeactivateMFADevice unassigns a device from a user.
func (db *DB) DeactivateMFADevice(ctx context.Context, user, serial string) error {
	err := db.iamWrite(ctx, func(tx pgx.Tx) error {
		uid, err := userID(ctx, tx, user)
		if err != nil {
			return err
		}
		return affected(tx.Exec(ctx, `UPDATE mfa_devices SET user_id = NULL, enable_date = NULL
			WHERE serial_key = $1 AND user_id = $2`, serialKey(serial), uid))
	})
	if err != nil {
		return fmt.Errorf("deactivate MFA device %s of user %q: %w", serial, user, err)
	}
	return nil
}

// DeleteMFADevice deletes an unassigned device.
func (db *DB) DeleteMFADevice(ctx context.Context, serial string) error {
	err := db.iamWrite(ctx, func(tx pgx.Tx) error {
		var owner *string
		err := tx.QueryRow(ctx, `SELECT user_id FROM mfa_devices WHERE serial_key = $1`, serialKey(serial)).Scan(&owner)
		if errors.Is(err, pgx.ErrNoRows) {
			return store.ErrNotFound
		}
		if err != nil {
			return err
		}
		if owner != nil {
			return fmt.Errorf("device is enabled for a user: %w", store.ErrConflict)
		}
		_, err = tx.Exec(ctx, `DELETE FROM mfa_devices WHERE serial_key = $1`, serialKey(serial))
		return err
	})
	if err != nil {
		return fmt.Errorf("delete MFA device %s: %w", serial, err)
	}
	return nil
}

// AdvanceMFAStep raises a device's last accepted step. One conditional
// UPDATE: a replica racing with the same code waits for the row lock,
// re-reads last_step (READ COMMITTED) and updates nothing. It is not an
// IAM write, so it leaves every replica's policy cache alone.
func (db *DB) AdvanceMFAStep(ctx context.Context, serial string, step int64) (bool, error) {
	tag, err := db.pool.Exec(ctx, `UPDATE mfa_devices SET last_step = $1 WHERE serial_key = $2 AND last_step < $1`, step, serialKey(serial))
	if err != nil {
		return false, fmt.Errorf("advance MFA device %s: %w", serial, err)
	}
	if tag.RowsAffected() == 1 {
		return true, nil
	}
	found, err := exists(ctx, db.pool, `SELECT EXISTS (SELECT 1 FROM mfa_devices WHERE serial_key = $1)`, serialKey(serial))
	if err == nil && !found {
		err = store.ErrNotFound
	}
	if err != nil {
		return false, fmt.Errorf("advance MFA device %s: %w", serial, err)
	}
	return false, nil
}
