package sshdsetup

import "context"

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
