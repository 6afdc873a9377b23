package hostinfo

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestCollectFakeHost runs Collect on a complete fake root: an Amazon Linux
// 2023 host with its own passwd, sshd_config, host keys, /proc and sshd.
func TestCollectFakeHost(t *testing.T) {
	root, pubs, privs := sshRoot(t)
	al, err := os.ReadFile("testdata/os-release/amzn-2023")
	if err != nil {
		t.Fatal(err)
	}
	put(t, root, "/usr/lib/os-release", string(al), 0o644)
	put(t, root, "/etc/passwd", "root:x:0:0:root:/root:/bin/bash\nec2-user:x:1000:1000:EC2 Default User:/home/ec2-user:/bin/bash\n", 0o644)
	put(t, root, "/etc/ssh/sshd_config", "Include /etc/ssh/sshd_config.d/*.conf\nHostKey /etc/ssh/ssh_host_ed25519_key\nHostKey /etc/ssh/ssh_host_ecdsa_key\n", 0o644)
	put(t, root, "/proc/sys/kernel/hostname", "ip-10-0-1-23.ec2.internal\n", 0o444)
	put(t, root, "/proc/sys/kernel/osrelease", "6.1.119-129.201.amzn2023.aarch64\n", 0o444)
	put(t, root, "/proc/sys/kernel/arch", "aarch64\n", 0o444)
	put(t, root, "/proc/net/route", routeHeader+"\n"+route4("ens5", "0.0.0.0", "10.0.1.1", 0x3, 0, "0.0.0.0")+"\n", 0o444)
	fakeSSHD(t, root, `echo "unknown option -- ${1#-}" >&2
echo "OpenSSH_8.7p1, OpenSSL 3.0.8 7 Feb 2023" >&2
echo "usage: sshd [-46DdeiqTtV] [-C connection_spec] [-c host_cert_file]" >&2
exit 1
`)
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	info, err := Collect(context.Background(), Options{
		Root:       root,
		Now:        func() time.Time { return now },
		interfaces: testInterfaces,
	})
	if err != nil {
		t.Fatal(err)
	}
	want := &Info{
		Hostname:          "ip-10-0-1-23.ec2.internal",
		OSID:              "amzn",
		OSIDLike:          "fedora",
		OSVersion:         "2023",
		OSPrettyName:      "Amazon Linux 2023.6.20241212",
		Platform:          "Linux/UNIX",
		DefaultUser:       "ec2-user",
		DefaultUserExists: true,
		Kernel:            "6.1.119-129.201.amzn2023.aarch64",
		Architecture:      "arm64",
		IPv4:              []string{"10.0.1.23", "192.168.50.7", "172.17.0.1", "10.99.0.1"},
		IPv6:              []string{"2001:db8:1:2:abcd:ef01:2345:6789", "2001:db8:1:2::23", "fd42::1"},
		PrivateIP:         "10.0.1.23",
		HostKeys:          []string{pubs["ed25519"], pubs["ecdsa"]},
		SSHPort:           22,
		SSHDVersion:       "OpenSSH_8.7p1",
		SSHDMajor:         8,
		SSHDMinor:         7,
		CollectedAt:       now,
	}
	if !reflect.DeepEqual(info, want) {
		t.Errorf("\ngot  %+v\nwant %+v", info, want)
	}
	noPrivate(t, info.HostKeys, privs)
}

// TestCollectEmptyRoot: nothing there is not an error, just empty facts
// (and the distro-independent defaults).
func TestCollectEmptyRoot(t *testing.T) {
	info, err := Collect(context.Background(), Options{Root: t.TempDir(), interfaces: noInterfaces})
	if err != nil {
		t.Fatal(err)
	}
	if info.Hostname != "" || info.OSID != "" || info.Kernel != "" || len(info.HostKeys) != 0 || info.SSHDVersion != "" ||
		info.DefaultUser != "ec2-user" || info.DefaultUserExists || info.Platform != "Linux/UNIX" || info.CollectedAt.IsZero() {
		t.Fatalf("%+v", info)
	}
	if info.Architecture != ec2Architecture(runtime.GOARCH) {
		t.Fatalf("architecture %q", info.Architecture)
	}
}

// TestCollectReportsIOErrors: a file that cannot be read for another reason
// than not being there is reported, and the other facts are still there.
func TestCollectReportsIOErrors(t *testing.T) {
	root := t.TempDir()
	put(t, root, "/proc/sys/kernel/hostname", "h\n", 0o444)
	put(t, root, "/etc/ssh/moduli", "", 0o644)
	// An over-long path component makes open(2) fail with ENAMETOOLONG.
	info, err := Collect(context.Background(), Options{Root: root, SSHDConfig: "/etc/ssh/" + strings.Repeat("x", 300), interfaces: noInterfaces})
	if err == nil || !strings.Contains(err.Error(), "host keys") {
		t.Fatalf("error %v", err)
	}
	if info == nil || info.Hostname != "h" {
		t.Fatalf("%+v", info)
	}
}

func TestCollectCancelled(t *testing.T) {
	root := t.TempDir()
	fakeSSHD(t, root, "exec sleep 30\n")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	info, err := Collect(ctx, Options{Root: root, interfaces: noInterfaces})
	if time.Since(start) > 2*time.Second {
		t.Fatalf("took %v", time.Since(start))
	}
	if info == nil || !errors.Is(err, context.Canceled) {
		t.Fatalf("%v %v", info, err)
	}
}

// TestCollectThisMachine checks Collect's facts about the machine the tests
// run on against what other sources say.
func TestCollectThisMachine(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("Linux only")
	}
	start := time.Now()
	info, err := Collect(context.Background(), Options{})
	elapsed := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v (%v)", info, elapsed)
	if elapsed > 2*time.Second {
		t.Errorf("Collect took %v", elapsed)
	}

	if h, _ := os.Hostname(); info.Hostname == "" || info.Hostname != h {
		t.Errorf("hostname %q, os.Hostname %q", info.Hostname, h)
	}
	if info.OSID == "" || info.OSPrettyName == "" {
		t.Errorf("no OS: %+v", info)
	}
	if _, err := os.Stat("/etc/debian_version"); err == nil && !isUbuntuLike(info) {
		if info.OSID != "debian" || info.DefaultUser != "admin" || info.Platform != "Linux/UNIX" || info.OSVersion == "" ||
			!strings.HasPrefix(info.OSPrettyName, "Debian GNU/Linux") {
			t.Errorf("a Debian host: %+v", info)
		}
	}
	if want := grepPasswd(t, info.DefaultUser); info.DefaultUserExists != want {
		t.Errorf("DefaultUserExists %v, passwd says %v", info.DefaultUserExists, want)
	}
	if k, _ := unameField("release"); info.Kernel == "" || info.Kernel != k {
		t.Errorf("kernel %q, uname %q", info.Kernel, k)
	}
	if info.Architecture != ec2Architecture(runtime.GOARCH) {
		t.Errorf("architecture %q on GOARCH %s", info.Architecture, runtime.GOARCH)
	}
	if len(info.IPv4) == 0 || info.PrivateIP != info.IPv4[0] {
		t.Errorf("IPv4 %q, private %q", info.IPv4, info.PrivateIP)
	}
	for _, a := range append(append([]string{}, info.IPv4...), info.IPv6...) {
		ip, err := netip.ParseAddr(a)
		if err != nil || ip.IsLoopback() || ip.IsLinkLocalUnicast() {
			t.Errorf("address %q", a)
		}
	}
	// The default route's interface holds the primary address.
	if ifname, _ := defaultRoute4(""); ifname != "" {
		ifs, _ := systemInterfaces()
		found := false
		for _, it := range ifs {
			for _, p := range it.Addrs {
				if it.Name == ifname && p.Addr().String() == info.PrivateIP {
					found = true
				}
			}
		}
		if !found {
			t.Errorf("primary %s is not on the default route's interface %s", info.PrivateIP, ifname)
		}
	}
	for _, k := range info.HostKeys {
		if _, ok := ParsePublicKey(k); !ok {
			t.Errorf("host key %q", k)
		}
	}
	if b, err := os.ReadFile("/etc/ssh/ssh_host_ed25519_key.pub"); err == nil {
		if k, ok := ParsePublicKey(string(b)); ok && !contains(info.HostKeys, k) {
			t.Errorf("ed25519 host key missing: %q", info.HostKeys)
		}
	}
	if _, err := os.Stat("/usr/sbin/sshd"); err == nil {
		if !strings.HasPrefix(info.SSHDVersion, "OpenSSH_") || info.SSHDMajor < 7 {
			t.Errorf("sshd version %q %d.%d", info.SSHDVersion, info.SSHDMajor, info.SSHDMinor)
		}
		portable := fmt.Sprintf("OpenSSH_%d.%dp", info.SSHDMajor, info.SSHDMinor)
		if _, err := os.Stat("/etc/debian_version"); err == nil && !strings.HasPrefix(info.SSHDVersion, portable) {
			t.Errorf("the portable release was not found: %q", info.SSHDVersion)
		}
	}
}

func isUbuntuLike(i *Info) bool {
	return i.OSID != "debian" && strings.Contains(" "+i.OSIDLike+" ", " debian ")
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func grepPasswd(t *testing.T, user string) bool {
	f, err := os.Open("/etc/passwd")
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if name, _, _ := strings.Cut(sc.Text(), ":"); name == user {
			return true
		}
	}
	return false
}

// BenchmarkCollect measures Collect on this machine (agent start and every
// refresh). Most of it is running sshd once for its version.
func BenchmarkCollect(b *testing.B) {
	ctx := context.Background()
	for b.Loop() {
		if _, err := Collect(ctx, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCollectNoSSHD is Collect without the sshd process: the files,
// /proc and netlink alone.
func BenchmarkCollectNoSSHD(b *testing.B) {
	ctx := context.Background()
	for b.Loop() {
		if _, err := Collect(ctx, Options{SSHD: "/nonexistent/sshd"}); err != nil {
			b.Fatal(err)
		}
	}
}
