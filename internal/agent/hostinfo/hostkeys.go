package hostinfo

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// sshdir is OpenSSH's SSHDIR: where relative Include paths point and where
// the default host keys live.
const sshdir = "/etc/ssh"

var defaultHostKeys = []string{
	sshdir + "/ssh_host_rsa_key",
	sshdir + "/ssh_host_ecdsa_key",
	sshdir + "/ssh_host_ed25519_key",
}

// hostKeys returns sshd's host public keys: the KEY.pub of every HostKey
// in sshd_config (or of OpenSSH's defaults when it names none). Missing or
// unreadable .pub files and lines that are not public keys are skipped. The
// private key files are never opened.
func hostKeys(o Options) ([]string, error) {
	cfg := o.SSHDConfig
	if cfg == "" {
		cfg = defaultSSHDConfig
	}
	paths, err := configHostKeys(o.Root, cfg)
	if len(paths) == 0 {
		paths = defaultHostKeys
	}
	var keys []string
	seen := make(map[string]bool)
	for _, p := range paths {
		if len(keys) >= maxHostKeys {
			break
		}
		k, ok := readPublicKey(o.Root, p)
		if ok && !seen[k] {
			seen[k] = true
			keys = append(keys, k)
		}
	}
	return keys, err
}

// configHostKeys returns the HostKey paths of an sshd_config, in order,
// following Include (globs, relative to /etc/ssh) to a bounded depth. Only
// the global part of each file counts: HostKey is not allowed in a Match
// block, so everything after a Match line is skipped. A missing file yields
// nothing and no error.
func configHostKeys(root, file string) ([]string, error) {
	p := &cfgParser{root: root, seen: make(map[string]bool)}
	p.file(file, 0)
	return p.keys, errors.Join(p.errs...)
}

// sshdPort is the port sshd listens on, as its configuration says: the
// first Port, else the port of the first ListenAddress that has one, else
// OpenSSH's 22. (sshd listens on every Port; clients need one.)
func sshdPort(o Options) int {
	cfg := o.SSHDConfig
	if cfg == "" {
		cfg = defaultSSHDConfig
	}
	p := &cfgParser{root: o.Root, seen: make(map[string]bool)}
	p.file(cfg, 0)
	switch {
	case p.port > 0:
		return p.port
	case p.listenPort > 0:
		return p.listenPort
	}
	return 22
}

// parsePort reads a TCP port number, 0 when it is not one.
func parsePort(s string) int {
	n := 0
	for _, c := range s {
		if c < '0' || c > '9' || n > 65535 {
			return 0
		}
		n = n*10 + int(c-'0')
	}
	if n < 1 || n > 65535 {
		return 0
	}
	return n
}

type cfgParser struct {
	root     string
	keys     []string
	errs     []error
	included int
	seen     map[string]bool
	// port is the first Port; listenPort the port of the first
	// ListenAddress with one (host:port or [v6]:port).
	port, listenPort int
}

func (p *cfgParser) file(name string, depth int) {
	b, err := readSmall(p.root, name, maxConfigFile)
	if err != nil {
		if !ignorable(err) {
			p.errs = append(p.errs, err)
		}
		return
	}
	for len(b) > 0 {
		var line []byte
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			line, b = b, nil
		}
		kw, args := configLine(string(line))
		switch strings.ToLower(kw) {
		case "match":
			return
		case "hostkey":
			if len(args) > 0 && args[0] != "" && len(p.keys) < 4*maxHostKeys {
				if k := absPath(args[0], "/"); !p.seen[k] {
					p.seen[k] = true
					p.keys = append(p.keys, k)
				}
			}
		case "port":
			if p.port == 0 && len(args) > 0 {
				p.port = parsePort(args[0])
			}
		case "listenaddress":
			if p.listenPort == 0 && len(args) > 0 {
				if i := strings.LastIndexByte(args[0], ':'); i >= 0 && strings.Count(args[0], ":") == 1 || strings.HasPrefix(args[0], "[") {
					p.listenPort = parsePort(args[0][i+1:])
				}
			}
		case "include":
			if depth+1 > maxIncludeDeep {
				continue
			}
			for _, pat := range args {
				for _, f := range p.glob(absPath(pat, sshdir)) {
					if p.included >= maxIncludes {
						return
					}
					p.included++
					p.file(f, depth+1)
				}
			}
		}
	}
}

// glob expands an Include pattern (a host path) under root and returns host
// paths, sorted as glob(3) sorts them.
func (p *cfgParser) glob(pattern string) []string {
	if !strings.ContainsAny(pattern, "*?[") {
		return []string{pattern}
	}
	matches, err := filepath.Glob(hostPath(p.root, pattern))
	if err != nil {
		return nil
	}
	out := make([]string, 0, len(matches))
	for _, m := range matches {
		if p.root != "" {
			rel, err := filepath.Rel(p.root, m)
			if err != nil {
				continue
			}
			m = "/" + filepath.ToSlash(rel)
		}
		out = append(out, m)
	}
	return out
}

func absPath(p, dir string) string {
	if strings.HasPrefix(p, "/") {
		return path.Clean(p)
	}
	return path.Join(dir, p)
}

// configLine splits an sshd_config line into its keyword and arguments:
// "Keyword arg ...", "Keyword=arg" or "Keyword = arg"; arguments may be
// "double" or 'single' quoted; an unquoted argument starting with # ends
// the line.
func configLine(line string) (string, []string) {
	s := strings.TrimLeft(line, " \t\r\f")
	if s == "" || s[0] == '#' {
		return "", nil
	}
	end := strings.IndexAny(s, " \t\r\f=")
	if end < 0 {
		return s, nil
	}
	kw := s[:end]
	if kw == "" {
		return "", nil
	}
	rest := strings.TrimLeft(s[end:], " \t\r\f")
	if strings.HasPrefix(rest, "=") { // one "=" may separate keyword and arguments
		rest = rest[1:]
	}
	var args []string
	for len(args) < 64 {
		rest = strings.TrimLeft(rest, " \t\r\f")
		if rest == "" || rest[0] == '#' {
			break
		}
		var b strings.Builder
		i := 0
		var quote byte
	word:
		for ; i < len(rest); i++ {
			c := rest[i]
			switch {
			case quote != 0:
				if c == quote {
					quote = 0
				} else if c == '\\' && quote == '"' && i+1 < len(rest) && (rest[i+1] == '"' || rest[i+1] == '\\') {
					i++
					b.WriteByte(rest[i])
				} else {
					b.WriteByte(c)
				}
			case c == '"' || c == '\'':
				quote = c
			case c == '\\' && i+1 < len(rest):
				i++
				b.WriteByte(rest[i])
			case c == ' ' || c == '\t' || c == '\r' || c == '\f':
				break word
			default:
				b.WriteByte(c)
			}
		}
		args = append(args, b.String())
		rest = rest[i:]
	}
	return kw, args
}

// readPublicKey reads the public half of the host key at keyPath (a host
// path): keyPath.pub, or keyPath itself when it already names a .pub file
// (HostKey may name a public key when the private one lives in an agent).
// It never opens the private key, and refuses a .pub that is the private
// key file under another name (a link).
func readPublicKey(root, keyPath string) (string, bool) {
	pub := keyPath
	if !strings.HasSuffix(keyPath, ".pub") {
		pub = keyPath + ".pub"
	}
	var kst os.FileInfo
	if pub != keyPath {
		// stat only (the private key is never opened): a .pub that is the
		// private key under another name (symlink, hard link) is refused
		// before it is opened, and again after (it may have been swapped).
		kst, _ = os.Stat(hostPath(root, keyPath))
		if pst, err := os.Stat(hostPath(root, pub)); err != nil || (kst != nil && os.SameFile(pst, kst)) {
			return "", false
		}
	}
	f, err := openRegular(hostPath(root, pub))
	if err != nil {
		return "", false
	}
	defer f.Close()
	if kst != nil {
		if pst, err := f.Stat(); err != nil || os.SameFile(pst, kst) {
			return "", false
		}
	}
	b, _ := io.ReadAll(io.LimitReader(f, maxSmallFile))
	for _, line := range strings.Split(string(b), "\n") {
		if k, ok := ParsePublicKey(line); ok {
			return k, true
		}
	}
	return "", false
}

// ParsePublicKey checks that line is an OpenSSH public key line, "type
// base64 [comment]", whose base64 decodes to a key blob of that type, and
// returns it as "type base64" (canonical base64, comment dropped).
func ParsePublicKey(line string) (string, bool) {
	f := strings.Fields(line)
	if len(f) < 2 || len(f[0]) > 64 || !keyTypeChars(f[0]) {
		return "", false
	}
	blob, err := base64.StdEncoding.DecodeString(f[1])
	if err != nil || len(blob) < 4 {
		return "", false
	}
	n := binary.BigEndian.Uint32(blob)
	if uint64(n) != uint64(len(f[0])) || len(blob) < 4+int(n) || string(blob[4:4+n]) != f[0] || len(blob) == 4+int(n) {
		return "", false
	}
	return f[0] + " " + base64.StdEncoding.EncodeToString(blob), true
}

func keyTypeChars(t string) bool {
	for i := 0; i < len(t); i++ {
		c := t[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '@' || c == '.' || c == '_') {
			return false
		}
	}
	return t != ""
}
