package server

import (
	"context"
	"errors"
	"log/slog"

	"github.com/kaginashi/kaginashi/internal/bootstrap"
	"github.com/kaginashi/kaginashi/internal/store"
)

// holdServerLock takes the store's server lock for as long as the server
// runs (see bootstrap.HoldServerLock). With an engine that can lose it
// while running — PostgreSQL's lives on a connection, which a database
// restart ends — it keeps it: taken again after the connection drops,
// WARN logged while it is not held. held says whether it is held now (the
// kaginashi_server_lock_held gauge); /healthz stays 200 either way, since
// a load balancer must not take a serving replica out for it.
func holdServerLock(ctx context.Context, st store.Store, log *slog.Logger) (release func() error, held func() bool, err error) {
	k, ok := st.(store.ServerLockKeeper)
	if !ok {
		release, err = bootstrap.HoldServerLock(ctx, st)
		return release, func() bool { return true }, err
	}
	release, held, err = k.KeepServerLock(ctx, log)
	if errors.Is(err, store.ErrLocked) {
		return nil, nil, errors.New(store.LockedMessage(st))
	}
	return release, held, err
}
