package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/kaginashi/kaginashi/internal/gateway"
	"github.com/kaginashi/kaginashi/internal/seal"
	"github.com/kaginashi/kaginashi/internal/store"
)

// KeyRotationOptions are the inputs of the gateway key rotations
// (rotate-signing-key, rotate-agent-ca).
type KeyRotationOptions struct {
	// DataDir holds master.key (unless the key comes from seal.EnvKey).
	DataDir string
	// Now stamps the rotation (default time.Now).
	Now func() time.Time
	// Getenv reads seal.EnvKey (default os.Getenv).
	Getenv func(string) string
}

// maintain takes the store's maintenance lock (refused while any server
// runs on the store) and opens the master key, checked against the
// database before anything is written. release gives the lock back.
func maintain(ctx context.Context, st store.Store, o *KeyRotationOptions) (store.Maintenance, *seal.Sealer, func() error, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Getenv == nil {
		o.Getenv = os.Getenv
	}
	m, ok := st.(store.Maintenance)
	if !ok {
		return nil, nil, nil, fmt.Errorf("the %T store does not support offline maintenance", st)
	}
	release, err := m.LockMaintenance(ctx)
	if errors.Is(err, store.ErrLocked) {
		return nil, nil, nil, fmt.Errorf("%w (or another maintenance command is): stop every server on this store (all replicas), then run this again", ErrServerRunning)
	}
	if err != nil {
		return nil, nil, nil, err
	}
	fail := func(err error) (store.Maintenance, *seal.Sealer, func() error, error) {
		release()
		return nil, nil, nil, err
	}
	if _, ok, err := st.GetMeta(ctx, MetaMasterKeyCheck); err != nil {
		return fail(fmt.Errorf("store: %w", err))
	} else if !ok {
		return fail(errors.New("this store holds no keys yet: start the server once first"))
	}
	keyPath := filepath.Join(o.DataDir, MasterKeyFile)
	key, err := loadCurrentKey(o.Getenv, keyPath)
	if err != nil {
		return fail(err)
	}
	sealer, err := seal.New(key)
	if err != nil {
		return fail(err)
	}
	if err := openCanary(ctx, st, sealer); err != nil {
		return fail(fmt.Errorf("the master key (%s) does not open this database's secrets: nothing was changed (an interrupted rotate-master-key? start the server once to finish it)", keySource(o.Getenv(seal.EnvKey) != "", keyPath)))
	}
	return m, sealer, release, nil
}

// RotateSigningKey replaces the key-record signing key (see
// gateway.RotateSigningKey), offline: every server on the store stopped.
// Agents adopt the new key, endorsed by the old, at their next connection.
func RotateSigningKey(ctx context.Context, st store.Store, o KeyRotationOptions) (gateway.SigningRotation, error) {
	m, sealer, release, err := maintain(ctx, st, &o)
	if err != nil {
		return gateway.SigningRotation{}, err
	}
	defer release()
	res, err := gateway.RotateSigningKey(ctx, m, sealer, o.Now())
	if err != nil {
		return res, fmt.Errorf("nothing was changed: %w", err)
	}
	return res, nil
}

// RotateAgentCA starts an agent CA rotation (see gateway.RotateAgentCA),
// offline: every server on the store stopped. Agents presenting a
// certificate of the old CA get one from the new CA at their next
// connection; FinishAgentCA then stops trusting the old one.
func RotateAgentCA(ctx context.Context, st store.Store, o KeyRotationOptions) (gateway.CARotation, error) {
	m, sealer, release, err := maintain(ctx, st, &o)
	if err != nil {
		return gateway.CARotation{}, err
	}
	defer release()
	res, err := gateway.RotateAgentCA(ctx, m, sealer, o.Now())
	if err != nil {
		return res, fmt.Errorf("nothing was changed: %w", err)
	}
	return res, nil
}

// FinishAgentCA ends an agent CA rotation (see gateway.FinishAgentCA),
// offline. Without force it refuses while enrolled instances have not
// connected since the rotation; res.Pending names them either way.
func FinishAgentCA(ctx context.Context, st store.Store, o KeyRotationOptions, force bool) (gateway.CARotation, error) {
	m, _, release, err := maintain(ctx, st, &o)
	if err != nil {
		return gateway.CARotation{}, err
	}
	defer release()
	return gateway.FinishAgentCA(ctx, st, m, force)
}
