//go:build unix

package server

import "syscall"

// canCreateIn asks access(2) whether a file can be created in dir,
// creating none. (A process with CAP_DAC_OVERRIDE passes except on a
// read-only file system.)
func canCreateIn(dir string) error {
	const wOK, xOK = 2, 1 // access(2)'s W_OK and X_OK (syscall names none)
	return syscall.Access(dir, wOK|xOK)
}

// canWrite asks access(2) whether path can be opened for writing,
// opening nothing (see checkAppendable).
func canWrite(path string) error {
	const wOK = 2 // access(2)'s W_OK
	return syscall.Access(path, wOK)
}
