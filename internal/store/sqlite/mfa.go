package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/kaginashi/kaginashi/internal/store"
)

// MFA devices (migration 0003). Serial numbers are looked up by
// serial_key, the lowered serial, as IAM names are.

const mfaColumns = `d.serial, d.name, d.path, d.seed, COALESCE(u.name, ''), d.enable_date, d.create_date, d.last_step, d.tags`

const mfaFrom = ` FROM mfa_devices d LEFT JOIN users u ON u.id = d.user_id`

func serialKey(serial string) string { return strings.ToLower(serial) }

func scanMFADevice(r rowScanner) (store.MFADevice, error) {
	var d store.MFADevice
	var enabled sql.NullInt64
	var created int64
	var tags string
	if err := r.Scan(&d.SerialNumber, &d.Name, &d.Path, &d.SeedCiphertext, &d.UserName, &enabled, &created, &d.LastStep, &tags); err != nil {
		return store.MFADevice{}, err
	}
	if enabled.Valid {
		d.EnableDate = fromMicros(enabled.Int64)
	}
	d.CreateDate = fromMicros(created)
	var err error
	if d.Tags, err = unmarshalTags(tags); err != nil {
		return store.MFADevice{}, fmt.Errorf("MFA device %s tags: %w", d.SerialNumber, err)
	}
	return d, nil
}

func scanMFADevices(ctx context.Context, q querier, query string, args ...any) ([]store.MFADevice, error) {
	rows, err := q.QueryContext(ctx, query, args...)
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
	err = db.iamWrite(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO mfa_devices (serial, serial_key, name, path, seed, create_date, last_step, tags)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			d.SerialNumber, serialKey(d.SerialNumber), d.Name, pathOr(d.Path), nonNil(d.SeedCiphertext), micros(d.CreateDate), d.LastStep, tags)
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
	d, err := scanMFADevice(db.read.QueryRowContext(ctx, `SELECT `+mfaColumns+mfaFrom+` WHERE d.serial_key = ?`, serialKey(serial)))
	if errors.Is(err, sql.ErrNoRows) {
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
	err := db.readTx(ctx, func(tx *sql.Tx) error {
		uid, err := userID(ctx, tx, user)
		if err != nil {
			return err
		}
		out, err = scanMFADevices(ctx, tx, `SELECT `+mfaColumns+mfaFrom+` WHERE d.user_id = ? ORDER BY d.enable_date, d.serial_key`, uid)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list MFA devices of user %q: %w", user, err)
	}
	return out, nil
}

// ListVirtualMFADevices lists every device.
func (db *DB) ListVirtualMFADevices(ctx context.Context) ([]store.MFADevice, error) {
	out, err := scanMFADevices(ctx, db.read, `SELECT `+mfaColumns+mfaFrom+` ORDER BY d.serial_key`)
	if err != nil {
		return nil, fmt.Errorf("list virtual MFA devices: %w", err)
	}
	return out, nil
}

// EnableMFADevice assigns an unassigned device to a user.
func (db *DB) EnableMFADevice(ctx context.Context, user, serial string, step int64, at time.Time) error {
	err := db.iamWrite(ctx, func(tx *sql.Tx) error {
		uid, err := userID(ctx, tx, user)
		if err != nil {
			return err
		}
		var owner sql.NullString
		err = tx.QueryRowContext(ctx, `SELECT user_id FROM mfa_devices WHERE serial_key = ?`, serialKey(serial)).Scan(&owner)
		if errors.Is(err, sql.ErrNoRows) {
			return store.ErrNotFound
		}
		if err != nil {
			return err
		}
		if owner.Valid {
			return fmt.Errorf("device is in use: %w", store.ErrExists)
		}
		// The single writer connection makes this count and the update
		// below atomic with respect to every other write.
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM mfa_devices WHERE user_id = ?`, uid).Scan(&n); err != nil {
			return err
		}
		if n >= store.MaxMFADevicesPerUser {
			return fmt.Errorf("user has %d MFA devices: %w", n, store.ErrLimitExceeded)
		}
		res, err := tx.ExecContext(ctx, `UPDATE mfa_devices SET user_id = ?, enable_date = ?, last_step = max(last_step, ?)
			WHERE serial_key = ? AND user_id IS NULL`, uid, micros(at), step, serialKey(serial))
		return affected(res, err)
	})
	if err != nil {
		return fmt.Errorf("enable MFA device %s for user %q: %w", serial, user, err)
	}
	return nil
}

// DeactivateMFADevice unassigns a device from a user.
func (db *DB) DeactivateMFADevice(ctx context.Context, user, serial string) error {
	err := db.iamWrite(ctx, func(tx *sql.Tx) error {
		uid, err := userID(ctx, tx, user)
		if err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `UPDATE mfa_devices SET user_id = NULL, enable_date = NULL
			WHERE serial_key = ? AND user_id = ?`, serialKey(serial), uid)
		return affected(res, err)
	})
	if err != nil {
		return fmt.Errorf("deactivate MFA device %s of user %q: %w", serial, user, err)
	}
	return nil
}

// DeleteMFADevice deletes an unassigned device.
func (db *DB) DeleteMFADevice(ctx context.Context, serial string) error {
	err := db.iamWrite(ctx, func(tx *sql.Tx) error {
		var owner sql.NullString
		err := tx.QueryRowContext(ctx, `SELECT user_id FROM mfa_devices WHERE serial_key = ?`, serialKey(serial)).Scan(&owner)
		if errors.Is(err, sql.ErrNoRows) {
			return store.ErrNotFound
		}
		if err != nil {
			return err
		}
		if owner.Valid {
			return fmt.Errorf("device is enabled for a user: %w", store.ErrConflict)
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM mfa_devices WHERE serial_key = ?`, serialKey(serial))
		return err
	})
	if err != nil {
		return fmt.Errorf("delete MFA device %s: %w", serial, err)
	}
	return nil
}

// AdvanceMFAStep raises a device's last accepted step. It is not an IAM
// write: a sign-in changes no authorization decision, so it leaves the
// IAM generation (and every replica's policy cache) alone.
func (db *DB) AdvanceMFAStep(ctx context.Context, serial string, step int64) (bool, error) {
	var advanced bool
	err := db.writeTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE mfa_devices SET last_step = ? WHERE serial_key = ? AND last_step < ?`, step, serialKey(serial), step)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if n == 1 {
			advanced = true
			return nil
		}
		found, err := exists(ctx, tx, `SELECT EXISTS (SELECT 1 FROM mfa_devices WHERE serial_key = ?)`, serialKey(serial))
		if err == nil && !found {
			err = store.ErrNotFound
		}
		return err
	})
	if err != nil {
		return false, fmt.Errorf("advance MFA device %s: %w", serial, err)
	}
	return advanced, nil
}
