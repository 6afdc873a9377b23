// Package hostinfo collects the facts kaginashi-agent reports about its host:
// host name, OS (from os-release), the distro's default login user and
// whether it exists, kernel, architecture, addresses, sshd's host public keys
// and sshd's version. DescribeInstances shows them.
//
// The agent binary must stay small and start fast, so this package uses the
// standard library only and no cgo: users come from /etc/passwd, not from
// NSS; addresses from the kernel through package net and /proc.
//
// Every read is bounded (file sizes, number of keys and addresses, the run
// time of the sshd version probe). A missing fact is left empty; Collect
// reports errors only for unexpected failures (an I/O error, a permission
// problem on a file that should be readable).
package hostinfo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"
)

// Info is what the agent reports about its host.
type Info struct {
	Hostname     string
	OSID         string // os-release ID: amzn, ubuntu, centos, rhel, debian, sles, opensuse-leap, fedora, ol, almalinux, rocky, ...
	OSIDLike     string // os-release ID_LIKE (space-separated), kept because the default user may come from it
	OSVersion    string // os-release VERSION_ID
	OSPrettyName string // os-release PRETTY_NAME

	// Platform is EC2's platformDetails: "Red Hat Enterprise Linux" for
	// rhel, "SUSE Linux" for sles (and sles_sap), "Linux/UNIX" for every
	// other Linux. (EC2's "Ubuntu Pro" cannot be told from os-release.)
	Platform string

	DefaultUser       string // the distro's default login user, see DefaultUserFor
	DefaultUserExists bool   // DefaultUser has a local entry in /etc/passwd

	Kernel       string // uname -r (/proc/sys/kernel/osrelease)
	Architecture string // EC2 names: x86_64, arm64, i386; other machines as uname -m says

	// IPv4 and IPv6 are the host's non-loopback, non-link-local unicast
	// addresses of interfaces that are up; the address of the default
	// route's interface comes first.
	IPv4, IPv6 []string
	PrivateIP  string // the primary IPv4 (IPv4[0])
	// AddressError says why the addresses could not be listed ("" when
	// they were): under a systemd unit whose RestrictAddressFamilies lacks
	// AF_NETLINK the kernel refuses the route dump package net needs.
	AddressError string

	HostKeys []string // sshd's host public keys, one "type base64" line each (comments dropped)
	// SSHPort is the port sshd listens on, from its configuration (22
	// when it names none).
	SSHPort int

	// SSHDVersion is sshd's release as it announces itself, e.g.
	// "OpenSSH_9.2p1 Debian-2+deb12u3" or "OpenSSH_7.4p1"; SSHDMajor and
	// SSHDMinor are its parsed version for feature checks (9 and 2).
	SSHDVersion          string
	SSHDMajor, SSHDMinor int

	CollectedAt time.Time // Options.Now() when Collect began
}

// Options tune Collect. The zero value collects from the running system.
type Options struct {
	// Root is a test hook: every host path (os-release, passwd, sshd_config,
	// host keys, /proc files, the sshd and ssh binaries) is looked up under
	// it. "" in production.
	Root string
	// SSHDConfig is sshd's configuration file (default
	// /etc/ssh/sshd_config). Its HostKey directives name the host keys
	// (default /etc/ssh/ssh_host_{rsa,ecdsa,ed25519}_key when there are
	// none); only their KEY.pub files are read.
	SSHDConfig string
	// SSHD is the sshd binary asked for its version (default
	// /usr/sbin/sshd).
	SSHD string
	// Now is the clock (default time.Now).
	Now func() time.Time

	// interfaces replaces the kernel's interface list (tests).
	interfaces func() ([]iface, error)
	// cmdTimeout replaces commandTimeout (tests).
	cmdTimeout time.Duration
}

// Bounds.
const (
	maxSmallFile   = 64 << 10 // os-release, /proc files, .pub files
	maxConfigFile  = 1 << 20  // sshd_config and each included file
	maxPasswdFile  = 16 << 20 // /etc/passwd, streamed line by line
	maxDpkgStatus  = 64 << 20 // /var/lib/dpkg/status, streamed
	maxHostKeys    = 16
	maxAddrs       = 64 // per family
	maxInterfaces  = 256
	maxIncludes    = 64 // files pulled in by Include, in all
	maxIncludeDeep = 8
	commandTimeout = 2 * time.Second
	maxCommandOut  = 8 << 10
)

const (
	defaultSSHDConfig = "/etc/ssh/sshd_config"
	defaultSSHD       = "/usr/sbin/sshd"
)

// Collect gathers the host's facts. It never fails for a missing fact: the
// field is left empty. The returned Info is never nil; the error (if any)
// joins the unexpected failures met on the way, and ctx's error when it
// ended early.
func Collect(ctx context.Context, o Options) (*Info, error) {
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	info := &Info{CollectedAt: now()}
	var errs []error
	note := func(what string, err error) {
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", what, err))
		}
	}

	// The sshd version probe runs a process; do it while the files are read.
	type sshdResult struct {
		release      string
		major, minor int
		err          error
	}
	var wg sync.WaitGroup
	var sv sshdResult
	wg.Add(1)
	go func() {
		defer wg.Done()
		sv.release, sv.major, sv.minor, sv.err = sshdVersion(ctx, o)
	}()

	h, err := readTrimmed(o.Root, "/proc/sys/kernel/hostname")
	note("host name", err)
	if h == "" && o.Root == "" {
		h, _ = os.Hostname()
	}
	info.Hostname = h

	rel, err := readOSRelease(o.Root)
	note("os-release", err)
	info.OSID = strings.ToLower(rel["ID"])
	info.OSIDLike = strings.ToLower(rel["ID_LIKE"])
	info.OSVersion = rel["VERSION_ID"]
	info.OSPrettyName = rel["PRETTY_NAME"]
	if info.OSPrettyName == "" && rel["NAME"] != "" {
		// os-release(5): PRETTY_NAME defaults to "Linux"; NAME (+ VERSION)
		// says more when a file lacks it.
		info.OSPrettyName = strings.TrimSpace(rel["NAME"] + " " + rel["VERSION"])
	}
	info.Platform = PlatformDetails(info.OSID)
	info.DefaultUser = DefaultUserFor(info.OSID, info.OSIDLike)
	ok, err := userExists(o.Root, info.DefaultUser)
	note("passwd", err)
	info.DefaultUserExists = ok

	k, err := readTrimmed(o.Root, "/proc/sys/kernel/osrelease")
	note("kernel release", err)
	if k == "" && o.Root == "" {
		k, _ = unameField("release")
	}
	info.Kernel = k
	info.Architecture = architecture(o.Root)

	v4, v6, err := addresses(o)
	note("addresses", err)
	if err != nil {
		info.AddressError = err.Error()
	}
	info.IPv4, info.IPv6 = v4, v6
	if len(v4) > 0 {
		info.PrivateIP = v4[0]
	}

	keys, err := hostKeys(o)
	note("host keys", err)
	info.HostKeys = keys
	info.SSHPort = sshdPort(o)

	wg.Wait()
	note("sshd version", sv.err)
	info.SSHDVersion, info.SSHDMajor, info.SSHDMinor = sv.release, sv.major, sv.minor

	if err := ctx.Err(); err != nil {
		errs = append(errs, err)
	}
	return info, errors.Join(errs...)
}

// hostPath maps a host path to where it is read: under Root when set.
func hostPath(root, p string) string {
	if root == "" {
		return p
	}
	return filepath.Join(root, filepath.FromSlash(path.Clean("/"+p)))
}

// ignorable reports errors that only mean "the fact is not there".
func ignorable(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || isNotDir(err) || errors.Is(err, errNotRegular)
}

var errNotRegular = errors.New("not a regular file")

// readSmall reads a host file of at most max bytes (longer files are cut at
// max). It refuses anything but a regular file (a FIFO planted where a file
// is expected must not block the agent) and never follows the path further
// than open(2) does.
func readSmall(root, p string, max int64) ([]byte, error) {
	f, err := openRegular(hostPath(root, p))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, max))
}

// readTrimmed reads a one-line /proc style file; a missing file is "".
func readTrimmed(root, p string) (string, error) {
	b, err := readSmall(root, p, maxSmallFile)
	if err != nil {
		if ignorable(err) {
			return "", nil
		}
		return "", err
	}
	s := strings.TrimSpace(string(b))
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s, nil
}

// architecture returns the EC2 name of the host's machine type: uname -m
// (or /proc/sys/kernel/arch, which is the same string) when known, else the
// agent's own GOARCH.
func architecture(root string) string {
	m, _ := readTrimmed(root, "/proc/sys/kernel/arch")
	if m == "" && root == "" {
		m, _ = unameField("machine")
	}
	if m == "" {
		m = runtime.GOARCH
	}
	return ec2Architecture(m)
}

// ec2Architecture maps uname -m / GOARCH names to EC2's architecture values
// (i386, x86_64, arm64); others pass through as uname -m spells them.
func ec2Architecture(m string) string {
	switch m {
	case "x86_64", "amd64":
		return "x86_64"
	case "aarch64", "aarch64_be", "arm64", "armv8l", "armv8b":
		return "arm64"
	case "i386", "i486", "i586", "i686", "386":
		return "i386"
	}
	return m
}
