package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/kaginashi/kaginashi/internal/agent"
	"github.com/kaginashi/kaginashi/internal/sshdsetup"
)

// unitTemplate is the agent's systemd unit. The agent needs no privilege
// at run time beyond writing its data directory and dialling out, so the
// unit takes every capability away and makes the system read-only to it.
//
// AF_NETLINK is allowed because Go's net.Interfaces and InterfaceAddrs
// read the interface and address lists with a netlink route dump (read
// only): without it the inventory has no addresses (DescribeInstances'
// privateIpAddress, and the EICE private-IP path, would be dead).
//
// ExecStart must name a binary the unit can see: ProtectHome=yes hides
// /home, /root and /run/user, PrivateTmp=yes the host's /tmp and /var/tmp
// (systemd would fail with 203/EXEC). install-service installs a copy under
// /usr/local/libexec/kaginashi when the binary it was run from is there.
//
// RestartPreventExitStatus is agent.ExitIdentityRevoked: an agent whose
// identity the server no longer accepts (its instance deregistered, or
// enrolled again elsewhere) exits with it, and restarting it would only be
// refused again, every RestartSec, for ever. systemctl status then shows
// the unit failed with status=78/CONFIG and the agent's last line, which
// says what to do.
const unitTemplate = `[Unit]
Description=kaginashi host agent (keyless SSH: pushed keys for sshd)
Documentation=https://github.com/kaginashi/kaginashi
Wants=network-online.target
After=network-online.target

[Service]
ExecStart=%s run --data-dir %s
Restart=always
RestartSec=2
RestartPreventExitStatus=%d
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
RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX AF_NETLINK
RestrictNamespaces=yes
LockPersonality=yes
MemoryDenyWriteExecute=yes
SystemCallArchitectures=native
ReadWritePaths=%s

[Install]
WantedBy=multi-user.target
`

// unitName is the agent's systemd unit.
const unitName = "kaginashi-agent.service"

// unitText is the unit for the agent binary exe and data directory dir
// (both absolute).
func unitText(exe, dir string) string {
	return fmt.Sprintf(unitTemplate, exe, dir, agent.ExitIdentityRevoked, dir)
}

// service installs and removes the agent's unit. Its fields are the
// outside world, so tests run it without systemd.
type service struct {
	unitDir   string
	inst      *sshdsetup.Installer
	systemctl func(ctx context.Context, args ...string) error
	out       io.Writer
	// problem says why the unit must not run the binary from where it is
	// (sshdsetup.ServiceBinaryProblem).
	problem func(exe string) error
	// metricsListen is passed to the agent's run in ExecStart ("": none).
	metricsListen string
	// booted says whether the host runs systemd (systemdBooted).
	booted func() bool
}

// systemdBooted is sd_booted(3)'s test under root: systemd creates
// /run/systemd/system as a directory when it is the init system. A host
// with systemctl installed but another init (a container, Alpine,
// Devuan) has no such directory, and systemctl would fail there with
// "System has not been booted with systemd".
func systemdBooted(root string) bool {
	fi, err := os.Lstat(filepath.Join(root, "run", "systemd", "system"))
	return err == nil && fi.IsDir()
}

// needSystemd refuses to install on a host without systemd, before
// anything is enrolled or written, and says what to do instead. enroll
// holds the enrolment flags install-service was given (nil once
// enrolled): the host is not enrolled yet, so the run command must carry
// them, or the first run has nothing to connect with.
func (s *service) needSystemd(dataDir string, enroll []string) error {
	if s.booted() {
		return nil
	}
	cmd := "kaginashi-agent run"
	for _, a := range enroll {
		cmd += " " + shellQuote(a)
	}
	cmd += " --data-dir " + shellQuote(dataDir)
	if len(enroll) > 0 {
		// The token is a secret: not echoed, a placeholder instead. It
		// was not spent, so the same one still works.
		cmd += " --join-token TOKEN"
		return fmt.Errorf("this host does not run systemd: run `%s` under your init system, with the join token you gave (nothing was enrolled, so it is still unspent; the unit it would have written is printed with --dry-run)", cmd)
	}
	return fmt.Errorf("this host does not run systemd: run `%s` under your init system (the unit it would have written is printed with --dry-run)", cmd)
}

// enrollFlags are the run flags that repeat install-service's enrolment
// options, but the join token (see needSystemd).
func enrollFlags(server, caFile, caPin string, tags tagsFlag) []string {
	var f []string
	if server != "" {
		f = append(f, "--server", server)
	}
	if caFile != "" {
		f = append(f, "--ca-file", caFile)
	}
	if caPin != "" {
		f = append(f, "--ca-pin", caPin)
	}
	for _, t := range tags {
		f = append(f, "--tag", t.Key+"="+t.Value)
	}
	return f
}

// shellQuote quotes a for a POSIX shell when it holds anything but
// characters that need no quoting, so a printed command can be pasted.
func shellQuote(a string) string {
	if a != "" && strings.Trim(a, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:=@,+%") == "" {
		return a
	}
	return "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
}

func (s *service) unitPath() string { return filepath.Join(s.unitDir, unitName) }

func runSystemctl(ctx context.Context, args ...string) error {
	out, err := exec.CommandContext(ctx, "systemctl", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("systemctl %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

func installService(args []string) error {
	fs := flag.NewFlagSet("install-service", flag.ContinueOnError)
	dataDir := fs.String("data-dir", agent.DefaultDataDir, "agent state directory")
	unitDir := fs.String("unit-dir", "/etc/systemd/system", "where to write the unit")
	dryRun := fs.Bool("dry-run", false, "print the plan and the unit, change nothing")
	remove := fs.Bool("remove", false, "stop and disable the service, delete the unit (and the installed copy of the agent if nothing else uses it)")
	server := fs.String("server", "", "enroll first with this server (with --join-token)")
	token := fs.String("join-token", "", "join token to enroll with first")
	caFile := fs.String("ca-file", "", "the server's CA certificate, for enrolling")
	caPin := fs.String("ca-pin", "", "or the server CA's SHA-256 pin (sha256:HEX), for enrolling")
	var tags tagsFlag
	fs.Var(&tags, "tag", "tag for this instance, KEY=VALUE (repeatable), for enrolling; adds keys only: the join token's tags and tags already set win")
	metricsListen := fs.String("metrics-listen", "", "add --metrics-listen ADDR to the unit's ExecStart: Prometheus metrics, e.g. 127.0.0.1:9101")
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	if err := checkMetricsListen(*metricsListen); err != nil {
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("install-service takes no arguments, got %q", fs.Args())}
	}
	if *remove && *token != "" {
		return usageError{errors.New("--remove and --join-token exclude each other")}
	}
	abs, err := filepath.Abs(*dataDir)
	if err != nil {
		return err
	}
	ud, err := filepath.Abs(*unitDir)
	if err != nil {
		return err
	}
	ctx := context.Background()
	s := &service{unitDir: ud, inst: installer(abs), systemctl: runSystemctl, out: os.Stdout,
		problem: func(exe string) error { return sshdsetup.ServiceBinaryProblem("", exe) }, metricsListen: *metricsListen,
		booted: func() bool { return systemdBooted("/") }}
	if *remove {
		return s.remove(ctx, *dryRun)
	}
	if !*dryRun {
		// Before enrolling: a join token spent on a host that then
		// cannot install the service would be left behind.
		var enroll []string
		if *token != "" {
			enroll = enrollFlags(*server, *caFile, *caPin, tags)
		}
		if err := s.needSystemd(abs, enroll); err != nil {
			return err
		}
	}
	if *token != "" && !*dryRun {
		if *server == "" {
			return usageError{errors.New("--join-token needs --server")}
		}
		cfg, err := agent.Enroll(ctx, agent.Paths{Dir: abs}, agent.EnrollOptions{
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
	return s.install(ctx, self, abs, *dryRun)
}

// execPath decides what the unit's ExecStart runs: self, or (when the unit
// could not or should not run it from there) its copy in the install
// directory; why is empty when self is used as it is.
func (s *service) execPath(self string) (exe, why string) {
	if err := s.problem(self); err != nil {
		return s.inst.Target(self), err.Error()
	}
	return self, ""
}

func (s *service) install(ctx context.Context, self, dataDir string, dryRun bool) error {
	exe, why := s.execPath(self)
	unit := withMetricsListen(unitText(exe, dataDir), s.metricsListen)
	path := s.unitPath()
	if dryRun {
		fmt.Fprintln(s.out, "Dry run: nothing was changed. Plan:")
		if why != "" {
			fmt.Fprintf(s.out, "  - install %s as %s (%s)\n", self, exe, why)
		}
		fmt.Fprintf(s.out, "  - write %s\n  - systemctl daemon-reload; systemctl enable --now %s\n\n# %s\n%s", path, unitName, path, unit)
		return nil
	}
	if err := s.needSystemd(dataDir, nil); err != nil {
		return err
	}
	if !(agent.Paths{Dir: dataDir}).Enrolled() {
		return errors.New("enroll first: kaginashi-agent install-service --server URL --join-token TOKEN (or kaginashi-agent run --server URL --join-token TOKEN, then stop it and install the service)")
	}
	use := sshdsetup.UnitUse(path)
	var added bool
	if why != "" || s.inst.Owns(exe) {
		// Recorded even when self is the copy, so that setup-sshd --remove
		// never deletes what the unit runs.
		var err error
		if added, err = s.inst.Install(self, exe, use); err != nil {
			return fmt.Errorf("installing the agent where its unit can run it: %w", err)
		}
		if why != "" {
			fmt.Fprintf(s.out, "installed %s as %s: %s\n", self, exe, why)
		}
	}
	old, oldErr := os.ReadFile(path)
	undo := func(cause error) error {
		// Put back what was there, so a failed install leaves no unit
		// pointing at a copy that is gone.
		if oldErr == nil {
			os.WriteFile(path, old, 0o644)
		} else {
			os.Remove(path)
		}
		_ = s.systemctl(ctx, "daemon-reload")
		if added {
			s.inst.Release(use, false)
		}
		return cause
	}
	if err := os.WriteFile(path, []byte(unit), 0o644); err != nil {
		return undo(err)
	}
	if err := s.systemctl(ctx, "daemon-reload"); err != nil {
		return undo(err)
	}
	if err := s.systemctl(ctx, "enable", "--now", unitName); err != nil {
		return undo(err)
	}
	if oldErr == nil && string(old) != unit {
		// enable --now leaves a running agent on the old unit.
		if err := s.systemctl(ctx, "try-restart", unitName); err != nil {
			return err
		}
	}
	fmt.Fprintf(s.out, "installed %s (ExecStart %s) and started %s\n", path, exe, unitName)
	return nil
}

// remove is install-service's undo: stop and disable the unit, delete it,
// and release the unit's use of the installed copy (deleted only when no
// sshd configuration still runs it).
func (s *service) remove(ctx context.Context, dryRun bool) error {
	path := s.unitPath()
	_, err := os.Stat(path)
	exists := err == nil
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if dryRun {
		fmt.Fprintln(s.out, "Dry run: nothing was changed. Plan:")
	}
	switch {
	case exists && !s.booted():
		// No running systemd to stop or reload (a container, another init,
		// a host image being prepared): systemctl would only fail with
		// "System has not been booted with systemd". Take back what
		// install-service wrote: the unit and the links enabling it.
		links, _ := filepath.Glob(filepath.Join(s.unitDir, "*.wants", unitName))
		if dryRun {
			fmt.Fprintf(s.out, "  - this host does not run systemd: no systemctl\n  - delete %s\n", path)
			for _, l := range links {
				fmt.Fprintf(s.out, "  - delete %s\n", l)
			}
			break
		}
		for _, l := range links {
			if err := os.Remove(l); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
		if err := os.Remove(path); err != nil {
			return err
		}
		fmt.Fprintf(s.out, "this host does not run systemd: deleted %s (and %d enabling link(s)) without systemctl\n", path, len(links))
	case exists:
		if dryRun {
			fmt.Fprintf(s.out, "  - systemctl disable --now %s\n  - delete %s\n  - systemctl daemon-reload\n", unitName, path)
		} else {
			if err := s.systemctl(ctx, "disable", "--now", unitName); err != nil {
				return err
			}
			if err := os.Remove(path); err != nil {
				return err
			}
			if err := s.systemctl(ctx, "daemon-reload"); err != nil {
				return err
			}
			fmt.Fprintf(s.out, "stopped and disabled %s, deleted %s\n", unitName, path)
		}
	default:
		fmt.Fprintf(s.out, "  - %s does not exist: no unit to remove\n", path)
	}
	rel, err := s.inst.Release(sshdsetup.UnitUse(path), dryRun)
	for _, a := range rel.Actions(dryRun) {
		fmt.Fprintf(s.out, "  - %s\n", a)
	}
	return err
}
