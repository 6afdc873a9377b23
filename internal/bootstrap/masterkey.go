package bootstrap

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"time"

	"github.com/kaginashi/kaginashi/internal/seal"
	"github.com/kaginashi/kaginashi/internal/store"
)

// MetaMasterKeyCheck holds a value sealed with the master key at first
// start, so that a later start with another key fails at once, with the
// fix, instead of deep inside whatever secret it opens first.
const MetaMasterKeyCheck = "master_key_check"

const masterKeyCheckPlain = "kaginashi master key check v1"

// OpenSealer finds the master key for st's secrets: from the environment
// (seal.EnvKey) or path. A new deployment (no account ID yet) gets a new
// key file; an existing one must find the key its secrets were sealed
// with — writing a fresh key next to a restored database would only hide
// the mistake. The key is then checked against the database.
func OpenSealer(ctx context.Context, st store.Store, path string, log *slog.Logger) (*seal.Sealer, error) {
	_, initialized, err := st.GetMeta(ctx, MetaAccountID)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	var key []byte
	if initialized {
		key, err = seal.Load(path)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("the master key %s is missing, but the database already holds secrets sealed with it: restore master.key from the backup made with the database (or set %s); a new key cannot open them", path, seal.EnvKey)
		}
	} else {
		var created bool
		key, created, err = seal.LoadOrCreate(path)
		if created && log != nil {
			log.Info("created the master key for secrets at rest; back it up with the database, but not in the same place", "path", path)
		}
	}
	if err != nil {
		return nil, err
	}
	sealer, err := seal.New(key)
	if err != nil {
		return nil, err
	}
	if err := checkMasterKey(ctx, st, sealer, path); err != nil {
		// A rotation (rotate-master-key) that committed its re-seal but
		// stopped before renaming master.key.new: finish it.
		if os.Getenv(seal.EnvKey) != "" {
			if opensWithNewKey(ctx, st, path+newKeySuffix) {
				return nil, envNotUpdated(path + newKeySuffix)
			}
			return nil, err
		}
		old, ferr := finishRotation(ctx, st, path, time.Now())
		if ferr != nil {
			return nil, fmt.Errorf("%w (and finishing an interrupted master key rotation failed: %v)", err, ferr)
		}
		if old == "" {
			return nil, err
		}
		if log != nil {
			log.Warn("finished an interrupted master key rotation: the database was re-sealed with master.key.new, which is now master.key; delete the old key once every replica runs with the new one",
				"path", path, "old_key", old)
		}
		return OpenSealer(ctx, st, path, log)
	}
	return sealer, nil
}

// HoldServerLock takes the store's server lock (store.Maintenance) shared,
// for as long as the server runs: replicas share it, while offline
// maintenance such as rotate-master-key needs it alone and so refuses to
// run beside a server — and a server refuses to start while maintenance
// runs. release gives it back at the server's stop.
func HoldServerLock(ctx context.Context, st store.Store) (release func() error, err error) {
	m, ok := st.(store.Maintenance)
	if !ok {
		return func() error { return nil }, nil
	}
	release, err = m.LockServer(ctx)
	if errors.Is(err, store.ErrLocked) {
		return nil, errors.New(store.LockedMessage(st))
	}
	if err != nil {
		return nil, err
	}
	return release, nil
}

func checkMasterKey(ctx context.Context, st store.Store, sealer *seal.Sealer, path string) error {
	sealed, err := sealer.Seal([]byte(masterKeyCheckPlain), MetaMasterKeyCheck)
	if err != nil {
		return err
	}
	got, err := st.InitMeta(ctx, MetaMasterKeyCheck, base64.StdEncoding.EncodeToString(sealed))
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	ct, err := base64.StdEncoding.DecodeString(got)
	if err == nil {
		var pt []byte
		pt, err = sealer.Open(ct, MetaMasterKeyCheck)
		if err == nil && string(pt) != masterKeyCheckPlain {
			err = seal.ErrOpen
		}
	}
	if err != nil {
		return fmt.Errorf("the master key (%s or %s) is not the one this database's secrets were sealed with: restore the master.key backed up with this database", path, seal.EnvKey)
	}
	return nil
}
