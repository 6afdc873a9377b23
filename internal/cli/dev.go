//go:build unix

package cli

import (
	"github.com/spf13/cobra"

	"github.com/kaginashi/kaginashi/internal/devenv"
)

func newDevCmd(stdio IO) *cobra.Command {
	var o devenv.Options
	c := &cobra.Command{
		Use:   "dev [--data-dir DIR] [--listen 127.0.0.1:8443] [--ssh-port N] [--os-user U]",
		Short: "Run all of kaginashi on this machine: server, agent, a private sshd and a console user",
		Long: `Run the whole of kaginashi on this machine, for a first look or for development:
the server (SQLite in DIR/server), an agent enrolled to it, a real sshd on a
loopback port that asks the agent for keys (its own configuration and host
key in DIR/sshd; the machine's sshd is left alone), and an IAM user "dev"
with a console password, access keys (DIR/credentials, DIR/config, profile
kaginashi-dev) and a policy that lets it log in to this host as --os-user.

It prints the console URL, the sign-in details and ready-to-paste commands,
then runs until SIGINT (Ctrl-C) or SIGTERM: then it stops everything and
undoes every change it made outside DIR (as root: /run/sshd if it created
it, and a root-owned copy of kaginashi-agent in /run when DIR is not a path
sshd accepts an AuthorizedKeysCommand from). A second run reuses DIR.

As root, any existing user can be --os-user. As a normal user, sshd runs as
you and can log in only you.`,
		Args: exactArgs(0, "no positional arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Out = stdio.Out
			o.Log = newLogger(stdio.Err)
			if err := devenv.Run(cmd.Context(), o); err != nil {
				return &exitError{code: ExitFindings, err: err}
			}
			return nil
		},
	}
	f := c.Flags()
	f.StringVar(&o.DataDir, "data-dir", devenv.DefaultDataDir, "directory for everything the dev environment keeps (relative: to the current directory)")
	f.StringVar(&o.Listen, "listen", devenv.DefaultListen, "the server's address")
	f.IntVar(&o.SSHPort, "ssh-port", 0, "the private sshd's loopback port (default: the previous run's, else a free one)")
	f.StringVar(&o.OSUser, "os-user", "", "the OS user the dev IAM user may log in as (default: you)")
	return c
}
