package hostinfo

import (
	"bufio"
	"io"
	"strings"
)

// userExists reports whether name has a local entry in /etc/passwd. There
// is no cgo NSS lookup: users that only LDAP/SSSD/NIS know are not seen.
// A missing /etc/passwd is "no" without an error.
func userExists(root, name string) (bool, error) {
	if name == "" {
		return false, nil
	}
	f, err := openRegular(hostPath(root, "/etc/passwd"))
	if err != nil {
		if ignorable(err) {
			return false, nil
		}
		return false, err
	}
	defer f.Close()
	return passwdHasUser(io.LimitReader(f, maxPasswdFile), name)
}

// passwdHasUser scans passwd(5) lines for a local entry of name.
//
// NIS compat lines ("+", "+name", "+@netgroup", "-name", "-@netgroup") are
// not local entries: "+name" only says the user may come from NIS, which we
// cannot ask, so it does not count; "-name" excludes name from what NIS
// adds, which does not remove a local entry. Comments, blank and malformed
// lines (fewer than 7 fields, empty name) are skipped. Over-long lines are
// skipped, not fatal.
func passwdHasUser(r io.Reader, name string) (bool, error) {
	if name == "" || strings.ContainsAny(name, ":\n") {
		return false, nil
	}
	br := bufio.NewReaderSize(r, 4096)
	for {
		line, err := readLine(br, 4096)
		if line != "" && passwdLineIs(line, name) {
			return true, nil
		}
		if err == io.EOF {
			return false, nil
		}
		if err != nil {
			return false, err
		}
	}
}

// readLine returns the next line without its newline; lines longer than max
// are returned empty (their rest is discarded).
func readLine(br *bufio.Reader, max int) (string, error) {
	var b []byte
	tooLong := false
	for {
		chunk, isPrefix, err := br.ReadLine()
		if !tooLong {
			if len(b)+len(chunk) > max {
				tooLong, b = true, nil
			} else {
				b = append(b, chunk...)
			}
		}
		if err != nil {
			if tooLong {
				return "", err
			}
			return string(b), err
		}
		if !isPrefix {
			if tooLong {
				return "", nil
			}
			return string(b), nil
		}
	}
}

func passwdLineIs(line, name string) bool {
	line = strings.TrimSuffix(line, "\r")
	if line == "" || line[0] == '#' || line[0] == '+' || line[0] == '-' {
		return false
	}
	return strings.HasPrefix(line, name+":") && strings.Count(line, ":") >= 6
}
