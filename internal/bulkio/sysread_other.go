//go:build !unix

package bulkio

import "syscall"

// Elsewhere (Windows: the client CLI only) reads pass straight through.
func sysRead(uintptr, []byte) (int, error) { return 0, syscall.EINVAL }

const haveRawRead = false
