package sshdsetup

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

var ctx = context.Background()

// --- conflicts: an administrator's AuthorizedKeysCommand is never replaced.

func TestRefuseGlobalCommand(t *testing.T) {
	for _, dir := range []string{"centos-7", "debian-12"} { // block and drop-in
		t.Run(dir, func(t *testing.T) {
			tr := newTree(t, dir)
			tr.appendTo("/etc/ssh/sshd_config", "AuthorizedKeysCommand /usr/bin/sss_ssh_authorizedkeys %u\nAuthorizedKeysCommandUser nobody\n")
			lines := bytes.Count(tr.read("/etc/ssh/sshd_config"), []byte("\n"))
			re := mustRefuse(t, tr, tr.opts(), "/etc/ssh/sshd_config:"+strconv.Itoa(lines-1), "/usr/bin/sss_ssh_authorizedkeys", "never replaces")
			if len(re.Reasons) != 1 {
				t.Errorf("reasons: %q", re.Reasons)
			}
			st, err := Inspect(tr.opts())
			if err != nil || len(st.Conflicts) != 1 || st.Conflicts[0].Source != "sshd_config" || st.Configured {
				t.Fatalf("Inspect: %v %+v", err, st)
			}
		})
	}
}

func TestRefuseCommandInMatchBlock(t *testing.T) {
	tr := newTree(t, "ubuntu-18.04")
	tr.appendTo("/etc/ssh/sshd_config", "Match Group admins\n\tAuthorizedKeysCommand=/usr/bin/sss_ssh_authorizedkeys %u\n")
	mustRefuse(t, tr, tr.opts(), `inside "Match Group admins"`, "/usr/bin/sss_ssh_authorizedkeys")
}

func TestRefuseCommandInDropIn(t *testing.T) {
	tr := newTree(t, "rhel-9")
	tr.write("/etc/ssh/sshd_config.d/70-ipa.conf", []byte("# FreeIPA\nauthorizedkeyscommand /usr/bin/sss_ssh_authorizedkeys\n"), 0o600)
	mustRefuse(t, tr, tr.opts(), "/etc/ssh/sshd_config.d/70-ipa.conf:2")
}

func TestRefuseCommandInIncludedFileInsideMatch(t *testing.T) {
	tr := newTree(t, "debian-9")
	tr.write("/etc/ssh/ldap.conf", []byte("AuthorizedKeysCommand /usr/local/bin/ldap-keys %u\n"), 0o644)
	tr.appendTo("/etc/ssh/sshd_config", "Match User *,!root\n  Include ldap.conf\n")
	mustRefuse(t, tr, tr.opts(), "/etc/ssh/ldap.conf:1", `inside "Match User *,!root"`)
}

// AWS's ec2-instance-connect package puts its command on sshd's command line
// through a systemd drop-in (fixtures from aws-ec2-instance-connect-config).
func TestRefuseEC2InstanceConnect(t *testing.T) {
	for _, c := range []struct{ distro, pkg, unitDir string }{
		{"debian-12", "deb/ssh.service.d", "/lib/systemd/system/ssh.service.d"},
		{"ubuntu-18.04", "deb/ssh.service.d", "/lib/systemd/system/ssh.service.d"},
		{"rhel-9", "rpm/sshd.service.d", "/usr/lib/systemd/system/sshd.service.d"},
		{"centos-7", "rpm/sshd.service.d", "/etc/systemd/system/sshd.service.d"},
	} {
		t.Run(c.distro, func(t *testing.T) {
			tr := newTree(t, c.distro)
			src := filepath.Join(fixtures, "ec2-instance-connect-dropins", c.pkg, "ec2-instance-connect.conf")
			tr.write(c.unitDir+"/ec2-instance-connect.conf", readFile(t, src), 0o644)
			mustRefuse(t, tr, tr.opts(), c.unitDir+"/ec2-instance-connect.conf:3", "remove ec2-instance-connect", "overrides every sshd_config file")
			st, _ := Inspect(tr.opts())
			if len(st.Conflicts) != 1 || st.Conflicts[0].Source != "systemd" {
				t.Fatalf("Inspect conflicts: %+v", st.Conflicts)
			}
		})
	}
}

// A later drop-in that resets ExecStart= takes AWS's -o options away again.
func TestExecStartResetIsNoConflict(t *testing.T) {
	tr := newTree(t, "debian-12")
	src := filepath.Join(fixtures, "ec2-instance-connect-dropins/deb/ssh.service.d/ec2-instance-connect.conf")
	tr.write("/lib/systemd/system/ssh.service.d/ec2-instance-connect.conf", readFile(t, src), 0o644)
	tr.write("/etc/systemd/system/ssh.service.d/zz-local.conf", []byte("[Service]\nExecStart=\nExecStart=/usr/sbin/sshd -D $SSHD_OPTS\n"), 0o644)
	if _, err := Setup(ctx, tr.opts()); err != nil {
		t.Fatalf("Setup: %v", err)
	}
	// And an /etc drop-in of the same name overrides the packaged one.
	tr2 := newTree(t, "debian-12")
	tr2.write("/lib/systemd/system/ssh.service.d/ec2-instance-connect.conf", readFile(t, src), 0o644)
	tr2.write("/etc/systemd/system/ssh.service.d/ec2-instance-connect.conf", []byte("[Service]\n"), 0o644)
	if _, err := Setup(ctx, tr2.opts()); err != nil {
		t.Fatalf("Setup with the drop-in masked: %v", err)
	}
}

func TestRefuseEnvironmentFileOption(t *testing.T) {
	tr := newTree(t, "debian-9")
	tr.write("/etc/default/ssh", []byte("# Options to pass to sshd\nSSHD_OPTS='-o AuthorizedKeysCommand=/opt/keys %u'\n"), 0o644)
	mustRefuse(t, tr, tr.opts(), "/etc/default/ssh:2")
}

func TestRefusePubkeyAuthenticationNo(t *testing.T) {
	for _, dir := range []string{"ubuntu-16.04", "rhel-9"} {
		t.Run(dir, func(t *testing.T) {
			tr := newTree(t, dir)
			if dir == "ubuntu-16.04" { // it sets PubkeyAuthentication yes at line 32
				b := bytes.Replace(tr.read("/etc/ssh/sshd_config"), []byte("PubkeyAuthentication yes"), []byte("PubkeyAuthentication no"), 1)
				tr.write("/etc/ssh/sshd_config", b, 0o644)
				mustRefuse(t, tr, tr.opts(), "/etc/ssh/sshd_config:32 sets PubkeyAuthentication no")
			} else {
				tr.write("/etc/ssh/sshd_config.d/10-hardening.conf", []byte("PUBKEYAUTHENTICATION=no\n"), 0o644)
				mustRefuse(t, tr, tr.opts(), "10-hardening.conf:1 sets PubkeyAuthentication no")
			}
		})
	}
}

func TestMatchOnlySettingsWarn(t *testing.T) {
	tr := newTree(t, "centos-7")
	tr.appendTo("/etc/ssh/sshd_config", "Match User backup\n\tPubkeyAuthentication no\nMatch Group ldap\n\tAuthorizedKeysCommand none\n\tAuthorizedKeysCommandUser nobody\n")
	rep, err := Setup(ctx, tr.opts())
	if err != nil {
		t.Fatal(err)
	}
	w := strings.Join(rep.Warnings, "\n")
	for _, want := range []string{
		"PubkeyAuthentication no (inside \"Match User backup\"): users matching it cannot log in with kaginashi keys",
		"AuthorizedKeysCommand none (inside \"Match Group ldap\"): users matching it get no kaginashi keys",
		"AuthorizedKeysCommandUser nobody (inside \"Match Group ldap\"): for users matching it sshd would run kaginashi's command as that user",
	} {
		if !strings.Contains(w, want) {
			t.Errorf("no warning %q in:\n%s", want, w)
		}
	}
	st, _ := Inspect(tr.opts())
	if !st.Configured || len(st.InMatch) != 3 {
		t.Fatalf("Inspect: configured %v, in Match %+v", st.Configured, st.InMatch)
	}
}

// sshd keeps the first value: a user set by a drop-in that sorts before
// ours would win.
func TestRefuseEarlierDropInSetsUser(t *testing.T) {
	tr := newTree(t, "fedora-39")
	tr.write("/etc/ssh/sshd_config.d/10-site.conf", []byte("AuthorizedKeysCommandUser nobody\n"), 0o600)
	mustRefuse(t, tr, tr.opts(), "10-site.conf:1 sets AuthorizedKeysCommandUser nobody", "first value wins")

	// After ours it is harmless.
	tr2 := newTree(t, "fedora-39")
	tr2.write("/etc/ssh/sshd_config.d/70-site.conf", []byte("AuthorizedKeysCommandUser nobody\n"), 0o600)
	if _, err := Setup(ctx, tr2.opts()); err != nil {
		t.Fatal(err)
	}
}

func TestRefuseEarlierCommandNone(t *testing.T) {
	tr := newTree(t, "ubuntu-22.04")
	b := append([]byte("AuthorizedKeysCommand none\n"), tr.read("/etc/ssh/sshd_config")...)
	tr.write("/etc/ssh/sshd_config", b, 0o644)
	mustRefuse(t, tr, tr.opts(), "/etc/ssh/sshd_config:1 sets AuthorizedKeysCommand none")

	// With the block mechanism ours comes first, and "none" later is moot.
	tr2 := newTree(t, "debian-9")
	tr2.appendTo("/etc/ssh/sshd_config", "AuthorizedKeysCommand none\n")
	if _, err := Setup(ctx, tr2.opts()); err != nil {
		t.Fatal(err)
	}
}

func TestRefuseForeignDropInFile(t *testing.T) {
	tr := newTree(t, "rhel-9")
	tr.write("/etc/ssh/sshd_config.d/"+DropInName, []byte("PermitRootLogin no\n"), 0o600)
	mustRefuse(t, tr, tr.opts(), "was not written by setup-sshd")
}

// --- the command path, checked as sshd checks it.

func TestUnsafeCommandPath(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("chown needs root")
	}
	cases := []struct {
		name      string
		prepare   func(tr *tree)
		component string
	}{
		{"group-writable parent", func(tr *tree) { os.Chmod(tr.real("/usr/local/sbin"), 0o775) }, "directory /usr/local/sbin is group-writable"},
		{"world-writable grandparent", func(tr *tree) { os.Chmod(tr.real("/usr/local"), 0o757) }, "directory /usr/local is world-writable"},
		{"parent owned by nobody", func(tr *tree) { os.Chown(tr.real("/usr/local/sbin"), 65534, 65534) }, "directory /usr/local/sbin is owned by uid 65534"},
		{"binary owned by nobody", func(tr *tree) { os.Chown(tr.real(agentPath), 65534, 0) }, "file " + agentPath + " is owned by uid 65534"},
		{"binary group-writable", func(tr *tree) { os.Chmod(tr.real(agentPath), 0o775) }, "file " + agentPath + " is group-writable"},
		{"binary missing", func(tr *tree) { os.Remove(tr.real(agentPath)) }, "cannot be resolved"},
		{"binary not executable", func(tr *tree) { os.Chmod(tr.real(agentPath), 0o644) }, "is not executable"},
		{"binary is a directory", func(tr *tree) { os.Remove(tr.real(agentPath)); os.Mkdir(tr.real(agentPath), 0o755) }, "is not a regular file"},
		{"symlink into an unsafe directory", func(tr *tree) {
			tr.mkdir("/opt/kaginashi")
			os.Chmod(tr.real("/opt/kaginashi"), 0o777)
			tr.write("/opt/kaginashi/agent", []byte("#!/bin/sh\n"), 0o755)
			os.Remove(tr.real(agentPath))
			os.Symlink("/opt/kaginashi/agent", tr.real(agentPath))
		}, "directory /opt/kaginashi is group- and world-writable"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tr := newTree(t, "debian-12")
			c.prepare(tr)
			mustRefuse(t, tr, tr.opts(), c.component, "Unsafe AuthorizedKeysCommand")
			_, err := checkCommandPath(tr.root, agentPath)
			var ue *UnsafePathError
			if !errors.As(err, &ue) || !strings.Contains(ue.Kind+" "+ue.Component+" "+ue.Reason, c.component) {
				t.Fatalf("checkCommandPath: %#v", err)
			}
		})
	}
}

func TestSafeSymlinkedCommand(t *testing.T) {
	tr := newTree(t, "debian-12")
	tr.mkdir("/opt/kaginashi/bin")
	tr.write("/opt/kaginashi/bin/agent", []byte("#!/bin/sh\n"), 0o755)
	os.Remove(tr.real(agentPath))
	if err := os.Symlink("../../../opt/kaginashi/bin/agent", tr.real(agentPath)); err != nil {
		t.Fatal(err)
	}
	if _, err := Setup(ctx, tr.opts()); err != nil {
		t.Fatal(err)
	}
}

func TestBadOptions(t *testing.T) {
	tr := newTree(t, "debian-12")
	for _, mod := range []func(*Options){
		func(o *Options) { o.CommandPath = "kaginashi-agent" },
		func(o *Options) { o.CommandPath = "/usr/local/sbin/../sbin/kaginashi-agent" },
		func(o *Options) { o.CommandArgs = []string{"--data-dir", "/var/lib/my keys"} },
		func(o *Options) { o.CommandArgs = []string{"%h"} },
		func(o *Options) { o.CommandArgs = []string{"#"} },
		func(o *Options) { o.User = "Bad User" },
		func(o *Options) { o.CommandPath = "" },
	} {
		o := tr.opts()
		mod(&o)
		before := tr.snapshot()
		if _, err := Setup(ctx, o); err == nil {
			t.Errorf("Setup accepted %+v", o)
		}
		sameSnapshot(t, "bad options", before, tr.snapshot())
	}
}

// --- validation failure rolls back.

func TestValidationFailureRollsBack(t *testing.T) {
	for _, d := range []string{"centos-7", "debian-12", "fedora-39"} {
		t.Run(d, func(t *testing.T) {
			tr := newTree(t, d)
			o := tr.opts()
			o.extraLines = []string{"BogusOption yes"}
			before := tr.snapshot()
			rep, err := Setup(ctx, o)
			var ve *ValidationError
			if !errors.As(err, &ve) || ve.RollbackErr != nil || !strings.Contains(err.Error(), "BogusOption") {
				t.Fatalf("want a validation error, got %v", err)
			}
			if rep.Changed {
				t.Error("report says changed")
			}
			sameSnapshot(t, "after a failed validation", before, tr.snapshot())
			if v, r, u := tr.counts(); v != 1 || r != 0 || u != 0 {
				t.Fatalf("validated %d, reloaded %d, users %d", v, r, u)
			}
			if tr.exists(recordPath(&o, ".json")) {
				t.Fatal("record left behind")
			}
		})
	}
}

// A failed update keeps the previous, working setup and its record.
func TestValidationFailureOnUpdateKeepsPrevious(t *testing.T) {
	tr := newTree(t, "rhel-8")
	o := tr.opts()
	original := tr.snapshot()
	if _, err := Setup(ctx, o); err != nil {
		t.Fatal(err)
	}
	afterFirst := tr.snapshot()
	rec1 := tr.read(recordPath(&o, ".json"))
	bad := o
	bad.CommandArgs = []string{"authorized-keys"}
	bad.extraLines = []string{"BogusOption yes"}
	if _, err := Setup(ctx, bad); err == nil {
		t.Fatal("no error")
	}
	sameSnapshot(t, "after a failed update", afterFirst, tr.snapshot())
	if !bytes.Equal(rec1, tr.read(recordPath(&o, ".json"))) {
		t.Fatal("record changed")
	}
	if _, err := Remove(ctx, o); err != nil {
		t.Fatal(err)
	}
	sameSnapshot(t, "after Remove", original, tr.snapshot())
}

func TestValidationFailureOnRemoveRollsBack(t *testing.T) {
	tr := newTree(t, "debian-9")
	o := tr.opts()
	if _, err := Setup(ctx, o); err != nil {
		t.Fatal(err)
	}
	after := tr.snapshot()
	o.Validate = func(context.Context, string) error { return errors.New("sshd says no") }
	_, err := Remove(ctx, o)
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("err %v", err)
	}
	sameSnapshot(t, "after a failed Remove", after, tr.snapshot())
	if !tr.exists(recordPath(&o, ".json")) {
		t.Fatal("record deleted")
	}
}

// --- updates, edits by the administrator, lost records.

func TestUpdateCommandReplacesBlock(t *testing.T) {
	for _, d := range []string{"ubuntu-18.04", "ubuntu-24.04"} {
		t.Run(d, func(t *testing.T) {
			tr := newTree(t, d)
			o := tr.opts()
			original := tr.snapshot()
			if _, err := Setup(ctx, o); err != nil {
				t.Fatal(err)
			}
			o.CommandArgs = []string{"authorized-keys", "--data-dir", "/srv/kaginashi"}
			rep, err := Setup(ctx, o)
			if err != nil || !rep.Changed {
				t.Fatalf("update: %v %+v", err, rep)
			}
			st, _ := Inspect(o)
			if !st.Configured || !strings.Contains(st.AuthorizedKeysCommand.Value, "/srv/kaginashi") || len(st.Managed) != 2 {
				t.Fatalf("after update: %+v", st)
			}
			if _, err := Remove(ctx, o); err != nil {
				t.Fatal(err)
			}
			sameSnapshot(t, "after Remove", original, tr.snapshot())
		})
	}
}

func TestRemoveKeepsAdministratorEdits(t *testing.T) {
	tr := newTree(t, "centos-7")
	o := tr.opts()
	original := tr.read("/etc/ssh/sshd_config")
	if _, err := Setup(ctx, o); err != nil {
		t.Fatal(err)
	}
	tr.appendTo("/etc/ssh/sshd_config", "ClientAliveInterval 60\n")
	rep, err := Remove(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if rep.ByteIdentical || !strings.Contains(strings.Join(rep.Warnings, "\n"), "changed since setup-sshd") {
		t.Fatalf("report: %+v", rep)
	}
	want := append(append([]byte(nil), original...), "ClientAliveInterval 60\n"...)
	if got := tr.read("/etc/ssh/sshd_config"); !bytes.Equal(got, want) {
		t.Fatalf("got:\n%s", unifiedDiff("sshd_config", want, got))
	}
}

func TestRemoveWithoutRecord(t *testing.T) {
	for _, d := range []string{"fedora-30", "ubuntu-22.04"} {
		t.Run(d, func(t *testing.T) {
			tr := newTree(t, d)
			o := tr.opts()
			original := tr.snapshot()
			if _, err := Setup(ctx, o); err != nil {
				t.Fatal(err)
			}
			if err := os.RemoveAll(tr.real(o.StateDir)); err != nil {
				t.Fatal(err)
			}
			if _, err := Remove(ctx, o); err != nil {
				t.Fatal(err)
			}
			if d == "ubuntu-22.04" {
				// Without the record nobody knows setup-sshd made the
				// directory: the drop-in goes, the empty directory stays.
				os.Remove(tr.real("/etc/ssh/sshd_config.d"))
			}
			sameSnapshot(t, "after Remove without a record", original, tr.snapshot())
		})
	}
}

func TestModeAndOwnerPreserved(t *testing.T) {
	tr := newTree(t, "rhel-8")
	os.Chmod(tr.real("/etc/ssh/sshd_config"), 0o600)
	if os.Geteuid() == 0 {
		os.Chown(tr.real("/etc/ssh/sshd_config"), 0, 4)
	}
	original := tr.snapshot()
	o := tr.opts()
	if _, err := Setup(ctx, o); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(tr.real("/etc/ssh/sshd_config"))
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", fi.Mode())
	}
	if st := fi.Sys().(*syscall.Stat_t); os.Geteuid() == 0 && st.Gid != 4 {
		t.Fatalf("group %d", st.Gid)
	}
	if _, err := Remove(ctx, o); err != nil {
		t.Fatal(err)
	}
	sameSnapshot(t, "after Remove", original, tr.snapshot())

	// A new drop-in takes the main file's mode (0600 on RHEL 9).
	tr2 := newTree(t, "rhel-9")
	os.Chmod(tr2.real("/etc/ssh/sshd_config"), 0o600)
	if _, err := Setup(ctx, tr2.opts()); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(tr2.real("/etc/ssh/sshd_config.d/" + DropInName)); fi.Mode().Perm() != 0o600 {
		t.Fatalf("drop-in mode %v", fi.Mode())
	}
}

// --- where the block goes.

func TestBlockGoesBeforeMatch(t *testing.T) {
	tr := newTree(t, "debian-9")
	cfg := "Port 2222\nMatch User git\n\tPasswordAuthentication no\n\tInclude sshd_config.d/*.conf\n"
	tr.write("/etc/ssh/sshd_config", []byte(cfg), 0o644)
	tr.write("/etc/ssh/sshd_config.d/x.conf", []byte("X11Forwarding no\n"), 0o644)
	o := tr.opts()
	rep, err := Setup(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Mechanism != MechanismBlock { // the Include is inside a Match block
		t.Fatalf("mechanism %s", rep.Mechanism)
	}
	got := string(tr.read("/etc/ssh/sshd_config"))
	if !strings.HasPrefix(got, beginMarker) || !strings.HasSuffix(got, endMarker+"\n\n"+cfg) {
		t.Fatalf("main file:\n%s", got)
	}
	st, _ := Inspect(o)
	if !st.Configured {
		t.Fatal("not configured")
	}
	if _, err := Remove(ctx, o); err != nil {
		t.Fatal(err)
	}
	if got := string(tr.read("/etc/ssh/sshd_config")); got != cfg {
		t.Fatalf("after Remove:\n%q", got)
	}
}

func TestMechanismSwitchesWhenIncludeAppears(t *testing.T) {
	tr := newTree(t, "debian-9")
	o := tr.opts()
	original := tr.read("/etc/ssh/sshd_config")
	if rep, err := Setup(ctx, o); err != nil || rep.Mechanism != MechanismBlock {
		t.Fatal(err, rep)
	}
	// The administrator upgrades to a file with an Include at the top.
	withBlock := tr.read("/etc/ssh/sshd_config")
	tr.write("/etc/ssh/sshd_config", append([]byte("Include /etc/ssh/sshd_config.d/*.conf\n"), withBlock...), 0o644)
	rep, err := Setup(ctx, o)
	if err != nil || rep.Mechanism != MechanismDropIn || !rep.Changed {
		t.Fatal(err, rep)
	}
	if hasMarker(tr.read("/etc/ssh/sshd_config")) {
		t.Fatal("old block still there")
	}
	if _, err := Remove(ctx, o); err != nil {
		t.Fatal(err)
	}
	want := append([]byte("Include /etc/ssh/sshd_config.d/*.conf\n"), original...)
	if got := tr.read("/etc/ssh/sshd_config"); !bytes.Equal(got, want) || tr.exists("/etc/ssh/sshd_config.d") {
		t.Fatalf("after Remove:\n%s", unifiedDiff("x", want, got))
	}
}

func TestAmazonLinux2023LikeWarning(t *testing.T) {
	// RHEL 9's drop-in directory with a main file that does not include it.
	tr := newTree(t, "rhel-9")
	b := bytes.Replace(tr.read("/etc/ssh/sshd_config"), []byte("\nInclude /etc/ssh/sshd_config.d/*.conf"), []byte("\n#Include /etc/ssh/sshd_config.d/*.conf"), 1)
	tr.write("/etc/ssh/sshd_config", b, 0o644)
	rep, err := Setup(ctx, tr.opts())
	if err != nil {
		t.Fatal(err)
	}
	if rep.Mechanism != MechanismBlock || !strings.Contains(strings.Join(rep.Warnings, "\n"), "does not Include them") {
		t.Fatalf("%+v", rep)
	}
}

func TestSetupRecordsStateWhenAlreadyConfigured(t *testing.T) {
	tr := newTree(t, "debian-9")
	o := tr.opts()
	original := tr.snapshot()
	if _, err := Setup(ctx, o); err != nil {
		t.Fatal(err)
	}
	os.RemoveAll(tr.real(o.StateDir))
	rep, err := Setup(ctx, o)
	if err != nil || rep.Changed || !tr.exists(recordPath(&o, ".json")) {
		t.Fatalf("%v %+v", err, rep)
	}
	if rep, err := Remove(ctx, o); err != nil || !rep.ByteIdentical {
		t.Fatalf("%v %+v", err, rep)
	}
	sameSnapshot(t, "after Remove", original, tr.snapshot())
}

func TestReloadFailureIsReported(t *testing.T) {
	tr := newTree(t, "debian-12")
	o := tr.opts()
	o.Reload = func(context.Context) error { return errors.New("no systemd") }
	rep, err := Setup(ctx, o)
	if err == nil || !strings.Contains(err.Error(), "reloading sshd failed") || !rep.Changed {
		t.Fatalf("%v %+v", err, rep)
	}
	if st, _ := Inspect(o); !st.Configured {
		t.Fatal("configuration was rolled back after a reload failure")
	}
}

func TestRootRefusesRealUserCreation(t *testing.T) {
	tr := newTree(t, "debian-12")
	o := tr.opts()
	o.CreateUser = nil
	before := tr.snapshot()
	if _, err := Setup(ctx, o); err == nil || !strings.Contains(err.Error(), "refusing to add a user") {
		t.Fatalf("err %v", err)
	}
	sameSnapshot(t, "after the refusal", before, tr.snapshot())
}

// An Include of a directory that does not exist yet, two levels deep.
func TestCreatesAndRemovesMissingDirectories(t *testing.T) {
	tr := newTree(t, "debian-9")
	b := append([]byte("Include /etc/ssh/local/sshd_config.d/*.conf\n"), tr.read("/etc/ssh/sshd_config")...)
	tr.write("/etc/ssh/sshd_config", b, 0o644)
	original := tr.snapshot()
	o := tr.opts()
	rep, err := Setup(ctx, o)
	if err != nil || rep.Mechanism != MechanismDropIn || !tr.exists("/etc/ssh/local/sshd_config.d/"+DropInName) {
		t.Fatalf("%v %+v", err, rep)
	}
	if _, err := Remove(ctx, o); err != nil {
		t.Fatal(err)
	}
	sameSnapshot(t, "after Remove", original, tr.snapshot())
}
