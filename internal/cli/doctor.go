//go:build unix

package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/kaginashi/kaginashi/internal/agent"
	"github.com/kaginashi/kaginashi/internal/client"
	"github.com/kaginashi/kaginashi/internal/doctor"
	"github.com/kaginashi/kaginashi/internal/doctor/usercheck"
	"github.com/kaginashi/kaginashi/internal/sshdsetup"
)

func newDoctorCmd(stdio IO) *cobra.Command {
	var (
		flags client.Flags
		out   outputFlag
		host  doctor.HostOptions
		user  usercheck.Options
	)
	c := &cobra.Command{
		Use:   "doctor [--instance-id ID [--os-user U] [--ssh-port N]] [--agent-data-dir DIR] [--sshd-config F] [--output text|json]",
		Short: "Check that keyless logins can work: on a host, and for you to an instance",
		Long: `Check what keyless logins need, and say how to fix what is wrong.

On a host (when the agent's data directory is there, or --agent-data-dir is
given): the agent is enrolled and connected; sshd's configuration is valid
and asks kaginashi-agent for keys; sshd accepts the AuthorizedKeysCommand's
path (root-owned, not group- or world-writable up to /); the default user
exists; the clock is within 5 s of the server's; the server is reachable;
the OS is supported. The agent binary runs the same: kaginashi-agent doctor.

For you (--instance-id), with your AWS-style settings as for the aws CLI:
the credentials work; your policy, simulated, allows SendSSHPublicKey (as
--os-user, default the instance's default user) and OpenTunnel (to
--ssh-port), and which statement decides; the instance's agent is online;
a tunnel opens (and is closed at once).

Exit status: 0 when no check failed (warnings allowed), 1 when one did.
--output json prints {"checks":[{"name","status","message","fix"}],"ok":bool}
with status ok, fail, warn or skip.`,
		Args: exactArgs(0, "no positional arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			hostOn := cmd.Flags().Changed("agent-data-dir") || cmd.Flags().Changed("sshd-config") || doctor.HostDataDirExists(host.AgentDataDir)
			if !hostOn && user.InstanceID == "" {
				// Nothing says which: check this host, whose first check
				// (the agent enrolled) then fails with its fix.
				hostOn = true
				fmt.Fprintf(stdio.Err, "kaginashi doctor: no agent data directory at %s: checking this host anyway (give --agent-data-dir DIR on a host; --instance-id ID checks your access to an instance)\n", host.AgentDataDir)
			}
			if user.Port < 0 || user.Port > 65535 {
				return usageErr("--ssh-port %d: want 1 to 65535", user.Port)
			}
			var hostChecks, userChecks []doctor.Check
			if hostOn {
				hostChecks = doctor.Host(ctx, host)
			}
			if user.InstanceID != "" {
				if !client.IsInstanceID(user.InstanceID) {
					return usageErr("--instance-id %q: want i- and hex digits", user.InstanceID)
				}
				cfg, err := client.Load(ctx, flags)
				if err != nil {
					userChecks = []doctor.Check{doctor.New("credentials", doctor.Fail, "check AWS_PROFILE, AWS_CONFIG_FILE and AWS_SHARED_CREDENTIALS_FILE", "%v", err)}
				} else {
					user.API, user.Region = usercheck.NewAPI(cfg), cfg.Region
					userChecks = usercheck.Run(ctx, user)
				}
			}
			rep := doctor.NewReport(hostChecks, userChecks)
			var err error
			if out.v == "json" {
				err = rep.WriteJSON(stdio.Out)
			} else {
				err = rep.WriteText(stdio.Out)
			}
			if err != nil {
				return err
			}
			if !rep.OK {
				return &exitError{code: ExitFindings}
			}
			return nil
		},
	}
	addClientFlags(c, &flags)
	out.register(c, "text", "json")
	f := c.Flags()
	f.StringVar(&user.InstanceID, "instance-id", "", "check your access to this instance")
	f.StringVar(&user.OSUser, "os-user", "", "the OS user to log in as (default: the instance's default user)")
	f.IntVar(&user.Port, "ssh-port", 0, "sshd's port on the instance (default: the port its agent reports, else 22)")
	f.StringVar(&host.AgentDataDir, "agent-data-dir", agent.DefaultDataDir, "the agent's data directory on this host")
	f.StringVar(&host.SSHDConfig, "sshd-config", sshdsetup.DefaultConfigPath, "this host's sshd_config")
	return c
}
