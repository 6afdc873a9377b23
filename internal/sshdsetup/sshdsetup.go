// Package sshdsetup configures the distribution's own OpenSSH server for
// kaginashi, and undoes it exactly.
//
// sshd is told to ask kaginashi for a user's keys:
//
//	AuthorizedKeysCommand <command> <args...> %u %f
//	AuthorizedKeysCommandUser kaginashi
//
// where <command> is the small kaginashi-authorized-keys binary when it is
// installed next to the agent (PickCommand), else kaginashi-agent itself;
// <args> are "authorized-keys --data-dir DIR" for both.
//
// Where those two lines go depends on the distribution's sshd_config:
//
//   - a drop-in, sshd_config.d/60-kaginashi.conf, when the main file has an
//     active "Include .../sshd_config.d/*.conf" before its first Match block
//     (Debian 12, Ubuntu 22.04+, Fedora 33+, RHEL 9, SLES 15 SP6);
//   - otherwise a marked block (# BEGIN kaginashi-agent setup-sshd ... # END
//     ...) at the top of the main file, after its header comment and so
//     before every Match block (CentOS 7, RHEL 8, Debian 9, Ubuntu 16.04 and
//     18.04, Fedora 30, Amazon Linux 2023 whose main file has no Include).
//
// sshd keeps the first value it reads for these keywords, so Setup parses
// the whole configuration as sshd does (Include expansion, Match scoping)
// and checks that its lines are the effective ones before writing anything.
// It refuses, and changes nothing, when the administrator already has an
// AuthorizedKeysCommand (in any file, in a Match block, or on sshd's command
// line through a systemd unit, which is how AWS's ec2-instance-connect
// package does it), when PubkeyAuthentication is globally off, and when sshd
// would refuse to run the command (its path must be root-owned and not
// group- or world-writable all the way up to /).
//
// Setup validates the result with `sshd -t` and restores every file if that
// fails; then it reloads sshd. It records the main file's original bytes and
// checksums in Options.StateDir, so Remove can put the main file back byte
// for byte (or, if the administrator edited it since, remove only the
// managed block and say so) and delete the drop-in. Both are idempotent.
//
// Command-line options (sshd -o ...) in the sshd unit are detected, not
// changed. Options.Root is a test hook: every absolute path is read and
// written under it.
package sshdsetup

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"
)

// DropInName is the file name of kaginashi's drop-in. "60-" sorts after the
// distributions' own 40-/50- files (sshd keeps the first value it reads, and
// Setup checks that no earlier file sets the same keywords).
const DropInName = "60-kaginashi.conf"

// Defaults.
const (
	DefaultConfigPath = "/etc/ssh/sshd_config"
	DefaultUser       = "kaginashi"
	DefaultStateDir   = "/var/lib/kaginashi-agent/setup-sshd"
)

// Mechanism is how kaginashi's lines reach sshd.
type Mechanism string

// Mechanisms.
const (
	MechanismDropIn Mechanism = "drop-in" // sshd_config.d/60-kaginashi.conf
	MechanismBlock  Mechanism = "block"   // marked block in the main sshd_config
)

// Options says what to configure. Every absolute path is taken under Root.
type Options struct {
	ConfigPath  string   // main sshd_config; default /etc/ssh/sshd_config
	CommandPath string   // absolute path of the agent binary sshd will run, e.g. /usr/local/sbin/kaginashi-agent
	CommandArgs []string // args before %u %f, e.g. {"authorized-keys", "--data-dir", "/var/lib/kaginashi-agent"}
	User        string   // AuthorizedKeysCommandUser; default "kaginashi"
	StateDir    string   // where Setup records what it changed, so Remove can undo it byte for byte; default /var/lib/kaginashi-agent/setup-sshd
	DryRun      bool     // report the plan and the diff, change nothing
	// InstallPending (with DryRun): CommandPath is where the caller would
	// install the binary before a real run, so it need not exist yet.
	InstallPending bool
	SSHD           string // sshd binary for `sshd -t` (default: found in /usr/sbin, PATH)
	// SSHDArgs are added to `sshd -t -f CONFIG` (tests: "-h", hostkey).
	SSHDArgs []string
	// Validate replaces `sshd -t` (tests). It gets the real path of the
	// main configuration file.
	Validate func(ctx context.Context, configPath string) error
	Reload   func(ctx context.Context) error // nil: reload the distro's service (ssh or sshd via systemctl, else SIGHUP to the pid in its PidFile)
	// CreateUser nil: useradd/adduser a system user with no login shell, no
	// home, locked.
	CreateUser func(ctx context.Context, name string) error
	// SystemdDirs are the unit directories searched for sshd units and
	// drop-ins passing -o AuthorizedKeysCommand; nil: systemd's usual ones.
	SystemdDirs []string
	Root        string // test hook: prefix for absolute paths checked for ownership/modes ("" in production)

	extraLines []string // test hook: more lines for kaginashi's block
}

func (o *Options) defaults() {
	if o.ConfigPath == "" {
		o.ConfigPath = DefaultConfigPath
	}
	if o.User == "" {
		o.User = DefaultUser
	}
	if o.StateDir == "" {
		o.StateDir = DefaultStateDir
	}
}

func (o *Options) real(p string) string {
	if o.Root == "" {
		return p
	}
	return filepath.Join(o.Root, p)
}

func (o *Options) checkSyntax() error {
	// Compiled here, not at package init: this package is linked into the
	// AuthorizedKeysCommand binary, whose start-up runs on every login.
	safeWord := regexp.MustCompile(`^[A-Za-z0-9_@+=:,./-]+$`)
	userName := regexp.MustCompile(`^[a-z_][a-z0-9_-]{0,31}$`)
	if o.CommandPath == "" {
		return errors.New("setup-sshd: CommandPath (the agent binary sshd runs) is required")
	}
	if !path.IsAbs(o.CommandPath) || path.Clean(o.CommandPath) != o.CommandPath || !safeWord.MatchString(o.CommandPath) {
		return fmt.Errorf("setup-sshd: command path %q must be a clean absolute path without spaces, quotes, '%%' or '#'", o.CommandPath)
	}
	for _, a := range o.CommandArgs {
		if !safeWord.MatchString(a) {
			return fmt.Errorf("setup-sshd: command argument %q may contain only letters, digits and _@+=:,./- (sshd would split or expand anything else)", a)
		}
	}
	if !userName.MatchString(o.User) {
		return fmt.Errorf("setup-sshd: user name %q is not a valid system user name", o.User)
	}
	if !path.IsAbs(o.ConfigPath) {
		return fmt.Errorf("setup-sshd: config path %q must be absolute", o.ConfigPath)
	}
	return nil
}

// command is the AuthorizedKeysCommand value Setup writes.
func (o *Options) command() string {
	w := append([]string{o.CommandPath}, o.CommandArgs...)
	return strings.Join(append(w, "%u", "%f"), " ")
}

func (o *Options) lines() []string {
	l := []string{
		"AuthorizedKeysCommand " + o.command(),
		"AuthorizedKeysCommandUser " + o.User,
	}
	return append(l, o.extraLines...)
}

// Conflict is a setting that stops Setup.
type Conflict struct {
	File    string `json:"file"`
	Line    int    `json:"line"`
	Keyword string `json:"keyword,omitempty"`
	Value   string `json:"value,omitempty"`
	Match   string `json:"match,omitempty"`
	Source  string `json:"source"` // "sshd_config", "systemd" or "environment"
	Message string `json:"message"`
}

// State is what Inspect finds.
type State struct {
	ConfigPath       string   `json:"configPath"`
	Files            []string `json:"files"` // every configuration file sshd reads, in order
	SSHD             string   `json:"sshd,omitempty"`
	SSHDVersion      string   `json:"sshdVersion,omitempty"` // e.g. OpenSSH_9.2p1; empty if sshd did not say
	IncludeSupported bool     `json:"includeSupported"`      // OpenSSH >= 7.3 (or, version unknown, the config already uses Include)

	Configured bool      `json:"configured"`          // kaginashi's command and user are the effective global ones
	HandWired  bool      `json:"handWired,omitempty"` // configured, but by an admin's own lines, not by Setup
	Mechanism  Mechanism `json:"mechanism,omitempty"` // how kaginashi is set up now; empty if it is not
	Planned    Mechanism `json:"planned"`             // what Setup uses
	IncludeDir string    `json:"includeDir,omitempty"`
	DropInPath string    `json:"dropInPath,omitempty"` // the drop-in, when the mechanism is (or would be) a drop-in

	// Effective global values (nil: sshd's default).
	AuthorizedKeysCommand     *Directive `json:"authorizedKeysCommand,omitempty"`
	AuthorizedKeysCommandUser *Directive `json:"authorizedKeysCommandUser,omitempty"`
	PubkeyAuthentication      *Directive `json:"pubkeyAuthentication,omitempty"`
	AuthorizedKeysFile        *Directive `json:"authorizedKeysFile,omitempty"`
	// The same keywords inside Match blocks (other than Match all).
	InMatch []*Directive `json:"inMatch,omitempty"`
	// kaginashi's own lines.
	Managed []*Directive `json:"managed,omitempty"`

	Conflicts []Conflict `json:"conflicts,omitempty"`
	Warnings  []string   `json:"warnings,omitempty"`
	Recorded  bool       `json:"recorded"` // Setup's record is in StateDir
}

// Report says what Setup or Remove did (or, with DryRun, would do).
type Report struct {
	DryRun        bool      `json:"dryRun"`
	ConfigPath    string    `json:"configPath"`
	Mechanism     Mechanism `json:"mechanism,omitempty"`
	File          string    `json:"file,omitempty"` // the file with kaginashi's lines
	Changed       bool      `json:"changed"`
	Actions       []string  `json:"actions"`
	Warnings      []string  `json:"warnings,omitempty"`
	Diff          string    `json:"diff,omitempty"`
	UserCreated   bool      `json:"userCreated,omitempty"`
	Validated     bool      `json:"validated,omitempty"`
	Reload        string    `json:"reload,omitempty"`
	ByteIdentical bool      `json:"byteIdentical,omitempty"` // Remove: the main file is back to its exact bytes before Setup
}

// String is the report for people: the plan or what was done, warnings, and
// the diff.
func (r *Report) String() string {
	var b strings.Builder
	switch {
	case r.DryRun:
		b.WriteString("Dry run: nothing was changed. Plan:\n")
	case r.Changed:
		b.WriteString("Done:\n")
	}
	for _, a := range r.Actions {
		b.WriteString("  - " + a + "\n")
	}
	if r.Reload != "" {
		b.WriteString("  - " + r.Reload + "\n")
	}
	for _, w := range r.Warnings {
		b.WriteString("warning: " + w + "\n")
	}
	if r.Diff != "" {
		b.WriteString("\n" + r.Diff)
	}
	return b.String()
}

// RefusedError is returned when Setup will not touch the configuration.
// Nothing was changed.
type RefusedError struct{ Reasons []string }

func (e *RefusedError) Error() string {
	return "setup-sshd refused; nothing was changed:\n  - " + strings.Join(e.Reasons, "\n  - ")
}

// ValidationError is returned when `sshd -t` rejected the new configuration;
// every file was put back as it was.
type ValidationError struct {
	Err         error
	RollbackErr error
}

func (e *ValidationError) Error() string {
	if e.RollbackErr != nil {
		return fmt.Sprintf("sshd rejected the new configuration (%v), and putting the old files back failed: %v", e.Err, e.RollbackErr)
	}
	return fmt.Sprintf("sshd rejected the new configuration, so every file was put back as it was: %v", e.Err)
}

func (e *ValidationError) Unwrap() error { return e.Err }

// analysis is the configuration as it is now.
type analysis struct {
	cfg        *config
	main       []byte
	mainMeta   fileMeta
	includeDir string // sshd_config.d of an active Include before any Match; "" if none
	conflicts  []Conflict
	warnings   []string
}

func analyze(o *Options) (*analysis, error) {
	fi, err := os.Stat(o.real(o.ConfigPath))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w (is openssh-server installed?)", o.ConfigPath, err)
	}
	a := &analysis{mainMeta: metaOf(fi)}
	if a.main, err = os.ReadFile(o.real(o.ConfigPath)); err != nil {
		return nil, err
	}
	a.cfg, err = parseConfig(rootFS{o.Root}, o.ConfigPath)
	if err != nil {
		return a, fmt.Errorf("parse sshd configuration: %w", err)
	}
	a.warnings = append(a.warnings, a.cfg.Warnings...)
	a.includeDir = includeDir(a.cfg)
	if a.includeDir == "" {
		d := path.Join(path.Dir(o.ConfigPath), "sshd_config.d")
		if m, _ := filepath.Glob(globEscape(o.real(d)) + "/*.conf"); len(m) > 0 {
			a.warnings = append(a.warnings, fmt.Sprintf("%s has *.conf files but %s does not Include them (before any Match block): sshd ignores them (Amazon Linux 2023 ships like this)", d, o.ConfigPath))
		}
	}
	a.conflicts, a.warnings = configConflicts(a.cfg, a.warnings)
	a.conflicts = append(a.conflicts, scanSystemd(o.Root, o.SystemdDirs)...)
	return a, nil
}

// includeDir returns the directory of the main file's first active
// "Include .../sshd_config.d/*.conf" before any Match block (vendor
// directories under /usr are never written to).
func includeDir(cfg *config) string {
	for _, d := range cfg.Directives {
		if d.depth != 0 {
			continue
		}
		if d.key == "match" {
			return ""
		}
		if d.key != "include" || d.Managed {
			continue
		}
		for _, a := range d.args {
			p := a
			if !strings.HasPrefix(p, "/") {
				p = sshdDir + "/" + p
			}
			p = path.Clean(p)
			if path.Base(p) == "*.conf" && path.Base(path.Dir(p)) == "sshd_config.d" && !strings.HasPrefix(p, "/usr/") {
				return path.Dir(p)
			}
		}
	}
	return ""
}

var akcUserKeys = []string{"authorizedkeyscommanduser", "authorizedkeyscommandrunas"}

func isAKCUser(key string) bool { return key == akcUserKeys[0] || key == akcUserKeys[1] }

func scopeText(d *Directive) string {
	if d.Match == "" {
		return ""
	}
	return fmt.Sprintf(" (inside \"Match %s\")", d.Match)
}

// configConflicts finds what in sshd_config stops Setup, and what only
// deserves a warning.
func configConflicts(cfg *config, warnings []string) ([]Conflict, []string) {
	var out []Conflict
	for _, d := range cfg.Directives {
		if d.Managed {
			continue
		}
		switch {
		case d.key == "authorizedkeyscommand":
			if strings.EqualFold(d.Value, "none") {
				if !d.Global() {
					warnings = append(warnings, fmt.Sprintf("%s: AuthorizedKeysCommand none%s: users matching it get no kaginashi keys", d.where(), scopeText(d)))
				}
				continue
			}
			out = append(out, Conflict{
				File: d.File, Line: d.Line, Keyword: d.Keyword, Value: d.Value, Match: d.Match, Source: "sshd_config",
				Message: fmt.Sprintf("%s already sets AuthorizedKeysCommand %s%s. sshd runs only one AuthorizedKeysCommand and setup-sshd never replaces an administrator's: "+
					"if kaginashi should take its place, remove or comment out that line yourself and run setup-sshd again; otherwise keep it and do not use kaginashi on this host",
					d.where(), d.Value, scopeText(d)),
			})
		case isAKCUser(d.key):
			if !d.Global() {
				warnings = append(warnings, fmt.Sprintf("%s: %s %s%s: for users matching it sshd would run kaginashi's command as that user", d.where(), d.Keyword, d.Value, scopeText(d)))
			}
		case d.key == "pubkeyauthentication" && !d.Global() && strings.EqualFold(firstArg(d), "no"):
			warnings = append(warnings, fmt.Sprintf("%s: PubkeyAuthentication no%s: users matching it cannot log in with kaginashi keys", d.where(), scopeText(d)))
		}
	}
	if d := cfg.effective("pubkeyauthentication"); d != nil && strings.EqualFold(firstArg(d), "no") {
		out = append(out, Conflict{
			File: d.File, Line: d.Line, Keyword: d.Keyword, Value: d.Value, Source: "sshd_config",
			Message: fmt.Sprintf("%s sets PubkeyAuthentication no: kaginashi keys are public keys, and setup-sshd does not turn public-key authentication on by itself. "+
				"Set PubkeyAuthentication yes there (or remove the line) and run setup-sshd again", d.where()),
		})
	}
	return out, warnings
}

func firstArg(d *Directive) string {
	if len(d.args) == 0 {
		return ""
	}
	return d.args[0]
}

func effectiveUser(cfg *config) *Directive {
	for _, d := range cfg.Directives {
		if isAKCUser(d.key) && d.Global() {
			return d
		}
	}
	return nil
}

// Inspect reports, without changing anything, whether sshd is set up for
// kaginashi, how, what stands in the way, and which OpenSSH it is.
func Inspect(o Options) (*State, error) {
	o.defaults()
	st := &State{ConfigPath: o.ConfigPath}
	if sshd, err := findSSHD(&o); err == nil {
		st.SSHD = sshd
		var major, minor int
		st.SSHDVersion, major, minor = sshdVersion(&o)
		st.IncludeSupported = major > 7 || (major == 7 && minor >= 3)
	}
	if _, err := os.Stat(o.real(recordPath(&o, ".json"))); err == nil {
		st.Recorded = true
	}
	a, err := analyze(&o)
	if a == nil {
		return st, err
	}
	if a.cfg != nil {
		fillState(st, &o, a)
	}
	return st, err
}

func fillState(st *State, o *Options, a *analysis) {
	cfg := a.cfg
	st.Files = cfg.Files
	if st.SSHDVersion == "" && len(cfg.all("include")) > 0 {
		st.IncludeSupported = true
	}
	st.IncludeDir = a.includeDir
	st.Planned = MechanismBlock
	if a.includeDir != "" && (st.SSHDVersion == "" || st.IncludeSupported) {
		st.Planned = MechanismDropIn
		st.DropInPath = path.Join(a.includeDir, DropInName)
	}
	st.AuthorizedKeysCommand = cfg.effective("authorizedkeyscommand")
	st.AuthorizedKeysCommandUser = effectiveUser(cfg)
	st.PubkeyAuthentication = cfg.effective("pubkeyauthentication")
	st.AuthorizedKeysFile = cfg.effective("authorizedkeysfile")
	for _, d := range cfg.Directives {
		switch {
		case d.key == "authorizedkeyscommand", isAKCUser(d.key), d.key == "pubkeyauthentication", d.key == "authorizedkeysfile":
			if !d.Global() {
				st.InMatch = append(st.InMatch, d)
			}
			if d.Managed {
				st.Managed = append(st.Managed, d)
				if d.File == o.ConfigPath {
					st.Mechanism = MechanismBlock
				} else if path.Base(d.File) == DropInName {
					st.Mechanism = MechanismDropIn
					st.DropInPath = d.File
				}
			}
		}
	}
	st.Configured = st.AuthorizedKeysCommand != nil && st.AuthorizedKeysCommand.Managed &&
		st.AuthorizedKeysCommandUser != nil && st.AuthorizedKeysCommandUser.Managed
	// An admin may wire sshd to the agent by hand (configuration
	// management often owns sshd_config): that works as well, and the
	// inventory must not report such a host as unconfigured.
	st.HandWired = !st.Configured && isAgentCommand(st.AuthorizedKeysCommand) && st.AuthorizedKeysCommandUser != nil
	st.Configured = st.Configured || st.HandWired
	st.Conflicts = a.conflicts
	st.Warnings = a.warnings
}

// isAgentCommand: d is a global AuthorizedKeysCommand that runs
// `kaginashi-agent authorized-keys` or `kaginashi-authorized-keys
// authorized-keys`.
func isAgentCommand(d *Directive) bool {
	return d != nil && d.Global() && IsAuthorizedKeysCommand(d.args)
}

// record is what Setup leaves in StateDir for Remove.
type record struct {
	Version        int       `json:"version"`
	ConfigPath     string    `json:"configPath"`
	Mechanism      Mechanism `json:"mechanism"`
	OriginalSHA256 string    `json:"originalSha256"` // the main file without kaginashi's block (kept next to this file, *.orig)
	AfterSHA256    string    `json:"afterSha256"`    // the main file as Setup left it
	DropIn         string    `json:"dropIn,omitempty"`
	DropInSHA256   string    `json:"dropInSha256,omitempty"`
	CreatedDirs    []string  `json:"createdDirs,omitempty"`
	CreatedUser    string    `json:"createdUser,omitempty"`
	Command        string    `json:"command"`
	User           string    `json:"user"`
	Time           time.Time `json:"time"`
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// recordPath is the logical path of the record for o.ConfigPath, with ext
// ".json" (the record) or ".orig" (the original bytes of the main file).
func recordPath(o *Options, ext string) string {
	return path.Join(o.StateDir, "setup-sshd-"+sha([]byte(o.ConfigPath))[:12]+ext)
}

func readRecord(o *Options) (*record, []byte, error) {
	b, err := os.ReadFile(o.real(recordPath(o, ".json")))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	var r record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", recordPath(o, ".json"), err)
	}
	orig, err := os.ReadFile(o.real(recordPath(o, ".orig")))
	if err != nil || sha(orig) != r.OriginalSHA256 {
		orig = nil // missing or damaged: Remove falls back to removing the block
	}
	return &r, orig, nil
}

func writeRecord(o *Options, r *record, orig []byte) error {
	if err := os.MkdirAll(o.real(o.StateDir), 0o700); err != nil {
		return err
	}
	m := fileMeta{mode: 0o600, uid: -1, gid: -1}
	if err := writeAtomic(o.real(recordPath(o, ".orig")), orig, m); err != nil {
		return err
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return writeAtomic(o.real(recordPath(o, ".json")), append(b, '\n'), m)
}

func deleteRecord(o *Options) error {
	var errs []error
	for _, ext := range []string{".json", ".orig"} {
		if err := os.Remove(o.real(recordPath(o, ext))); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// lock serializes Setup and Remove on one host.
func lock(o *Options) (func(), error) {
	return lockFile(o.real(path.Join(o.StateDir, "setup-sshd.lock")))
}

// lockFile takes an exclusive flock on the file at p (made, with its
// directory, if missing) and returns its release.
func lockFile(p string) (func(), error) {
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(p, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, err
	}
	return func() { syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
}

func readMaybe(o *Options, p string) ([]byte, fileMeta, bool, error) {
	fi, err := os.Stat(o.real(p))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fileMeta{}, false, nil
	}
	if err != nil {
		return nil, fileMeta{}, false, err
	}
	b, err := os.ReadFile(o.real(p))
	return b, metaOf(fi), err == nil, err
}

func diffOf(changes []change) string {
	var b strings.Builder
	for _, c := range changes {
		old := c.old
		if !c.existed {
			old = nil
		} else if old == nil {
			old = []byte{}
		}
		b.WriteString(unifiedDiff(c.path, old, c.new))
	}
	return b.String()
}

// Setup configures sshd for kaginashi. See the package documentation.
func Setup(ctx context.Context, o Options) (*Report, error) {
	o.defaults()
	if err := o.checkSyntax(); err != nil {
		return nil, err
	}
	if !o.DryRun {
		unlock, err := lock(&o)
		if err != nil {
			return nil, fmt.Errorf("setup-sshd: state directory: %w", err)
		}
		defer unlock()
	}
	rep := &Report{DryRun: o.DryRun, ConfigPath: o.ConfigPath}
	a, err := analyze(&o)
	if err != nil {
		return rep, err
	}
	rep.Warnings = append(rep.Warnings, a.warnings...)
	var refusals []string
	for _, c := range a.conflicts {
		refusals = append(refusals, c.Message)
	}
	if o.DryRun && o.InstallPending {
		// The caller installs the binary there before a real run, and
		// that run checks the path.
		rep.Warnings = append(rep.Warnings, o.CommandPath+" is not installed yet (a real run installs it first); sshd's path rule is checked then")
	} else {
		pathWarnings, err := checkCommandPath(o.Root, o.CommandPath)
		if err != nil {
			refusals = append(refusals, err.Error())
		}
		rep.Warnings = append(rep.Warnings, pathWarnings...)
	}
	if len(refusals) > 0 {
		return rep, &RefusedError{Reasons: refusals}
	}

	// Plan from the main file without any block of ours.
	clean, _ := removeBlocks(a.main)
	lines := o.lines()
	var changes []change
	var mkdirs []string
	mainChange := func(b []byte) {
		if !bytes.Equal(b, a.main) {
			changes = append(changes, change{path: o.ConfigPath, old: a.main, existed: true, new: b, meta: a.mainMeta})
		}
	}
	rep.Mechanism = MechanismBlock
	if a.includeDir != "" {
		if _, major, minor := sshdVersion(&o); major == 0 || major > 7 || (major == 7 && minor >= 3) {
			rep.Mechanism = MechanismDropIn
		}
	}
	var dropIn string
	if a.includeDir != "" {
		dropIn = path.Join(a.includeDir, DropInName)
	}
	switch rep.Mechanism {
	case MechanismBlock:
		rep.File = o.ConfigPath
		newMain := insertBlock(clean, blockText(lines))
		if back, _ := removeBlocks(newMain); !bytes.Equal(back, clean) {
			return rep, fmt.Errorf("setup-sshd: internal error: removing the block would not restore %s exactly; nothing was changed", o.ConfigPath)
		}
		mainChange(newMain)
		if dropIn != "" { // a drop-in of ours from before: the block replaces it
			if old, m, ok, _ := readMaybe(&o, dropIn); ok && hasMarker(old) {
				changes = append(changes, change{path: dropIn, old: old, existed: true, meta: m})
			}
		}
	case MechanismDropIn:
		rep.File = dropIn
		mainChange(clean) // a block of ours from before: the drop-in replaces it
		want := dropInText(lines)
		old, m, exists, err := readMaybe(&o, dropIn)
		if err != nil {
			return rep, err
		}
		if exists && !hasMarker(old) {
			return rep, &RefusedError{Reasons: []string{fmt.Sprintf("%s exists and was not written by setup-sshd: move it away (or merge it into another file) and run setup-sshd again", dropIn)}}
		}
		if !exists {
			m = fileMeta{mode: a.mainMeta.mode & 0o644, uid: a.mainMeta.uid, gid: a.mainMeta.gid}
			if m.mode == 0 {
				m.mode = 0o600
			}
			// Create the directory (and any missing parent), top down.
			for d := a.includeDir; d != "/"; d = path.Dir(d) {
				if _, err := os.Stat(o.real(d)); !errors.Is(err, fs.ErrNotExist) {
					break
				}
				mkdirs = append([]string{d}, mkdirs...)
			}
		}
		if !exists || !bytes.Equal(old, want) {
			changes = append(changes, change{path: dropIn, old: old, existed: exists, new: want, meta: m})
		}
	}

	// Parse the configuration as it would be, and check that our lines are
	// the ones sshd uses.
	ov := overlayFS{base: rootFS{o.Root}, files: map[string][]byte{}}
	for _, c := range changes {
		ov.files[c.path] = c.new
	}
	sim, err := parseConfig(ov, o.ConfigPath)
	if err != nil {
		return rep, fmt.Errorf("setup-sshd: parse the new configuration: %w", err)
	}
	if reasons := checkEffective(sim, &o, rep.File); len(reasons) > 0 {
		return rep, &RefusedError{Reasons: reasons}
	}
	rep.Diff = diffOf(changes)

	exists, err := userExists(&o, o.User)
	if err != nil {
		return rep, fmt.Errorf("setup-sshd: look up user %s: %w", o.User, err)
	}
	prev, _, err := readRecord(&o)
	if err != nil && !o.DryRun {
		rep.Warnings = append(rep.Warnings, "ignoring unreadable record: "+err.Error())
		prev = nil
	}

	if len(changes) == 0 {
		rep.Actions = append(rep.Actions, fmt.Sprintf("sshd is already set up for kaginashi (%s, %s): nothing to change", rep.Mechanism, rep.File))
	}
	for _, d := range mkdirs {
		rep.Actions = append(rep.Actions, "create directory "+d+" (sshd includes *.conf from it)")
	}
	for _, c := range changes {
		switch {
		case c.new == nil:
			rep.Actions = append(rep.Actions, "delete "+c.path+" (kaginashi's, replaced)")
		case c.path == o.ConfigPath && rep.Mechanism == MechanismDropIn:
			rep.Actions = append(rep.Actions, "remove kaginashi's old block from "+c.path)
		case c.path == o.ConfigPath:
			rep.Actions = append(rep.Actions, fmt.Sprintf("insert a marked block at line %d of %s, before every Match block: %s", bytes.Count(clean[:insertionPoint(clean)], []byte("\n"))+1, c.path, strings.Join(lines, "; ")))
		default:
			rep.Actions = append(rep.Actions, fmt.Sprintf("write %s: %s", c.path, strings.Join(lines, "; ")))
		}
	}
	if !exists {
		rep.Actions = append(rep.Actions, "create the system user "+o.User+" (no login shell, no home, locked)")
	}
	if len(changes) > 0 {
		rep.Actions = append(rep.Actions, "validate with sshd -t -f "+o.ConfigPath+" (and put every file back if it fails)", "reload sshd")
	}
	if o.DryRun {
		return rep, nil
	}

	createUser := func() error {
		if exists {
			return nil
		}
		create := o.CreateUser
		if create == nil {
			if o.Root != "" {
				return errors.New("Root is set but CreateUser is not: refusing to add a user to this machine")
			}
			create = defaultCreateUser
		}
		if err := create(ctx, o.User); err != nil {
			return fmt.Errorf("create user %s: %w", o.User, err)
		}
		rep.UserCreated = true
		return nil
	}

	// The record first: whatever happens next, Remove can undo it.
	rec := &record{Version: 1, ConfigPath: o.ConfigPath, Mechanism: rep.Mechanism, OriginalSHA256: sha(clean),
		Command: o.command(), User: o.User, Time: time.Now().UTC()}
	after := a.main
	for _, c := range changes {
		if c.path == o.ConfigPath {
			after = c.new
		}
	}
	rec.AfterSHA256 = sha(after)
	if rep.Mechanism == MechanismDropIn {
		rec.DropIn, rec.DropInSHA256 = dropIn, sha(dropInText(lines))
	}
	if prev != nil {
		for _, d := range prev.CreatedDirs {
			if _, err := os.Stat(o.real(d)); err == nil {
				rec.CreatedDirs = append(rec.CreatedDirs, d)
			}
		}
		rec.CreatedUser = prev.CreatedUser
	}
	rec.CreatedDirs = append(rec.CreatedDirs, mkdirs...)
	if !exists {
		rec.CreatedUser = o.User
	}
	if len(changes) == 0 {
		if err := createUser(); err != nil {
			return rep, fmt.Errorf("setup-sshd: %w", err)
		}
		if prev == nil || prev.AfterSHA256 != rec.AfterSHA256 || prev.CreatedUser != rec.CreatedUser {
			if err := writeRecord(&o, rec, clean); err != nil {
				return rep, fmt.Errorf("setup-sshd: record state: %w", err)
			}
			rep.Actions = append(rep.Actions, "recorded the current state in "+o.StateDir)
		}
		return rep, nil
	}
	prevJSON, _ := os.ReadFile(o.real(recordPath(&o, ".json")))
	prevOrig, _ := os.ReadFile(o.real(recordPath(&o, ".orig")))
	restoreRecord := func() {
		if prev == nil {
			deleteRecord(&o)
			return
		}
		m := fileMeta{mode: 0o600, uid: -1, gid: -1}
		writeAtomic(o.real(recordPath(&o, ".orig")), prevOrig, m)
		writeAtomic(o.real(recordPath(&o, ".json")), prevJSON, m)
	}
	if err := writeRecord(&o, rec, clean); err != nil {
		return rep, fmt.Errorf("setup-sshd: record state: %w", err)
	}

	tx := &transaction{root: o.Root}
	fail := func(err error) (*Report, error) {
		rbErr := tx.rollback()
		restoreRecord()
		if rbErr != nil {
			return rep, fmt.Errorf("setup-sshd: %v; rolling back also failed: %w", err, rbErr)
		}
		return rep, fmt.Errorf("setup-sshd: %w (every file was put back)", err)
	}
	for _, d := range mkdirs {
		if err := tx.mkdir(d, fileMeta{mode: 0o755, uid: a.mainMeta.uid, gid: a.mainMeta.gid}); err != nil {
			return fail(err)
		}
	}
	for _, c := range changes {
		if err := tx.apply(c); err != nil {
			return fail(err)
		}
	}
	if err := validate(ctx, &o, o.real(o.ConfigPath)); err != nil {
		rbErr := tx.rollback()
		restoreRecord()
		return rep, &ValidationError{Err: err, RollbackErr: rbErr}
	}
	// sshd -t does not need the user; logins do. Create it only now, so a
	// rejected configuration leaves nothing behind.
	if err := createUser(); err != nil {
		return fail(err)
	}
	rep.Changed, rep.Validated = true, true
	msg, err := reload(ctx, &o, sim)
	rep.Reload = msg
	if err != nil {
		return rep, fmt.Errorf("setup-sshd: the new configuration is in place and valid, but reloading sshd failed: %w; reload it yourself (systemctl reload ssh or sshd)", err)
	}
	return rep, nil
}

// checkEffective explains why, in the configuration sim, sshd would not use
// kaginashi's lines for every connection.
func checkEffective(sim *config, o *Options, file string) []string {
	var reasons []string
	if d := sim.effective("authorizedkeyscommand"); d == nil || !d.Managed || d.Value != o.command() {
		if d != nil && !d.Managed {
			reasons = append(reasons, fmt.Sprintf("%s sets AuthorizedKeysCommand %s and sshd reads it before %s (the first value wins): remove it and run setup-sshd again", d.where(), d.Value, file))
		} else {
			reasons = append(reasons, fmt.Sprintf("kaginashi's AuthorizedKeysCommand in %s would not be the one sshd uses", file))
		}
	}
	if d := effectiveUser(sim); d == nil || !d.Managed || firstArg(d) != o.User {
		if d != nil && !d.Managed {
			reasons = append(reasons, fmt.Sprintf("%s sets %s %s and sshd reads it before %s (the first value wins), so kaginashi's command would run as %s: remove that line (or set it to %s) and run setup-sshd again", d.where(), d.Keyword, d.Value, file, firstArg(d), o.User))
		} else {
			reasons = append(reasons, fmt.Sprintf("kaginashi's AuthorizedKeysCommandUser in %s would not be the one sshd uses", file))
		}
	}
	return reasons
}

func reload(ctx context.Context, o *Options, cfg *config) (string, error) {
	if o.Reload != nil {
		if err := o.Reload(ctx); err != nil {
			return "", err
		}
		return "reloaded sshd", nil
	}
	if o.Root != "" {
		return "not reloading: Root is set (test mode)", nil
	}
	pid := ""
	if d := cfg.effective("pidfile"); d != nil {
		pid = firstArg(d)
	}
	return defaultReload(ctx, pid)
}

// Remove undoes Setup. See the package documentation.
func Remove(ctx context.Context, o Options) (*Report, error) {
	o.defaults()
	if !o.DryRun {
		unlock, err := lock(&o)
		if err != nil {
			return nil, fmt.Errorf("setup-sshd --remove: state directory: %w", err)
		}
		defer unlock()
	}
	rep := &Report{DryRun: o.DryRun, ConfigPath: o.ConfigPath, File: o.ConfigPath}
	rec, orig, err := readRecord(&o)
	if err != nil {
		rep.Warnings = append(rep.Warnings, "ignoring unreadable record: "+err.Error())
		rec = nil
	}
	if rec != nil && orig == nil {
		rep.Warnings = append(rep.Warnings, "the saved original of "+o.ConfigPath+" is missing or damaged: removing only kaginashi's block")
	}
	var changes []change
	main, mainMeta, mainExists, err := readMaybe(&o, o.ConfigPath)
	if err != nil {
		return rep, err
	}
	if mainExists {
		newMain := main
		switch cleaned, n := removeBlocks(main); {
		case rec != nil && orig != nil && sha(main) == rec.AfterSHA256:
			newMain = orig
			rep.ByteIdentical = true
			if !bytes.Equal(main, orig) {
				rep.Actions = append(rep.Actions, fmt.Sprintf("restore %s byte for byte from %s (sha256 %s)", o.ConfigPath, recordPath(&o, ".orig"), rec.OriginalSHA256[:16]))
			}
		case n > 0:
			newMain = cleaned
			if rec != nil && sha(cleaned) == rec.OriginalSHA256 {
				rep.ByteIdentical = true
				rep.Actions = append(rep.Actions, "remove kaginashi's block from "+o.ConfigPath+" (the file is then byte-identical to before setup-sshd)")
			} else {
				rep.Actions = append(rep.Actions, "remove kaginashi's block from "+o.ConfigPath)
				if rec != nil {
					rep.Warnings = append(rep.Warnings, o.ConfigPath+" was changed since setup-sshd besides kaginashi's block: removed only the block and kept the other changes")
				}
			}
		case rec != nil && sha(main) == rec.OriginalSHA256:
			rep.ByteIdentical = true
		}
		if !bytes.Equal(newMain, main) {
			changes = append(changes, change{path: o.ConfigPath, old: main, existed: true, new: newMain, meta: mainMeta})
		}
	}

	// Drop-ins: the recorded one and the one the configuration points at.
	var dropIns []string
	if rec != nil && rec.DropIn != "" {
		dropIns = append(dropIns, rec.DropIn)
	}
	if mainExists {
		if cfg, err := parseConfig(rootFS{o.Root}, o.ConfigPath); err == nil {
			if d := includeDir(cfg); d != "" {
				dropIns = append(dropIns, path.Join(d, DropInName))
			}
		}
	}
	deleted := map[string]bool{}
	for _, p := range dropIns {
		if deleted[p] {
			continue
		}
		data, m, ok, err := readMaybe(&o, p)
		if err != nil {
			return rep, err
		}
		if !ok {
			continue
		}
		if !hasMarker(data) {
			rep.Warnings = append(rep.Warnings, p+" has no kaginashi marker any more: left alone")
			continue
		}
		if rec != nil && rec.DropIn == p && sha(data) != rec.DropInSHA256 {
			rep.Warnings = append(rep.Warnings, p+" was edited since setup-sshd; deleting it anyway (it is kaginashi's file)")
		}
		deleted[p] = true
		changes = append(changes, change{path: p, old: data, existed: true, meta: m})
		rep.Actions = append(rep.Actions, "delete "+p)
	}
	var rmdirs []string
	if rec != nil {
		for i := len(rec.CreatedDirs) - 1; i >= 0; i-- {
			d := rec.CreatedDirs[i]
			ents, err := os.ReadDir(o.real(d))
			if err != nil {
				continue
			}
			empty := true
			for _, e := range ents {
				if !deleted[path.Join(d, e.Name())] {
					empty = false
				}
			}
			if empty {
				rmdirs = append(rmdirs, d)
				deleted[d] = true // its parent may go too
				rep.Actions = append(rep.Actions, "remove directory "+d+" (setup-sshd created it)")
			} else {
				rep.Warnings = append(rep.Warnings, d+" was created by setup-sshd but now holds other files: left in place")
			}
		}
		if rec.CreatedUser != "" {
			rep.Warnings = append(rep.Warnings, fmt.Sprintf("user %s (created by setup-sshd) is left in place; delete it with userdel %s if nothing else uses it", rec.CreatedUser, rec.CreatedUser))
		}
	}
	rep.Diff = diffOf(changes)
	if len(changes) == 0 && len(rmdirs) == 0 {
		rep.Actions = append(rep.Actions, "kaginashi is not set up in "+o.ConfigPath+": nothing to remove")
		if rec != nil && !o.DryRun {
			if err := deleteRecord(&o); err != nil {
				return rep, err
			}
			rep.Actions = append(rep.Actions, "deleted the record in "+o.StateDir)
		}
		return rep, nil
	}
	rep.Actions = append(rep.Actions, "validate with sshd -t -f "+o.ConfigPath+" (and put every file back if it fails)", "reload sshd")
	if o.DryRun {
		return rep, nil
	}
	tx := &transaction{root: o.Root}
	for _, c := range changes {
		if err := tx.apply(c); err != nil {
			rbErr := tx.rollback()
			return rep, errors.Join(fmt.Errorf("setup-sshd --remove: %w", err), rbErr)
		}
	}
	for _, d := range rmdirs {
		if err := tx.rmdir(d); err != nil {
			rbErr := tx.rollback()
			return rep, errors.Join(fmt.Errorf("setup-sshd --remove: %w", err), rbErr)
		}
	}
	if mainExists {
		if _, findErr := findSSHD(&o); o.Validate == nil && findErr != nil {
			rep.Warnings = append(rep.Warnings, "not validated: "+findErr.Error())
		} else if err := validate(ctx, &o, o.real(o.ConfigPath)); err != nil {
			return rep, &ValidationError{Err: err, RollbackErr: tx.rollback()}
		} else {
			rep.Validated = true
		}
	}
	rep.Changed = true
	if err := deleteRecord(&o); err != nil {
		rep.Warnings = append(rep.Warnings, "could not delete the record: "+err.Error())
	}
	var cfg *config
	if mainExists {
		cfg, _ = parseConfig(rootFS{o.Root}, o.ConfigPath)
	}
	if cfg == nil {
		cfg = &config{}
	}
	msg, err := reload(ctx, &o, cfg)
	rep.Reload = msg
	if err != nil {
		return rep, fmt.Errorf("setup-sshd --remove: the configuration is restored and valid, but reloading sshd failed: %w; reload it yourself (systemctl reload ssh or sshd)", err)
	}
	return rep, nil
}
