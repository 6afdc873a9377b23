package sshdsetup

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// smallScript is a stand-in kaginashi-authorized-keys answering --version
// with version; it leaves a file named "ran" next to itself when run, so a
// test can tell it was not run.
func smallScript(version string) []byte {
	return []byte("#!/bin/sh\ntouch \"$(dirname \"$0\")/ran\"\n[ \"$1\" = --version ] && echo 'kaginashi-authorized-keys " + version + "'\n")
}

func TestPickCommand(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		setup   func(dir string)
		small   bool
		why     string
		mustRun bool
	}{
		{"none next to the agent", func(string) {}, false, "no kaginashi-authorized-keys next to", false},
		{"same version", func(d string) { write(t, filepath.Join(d, AKCBinary), smallScript("v1.2.3"), 0o755) }, true, "small AuthorizedKeysCommand binary", true},
		{"another version", func(d string) { write(t, filepath.Join(d, AKCBinary), smallScript("v1.2.2"), 0o755) }, false, "is another build", true},
		{"fails", func(d string) { write(t, filepath.Join(d, AKCBinary), []byte("#!/bin/sh\nexit 3\n"), 0o755) }, false, "--version failed", false},
		{"not executable", func(d string) { write(t, filepath.Join(d, AKCBinary), smallScript("v1.2.3"), 0o644) }, false, "not an executable file", false},
		{"group-writable", func(d string) { write(t, filepath.Join(d, AKCBinary), smallScript("v1.2.3"), 0o775) }, false, "writable by group or others", false},
		{"in a world-writable directory", func(d string) {
			write(t, filepath.Join(d, AKCBinary), smallScript("v1.2.3"), 0o755)
			os.Chmod(d, 0o777)
		}, false, "directory writable by group or others", false},
		{"a directory", func(d string) { os.Mkdir(filepath.Join(d, AKCBinary), 0o755) }, false, "not an executable file", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			agent := filepath.Join(dir, AgentBinary)
			write(t, agent, []byte("#!/bin/sh\nexit 0\n"), 0o755)
			tc.setup(dir)
			c := PickCommand(ctx, agent, "v1.2.3")
			want := agent
			if tc.small {
				want = filepath.Join(dir, AKCBinary)
			}
			if c.Path != want || c.Small != tc.small || !strings.Contains(c.Why, tc.why) {
				t.Errorf("PickCommand = %+v; want path %s, small %v, why containing %q", c, want, tc.small, tc.why)
			}
			if !tc.small && !strings.Contains(c.Why, "using kaginashi-agent itself") {
				t.Errorf("the fallback does not say so: %q", c.Why)
			}
			_, err := os.Stat(filepath.Join(dir, "ran"))
			if ran := err == nil; ran != tc.mustRun && (tc.mustRun || strings.Contains(tc.why, "writable")) {
				t.Errorf("candidate run: %v, want %v", ran, tc.mustRun)
			}
		})
	}
}

func write(t *testing.T, p string, b []byte, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(p, b, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
}

// TestSetupWithEitherCommand: on the fixture copies, setup-sshd's line
// names the small binary when PickCommand chose it and kaginashi-agent
// otherwise, with the same arguments; either way Inspect reports sshd as
// configured and Remove restores the files byte for byte.
func TestSetupWithEitherCommand(t *testing.T) {
	for _, d := range []string{"debian-12", "centos-7", "ubuntu-24.04", "rhel-8"} {
		for _, small := range []bool{true, false} {
			name := d + "/fallback"
			if small {
				name = d + "/small"
			}
			t.Run(name, func(t *testing.T) {
				tr := newTree(t, d)
				version := "v9"
				if !small {
					version = "v8" // the agent is another build than the small binary
				}
				tr.write("/usr/local/sbin/"+AKCBinary, smallScript("v9"), 0o755)
				pick := PickCommand(context.Background(), tr.real(agentPath), version)
				if pick.Small != small {
					t.Fatalf("PickCommand: %+v", pick)
				}
				o := tr.opts()
				o.CommandPath = strings.TrimPrefix(pick.Path, tr.root)
				before := tr.snapshot()
				rep, err := Setup(context.Background(), o)
				if err != nil {
					t.Fatal(err)
				}
				want := "AuthorizedKeysCommand " + wantCmd + "\n"
				if small {
					want = "AuthorizedKeysCommand /usr/local/sbin/" + AKCBinary + " authorized-keys --data-dir /var/lib/kaginashi-agent %u %f\n"
				}
				if got := tr.read(rep.File); !bytes.Contains(got, []byte("\n"+want)) {
					t.Errorf("%s does not hold %q:\n%s", rep.File, want, got)
				}
				st, err := Inspect(o)
				if err != nil || !st.Configured || st.HandWired {
					t.Errorf("Inspect after Setup: %v, configured %v, hand-wired %v", err, st.Configured, st.HandWired)
				}
				if _, err := Remove(context.Background(), o); err != nil {
					t.Fatal(err)
				}
				after := tr.snapshot()
				for k := range after {
					if strings.HasPrefix(k, "/var/lib/kaginashi-agent/") || strings.HasSuffix(k, "/ran") || k == "/etc/passwd" {
						delete(after, k)
					}
				}
				for k := range before {
					if strings.HasSuffix(k, "/ran") {
						delete(before, k)
					}
				}
				sameSnapshot(t, "after Remove", before, after)
			})
		}
	}
}

// TestDryRunInstallPending: a dry run for a command setup-sshd would
// install first plans the change with a warning instead of refusing over a
// file that is not there yet; a real run still refuses it.
func TestDryRunInstallPending(t *testing.T) {
	tr := newTree(t, "debian-12")
	o := tr.opts()
	o.CommandPath = "/usr/local/libexec/kaginashi/" + AKCBinary
	o.DryRun, o.InstallPending = true, true
	before := tr.snapshot()
	rep, err := Setup(context.Background(), o)
	if err != nil {
		t.Fatalf("dry run: %v", err)
	}
	if !strings.Contains(rep.Diff, o.CommandPath+" authorized-keys") || !strings.Contains(strings.Join(rep.Warnings, "\n"), "not installed yet") {
		t.Errorf("dry run report:\n%s", rep)
	}
	sameSnapshot(t, "after a dry run", before, tr.snapshot())
	o.DryRun = false
	mustRefuse(t, tr, o, "cannot be resolved")
}
