package bootstrap

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/kaginashi/kaginashi/internal/gateway"
	"github.com/kaginashi/kaginashi/internal/seal"
	"github.com/kaginashi/kaginashi/internal/store"
)

// sealedMeta lists every meta value sealed with the master key: the
// canary and the gateway's own.
var sealedMeta = append([]string{MetaMasterKeyCheck}, gateway.SealedMeta...)

// Key file names in the data directory. master.key.new holds a key the
// database may already be sealed with, between the re-seal's commit and
// the rename that makes it master.key.
const (
	MasterKeyFile    = "master.key"
	newKeySuffix     = ".new"
	oldKeyInfix      = ".old-"
	oldKeyTimeLayout = "20060102T150405Z"
)

// RotateOptions are the master-key rotation's inputs.
type RotateOptions struct {
	// DataDir holds master.key (unless the key comes from seal.EnvKey).
	DataDir string
	// NewKey is the key to rotate to; nil makes a random one.
	NewKey []byte
	// Now stamps the old key's file name (default time.Now).
	Now func() time.Time
	// Getenv reads seal.EnvKey (default os.Getenv).
	Getenv func(string) string

	// failAfter, in tests, fails the rotation at a named step, or inside
	// the re-seal after that many values ("reseal:N").
	failAfter func(step string) error
}

// RotateResult says what the rotation did, for the admin.
type RotateResult struct {
	// Resealed counts the values re-sealed (the canary included).
	Resealed int
	// KeyFile is where the new key now is: DIR/master.key, or with the
	// key in the environment DIR/master.key.new, for the admin to move
	// into KAGINASHI_MASTER_KEY.
	KeyFile string
	// OldKeyFile keeps the old key (file mode only): the admin deletes it
	// once every replica runs with the new key.
	OldKeyFile string
	// FromEnv: the old key came from seal.EnvKey.
	FromEnv bool
	// Completed: an earlier, interrupted rotation had committed; this run
	// only finished its rename.
	Completed bool
}

// ErrServerRunning: a server holds the store's server lock.
var ErrServerRunning = errors.New("a kaginashi server is running on this store")

// RotateMasterKey re-seals every secret in st under a new master key and
// replaces the key file, in an order that loses nothing whenever it stops:
//
//  1. take the store's maintenance lock (refused while any server runs);
//  2. check that the current key opens the canary — a wrong key stops
//     here, before anything is written;
//  3. write the new key to DIR/master.key.new (fsynced, with the
//     directory): from here on the new key is on disk;
//  4. in ONE transaction, open every sealed value with the old key and
//     seal it with the new one, canary included — all or nothing, so an
//     interruption leaves the database sealed with the old key;
//  5. hard-link master.key to master.key.old-TIME, then rename
//     master.key.new over master.key (atomic), and fsync the directory.
//
// Stopped between 4 and 5, the database opens with master.key.new only:
// the server's start (OpenSealer) finishes step 5, as does a rerun of
// this command. With the key in the environment there is no file to
// replace: the new key stays in master.key.new for the admin to install.
func RotateMasterKey(ctx context.Context, st store.Store, o RotateOptions) (RotateResult, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Getenv == nil {
		o.Getenv = os.Getenv
	}
	fail := o.failAfter
	if fail == nil {
		fail = func(string) error { return nil }
	}
	m, ok := st.(store.Maintenance)
	if !ok {
		return RotateResult{}, fmt.Errorf("the %T store cannot be re-sealed", st)
	}
	release, err := m.LockMaintenance(ctx)
	if errors.Is(err, store.ErrLocked) {
		return RotateResult{}, fmt.Errorf("%w (or another maintenance command is): stop every server on this store (all replicas), then run this again", ErrServerRunning)
	}
	if err != nil {
		return RotateResult{}, err
	}
	defer release()

	keyPath := filepath.Join(o.DataDir, MasterKeyFile)
	newPath := keyPath + newKeySuffix
	res := RotateResult{FromEnv: o.Getenv(seal.EnvKey) != ""}

	if _, ok, err := st.GetMeta(ctx, MetaMasterKeyCheck); err != nil {
		return res, fmt.Errorf("store: %w", err)
	} else if !ok {
		return res, errors.New("this store holds no sealed secrets yet (no master key check): nothing to rotate; start the server once first")
	}
	oldKey, err := loadCurrentKey(o.Getenv, keyPath)
	if err != nil {
		return res, err
	}
	oldSealer, err := seal.New(oldKey)
	if err != nil {
		return res, err
	}
	if err := openCanary(ctx, st, oldSealer); err != nil {
		// Perhaps an earlier run committed and stopped before its rename.
		if res.FromEnv {
			return res, envMismatch(ctx, st, newPath)
		}
		done, ferr := finishRotation(ctx, st, keyPath, o.Now())
		if ferr != nil {
			return res, ferr
		}
		if done != "" {
			res.Completed, res.KeyFile, res.OldKeyFile = true, keyPath, done
			return res, nil
		}
		return res, fmt.Errorf("the current master key (%s) does not open this database's secrets: nothing was changed; restore the master.key backed up with this database", keySource(res.FromEnv, keyPath))
	}

	newKey := o.NewKey
	if newKey == nil {
		newKey = make([]byte, seal.KeySize)
		if _, err := rand.Read(newKey); err != nil {
			return res, fmt.Errorf("new master key: %w", err)
		}
	}
	if subtle.ConstantTimeCompare(newKey, oldKey) == 1 {
		return res, errors.New("the new master key is the current one: nothing to rotate")
	}
	newSealer, err := seal.New(newKey)
	if err != nil {
		return res, fmt.Errorf("new master key: %w", err)
	}

	// A master.key.new left by an earlier run that did not commit (the
	// canary opened with the current key, so it did not) is stale.
	if err := os.Remove(newPath); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return res, fmt.Errorf("remove the stale %s: %w", newPath, err)
	}
	if err := writeKeyFile(newPath, newKey); err != nil {
		return res, err
	}
	if err := fail("new-key-written"); err != nil {
		return res, err
	}

	n := 0
	resealed, err := m.ResealSecrets(ctx, sealedMeta, func(v store.SealedValue) ([]byte, error) {
		out, err := resealValue(oldSealer, newSealer, v)
		if err != nil {
			return nil, err
		}
		n++
		if err := fail(fmt.Sprintf("reseal:%d", n)); err != nil {
			return nil, err
		}
		return out, nil
	})
	if err != nil {
		// Rolled back: the old key still opens everything, and the new
		// key file is of no use.
		os.Remove(newPath)
		return res, fmt.Errorf("nothing was changed: %w", err)
	}
	res.Resealed = resealed
	if err := fail("committed"); err != nil {
		return res, err
	}
	if res.FromEnv {
		res.KeyFile = newPath
		return res, nil
	}
	old, err := installNewKey(keyPath, o.Now())
	if err != nil {
		return res, fmt.Errorf("the database is re-sealed with the key in %s, but %w; the server's next start finishes this", newPath, err)
	}
	res.KeyFile, res.OldKeyFile = keyPath, old
	return res, nil
}

// resealValue opens v with the old key and seals it with the new one, for
// the owner it is bound to.
func resealValue(oldS, newS *seal.Sealer, v store.SealedValue) ([]byte, error) {
	reseal := func(ct []byte, owner string) ([]byte, error) {
		pt, err := oldS.Open(ct, owner)
		if err != nil {
			return nil, err
		}
		return newS.Seal(pt, owner)
	}
	switch v.Kind {
	case store.SealedAccessKeySecret, store.SealedMFASeed:
		return reseal(v.Value, v.Owner)
	case store.SealedMeta:
		if v.Owner != MetaMasterKeyCheck {
			return gateway.ResealMeta(v.Owner, v.Value, reseal)
		}
		ct, err := base64.StdEncoding.DecodeString(string(v.Value))
		if err != nil {
			return nil, fmt.Errorf("not base64: %w", err)
		}
		out, err := reseal(ct, v.Owner)
		if err != nil {
			return nil, err
		}
		return []byte(base64.StdEncoding.EncodeToString(out)), nil
	}
	return nil, fmt.Errorf("no way to re-seal %s %s", v.Kind, v.Owner)
}

// openCanary checks that sealer opens the database's master key check.
func openCanary(ctx context.Context, st store.Store, sealer *seal.Sealer) error {
	v, ok, err := st.GetMeta(ctx, MetaMasterKeyCheck)
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	if !ok {
		return seal.ErrOpen
	}
	ct, err := base64.StdEncoding.DecodeString(v)
	if err != nil {
		return seal.ErrOpen
	}
	pt, err := sealer.Open(ct, MetaMasterKeyCheck)
	if err != nil || subtle.ConstantTimeCompare(pt, []byte(masterKeyCheckPlain)) != 1 {
		return seal.ErrOpen
	}
	return nil
}

// finishRotation completes an interrupted rotation: when master.key.new
// opens the database (its re-seal committed), it becomes master.key, the
// old key kept aside. It returns the old key's new name, or "" when there
// was nothing to finish.
func finishRotation(ctx context.Context, st store.Store, keyPath string, now time.Time) (string, error) {
	newPath := keyPath + newKeySuffix
	key, err := readKeyFile(newPath)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	s, err := seal.New(key)
	if err != nil {
		return "", err
	}
	if openCanary(ctx, st, s) != nil {
		return "", nil
	}
	return installNewKey(keyPath, now)
}

// installNewKey makes master.key.new the master key: master.key is
// hard-linked to master.key.old-TIME first, so that it exists under one
// name or the other at every instant, then master.key.new is renamed over
// it, and the directory fsynced so that both survive a power loss.
func installNewKey(keyPath string, now time.Time) (string, error) {
	dir := filepath.Dir(keyPath)
	old := keyPath + oldKeyInfix + now.UTC().Format(oldKeyTimeLayout)
	for i := 1; ; i++ {
		err := os.Link(keyPath, old)
		if err == nil || errors.Is(err, fs.ErrNotExist) {
			// No master.key at all (a restored data directory): nothing
			// to keep.
			if err != nil {
				old = ""
			}
			break
		}
		if !errors.Is(err, fs.ErrExist) || i > 100 {
			return "", fmt.Errorf("keep the old master key as %s: %w", old, err)
		}
		old = fmt.Sprintf("%s%s%s-%d", keyPath, oldKeyInfix, now.UTC().Format(oldKeyTimeLayout), i)
	}
	if old != "" {
		if err := os.Chmod(old, 0o600); err != nil {
			return "", fmt.Errorf("restrict %s: %w", old, err)
		}
	}
	if err := os.Rename(keyPath+newKeySuffix, keyPath); err != nil {
		return "", fmt.Errorf("install the new master key: %w", err)
	}
	if err := syncDir(dir); err != nil {
		return "", err
	}
	return old, nil
}

// loadCurrentKey reads the key the database is sealed with now: the
// environment's, or master.key's.
func loadCurrentKey(getenv func(string) string, keyPath string) ([]byte, error) {
	if v := getenv(seal.EnvKey); v != "" {
		k, err := decodeKey(v)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", seal.EnvKey, err)
		}
		return k, nil
	}
	k, err := readKeyFile(keyPath)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("the master key %s is missing (and %s is not set): nothing was changed", keyPath, seal.EnvKey)
	}
	return k, err
}

// ReadKeyFile reads a master key file (base64 of 32 bytes), refusing one
// that others may read.
func ReadKeyFile(path string) ([]byte, error) { return readKeyFile(path) }

func readKeyFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("master key: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("master key: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("master key %s is readable by others (mode %v); chmod 600 it", path, fi.Mode().Perm())
	}
	if !fi.Mode().IsRegular() || fi.Size() > 1024 {
		return nil, fmt.Errorf("master key %s: not a key file (want base64 of %d bytes)", path, seal.KeySize)
	}
	data := make([]byte, fi.Size())
	if _, err := f.ReadAt(data, 0); err != nil && fi.Size() > 0 {
		return nil, fmt.Errorf("master key %s: %w", path, err)
	}
	k, err := decodeKey(string(data))
	if err != nil {
		return nil, fmt.Errorf("master key %s: %w", path, err)
	}
	return k, nil
}

func decodeKey(s string) ([]byte, error) {
	k, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil {
		return nil, errors.New("not base64")
	}
	if len(k) != seal.KeySize {
		return nil, fmt.Errorf("want %d bytes, got %d", seal.KeySize, len(k))
	}
	return k, nil
}

// writeKeyFile creates path (0600, not there before) holding key, and
// makes the file and its directory entry durable.
func writeKeyFile(path string, key []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("write the new master key: %w", err)
	}
	_, err = f.WriteString(base64.StdEncoding.EncodeToString(key) + "\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("write the new master key %s: %w", path, err)
	}
	return syncDir(filepath.Dir(path))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

func keySource(fromEnv bool, keyPath string) string {
	if fromEnv {
		return seal.EnvKey
	}
	return keyPath
}

// envMismatch explains a key from the environment that does not open the
// database: perhaps the database was re-sealed and the environment not
// updated.
func envMismatch(ctx context.Context, st store.Store, newPath string) error {
	if opensWithNewKey(ctx, st, newPath) {
		return envNotUpdated(newPath)
	}
	return fmt.Errorf("%s does not open this database's secrets: nothing was changed; set it to the key this database was sealed with", seal.EnvKey)
}

// opensWithNewKey reports whether the key in newPath (master.key.new)
// opens the database: a rotation committed with it.
func opensWithNewKey(ctx context.Context, st store.Store, newPath string) bool {
	key, err := readKeyFile(newPath)
	if err != nil {
		return false
	}
	s, err := seal.New(key)
	return err == nil && openCanary(ctx, st, s) == nil
}

func envNotUpdated(newPath string) error {
	return fmt.Errorf("the database was re-sealed with the new master key in %s (by rotate-master-key), but %s holds another: set %s to the contents of %s in the environment of every replica, then delete that file", newPath, seal.EnvKey, seal.EnvKey, newPath)
}
