//go:build unix

package bootstrap

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"
	"time"
)

// lockWait is how long EnsureTLS waits for another process that holds
// DIR/tls/.lock: generating a certificate takes milliseconds, so a longer
// wait means a stuck holder (or a file system that does not answer), and
// a clear error beats hanging a start.
const lockWait = time.Minute

// lockFile takes an exclusive flock(2) on path (created 0600 if missing)
// and returns its release. flock, not fcntl: its lock belongs to the open
// file, so goroutines of one process exclude each other as processes do,
// and Linux's NFS client maps it onto NFS byte-range locks for replicas
// on shared storage.
//
// A DIR/tls this process cannot write to (a read-only mount of files made
// elsewhere, such as a Kubernetes Secret) is still usable, as it was
// before the lock: the lock is taken through a read-only open of the lock
// file (flock needs no write access), and when there is no lock file and
// none can be created, there is no lock to take — this process cannot
// write in the directory either (a renewal fails at its write).
func lockFile(path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if errors.Is(err, fs.ErrPermission) || errors.Is(err, syscall.EROFS) {
		f, err = os.Open(path)
		if errors.Is(err, fs.ErrNotExist) {
			return func() {}, nil
		}
	}
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(lockWait)
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			// Closing the file releases the lock.
			return func() { _ = f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		if time.Now().After(deadline) {
			f.Close()
			return nil, fmt.Errorf("lock %s: another process has held it for over %s", path, lockWait)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// syncRename makes a rename in dir durable: the new name is in the
// directory, which fsync(2) of the file alone does not promise.
func syncRename(dir string) error { return syncDir(dir) }
