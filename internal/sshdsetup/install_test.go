package sshdsetup

import (
	"context"
	"os"
	"path"
	"slices"
	"strings"
	"testing"
)

const (
	copyPath    = InstallDir + "/" + AgentBinary
	recordFile  = "/var/lib/kaginashi-agent/sshd-setup/installed-command"
	setupState  = "/var/lib/kaginashi-agent/sshd-setup"
	secondConf  = "/srv/b/sshd_config"
	defaultUnit = DefaultUnitPath
)

// twoConfigs is a tree with two sshd configurations (Ubuntu 24.04's as the
// system one, with its drop-in directory; CentOS 7's, which has no Include,
// at /srv/b) and an installer for it. /usr/local/libexec does not exist.
func twoConfigs(t *testing.T) (*tree, *Installer) {
	t.Helper()
	tr := newTree(t, "ubuntu-24.04")
	tr.write(secondConf, readFile(t, fixtures+"/centos-7/sshd_config"), 0o644)
	if tr.exists("/usr/local/libexec") {
		t.Fatal("the tree already has /usr/local/libexec")
	}
	return tr, &Installer{Root: tr.root, Record: recordFile, StateDir: setupState}
}

// setupWithCopy does what setup-sshd does for a binary sshd refuses: install
// the copy for config, then Setup config with the copy as its command.
func setupWithCopy(t *testing.T, tr *tree, in *Installer, config string) {
	t.Helper()
	if _, err := in.Install(tr.real(agentPath), copyPath, SSHDConfigUse(config)); err != nil {
		t.Fatal(err)
	}
	o := tr.opts()
	o.ConfigPath, o.CommandPath, o.StateDir = config, copyPath, setupState
	if _, err := Setup(context.Background(), o); err != nil {
		t.Fatal(err)
	}
}

func removeAndRelease(t *testing.T, tr *tree, in *Installer, config string) Released {
	t.Helper()
	o := tr.opts()
	o.ConfigPath, o.StateDir = config, setupState
	if _, err := Remove(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	rel, err := in.Release(SSHDConfigUse(config), false)
	if err != nil {
		t.Fatal(err)
	}
	return rel
}

// TestRemoveKeepsCopyAnotherConfigUses: setup-sshd for two configurations,
// then --remove for one, must leave the copy the other still runs (the
// audit's finding: every kaginashi login then failed with "Could not stat
// AuthorizedKeysCommand"); removing the second deletes it and the
// directories setup-sshd created, and nothing else.
func TestRemoveKeepsCopyAnotherConfigUses(t *testing.T) {
	tr, in := twoConfigs(t)
	before := tr.read(secondConf)
	setupWithCopy(t, tr, in, DefaultConfigPath)
	setupWithCopy(t, tr, in, secondConf)
	if !strings.Contains(string(tr.read("/etc/ssh/sshd_config.d/"+DropInName)), copyPath) {
		t.Fatal("the drop-in does not run the copy")
	}

	rel := removeAndRelease(t, tr, in, secondConf)
	if !tr.exists(copyPath) || len(rel.Deleted) != 0 {
		t.Fatalf("--remove of %s deleted the copy the system configuration still runs: %+v", secondConf, rel)
	}
	if len(rel.Kept) != 1 || !strings.Contains(rel.Kept[0], DefaultConfigPath) {
		t.Errorf("kept %q, want the copy, used by %s", rel.Kept, DefaultConfigPath)
	}
	if got := tr.read(secondConf); string(got) != string(before) {
		t.Error(secondConf + " is not byte-identical after --remove")
	}

	rel = removeAndRelease(t, tr, in, DefaultConfigPath)
	if tr.exists(copyPath) || !slices.Equal(rel.Deleted, []string{copyPath}) {
		t.Errorf("the copy is still there after the last --remove: %+v", rel)
	}
	if want := []string{InstallDir, "/usr/local/libexec"}; !slices.Equal(rel.RmDirs, want) {
		t.Errorf("removed directories %q, want %q", rel.RmDirs, want)
	}
	if tr.exists("/usr/local/libexec") || !tr.exists("/usr/local/sbin") {
		t.Error("the directories setup-sshd created must go, and only those")
	}
	if tr.exists(recordFile) {
		t.Error("the use record is left behind")
	}
}

// TestReleaseStaleRecord: an older agent's marker (the path alone, no
// users) or a record that lost a user must not let --remove delete a copy
// that a managed configuration (found through setup-sshd's records) or the
// agent's unit still runs.
func TestReleaseStaleRecord(t *testing.T) {
	tr, in := twoConfigs(t)
	// The second configuration only, so only setup-sshd's record in the
	// state directory knows it.
	setupWithCopy(t, tr, in, secondConf)
	tr.write(recordFile, []byte(copyPath+"\n/etc/passwd\n"), 0o600)

	rel, err := in.Release(SSHDConfigUse("/srv/other/sshd_config"), false)
	if err != nil {
		t.Fatal(err)
	}
	if !tr.exists(copyPath) || len(rel.Kept) != 1 || !strings.Contains(rel.Kept[0], secondConf) {
		t.Fatalf("a stale record let the copy %s still runs go: %+v", secondConf, rel)
	}
	// The user it found is recorded now.
	r, err := in.read()
	if err != nil || !slices.Equal(r.Copies[copyPath], []Use{SSHDConfigUse(secondConf)}) {
		t.Errorf("record %+v, %v", r, err)
	}

	// The unit runs it too, unrecorded: removing the configuration keeps it.
	tr.write(defaultUnit, []byte("[Unit]\nDescription=x\n[Service]\nExecStart="+copyPath+" run --data-dir /var/lib/kaginashi-agent\n"), 0o644)
	rel = removeAndRelease(t, tr, in, secondConf)
	if !tr.exists(copyPath) || len(rel.Kept) != 1 || !strings.Contains(rel.Kept[0], defaultUnit) {
		t.Fatalf("the copy the unit runs was not kept: %+v", rel)
	}
	os.Remove(tr.real(defaultUnit))
	// An older agent's marker again: its directory goes when empty, but
	// not /usr/local/libexec, which it did not say it made.
	tr.write(recordFile, []byte(copyPath+"\n"), 0o600)
	if rel, err = in.Release(UnitUse(defaultUnit), false); err != nil || tr.exists(copyPath) {
		t.Fatalf("the unit's release left the unused copy: %+v %v", rel, err)
	}
	if tr.exists(InstallDir) || !tr.exists("/usr/local/libexec") {
		t.Errorf("after an older marker's copy went: %+v", rel)
	}
}

// TestReleaseDropsStaleUsers: a recorded configuration that no longer runs
// the copy (its kaginashi lines removed by hand) or no longer exists does
// not keep it.
func TestReleaseDropsStaleUsers(t *testing.T) {
	tr, in := twoConfigs(t)
	setupWithCopy(t, tr, in, DefaultConfigPath)
	setupWithCopy(t, tr, in, secondConf)
	// The second configuration undone by hand: kaginashi's block cut out,
	// setup-sshd's record deleted.
	clean, n := removeBlocks(tr.read(secondConf))
	if n == 0 {
		t.Fatal("no block in " + secondConf)
	}
	tr.write(secondConf, clean, 0o644)
	o := tr.opts()
	o.ConfigPath, o.StateDir = secondConf, setupState
	deleteRecord(&o)
	// A unit that is gone.
	if _, err := in.Install(tr.real(agentPath), copyPath, UnitUse("/etc/systemd/system/gone.service")); err != nil {
		t.Fatal(err)
	}
	rel := removeAndRelease(t, tr, in, DefaultConfigPath)
	if tr.exists(copyPath) || len(rel.Kept) != 0 {
		t.Errorf("stale users kept the copy: %+v", rel)
	}
}

// TestReleaseKeepsForeignFiles: directories setup-sshd created stay when
// they hold someone else's files, and Release never deletes a path it could
// not have installed, whatever the record says.
func TestReleaseKeepsForeignFiles(t *testing.T) {
	tr, in := twoConfigs(t)
	if _, err := in.Install(tr.real(agentPath), copyPath, UnitUse(defaultUnit)); err != nil {
		t.Fatal(err)
	}
	tr.write(InstallDir+"/other-tool", []byte("x"), 0o755)
	tr.write("/etc/shadow-like", []byte("keep"), 0o600)
	r, _ := in.read()
	r.Copies["/etc/shadow-like"] = nil
	r.CreatedDirs = append(r.CreatedDirs, "/etc")
	if err := in.write(r); err != nil {
		t.Fatal(err)
	}
	rel, err := in.Release(UnitUse(defaultUnit), false)
	if err != nil {
		t.Fatal(err)
	}
	if tr.exists(copyPath) || !tr.exists(InstallDir+"/other-tool") || !tr.exists("/etc/shadow-like") || len(rel.RmDirs) != 0 {
		t.Errorf("release: %+v", rel)
	}
	if _, err := in.Install(tr.real(agentPath), "/usr/local/sbin/sshd", UnitUse(defaultUnit)); err == nil {
		t.Error("Install wrote outside the install directory")
	}
}

// TestReleaseDryRun changes nothing.
func TestReleaseDryRun(t *testing.T) {
	tr, in := twoConfigs(t)
	if _, err := in.Install(tr.real(agentPath), copyPath, UnitUse(defaultUnit)); err != nil {
		t.Fatal(err)
	}
	before := tr.read(recordFile)
	rel, err := in.Release(UnitUse(defaultUnit), true)
	if err != nil || !slices.Equal(rel.Deleted, []string{copyPath}) || len(rel.RmDirs) != 2 {
		t.Fatalf("dry run: %+v %v", rel, err)
	}
	if !tr.exists(copyPath) || string(tr.read(recordFile)) != string(before) {
		t.Error("a dry run changed something")
	}
	if a := rel.Actions(true); len(a) != 3 || !strings.HasPrefix(a[0], "would delete ") {
		t.Errorf("actions %q", a)
	}
}

// TestServiceBinaryProblem is install-service's path decision.
func TestServiceBinaryProblem(t *testing.T) {
	tr := newTree(t, "debian-12")
	tr.write("/opt/kaginashi/kaginashi-agent", []byte("x"), 0o755)
	tr.write("/opt/writable/kaginashi-agent", []byte("x"), 0o755)
	os.Chmod(tr.real("/opt/writable"), 0o777)
	for p, want := range map[string]string{
		agentPath:                            "",
		"/opt/kaginashi/kaginashi-agent":     "",
		"/opt/writable/kaginashi-agent":      "world-writable",
		"/root/kaginashi-agent":              "under /root",
		"/home/ops/bin/kaginashi-agent":      "under /home",
		"/tmp/kaginashi-agent":               "under /tmp",
		"/var/tmp/x/kaginashi-agent":         "under /var/tmp",
		"/run/user/1000/kaginashi-agent":     "under /run/user",
		"/usr/local/sbin/no-such-agent":      "cannot be resolved",
		"relative/kaginashi-agent":           "not an absolute path",
		"/homes/kaginashi-agent-not-in-home": "cannot be resolved",
	} {
		err := ServiceBinaryProblem(tr.root, p)
		switch {
		case want == "" && err != nil:
			t.Errorf("%s: %v", p, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("%s: %v, want %q", p, err, want)
		}
	}
	for src, want := range map[string]string{"/tmp/x/" + AgentBinary: AgentBinary, "/tmp/kaginashi-agent-1.4": AgentBinary, "/tmp/y/" + AKCBinary: AKCBinary} {
		if got := (&Installer{}).Target(src); got != path.Join(InstallDir, want) {
			t.Errorf("Target(%s) = %s", src, got)
		}
	}
}

// FuzzUseRecord: whatever the record file holds (JSON, an older agent's
// lines, garbage), reading it never panics and yields only paths the
// installer could have written and directories on the way to its own.
func FuzzUseRecord(f *testing.F) {
	f.Add([]byte(copyPath + "\n/etc/passwd\n"))
	f.Add([]byte(`{"version":2,"copies":{"` + copyPath + `":["sshd_config /etc/ssh/sshd_config"],"/etc/shadow":null},"createdDirs":["/usr/local/libexec","/etc"]}`))
	f.Add([]byte(`{"copies":null}`))
	f.Add([]byte(`{"createdDirs":["","/","usr/local","/usr/local/../local/libexec"]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		in := &Installer{Root: dir, Record: "/rec"}
		if err := os.WriteFile(dir+"/rec", data, 0o600); err != nil {
			t.Fatal(err)
		}
		r, err := in.read()
		if err != nil {
			return
		}
		for p := range r.Copies {
			if !in.installable(p) {
				t.Errorf("record yields %q", p)
			}
		}
		for _, d := range r.CreatedDirs {
			if d == "" || d == "/" || path.Clean(d) != d || (d != InstallDir && !strings.HasPrefix(InstallDir, d+"/")) {
				t.Errorf("record yields directory %q", d)
			}
		}
	})
}
