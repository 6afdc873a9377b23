package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/spf13/cobra"
	"golang.org/x/crypto/ssh"

	"github.com/kaginashi/kaginashi/internal/client"
)

// ExitSSH is what `kaginashi ssh` and `ssh-proxy` exit with when they fail
// before ssh runs: ssh's own code for a connection that did not happen,
// which scp, rsync and git understand.
const ExitSSH = 255

// sshFail is a failure before (or instead of) ssh: exit 255, the message
// said once.
func sshFail(err error) error {
	var ee *exitError
	if errors.As(err, &ee) {
		return err
	}
	return &exitError{code: ExitSSH, err: err}
}

// debugf prints a debug line on stderr when on.
type debugf func(format string, args ...any)

// newDebug's lines say the time since the command started, to see where
// a login's time goes.
func newDebug(w io.Writer, on bool) debugf {
	if !on && os.Getenv("KAGINASHI_DEBUG") == "" {
		return func(string, ...any) {}
	}
	start := time.Now()
	return func(format string, args ...any) {
		fmt.Fprintf(w, "kaginashi: [%6.1f ms] "+format+"\n", append([]any{float64(time.Since(start).Microseconds()) / 1000}, args...)...)
	}
}

// route is how ssh reaches an instance: through the Instance Connect
// Endpoint's tunnel, or directly at an address.
type route struct {
	tunnel bool
	addr   string // direct only
}

func (r route) String() string {
	if r.tunnel {
		return "the Instance Connect Endpoint's tunnel"
	}
	return "directly to " + r.addr
}

// chooseRoute picks the way in for --connection-type. kaginashi's hosts
// sit behind their agents: auto is the tunnel. On AWS it is the AWS CLI's
// rule: a public IPv4 address directly, else the private IPv4 address
// through the endpoint, else IPv6 directly.
func chooseRoute(in client.Instance, kind string) (route, error) {
	none := func(what string) (route, error) {
		return route{}, &problem{what: fmt.Sprintf("%s has no %s", in.Label(), what), fix: "pick another --connection-type"}
	}
	switch kind {
	case "eice":
		if in.Kaginashi || in.PrivateIP != "" {
			return route{tunnel: true}, nil
		}
		return none("private IPv4 address to tunnel to")
	case "direct":
		for _, a := range []string{in.PublicIP, in.IPv6, in.PrivateIP} {
			if a != "" {
				return route{addr: a}, nil
			}
		}
		return none("IP address")
	case "auto", "":
		switch {
		case in.Kaginashi:
			return route{tunnel: true}, nil
		case in.PublicIP != "":
			return route{addr: in.PublicIP}, nil
		case in.PrivateIP != "":
			return route{tunnel: true}, nil
		case in.IPv6 != "":
			return route{addr: in.IPv6}, nil
		}
		return none("IP address")
	}
	return route{}, validConnType(kind)
}

func validConnType(kind string) error {
	switch kind {
	case "auto", "direct", "eice":
		return nil
	}
	return usageErr("--connection-type %q: want auto, direct or eice", kind)
}

// checkReachable refuses early what cannot work: a host whose agent is
// offline, a port its agent does not let tunnels reach.
func checkReachable(in client.Instance, r route, port int) error {
	return checkReachableVia(in, r, port, "--ssh-port")
}

// checkReachableVia is checkReachable for a command given its port by
// portFlag (ssh-proxy: ssh's -p).
func checkReachableVia(in client.Instance, r route, port int, portFlag string) error {
	switch {
	case in.Kaginashi && in.State != "running":
		seen := ""
		if in.LastSeen != "" {
			seen = ", last seen " + in.LastSeen
		}
		return &problem{what: fmt.Sprintf("the agent of %s is offline: it is not connected to the server (state %s%s)", in.Label(), in.State, seen),
			fix: "start it on the host (systemctl start kaginashi-agent; systemctl status kaginashi-agent tells why it stopped), or check that the host is up and can reach the server"}
	case !in.Kaginashi && in.State != "" && in.State != "running":
		return &problem{what: fmt.Sprintf("%s is %s", in.Label(), in.State), fix: "start it first: aws ec2 start-instances --instance-ids " + in.InstanceID}
	case r.tunnel && !in.PortAllowed(port):
		return &problem{what: fmt.Sprintf("port %d of %s is not open to tunnels: its agent allows %s", port, in.Label(), joinInts(in.AllowedPorts)),
			fix: fmt.Sprintf("on the host, let the agent reach it: kaginashi-agent run --allow-port %d (or use an allowed port with %s)", port, portFlag)}
	}
	return nil
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ", ")
}

// pinHostKeys writes the instance's reported host keys into kaginashi's
// known_hosts under name and returns ssh's StrictHostKeyChecking: yes when
// the keys are known (the first connection is verified too), accept-new
// when they are not (on AWS): then the first key seen is kept and a
// different one later refused.
func pinHostKeys(path, name string, in client.Instance, dbg debugf) (string, error) {
	if err := client.PinHostKeys(path, name, in.HostKeys); err != nil {
		return "", fmt.Errorf("kaginashi's known_hosts (%s): %w", path, err)
	}
	if len(in.HostKeys) == 0 {
		dbg("the server knows no host key of %s: ssh accepts the first one and pins it in %s", in.InstanceID, path)
		return "accept-new", nil
	}
	dbg("pinned %d host key(s) of %s as %q in %s", len(in.HostKeys), in.InstanceID, name, path)
	return "yes", nil
}

// pushAndFindEndpoint pushes the key and, for a tunnel, finds the
// endpoint, at the same time.
func pushAndFindEndpoint(ctx context.Context, cfg aws.Config, in client.Instance, osUser, publicKey string, tunnel bool) (epURL, epID string, err error) {
	var (
		wg      sync.WaitGroup
		pushErr error
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		pushErr = client.PushKey(ctx, cfg, in.InstanceID, osUser, publicKey)
	}()
	switch base := aws.ToString(cfg.BaseEndpoint); {
	case !tunnel:
	case in.EndpointID != "" && base != "":
		epURL, epID = base, in.EndpointID // kaginashi said which
	default:
		epURL, epID, err = client.EndpointFor(ctx, cfg, "", in.Target)
	}
	wg.Wait()
	if pushErr != nil {
		return "", "", pushErr
	}
	return epURL, epID, err
}

// clientArgs are the client flags the user gave, for a child kaginashi
// (ssh's ProxyCommand) to see the same configuration; paths absolute, as
// the child may run elsewhere.
func clientArgs(f client.Flags) []string {
	var args []string
	add := func(name, v string) {
		if v != "" {
			args = append(args, "--"+name, v)
		}
	}
	add("profile", f.Profile)
	add("region", f.Region)
	add("endpoint-url", f.EndpointURL)
	if f.CABundle != "" {
		p, err := filepath.Abs(f.CABundle)
		if err != nil {
			p = f.CABundle
		}
		add("ca-bundle", p)
	}
	if f.NoVerifySSL {
		args = append(args, "--no-verify-ssl")
	}
	return args
}

var shellSafe = regexp.MustCompile(`^[A-Za-z0-9_@%+=:,./-]+$`)

// shellWord quotes s for the POSIX shell ssh runs a ProxyCommand with,
// and doubles % for ssh's own token expansion.
func shellWord(s string) string {
	s = strings.ReplaceAll(s, "%", "%%")
	if shellSafe.MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// sshValue quotes a path for an ssh option (ssh splits option arguments
// like a shell does double quotes) and doubles % for ssh's tokens.
func sshValue(s string) string {
	s = strings.ReplaceAll(s, "%", "%%")
	if !strings.ContainsAny(s, " \t\"'\\") {
		return s
	}
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// thisExecutable is this program's path, for ProxyCommands.
func thisExecutable() (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("finding this program's path for ssh's ProxyCommand: %w", err)
	}
	if p, err := filepath.EvalSymlinks(exe); err == nil {
		exe = p
	}
	return exe, nil
}

// invokedPath is the path this program was started by, for a
// configuration that outlives it: a symlink or PATH entry
// (/usr/local/bin/kaginashi) keeps working after an upgrade where the
// resolved file would not.
func invokedPath() (string, error) {
	arg0 := os.Args[0]
	if !strings.Contains(arg0, string(filepath.Separator)) {
		if p, err := exec.LookPath(arg0); err == nil {
			arg0 = p
		}
	}
	if p, err := filepath.Abs(arg0); err == nil {
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			return p, nil
		}
	}
	return thisExecutable()
}

type sshOptions struct {
	osUser      string
	connType    string
	keyFile     string
	port        int
	maxDuration int
	debug       bool
}

func newSSHCmd(stdio IO) *cobra.Command {
	var (
		flags client.Flags
		o     sshOptions
	)
	c := &cobra.Command{
		Use:   "ssh [USER@]TARGET [-- SSH-ARGS...]",
		Short: "Log in to an instance with OpenSSH and a key that lives for one login",
		Long: `Log in to an instance, given by its ID (i-...) or its Name tag, with the system's
ssh. kaginashi makes an Ed25519 key in memory, pushes its public half with
SendSSHPublicKey (valid for 60 seconds), and hands the key to ssh through a
private ssh-agent socket only this login uses: the private key never touches
the disk. ssh goes through the server's tunnel to the host's agent, and
checks the host key against the keys the host's agent reported, pinned in
kaginashi's own known_hosts ($XDG_CONFIG_HOME/kaginashi/known_hosts,
~/.config/kaginashi/known_hosts), so even the first login is verified.

For a quick login kaginashi pushes the key and opens the tunnel while ssh
starts, and hands the open tunnel to ssh (its ProxyCommand, 'kaginashi
open-tunnel --fd-from', passes the socket with ProxyUseFdpass); the key
exchange need not wait for the push. When ssh may outlive kaginashi (-f,
ForkAfterAuthentication, ControlPersist in the arguments or in ssh's
configuration) the ProxyCommand opens the tunnel itself, after the push.

The user is USER@, --os-user, or else the instance's default user as its
agent reports it (ec2-user on AWS). Everything after -- goes to ssh after
the destination: options (-L, -N, -v, -t) and a command. kaginashi exits
with ssh's exit status.

With no endpoint configured it talks to AWS, like 'aws ec2-instance-connect
ssh': --connection-type auto goes directly to a public IPv4 address, else
through an EC2 Instance Connect Endpoint to the private one, else to IPv6.`,
		Example: `  kaginashi ssh web
  kaginashi ssh admin@i-0123456789abcdef0 -- -L 8080:localhost:80 -N
  kaginashi ssh --ssh-port 2222 web -- uptime`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			target, sshArgs := args, []string(nil)
			if dash := cmd.ArgsLenAtDash(); dash >= 0 {
				target, sshArgs = args[:dash], args[dash:]
			}
			if len(target) != 1 {
				return usageErr("ssh takes one [USER@]TARGET, then -- and ssh's arguments (see 'kaginashi ssh --help')")
			}
			return runSSH(cmd.Context(), stdio, flags, o, target[0], sshArgs)
		},
	}
	addClientFlags(c, &flags)
	f := c.Flags()
	f.StringVar(&o.osUser, "os-user", "", "user to log in as (default: USER@, else the instance's default user; ec2-user on AWS)")
	f.StringVar(&o.connType, "connection-type", "auto", "auto, direct or eice (auto: the tunnel for kaginashi; on AWS as the AWS CLI)")
	f.StringVar(&o.keyFile, "private-key-file", "", "log in with this key instead of an ephemeral one (its public half is pushed)")
	f.IntVar(&o.port, "ssh-port", 0, "sshd's port on the instance (default: the port its agent read from sshd's configuration, else 22)")
	f.IntVar(&o.maxDuration, "max-tunnel-duration", 0, "close the tunnel after this many seconds (1-3600; default: the server's)")
	f.BoolVar(&o.debug, "debug", false, "say what kaginashi does, on stderr (also KAGINASHI_DEBUG=1)")
	return c
}

func runSSH(ctx context.Context, stdio IO, flags client.Flags, o sshOptions, target string, sshArgs []string) error {
	user := ""
	if i := strings.LastIndexByte(target, '@'); i >= 0 {
		user, target = target[:i], target[i+1:]
		if user == "" || target == "" {
			return usageErr("%q: want USER@TARGET", user+"@"+target)
		}
	}
	if user != "" && o.osUser != "" && user != o.osUser {
		return usageErr("the user is %s@ and --os-user %s: give one", user, o.osUser)
	}
	if user == "" {
		user = o.osUser
	}
	if err := checkSSHArgs(sshArgs); err != nil {
		return err
	}
	if o.port < 0 || o.port > 65535 {
		return usageErr("--ssh-port %d: want 1 to 65535", o.port)
	}
	if o.maxDuration < 0 || o.maxDuration > 3600 {
		return usageErr("--max-tunnel-duration %d: want 1 to 3600 seconds", o.maxDuration)
	}
	if err := validConnType(o.connType); err != nil {
		return err
	}
	dbg := newDebug(stdio.Err, o.debug)
	sshBin, err := exec.LookPath("ssh")
	if err != nil {
		return sshFail(&problem{what: "OpenSSH's ssh is not installed (or not on PATH)", fix: "install it (Debian, Ubuntu: apt-get install openssh-client)"})
	}
	exe, err := thisExecutable()
	if err != nil {
		return sshFail(err)
	}
	kh, err := client.KnownHostsPath()
	if err != nil {
		return sshFail(err)
	}

	cfg, err := client.Load(ctx, flags)
	if err != nil {
		return sshFail(explain(err, explainCtx{}))
	}
	base := aws.ToString(cfg.BaseEndpoint)
	outlives := sshMayOutlive(sshArgs)
	handoff := client.CanPassFD && outlives == "" && o.connType != "direct"
	var warm *client.WarmTunnel
	if handoff && base != "" {
		// kaginashi's server is the endpoint: its tunnel's TCP and TLS
		// handshakes go on while the instance is looked up.
		warm = client.PrewarmTunnel(ctx, cfg, base)
		defer warm.Close()
	}
	dbg("AWS configuration loaded (endpoint %q)", base)
	x := explainCtx{endpoint: base, port: o.port, instance: target}
	in, err := client.DescribeInstance(ctx, cfg, target)
	if err != nil {
		var nf *client.NotFoundError
		if errors.As(err, &nf) && !client.IsInstanceID(target) {
			// ssh-config's NAME.kaginashi matches Names but for case
			// (ssh lowercases host names); here they match exactly, so
			// say which Name was meant.
			nf.Like = client.NamesLike(ctx, cfg, target)
		}
		return sshFail(explain(err, x))
	}
	x.instance = in.Label()
	if o.port == 0 {
		o.port = 22
		if in.SSHPort > 0 {
			o.port = in.SSHPort
		}
		x.port = o.port
	}
	if in.Kaginashi {
		dbg("%s: state %s, default user %q (exists: %v), %d host key(s), ports %v", in.Label(), in.State, in.DefaultUser, in.DefaultUserExists, len(in.HostKeys), in.AllowedPorts)
	} else {
		dbg("%s: state %s (AWS: DescribeInstances only)", in.Label(), in.State)
	}
	switch {
	case user != "":
	case in.Kaginashi && in.DefaultUser != "":
		user = in.DefaultUser
		if !in.DefaultUserExists {
			return sshFail(&problem{what: fmt.Sprintf("the default user %q of %s does not exist on the host", user, in.Label()),
				fix: fmt.Sprintf("say who to log in as: kaginashi ssh USER@%s (or --os-user USER)", target)})
		}
	default:
		user = "ec2-user" // the AWS CLI's default
	}
	r, err := chooseRoute(in, o.connType)
	if err != nil {
		return sshFail(err)
	}
	if err := checkReachable(in, r, o.port); err != nil {
		return sshFail(err)
	}

	handoff = handoff && r.tunnel
	if r.tunnel && !handoff && outlives != "" {
		dbg("ssh may outlive this command (%s): its ProxyCommand opens the tunnel", outlives)
	}

	// The key: the user's, or an ephemeral one served by a private agent.
	// The private agent's socket also hands the tunnel to ssh.
	var (
		agentSock, identityFile, publicKey string
		pa                                 *client.PrivateAgent
		key                                *client.EphemeralKey
	)
	if o.keyFile != "" {
		if publicKey, err = client.PublicKeyOfFile(o.keyFile); err != nil {
			return usageErr("--private-key-file: %v", err)
		}
		identityFile = o.keyFile
	} else if key, err = client.NewEphemeralKey(); err != nil {
		return sshFail(err)
	}
	if key != nil || handoff {
		if pa, err = client.StartPrivateAgent(key); err != nil {
			return sshFail(fmt.Errorf("starting the private ssh-agent: %w", err))
		}
		defer pa.Close()
	}
	if key != nil {
		agentSock, identityFile, publicKey = pa.Socket, pa.PubFile, client.AuthorizedKey(key.Public)
		dbg("ephemeral key %s in a private agent at %s", ssh.FingerprintSHA256(key.Public), pa.Socket)
	}
	// Host keys first: ssh reads them only after the key exchange, but
	// they are in place before it starts.
	strict, err := pinHostKeys(kh, in.InstanceID, in, dbg)
	if err != nil {
		return sshFail(err)
	}

	argv := []string{}
	if agentSock != "" {
		argv = append(argv, "-o", "IdentityAgent="+sshValue(agentSock))
	}
	// IdentitiesOnly with one IdentityFile: ssh offers that key first and
	// no other from an agent (the private agent holds no other anyway),
	// and adds none of ~/.ssh/id_*: sshd's MaxAuthTries is never spent on
	// keys the host does not know.
	argv = append(argv,
		"-o", "IdentitiesOnly=yes",
		"-o", "IdentityFile="+sshValue(identityFile),
		"-o", "HostKeyAlias="+in.InstanceID,
		"-o", "UserKnownHostsFile="+sshValue(kh),
		"-o", "StrictHostKeyChecking="+strict,
		"-o", "CheckHostIP=no",
		"-o", "ServerAliveInterval=5",
		"-p", strconv.Itoa(o.port))

	if handoff {
		// ssh starts now; meanwhile this process pushes the key and opens
		// the tunnel, and hands the tunnel to ssh's ProxyCommand.
		tctx, cancel := context.WithCancel(ctx)
		defer cancel() // before pa.Close: ends a held key request
		h := handoffRun{pushed: make(chan error, 1), opened: make(chan openResult, 1), offered: pa.OfferConnection()}
		go func() { h.pushed <- client.PushKey(tctx, cfg, in.InstanceID, user, publicKey) }()
		open := tunnelTo(in, base, o.port, o.maxDuration, warm)
		go func() {
			c, err := open(tctx, cfg)
			h.opened <- openResult{c, err}
		}()
		if key != nil {
			// The key exchange goes on while the key is pushed: the
			// private agent gives ssh the key once it is there.
			h.keysReady = make(chan struct{})
			pa.HoldKeys(tctx, h.keysReady)
		}
		pc := []string{shellWord(exe), "open-tunnel", "--instance-id", shellWord(in.InstanceID), "--remote-port", "%p", "--fd-from", shellWord(pa.Socket)}
		argv = append(argv, "-o", "ProxyCommand="+strings.Join(pc, " "), "-o", "ProxyUseFdpass=yes")
		args := append(append(argv, user+"@"+in.InstanceID), sshArgs...)
		dbg("running %s %s", sshBin, strings.Join(args, " "))
		return runHandoff(stdio, sshBin, args, h, x, dbg)
	}

	epURL, epID, err := pushAndFindEndpoint(ctx, cfg, in, user, publicKey, r.tunnel)
	if err != nil {
		return sshFail(explain(err, x))
	}
	dbg("pushed the key for %s@%s; connecting %s, port %d", user, in.InstanceID, r, o.port)
	host := r.addr
	if r.tunnel {
		host = in.InstanceID
		pc := []string{shellWord(exe), "open-tunnel", "--instance-id", shellWord(in.InstanceID), "--remote-port", "%p"}
		if in.PrivateIP != "" {
			pc = append(pc, "--private-ip-address", shellWord(in.PrivateIP))
		}
		if u, err := url.Parse(epURL); err == nil && epID != "" && u.Hostname() != "" {
			pc = append(pc, "--instance-connect-endpoint-id", shellWord(epID), "--instance-connect-endpoint-dns-name", shellWord(u.Hostname()))
		}
		if o.maxDuration > 0 {
			pc = append(pc, "--max-tunnel-duration", strconv.Itoa(o.maxDuration))
		}
		for _, a := range clientArgs(flags) {
			pc = append(pc, shellWord(a))
		}
		argv = append(argv, "-o", "ProxyCommand="+strings.Join(pc, " "))
	}
	args := append(append(argv, user+"@"+host), sshArgs...) // an IPv6 address needs no brackets here
	dbg("running %s %s", sshBin, strings.Join(args, " "))
	return runChild(ctx, stdio, sshBin, args)
}

// sshArgOpts are ssh's options that take an argument (OpenSSH's getopt
// string).
const sshArgOpts = "bceilmopBDEFIJLOPQRSWw"

// checkSSHArgs refuses ssh options kaginashi's own would silently beat
// (ssh keeps the first value it sees, and kaginashi's come first): the
// port and the user have flags of their own.
func checkSSHArgs(args []string) error {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" || !strings.HasPrefix(a, "-") || a == "-" {
			return nil // the command starts here
		}
		for j := 1; j < len(a); j++ {
			opt := a[j]
			if !strings.ContainsRune(sshArgOpts, rune(opt)) {
				continue
			}
			val := a[j+1:]
			if val == "" && i+1 < len(args) {
				i++
				val = args[i]
			}
			key, _, _ := strings.Cut(strings.ToLower(strings.TrimSpace(val)), "=")
			key, _, _ = strings.Cut(key, " ")
			switch {
			case opt == 'p' || (opt == 'o' && key == "port"):
				return usageErr("give the port with --ssh-port, not to ssh (kaginashi's own -p would win)")
			case opt == 'l' || (opt == 'o' && key == "user"):
				return usageErr("give the user as USER@TARGET or --os-user, not to ssh (kaginashi's would win)")
			case opt == 'o' && (key == "proxycommand" || key == "proxyjump" || key == "hostkeyalias" || key == "userknownhostsfile" || key == "stricthostkeychecking" || key == "identityagent"):
				return usageErr("-o %s: kaginashi sets it itself (its value would win)", strings.TrimSpace(val))
			}
			break
		}
	}
	return nil
}

// child is ssh running in the foreground with this process's terminal
// and environment; the signals that would end this process go to it.
type child struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when ssh has ended; then err is set
	err  error
	stop func()
}

func startChild(stdio IO, bin string, argv []string) (*child, error) {
	c := exec.Command(bin, argv...)
	c.Stdin, c.Stdout, c.Stderr = stdio.In, stdio.Out, stdio.Err
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	if err := c.Start(); err != nil {
		signal.Stop(sigs)
		return nil, sshFail(fmt.Errorf("running ssh: %w", err))
	}
	ch := &child{cmd: c, done: make(chan struct{})}
	quit := make(chan struct{})
	ch.stop = func() { signal.Stop(sigs); close(quit) }
	go func() {
		for {
			select {
			case s := <-sigs:
				_ = c.Process.Signal(s)
			case <-quit:
				return
			}
		}
	}()
	go func() {
		ch.err = c.Wait()
		close(ch.done)
	}()
	return ch, nil
}

// kill ends ssh before it has carried a byte — it has installed no
// handler then, so it goes quietly — and waits for it.
func (c *child) kill() {
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(3 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.done
	}
	c.stop()
}

// status is this command's result once ssh has ended: ssh's status.
func (c *child) status() error {
	<-c.done
	c.stop()
	var ee *exec.ExitError
	switch err := c.err; {
	case err == nil:
		return nil
	case errors.As(err, &ee):
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return &exitError{code: 128 + int(ws.Signal())}
		}
		return &exitError{code: ee.ExitCode()}
	default:
		return sshFail(fmt.Errorf("ssh: %w", err))
	}
}

// runChild runs ssh in the foreground and exits with its status.
func runChild(ctx context.Context, stdio IO, bin string, argv []string) error {
	c, err := startChild(stdio, bin, argv)
	if err != nil {
		return err
	}
	return c.status()
}

// openResult is a tunnel opened (after its key was pushed), or why not.
type openResult struct {
	conn net.Conn
	err  error
}

// tunnelTo opens the tunnel to port of in: through the endpoint kaginashi
// named (its server, base), else the one DescribeInstanceConnectEndpoints
// finds.
func tunnelTo(in client.Instance, base string, port, maxDuration int, warm *client.WarmTunnel) func(ctx context.Context, cfg aws.Config) (net.Conn, error) {
	return func(ctx context.Context, cfg aws.Config) (net.Conn, error) {
		p := client.TunnelParams{Endpoint: base, EndpointID: in.EndpointID, InstanceID: in.InstanceID, PrivateIP: in.PrivateIP, RemotePort: port, MaxDuration: maxDuration}
		if in.EndpointID == "" || base == "" {
			var err error
			if p.Endpoint, p.EndpointID, err = client.EndpointFor(ctx, cfg, "", in.Target); err != nil {
				return nil, err
			}
		}
		return client.DialTunnelWarm(ctx, cfg, p, warm)
	}
}

// openWhilePushing pushes the key and opens the connection at the same
// time, and returns the connection once both are done: no byte reaches
// sshd before its AuthorizedKeysCommand can find the key. The push's
// failure comes first (the tunnel is no use without it). The connection
// lives as long as ctx.
func openWhilePushing(ctx context.Context, cfg aws.Config, in client.Instance, osUser, publicKey string, open func(context.Context, aws.Config) (net.Conn, error), dbg debugf) (net.Conn, error) {
	pushed := make(chan error, 1)
	go func() {
		err := client.PushKey(ctx, cfg, in.InstanceID, osUser, publicKey)
		if err == nil {
			dbg("pushed the key for %s@%s", osUser, in.InstanceID)
		}
		pushed <- err
	}()
	opened := make(chan openResult, 1)
	go func() {
		c, err := open(ctx, cfg)
		if err == nil {
			dbg("tunnel to %s open", in.InstanceID)
		}
		opened <- openResult{c, err}
	}()
	var (
		pushErr error
		o       openResult
	)
	select {
	case pushErr = <-pushed:
		if pushErr != nil {
			// Said at once; the connection, not wanted, is closed
			// when it comes.
			go func() {
				if o := <-opened; o.conn != nil {
					o.conn.Close()
				}
			}()
			return nil, pushErr
		}
		o = <-opened
	case o = <-opened:
		pushErr = <-pushed
	}
	if pushErr != nil || o.err != nil {
		if o.conn != nil {
			o.conn.Close()
		}
		if pushErr != nil {
			return nil, pushErr
		}
		return nil, o.err
	}
	return o.conn, nil
}

// handoffRun is what runHandoff waits for besides ssh.
type handoffRun struct {
	pushed  chan error      // the key's push
	opened  chan openResult // the tunnel
	offered <-chan net.Conn // ssh's ProxyCommand takes the connection
	// keysReady, when set, is closed once the key is pushed: the private
	// agent holds the key until then (client.PrivateAgent.HoldKeys), and
	// the tunnel need not wait. Without it (a key file ssh reads itself),
	// no byte goes through before the push is done.
	keysReady chan struct{}
}

// runHandoff runs ssh, whose ProxyCommand takes from this process the
// tunnel it opens meanwhile (see client.HandoffExtension), and carries
// the tunnel while ssh runs. When the key cannot be pushed or the tunnel
// not opened, ssh — which has not authenticated yet — is stopped and the
// reason told once, as before ssh runs. It exits with ssh's status.
func runHandoff(stdio IO, bin string, argv []string, h handoffRun, x explainCtx, dbg debugf) error {
	c, err := startChild(stdio, bin, argv)
	if err != nil {
		return err
	}
	var (
		tunnel, sshConn net.Conn
		pushed          bool
		carried         chan struct{}
	)
	defer func() {
		// Once ssh has ended: its connection ends the tunnel.
		for _, cn := range []net.Conn{tunnel, sshConn} {
			if cn != nil {
				cn.Close()
			}
		}
		if carried != nil {
			<-carried
		}
	}()
	pushedCh, opened, offered := h.pushed, h.opened, h.offered
	for {
		select {
		case err := <-pushedCh:
			pushedCh = nil
			if err != nil {
				c.kill()
				return sshFail(explain(err, x))
			}
			dbg("pushed the key")
			pushed = true
			if h.keysReady != nil {
				close(h.keysReady)
			}
		case o := <-opened:
			opened = nil
			if o.err != nil {
				c.kill()
				return sshFail(explain(o.err, x))
			}
			dbg("the tunnel is open")
			tunnel = o.conn
		case sc := <-offered:
			offered = nil
			sshConn = sc
			dbg("ssh took the connection")
		case <-c.done:
			return c.status()
		}
		if tunnel != nil && sshConn != nil && carried == nil && (pushed || h.keysReady != nil) {
			carried = make(chan struct{})
			go func() {
				defer close(carried)
				if reason := carry(tunnel, sshConn); reason != "" {
					fmt.Fprintln(stdio.Err, "kaginashi: "+reason)
				}
			}()
		}
	}
}

// carry copies between ssh's connection and the tunnel until one ends
// (the tunnel has no half-close), then closes both. It returns the
// reason of a tunnel that ended abnormally, for the user.
func carry(tunnel, local net.Conn) string {
	up, down := make(chan error, 1), make(chan error, 1)
	go func() {
		_, err := io.Copy(tunnel, local)
		up <- err
	}()
	go func() {
		_, err := io.Copy(local, tunnel)
		down <- err
	}()
	select {
	case <-up: // ssh is done: a close the server answers, not a reset
		local.Close()
		client.EndTunnel(tunnel, down)
		return ""
	case err := <-down:
		tunnel.Close()
		local.Close()
		<-up
		return client.CloseReason(err)
	}
}

// sshMayOutlive says why ssh may go on after the process this command
// started has ended — -f, ForkAfterAuthentication, or ControlPersist (a
// master in the background) — or "" when it may not. A tunnel this
// process carries would end with it; then ssh's ProxyCommand must carry
// the tunnel itself, as a child of whichever ssh goes on. Configuration
// files are read as ssh reads them (-F, else ~/.ssh/config and
// /etc/ssh/ssh_config, with their Includes), and a keyword anywhere in
// them counts, whatever Host or Match block it is in.
func sshMayOutlive(args []string) string {
	configFile := ""
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" || !strings.HasPrefix(a, "-") || a == "-" {
			break // the command starts here
		}
		for j := 1; j < len(a); j++ {
			opt := a[j]
			if opt == 'f' {
				return "-f"
			}
			if !strings.ContainsRune(sshArgOpts, rune(opt)) {
				continue
			}
			val := a[j+1:]
			if val == "" && i+1 < len(args) {
				i++
				val = args[i]
			}
			switch opt {
			case 'F':
				configFile = val
			case 'o':
				if why := outlivingOption(val); why != "" {
					return why
				}
			}
			break
		}
	}
	var files []string
	if configFile != "" {
		if configFile == "none" {
			return ""
		}
		files = append(files, configFile)
	} else {
		if home, err := os.UserHomeDir(); err == nil {
			files = append(files, filepath.Join(home, ".ssh", "config"))
		}
		files = append(files, "/etc/ssh/ssh_config")
	}
	seen := map[string]bool{}
	for _, f := range files {
		// ssh's rule for relative Includes: in ~/.ssh for a user's file
		// (-F's too), in /etc/ssh for the system's.
		dir := "/etc/ssh"
		if f != "/etc/ssh/ssh_config" {
			if home, err := os.UserHomeDir(); err == nil {
				dir = filepath.Join(home, ".ssh")
			}
		}
		if why := outlivingConfig(f, dir, seen, 0); why != "" {
			return why
		}
	}
	return ""
}

// outlivingOption is sshMayOutlive for one "Keyword value" option.
func outlivingOption(line string) string {
	line = strings.TrimSpace(line)
	kw, val, _ := strings.Cut(line, "=")
	if i := strings.IndexAny(kw, " \t"); i >= 0 {
		kw, val = kw[:i], kw[i+1:]+val
	}
	kw = strings.ToLower(strings.TrimSpace(kw))
	val = strings.ToLower(strings.Trim(strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(val), "=")), `"`))
	switch {
	case kw == "controlpersist" && val != "no" && val != "false":
		return "ControlPersist " + val
	case kw == "forkafterauthentication" && (val == "yes" || val == "true"):
		return "ForkAfterAuthentication " + val
	}
	return ""
}

// outlivingConfig reads an ssh configuration file and its Includes
// (relative to dir, as ssh resolves them) for outlivingOption.
func outlivingConfig(path, dir string, seen map[string]bool, depth int) string {
	if depth > 16 || seen[path] {
		return ""
	}
	seen[path] = true
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		if why := outlivingOption(line); why != "" {
			return why + " in " + path
		}
		kw, rest, _ := strings.Cut(strings.Replace(line, "=", " ", 1), " ")
		if !strings.EqualFold(kw, "include") {
			continue
		}
		for _, pat := range strings.Fields(rest) {
			pat = strings.Trim(pat, `"`)
			if strings.HasPrefix(pat, "~/") {
				if home, err := os.UserHomeDir(); err == nil {
					pat = filepath.Join(home, pat[2:])
				}
			} else if !filepath.IsAbs(pat) {
				pat = filepath.Join(dir, pat)
			}
			matches, _ := filepath.Glob(pat)
			for _, m := range matches {
				if why := outlivingConfig(m, dir, seen, depth+1); why != "" {
					return why
				}
			}
		}
	}
	return ""
}

// proxySuffix marks a Name tag in ssh-proxy's HOST: NAME.kaginashi.
const proxySuffix = ".kaginashi"

func newSSHProxyCmd(stdio IO) *cobra.Command {
	var (
		flags      client.Flags
		knownHosts string
		connType   string
		verbose    bool
		maxDur     int
	)
	c := &cobra.Command{
		Use:   "ssh-proxy HOST PORT USER",
		Short: "ssh's ProxyCommand: push a key for USER and carry the connection to HOST (see ssh-config)",
		Long: `ssh's ProxyCommand for the block 'kaginashi ssh-config' prints (%h %p %r).
HOST is an instance ID or NAME.kaginashi for the instance whose Name tag is
NAME. It pushes a key for USER — an ephemeral Ed25519 key it adds to your
ssh-agent (SSH_AUTH_SOCK) for 60 seconds, or without an agent your
~/.ssh/id_ed25519.pub, id_ecdsa.pub or id_rsa.pub — pins the host keys the
instance's agent reported in the known_hosts file under the name ssh
checks, and carries the connection on standard input and output through
the server's tunnel. -v (or KAGINASHI_DEBUG=1) says which key on stderr.`,
		Args: exactArgs(3, "HOST PORT USER (ssh's %h %p %r)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			host, user := args[0], args[2]
			port, err := strconv.Atoi(args[1])
			if err != nil || port < 1 || port > 65535 {
				return usageErr("PORT %q: want 1 to 65535", args[1])
			}
			if user == "" {
				return usageErr("USER is empty")
			}
			if err := validConnType(connType); err != nil {
				return err
			}
			if maxDur < 0 || maxDur > 3600 {
				return usageErr("--max-tunnel-duration %d: want 1 to 3600 seconds", maxDur)
			}
			return runSSHProxy(cmd.Context(), stdio, flags, host, port, user, knownHosts, connType, maxDur, newDebug(stdio.Err, verbose))
		},
	}
	addClientFlags(c, &flags)
	f := c.Flags()
	f.StringVar(&knownHosts, "known-hosts", "", "known_hosts file to pin host keys in: ssh's UserKnownHostsFile (default: kaginashi's)")
	f.StringVar(&connType, "connection-type", "auto", "auto, direct or eice")
	f.BoolVarP(&verbose, "verbose", "v", false, "say which key is pushed, on stderr")
	// A policy may cap ec2-instance-connect:maxTunnelDuration; a tunnel
	// asking for none counts as 3600 and is refused.
	f.IntVar(&maxDur, "max-tunnel-duration", 0, "close the tunnel after this many seconds (1-3600; default: the server's)")
	return c
}

func runSSHProxy(ctx context.Context, stdio IO, flags client.Flags, host string, port int, user, kh, connType string, maxDur int, dbg debugf) error {
	target := host
	if len(host) > len(proxySuffix) && strings.EqualFold(host[len(host)-len(proxySuffix):], proxySuffix) {
		target = host[:len(host)-len(proxySuffix)]
	}
	if kh == "" {
		var err error
		if kh, err = client.KnownHostsPath(); err != nil {
			return sshFail(err)
		}
	}
	cfg, err := client.Load(ctx, flags)
	if err != nil {
		return sshFail(explain(err, explainCtx{}))
	}
	base := aws.ToString(cfg.BaseEndpoint)
	var warm *client.WarmTunnel
	if base != "" && connType != "direct" {
		// The tunnel's TCP and TLS handshakes while the instance is
		// looked up.
		warm = client.PrewarmTunnel(ctx, cfg, base)
		defer warm.Close()
	}
	x := explainCtx{endpoint: base, port: port, instance: target, portFlag: "ssh's -p (Port)"}
	// ssh lowercased the host name: a Name tag "Web" is asked for as web.
	in, err := client.DescribeInstanceByHost(ctx, cfg, target)
	if err != nil {
		return sshFail(explain(err, x))
	}
	x.instance = in.Label()
	// ssh says 22 when no Port was configured for the host: then the
	// port the host's sshd listens on, as its agent read it, is meant.
	// (The known_hosts name stays ssh's %h:%p.)
	tport := port
	if port == 22 && in.SSHPort > 0 {
		tport = in.SSHPort
		x.port = tport
	}
	r, err := chooseRoute(in, connType)
	if err != nil {
		return sshFail(err)
	}
	if err := checkReachableVia(in, r, tport, "ssh's -p (Port)"); err != nil {
		return sshFail(err)
	}

	// Which key: an ephemeral one in the user's agent, where ssh finds it,
	// for 60 seconds (the pushed key's life); else the user's own.
	var publicKey string
	key, err := client.NewEphemeralKey()
	if err != nil {
		return sshFail(err)
	}
	if aerr := client.AddToUserAgent(key, 60); aerr == nil {
		publicKey = client.AuthorizedKey(key.Public)
		dbg("ssh-proxy: pushing an ephemeral key %s for %s@%s, added to your ssh-agent for 60 s", ssh.FingerprintSHA256(key.Public), user, in.InstanceID)
	} else {
		path, line, err := client.DefaultPublicKey()
		if err != nil {
			return sshFail(&problem{what: fmt.Sprintf("no key to push for %s: %v", user, err), fix: "start an ssh-agent (eval $(ssh-agent)) or make a key (ssh-keygen -t ed25519)"})
		}
		publicKey = line
		dbg("ssh-proxy: no usable ssh-agent (%v); pushing %s for %s@%s", aerr, path, user, in.InstanceID)
	}
	// Host keys: written under the name ssh looks up (no HostKeyAlias in
	// a wildcard block) before the first byte reaches ssh, which reads
	// the file only after the key exchange.
	if _, err := pinHostKeys(kh, client.KnownHostName(strings.ToLower(host), port), in, dbg); err != nil {
		return sshFail(err)
	}
	// The key's push and the connection at the same time; no byte goes
	// through before both are done.
	open := tunnelTo(in, base, tport, maxDur, warm)
	if !r.tunnel {
		addr := net.JoinHostPort(r.addr, strconv.Itoa(tport))
		dbg("ssh-proxy: connecting directly to %s", addr)
		open = func(ctx context.Context, _ aws.Config) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "tcp", addr)
		}
	}
	conn, err := openWhilePushing(ctx, cfg, in, user, publicKey, open, dbg)
	if err != nil {
		return sshFail(explain(err, x))
	}
	if !r.tunnel {
		return directStdio(stdio, conn)
	}
	if err := carryStdio(stdio, conn); err != nil {
		return sshFail(explain(err, x))
	}
	return nil
}

// directStdio carries standard input and output to a TCP connection.
func directStdio(stdio IO, conn net.Conn) error {
	defer conn.Close()
	done := make(chan struct{}, 2)
	go func() {
		_, _ = io.Copy(conn, stdio.In)
		if tc, ok := conn.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
		done <- struct{}{}
	}()
	go func() {
		_, _ = io.Copy(stdio.Out, conn)
		done <- struct{}{}
	}()
	<-done
	return nil
}

func newSSHConfigCmd(stdio IO) *cobra.Command {
	var (
		flags      client.Flags
		knownHosts string
		connType   string
		maxDur     int
	)
	c := &cobra.Command{
		Use:   "ssh-config",
		Short: "Print an ssh_config block so that plain ssh, scp, sftp, rsync, git and Ansible reach instances",
		Long: `Print a Host block for ~/.ssh/config: hosts i-* (instance IDs) and NAME.kaginashi
(the instance whose Name tag is NAME; ssh lowercases host names) go through
'kaginashi ssh-proxy', which pushes a key and opens the tunnel in one step.
The client flags given here (--profile, --region, --endpoint-url,
--ca-bundle) and --connection-type and --max-tunnel-duration are passed on
to ssh-proxy (a policy may cap ec2-instance-connect:maxTunnelDuration: a
tunnel asking for none counts as 3600).`,
		Example: `  kaginashi ssh-config >> ~/.ssh/config
  ssh admin@web.kaginashi
  scp notes.txt admin@i-0123456789abcdef0:/tmp/
  rsync -a ./site/ admin@web.kaginashi:/srv/site/`,
		Args: exactArgs(0, "no positional arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := validConnType(connType); err != nil {
				return err
			}
			if maxDur < 0 || maxDur > 3600 {
				return usageErr("--max-tunnel-duration %d: want 1 to 3600 seconds", maxDur)
			}
			exe, err := invokedPath()
			if err != nil {
				return err
			}
			if knownHosts == "" {
				if knownHosts, err = client.KnownHostsPath(); err != nil {
					return err
				}
			}
			if knownHosts, err = filepath.Abs(knownHosts); err != nil {
				return err
			}
			pc := []string{shellWord(exe), "ssh-proxy", "--known-hosts", shellWord(knownHosts)}
			if connType != "auto" {
				pc = append(pc, "--connection-type", shellWord(connType))
			}
			if maxDur > 0 {
				pc = append(pc, "--max-tunnel-duration", strconv.Itoa(maxDur))
			}
			for _, a := range clientArgs(flags) {
				pc = append(pc, shellWord(a))
			}
			pc = append(pc, "%h", "%p", "%r")
			_, err = fmt.Fprintf(stdio.Out, sshConfigTemplate, strings.Join(pc, " "), sshValue(knownHosts))
			return err
		},
	}
	addClientFlags(c, &flags)
	c.Flags().StringVar(&knownHosts, "known-hosts", "", "known_hosts file for these hosts (default: $XDG_CONFIG_HOME/kaginashi/known_hosts, ~/.config/kaginashi/known_hosts)")
	c.Flags().StringVar(&connType, "connection-type", "auto", "auto, direct or eice, for ssh-proxy")
	c.Flags().IntVar(&maxDur, "max-tunnel-duration", 0, "for ssh-proxy: close each tunnel after this many seconds (1-3600; default: the server's)")
	return c
}

const sshConfigTemplate = `# kaginashi: ssh, scp, sftp, rsync, git and Ansible to instances, with no
# long-lived key. Generated by 'kaginashi ssh-config'; put it in ~/.ssh/config
# before any 'Host *' block (ssh takes the first value it finds):
#   kaginashi ssh-config >> ~/.ssh/config
# Then: ssh USER@i-0123456789abcdef0, or ssh USER@NAME.kaginashi for the
# instance whose Name tag is NAME (in lower case: ssh lowercases host names).
#
# ssh-proxy pushes a key for USER (an ephemeral one it adds to your ssh-agent
# for 60 s, else ~/.ssh/id_ed25519.pub, id_ecdsa.pub or id_rsa.pub) and
# carries the connection through the server's tunnel.
#
# Host keys: a wildcard block has no per-host HostKeyAlias, so ssh-proxy
# writes the host keys the instance's agent reported into the
# UserKnownHostsFile below, under the very name ssh checks (the host, or
# [host]:port), replacing what it held for that name, before the tunnel
# carries a byte. ssh reads the file only after the key exchange, so even
# the first connection is verified, and a host presenting another key is
# refused. (KnownHostsCommand could serve the keys instead, but it needs
# OpenSSH 8.5 and one more process and API call per connection.) Hosts whose
# keys the server does not know (on AWS) are accepted once and pinned.
Host i-* *.kaginashi
    ProxyCommand %s
    UserKnownHostsFile %s
    StrictHostKeyChecking accept-new
    CheckHostIP no
    ServerAliveInterval 5
`
