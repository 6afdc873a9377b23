//go:build !unix

package cli

import (
	"runtime"

	"github.com/spf13/cobra"
)

// kaginashi dev and doctor drive OpenSSH's sshd and a Unix host's agent:
// elsewhere they only say so.
func newDevCmd(IO) *cobra.Command    { return unsupported("dev") }
func newDoctorCmd(IO) *cobra.Command { return unsupported("doctor") }

func unsupported(name string) *cobra.Command {
	return &cobra.Command{Use: name, Short: "(Linux and other Unix systems only)", RunE: func(*cobra.Command, []string) error {
		return usageErr("kaginashi %s runs on Linux (and other Unix systems), not on %s", name, runtime.GOOS)
	}}
}
