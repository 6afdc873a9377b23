package client

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1" //nolint:gosec // OpenSSH's hashed known_hosts names are HMAC-SHA1
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"golang.org/x/crypto/ssh"
)

// KnownHostsPath is kaginashi's own known_hosts file, which pins the host
// keys agents report: $XDG_CONFIG_HOME/kaginashi/known_hosts, or
// ~/.config/kaginashi/known_hosts.
func KnownHostsPath() (string, error) {
	base := os.Getenv("XDG_CONFIG_HOME")
	if !filepath.IsAbs(base) { // the XDG spec: relative paths are invalid
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("no home directory for kaginashi's known_hosts: %w", err)
		}
		base = filepath.Join(home, ".config")
	}
	return filepath.Join(base, "kaginashi", "known_hosts"), nil
}

// knownHostName is what PinHostKeys accepts as the name of a host: an
// instance ID, a NAME.kaginashi, either as [NAME]:PORT. Nothing that could
// act as a pattern (*?!), a list (,), a marker (@), a hashed name (|), a
// comment (#) or a second field.
var knownHostName = regexp.MustCompile(`^(\[[^\s,#*?!|\[\]]+\]:[0-9]{1,5}|[^\s,#*?!|\[\]@][^\s,#*?!|\[\]]*)$`)

// KnownHostName is the name ssh looks a host's key up by, without a
// HostKeyAlias: host, or [host]:port for a port other than 22.
func KnownHostName(host string, port int) string {
	if port == 22 || port == 0 {
		return host
	}
	return fmt.Sprintf("[%s]:%d", host, port)
}

// PinHostKeys makes the known_hosts file at path hold exactly keys for
// name: lines that named it before (also hashed ones) lose it, so that a
// stale key cannot be accepted next to the current one. With no keys the
// file is only created, and what it holds for name stays (ssh then
// decides, e.g. with accept-new). The directory is made 0700, the file
// 0600. Concurrent callers (ssh-proxy for parallel scp, Ansible) take
// turns on a lock, and the file is replaced atomically, so ssh never
// reads half of it.
func PinHostKeys(path, name string, keys []string) error {
	if !knownHostName.MatchString(name) {
		return fmt.Errorf("%q cannot be a known_hosts name", name)
	}
	var lines []string
	for _, k := range keys {
		pk, _, _, _, err := ssh.ParseAuthorizedKey([]byte(k))
		if err != nil {
			return fmt.Errorf("the server reported an unreadable host key for %s: %v", name, err)
		}
		lines = append(lines, name+" "+strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pk))))
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	lock, err := os.OpenFile(path+".lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	defer lock.Close()
	if err := lockFile(lock); err != nil {
		return fmt.Errorf("locking %s: %w", path, err)
	}
	defer unlockFile(lock) //nolint:errcheck // closing unlocks anyway

	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if len(lines) == 0 {
		if err == nil {
			return nil
		}
		return writeFileAtomic(path, nil)
	}
	updated := replaceHost(old, name, lines)
	if err == nil && bytes.Equal(updated, old) {
		return nil
	}
	return writeFileAtomic(path, updated)
}

// replaceHost drops name from every plain line of a known_hosts file and
// appends lines.
func replaceHost(old []byte, name string, lines []string) []byte {
	var out bytes.Buffer
	for _, l := range strings.SplitAfter(string(old), "\n") {
		if l == "" {
			continue
		}
		fields := strings.Fields(l)
		if len(fields) < 2 || strings.HasPrefix(fields[0], "#") || strings.HasPrefix(fields[0], "@") {
			out.WriteString(l) // comments, @cert-authority and @revoked stay
			continue
		}
		var keep []string
		for _, p := range strings.Split(fields[0], ",") {
			if !hostPatternIs(p, name) {
				keep = append(keep, p)
			}
		}
		switch {
		case len(keep) == 0:
		case len(keep) == len(strings.Split(fields[0], ",")):
			out.WriteString(l)
		default:
			rest := strings.TrimLeft(strings.TrimPrefix(strings.TrimLeft(l, " \t"), fields[0]), " \t")
			out.WriteString(strings.Join(keep, ",") + " " + rest)
		}
	}
	if out.Len() > 0 && !bytes.HasSuffix(out.Bytes(), []byte("\n")) {
		out.WriteString("\n")
	}
	for _, l := range lines {
		out.WriteString(l + "\n")
	}
	return out.Bytes()
}

// hostPatternIs says whether a known_hosts host pattern names exactly
// name: the same text (ssh compares host names in lower case) or a hashed
// name (|1|salt|hash) of it.
func hostPatternIs(p, name string) bool {
	if strings.EqualFold(p, name) {
		return true
	}
	parts := strings.Split(p, "|")
	if len(parts) != 4 || parts[0] != "" || parts[1] != "1" {
		return false
	}
	salt, err1 := base64.StdEncoding.DecodeString(parts[2])
	want, err2 := base64.StdEncoding.DecodeString(parts[3])
	if err1 != nil || err2 != nil {
		return false
	}
	m := hmac.New(sha1.New, salt)
	m.Write([]byte(strings.ToLower(name)))
	return hmac.Equal(m.Sum(nil), want)
}

// writeFileAtomic replaces path with data (mode 0600) by a rename.
func writeFileAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".known_hosts-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name()) // after a successful rename, nothing to remove
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
