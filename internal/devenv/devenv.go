// Package devenv is `kaginashi dev`: the whole of kaginashi on one machine,
// for a first look and for development. One command starts
//
//   - the server, in this process, on SQLite in DIR/server;
//   - an agent (the kaginashi-agent binary next to kaginashi), enrolled with
//     a join token made through the API, its state in DIR/agent;
//   - a real OpenSSH sshd on a loopback port with a private configuration,
//     host key and logs in DIR/sshd, asking the agent for keys;
//   - an IAM user with a console password and access keys (DIR/credentials,
//     DIR/config, profile kaginashi-dev) and a policy that lets it log in to
//     that host as one OS user;
//
// prints how to use them, and on SIGINT/SIGTERM stops everything and undoes
// every change it made outside DIR. A second run reuses DIR: the same
// account, user, password, keys and instance.
//
// Nothing outside DIR is changed, with two exceptions, both undone on exit:
// sshd (as root) needs /run/sshd, its privilege separation directory,
// which only its system service creates; and when DIR is not a place sshd
// accepts an AuthorizedKeysCommand in (every directory up to / root-owned
// and closed to group and others), a root-owned copy of the agent binary
// goes to /run/kaginashi-dev-HASH/.
package devenv

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/kaginashi/kaginashi/internal/server"
	"github.com/kaginashi/kaginashi/internal/sshdsetup"
)

// DefaultDataDir is where `kaginashi dev` keeps everything when no
// --data-dir is given: a directory in the current one, so that `make run`
// in a checkout keeps its state next to the code (and .gitignore hides it).
const DefaultDataDir = ".kaginashi-dev"

// DefaultListen is the server's address: loopback only.
const DefaultListen = "127.0.0.1:8443"

// Profile is the AWS profile name in DIR/credentials and DIR/config.
const Profile = "kaginashi-dev"

// Region is the dev server's region, fixed (a server's region never
// changes after its first start).
const Region = "us-east-1"

// UserName is the IAM user `kaginashi dev` makes for the console and the CLI.
const UserName = "dev"

// NameTag is the Name tag of the dev host's instance.
const NameTag = "kaginashi-dev"

// Options configure Run. Zero values take the defaults.
type Options struct {
	DataDir string // default DefaultDataDir
	Listen  string // default DefaultListen
	// SSHPort is the loopback port of the private sshd; 0: the previous
	// run's, else a free one.
	SSHPort int
	// OSUser is who the IAM user may log in as: default the user running
	// kaginashi dev (as a normal user, only that one is possible).
	OSUser string
	// AgentBinary is kaginashi-agent; default: next to this executable.
	AgentBinary string
	// Kaginashi is the kaginashi binary the printed commands use; default
	// this executable.
	Kaginashi string
	SSHD      string // default /usr/sbin/sshd, else on PATH

	Out io.Writer    // the summary: URLs, sign-in details, commands
	Log *slog.Logger // progress and problems

	// Ready, when set, receives what the summary says, once everything
	// runs.
	Ready func(Info)
}

// Info is what a running dev environment offers.
type Info struct {
	DataDir     string `json:"dataDir"`
	ConsoleURL  string `json:"consoleUrl"`
	EndpointURL string `json:"endpointUrl"`
	CABundle    string `json:"caBundle"`
	Region      string `json:"region"`
	AccountID   string `json:"accountId"`
	UserName    string `json:"userName"`
	Password    string `json:"-"`
	InstanceID  string `json:"instanceId"`
	OSUser      string `json:"osUser"`
	SSHPort     int    `json:"sshPort"`
	Credentials string `json:"credentialsFile"`
	Config      string `json:"configFile"`
	Profile     string `json:"profile"`
	AgentDir    string `json:"agentDataDir"`
	SSHDConfig  string `json:"sshdConfig"`
	Kaginashi   string `json:"kaginashi"`
}

// state is what a run remembers for the next one (DIR/dev.json).
type state struct {
	SSHPort int    `json:"sshPort"`
	OSUser  string `json:"osUser"`
}

// pathSafe: sshd splits AuthorizedKeysCommand on spaces and expands %, so
// DIR must do without them.
var pathSafe = regexp.MustCompile(`^[A-Za-z0-9_@+=:,./-]+$`)

// env is one run.
type env struct {
	o    Options
	log  *slog.Logger
	dir  string
	info Info

	undo     []undoStep // changes outside DIR, undone in reverse order
	children []*child
	srvDone  <-chan struct{} // closed when the server has stopped
	sshd     sshdPlan
}

type undoStep struct {
	what string
	do   func() error
}

func (o *Options) defaults() error {
	if o.DataDir == "" {
		o.DataDir = DefaultDataDir
	}
	if o.Listen == "" {
		o.Listen = DefaultListen
	}
	if o.Out == nil {
		o.Out = os.Stdout
	}
	if o.Log == nil {
		o.Log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	if o.SSHPort < 0 || o.SSHPort > 65535 {
		return fmt.Errorf("--ssh-port %d: want 1 to 65535", o.SSHPort)
	}
	if o.Kaginashi == "" || o.AgentBinary == "" {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("finding this program: %w", err)
		}
		if p, err := filepath.EvalSymlinks(exe); err == nil {
			exe = p
		}
		if o.Kaginashi == "" {
			o.Kaginashi = exe
		}
		if o.AgentBinary == "" {
			o.AgentBinary = filepath.Join(filepath.Dir(exe), "kaginashi-agent")
		}
	}
	if fi, err := os.Stat(o.AgentBinary); err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm()&0o100 == 0 {
		return fmt.Errorf("the agent binary %s is missing or not executable: build it next to kaginashi (make build)", o.AgentBinary)
	}
	return nil
}

// Run starts the dev environment and keeps it running until ctx ends, then
// stops it and undoes its changes. It returns nil after a clean stop.
func Run(ctx context.Context, o Options) (err error) {
	if err := o.defaults(); err != nil {
		return err
	}
	dir, err := filepath.Abs(o.DataDir)
	if err != nil {
		return err
	}
	if !pathSafe.MatchString(dir) {
		return fmt.Errorf("--data-dir %q: sshd needs a path without spaces, quotes, %% or #: choose another directory", dir)
	}
	e := &env{o: o, log: o.Log, dir: dir}
	e.info = Info{DataDir: dir, UserName: UserName, Profile: Profile, Kaginashi: o.Kaginashi,
		AgentDir: filepath.Join(dir, "agent"), SSHDConfig: filepath.Join(dir, "sshd", "sshd_config"),
		Credentials: filepath.Join(dir, "credentials"), Config: filepath.Join(dir, "config"),
		CABundle: filepath.Join(dir, "server", "tls", "ca.pem"), Region: Region}

	if err := e.prepareDir(); err != nil {
		return err
	}
	unlock, err := lockDir(dir)
	if err != nil {
		return err
	}
	defer unlock()

	// Everything started below stops, and everything changed is undone,
	// whatever happens: on return, in reverse order.
	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	// The server stops last, on its own context: Ctrl-C cancels ctx, and a
	// server that began its shutdown then would close the tunnels of open
	// sessions before sshd's were found and stopped, leaving their
	// commands orphaned.
	srvCtx, srvCancel := context.WithCancel(context.WithoutCancel(ctx))
	defer srvCancel()
	defer func() {
		if uerr := e.stopAndUndo(func() { srvCancel(); cancel(nil) }); uerr != nil && err == nil {
			err = uerr
		}
	}()

	st := e.loadState()
	if err := e.chooseOSUser(st); err != nil {
		return err
	}
	if err := e.choosePort(st); err != nil {
		return err
	}

	srvDone, err := e.startServer(srvCtx, cancel)
	if err != nil {
		return err
	}
	admin, err := e.adminConfig(runCtx)
	if err != nil {
		return err
	}
	if err := e.prepareSSHD(runCtx); err != nil {
		return err
	}
	if err := e.startSSHD(runCtx, cancel); err != nil {
		return err
	}
	if err := e.startAgent(runCtx, cancel, admin); err != nil {
		return err
	}
	if err := e.ensureUser(runCtx, admin); err != nil {
		return err
	}
	if err := e.saveState(); err != nil {
		return err
	}
	e.printSummary()
	if o.Ready != nil {
		o.Ready(e.info)
	}

	select {
	case <-runCtx.Done():
	case <-srvDone:
		cancel(errors.New("the server stopped"))
	}
	if cause := context.Cause(runCtx); cause != nil && !errors.Is(cause, context.Canceled) {
		return cause
	}
	e.log.Info("stopping: the agent, sshd and the server")
	return nil
}

// prepareDir makes DIR and its parts. DIR is 0711: sshd's unprivileged
// AuthorizedKeysCommandUser must pass through it to the agent's keys/
// (public material); everything private is in 0700 subdirectories or 0600
// files.
func (e *env) prepareDir() error {
	if err := os.MkdirAll(e.dir, 0o711); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	fi, err := os.Stat(e.dir)
	if err != nil {
		return err
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Geteuid() {
		return fmt.Errorf("data dir %s belongs to uid %d, not to you (uid %d): use your own --data-dir", e.dir, st.Uid, os.Geteuid())
	}
	if err := os.Chmod(e.dir, 0o711); err != nil {
		return err
	}
	for _, d := range []string{"logs", "sshd"} {
		if err := os.MkdirAll(filepath.Join(e.dir, d), 0o700); err != nil {
			return err
		}
	}
	return nil
}

// lockDir keeps two runs off one DIR.
func lockDir(dir string) (func(), error) {
	f, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("another kaginashi dev runs on %s (stop it first, or give another --data-dir)", dir)
	}
	return func() { f.Close() }, nil
}

func (e *env) loadState() state {
	var st state
	if b, err := os.ReadFile(filepath.Join(e.dir, "dev.json")); err == nil {
		_ = json.Unmarshal(b, &st) // a broken file is a first run
	}
	return st
}

func (e *env) saveState() error {
	b, _ := json.MarshalIndent(state{SSHPort: e.info.SSHPort, OSUser: e.info.OSUser}, "", "  ")
	return writeFileAtomic(filepath.Join(e.dir, "dev.json"), append(b, '\n'), 0o600)
}

// chooseOSUser picks the OS user and checks that sshd can log it in.
func (e *env) chooseOSUser(st state) error {
	me, err := user.Current()
	if err != nil {
		return fmt.Errorf("who am I: %w", err)
	}
	u := e.o.OSUser
	if u == "" {
		u = me.Username
	}
	if os.Geteuid() != 0 && u != me.Username {
		return fmt.Errorf("--os-user %s: as a normal user, the private sshd can only log you in as yourself (%s); run kaginashi dev as root for other users", u, me.Username)
	}
	if _, err := user.Lookup(u); err != nil {
		return fmt.Errorf("--os-user %s: no such user on this machine", u)
	}
	if locked, _ := shadowLocked(u); locked {
		return fmt.Errorf("the account %s is locked (its password field in /etc/shadow starts with '!'), and sshd without PAM refuses locked accounts even with a valid key: "+
			"unlock it without giving it a password (usermod -p '*' %s), or choose another --os-user", u, u)
	}
	e.info.OSUser = u
	return nil
}

// shadowLocked says whether /etc/shadow marks the user's password locked.
// Unreadable (not root): unknown, false.
func shadowLocked(name string) (bool, error) {
	b, err := os.ReadFile("/etc/shadow")
	if err != nil {
		return false, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.SplitN(line, ":", 3)
		if len(f) >= 2 && f[0] == name {
			return strings.HasPrefix(f[1], "!"), nil
		}
	}
	return false, nil
}

// choosePort picks sshd's loopback port: the flag, else last run's if it is
// free, else a free one.
func (e *env) choosePort(st state) error {
	if e.o.SSHPort != 0 {
		if !portFree(e.o.SSHPort) {
			return fmt.Errorf("--ssh-port %d: 127.0.0.1:%d is in use; choose another port, or leave --ssh-port out for a free one", e.o.SSHPort, e.o.SSHPort)
		}
		e.info.SSHPort = e.o.SSHPort
		return nil
	}
	if st.SSHPort != 0 && portFree(st.SSHPort) {
		e.info.SSHPort = st.SSHPort
		return nil
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("finding a free port for sshd: %w", err)
	}
	e.info.SSHPort = ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return nil
}

func portFree(port int) bool {
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return false
	}
	ln.Close()
	return true
}

// startServer runs the server in this process and waits until it serves.
func (e *env) startServer(ctx context.Context, cancel context.CancelCauseFunc) (<-chan struct{}, error) {
	host, port, err := net.SplitHostPort(e.o.Listen)
	if err != nil {
		return nil, fmt.Errorf("--listen %q: want HOST:PORT, e.g. %s", e.o.Listen, DefaultListen)
	}
	switch host {
	case "", "0.0.0.0", "::":
		host = "127.0.0.1"
	}
	publicURL := ""
	if port != "0" {
		publicURL = "https://" + net.JoinHostPort(host, port)
	}
	logf, err := e.logFile("server.log")
	if err != nil {
		return nil, err
	}
	ready := make(chan string, 1)
	done := make(chan struct{})
	e.srvDone = done
	var runErr error
	go func() {
		defer close(done)
		defer logf.Close()
		runErr = server.Run(ctx, server.Options{
			AuditLinger: server.DefaultAuditLinger,
			DataDir:     filepath.Join(e.dir, "server"), Listen: e.o.Listen, PublicURL: publicURL, Region: Region,
			Stdout: io.Discard, // the root credentials are in DIR/server/root-credentials
			Log:    slog.New(slog.NewTextHandler(logf, nil)),
			// The dev environment is self-contained: no root
			// credentials or master key from this shell's environment.
			Getenv: func(k string) string {
				if strings.HasPrefix(k, "KAGINASHI_") {
					return ""
				}
				return os.Getenv(k)
			},
			Ready: func(u string) { ready <- u },
		})
		if runErr != nil {
			cancel(fmt.Errorf("the server: %w", runErr))
		}
	}()
	select {
	case u := <-ready:
		if publicURL == "" {
			publicURL = u
		}
		e.info.EndpointURL = publicURL
		e.info.ConsoleURL = publicURL + "/"
		e.log.Info("server running", "url", publicURL, "log", logf.Name())
		return done, nil
	case <-done:
		if runErr != nil && strings.Contains(runErr.Error(), "address already in use") {
			return nil, fmt.Errorf("the server cannot listen on %s: it is in use (another kaginashi?); give --listen 127.0.0.1:PORT", e.o.Listen)
		}
		if runErr == nil {
			runErr = errors.New("stopped before serving")
		}
		return nil, fmt.Errorf("the server: %w (log: %s)", runErr, logf.Name())
	}
}

func (e *env) logFile(name string) (*os.File, error) {
	return os.OpenFile(filepath.Join(e.dir, "logs", name), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
}

// addUndo records a change outside DIR and how to undo it.
func (e *env) addUndo(what string, do func() error) { e.undo = append(e.undo, undoStep{what, do}) }

// stopAndUndo stops the children (the agent first, while the server still
// runs; then sshd with its sessions), then the server (stopServer), and
// undoes the changes outside DIR.
func (e *env) stopAndUndo(stopServer func()) error {
	for _, c := range e.children {
		c.snapshot()
	}
	for i := len(e.children) - 1; i >= 0; i-- {
		e.children[i].stop(e.log)
	}
	stopServer()
	if e.srvDone != nil {
		select {
		case <-e.srvDone:
		case <-time.After(40 * time.Second): // the server's own graceful stop takes at most 30 s
			e.log.Error("the server did not stop within 40 s")
		}
	}
	var errs []error
	for i := len(e.undo) - 1; i >= 0; i-- {
		u := e.undo[i]
		if err := u.do(); err != nil {
			errs = append(errs, fmt.Errorf("undoing %s: %w", u.what, err))
			e.log.Error("could not undo a change", "change", u.what, "err", err)
			continue
		}
		e.log.Info("undone", "change", u.what)
	}
	e.undo = nil
	return errors.Join(errs...)
}

// sshdSafe is sshd's rule for an AuthorizedKeysCommand's file: it and every
// directory up to / root-owned and not writable by group or others.
func sshdSafe(p string) bool {
	_, err := sshdsetup.CheckCommandPath(p)
	return err == nil
}

// hashOf is a short stable name for DIR, for paths outside it.
func hashOf(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:4])
}

// writeFileAtomic writes through a temporary file and a rename.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path))
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// waitFor polls cond every 50 ms until it holds, ctx ends or timeout.
func waitFor(ctx context.Context, timeout time.Duration, cond func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	for {
		ok, err := cond()
		if ok || err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not within %v", timeout)
		}
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
