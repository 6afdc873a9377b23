//go:build unix

package sqlite

import (
	"errors"
	"fmt"
	"os"
	"syscall"

	"github.com/kaginashi/kaginashi/internal/store"
)

// flockFile takes a flock(2) on path without waiting. The lock belongs to
// its own open file description, so two handles in one process exclude
// each other as two processes do.
func flockFile(path string, exclusive bool) (func() error, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("server lock: %w", err)
	}
	how := syscall.LOCK_SH
	if exclusive {
		how = syscall.LOCK_EX
	}
	for {
		err = syscall.Flock(int(f.Fd()), how|syscall.LOCK_NB)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("server lock on %s: %w", path, store.ErrLocked)
		}
		return nil, fmt.Errorf("server lock on %s: %w", path, err)
	}
	// Closing the file drops the lock.
	return f.Close, nil
}
