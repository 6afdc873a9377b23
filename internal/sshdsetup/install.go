package sshdsetup

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
)

// InstallDir is where setup-sshd and install-service install a copy of the
// agent (or of kaginashi-authorized-keys) when the binary they were run from
// sits where sshd or systemd cannot use it: sshd runs an
// AuthorizedKeysCommand only from a root-owned path with no group- or
// world-writable component, and the agent's unit (ProtectHome=yes,
// PrivateTmp=yes) cannot see /home, /root, /tmp, /var/tmp or /run/user.
const InstallDir = "/usr/local/libexec/kaginashi"

// Use names one user of an installed copy: an sshd configuration whose
// AuthorizedKeysCommand runs it, or the systemd unit whose ExecStart does.
type Use string

// SSHDConfigUse is the use of a copy by the sshd configuration whose main
// file is configPath.
func SSHDConfigUse(configPath string) Use { return Use("sshd_config " + configPath) }

// UnitUse is the use of a copy by the systemd unit file unitPath.
func UnitUse(unitPath string) Use { return Use("systemd-unit " + unitPath) }

func (u Use) split() (kind, p string) {
	kind, p, _ = strings.Cut(string(u), " ")
	return kind, p
}

// Installer installs copies into InstallDir and keeps, in its use record, which
// sshd configurations and units use each copy, so that undoing one of them
// deletes a copy only when nothing else still runs it. Both setup-sshd and
// install-service use the same record (DATA_DIR/sshd-setup/installed-command).
type Installer struct {
	// Record is the use record's path (an older agent wrote one installed
	// path a line there; such entries have no known user). Like every path
	// here it is taken under Root.
	Record string
	// StateDir holds setup-sshd's per-configuration records: each names a
	// configuration to check before a copy is deleted, in case the use
	// record is stale or older than this code.
	StateDir string
	// Dir is the install directory; default InstallDir. Tests change it.
	Dir string
	// Root is a test hook: the prefix of every absolute path probed for
	// ownership and modes, as in Options.Root.
	Root string
}

func (in *Installer) dir() string {
	if in.Dir == "" {
		return InstallDir
	}
	return in.Dir
}

// installable are the only files the installer writes and so the only ones
// it ever deletes, whatever the record says.
func (in *Installer) installable(p string) bool {
	return p == path.Join(in.dir(), AgentBinary) || p == path.Join(in.dir(), AKCBinary)
}

// Owns says whether p is a copy the installer manages (a file of
// InstallDir named kaginashi-agent or kaginashi-authorized-keys).
func (in *Installer) Owns(p string) bool { return in.installable(p) }

// Target is where a copy of src goes: kaginashi-authorized-keys keeps its
// name; anything else is the agent, whatever its file is called (say,
// kaginashi-agent-1.4 or a download with a suffix).
func (in *Installer) Target(src string) string {
	if filepath.Base(src) == AKCBinary {
		return path.Join(in.dir(), AKCBinary)
	}
	return path.Join(in.dir(), AgentBinary)
}

// useRecord is the record's JSON form.
type useRecord struct {
	Version int `json:"version"`
	// Copies maps an installed path to its users (nil: unknown, an older
	// agent's record).
	Copies map[string][]Use `json:"copies"`
	// CreatedDirs are the directories the installer created, parents
	// first: removed, children first, once empty.
	CreatedDirs []string `json:"createdDirs,omitempty"`
}

func (in *Installer) read() (*useRecord, error) {
	r := &useRecord{Version: 2, Copies: map[string][]Use{}}
	b, err := os.ReadFile(in.real(in.Record))
	if errors.Is(err, fs.ErrNotExist) {
		return r, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", in.Record, err)
	}
	if t := strings.TrimSpace(string(b)); strings.HasPrefix(t, "{") {
		if err := json.Unmarshal(b, r); err != nil {
			return nil, fmt.Errorf("%s: %w", in.Record, err)
		}
		if r.Copies == nil {
			r.Copies = map[string][]Use{}
		}
	} else {
		// An older agent's marker: installed paths, one a line, users
		// unknown.
		for _, l := range strings.Split(t, "\n") {
			if l = strings.TrimSpace(l); in.installable(l) {
				r.Copies[l] = r.Copies[l]
			}
		}
		if len(r.Copies) > 0 {
			// The older setup-sshd removed its directory when empty;
			// whether it made /usr/local/libexec is unknown, so that stays.
			r.CreatedDirs = []string{in.dir()}
		}
	}
	// Only what the installer could have written counts.
	for p := range r.Copies {
		if !in.installable(p) {
			delete(r.Copies, p)
		}
	}
	r.CreatedDirs = slices.DeleteFunc(r.CreatedDirs, func(d string) bool {
		if !path.IsAbs(d) || path.Clean(d) != d || d == "/" {
			return true
		}
		return d != in.dir() && !strings.HasPrefix(in.dir(), d+"/")
	})
	return r, nil
}

func (in *Installer) write(r *useRecord) error {
	if len(r.Copies) == 0 && len(r.CreatedDirs) == 0 {
		if err := os.Remove(in.real(in.Record)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(in.real(in.Record)), 0o700); err != nil {
		return err
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return writeAtomic(in.real(in.Record), append(b, '\n'), fileMeta{mode: 0o600, uid: -1, gid: -1})
}

// lock serializes installers on one host (setup-sshd and install-service
// may run at once).
func (in *Installer) lock() (func(), error) {
	return lockFile(in.real(in.Record) + ".lock")
}

// Install copies src to dst (one of the installable paths) for use and
// records the use. src == dst records the use only (the binary already runs
// from there). It reports whether the use is new, so a caller whose next
// step fails can Release it again.
func (in *Installer) Install(src, dst string, use Use) (added bool, err error) {
	if !in.installable(dst) {
		return false, fmt.Errorf("install %s: not one of the paths kaginashi installs to (%s/{%s,%s})", dst, in.dir(), AgentBinary, AKCBinary)
	}
	unlock, err := in.lock()
	if err != nil {
		return false, fmt.Errorf("use record: %w", err)
	}
	defer unlock()
	r, err := in.read()
	if err != nil {
		return false, err
	}
	if src != dst {
		// Parents first, so --remove can take back exactly these.
		var created []string
		for d := in.dir(); d != "/" && d != "."; d = path.Dir(d) {
			if _, err := os.Stat(in.real(d)); !errors.Is(err, fs.ErrNotExist) {
				break
			}
			created = append([]string{d}, created...)
		}
		if err := InstallCopy(src, in.real(dst)); err != nil {
			for i := len(created) - 1; i >= 0; i-- {
				os.Remove(in.real(created[i]))
			}
			return false, fmt.Errorf("install %s as %s: %w", src, dst, err)
		}
		for _, d := range created {
			if !slices.Contains(r.CreatedDirs, d) {
				r.CreatedDirs = append(r.CreatedDirs, d)
			}
		}
	}
	users := r.Copies[dst]
	if !slices.Contains(users, use) {
		r.Copies[dst] = append(users, use)
		added = true
	}
	if err := in.write(r); err != nil {
		return added, fmt.Errorf("record the use of %s: %w", dst, err)
	}
	return added, nil
}

func (in *Installer) real(p string) string {
	if in.Root == "" {
		return p
	}
	return filepath.Join(in.Root, p)
}

// Released says what Release did (or, with dryRun, would do).
type Released struct {
	Deleted []string // copies deleted (nothing names them any more)
	Kept    []string // "PATH (used by ...)" for people
	RmDirs  []string // directories removed (the installer created them, and they are empty)
}

// Actions are Released's lines for people.
func (r Released) Actions(dryRun bool) []string {
	del, rm, keep := "delete ", "remove directory ", "keep "
	if dryRun {
		del, rm, keep = "would delete ", "would remove directory ", "would keep "
	}
	var out []string
	for _, p := range r.Deleted {
		out = append(out, del+p+" (installed by kaginashi; nothing else uses it)")
	}
	for _, d := range r.RmDirs {
		out = append(out, rm+d+" (kaginashi created it; now empty)")
	}
	for _, k := range r.Kept {
		out = append(out, keep+k)
	}
	return out
}

// Release drops use from every copy's users. A copy left with no users is
// deleted unless something still names it: a remaining managed sshd
// configuration (any of setup-sshd's records in StateDir, the default
// /etc/ssh/sshd_config, and every configuration the record names) or a
// remaining unit file the record names (and the default unit) — the record
// may be stale or an older agent's. Directories the installer created go
// when empty. With dryRun nothing changes.
func (in *Installer) Release(use Use, dryRun bool) (Released, error) {
	var out Released
	if !dryRun {
		unlock, err := in.lock()
		if err != nil {
			return out, fmt.Errorf("use record: %w", err)
		}
		defer unlock()
	}
	r, err := in.read()
	if err != nil {
		return out, err
	}
	configs, units := in.probes(r)
	paths := make([]string, 0, len(r.Copies))
	for p := range r.Copies {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	for _, p := range paths {
		// A recorded user whose file is gone or no longer runs the copy
		// (undone by hand) does not keep it.
		users := slices.DeleteFunc(slices.Clone(r.Copies[p]), func(u Use) bool { return u == use || in.stale(u, p) })
		if len(users) == 0 {
			// The safety net: whatever the record says, a copy that a
			// configuration or unit still runs stays.
			for _, c := range configs {
				if u := SSHDConfigUse(c); u != use && in.configNames(c, p) {
					users = append(users, u)
				}
			}
			for _, f := range units {
				if u := UnitUse(f); u != use && in.unitNames(f, p) {
					users = append(users, u)
				}
			}
		}
		if len(users) > 0 {
			r.Copies[p] = users
			names := make([]string, len(users))
			for i, u := range users {
				names[i] = string(u)
			}
			out.Kept = append(out.Kept, fmt.Sprintf("%s (still used by %s)", p, strings.Join(names, ", ")))
			continue
		}
		out.Deleted = append(out.Deleted, p)
		delete(r.Copies, p)
		if !dryRun {
			if err := os.Remove(in.real(p)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return out, fmt.Errorf("delete %s: %w", p, err)
			}
		}
	}
	if len(r.Copies) == 0 {
		// Children first; a directory that holds anything else stays (and
		// so do its parents).
		gone := map[string]bool{}
		for _, p := range out.Deleted {
			gone[p] = true
		}
		for i := len(r.CreatedDirs) - 1; i >= 0; i-- {
			d := r.CreatedDirs[i]
			ents, err := os.ReadDir(in.real(d))
			if errors.Is(err, fs.ErrNotExist) {
				r.CreatedDirs = slices.Delete(r.CreatedDirs, i, i+1)
				gone[d] = true
				continue
			}
			empty := err == nil
			for _, e := range ents {
				if !gone[path.Join(d, e.Name())] {
					empty = false
				}
			}
			if !empty {
				break
			}
			if !dryRun {
				if err := os.Remove(in.real(d)); err != nil {
					return out, fmt.Errorf("remove %s: %w", d, err)
				}
			}
			gone[d] = true
			out.RmDirs = append(out.RmDirs, d)
			r.CreatedDirs = slices.Delete(r.CreatedDirs, i, i+1)
		}
	}
	if dryRun {
		return out, nil
	}
	return out, in.write(r)
}

// DefaultUnitPath is where install-service writes the agent's unit.
const DefaultUnitPath = "/etc/systemd/system/kaginashi-agent.service"

// probes are the configurations and unit files Release checks.
func (in *Installer) probes(r *useRecord) (configs, units []string) {
	add := func(list []string, p string) []string {
		if p != "" && path.IsAbs(p) && !slices.Contains(list, p) {
			return append(list, p)
		}
		return list
	}
	configs = add(configs, DefaultConfigPath)
	units = add(units, DefaultUnitPath)
	for _, users := range r.Copies {
		for _, u := range users {
			switch kind, p := u.split(); kind {
			case "sshd_config":
				configs = add(configs, p)
			case "systemd-unit":
				units = add(units, p)
			}
		}
	}
	if in.StateDir != "" {
		m, _ := filepath.Glob(filepath.Join(in.real(in.StateDir), "setup-sshd-*.json"))
		for _, f := range m {
			b, err := os.ReadFile(f)
			if err != nil {
				continue
			}
			var rec record
			if json.Unmarshal(b, &rec) == nil {
				configs = add(configs, rec.ConfigPath)
			}
		}
	}
	return configs, units
}

// stale says whether the recorded user u certainly no longer runs p: its
// file is gone, or it reads fine and does not name p. A file that cannot be
// read or parsed keeps the copy.
func (in *Installer) stale(u Use, p string) bool {
	kind, f := u.split()
	if kind != "sshd_config" && kind != "systemd-unit" {
		return false
	}
	if _, err := os.Stat(in.real(f)); errors.Is(err, fs.ErrNotExist) {
		return true
	}
	if kind == "systemd-unit" {
		if _, err := os.ReadFile(in.real(f)); err != nil {
			return false
		}
		return !in.unitNames(f, p)
	}
	if _, err := parseConfig(rootFS{in.Root}, f); err != nil {
		return false
	}
	return !in.configNames(f, p)
}

// configNames says whether the sshd configuration whose main file is cfg
// (with its Includes) has an AuthorizedKeysCommand, kaginashi's or an
// administrator's, in any scope, that runs p.
func (in *Installer) configNames(cfg, p string) bool {
	c, err := parseConfig(rootFS{in.Root}, cfg)
	if err != nil || c == nil {
		return false
	}
	for _, d := range c.Directives {
		if d.key == "authorizedkeyscommand" && len(d.args) > 0 && d.args[0] == p {
			return true
		}
	}
	return false
}

// unitNames says whether the unit file f's [Service] ExecStart runs p.
func (in *Installer) unitNames(f, p string) bool {
	b, err := os.ReadFile(in.real(f))
	if err != nil {
		return false
	}
	for _, kv := range unitServiceLines(f, b) {
		if kv.key != "ExecStart" {
			continue
		}
		// systemd's prefixes: -, @, :, +, !.
		w := strings.TrimLeft(kv.value, "-@:+!")
		if words := strings.Fields(w); len(words) > 0 && words[0] == p {
			return true
		}
	}
	return false
}

// InstallCopy copies the binary src to dst (0755, in a 0755 directory)
// through a temporary file and a rename, so sshd or systemd never runs a
// half-written file.
func InstallCopy(src, dst string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	if err := os.Chmod(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+"-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := io.Copy(tmp, in); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o755); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), dst)
}

// ServiceBinaryProblem says why the agent's unit must not run the binary p
// from where it is (nil: it may): under a directory the unit cannot see, or
// not in a root-owned path without group- or world-writable components — a
// service started as root at every boot must not run a file another user
// can replace.
func ServiceBinaryProblem(root, p string) error {
	if !path.IsAbs(p) {
		return fmt.Errorf("%s is not an absolute path", p)
	}
	// The directories the agent's unit cannot see: ProtectHome=yes hides
	// the first three, PrivateTmp=yes the next two.
	for _, h := range []string{"/home", "/root", "/run/user", "/tmp", "/var/tmp"} {
		if p == h || strings.HasPrefix(p, h+"/") {
			return fmt.Errorf("%s is under %s, which the unit cannot see (ProtectHome=yes, PrivateTmp=yes): systemd would fail with 203/EXEC", p, h)
		}
	}
	if _, err := checkCommandPath(root, p); err != nil {
		return fmt.Errorf("a service that starts as root must run a binary only root can replace: %w", err)
	}
	return nil
}
