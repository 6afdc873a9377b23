package sshdsetup

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
)

// CheckCommandPath applies sshd's rule for an AuthorizedKeysCommand to the
// binary p on this machine: the resolved file and every directory up to /
// root-owned and not writable by group or others. A refusal is an
// *UnsafePathError with the fix; warnings are what sshd does not check but
// the AuthorizedKeysCommandUser needs. `kaginashi doctor` and
// `kaginashi dev` use it.
func CheckCommandPath(p string) (warnings []string, err error) {
	return checkCommandPath("", p)
}

// Validate runs `sshd -t -f CONFIG` (with o.SSHDArgs) on o.ConfigPath, or
// o.Validate when set: whether sshd would start with the configuration.
func Validate(ctx context.Context, o Options) error {
	o.defaults()
	return validate(ctx, &o, o.real(o.ConfigPath))
}

// FindSSHD returns the sshd binary: sshd if given, else /usr/sbin/sshd and
// the other usual places, else sshd on PATH.
func FindSSHD(sshd string) (string, error) {
	return findSSHD(&Options{SSHD: sshd})
}

// DirSafe applies the same rule to a directory, to put a binary in: dir
// and every parent root-owned and not writable by group or others.
func DirSafe(dir string) bool {
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil || !fi.IsDir() {
			return false
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok || st.Uid != 0 || fi.Mode().Perm()&0o022 != 0 {
			return false
		}
		if d == "/" {
			return true
		}
	}
}
