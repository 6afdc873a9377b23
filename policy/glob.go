package policy

import (
	"strings"
	"unicode/utf8"
)

// Patterns are compiled once into one of a few shapes so that the common
// cases — "*", an exact string, a literal prefix followed by "*" — cost a
// comparison, and only real globs run the matcher. Nothing here allocates
// while matching, which keeps evaluation allocation-free.

// matchMode says how a pattern compares with a request value.
type matchMode uint8

const (
	// modeEqual: no wildcards; the value must equal the pattern
	// (StringEquals, BinaryEquals-free string operators).
	modeEqual matchMode = iota
	// modePlain: * matches any run of characters, ? any one character
	// (Action, StringLike).
	modePlain
	// modeResource: IAM's Resource rule — wildcards stay inside their
	// colon-separated ARN segment, except a * that ends a segment, which may
	// run on across colons.
	modeResource
	// modeARN: the Arn* condition operators — each of the six ARN components
	// is matched on its own; the last one (the resource) takes the rest.
	modeARN
)

type patKind uint8

const (
	patAny    patKind = iota // matches everything
	patExact                 // lit must equal the value
	patPrefix                // the value must start with lit
	patGlob                  // run the matcher over elems
	patVars                  // has policy variables: expand, then match
	patSegs                  // a Resource pattern matched segment by segment
)

// elem is one pattern element: a byte, or a wildcard.
type elem uint16

const (
	elemAny1 elem = 1 << 8 // ?
	elemStar elem = 2 << 8 // *
	kindMask elem = 0xff00
)

type pattern struct {
	raw   string
	kind  patKind
	mode  matchMode
	fold  bool // case-insensitive (ASCII): actions
	ufold bool // case-insensitive (Unicode): StringEqualsIgnoreCase
	lit   string
	elems []elem
	toks  []ptok

	// patSegs: one plain pattern per colon-separated segment, and the
	// whole pattern (full) for the rare value the walk cannot decide.
	segs   []rseg
	full   *pattern
	colons int // colons in the pattern, outside variables
	// head is the literal text of the leading segments that have no
	// wildcard or variable, with their colons ("arn:aws:ec2:"); headSegs
	// counts them. One prefix test replaces walking them.
	head     string
	headSegs int
	// needFull: a segment before the last ends in * (which may run on over
	// colons) or holds a variable (whose value might hold one).
	needFull bool
}

// rseg is one segment of a Resource pattern.
type rseg struct {
	p pattern // plain-mode pattern over the segment's text
	// simpleTail: the segment has no wildcard, or only a final *; as the
	// last segment it then matches a part with colons exactly by plain
	// rules (the final * may run on over colons).
	simpleTail bool
}

type ptok struct {
	isVar  bool
	escape bool   // ${*}, ${?} or ${$}: text is one literal character
	text   string // literal text, wildcards included when the pattern has them
	key    string // the variable's context key, lower case
	hash   uint64 // keyHash(key)
	rawKey string // as written, for reports
	def    string
	hasDef bool
}

// compilePattern builds a pattern. vars turns on ${...} policy variables
// (Version 2012-10-17 only).
func compilePattern(s string, mode matchMode, vars, fold bool) pattern {
	p := pattern{raw: s, mode: mode, fold: fold}
	wild := mode != modeEqual
	if vars && strings.Contains(s, "${") {
		p.toks = parseVars(s)
		hasVar := false
		for _, t := range p.toks {
			if t.isVar {
				hasVar = true
			}
		}
		if hasVar {
			p.kind = patVars
			return p
		}
		// Only escapes such as ${*}: fold them into plain text elements.
		p.elems = p.elems[:0]
		for _, t := range p.toks {
			p.elems = appendElems(p.elems, t.text, wild && !t.escape, fold)
		}
		p.toks = nil
		p.kind = patGlob
		if !hasWildcard(p.elems) {
			p.kind, p.lit, p.elems = patExact, elemsString(p.elems), nil
		}
		return p
	}
	if fold {
		s = strings.ToLower(s)
	}
	switch {
	case !wild || !strings.ContainsAny(s, "*?"):
		p.kind, p.lit = patExact, s
	case mode != modeARN && strings.Trim(s, "*") == "" && s != "":
		p.kind = patAny
	case mode != modeARN && strings.IndexAny(s, "*?") == len(s)-1 && s[len(s)-1] == '*':
		// A literal prefix and one trailing *. In resource mode a final *
		// ends its segment, so it may cross colons: a prefix test is exact.
		p.kind, p.lit = patPrefix, s[:len(s)-1]
	default:
		p.kind = patGlob
		p.elems = appendElems(nil, s, true, false)
	}
	return p
}

// compileResource compiles a Resource element value. Beyond the shapes
// compilePattern finds, a pattern with wildcards or variables inside it is
// split at its colons, so matching walks the value's segments with one
// cheap comparison each: arn:aws:ec2:*:123456789012:instance/* costs a few
// string compares instead of a backtracking glob.
func compileResource(s string, vars bool) pattern {
	p := compilePattern(s, modeResource, vars, false)
	if p.kind != patGlob && p.kind != patVars {
		return p
	}
	parts := splitSegments(s, vars)
	if len(parts) < 2 {
		return p
	}
	full := p
	sp := pattern{raw: s, kind: patSegs, mode: modeResource, full: &full, colons: len(parts) - 1}
	for i, part := range parts {
		hasVar := vars && hasVariable(part)
		wild := strings.IndexAny(part, "*?")
		sg := rseg{
			p:          compilePattern(part, modePlain, vars, false),
			simpleTail: !hasVar && (wild < 0 || (wild == len(part)-1 && part[wild] == '*')),
		}
		if i < len(parts)-1 && (strings.HasSuffix(part, "*") || hasVar) {
			sp.needFull = true
		}
		sp.segs = append(sp.segs, sg)
	}
	for sp.headSegs < len(parts)-1 && sp.segs[sp.headSegs].p.kind == patExact {
		sp.head += parts[sp.headSegs] + ":"
		sp.headSegs++
	}
	return sp
}

// splitSegments splits s at its colons, except colons inside ${...}.
func splitSegments(s string, vars bool) []string {
	var out []string
	start := 0
	for i := 0; i < len(s); i++ {
		switch {
		case vars && s[i] == '$' && i+1 < len(s) && s[i+1] == '{':
			if j := strings.IndexByte(s[i:], '}'); j > 0 {
				i += j
			}
		case s[i] == ':':
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

// matchSegs walks the value's colon-separated segments against the
// pattern's. When the value has as many colons as the pattern, each pattern
// segment can only meet the value's segment at the same place, so the walk
// decides exactly. Only a value with more colons, against a pattern whose
// earlier segments might absorb one (or whose last segment has wildcards
// that must not cross one), needs the general matcher.
func (p *pattern) matchSegs(t string, ctx *Context) (bool, string) {
	if !strings.HasPrefix(t, p.head) {
		return false, "" // the literal leading segments differ
	}
	ti := len(p.head)
	last := len(p.segs) - 1
	for i := p.headSegs; i < len(p.segs); i++ {
		sg := &p.segs[i]
		part := t[ti:]
		if i < last {
			e := strings.IndexByte(part, ':')
			if e < 0 {
				return false, "" // fewer segments than the pattern: never
			}
			part = part[:e]
			ti += e + 1
		} else if !sg.simpleTail && strings.IndexByte(part, ':') >= 0 {
			break
		}
		ok, missing := sg.p.match(part, ctx)
		if missing != "" {
			return false, missing
		}
		if !ok {
			break
		}
		if i == last {
			return true, ""
		}
	}
	if (p.needFull || !p.segs[last].simpleTail) && strings.Count(t, ":") > p.colons {
		return p.full.match(t, ctx)
	}
	return false, ""
}

func appendElems(dst []elem, s string, wild, fold bool) []elem {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case wild && c == '*':
			dst = append(dst, elemStar)
		case wild && c == '?':
			dst = append(dst, elemAny1)
		default:
			if fold {
				c = lowerASCII(c)
			}
			dst = append(dst, elem(c))
		}
	}
	return dst
}

func hasWildcard(es []elem) bool {
	for _, e := range es {
		if e&kindMask != 0 {
			return true
		}
	}
	return false
}

func elemsString(es []elem) string {
	b := make([]byte, len(es))
	for i, e := range es {
		b[i] = byte(e)
	}
	return string(b)
}

// parseVars splits s into literal text and ${...} variables. Text that only
// looks like a variable (no closing brace) stays literal, as in IAM.
func parseVars(s string) []ptok {
	var toks []ptok
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			break
		}
		j := strings.IndexByte(s[i:], '}')
		if j < 0 {
			break
		}
		body := s[i+2 : i+j]
		if i > 0 {
			toks = append(toks, ptok{text: s[:i]})
		}
		s = s[i+j+1:]
		switch body {
		case "*", "?", "$":
			toks = append(toks, ptok{text: body, escape: true})
			continue
		}
		key, def, hasDef := body, "", false
		if k, d, ok := strings.Cut(body, ","); ok {
			d = strings.TrimSpace(d)
			if len(d) >= 2 && d[0] == '\'' && d[len(d)-1] == '\'' {
				key, def, hasDef = k, d[1:len(d)-1], true
			}
		}
		key = strings.TrimSpace(key)
		lk := strings.ToLower(key)
		toks = append(toks, ptok{isVar: true, key: lk, hash: keyHash(lk), rawKey: key, def: def, hasDef: hasDef})
	}
	if s != "" {
		toks = append(toks, ptok{text: s})
	}
	return toks
}

// varBufLen bounds the stack buffer a variable pattern expands into; longer
// expansions fall back to the heap (correct, just not allocation-free).
const varBufLen = 256

// match reports whether the value t matches. When a policy variable cannot
// be resolved from ctx, the pattern does not match and missing names the
// variable's key.
func (p *pattern) match(t string, ctx *Context) (ok bool, missing string) {
	switch p.kind {
	case patAny:
		return true, ""
	case patExact:
		switch {
		case p.ufold:
			return strings.EqualFold(t, p.lit), ""
		case p.fold:
			return equalFoldASCII(t, p.lit), ""
		}
		return t == p.lit, ""
	case patPrefix:
		if p.fold {
			return len(t) >= len(p.lit) && equalFoldASCII(t[:len(p.lit)], p.lit), ""
		}
		return strings.HasPrefix(t, p.lit), ""
	case patGlob:
		return matchElems(p.elems, t, p.mode, p.fold), ""
	case patSegs:
		return p.matchSegs(t, ctx)
	}
	var buf [varBufLen]elem
	es := buf[:0]
	wild := p.mode != modeEqual
	for _, tk := range p.toks {
		if !tk.isVar {
			es = appendElems(es, tk.text, wild && !tk.escape, p.fold)
			continue
		}
		v, ok := ctx.single(tk.key, tk.hash)
		if !ok {
			if !tk.hasDef {
				return false, tk.rawKey
			}
			v = tk.def
		}
		// A variable's value is always literal text: a * in a user name
		// must not widen the pattern.
		es = appendElems(es, v, false, p.fold)
	}
	if p.mode == modeEqual || !hasWildcard(es) {
		return equalElems(es, t, p.fold || p.ufold), ""
	}
	return matchElems(es, t, p.mode, p.fold), ""
}

func matchElems(es []elem, t string, mode matchMode, fold bool) bool {
	switch mode {
	case modeResource:
		return globResource(es, t)
	case modeARN:
		return globARN(es, t)
	case modeEqual:
		return equalElems(es, t, fold)
	}
	return globPlain(es, t, fold)
}

func equalElems(es []elem, t string, fold bool) bool {
	if len(es) != len(t) {
		return false
	}
	for i, e := range es {
		c := t[i]
		if fold {
			c = lowerASCII(c)
			e = elem(lowerASCII(byte(e)))
		}
		if byte(e) != c {
			return false
		}
	}
	return true
}

// globPlain is the classic greedy wildcard match: on a mismatch, the most
// recent * takes one more character. That is complete for * and ?, and
// linear in practice. ? and the backtracking step move by whole UTF-8
// characters so that a ? never splits one.
func globPlain(p []elem, t string, fold bool) bool {
	pi, ti := 0, 0
	starP, starT := -1, 0
	for ti < len(t) {
		if pi < len(p) {
			e := p[pi]
			switch e & kindMask {
			case elemStar:
				starP, starT = pi, ti
				pi++
				continue
			case elemAny1:
				ti += runeLen(t, ti)
				pi++
				continue
			default:
				c := t[ti]
				if fold {
					c = lowerASCII(c)
				}
				if c == byte(e) {
					pi++
					ti++
					continue
				}
			}
		}
		if starP < 0 {
			return false
		}
		starT += runeLen(t, starT)
		ti, pi = starT, starP+1
	}
	for pi < len(p) && p[pi]&kindMask == elemStar {
		pi++
	}
	return pi == len(p)
}

// globResource matches IAM's Resource rule. The pattern is taken segment by
// segment (split at its literal colons); a segment matches one colon-free
// segment of the value, except a segment ending in *, whose star may also
// swallow further segments. Only the most recent such star is ever retried:
// a later one can absorb anything an earlier one could, the same argument
// that makes greedy globbing complete.
func globResource(p []elem, t string) bool {
	pi, ti := 0, 0
	backP, backT := -1, -1
	for {
		pe := indexElem(p, pi, ':')
		te := indexByteFrom(t, ti, ':')
		seg := p[pi:pe]
		if n := len(seg); n > 0 && seg[n-1] == elemStar {
			if globPlain(seg, t[ti:te], false) {
				if pe == len(p) {
					return true
				}
				if te < len(t) {
					backP, backT = pe+1, te
					pi, ti = pe+1, te+1
					continue
				}
			}
		} else if globPlain(seg, t[ti:te], false) {
			if pe == len(p) {
				if te == len(t) {
					return true
				}
			} else if te < len(t) {
				pi, ti = pe+1, te+1
				continue
			}
		}
		if backP < 0 {
			return false
		}
		nc := indexByteFrom(t, backT+1, ':')
		if nc >= len(t) {
			return false
		}
		backT = nc
		pi, ti = backP, nc+1
	}
}

// globARN matches the Arn* operators: arn:partition:service:region:account:
// resource, each component on its own; the pattern's last component takes
// the rest of the value (an ARN's resource part may hold colons).
func globARN(p []elem, t string) bool {
	pi, ti := 0, 0
	for comp := 0; ; comp++ {
		pe := len(p)
		if comp < 5 {
			pe = indexElem(p, pi, ':')
		}
		if pe == len(p) {
			return globPlain(p[pi:], t[ti:], false)
		}
		te := indexByteFrom(t, ti, ':')
		if te == len(t) || !globPlain(p[pi:pe], t[ti:te], false) {
			return false
		}
		pi, ti = pe+1, te+1
	}
}

func indexElem(p []elem, from int, c byte) int {
	for i := from; i < len(p); i++ {
		if p[i] == elem(c) {
			return i
		}
	}
	return len(p)
}

func indexByteFrom(s string, from int, c byte) int {
	if from >= len(s) {
		return len(s)
	}
	if i := strings.IndexByte(s[from:], c); i >= 0 {
		return from + i
	}
	return len(s)
}

func runeLen(s string, i int) int {
	if s[i] < utf8.RuneSelf {
		return 1
	}
	_, n := utf8.DecodeRuneInString(s[i:])
	return n
}

func lowerASCII(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// equalFoldASCII compares s with an already lower-case ASCII pattern.
func equalFoldASCII(s, lower string) bool {
	if len(s) != len(lower) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if lowerASCII(s[i]) != lower[i] {
			return false
		}
	}
	return true
}
