// Command kaginashi-agent is kaginashi's host agent: it enrolls with a join
// token, keeps one outbound connection to the server, and serves pushed
// keys to sshd as its AuthorizedKeysCommand.
//
//	kaginashi-agent run --server URL --join-token TOKEN --data-dir DIR [--ca-file F | --ca-pin sha256:HEX] [--tag KEY=VALUE ...]
//	kaginashi-agent authorized-keys [--data-dir DIR] USER [FINGERPRINT]
//	kaginashi-agent setup-sshd [--sshd-config PATH] [--dry-run] [--remove]
//	kaginashi-agent install-service [--data-dir DIR] [--dry-run] [--remove]
//	kaginashi-agent version
//
// It uses the standard flag package and few dependencies on purpose: sshd
// starts `authorized-keys` on every login attempt, so start-up must be cheap.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/kaginashi/kaginashi/internal/agent"
	"github.com/kaginashi/kaginashi/internal/agent/hostinfo"
	"github.com/kaginashi/kaginashi/internal/agentmetrics"
	"github.com/kaginashi/kaginashi/internal/agentproto"
	"github.com/kaginashi/kaginashi/internal/authkeys"
	"github.com/kaginashi/kaginashi/internal/sshdsetup"
)

const usage = `kaginashi-agent: the kaginashi host agent

  kaginashi-agent run --server URL [--join-token TOKEN] [--data-dir DIR] [--ca-file F | --ca-pin sha256:HEX] [--tag KEY=VALUE ...] [--allow-port N ...] [--metrics-listen ADDR]
      enroll once (with a join token from 'kaginashi agent-token create'), then stay connected;
      exits 78 when the server no longer accepts this host's identity (the unit does not restart it)
  kaginashi-agent authorized-keys [--data-dir DIR] USER [FINGERPRINT]
      sshd's AuthorizedKeysCommand (%u %f): print USER's active pushed keys
  kaginashi-agent setup-sshd [--sshd-config PATH] [--data-dir DIR] [--dry-run] [--remove]
      wire this host's sshd to kaginashi (and undo it with --remove)
  kaginashi-agent install-service [--server URL --join-token TOKEN [--ca-file F | --ca-pin sha256:HEX]] [--data-dir DIR] [--metrics-listen ADDR] [--dry-run] [--remove]
      (enroll, then) write and enable a systemd unit that runs the agent (and undo it with --remove)
  kaginashi-agent doctor [--data-dir DIR] [--sshd-config PATH] [--output text|json]
      check this host: enrolled, connected, sshd wired to kaginashi, clock; each failure with its fix
  kaginashi-agent version
`

func main() {
	if len(os.Args) < 2 {
		io.WriteString(os.Stderr, usage)
		os.Exit(2)
	}
	cmd, args := os.Args[1], os.Args[2:]
	var err error
	switch cmd {
	case "run":
		err = run(args)
	case "authorized-keys":
		os.Exit(authorizedKeys(args))
	case "setup-sshd":
		err = setupSSHD(args)
	case "install-service":
		err = installService(args)
	case "doctor":
		os.Exit(doctorCmd(args))
	case "version", "--version", "-v":
		fmt.Println("kaginashi-agent", agent.Version)
	case "help", "--help", "-h":
		io.WriteString(os.Stdout, usage)
	default:
		fmt.Fprintf(os.Stderr, "kaginashi-agent: unknown command %q\n\n%s", cmd, usage)
		os.Exit(2)
	}
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintf(os.Stderr, "kaginashi-agent: %v\n", err)
	}
	os.Exit(exitStatus(err))
}

// exitStatus maps a command's outcome to the process's exit status: 0
// success (and -h, the flag package having printed the flags), 2 usage,
// agent.ExitIdentityRevoked (78) when the server no longer accepts this
// host's identity — the systemd unit's RestartPreventExitStatus, so that
// systemd leaves the agent stopped — and 1 any other error.
func exitStatus(err error) int {
	var ue usageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue):
		return 2
	case errors.Is(err, agent.ErrIdentityRevoked):
		return agent.ExitIdentityRevoked
	}
	return 1
}

type usageError struct{ error }

func (u usageError) Unwrap() error { return u.error }

// portsFlag collects --allow-port values.
type portsFlag []int

func (p *portsFlag) String() string { return fmt.Sprint(*p) }
func (p *portsFlag) Set(v string) error {
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 65535 {
		return errors.New("want a port number from 1 to 65535")
	}
	for _, have := range *p {
		if have == n {
			return nil
		}
	}
	*p = append(*p, n)
	return nil
}

type tagsFlag []agentproto.Tag

func (t *tagsFlag) String() string { return fmt.Sprint(*t) }
func (t *tagsFlag) Set(v string) error {
	k, val, ok := strings.Cut(v, "=")
	if !ok || k == "" {
		return errors.New("want KEY=VALUE")
	}
	*t = append(*t, agentproto.Tag{Key: k, Value: val})
	return nil
}

func newLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

func run(args []string) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	server := fs.String("server", "", "server URL, e.g. https://kaginashi.example:8443")
	token := fs.String("join-token", "", "join token (first run only), from 'kaginashi agent-token create'")
	dataDir := fs.String("data-dir", agent.DefaultDataDir, "agent state directory")
	caFile := fs.String("ca-file", "", "the server's CA certificate (its DIR/tls/ca.pem)")
	caPin := fs.String("ca-pin", "", "pin the server's CA by its SHA-256 instead: sha256:HEX")
	sshdConfig := fs.String("sshd-config", "/etc/ssh/sshd_config", "sshd_config to report on")
	var tags tagsFlag
	fs.Var(&tags, "tag", "tag for this instance, KEY=VALUE (repeatable); adds keys only: the join token's tags and tags already set win")
	ports := portsFlag{22}
	fs.Var(&ports, "allow-port", "local port tunnels may reach (repeatable; 22 is always allowed)")
	metricsListen := fs.String("metrics-listen", "", "serve Prometheus metrics on plain-HTTP GET /metrics at this address, e.g. 127.0.0.1:9101 (off when empty)")
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("run takes no arguments, got %q", fs.Args())}
	}
	if err := checkMetricsListen(*metricsListen); err != nil {
		return usageError{err}
	}
	if *caFile != "" && *caPin != "" {
		return usageError{errors.New("--ca-file and --ca-pin exclude each other")}
	}
	log := newLogger()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	p := agent.Paths{Dir: *dataDir}
	if _, err := os.Stat(filepath.Join(*dataDir, "identity.crt")); err != nil || *token != "" {
		if *token == "" {
			return usageError{fmt.Errorf("this host is not enrolled yet (%s): give --server and --join-token", *dataDir)}
		}
		if *server == "" {
			return usageError{errors.New("--server is required to enroll")}
		}
		cfg, err := agent.Enroll(ctx, p, agent.EnrollOptions{Server: *server, Token: *token, Trust: agent.Trust{CAFile: *caFile, Pin: *caPin}, Tags: tags})
		if err != nil {
			return err
		}
		log.Info("enrolled", "instance", cfg.InstanceID, "server", cfg.Server)
	}
	collect := inventory(*sshdConfig, *dataDir, log)
	opts := agent.Options{Log: log, Inventory: collect}
	// Without --metrics-listen nothing of the metrics exists: no registry,
	// no listener, no goroutine (the idle agent's footprint is a goal).
	var reg *agentmetrics.Registry
	if *metricsListen != "" {
		reg = agentmetrics.New(agent.Version)
		opts.Metrics = reg
	}
	a, err := agent.New(p, opts)
	if err != nil {
		return err
	}
	if reg != nil {
		reg.Watch(a.Stats)
		addr, err := reg.Listen(ctx, *metricsListen, log)
		if err != nil {
			return usageError{err}
		}
		log.Info("serving metrics", "listen", addr.String())
		// The AuthorizedKeysCommand reports its refusals here; without
		// the socket the agent runs on, uncounted.
		if stopRefusals, err := reg.ServeRefusals(ctx, *dataDir, log); err != nil {
			log.Warn("the AuthorizedKeysCommand's refusals will not be counted", "err", err)
		} else {
			defer stopRefusals() // the socket is removed before the process exits
		}
	}
	a.AllowedPorts = ports
	inv := collect(ctx)
	// sshd before 7.7 rejects a key line with expiry-time="...": there
	// the agent's own expiry check is the only one.
	major, minor := sshdVersion(inv.SSHDVersion)
	if err := a.SetExpiryOption(major > 7 || (major == 7 && minor >= 7) || major == 0); err != nil {
		log.Warn("recording sshd's capabilities failed", "err", err)
	}
	log.Info("agent starting", "instance", a.InstanceID(), "version", agent.Version, "sshdConfigured", inv.SSHDConfigured)
	err = a.Run(ctx)
	if errors.Is(err, agent.ErrIdentityRevoked) {
		// The last line (systemctl status, journalctl) says what
		// happened and what to do.
		log.Error("the server no longer accepts this host's agent identity: the agent stops for good", "instance", a.InstanceID(), "exitStatus", agent.ExitIdentityRevoked)
		err = fmt.Errorf("%w; %s", err, revokedFix(*dataDir))
	}
	return err
}

// revokedFix says what to do on a host whose identity was revoked.
func revokedFix(dataDir string) string {
	dd := ""
	if dataDir != agent.DefaultDataDir {
		dd = " --data-dir " + dataDir
	}
	return "to fix: enroll again with a new join token (kaginashi agent-token create): kaginashi-agent install-service" + dd +
		" --server URL --ca-pin sha256:… --join-token TOKEN; or, if this host is decommissioned: kaginashi-agent install-service" + dd +
		" --remove && kaginashi-agent setup-sshd" + dd + " --remove"
}

func sshdVersion(v string) (int, int) {
	_, major, minor, ok := hostinfo.ParseSSHVersion(v)
	if !ok {
		return 0, 0
	}
	return major, minor
}

// inventory collects the host's facts for the server. A fact that could
// not be collected is left empty and the rest is still sent; each new
// failure is logged once (a failure to list addresses would otherwise be
// silent: DescribeInstances would just show no privateIpAddress).
func inventory(sshdConfig, dataDir string, log *slog.Logger) func(context.Context) agentproto.Inventory {
	var mu sync.Mutex
	lastErr := ""
	return func(ctx context.Context) agentproto.Inventory {
		info, err := hostinfo.Collect(ctx, hostinfo.Options{SSHDConfig: sshdConfig})
		inv := agentproto.Inventory{}
		if info != nil {
			inv = agentproto.Inventory{
				Hostname: info.Hostname, OSID: info.OSID, OSVersion: info.OSVersion, OSPrettyName: info.OSPrettyName,
				Platform: info.Platform, DefaultUser: info.DefaultUser, DefaultUserExists: info.DefaultUserExists,
				Kernel: info.Kernel, Architecture: info.Architecture, PrivateIP: info.PrivateIP, IPv4: info.IPv4, IPv6: info.IPv6,
				HostKeys: info.HostKeys, SSHDVersion: info.SSHDVersion, SSHPort: info.SSHPort,
			}
		}
		msg := ""
		if err != nil && ctx.Err() == nil {
			msg = err.Error()
		}
		mu.Lock()
		changed := msg != lastErr
		lastErr = msg
		mu.Unlock()
		if changed && msg != "" && log != nil {
			attrs := []any{"err", msg}
			if info != nil && info.AddressError != "" {
				attrs = append(attrs, "fix", "the host's addresses could not be listed, so DescribeInstances shows no privateIpAddress: "+
					"under systemd the unit needs RestrictAddressFamilies=... AF_NETLINK (kaginashi-agent install-service writes it; run it again)")
			}
			log.Warn("inventory incomplete", attrs...)
		}
		if st, err := sshdsetup.Inspect(sshdsetup.Options{ConfigPath: sshdConfig}); err == nil {
			inv.SSHDConfigured = st.Configured
		}
		return inv
	}
}

// authorizedKeys is sshd's AuthorizedKeysCommand: package authkeys, the
// same code the small kaginashi-authorized-keys binary runs (which
// setup-sshd prefers when it is installed next to this one). It never fails
// loudly: any trouble means no keys (exit 0), with a message on stderr for
// sshd's log.
func authorizedKeys(args []string) int {
	return authkeys.Run(args, authkeys.Env{
		Name:   "kaginashi-agent authorized-keys",
		Stdout: os.Stdout, Stderr: os.Stderr,
		// A test's own syslog socket; the host's /dev/log otherwise.
		SyslogSocket: os.Getenv("KAGINASHI_SYSLOG_SOCKET"),
	})
}

func setupSSHD(args []string) error {
	fs := flag.NewFlagSet("setup-sshd", flag.ContinueOnError)
	config := fs.String("sshd-config", "/etc/ssh/sshd_config", "main sshd_config file")
	dataDir := fs.String("data-dir", agent.DefaultDataDir, "agent state directory (passed to authorized-keys)")
	dryRun := fs.Bool("dry-run", false, "print the plan and the diff, change nothing")
	remove := fs.Bool("remove", false, "undo a previous setup-sshd, restoring the files byte for byte")
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("setup-sshd takes no arguments, got %q", fs.Args())}
	}
	// The configuration's path keys its record and its use of an installed
	// copy, so it must name one file however the command is run.
	if !filepath.IsAbs(*config) {
		return usageError{fmt.Errorf("--sshd-config %q must be an absolute path", *config)}
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	if self, err = filepath.EvalSymlinks(self); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	stateDir := filepath.Join(*dataDir, "sshd-setup")
	inst := installer(*dataDir)
	use := sshdsetup.SSHDConfigUse(*config)
	o := sshdsetup.Options{
		ConfigPath: *config, CommandArgs: []string{"authorized-keys", "--data-dir", *dataDir},
		StateDir: stateDir, DryRun: *dryRun,
	}
	if *remove {
		o.CommandPath = self
		rep, err := sshdsetup.Remove(ctx, o)
		if err == nil {
			// The copies go only when no other configuration (or the
			// agent's unit) still runs them.
			rel, rerr := inst.Release(use, *dryRun)
			rep.Actions = append(rep.Actions, rel.Actions(*dryRun)...)
			err = rerr
		}
		if rep != nil {
			fmt.Print(rep.String())
		}
		return err
	}

	// The small kaginashi-authorized-keys when it sits next to this binary
	// (same build), else this binary: same arguments, same keys.
	pick := sshdsetup.PickCommand(ctx, self, agent.Version)
	command := pick.Path
	verb := "using"
	if *dryRun {
		verb = "would use"
	}
	fmt.Printf("AuthorizedKeysCommand: %s %s (%s)\n", verb, command, pick.Why)
	// sshd runs an AuthorizedKeysCommand only from a root-owned path with
	// no group- or world-writable component: when the binary is not in one
	// (say, downloaded to /tmp), a copy goes to /usr/local/libexec/kaginashi.
	_, perr := sshdsetup.CheckCommandPath(command)
	src := command
	if perr != nil {
		command = inst.Target(src)
	}
	o.CommandPath, o.InstallPending = command, perr != nil
	if *dryRun {
		if perr != nil {
			fmt.Printf("would install %s as %s (%v)\n", src, command, perr)
		}
		rep, err := sshdsetup.Setup(ctx, o)
		if rep != nil {
			fmt.Print(rep.String())
		}
		return err
	}
	// Everything Setup refuses (a relative path, an administrator's own
	// AuthorizedKeysCommand, ...) is refused before anything is installed.
	pre := o
	pre.DryRun = true
	if rep, err := sshdsetup.Setup(ctx, pre); err != nil {
		if rep != nil {
			for _, w := range rep.Warnings {
				fmt.Printf("warning: %s\n", w)
			}
		}
		return err
	}
	var added bool
	if perr != nil || inst.Owns(command) {
		// Recorded even when the binary already runs from the install
		// directory, so that undoing something else never deletes it.
		if added, err = inst.Install(src, command, use); err != nil {
			return fmt.Errorf("installing %s where sshd accepts it: %w", filepath.Base(src), err)
		}
		if perr != nil {
			fmt.Printf("installed %s as %s (sshd refuses the original's path: %v)\n", src, command, perr)
		}
	}
	o.InstallPending = false
	rep, err := sshdsetup.Setup(ctx, o)
	if err != nil && added {
		// Nothing uses the copy after all: take it back (kept if another
		// configuration or the unit runs it).
		if rel, rerr := inst.Release(use, false); rerr == nil && rep != nil {
			rep.Actions = append(rep.Actions, rel.Actions(false)...)
		}
	}
	if rep != nil {
		fmt.Print(rep.String())
	}
	return err
}

// installer manages the copies under /usr/local/libexec/kaginashi that
// setup-sshd and install-service share, with their use record.
func installer(dataDir string) *sshdsetup.Installer {
	stateDir := filepath.Join(dataDir, "sshd-setup")
	return &sshdsetup.Installer{Record: filepath.Join(stateDir, "installed-command"), StateDir: stateDir}
}

// checkMetricsListen accepts "" (no metrics) or HOST:PORT. It is strict
// because install-service writes the address into the unit's ExecStart,
// where a space, a newline, a '%' or a '$' would mean something to
// systemd.
func checkMetricsListen(addr string) error {
	if addr == "" {
		return nil
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--metrics-listen %q: want HOST:PORT, e.g. 127.0.0.1:9101: %v", addr, err)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("--metrics-listen %q: the port must be a number from 0 to 65535", addr)
	}
	for _, c := range host {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune(".-:", c)) {
			return fmt.Errorf("--metrics-listen %q: the host may hold only letters, digits, '.', '-' and ':' (an IP address or a name)", addr)
		}
	}
	return nil
}

// withMetricsListen adds --metrics-listen addr to the unit's ExecStart
// line (addr already checked by checkMetricsListen).
func withMetricsListen(unit, addr string) string {
	if addr == "" {
		return unit
	}
	lines := strings.SplitAfter(unit, "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, "ExecStart=") {
			lines[i] = strings.TrimSuffix(l, "\n") + " --metrics-listen " + addr + "\n"
			break
		}
	}
	return strings.Join(lines, "")
}
