//go:build unix

package hostinfo

import (
	"os/exec"
	"syscall"
)

// ownProcessGroup puts the command in its own process group and makes a
// cancellation kill the whole group, so nothing it forks outlives the
// timeout.
func ownProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		if cmd.Process == nil {
			return nil
		}
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}
