package devenv

import "syscall"

// childAttr: SIGTERM to the child if this process dies first (Linux's
// parent-death signal), so a crash leaves no agent or sshd behind.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
