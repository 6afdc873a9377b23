package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
)

// ErrLocked: the lock is held elsewhere — a server is running on this
// store while offline maintenance wants it, or maintenance is running
// while a server starts.
var ErrLocked = errors.New("locked by another process")

// SingleServer is implemented by engines on which only one server may run
// at a time (SQLite: a second process would hold no agent connections of
// the first, so pushes to its hosts would fail): their LockServer is
// exclusive, and answers ErrLocked while another server or maintenance
// holds it.
type SingleServer interface {
	SingleServer() bool
}

// LockedMessage explains ErrLocked from LockServer to an operator.
func LockedMessage(st any) string {
	if s, ok := st.(SingleServer); ok && s.SingleServer() {
		return "another kaginashi server, or a maintenance command (kaginashi server rotate-*), is using this SQLite database: " +
			"SQLite serves one server at a time (use PostgreSQL, --store postgres://..., for replicas); start this one once the other has stopped"
	}
	return "a maintenance command (kaginashi server rotate-*) is running on this store: start the server once it has finished"
}

// SealedKind says where a sealed value lives, and so which owner it was
// sealed for.
type SealedKind int

// Kinds of sealed values.
const (
	// SealedAccessKeySecret: an access key's SecretCiphertext; Owner is the
	// access key ID.
	SealedAccessKeySecret SealedKind = iota + 1
	// SealedMFASeed: an MFA device's SeedCiphertext; Owner is its serial
	// number.
	SealedMFASeed
	// SealedMeta: a meta value holding sealed data in a format its writer
	// knows (base64, JSON...); Owner is the meta key and Value the
	// value's bytes as stored.
	SealedMeta
)

func (k SealedKind) String() string {
	switch k {
	case SealedAccessKeySecret:
		return "access key secret"
	case SealedMFASeed:
		return "MFA seed"
	case SealedMeta:
		return "meta value"
	}
	return "unknown"
}

// SealedValue is one value sealed with the master key.
type SealedValue struct {
	Kind  SealedKind
	Owner string
	Value []byte
}

// Maintenance is what offline maintenance (the master-key rotation) needs
// from an engine; the SQLite and PostgreSQL engines both implement it. A
// separate interface, as AgentSessions is, because only the server's
// start and the maintenance commands use it.
//
// The server lock keeps maintenance away from running servers: every
// server holds it shared for as long as it runs (all replicas at once;
// on a SingleServer engine, exclusively), maintenance takes it
// exclusively. SQLite: flock(2) on the database file; PostgreSQL: a session-level advisory lock on a connection of its
// own. The operating system or PostgreSQL drops it when the process dies.
type Maintenance interface {
	// LockServer takes the server lock shared, without waiting: ErrLocked
	// while maintenance holds it. release gives it back.
	LockServer(ctx context.Context) (release func() error, err error)
	// LockMaintenance takes the server lock exclusively, without waiting:
	// ErrLocked while a server (or other maintenance) holds it.
	LockMaintenance(ctx context.Context) (release func() error, err error)
	// ResealSecrets rewrites every sealed value in one transaction: each
	// access key's secret, each MFA device's seed, and the meta values
	// named in metaKeys (those not set are skipped), each replaced by what
	// reseal returns for it. An error from reseal (or the store) rolls
	// everything back. It returns how many values it rewrote.
	ResealSecrets(ctx context.Context, metaKeys []string, reseal func(SealedValue) ([]byte, error)) (int, error)
	// UpdateMeta rewrites meta values in one transaction: it reads keys
	// (those not set are absent from cur), calls update, and writes what
	// it returns — set creates or replaces, del deletes. update may only
	// name keys among keys. An error from update (or the store) rolls
	// everything back. For offline key rotations (the record-signing key
	// and its endorsement chain, the agent CA), which must change several
	// values together or not at all.
	UpdateMeta(ctx context.Context, keys []string, update func(cur map[string]string) (set map[string]string, del []string, err error)) error
}

// CheckMetaUpdate checks that an UpdateMeta callback named only the keys
// it was given (for the engines).
func CheckMetaUpdate(keys []string, set map[string]string, del []string) error {
	allowed := make(map[string]bool, len(keys))
	for _, k := range keys {
		allowed[k] = true
	}
	for k := range set {
		if !allowed[k] {
			return fmt.Errorf("update meta: %q was not read", k)
		}
	}
	for _, k := range del {
		if !allowed[k] {
			return fmt.Errorf("update meta: %q was not read", k)
		}
	}
	return nil
}

// ServerLockKeeper is implemented by engines whose server lock can be lost
// while the server runs: PostgreSQL's lives on a connection, which a
// database restart, a failover or a network failure ends — and with it
// the lock, so that maintenance could then run beside a live server.
type ServerLockKeeper interface {
	// KeepServerLock takes the server lock shared, as LockServer, and
	// keeps it: when its connection drops it takes it again, retrying
	// with backoff and logging at WARN while it is not held. held reports
	// whether it is held now; release stops keeping it and gives it back.
	KeepServerLock(ctx context.Context, log *slog.Logger) (release func() error, held func() bool, err error)
}
