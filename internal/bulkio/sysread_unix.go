//go:build unix

package bulkio

import "syscall"

func sysRead(fd uintptr, b []byte) (int, error) { return syscall.Read(int(fd), b) }

const haveRawRead = true
