package sshdsetup

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
)

// sshdDir is where sshd resolves relative Include paths (SSHDIR at build
// time; /etc/ssh on every distribution kaginashi supports).
const sshdDir = "/etc/ssh"

// maxIncludeDepth is sshd's SERVCONF_MAX_DEPTH: the main file is depth 0 and
// sshd refuses to go deeper than 16 nested Includes.
const maxIncludeDepth = 16

// maxFiles bounds the work of one parse (sshd has no such bound, but it also
// aborts at the first include loop, as this parser does).
const maxFiles = 4096

// Markers of kaginashi's managed block (in the main file) and drop-in file.
const (
	beginMarker = "# BEGIN kaginashi-agent setup-sshd"
	endMarker   = "# END kaginashi-agent setup-sshd"
)

// Directive is one active configuration line, after Include expansion.
type Directive struct {
	File     string   `json:"file"`            // the file it is in (a logical path: without Options.Root)
	Line     int      `json:"line"`            // 1-based line number in File
	Keyword  string   `json:"keyword"`         // as written
	Value    string   `json:"value"`           // the rest of the line, as sshd sees it
	Match    string   `json:"match,omitempty"` // criteria of the enclosing Match block; "" outside any
	Managed  bool     `json:"managed,omitempty"`
	key      string   // lower-case keyword
	args     []string // Value split as sshd splits arguments
	depth    int      // Include depth: 0 for the main file
	matchAll bool     // enclosing block is "Match all" (applies globally)
}

// Global reports whether sshd applies the directive to every connection: it
// is outside any Match block or inside "Match all".
func (d *Directive) Global() bool { return d.Match == "" || d.matchAll }

func (d *Directive) where() string { return fmt.Sprintf("%s:%d", d.File, d.Line) }

// config is a parsed sshd configuration: every active line in the order sshd
// reads them.
type config struct {
	Main       string
	Files      []string
	Directives []*Directive
	Warnings   []string
}

// effective returns the directive sshd uses for key when no Match criteria
// apply: the first one read outside Match blocks (or inside "Match all").
func (c *config) effective(key string) *Directive {
	for _, d := range c.Directives {
		if d.key == key && d.Global() {
			return d
		}
	}
	return nil
}

// all returns every directive for key, in reading order.
func (c *config) all(key string) []*Directive {
	var out []*Directive
	for _, d := range c.Directives {
		if d.key == key {
			out = append(out, d)
		}
	}
	return out
}

// ParseError is a configuration sshd itself would reject (or that this
// parser cannot follow, like an Include loop).
type ParseError struct {
	File string
	Line int
	Msg  string
}

func (e *ParseError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s line %d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.File, e.Msg)
}

// fsys is the file access the parser needs. Paths are logical absolute paths.
type fsys interface {
	ReadFile(name string) ([]byte, error)
	Glob(pattern string) ([]string, error)
}

// rootFS reads the real file system, under root when root is not empty.
type rootFS struct{ root string }

func (r rootFS) real(p string) string {
	if r.root == "" {
		return p
	}
	return filepath.Join(r.root, p)
}

func (r rootFS) ReadFile(p string) ([]byte, error) {
	b, err := os.ReadFile(r.real(p))
	if errors.Is(err, syscall.EISDIR) {
		// sshd fopen()s a directory matched by a glob and reads nothing.
		return nil, nil
	}
	return b, err
}

func (r rootFS) Glob(pattern string) ([]string, error) {
	matches, err := filepath.Glob(globEscape(r.root) + pattern)
	if err != nil {
		return nil, err
	}
	out := matches[:0]
	for _, m := range matches {
		l := m
		if r.root != "" {
			l = strings.TrimPrefix(m, filepath.Clean(r.root))
			if l == "" {
				l = "/"
			}
		}
		if globHidesDot(pattern, l) {
			continue
		}
		out = append(out, l)
	}
	sort.Strings(out)
	return out, nil
}

// globEscape quotes glob metacharacters in a literal path prefix.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// globHidesDot reports whether glob(3) (without GLOB_PERIOD) would not have
// returned name for pattern: a wildcard component not starting with '.'
// never matches a name starting with '.'. Go's filepath.Glob would.
func globHidesDot(pattern, name string) bool {
	pc := strings.Split(pattern, "/")
	nc := strings.Split(name, "/")
	if len(pc) != len(nc) {
		return false
	}
	for i := range pc {
		if strings.ContainsAny(pc[i], "*?[") && !strings.HasPrefix(pc[i], ".") && strings.HasPrefix(nc[i], ".") {
			return true
		}
	}
	return false
}

// overlayFS is base with some files replaced (nil content: deleted). Setup
// parses the configuration it is about to write through it.
type overlayFS struct {
	base  fsys
	files map[string][]byte
}

func (o overlayFS) ReadFile(p string) ([]byte, error) {
	if b, ok := o.files[p]; ok {
		if b == nil {
			return nil, &fs.PathError{Op: "open", Path: p, Err: fs.ErrNotExist}
		}
		return b, nil
	}
	return o.base.ReadFile(p)
}

func (o overlayFS) Glob(pattern string) ([]string, error) {
	base, err := o.base.Glob(pattern)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var out []string
	for _, m := range base {
		if b, ok := o.files[m]; ok && b == nil {
			continue
		}
		seen[m] = true
		out = append(out, m)
	}
	for p, b := range o.files {
		if b == nil || seen[p] {
			continue
		}
		if globMatch(pattern, p) {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out, nil
}

// mapFS is an in-memory configuration tree (tests and the fuzz target).
type mapFS map[string][]byte

func (m mapFS) ReadFile(p string) ([]byte, error) {
	b, ok := m[p]
	if !ok {
		return nil, &fs.PathError{Op: "open", Path: p, Err: fs.ErrNotExist}
	}
	return b, nil
}

func (m mapFS) Glob(pattern string) ([]string, error) {
	if _, err := path.Match(pattern, ""); err != nil {
		return nil, err
	}
	var out []string
	for p := range m {
		if globMatch(pattern, p) {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out, nil
}

// globMatch matches a logical path against a glob the way glob(3) would.
func globMatch(pattern, name string) bool {
	pc := strings.Split(pattern, "/")
	nc := strings.Split(name, "/")
	if len(pc) != len(nc) {
		return false
	}
	for i := range pc {
		ok, err := path.Match(pc[i], nc[i])
		if err != nil || !ok {
			return false
		}
	}
	return !globHidesDot(pattern, name)
}

// parseConfig reads main and everything it includes, as sshd does.
func parseConfig(fsys fsys, main string) (*config, error) {
	data, err := fsys.ReadFile(main)
	if err != nil {
		return nil, err
	}
	p := &parser{fs: fsys, cfg: &config{Main: main}}
	err = p.parse(main, data, 0, scope{})
	return p.cfg, err
}

type scope struct {
	match string
	all   bool
}

type parser struct {
	fs     fsys
	cfg    *config
	nfiles int
}

func (p *parser) parse(file string, data []byte, depth int, sc scope) error {
	if depth > maxIncludeDepth {
		return &ParseError{File: file, Msg: fmt.Sprintf("too many recursive Includes (sshd stops after %d levels): is there an Include loop?", maxIncludeDepth)}
	}
	p.nfiles++
	if p.nfiles > maxFiles {
		return &ParseError{File: file, Msg: fmt.Sprintf("more than %d files included", maxFiles)}
	}
	p.cfg.Files = append(p.cfg.Files, file)
	var pending []*Directive // directives inside an open BEGIN marker
	inBlock, blockLine := false, 0
	for n, line := range splitLines(data) {
		lineno := n + 1
		if i := strings.IndexByte(line, 0); i >= 0 {
			line = line[:i] // sshd works on C strings
		}
		t := strings.TrimLeft(line, " \t\r")
		switch {
		case strings.HasPrefix(t, beginMarker):
			if inBlock {
				p.warn(file, lineno, "a second kaginashi BEGIN marker before the END of the first")
			}
			inBlock, blockLine, pending = true, lineno, nil
			continue
		case strings.HasPrefix(t, endMarker):
			if inBlock {
				for _, d := range pending {
					d.Managed = true
				}
			} else {
				p.warn(file, lineno, "kaginashi END marker without BEGIN")
			}
			inBlock, pending = false, nil
			continue
		}
		kw, rest, ok := splitKeyword(line)
		if !ok {
			continue
		}
		d := &Directive{File: file, Line: lineno, Keyword: kw, Value: rest, key: strings.ToLower(kw), depth: depth, Match: sc.match, matchAll: sc.all}
		args, err := argvSplit(rest)
		if err != nil {
			p.warn(file, lineno, "%s: %v (sshd rejects this line)", kw, err)
			continue
		}
		d.args = args
		if rest == "" {
			p.warn(file, lineno, "no argument after keyword %q (sshd rejects this line)", kw)
			continue
		}
		switch d.key {
		case "match":
			sc = scope{match: rest, all: len(args) == 1 && strings.EqualFold(args[0], "all")}
			d.Match, d.matchAll = sc.match, sc.all
			p.cfg.Directives = append(p.cfg.Directives, d)
			continue
		case "include":
			p.cfg.Directives = append(p.cfg.Directives, d)
			if inBlock {
				pending = append(pending, d)
			}
			for _, a := range args {
				if a == "" {
					return &ParseError{File: file, Line: lineno, Msg: "Include with an empty argument"}
				}
				pat := a
				if !strings.HasPrefix(a, "/") && !strings.HasPrefix(a, "~") {
					pat = sshdDir + "/" + a
				}
				matches, err := p.fs.Glob(pat)
				if err != nil {
					return &ParseError{File: file, Line: lineno, Msg: fmt.Sprintf("Include %s: %v", a, err)}
				}
				for _, m := range matches {
					b, err := p.fs.ReadFile(m)
					if err != nil {
						return &ParseError{File: file, Line: lineno, Msg: fmt.Sprintf("Include %s: %v", m, err)}
					}
					// sshd restores the including file's Match state after
					// each included file.
					if err := p.parse(m, b, depth+1, sc); err != nil {
						return err
					}
				}
			}
			continue
		}
		p.cfg.Directives = append(p.cfg.Directives, d)
		if inBlock {
			pending = append(pending, d)
		}
	}
	if inBlock {
		p.warn(file, blockLine, "kaginashi BEGIN marker without END: its lines are not treated as kaginashi's")
	}
	return nil
}

func (p *parser) warn(file string, line int, format string, a ...any) {
	p.cfg.Warnings = append(p.cfg.Warnings, fmt.Sprintf("%s:%d: ", file, line)+fmt.Sprintf(format, a...))
}

// splitLines splits like getline(3): on '\n' only; a last line without a
// newline still counts.
func splitLines(data []byte) []string {
	if len(data) == 0 {
		return nil
	}
	s := string(data)
	s = strings.TrimSuffix(s, "\n")
	return strings.Split(s, "\n")
}

const whitespace = " \t\r\n"

// splitKeyword splits a line as sshd's process_server_config_line does: the
// keyword ends at whitespace, '=' or a quoted part; one '=' between keyword
// and value is allowed, with whitespace either side. ok is false for blank
// lines and comments.
func splitKeyword(line string) (kw, rest string, ok bool) {
	s := strings.TrimLeft(line, " \t\r")
	s = strings.TrimRight(s, whitespace+"\f")
	kw, s, ok = strdelim(s)
	if ok && kw == "" {
		kw, s, ok = strdelim(s)
	}
	if !ok || kw == "" || kw[0] == '#' {
		return "", "", false
	}
	return kw, s, true
}

// strdelim is OpenSSH's strdelim(): the next token, and what follows it.
func strdelim(s string) (tok, rest string, ok bool) {
	i := strings.IndexAny(s, whitespace+"\"=")
	if i < 0 {
		return s, "", true
	}
	if s[i] == '"' {
		after := s[i+1:]
		j := strings.IndexByte(after, '"')
		if j < 0 {
			return "", "", false // no matching quote: sshd ignores the line
		}
		return s[:i] + after[:j], strings.TrimLeft(after[j+1:], whitespace), true
	}
	equals := s[i] == '='
	tok, rest = s[:i], strings.TrimLeft(s[i+1:], whitespace)
	if !equals && strings.HasPrefix(rest, "=") {
		rest = strings.TrimLeft(rest[1:], whitespace)
	}
	return tok, rest, true
}

// argvSplit is OpenSSH's argv_split(s, ..., terminate_on_comment=1): words
// separated by blanks, single or double quotes, backslash escapes of quotes,
// backslash and (outside quotes) space; an unquoted '#' at the start of a
// word ends the line.
func argvSplit(s string) ([]string, error) {
	var out []string
	i := 0
	for i < len(s) {
		if s[i] == ' ' || s[i] == '\t' {
			i++
			continue
		}
		if s[i] == '#' {
			break
		}
		var b strings.Builder
		var quote byte
		for ; i < len(s); i++ {
			c := s[i]
			if c == '\\' && i+1 < len(s) && (s[i+1] == '\'' || s[i+1] == '"' || s[i+1] == '\\' || (quote == 0 && s[i+1] == ' ')) {
				i++
				b.WriteByte(s[i])
				continue
			}
			if quote == 0 && (c == ' ' || c == '\t') {
				break
			}
			if quote == 0 && (c == '"' || c == '\'') {
				quote = c
				continue
			}
			if quote != 0 && c == quote {
				quote = 0
				continue
			}
			b.WriteByte(c)
		}
		if quote != 0 {
			return nil, errors.New("unterminated quote")
		}
		out = append(out, b.String())
	}
	return out, nil
}
