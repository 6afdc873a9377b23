package hostinfo

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
	"unicode/utf8"
)

// ParseSSHVersion finds the first OpenSSH release in s (the output of
// "sshd -?", "sshd -V" or "ssh -V", or a banner) and returns it as OpenSSH
// announces itself, up to the first comma or line end, e.g.
// "OpenSSH_9.2p1 Debian-2+deb12u3" from "OpenSSH_9.2p1 Debian-2+deb12u3,
// OpenSSL 3.0.15 3 Sep 2024", with its major and minor version.
func ParseSSHVersion(s string) (release string, major, minor int, ok bool) {
	const tag = "OpenSSH_"
	for off := 0; ; {
		i := strings.Index(s[off:], tag)
		if i < 0 {
			return "", 0, 0, false
		}
		start := off + i
		off = start + len(tag)
		rest := s[off:]
		rest = strings.TrimPrefix(rest, "for_Windows_")
		maj, r1, ok1 := leadingInt(rest)
		if !ok1 || !strings.HasPrefix(r1, ".") {
			continue
		}
		min, _, ok2 := leadingInt(r1[1:])
		if !ok2 {
			continue
		}
		// The release runs to a comma, a line end or anything that is not
		// printable text (never cleaned out of the middle: that could join
		// digits), and is cut to 128 bytes.
		end := off
		for end < len(s) && end-start < 128 && s[end] != ',' {
			r, n := utf8.DecodeRuneInString(s[end:])
			if r == utf8.RuneError || r < 0x20 || (r >= 0x7f && r < 0xa0) || end+n-start > 128 {
				break
			}
			end += n
		}
		return strings.TrimSpace(s[start:end]), maj, min, true
	}
}

// leadingInt parses 1 to 4 leading decimal digits.
func leadingInt(s string) (int, string, bool) {
	n, i := 0, 0
	for i < len(s) && i < 4 && '0' <= s[i] && s[i] <= '9' {
		n = n*10 + int(s[i]-'0')
		i++
	}
	if i == 0 || (i < len(s) && '0' <= s[i] && s[i] <= '9') {
		return 0, s, false
	}
	return n, s[i:], true
}

// sshdVersion finds the version of the sshd binary (Options.SSHD, default
// /usr/sbin/sshd). No sshd there: no version, no error.
//
// OpenSSH has no portable "print your version" option: "sshd -V" only
// exists since OpenSSH 9.1 and prints the bare version ("OpenSSH_9.2",
// without the portable "p1" or the distribution's suffix), while every
// sshd answers an unknown option with its usage text, whose first line is
// its full release ("OpenSSH_9.2p1 Debian-2+deb12u3, OpenSSL ..."), and
// exits before reading any configuration. So, each run bounded to 2 s:
//
//  1. "sshd -?" ('?' can never be a valid option: getopt uses it to report
//     a bad one) and parse the usage text;
//  2. else "sshd -V";
//  3. else the installed openssh-server package's version (dpkg status);
//  4. else the ssh client next to sshd ("ssh -V"), from the same source
//     package on every distribution.
func sshdVersion(ctx context.Context, o Options) (string, int, int, error) {
	bin := o.SSHD
	if bin == "" {
		bin = defaultSSHD
	}
	p := hostPath(o.Root, bin)
	st, err := os.Stat(p)
	if err != nil {
		if ignorable(err) {
			return "", 0, 0, nil
		}
		return "", 0, 0, err
	}
	if !st.Mode().IsRegular() {
		return "", 0, 0, nil
	}
	timeout := o.cmdTimeout
	if timeout <= 0 {
		timeout = commandTimeout
	}
	var runErr error
	for _, arg := range []string{"-?", "-V"} {
		out, err := runBounded(ctx, timeout, p, arg)
		if rel, maj, min, ok := ParseSSHVersion(out); ok {
			return rel, maj, min, nil
		}
		if err != nil && runErr == nil {
			runErr = err
		}
		if errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil {
			break // a hung sshd is not asked again
		}
	}
	if ctx.Err() != nil {
		return "", 0, 0, ctx.Err()
	}
	if rel, maj, min, ok := dpkgOpenSSHVersion(o.Root); ok {
		return rel, maj, min, nil
	}
	client := filepath.Join(filepath.Dir(filepath.Dir(bin)), "bin", "ssh")
	if out, _ := runBounded(ctx, timeout, hostPath(o.Root, client), "-V"); out != "" {
		if rel, maj, min, ok := ParseSSHVersion(out); ok {
			return rel, maj, min, nil
		}
	}
	if runErr != nil {
		return "", 0, 0, fmt.Errorf("%s: %w", bin, runErr)
	}
	return "", 0, 0, nil
}

// runBounded runs bin with one argument, no input, a minimal environment,
// at most commandTimeout, and returns the first maxCommandOut bytes of its
// combined output. A non-zero exit status is not an error (sshd exits 1
// after its usage text); failing to start or timing out is.
func runBounded(ctx context.Context, timeout time.Duration, bin, arg string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, arg)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C"}
	cmd.Dir = "/"
	out := &capped{max: maxCommandOut}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.WaitDelay = 200 * time.Millisecond
	ownProcessGroup(cmd)
	err := cmd.Run()
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) && ctx.Err() == nil {
		err = nil
	}
	if ctx.Err() != nil {
		err = fmt.Errorf("%s %s: %w", bin, arg, ctx.Err())
	}
	return string(out.b), err
}

// capped keeps the first max bytes written and discards the rest.
type capped struct {
	b   []byte
	max int
}

func (c *capped) Write(p []byte) (int, error) {
	if room := c.max - len(c.b); room > 0 {
		c.b = append(c.b, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

// dpkgOpenSSHVersion reads the installed openssh-server's version from
// dpkg's status file ("1:9.2p1-2+deb12u3" gives "OpenSSH_9.2p1").
func dpkgOpenSSHVersion(root string) (string, int, int, bool) {
	f, err := openRegular(hostPath(root, "/var/lib/dpkg/status"))
	if err != nil {
		return "", 0, 0, false
	}
	defer f.Close()
	br := bufio.NewReaderSize(io.LimitReader(f, maxDpkgStatus), 16<<10)
	var pkg, status, version string
	for {
		line, err := readLine(br, 16<<10)
		blank := strings.TrimSpace(line) == ""
		if k, v, ok := strings.Cut(line, ":"); ok && !blank && line[0] != ' ' && line[0] != '\t' {
			switch k {
			case "Package":
				pkg = strings.TrimSpace(v)
			case "Status":
				status = strings.TrimSpace(v)
			case "Version":
				version = strings.TrimSpace(v)
			}
		}
		if blank || err != nil {
			if pkg == "openssh-server" && strings.HasSuffix(status, " installed") && version != "" {
				v := version
				if i := strings.IndexByte(v, ':'); i >= 0 {
					v = v[i+1:]
				}
				if i := strings.LastIndexByte(v, '-'); i >= 0 {
					v = v[:i]
				}
				return ParseSSHVersion("OpenSSH_" + v)
			}
			pkg, status, version = "", "", ""
		}
		if err != nil {
			return "", 0, 0, false
		}
	}
}
