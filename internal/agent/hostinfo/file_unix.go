//go:build unix

package hostinfo

import (
	"errors"
	"os"
	"syscall"
)

// openRegular opens p for reading without blocking on FIFOs or devices and
// returns it only when it is a regular file.
func openRegular(p string) (*os.File, error) {
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, &os.PathError{Op: "open", Path: p, Err: errNotRegular}
	}
	return f, nil
}

func isNotDir(err error) bool { return errors.Is(err, syscall.ENOTDIR) }
