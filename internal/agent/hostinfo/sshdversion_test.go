package hostinfo

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

func TestParseSSHVersion(t *testing.T) {
	cases := []struct {
		in, release  string
		major, minor int
	}{
		// The brief's strings: CentOS 7 / RHEL 7, Debian 12, RHEL 8, Ubuntu 24.04.
		{"OpenSSH_7.4p1, OpenSSL 1.0.2k-fips  26 Jan 2017", "OpenSSH_7.4p1", 7, 4},
		{"OpenSSH_9.2p1 Debian-2+deb12u3, OpenSSL 3.0.15 3 Sep 2024", "OpenSSH_9.2p1 Debian-2+deb12u3", 9, 2},
		{"OpenSSH_8.0p1, OpenSSL 1.1.1c FIPS  28 May 2019", "OpenSSH_8.0p1", 8, 0},
		{"OpenSSH_9.6p1 Ubuntu-3ubuntu13.5", "OpenSSH_9.6p1 Ubuntu-3ubuntu13.5", 9, 6},
		{"OpenSSH_9.6p1 Ubuntu-3ubuntu13.5, OpenSSL 3.0.13 30 Jan 2024\n", "OpenSSH_9.6p1 Ubuntu-3ubuntu13.5", 9, 6},
		// Usage text of an sshd given an unknown option (this is how it is probed).
		{"unknown option -- ?\nOpenSSH_9.2p1 Debian-2+deb12u10, OpenSSL 3.0.19 27 Jan 2026\nusage: sshd [-46DdeiqTtV] [-C connection_spec]\n",
			"OpenSSH_9.2p1 Debian-2+deb12u10", 9, 2},
		{"sshd: illegal option -- ?\nOpenSSH_7.2p2 Ubuntu-4ubuntu2.10, OpenSSL 1.0.2g  1 Mar 2016\nusage: sshd [-46DdeiqTt]\n",
			"OpenSSH_7.2p2 Ubuntu-4ubuntu2.10", 7, 2},
		// "sshd -V" (9.1+) prints the bare version.
		{"OpenSSH_9.2, OpenSSL 3.0.19 27 Jan 2026\n", "OpenSSH_9.2", 9, 2},
		{"OpenSSH_10.0p2, OpenSSL 3.5.0 8 Apr 2025", "OpenSSH_10.0p2", 10, 0},
		{"OpenSSH_8.7p1, OpenSSL 3.0.7 1 Nov 2022", "OpenSSH_8.7p1", 8, 7},
		{"OpenSSH_8.4p1, OpenSSL 1.1.1l  24 Aug 2021", "OpenSSH_8.4p1", 8, 4},
		{"OpenSSH_9.9p1, without OpenSSL", "OpenSSH_9.9p1", 9, 9},
		{"SSH-2.0-OpenSSH_8.9p1 Ubuntu-3ubuntu0.10\r\n", "OpenSSH_8.9p1 Ubuntu-3ubuntu0.10", 8, 9},
		{"OpenSSH_for_Windows_8.1p1, LibreSSL 3.0.2", "OpenSSH_for_Windows_8.1p1", 8, 1},
		{"OpenSSH_junk then OpenSSH_8.2p1 Ubuntu-4ubuntu0.11", "OpenSSH_8.2p1 Ubuntu-4ubuntu0.11", 8, 2},
	}
	for _, c := range cases {
		rel, maj, min, ok := ParseSSHVersion(c.in)
		if !ok || rel != c.release || maj != c.major || min != c.minor {
			t.Errorf("ParseSSHVersion(%q) = %q %d.%d %v, want %q %d.%d", c.in, rel, maj, min, ok, c.release, c.major, c.minor)
		}
	}
	for _, in := range []string{"", "OpenSSH", "OpenSSH_", "OpenSSH_x.y", "OpenSSH_9", "OpenSSH_9.", "OpenSSH_9.x",
		"Dropbear sshd v2022.83", "OpenSSH_12345.1", "openssh_9.2p1", "usage: sshd [-46DdeiqTt]"} {
		if rel, _, _, ok := ParseSSHVersion(in); ok {
			t.Errorf("ParseSSHVersion(%q) accepted: %q", in, rel)
		}
	}
}

// fakeSSHD installs a shell script as /usr/sbin/sshd under root that logs
// each invocation's arguments to /usr/sbin/sshd.args.
func fakeSSHD(t *testing.T, root, body string) {
	t.Helper()
	put(t, root, "/usr/sbin/sshd", "#!/bin/sh\necho \"$*\" >> \"$0.args\"\n"+body, 0o755)
}

func sshdArgs(t *testing.T, root string) []string {
	t.Helper()
	b, err := os.ReadFile(hostPath(root, "/usr/sbin/sshd.args"))
	if err != nil {
		return nil
	}
	return strings.Fields(string(b))
}

const (
	// OpenSSH before 9.1: no -V; any unknown option prints the usage.
	sshd74 = `echo "sshd: illegal option -- ${1#-}" >&2
echo "OpenSSH_7.4p1, OpenSSL 1.0.2k-fips  26 Jan 2017" >&2
echo "usage: sshd [-46DdeiqTt] [-C connection_spec] [-c host_cert_file]" >&2
exit 1
`
	// Debian 12's sshd: -V prints the bare version, the usage the release.
	sshdDeb12 = `if [ "$1" = -V ]; then echo "OpenSSH_9.2, OpenSSL 3.0.15 3 Sep 2024" >&2; exit 0; fi
echo "unknown option -- ${1#-}" >&2
echo "OpenSSH_9.2p1 Debian-2+deb12u3, OpenSSL 3.0.15 3 Sep 2024" >&2
echo "usage: sshd [-46DdeiqTtV] [-C connection_spec] [-c host_cert_file]" >&2
exit 1
`
	// A hypothetical sshd whose usage no longer carries the version.
	sshdOnlyV = `if [ "$1" = -V ]; then echo "OpenSSH_10.1p1, OpenSSL 3.5.0 8 Apr 2025"; exit 0; fi
echo "usage: sshd [-46DdeiqTtV]" >&2
exit 1
`
	sshdMute = "exit 1\n"
)

func TestSSHDVersionProbe(t *testing.T) {
	type want struct {
		release      string
		major, minor int
		args         []string
	}
	cases := []struct {
		name  string
		sshd  string
		setup func(t *testing.T, root string)
		want  want
	}{
		{"openssh 7.4", sshd74, nil, want{"OpenSSH_7.4p1", 7, 4, []string{"-?"}}},
		{"debian 12", sshdDeb12, nil, want{"OpenSSH_9.2p1 Debian-2+deb12u3", 9, 2, []string{"-?"}}},
		{"only -V", sshdOnlyV, nil, want{"OpenSSH_10.1p1", 10, 1, []string{"-?", "-V"}}},
		{"dpkg fallback", sshdMute, func(t *testing.T, root string) {
			put(t, root, "/var/lib/dpkg/status", `Package: openssh-client
Status: install ok installed
Version: 1:9.2p1-2+deb12u3

Package: openssh-server
Status: deinstall ok config-files
Version: 1:8.4p1-5+deb11u3

Package: openssh-server
Status: install ok installed
Priority: optional
Section: net
Installed-Size: 1881
Version: 1:9.2p1-2+deb12u3
Description: secure shell (SSH) server, for secure access from remote machines
 This is the portable version of OpenSSH.
`, 0o644)
			put(t, root, "/usr/bin/ssh", "#!/bin/sh\necho 'OpenSSH_1.0p1, should not be asked' >&2\n", 0o755)
		}, want{"OpenSSH_9.2p1", 9, 2, []string{"-?", "-V"}}},
		{"ssh -V fallback", sshdMute, func(t *testing.T, root string) {
			put(t, root, "/usr/bin/ssh", "#!/bin/sh\n[ \"$1\" = -V ] && echo 'OpenSSH_8.0p1, OpenSSL 1.1.1c FIPS  28 May 2019' >&2\n", 0o755)
		}, want{"OpenSSH_8.0p1", 8, 0, []string{"-?", "-V"}}},
		{"no sshd", "", func(t *testing.T, root string) {
			put(t, root, "/usr/bin/ssh", "#!/bin/sh\necho 'OpenSSH_8.0p1' >&2\n", 0o755)
		}, want{"", 0, 0, nil}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			root := t.TempDir()
			if c.sshd != "" {
				fakeSSHD(t, root, c.sshd)
			}
			if c.setup != nil {
				c.setup(t, root)
			}
			rel, maj, min, err := sshdVersion(context.Background(), Options{Root: root})
			if err != nil {
				t.Fatal(err)
			}
			if rel != c.want.release || maj != c.want.major || min != c.want.minor {
				t.Errorf("got %q %d.%d, want %q %d.%d", rel, maj, min, c.want.release, c.want.major, c.want.minor)
			}
			// sshd is only ever asked with one of the two probe options:
			// never without arguments (that would start a daemon).
			if got := sshdArgs(t, root); strings.Join(got, " ") != strings.Join(c.want.args, " ") {
				t.Errorf("sshd run with %q, want %q", got, c.want.args)
			}
		})
	}
}

func TestSSHDVersionCustomPath(t *testing.T) {
	root := t.TempDir()
	put(t, root, "/opt/openssh/sbin/sshd", "#!/bin/sh\n"+sshd74, 0o755)
	put(t, root, "/usr/sbin/sshd", "#!/bin/sh\n"+sshdDeb12, 0o755)
	rel, _, _, err := sshdVersion(context.Background(), Options{Root: root, SSHD: "/opt/openssh/sbin/sshd"})
	if err != nil || rel != "OpenSSH_7.4p1" {
		t.Fatalf("%q %v", rel, err)
	}
}

// TestSSHDVersionHung: an sshd that never answers (and leaves a child
// holding its output open) is given up on at the timeout, and not asked
// again.
func TestSSHDVersionHung(t *testing.T) {
	root := t.TempDir()
	fakeSSHD(t, root, "sleep 30 &\nexec sleep 30\n")
	start := time.Now()
	rel, _, _, err := sshdVersion(context.Background(), Options{Root: root, cmdTimeout: 300 * time.Millisecond})
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("took %v", d)
	}
	if rel != "" || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("%q %v", rel, err)
	}
	if got := sshdArgs(t, root); len(got) != 1 {
		t.Fatalf("asked %d times: %q", len(got), got)
	}
}

func TestSSHDVersionNotRunnable(t *testing.T) {
	root := t.TempDir()
	put(t, root, "/usr/sbin/sshd", "not a program\n", 0o644)
	rel, _, _, err := sshdVersion(context.Background(), Options{Root: root})
	if rel != "" || err == nil {
		t.Fatalf("no version and no error: %q %v", rel, err)
	}
	// The client next to it still tells.
	put(t, root, "/usr/bin/ssh", "#!/bin/sh\necho 'OpenSSH_8.7p1, OpenSSL 3.0.7 1 Nov 2022' >&2\n", 0o755)
	rel, maj, min, err := sshdVersion(context.Background(), Options{Root: root})
	if err != nil || rel != "OpenSSH_8.7p1" || maj != 8 || min != 7 {
		t.Fatalf("%q %d.%d %v", rel, maj, min, err)
	}
}

func TestSSHDVersionOutputBounded(t *testing.T) {
	root := t.TempDir()
	// A flood before the version: only the first maxCommandOut bytes are
	// kept, so the version is not found, and the flood does not hang us.
	fakeSSHD(t, root, "head -c 1000000 /dev/zero | tr '\\0' x\necho OpenSSH_9.9p1 >&2\nexit 1\n")
	rel, _, _, err := sshdVersion(context.Background(), Options{Root: root})
	if rel != "" || err != nil {
		t.Fatalf("%q %v", rel, err)
	}
}
