package hostinfo

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"syscall"
	"testing"
	"time"
)

// osFixtures are testdata/os-release/*: every distribution of the seed
// article's list (Amazon Linux 2023/2, Ubuntu 16.04+, CentOS 7+, RHEL 7.4+,
// Debian 9+, SLES 12 SP3+, Fedora 30+, openSUSE Leap 42.3+, Oracle Linux
// 7.4+) at its oldest supported release and a current one, plus AlmaLinux,
// Rocky and a derivative known only through ID_LIKE.
var osFixtures = []struct {
	file, id, version, pretty, user, platform string
}{
	{"amzn-2023", "amzn", "2023", "Amazon Linux 2023.6.20241212", "ec2-user", "Linux/UNIX"},
	{"amzn-2", "amzn", "2", "Amazon Linux 2", "ec2-user", "Linux/UNIX"},
	{"amzn-2018.03", "amzn", "2018.03", "Amazon Linux AMI 2018.03", "ec2-user", "Linux/UNIX"},
	{"ubuntu-16.04", "ubuntu", "16.04", "Ubuntu 16.04.7 LTS", "ubuntu", "Linux/UNIX"},
	{"ubuntu-18.04", "ubuntu", "18.04", "Ubuntu 18.04.6 LTS", "ubuntu", "Linux/UNIX"},
	{"ubuntu-24.04", "ubuntu", "24.04", "Ubuntu 24.04.1 LTS", "ubuntu", "Linux/UNIX"},
	{"centos-7", "centos", "7", "CentOS Linux 7 (Core)", "centos", "Linux/UNIX"},
	{"centos-stream-9", "centos", "9", "CentOS Stream 9", "centos", "Linux/UNIX"},
	{"rhel-7.4", "rhel", "7.4", "Red Hat Enterprise Linux Server 7.4 (Maipo)", "ec2-user", "Red Hat Enterprise Linux"},
	{"rhel-9.4", "rhel", "9.4", "Red Hat Enterprise Linux 9.4 (Plow)", "ec2-user", "Red Hat Enterprise Linux"},
	{"debian-9", "debian", "9", "Debian GNU/Linux 9 (stretch)", "admin", "Linux/UNIX"},
	{"debian-12", "debian", "12", "Debian GNU/Linux 12 (bookworm)", "admin", "Linux/UNIX"},
	{"sles-12-sp3", "sles", "12.3", "SUSE Linux Enterprise Server 12 SP3", "ec2-user", "SUSE Linux"},
	{"sles-15-sp6", "sles", "15.6", "SUSE Linux Enterprise Server 15 SP6", "ec2-user", "SUSE Linux"},
	{"sles-sap-15-sp5", "sles_sap", "15.5", "SUSE Linux Enterprise Server for SAP Applications 15 SP5", "ec2-user", "SUSE Linux"},
	{"fedora-30", "fedora", "30", "Fedora 30 (Cloud Edition)", "fedora", "Linux/UNIX"},
	{"fedora-41", "fedora", "41", "Fedora Linux 41 (Cloud Edition)", "fedora", "Linux/UNIX"},
	{"opensuse-leap-42.3", "opensuse", "42.3", "openSUSE Leap 42.3", "ec2-user", "Linux/UNIX"},
	{"opensuse-leap-15.6", "opensuse-leap", "15.6", "openSUSE Leap 15.6", "ec2-user", "Linux/UNIX"},
	{"opensuse-tumbleweed", "opensuse-tumbleweed", "20241211", "openSUSE Tumbleweed", "ec2-user", "Linux/UNIX"},
	{"ol-7.4", "ol", "7.4", "Oracle Linux Server 7.4", "ec2-user", "Linux/UNIX"},
	{"ol-9.4", "ol", "9.4", "Oracle Linux Server 9.4", "ec2-user", "Linux/UNIX"},
	{"almalinux-9.5", "almalinux", "9.5", "AlmaLinux 9.5 (Teal Serval)", "ec2-user", "Linux/UNIX"},
	{"rocky-9.5", "rocky", "9.5", "Rocky Linux 9.5 (Blue Onyx)", "rocky", "Linux/UNIX"},
	{"eurolinux-9", "eurolinux", "9.4", "EuroLinux 9.4 (Stockholm)", "ec2-user", "Linux/UNIX"}, // via ID_LIKE rhel
}

// TestOSReleaseFixtures runs Collect on a root holding each fixture as
// /etc/os-release and a passwd with the expected default user.
func TestOSReleaseFixtures(t *testing.T) {
	files, err := filepath.Glob("testdata/os-release/*")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != len(osFixtures) {
		t.Errorf("testdata/os-release has %d files, the table %d", len(files), len(osFixtures))
	}
	seedIDs := map[string]bool{"amzn": false, "ubuntu": false, "centos": false, "rhel": false, "debian": false,
		"sles": false, "fedora": false, "opensuse-leap": false, "ol": false}
	for _, fx := range osFixtures {
		t.Run(fx.file, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata/os-release", fx.file))
			if err != nil {
				t.Fatal(err)
			}
			root := t.TempDir()
			put(t, root, "/etc/os-release", string(data), 0o644)
			put(t, root, "/etc/passwd", "root:x:0:0:root:/root:/bin/bash\n"+fx.user+":x:1000:1000::/home/"+fx.user+":/bin/bash\n", 0o644)
			info, err := Collect(context.Background(), Options{Root: root, interfaces: noInterfaces})
			if err != nil {
				t.Fatal(err)
			}
			got := [5]string{info.OSID, info.OSVersion, info.OSPrettyName, info.DefaultUser, info.Platform}
			want := [5]string{fx.id, fx.version, fx.pretty, fx.user, fx.platform}
			if got != want {
				t.Errorf("got  %q\nwant %q", got, want)
			}
			if !info.DefaultUserExists {
				t.Errorf("%s not found in passwd", fx.user)
			}
			if DefaultUserFor(info.OSID, info.OSIDLike) != fx.user {
				t.Errorf("DefaultUserFor(%q, %q) != %q", info.OSID, info.OSIDLike, fx.user)
			}
		})
		if _, ok := seedIDs[fx.id]; ok {
			seedIDs[fx.id] = true
		}
	}
	for id, ok := range seedIDs {
		if !ok {
			t.Errorf("no fixture for %s", id)
		}
	}
}

// TestDefaultUserMissing: the user is reported as absent when passwd lacks
// it, or when passwd is missing.
func TestDefaultUserMissing(t *testing.T) {
	root := t.TempDir()
	data, err := os.ReadFile("testdata/os-release/ubuntu-24.04")
	if err != nil {
		t.Fatal(err)
	}
	put(t, root, "/etc/os-release", string(data), 0o644)
	info, err := Collect(context.Background(), Options{Root: root, interfaces: noInterfaces})
	if err != nil || info.DefaultUser != "ubuntu" || info.DefaultUserExists {
		t.Fatalf("no passwd: %+v %v", info, err)
	}
	put(t, root, "/etc/passwd", "root:x:0:0:root:/root:/bin/bash\nubuntu2:x:1000:1000::/home/u:/bin/sh\n+ubuntu::::::\n", 0o644)
	info, err = Collect(context.Background(), Options{Root: root, interfaces: noInterfaces})
	if err != nil || info.DefaultUserExists {
		t.Fatalf("ubuntu only via NIS: %+v %v", info, err)
	}
}

func TestParseOSReleaseSyntax(t *testing.T) {
	in := `# a comment
   # an indented comment
ID=plain
ID_LIKE="rhel   fedora"
NAME='single "quoted" $HOME'
PRETTY_NAME="esc \"q\" \$x \\ \` + "`" + ` \n kept"
VERSION=unquoted\ escaped trailing words ignored
VERSION_ID="1"'.2'3
CRLF="x"` + "\r" + `
  INDENTED=yes
BAD KEY=no
1BAD=no
=no
EMPTY=
EMPTYQ=""
UNTERMINATED="runs to the end
HASH=a#b
ID=later-wins
`
	got := ParseOSRelease([]byte(in))
	want := map[string]string{
		"ID":           "later-wins",
		"ID_LIKE":      "rhel   fedora",
		"NAME":         `single "quoted" $HOME`,
		"PRETTY_NAME":  "esc \"q\" $x \\ ` \\n kept",
		"VERSION":      "unquoted escaped",
		"VERSION_ID":   "1.23",
		"CRLF":         "x",
		"INDENTED":     "yes",
		"EMPTY":        "",
		"EMPTYQ":       "",
		"UNTERMINATED": "runs to the end",
		"HASH":         "a#b",
	}
	if !reflect.DeepEqual(got, want) {
		for k, v := range got {
			if want[k] != v {
				t.Errorf("%s = %q, want %q", k, v, want[k])
			}
		}
		for k := range want {
			if _, ok := got[k]; !ok {
				t.Errorf("%s missing", k)
			}
		}
		for k := range got {
			if _, ok := want[k]; !ok {
				t.Errorf("unexpected key %s", k)
			}
		}
	}
}

func TestOSReleaseFallback(t *testing.T) {
	deb, err := os.ReadFile("testdata/os-release/debian-12")
	if err != nil {
		t.Fatal(err)
	}
	rocky, err := os.ReadFile("testdata/os-release/rocky-9.5")
	if err != nil {
		t.Fatal(err)
	}
	idOf := func(t *testing.T, root string) string {
		t.Helper()
		m, err := readOSRelease(root)
		if err != nil {
			t.Fatal(err)
		}
		return m["ID"]
	}
	t.Run("usr/lib only", func(t *testing.T) {
		root := t.TempDir()
		put(t, root, "/usr/lib/os-release", string(deb), 0o644)
		if id := idOf(t, root); id != "debian" {
			t.Fatalf("ID %q", id)
		}
	})
	t.Run("etc wins", func(t *testing.T) {
		root := t.TempDir()
		put(t, root, "/usr/lib/os-release", string(deb), 0o644)
		put(t, root, "/etc/os-release", string(rocky), 0o644)
		if id := idOf(t, root); id != "rocky" {
			t.Fatalf("ID %q", id)
		}
	})
	t.Run("relative symlink", func(t *testing.T) {
		root := t.TempDir()
		put(t, root, "/usr/lib/os-release", string(rocky), 0o644)
		os.MkdirAll(filepath.Join(root, "etc"), 0o755)
		if err := os.Symlink("../usr/lib/os-release", filepath.Join(root, "etc/os-release")); err != nil {
			t.Fatal(err)
		}
		if id := idOf(t, root); id != "rocky" {
			t.Fatalf("ID %q", id)
		}
	})
	t.Run("dangling symlink falls back", func(t *testing.T) {
		root := t.TempDir()
		put(t, root, "/usr/lib/os-release", string(deb), 0o644)
		os.MkdirAll(filepath.Join(root, "etc"), 0o755)
		if err := os.Symlink("nowhere", filepath.Join(root, "etc/os-release")); err != nil {
			t.Fatal(err)
		}
		if id := idOf(t, root); id != "debian" {
			t.Fatalf("ID %q", id)
		}
	})
	t.Run("FIFO is skipped, not waited on", func(t *testing.T) {
		root := t.TempDir()
		put(t, root, "/usr/lib/os-release", string(deb), 0o644)
		os.MkdirAll(filepath.Join(root, "etc"), 0o755)
		if err := syscall.Mkfifo(filepath.Join(root, "etc/os-release"), 0o644); err != nil {
			t.Skip("mkfifo:", err)
		}
		done := make(chan string, 1)
		go func() { m, _ := readOSRelease(root); done <- m["ID"] }()
		select {
		case id := <-done:
			if id != "debian" {
				t.Fatalf("ID %q", id)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("blocked on a FIFO")
		}
	})
	t.Run("none", func(t *testing.T) {
		m, err := readOSRelease(t.TempDir())
		if err != nil || len(m) != 0 {
			t.Fatalf("%v %v", m, err)
		}
	})
	t.Run("oversized and hostile values are cut and cleaned", func(t *testing.T) {
		root := t.TempDir()
		big := make([]byte, 3*maxSmallFile)
		for i := range big {
			big[i] = 'a'
		}
		put(t, root, "/etc/os-release", "PRETTY_NAME=\"bad\x1b[31m\x00name\xff\"\nID=x\n"+string(big)+"\nVERSION_ID=never-read\n", 0o644)
		m, err := readOSRelease(root)
		if err != nil {
			t.Fatal(err)
		}
		if m["PRETTY_NAME"] != "bad[31mname" || m["ID"] != "x" || m["VERSION_ID"] != "" {
			t.Fatalf("%q", m)
		}
	})
}

func TestDefaultUserFor(t *testing.T) {
	cases := []struct{ id, like, want string }{
		{"amzn", "fedora", "ec2-user"},
		{"ubuntu", "debian", "ubuntu"},
		{"debian", "", "admin"},
		{"centos", "rhel fedora", "centos"},
		{"rhel", "fedora", "ec2-user"},
		{"fedora", "", "fedora"},
		{"sles", "suse", "ec2-user"},
		{"opensuse", "suse", "ec2-user"},
		{"opensuse-leap", "suse opensuse", "ec2-user"},
		{"opensuse-tumbleweed", "opensuse suse", "ec2-user"},
		{"ol", "fedora", "ec2-user"},
		{"almalinux", "rhel centos fedora", "ec2-user"},
		{"rocky", "rhel centos fedora", "rocky"},
		{"kali", "debian", "kali"},
		{"freebsd", "", "ec2-user"},
		{"AMZN", "", "ec2-user"}, // IDs are lower case; be lenient
		{" ubuntu ", "", "ubuntu"},
		// Derivatives through ID_LIKE, closest first.
		{"linuxmint", "ubuntu debian", "ubuntu"},
		{"raspbian", "debian", "admin"},
		{"pop", "ubuntu debian", "ubuntu"},
		{"nobara", "fedora", "fedora"},
		{"virtuozzo", "rhel fedora", "ec2-user"},
		{"navix", "centos rhel fedora", "centos"},
		{"sle-micro", "suse", "ec2-user"},
		{"something", "unknown-too Fedora", "fedora"},
		// Unknown.
		{"", "", "ec2-user"},
		{"gentoo", "", "ec2-user"},
		{"alpine", "", "ec2-user"},
	}
	for _, c := range cases {
		if got := DefaultUserFor(c.id, c.like); got != c.want {
			t.Errorf("DefaultUserFor(%q, %q) = %q, want %q", c.id, c.like, got, c.want)
		}
	}
}

func TestPlatformDetails(t *testing.T) {
	cases := map[string]string{
		"rhel": "Red Hat Enterprise Linux", "RHEL": "Red Hat Enterprise Linux",
		"sles": "SUSE Linux", "sles_sap": "SUSE Linux",
		"opensuse-leap": "Linux/UNIX", "rocky": "Linux/UNIX", "almalinux": "Linux/UNIX", "centos": "Linux/UNIX",
		"ol": "Linux/UNIX", "amzn": "Linux/UNIX", "ubuntu": "Linux/UNIX", "debian": "Linux/UNIX", "": "Linux/UNIX",
	}
	for id, want := range cases {
		if got := PlatformDetails(id); got != want {
			t.Errorf("PlatformDetails(%q) = %q, want %q", id, got, want)
		}
	}
}
