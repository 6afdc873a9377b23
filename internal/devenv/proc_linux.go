package devenv

import "syscall"

// childAttr: each child in a process group of its own, so that a Ctrl-C
// in the terminal reaches only kaginashi dev, which then stops the
// children in order (the agent while the server still runs; sshd with its
// sessions); had they the terminal's SIGINT too, they would die in any
// order and look like crashes. And SIGTERM to the child should this
// process die without stopping it (Linux's parent-death signal), so a
// crash leaves no agent or sshd behind.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}
