package hostinfo

import (
	"errors"
	"strings"
	"unicode/utf8"
)

// ParseOSRelease parses an os-release(5) file: KEY=VALUE lines in the
// shell-compatible subset the manual allows. Blank lines and lines starting
// with "#" are ignored; values may be unquoted, "double quoted" (where \ escapes
// $ " \ and `) or 'single quoted', and quoted and unquoted parts may be
// concatenated as in the shell. An unquoted value ends at the first blank.
// Lines that are not assignments are skipped; a later assignment of a key
// wins. A value whose closing quote is missing runs to the end of its line.
func ParseOSRelease(data []byte) map[string]string {
	m := make(map[string]string)
	for len(data) > 0 {
		var line []byte
		if i := indexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			line, data = data, nil
		}
		s := strings.TrimLeft(string(line), " \t")
		s = strings.TrimRight(s, " \t\r")
		if s == "" || s[0] == '#' {
			continue
		}
		eq := strings.IndexByte(s, '=')
		if eq <= 0 || !validKey(s[:eq]) {
			continue
		}
		m[s[:eq]] = shellValue(s[eq+1:])
	}
	return m
}

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}

func validKey(k string) bool {
	for i := 0; i < len(k); i++ {
		c := k[i]
		switch {
		case c == '_', 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z':
		case '0' <= c && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return k != ""
}

// shellValue decodes one shell word (the right-hand side of an assignment).
func shellValue(s string) string {
	var b strings.Builder
	const (
		plain = iota
		double
		single
	)
	mode := plain
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch mode {
		case plain:
			switch c {
			case ' ', '\t':
				return b.String() // the rest is not part of the value
			case '"':
				mode = double
			case '\'':
				mode = single
			case '\\':
				if i+1 < len(s) {
					i++
					b.WriteByte(s[i])
				}
			default:
				b.WriteByte(c)
			}
		case double:
			switch c {
			case '"':
				mode = plain
			case '\\':
				if i+1 < len(s) && strings.IndexByte("$\"\\`", s[i+1]) >= 0 {
					i++
					b.WriteByte(s[i])
				} else {
					b.WriteByte(c)
				}
			default:
				b.WriteByte(c)
			}
		case single:
			if c == '\'' {
				mode = plain
			} else {
				b.WriteByte(c)
			}
		}
	}
	return b.String()
}

// readOSRelease reads /etc/os-release, falling back to /usr/lib/os-release
// as os-release(5) says. A missing file is an empty map and no error.
func readOSRelease(root string) (map[string]string, error) {
	var errs []error
	for _, p := range []string{"/etc/os-release", "/usr/lib/os-release"} {
		b, err := readSmall(root, p, maxSmallFile)
		if err != nil {
			if !ignorable(err) {
				errs = append(errs, err)
			}
			continue
		}
		m := ParseOSRelease(b)
		for k, v := range m {
			m[k] = clean(v, 256)
		}
		return m, errors.Join(errs...)
	}
	return map[string]string{}, errors.Join(errs...)
}

// clean makes a file-supplied string safe to report: valid UTF-8, no control
// characters, at most max bytes.
func clean(s string, max int) string {
	ok := len(s) <= max && utf8.ValidString(s)
	for i := 0; ok && i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			ok = false
		}
	}
	if ok {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if r == utf8.RuneError || r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			continue
		}
		if b.Len()+utf8.RuneLen(r) > max {
			break
		}
		b.WriteRune(r)
	}
	return b.String()
}

// defaultUsers maps os-release IDs to the default login user of the
// distribution's cloud images.
//
// From AWS's table ("Manage system users", managing-users.html): Amazon
// Linux ec2-user; Ubuntu ubuntu; Debian admin; CentOS centos (AWS says
// "centos or ec2-user": the CentOS 7 AMIs use centos, some CentOS Stream
// images ec2-user); RHEL ec2-user (AWS: "ec2-user or root"); Fedora fedora
// (AWS: "fedora or ec2-user"); SUSE ec2-user (AWS: "ec2-user or root");
// Oracle Linux ec2-user; FreeBSD ec2-user.
//
// Not in AWS's table, our choices:
//   - openSUSE (Leap, Tumbleweed, MicroOS): ec2-user. AWS does not list
//     openSUSE at all; SUSE's openSUSE images on AWS are built like its SLES
//     images, whose user is ec2-user.
//   - AlmaLinux: ec2-user, the user of the AlmaLinux OS Foundation's AMIs
//     (AlmaLinux wiki, cloud/AWS).
//   - Rocky Linux: rocky, the user of the RESF's official Rocky Linux AMIs.
//   - Kali: kali, the user of Offensive Security's Kali AMIs (Kali is
//     ID_LIKE=debian and would otherwise get Debian's admin).
//
// Anything else is looked up through ID_LIKE (closest first), and falls
// back to ec2-user, which is also what the AWS CLI assumes when no
// --os-user is given.
var defaultUsers = map[string]string{
	"amzn":                "ec2-user",
	"ubuntu":              "ubuntu",
	"debian":              "admin",
	"centos":              "centos",
	"rhel":                "ec2-user",
	"fedora":              "fedora",
	"sles":                "ec2-user",
	"sles_sap":            "ec2-user",
	"suse":                "ec2-user",
	"opensuse":            "ec2-user",
	"opensuse-leap":       "ec2-user",
	"opensuse-tumbleweed": "ec2-user",
	"opensuse-microos":    "ec2-user",
	"ol":                  "ec2-user",
	"almalinux":           "ec2-user",
	"rocky":               "rocky",
	"kali":                "kali",
	"freebsd":             "ec2-user",
}

// FallbackUser is the default user of a distribution nobody knows.
const FallbackUser = "ec2-user"

// DefaultUserFor returns the default login user for an os-release ID, using
// ID_LIKE (space-separated, closest first) for derivatives, else
// FallbackUser.
func DefaultUserFor(osID, idLike string) string {
	if u, ok := defaultUsers[strings.ToLower(strings.TrimSpace(osID))]; ok {
		return u
	}
	for _, id := range strings.Fields(strings.ToLower(idLike)) {
		if u, ok := defaultUsers[id]; ok {
			return u
		}
	}
	return FallbackUser
}

// PlatformDetails returns EC2's platformDetails for an os-release ID. Only
// the exact distribution counts: a RHEL rebuild (Rocky, AlmaLinux, Oracle,
// CentOS) is "Linux/UNIX" like any other free Linux, as on EC2.
func PlatformDetails(osID string) string {
	switch strings.ToLower(strings.TrimSpace(osID)) {
	case "rhel":
		return "Red Hat Enterprise Linux"
	case "sles", "sles_sap":
		return "SUSE Linux"
	}
	return "Linux/UNIX"
}
