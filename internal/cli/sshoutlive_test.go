package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// sshMayOutlive: when ssh may go on after kaginashi ends, the tunnel must
// not live in kaginashi.
func TestSSHMayOutlive(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	sshDir := filepath.Join(home, ".ssh")
	if err := os.MkdirAll(filepath.Join(sshDir, "conf.d"), 0o700); err != nil {
		t.Fatal(err)
	}
	write := func(path, s string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	userConfig := filepath.Join(sshDir, "config")
	// Arguments, with no configuration file.
	for args, want := range map[string]string{
		"":                                     "",
		"-v -N -L 8080:localhost:80":           "",
		"-f -N":                                "-f",
		"-fN":                                  "-f",
		"-Nf":                                  "-f",
		"-L 8080:x:80 -f":                      "-f",
		"-o ControlPersist=10m":                "ControlPersist 10m",
		"-oControlPersist=yes":                 "ControlPersist yes",
		"-o ControlPersist=no":                 "",
		"-o ForkAfterAuthentication=yes":       "ForkAfterAuthentication yes",
		"-o forkafterauthentication no":        "",
		"-- -f":                                "", // the command's
		"uptime -f":                            "",
		"-o User=f":                            "",
		"-i /tmp/f -o ControlMaster=auto echo": "",
	} {
		got := sshMayOutlive(strings.Fields(args))
		if got != want {
			t.Errorf("%q: %q; want %q", args, got, want)
		}
	}

	// Configuration: the user's file, its Includes (relative to ~/.ssh),
	// comments skipped.
	write(userConfig, "# ControlPersist yes\nHost *\n  ServerAliveInterval 10\n  Include conf.d/*.conf\n")
	write(filepath.Join(sshDir, "conf.d", "a.conf"), "Host i-*\n  ControlMaster auto\n")
	if got := sshMayOutlive(nil); got != "" {
		t.Errorf("no persisting master: %q", got)
	}
	write(filepath.Join(sshDir, "conf.d", "b.conf"), "Host bastion\n  ControlPersist = 600\n")
	if got := sshMayOutlive(nil); !strings.HasPrefix(got, "ControlPersist 600 in ") || !strings.HasSuffix(got, "b.conf") {
		t.Errorf("ControlPersist in an Include: %q", got)
	}
	// -F: that file instead (and not the user's).
	other := filepath.Join(home, "other_config")
	write(other, "Host *\n  ForkAfterAuthentication yes\n")
	if got := sshMayOutlive([]string{"-F", other}); got != "ForkAfterAuthentication yes in "+other {
		t.Errorf("-F %s: %q", other, got)
	}
	if got := sshMayOutlive([]string{"-F", "none"}); got != "" {
		t.Errorf("-F none: %q", got)
	}
	// An Include loop ends.
	write(userConfig, "Include config\n")
	if got := sshMayOutlive(nil); got != "" {
		t.Errorf("an Include loop: %q", got)
	}
}

func FuzzOutlivingOption(f *testing.F) {
	for _, s := range []string{"ControlPersist yes", "controlpersist=no", "ForkAfterAuthentication = yes", "  ", "=", "ControlPersist\t\"10m\"", "Include a b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		why := outlivingOption(line)
		if why != "" && !strings.HasPrefix(why, "ControlPersist ") && !strings.HasPrefix(why, "ForkAfterAuthentication ") {
			t.Errorf("%q: %q", line, why)
		}
	})
}
