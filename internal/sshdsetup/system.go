package sshdsetup

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// findSSHD returns the sshd binary: o.SSHD, else /usr/sbin/sshd and the
// other usual places, else sshd on PATH.
func findSSHD(o *Options) (string, error) {
	if o.SSHD != "" {
		return o.SSHD, nil
	}
	for _, p := range []string{"/usr/sbin/sshd", "/usr/local/sbin/sshd", "/sbin/sshd"} {
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			return p, nil
		}
	}
	p, err := exec.LookPath("sshd")
	if err != nil {
		return "", errors.New("sshd not found in /usr/sbin or on PATH: is openssh-server installed?")
	}
	return p, nil
}

// validate runs the validation: o.Validate, else `sshd -t -f CONFIG`
// with o.SSHDArgs.
func validate(ctx context.Context, o *Options, realConfig string) error {
	if o.Validate != nil {
		return o.Validate(ctx, realConfig)
	}
	sshd, err := findSSHD(o)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	args := append([]string{"-t", "-f", realConfig}, o.SSHDArgs...)
	out, err := exec.CommandContext(ctx, sshd, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %v: %s", sshd, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// sshdVersion asks sshd its version (`sshd -V`; sshd before 9.x answers the
// unknown option with a usage text that starts with the version too).
func sshdVersion(o *Options) (string, int, int) {
	sshd, err := findSSHD(o)
	if err != nil {
		return "", 0, 0
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	out, _ := exec.CommandContext(ctx, sshd, "-V").CombinedOutput()
	// Compiled per call, not at init: see checkSyntax.
	m := regexp.MustCompile(`OpenSSH_([0-9]+)\.([0-9]+)(p[0-9]+)?`).FindSubmatch(out)
	if m == nil {
		return "", 0, 0
	}
	major, _ := strconv.Atoi(string(m[1]))
	minor, _ := strconv.Atoi(string(m[2]))
	return string(m[0]), major, minor
}

// userExists looks the user up: NSS when Root is empty, else Root/etc/passwd.
func userExists(o *Options, name string) (bool, error) {
	if o.Root == "" {
		_, err := user.Lookup(name)
		if err == nil {
			return true, nil
		}
		var unknown user.UnknownUserError
		if errors.As(err, &unknown) {
			return false, nil
		}
		return false, err
	}
	f, err := os.Open(filepath.Join(o.Root, "/etc/passwd"))
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if n, _, ok := strings.Cut(s.Text(), ":"); ok && n == name {
			return true, nil
		}
	}
	return false, s.Err()
}

// defaultCreateUser makes a locked system user without a home directory or
// a login shell, as AWS's package does for its ec2-instance-connect user.
func defaultCreateUser(ctx context.Context, name string) error {
	shell := "/bin/false"
	for _, s := range []string{"/usr/sbin/nologin", "/sbin/nologin"} {
		if _, err := os.Stat(s); err == nil {
			shell = s
			break
		}
	}
	run := func(cmd string, args ...string) error {
		out, err := exec.CommandContext(ctx, cmd, args...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("%s %s: %v: %s", cmd, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
		}
		return nil
	}
	if p, err := exec.LookPath("useradd"); err == nil {
		if err := run(p, "--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent",
			"--shell", shell, "--comment", "kaginashi AuthorizedKeysCommand", name); err != nil {
			return err
		}
		if u, err := exec.LookPath("usermod"); err == nil {
			return run(u, "--lock", name)
		}
		return nil
	}
	if p, err := exec.LookPath("adduser"); err == nil {
		return run(p, "--system", "--group", "--no-create-home", "--home", "/nonexistent",
			"--shell", shell, "--disabled-login", "--gecos", "kaginashi AuthorizedKeysCommand", name)
	}
	return errors.New("neither useradd nor adduser found: create a locked system user " + name + " by hand and run again")
}

// defaultReload makes the running sshd read its configuration again:
// systemctl reload of the active ssh or sshd unit, else SIGHUP to the pid in
// its PidFile. A stopped sshd needs nothing.
func defaultReload(ctx context.Context, pidFile string) (string, error) {
	if _, err := os.Stat("/run/systemd/system"); err == nil {
		if systemctl, err := exec.LookPath("systemctl"); err == nil {
			for _, unit := range []string{"ssh.service", "sshd.service"} {
				if exec.CommandContext(ctx, systemctl, "is-active", "--quiet", unit).Run() != nil {
					continue
				}
				out, err := exec.CommandContext(ctx, systemctl, "reload", unit).CombinedOutput()
				if err != nil {
					return "", fmt.Errorf("systemctl reload %s: %v: %s", unit, err, strings.TrimSpace(string(out)))
				}
				return "reloaded " + unit + " (systemctl reload)", nil
			}
			for _, sock := range []string{"ssh.socket", "sshd.socket"} {
				if exec.CommandContext(ctx, systemctl, "is-active", "--quiet", sock).Run() == nil {
					return sock + " is active and its service is not running: sshd reads the new configuration when it starts", nil
				}
			}
		}
	}
	return reloadByPidFile(pidFile, "/run/sshd.pid", "/var/run/sshd.pid")
}

// reloadByPidFile sends SIGHUP to the sshd whose pid is in the first of
// pidFiles that names a running sshd.
func reloadByPidFile(pidFiles ...string) (string, error) {
	for _, pf := range pidFiles {
		if pf == "" {
			continue
		}
		b, err := os.ReadFile(pf)
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid <= 1 {
			continue
		}
		comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		if string(bytes.TrimSpace(comm)) != "sshd" {
			continue // a stale pid file
		}
		if err := syscall.Kill(pid, syscall.SIGHUP); err != nil {
			return "", fmt.Errorf("SIGHUP sshd (pid %d from %s): %w", pid, pf, err)
		}
		return fmt.Sprintf("sent SIGHUP to sshd (pid %d from %s)", pid, pf), nil
	}
	return "sshd does not seem to be running (no active ssh/sshd unit, no PidFile): it will read the new configuration when it starts", nil
}
