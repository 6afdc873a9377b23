package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kaginashi/kaginashi/internal/sshdsetup"
)

// TestUnitGolden pins the unit text: a change to the sandboxing must be a
// deliberate one (AF_NETLINK in particular: without it the agent's
// inventory has no addresses).
func TestUnitGolden(t *testing.T) {
	want, err := os.ReadFile("testdata/kaginashi-agent.service")
	if err != nil {
		t.Fatal(err)
	}
	if got := unitText("/usr/local/libexec/kaginashi/kaginashi-agent", "/var/lib/kaginashi-agent"); got != string(want) {
		t.Errorf("unit text differs from testdata/kaginashi-agent.service:\n%s", got)
	}
}

// TestUnitVerify has systemd check the unit (systemd-analyze verify prints
// every directive or value it does not understand, and a missing
// ExecStart binary).
func TestUnitVerify(t *testing.T) {
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed: the unit is checked by TestUnitGolden only")
	}
	dir := t.TempDir()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, unitName)
	if err := os.WriteFile(p, []byte(unitText(exe, dir)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(sa, "verify", p).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}

type fakeSystemctl struct {
	calls [][]string
	fail  string // a verb that fails
}

func (f *fakeSystemctl) run(_ context.Context, args ...string) error {
	f.calls = append(f.calls, args)
	if len(args) > 0 && args[0] == f.fail {
		return errors.New("systemctl " + f.fail + " failed")
	}
	return nil
}

// testService is a service writing its unit and copies under a temporary
// directory, with the unit's path rule as in production.
func testService(t *testing.T) (*service, *fakeSystemctl, *bytes.Buffer, string) {
	t.Helper()
	base := t.TempDir()
	data := filepath.Join(base, "data")
	os.MkdirAll(filepath.Join(base, "units"), 0o755)
	os.MkdirAll(data, 0o700)
	os.WriteFile(filepath.Join(data, "identity.crt"), []byte("x"), 0o600)
	inst := installer(data)
	inst.Dir = filepath.Join(base, "libexec", "kaginashi")
	sc := &fakeSystemctl{}
	out := &bytes.Buffer{}
	return &service{
		unitDir: filepath.Join(base, "units"), inst: inst, systemctl: sc.run, out: out,
		problem: func(exe string) error { return sshdsetup.ServiceBinaryProblem("", exe) },
		booted:  func() bool { return true },
	}, sc, out, data
}

// TestInstallServiceWithoutSystemd: on a host whose init is not systemd,
// install-service says so and what to do instead, and changes nothing;
// --dry-run still prints the unit.
func TestInstallServiceWithoutSystemd(t *testing.T) {
	s, sc, out, data := testService(t)
	s.booted = func() bool { return false }
	self := filepath.Join(t.TempDir(), "kaginashi-agent")
	os.WriteFile(self, []byte("agent"), 0o755)
	err := s.install(context.Background(), self, data, false)
	want := "this host does not run systemd: run `kaginashi-agent run --data-dir " + data + "` under your init system (the unit it would have written is printed with --dry-run)"
	if err == nil || err.Error() != want {
		t.Fatalf("install = %v, want %q", err, want)
	}
	if len(sc.calls) > 0 {
		t.Errorf("systemctl was called: %q", sc.calls)
	}
	for _, p := range []string{s.unitPath(), s.inst.Dir} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s is left after a refused install", p)
		}
	}
	if err := s.install(context.Background(), self, data, true); err != nil || !strings.Contains(out.String(), "ExecStart=") {
		t.Errorf("--dry-run without systemd: %v\n%s", err, out)
	}
}

// TestWithoutSystemdNotEnrolledYet: install-service --server … --join-token
// … on a host without systemd enrols nothing, so the run command it
// suggests instead must carry the enrolment flags (a bare `run --data-dir`
// would have nothing to connect with), pasteable, with a placeholder for
// the token (needSystemd is never given it).
func TestWithoutSystemdNotEnrolledYet(t *testing.T) {
	s, _, _, data := testService(t)
	s.booted = func() bool { return false }
	err := s.needSystemd(data, enrollFlags("https://kg.example:8443", "", "sha256:abcd", tagsFlag{{Key: "team", Value: "web ops"}}))
	if err == nil {
		t.Fatal("needSystemd without systemd = nil")
	}
	want := "run `kaginashi-agent run --server https://kg.example:8443 --ca-pin sha256:abcd --tag 'team=web ops' --data-dir " + shellQuote(data) + " --join-token TOKEN` under your init system"
	if !strings.Contains(err.Error(), want) {
		t.Errorf("needSystemd = %q\nwant it to contain %q", err, want)
	}
	if got := shellQuote("it's"); got != `'it'\''s'` {
		t.Errorf("shellQuote(it's) = %s", got)
	}
}

// TestRemoveServiceWithoutSystemd: --remove on a host that does not run
// systemd deletes the unit and the links enabling it without calling
// systemctl (which would only fail there).
func TestRemoveServiceWithoutSystemd(t *testing.T) {
	s, sc, out, _ := testService(t)
	s.booted = func() bool { return false }
	if err := os.WriteFile(s.unitPath(), []byte(unitText("/usr/local/bin/kaginashi-agent", "/var/lib/kaginashi-agent")), 0o644); err != nil {
		t.Fatal(err)
	}
	wants := filepath.Join(s.unitDir, "multi-user.target.wants")
	os.MkdirAll(wants, 0o755)
	link := filepath.Join(wants, unitName)
	if err := os.Symlink(s.unitPath(), link); err != nil {
		t.Fatal(err)
	}
	if err := s.remove(context.Background(), true); err != nil {
		t.Fatalf("dry run: %v", err)
	}
	if _, err := os.Stat(s.unitPath()); err != nil {
		t.Fatalf("the dry run deleted the unit: %v", err)
	}
	if err := s.remove(context.Background(), false); err != nil {
		t.Fatalf("remove without systemd: %v\n%s", err, out)
	}
	if len(sc.calls) > 0 {
		t.Errorf("systemctl was called without systemd: %q", sc.calls)
	}
	for _, p := range []string{s.unitPath(), link} {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("%s is left after --remove", p)
		}
	}
	if !strings.Contains(out.String(), "does not run systemd") {
		t.Errorf("the output does not say why systemctl was not used:\n%s", out)
	}
}

// TestSystemdBooted is sd_booted(3)'s test: /run/systemd/system must be a
// directory (not a file, not a symlink to one).
func TestSystemdBooted(t *testing.T) {
	root := t.TempDir()
	if systemdBooted(root) {
		t.Fatal("booted with no /run/systemd/system")
	}
	os.MkdirAll(filepath.Join(root, "run", "systemd"), 0o755)
	os.WriteFile(filepath.Join(root, "run", "systemd", "system"), nil, 0o644)
	if systemdBooted(root) {
		t.Fatal("booted with /run/systemd/system a file")
	}
	os.Remove(filepath.Join(root, "run", "systemd", "system"))
	os.Mkdir(filepath.Join(root, "run", "systemd", "system"), 0o755)
	if !systemdBooted(root) {
		t.Fatal("not booted with /run/systemd/system a directory")
	}
}

// TestInstallServiceCopiesHiddenBinary: a binary under /tmp (where the
// unit's PrivateTmp hides it) is installed in the install directory, the
// unit runs the copy and says so; --remove disables the unit, deletes it
// and the copy, and is symmetric.
func TestInstallServiceCopiesHiddenBinary(t *testing.T) {
	s, sc, out, data := testService(t)
	self := filepath.Join(t.TempDir(), "kaginashi-agent")
	os.WriteFile(self, []byte("#!/bin/sh\n"), 0o755)
	copyPath := filepath.Join(s.inst.Dir, "kaginashi-agent")

	if err := s.install(context.Background(), self, data, true); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(s.unitPath()); err == nil || len(sc.calls) > 0 {
		t.Fatal("a dry run changed something")
	}
	if !strings.Contains(out.String(), "install "+self+" as "+copyPath) || !strings.Contains(out.String(), "ExecStart="+copyPath+" run") {
		t.Errorf("dry run does not show the copy:\n%s", out)
	}

	out.Reset()
	if err := s.install(context.Background(), self, data, false); err != nil {
		t.Fatal(err)
	}
	unit, err := os.ReadFile(s.unitPath())
	if err != nil || string(unit) != unitText(copyPath, data) {
		t.Fatalf("unit %q, %v", unit, err)
	}
	if b, err := os.ReadFile(copyPath); err != nil || string(b) != "#!/bin/sh\n" {
		t.Fatalf("copy: %q %v", b, err)
	}
	if !strings.Contains(out.String(), "installed "+self+" as "+copyPath) || !strings.Contains(out.String(), "PrivateTmp") {
		t.Errorf("output does not say why the copy was installed:\n%s", out)
	}
	if want := [][]string{{"daemon-reload"}, {"enable", "--now", unitName}}; !slices.EqualFunc(sc.calls, want, slices.Equal) {
		t.Errorf("systemctl calls %q", sc.calls)
	}

	sc.calls = nil
	if err := s.remove(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	if want := [][]string{{"disable", "--now", unitName}, {"daemon-reload"}}; !slices.EqualFunc(sc.calls, want, slices.Equal) {
		t.Errorf("systemctl calls %q", sc.calls)
	}
	for _, p := range []string{s.unitPath(), copyPath, s.inst.Dir} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s is left after --remove", p)
		}
	}
}

// TestInstallServiceKeepsCopySSHDUses: the unit and setup-sshd share the
// copy; removing the service leaves it to sshd.
func TestInstallServiceKeepsCopySSHDUses(t *testing.T) {
	s, _, _, data := testService(t)
	self := filepath.Join(t.TempDir(), "kaginashi-agent")
	os.WriteFile(self, []byte("agent"), 0o755)
	copyPath := filepath.Join(s.inst.Dir, "kaginashi-agent")
	conf := filepath.Join(t.TempDir(), "sshd_config")
	os.WriteFile(conf, []byte("AuthorizedKeysCommand "+copyPath+" authorized-keys --data-dir "+data+" %u %f\nAuthorizedKeysCommandUser kaginashi\n"), 0o644)
	if _, err := s.inst.Install(self, copyPath, sshdsetup.SSHDConfigUse(conf)); err != nil {
		t.Fatal(err)
	}
	// An older unit (no AF_NETLINK) is replaced and the running agent
	// restarted on the new one.
	os.WriteFile(s.unitPath(), []byte("[Service]\nExecStart=/root/kaginashi-agent run\nRestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX\n"), 0o644)
	sc := &fakeSystemctl{}
	s.systemctl = sc.run
	if err := s.install(context.Background(), self, data, false); err != nil {
		t.Fatal(err)
	}
	if want := [][]string{{"daemon-reload"}, {"enable", "--now", unitName}, {"try-restart", unitName}}; !slices.EqualFunc(sc.calls, want, slices.Equal) {
		t.Errorf("systemctl calls %q", sc.calls)
	}
	if err := s.remove(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(copyPath); err != nil {
		t.Fatal("removing the service deleted the copy sshd runs")
	}
}

// TestInstallServiceFailureUndoes: when systemctl fails, neither the unit
// nor the copy stays.
func TestInstallServiceFailureUndoes(t *testing.T) {
	s, sc, _, data := testService(t)
	sc.fail = "enable"
	self := filepath.Join(t.TempDir(), "kaginashi-agent")
	os.WriteFile(self, []byte("agent"), 0o755)
	if err := s.install(context.Background(), self, data, false); err == nil {
		t.Fatal("no error")
	}
	for _, p := range []string{s.unitPath(), filepath.Join(s.inst.Dir, "kaginashi-agent")} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s is left after a failed install", p)
		}
	}
	// Not enrolled: refused before anything is written.
	os.Remove(filepath.Join(data, "identity.crt"))
	sc.fail, sc.calls = "", nil
	if err := s.install(context.Background(), self, data, false); err == nil || !strings.Contains(err.Error(), "enroll first") || len(sc.calls) > 0 {
		t.Errorf("not enrolled: %v %q", err, sc.calls)
	}
}

// TestServiceExecPath is the path decision: a root-owned binary in a safe
// directory is run as it is; one the unit cannot see or another user could
// replace is run from the install directory.
func TestServiceExecPath(t *testing.T) {
	s, _, _, _ := testService(t)
	copyPath := filepath.Join(s.inst.Dir, "kaginashi-agent")
	if os.Geteuid() == 0 {
		if exe, why := s.execPath("/usr/bin/env"); exe != "/usr/bin/env" || why != "" {
			t.Errorf("/usr/bin/env: %s (%s)", exe, why)
		}
	}
	for _, p := range []string{"/home/ops/kaginashi-agent", "/root/kaginashi-agent", "/tmp/x/kaginashi-agent", "/var/tmp/kaginashi-agent", "/run/user/0/kaginashi-agent"} {
		if exe, why := s.execPath(p); exe != copyPath || why == "" {
			t.Errorf("%s: %s (%s)", p, exe, why)
		}
	}
}
