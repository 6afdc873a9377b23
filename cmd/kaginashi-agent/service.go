package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/kaginashi/kaginashi/internal/agent"
)

// unitTemplate is the agent's systemd unit. The agent needs no privilege
// at run time beyond writing its data directory and dialling out, so the
// unit takes every capability away and makes the system read-only to it.
const unitTemplate = `[Unit]
Description=kaginashi host agent (keyless SSH: pushed keys for sshd)
Documentation=https://github.com/kaginashi/kaginashi
Wants=network-online.target
After=network-online.target

[Service]
ExecStart=%s run --data-dir %s
Restart=always
RestartSec=2
CapabilityBoundingSet=
AmbientCapabilities=
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
PrivateDevices=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectControlGroups=yes
RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX
RestrictNamespaces=yes
LockPersonality=yes
MemoryDenyWriteExecute=yes
SystemCallArchitectures=native
ReadWritePaths=%s

[Install]
WantedBy=multi-user.target
`

func installService(args []string) error {
	fs := flag.NewFlagSet("install-service", flag.ContinueOnError)
	dataDir := fs.String("data-dir", agent.DefaultDataDir, "agent state directory")
	unitDir := fs.String("unit-dir", "/etc/systemd/system", "where to write the unit")
	dryRun := fs.Bool("dry-run", false, "print the unit, change nothing")
	server := fs.String("server", "", "enroll first with this server (with --join-token)")
	token := fs.String("join-token", "", "join token to enroll with first")
	caFile := fs.String("ca-file", "", "the server's CA certificate, for enrolling")
	caPin := fs.String("ca-pin", "", "or the server CA's SHA-256 pin (sha256:HEX), for enrolling")
	var tags tagsFlag
	fs.Var(&tags, "tag", "tag for this instance, KEY=VALUE (repeatable), for enrolling")
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	if *token != "" && !*dryRun {
		if *server == "" {
			return usageError{errors.New("--join-token needs --server")}
		}
		cfg, err := agent.Enroll(context.Background(), agent.Paths{Dir: *dataDir}, agent.EnrollOptions{
			Server: *server, Token: *token, Trust: agent.Trust{CAFile: *caFile, Pin: *caPin}, Tags: tags})
		if err != nil {
			return err
		}
		fmt.Printf("enrolled as %s\n", cfg.InstanceID)
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	if self, err = filepath.EvalSymlinks(self); err != nil {
		return err
	}
	abs, err := filepath.Abs(*dataDir)
	if err != nil {
		return err
	}
	unit := fmt.Sprintf(unitTemplate, self, abs, abs)
	path := filepath.Join(*unitDir, "kaginashi-agent.service")
	if *dryRun {
		fmt.Printf("# %s\n%s", path, unit)
		return nil
	}
	if _, err := os.Stat(filepath.Join(abs, "identity.crt")); err != nil {
		return errors.New("enroll first: kaginashi-agent run --server URL --join-token TOKEN (then stop it and install the service)")
	}
	if err := os.WriteFile(path, []byte(unit), 0o644); err != nil {
		return err
	}
	for _, c := range [][]string{{"systemctl", "daemon-reload"}, {"systemctl", "enable", "--now", "kaginashi-agent.service"}} {
		if out, err := exec.Command(c[0], c[1:]...).CombinedOutput(); err != nil {
			return fmt.Errorf("%v: %v: %s", c, err, out)
		}
	}
	fmt.Printf("installed %s and started kaginashi-agent.service\n", path)
	return nil
}
