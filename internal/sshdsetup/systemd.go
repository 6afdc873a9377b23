package sshdsetup

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// defaultSystemdDirs are systemd's unit directories, highest priority first.
var defaultSystemdDirs = []string{
	"/etc/systemd/system",
	"/run/systemd/system",
	"/usr/local/lib/systemd/system",
	"/usr/lib/systemd/system",
	"/lib/systemd/system",
}

// sshdUnits are the names the OpenSSH server unit has on the supported
// distributions (Debian/Ubuntu: ssh, with the alias sshd; RPM distros: sshd;
// the @ forms are the per-connection units of socket activation).
var sshdUnits = []string{"ssh.service", "sshd.service", "ssh@.service", "sshd@.service"}

// defaultEnvFiles are where the units' $SSHD_OPTS / $OPTIONS come from.
var defaultEnvFiles = []string{"/etc/default/ssh", "/etc/sysconfig/sshd"}

type unitLine struct {
	file  string
	line  int
	value string
}

// scanSystemd finds sshd command-line options that set an
// AuthorizedKeysCommand (or its user): ExecStart lines of the sshd units and
// their drop-ins (after systemd's "ExecStart=" resets), and the environment
// files they read (with dirs nil, also /etc/default/ssh and
// /etc/sysconfig/sshd, which Debian's and Red Hat's units read). This is how AWS's ec2-instance-connect package configures
// sshd, and command-line options beat every sshd_config file.
func scanSystemd(root string, dirs []string) []Conflict {
	explicit := dirs != nil
	if !explicit {
		dirs = defaultSystemdDirs
	}
	real := func(l string) string {
		if root == "" {
			return l
		}
		return filepath.Join(root, l)
	}
	var out []Conflict
	var envFiles []string
	if !explicit {
		envFiles = append(envFiles, defaultEnvFiles...)
	}
	for _, unit := range sshdUnits {
		var files []string
		for _, d := range dirs {
			p := path.Join(d, unit)
			if fi, err := os.Stat(real(p)); err == nil && fi.Mode().IsRegular() {
				files = append(files, p)
				break
			}
		}
		// Drop-ins: by file name across all directories, the
		// highest-priority directory winning, applied in name order.
		dropins := map[string]string{}
		for i := len(dirs) - 1; i >= 0; i-- {
			ents, err := os.ReadDir(real(path.Join(dirs[i], unit+".d")))
			if err != nil {
				continue
			}
			for _, e := range ents {
				if strings.HasSuffix(e.Name(), ".conf") {
					dropins[e.Name()] = path.Join(dirs[i], unit+".d", e.Name())
				}
			}
		}
		names := make([]string, 0, len(dropins))
		for n := range dropins {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			files = append(files, dropins[n])
		}
		var exec []unitLine
		for _, f := range files {
			data, err := os.ReadFile(real(f))
			if err != nil {
				continue
			}
			for _, kv := range unitServiceLines(f, data) {
				switch kv.key {
				case "ExecStart":
					if kv.value == "" {
						exec = nil
					} else {
						exec = append(exec, kv.unitLine)
					}
				case "EnvironmentFile":
					envFiles = append(envFiles, strings.TrimPrefix(kv.value, "-"))
				}
			}
		}
		for _, e := range exec {
			l := strings.ToLower(e.value)
			if strings.Contains(l, "authorizedkeyscommand") {
				fix := "remove the option from that unit file (or the drop-in), run systemctl daemon-reload, then run setup-sshd again"
				if strings.Contains(strings.ToLower(e.file+e.value), "ec2-instance-connect") || strings.Contains(e.value, "eic_run_authorized_keys") {
					fix = "this is AWS's ec2-instance-connect package: if kaginashi should replace it, remove the package " +
						"(apt-get remove ec2-instance-connect, or yum/dnf remove ec2-instance-connect), which deletes this drop-in and restarts sshd, then run setup-sshd again"
				}
				out = append(out, Conflict{
					File: e.file, Line: e.line, Keyword: "ExecStart", Value: e.value, Source: "systemd",
					Message: fmt.Sprintf("%s:%d starts sshd with an AuthorizedKeysCommand on its command line (-o), which overrides every sshd_config file, "+
						"so kaginashi's setting would never be used; %s", e.file, e.line, fix),
				})
			}
		}
	}
	seen := map[string]bool{}
	for _, f := range envFiles {
		if f == "" || seen[f] {
			continue
		}
		seen[f] = true
		data, err := os.ReadFile(real(f))
		if err != nil {
			continue
		}
		for i, l := range splitLines(data) {
			t := strings.TrimSpace(l)
			if strings.HasPrefix(t, "#") || !strings.Contains(strings.ToLower(t), "authorizedkeyscommand") {
				continue
			}
			out = append(out, Conflict{
				File: f, Line: i + 1, Value: t, Source: "environment",
				Message: fmt.Sprintf("%s:%d passes an AuthorizedKeysCommand option to sshd on its command line, which overrides every sshd_config file; remove it and run setup-sshd again", f, i+1),
			})
		}
	}
	return out
}

type unitKV struct {
	unitLine
	key string
}

// unitServiceLines returns the key=value lines of the [Service] section of a
// unit file, with backslash continuations joined.
func unitServiceLines(file string, data []byte) []unitKV {
	var out []unitKV
	section := ""
	lines := splitLines(data)
	for i := 0; i < len(lines); i++ {
		start := i + 1
		l := strings.TrimSpace(lines[i])
		for strings.HasSuffix(l, "\\") && i+1 < len(lines) {
			i++
			l = strings.TrimSuffix(l, "\\") + " " + strings.TrimSpace(lines[i])
		}
		if l == "" || l[0] == '#' || l[0] == ';' {
			continue
		}
		if l[0] == '[' {
			section = strings.Trim(l, "[]")
			continue
		}
		if section != "Service" {
			continue
		}
		k, v, ok := strings.Cut(l, "=")
		if !ok {
			continue
		}
		out = append(out, unitKV{unitLine: unitLine{file: file, line: start, value: strings.TrimSpace(v)}, key: strings.TrimSpace(k)})
	}
	return out
}
