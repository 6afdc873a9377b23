package devenv

import (
	"fmt"
	"path/filepath"
	"strconv"
)

// Lines are the ready-to-paste lines of the summary, one command each.
func (in Info) Lines() (env []string, login, push, plainSSH, doctor string) {
	env = []string{
		"export AWS_ENDPOINT_URL=" + in.EndpointURL + " AWS_CA_BUNDLE=" + in.CABundle + " AWS_REGION=" + in.Region + " AWS_DEFAULT_REGION=" + in.Region,
		"export AWS_CONFIG_FILE=" + in.Config + " AWS_SHARED_CREDENTIALS_FILE=" + in.Credentials + " AWS_PROFILE=" + in.Profile,
	}
	port := strconv.Itoa(in.SSHPort)
	login = in.Kaginashi + " ssh --ssh-port " + port + " " + in.OSUser + "@" + in.InstanceID
	push = "aws ec2-instance-connect send-ssh-public-key --instance-id " + in.InstanceID + " --instance-os-user " + in.OSUser +
		" --ssh-public-key file://$HOME/.ssh/id_ed25519.pub"
	plainSSH = "ssh -p " + port + " " + in.OSUser + "@127.0.0.1"
	doctor = in.Kaginashi + " doctor --instance-id " + in.InstanceID + " --os-user " + in.OSUser + " --ssh-port " + port +
		" --agent-data-dir " + in.AgentDir + " --sshd-config " + in.SSHDConfig
	return
}

func (e *env) printSummary() {
	in := e.info
	env, login, push, plainSSH, doctor := in.Lines()
	w := e.o.Out
	fmt.Fprintf(w, `
kaginashi dev is running. Ctrl-C stops it and undoes every change it made to this machine.
  data: %s (logs in %s; the next run reuses it)

Web console: %s
  account ID: %s
  user name:  %s
  password:   %s
  (Connect to the host below as %s, SSH port %d)

Host: %s, this machine: a private sshd on 127.0.0.1:%d with its kaginashi agent.
IAM user %s may log in to it as %s (policy "kaginashi-dev").

In another terminal, paste:
%s
%s
%s

Or push your own key (it works for 60 seconds) and use plain ssh:
%s
%s

Check the host and the user's access:
%s

`, in.DataDir, filepath.Join(in.DataDir, "logs"), in.ConsoleURL, in.AccountID, in.UserName, in.Password, in.OSUser, in.SSHPort,
		in.InstanceID, in.SSHPort, in.UserName, in.OSUser, env[0], env[1], login, push, plainSSH, doctor)
}
