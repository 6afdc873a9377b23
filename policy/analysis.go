package policy

import "strings"

// Static analysis over patterns, for the validator: can two patterns ever
// match the same value, and does one cover everything another does. These
// run on policy text, never on the request path, so they favour clarity
// over speed.

// analysisElems turns a pattern into elements. With vars, a policy variable
// stands for "anything" (elemStar): a safe over-approximation when asking
// whether a pattern can match something.
func analysisElems(s string, vars, fold bool) []elem {
	if !vars || !strings.Contains(s, "${") {
		return appendElems(nil, s, true, fold)
	}
	var out []elem
	for _, t := range parseVars(s) {
		switch {
		case t.isVar:
			out = append(out, elemStar)
		default:
			out = appendElems(out, t.text, !t.escape, fold)
		}
	}
	return out
}

// hasVariable reports whether s uses a policy variable.
func hasVariable(s string) bool {
	for _, t := range parseVars(s) {
		if t.isVar {
			return true
		}
	}
	return false
}

// elemStarNC is a * that never matches a colon. It appears only in
// analysis, for the parts of real ARNs (region, account, IDs) that have no
// colons.
const elemStarNC elem = 3 << 8

func isStar(e elem) bool { return e == elemStar || e == elemStarNC }

// templateElems turns a resource type's ARN template into elements: each
// ${...} becomes a colon-free *, since real regions, accounts and IDs hold
// no colons.
func templateElems(t string) []elem {
	var out []elem
	for _, tk := range parseVars(t) {
		if tk.isVar {
			out = append(out, elemStarNC)
		} else {
			out = appendElems(out, tk.text, false, false)
		}
	}
	return out
}

// globsIntersect reports whether some string matches both globs. It walks
// the product of the two patterns' automata; a * matches any run of
// characters (colon rules of the Resource element are ignored, which can
// only say "yes" more often), an elemStarNC any run without a colon.
func globsIntersect(a, b []elem) bool {
	type st struct{ i, j int }
	seen := map[st]bool{}
	var stack []st
	push := func(s st) {
		if !seen[s] {
			seen[s] = true
			stack = append(stack, s)
		}
	}
	push(st{0, 0})
	for len(stack) > 0 {
		s := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		i, j := s.i, s.j
		if i == len(a) && j == len(b) {
			return true
		}
		// A star may match the empty string.
		if i < len(a) && isStar(a[i]) {
			push(st{i + 1, j})
		}
		if j < len(b) && isStar(b[j]) {
			push(st{i, j + 1})
		}
		if i == len(a) || j == len(b) {
			continue
		}
		// Consume one common character.
		ai, bj := a[i], b[j]
		aStar, bStar := isStar(ai), isStar(bj)
		ni, nj := i+1, j+1
		if aStar {
			ni = i
		}
		if bStar {
			nj = j
		}
		if aStar && bStar {
			continue // both stay: no progress
		}
		if ai&kindMask == 0 && bj&kindMask == 0 && ai != bj {
			continue // two different literal characters
		}
		if (ai == elemStarNC && bj == ':') || (bj == elemStarNC && ai == ':') {
			continue
		}
		push(st{ni, nj})
	}
	return false
}

// subsumes reports whether every string matching specific also matches
// general. It matches general against specific's own elements, letting a
// * in general absorb anything (wildcards of specific included) and a ? in
// general absorb one literal or ?. That is sound — a "yes" is always right —
// and complete for the patterns people write. In resource mode, wildcards
// of general that may not cross a colon do not absorb one.
func subsumes(general, specific []elem, resource bool) bool {
	memo := map[[2]int]bool{}
	var m func(i, j int) bool
	m = func(i, j int) bool {
		key := [2]int{i, j}
		if v, ok := memo[key]; ok {
			return v
		}
		var r bool
		switch {
		case i == len(general):
			r = j == len(specific)
		case general[i] == elemStar:
			unrestricted := !resource || i == len(general)-1 || general[i+1] == ':'
			// The star absorbs nothing, or one more element of specific.
			r = m(i+1, j)
			if !r && j < len(specific) {
				s := specific[j]
				if unrestricted || (s != ':' && !(s == elemStar && endsSegment(specific, j))) {
					r = m(i, j+1)
				}
			}
		case j == len(specific):
			r = false
		case general[i] == elemAny1:
			s := specific[j]
			r = s != elemStar && !(resource && s == ':') && m(i+1, j+1)
		default:
			r = general[i] == specific[j] && m(i+1, j+1)
		}
		memo[key] = r
		return r
	}
	return m(0, 0)
}

func endsSegment(es []elem, i int) bool {
	return i == len(es)-1 || es[i+1] == ':'
}
