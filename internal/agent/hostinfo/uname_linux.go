package hostinfo

import "syscall"

// unameField returns uname(2)'s "release" or "machine" field.
func unameField(which string) (string, error) {
	var u syscall.Utsname
	if err := syscall.Uname(&u); err != nil {
		return "", err
	}
	f := u.Machine[:]
	if which == "release" {
		f = u.Release[:]
	}
	b := make([]byte, 0, len(f))
	for _, c := range f {
		if c == 0 {
			break
		}
		b = append(b, byte(c))
	}
	return string(b), nil
}
