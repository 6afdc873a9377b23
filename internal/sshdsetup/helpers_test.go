package sshdsetup

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
)

func TestMain(m *testing.M) {
	if os.Geteuid() != 0 {
		// sshd wants root-owned paths; a non-root test run owns its temp
		// trees, so the ownership rule becomes "owned by the test user".
		safeOwnerUID = uint32(os.Geteuid())
	}
	os.Exit(m.Run())
}

const fixtures = "testdata/sshd_config"

type distro struct {
	dir  string
	mech Mechanism
}

// distros are the fixture directories and the mechanism each must get.
var distros = []distro{
	{"centos-7", MechanismBlock},
	{"debian-9", MechanismBlock},
	{"debian-12", MechanismDropIn},
	{"fedora-30", MechanismBlock},
	{"fedora-39", MechanismDropIn},
	{"rhel-8", MechanismBlock},
	{"rhel-9", MechanismDropIn},
	// The SLES 15 SP6 / Leap 15.6 file includes /etc/ssh/sshd_config.d/*.conf
	// at its top (and the vendor /usr/etc/ssh/sshd_config.d after it).
	{"sles-15sp6-leap-15.6-PROXY", MechanismDropIn},
	{"ubuntu-16.04", MechanismBlock},
	{"ubuntu-18.04", MechanismBlock},
	{"ubuntu-22.04", MechanismDropIn},
	{"ubuntu-24.04", MechanismDropIn},
}

const (
	agentPath = "/usr/local/sbin/kaginashi-agent"
	wantCmd   = agentPath + " authorized-keys --data-dir /var/lib/kaginashi-agent %u %f"
)

// tree is a fake root file system with a distribution's sshd config.
type tree struct {
	t    *testing.T
	root string

	mu         sync.Mutex
	validated  int
	reloaded   int
	usersAdded []string
}

// newTree lays out fixture dir as ROOT/etc/ssh/sshd_config (+ sshd_config.d)
// and installs a root-owned agent binary at /usr/local/sbin.
func newTree(t *testing.T, dir string) *tree {
	t.Helper()
	tr := &tree{t: t, root: t.TempDir()}
	src := filepath.Join(fixtures, dir)
	tr.mkdir("/etc/ssh")
	tr.write("/etc/ssh/sshd_config", readFile(t, filepath.Join(src, "sshd_config")), 0o644)
	if ents, err := os.ReadDir(filepath.Join(src, "sshd_config.d")); err == nil {
		tr.mkdir("/etc/ssh/sshd_config.d")
		for _, e := range ents {
			tr.write("/etc/ssh/sshd_config.d/"+e.Name(), readFile(t, filepath.Join(src, "sshd_config.d", e.Name())), 0o644)
		}
	}
	tr.mkdir("/usr/local/sbin")
	tr.write(agentPath, []byte("#!/bin/sh\nexit 0\n"), 0o755)
	return tr
}

func readFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (tr *tree) real(p string) string { return filepath.Join(tr.root, p) }

func (tr *tree) mkdir(p string) {
	tr.t.Helper()
	if err := os.MkdirAll(tr.real(p), 0o755); err != nil {
		tr.t.Fatal(err)
	}
}

func (tr *tree) write(p string, b []byte, mode fs.FileMode) {
	tr.t.Helper()
	tr.mkdir(filepath.Dir(p))
	if err := os.WriteFile(tr.real(p), b, mode); err != nil {
		tr.t.Fatal(err)
	}
	if err := os.Chmod(tr.real(p), mode); err != nil {
		tr.t.Fatal(err)
	}
}

func (tr *tree) read(p string) []byte {
	tr.t.Helper()
	return readFile(tr.t, tr.real(p))
}

func (tr *tree) exists(p string) bool {
	_, err := os.Lstat(tr.real(p))
	return err == nil
}

// appendTo adds text at the end of a file of the tree.
func (tr *tree) appendTo(p, text string) {
	tr.t.Helper()
	tr.write(p, append(tr.read(p), text...), 0o644)
}

// snapshot is every directory and file under ROOT/etc/ssh: type, mode,
// owner and bytes.
func (tr *tree) snapshot() map[string]string {
	tr.t.Helper()
	return snapshotDir(tr.t, tr.real("/etc/ssh"))
}

func snapshotDir(t *testing.T, base string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		meta := fmt.Sprintf("%v %d:%d", fi.Mode(), st.Uid, st.Gid)
		if d.IsDir() {
			out[p] = "dir " + meta
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		out[p] = "file " + meta + "\n" + string(b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func sameSnapshot(t *testing.T, what string, want, got map[string]string) {
	t.Helper()
	var keys []string
	for k := range want {
		keys = append(keys, k)
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		w, okw := want[k]
		g, okg := got[k]
		switch {
		case !okw:
			t.Errorf("%s: unexpected %s", what, k)
		case !okg:
			t.Errorf("%s: %s is missing", what, k)
		case w != g:
			t.Errorf("%s: %s differs:\n%s", what, k, unifiedDiff(k, []byte(w), []byte(g)))
		}
	}
}

// fakeValidate stands in for sshd -t: the configuration must parse, and
// keywords starting with "Bogus" are rejected the way sshd rejects unknown
// ones.
func (tr *tree) fakeValidate(ctx context.Context, real string) error {
	tr.mu.Lock()
	tr.validated++
	tr.mu.Unlock()
	logical := strings.TrimPrefix(real, tr.root)
	cfg, err := parseConfig(rootFS{tr.root}, logical)
	if err != nil {
		return err
	}
	for _, d := range cfg.Directives {
		if strings.HasPrefix(d.key, "bogus") {
			return fmt.Errorf("%s: line %d: Bad configuration option: %s", d.File, d.Line, d.Keyword)
		}
	}
	return nil
}

func (tr *tree) opts() Options {
	return Options{
		Root:        tr.root,
		ConfigPath:  DefaultConfigPath,
		CommandPath: agentPath,
		CommandArgs: []string{"authorized-keys", "--data-dir", "/var/lib/kaginashi-agent"},
		StateDir:    "/var/lib/kaginashi-agent/setup-sshd",
		Validate:    tr.fakeValidate,
		Reload: func(context.Context) error {
			tr.mu.Lock()
			tr.reloaded++
			tr.mu.Unlock()
			return nil
		},
		CreateUser: func(_ context.Context, name string) error {
			tr.mu.Lock()
			tr.usersAdded = append(tr.usersAdded, name)
			tr.mu.Unlock()
			f, err := os.OpenFile(tr.real("/etc/passwd"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = fmt.Fprintf(f, "%s:x:998:998::/nonexistent:/usr/sbin/nologin\n", name)
			return err
		},
	}
}

func (tr *tree) counts() (validated, reloaded, users int) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.validated, tr.reloaded, len(tr.usersAdded)
}

// mustRefuse runs Setup expecting a RefusedError whose text has every one
// of want, and checks that nothing changed.
func mustRefuse(t *testing.T, tr *tree, o Options, want ...string) *RefusedError {
	t.Helper()
	before := tr.snapshot()
	rep, err := Setup(context.Background(), o)
	var re *RefusedError
	if !errors.As(err, &re) {
		t.Fatalf("Setup: want a refusal, got err=%v report=%v", err, rep)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("refusal does not mention %q:\n%v", w, err)
		}
	}
	sameSnapshot(t, "after a refusal", before, tr.snapshot())
	if _, _, users := tr.counts(); users != 0 {
		t.Errorf("a refused Setup created a user")
	}
	if tr.exists(recordPath(&o, ".json")) {
		t.Errorf("a refused Setup left a record")
	}
	return re
}
