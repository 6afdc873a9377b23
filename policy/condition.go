package policy

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// ValueType is the type a condition operator reads its values as.
type ValueType uint8

// Operator value types, as IAM documents them.
const (
	TypeString ValueType = iota + 1
	TypeNumeric
	TypeDate
	TypeBool
	TypeBinary
	TypeIP
	TypeARN
	TypeNull
)

func (t ValueType) String() string {
	switch t {
	case TypeString:
		return "String"
	case TypeNumeric:
		return "Numeric"
	case TypeDate:
		return "Date"
	case TypeBool:
		return "Bool"
	case TypeBinary:
		return "Binary"
	case TypeIP:
		return "IPAddress"
	case TypeARN:
		return "ARN"
	case TypeNull:
		return "Null"
	}
	return "?"
}

type cmpKind uint8

const (
	cmpEq cmpKind = iota
	cmpEqFold
	cmpLike
	cmpLT
	cmpLE
	cmpGT
	cmpGE
)

type baseOp struct {
	name    string
	typ     ValueType
	cmp     cmpKind
	negated bool
}

// baseOps lists every condition operator of the IAM policy language.
var baseOps = []baseOp{
	{"StringEquals", TypeString, cmpEq, false},
	{"StringNotEquals", TypeString, cmpEq, true},
	{"StringEqualsIgnoreCase", TypeString, cmpEqFold, false},
	{"StringNotEqualsIgnoreCase", TypeString, cmpEqFold, true},
	{"StringLike", TypeString, cmpLike, false},
	{"StringNotLike", TypeString, cmpLike, true},
	{"NumericEquals", TypeNumeric, cmpEq, false},
	{"NumericNotEquals", TypeNumeric, cmpEq, true},
	{"NumericLessThan", TypeNumeric, cmpLT, false},
	{"NumericLessThanEquals", TypeNumeric, cmpLE, false},
	{"NumericGreaterThan", TypeNumeric, cmpGT, false},
	{"NumericGreaterThanEquals", TypeNumeric, cmpGE, false},
	{"DateEquals", TypeDate, cmpEq, false},
	{"DateNotEquals", TypeDate, cmpEq, true},
	{"DateLessThan", TypeDate, cmpLT, false},
	{"DateLessThanEquals", TypeDate, cmpLE, false},
	{"DateGreaterThan", TypeDate, cmpGT, false},
	{"DateGreaterThanEquals", TypeDate, cmpGE, false},
	{"Bool", TypeBool, cmpEq, false},
	{"BinaryEquals", TypeBinary, cmpEq, false},
	{"IpAddress", TypeIP, cmpEq, false},
	{"NotIpAddress", TypeIP, cmpEq, true},
	{"ArnEquals", TypeARN, cmpLike, false},
	{"ArnLike", TypeARN, cmpLike, false},
	{"ArnNotEquals", TypeARN, cmpLike, true},
	{"ArnNotLike", TypeARN, cmpLike, true},
	{"Null", TypeNull, cmpEq, false},
}

type setQual uint8

const (
	setNone setQual = iota
	setForAll
	setForAny
)

// operator is a parsed operator name: qualifier, base operator, IfExists.
type operator struct {
	base     baseOp
	set      setQual
	ifExists bool
	// canonical is the operator spelled as IAM documents it.
	canonical string
}

// parseOperator reads "ForAnyValue:StringLikeIfExists" and the like.
// Operator names are matched without regard to case, as IAM does; canonical
// gives the documented spelling.
func parseOperator(s string) (operator, error) {
	var op operator
	rest := s
	if q, r, ok := strings.Cut(s, ":"); ok {
		switch strings.ToLower(q) {
		case "forallvalues":
			op.set = setForAll
		case "foranyvalue":
			op.set = setForAny
		default:
			return op, fmt.Errorf("%q is not a set operator; use ForAllValues: or ForAnyValue:", q+":")
		}
		rest = r
	}
	lower := strings.ToLower(rest)
	if strings.HasSuffix(lower, "ifexists") {
		op.ifExists = true
		lower = strings.TrimSuffix(lower, "ifexists")
	}
	for _, b := range baseOps {
		if strings.ToLower(b.name) == lower {
			op.base = b
			break
		}
	}
	if op.base.name == "" {
		return op, fmt.Errorf("%q is not a condition operator; see the IAM condition operators (StringEquals, StringLike, NumericLessThanEquals, IpAddress, ArnLike, Bool, Null, ...)", s)
	}
	if op.base.typ == TypeNull && op.ifExists {
		return op, fmt.Errorf("Null cannot take IfExists: Null itself tests whether the key exists")
	}
	if op.base.typ == TypeNull && op.set != setNone {
		return op, fmt.Errorf("Null cannot take ForAllValues:/ForAnyValue:; use Null alone")
	}
	switch op.set {
	case setForAll:
		op.canonical = "ForAllValues:"
	case setForAny:
		op.canonical = "ForAnyValue:"
	}
	op.canonical += op.base.name
	if op.ifExists {
		op.canonical += "IfExists"
	}
	return op, nil
}

// ccond is a compiled condition: one operator, one key, its values.
type ccond struct {
	op       operator
	key      string // lower case
	rawKey   string
	path     string
	strs     []pattern // String and ARN operators
	nums     []float64
	times    []time.Time
	prefixes []netip.Prefix
	bools    []bool // Bool, and Null's true/false
	bins     [][]byte
}

func compileCondition(c *Condition, vars bool) (*ccond, Errors) {
	op, err := parseOperator(c.Operator)
	if err != nil {
		return nil, Errors{{Code: CodeUnknownOperator, Path: c.opPath, Message: err.Error() + ".", off: c.off}}
	}
	cc := &ccond{op: op, key: strings.ToLower(c.Key), rawKey: c.Key, path: c.Path}
	if strings.Contains(c.Key, "${") {
		return nil, Errors{{Code: CodeInvalidConditionKey, Path: c.Path, Message: "policy variables are not allowed in condition key names.", off: c.off}}
	}
	var errs Errors
	bad := func(i int, format string, args ...any) {
		p, off := c.Path, c.off
		if i < len(c.valuePos) {
			p, off = c.valuePos[i].path, c.valuePos[i].off
		}
		errs = append(errs, &Error{Code: CodeInvalidConditionValue, Path: p, Message: fmt.Sprintf(format, args...), off: off})
	}
	for i, v := range c.Values {
		switch op.base.typ {
		case TypeString:
			mode := modeEqual
			if op.base.cmp == cmpLike {
				mode = modePlain
			}
			p := compilePattern(v, mode, vars, false)
			p.ufold = op.base.cmp == cmpEqFold
			cc.strs = append(cc.strs, p)
		case TypeARN:
			cc.strs = append(cc.strs, compilePattern(v, modeARN, vars, false))
		case TypeNumeric:
			n, ok := parseNumber(v)
			if !ok {
				bad(i, "%q is not a number; %s compares numbers such as 22 or 3600.", v, op.base.name)
			}
			cc.nums = append(cc.nums, n)
		case TypeDate:
			t, ok := parseDate(v)
			if !ok {
				bad(i, "%q is not a date; use ISO 8601 (2026-01-31T00:00:00Z) or seconds since the epoch.", v)
			}
			cc.times = append(cc.times, t)
		case TypeBool, TypeNull:
			b, ok := parseBool(v)
			if !ok {
				bad(i, `%q is not a boolean; %s takes "true" or "false".`, v, op.base.name)
			}
			cc.bools = append(cc.bools, b)
		case TypeBinary:
			b, err := base64.StdEncoding.DecodeString(v)
			if err != nil {
				bad(i, "%q is not base64; BinaryEquals compares base64-encoded bytes.", v)
			}
			cc.bins = append(cc.bins, b)
		case TypeIP:
			p, ok := parseCIDR(v)
			if !ok {
				bad(i, "%q is not an IP address range; use CIDR notation such as 203.0.113.0/24 or 2001:db8::/32.", v)
			}
			cc.prefixes = append(cc.prefixes, p)
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return cc, nil
}

func parseNumber(s string) (float64, bool) {
	n, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || math.IsNaN(n) || math.IsInf(n, 0) {
		return 0, false
	}
	return n, true
}

func parseBool(s string) (bool, bool) {
	switch {
	case strings.EqualFold(s, "true"):
		return true, true
	case strings.EqualFold(s, "false"):
		return false, true
	}
	return false, false
}

// parseDate reads an ISO 8601 date-time (a zone-less one is UTC) or a count
// of seconds since the epoch, possibly with a fraction. It picks the layout
// from the text's shape rather than trying layouts in turn: a failed
// time.Parse allocates its error, and request values are parsed on the
// evaluation path.
func parseDate(s string) (time.Time, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, false
	}
	if isEpoch(s) {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || f > 1e13 || f < -1e13 {
			return time.Time{}, false
		}
		sec, frac := math.Modf(f)
		return time.Unix(int64(sec), int64(frac*1e9)).UTC(), true
	}
	t, err := time.Parse(dateLayout(s), s)
	return t, err == nil
}

// dateLayout chooses the ISO 8601 layout that fits s.
func dateLayout(s string) string {
	date, clock, hasT := strings.Cut(s, "T")
	if !hasT {
		return "2006-01-02"
	}
	if len(date) == 8 { // basic format: 20260131T120000Z
		if strings.HasSuffix(clock, "Z") {
			return "20060102T150405Z"
		}
		return "20060102T150405Z0700"
	}
	hms, zone := clock, false
	if strings.HasSuffix(clock, "Z") {
		hms, zone = clock[:len(clock)-1], true
	} else if i := strings.IndexAny(clock, "+-"); i >= 0 {
		hms, zone = clock[:i], true
	}
	seconds := strings.Count(hms, ":") >= 2
	switch {
	case zone && seconds:
		return time.RFC3339Nano // also takes whole seconds
	case zone:
		return "2006-01-02T15:04Z07:00"
	case seconds:
		return "2006-01-02T15:04:05.999999999"
	}
	return "2006-01-02T15:04"
}

func isEpoch(s string) bool {
	if s[0] == '-' {
		s = s[1:]
	}
	if s == "" {
		return false
	}
	dot := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '.' && !dot:
			dot = true
		case c < '0' || c > '9':
			return false
		}
	}
	return true
}

// parseCIDR reads a CIDR block; a bare address means just that address.
func parseCIDR(s string) (netip.Prefix, bool) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, false
		}
		if p.Addr().Is4In6() {
			p = netip.PrefixFrom(p.Addr().Unmap(), max(p.Bits()-96, 0))
		}
		return p.Masked(), true
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, false
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), true
}

// eval decides the condition for a request. res, when not nil, collects
// the context keys the condition needed but the request lacked.
func (c *ccond) eval(ctx *Context, res *Result) bool {
	vals := ctx.get(c.key)
	if len(vals) == 0 && c.op.base.typ != TypeNull && res != nil {
		res.addMissing(c.rawKey)
	}
	return c.decide(vals, nil, ctx, res)
}

// decide decides the condition given the request's values for its key.
// kc, when not nil, caches parsed forms of a single value for the length of
// one evaluation. res, when not nil, collects unresolvable variables.
func (c *ccond) decide(vals []string, kc *keyCache, ctx *Context, res *Result) bool {
	present := len(vals) > 0
	if len(vals) != 1 {
		kc = nil // the cache holds one value's parsed forms
	}
	if c.op.base.typ == TypeNull {
		// Null: "true" holds when the key is absent, "false" when present.
		for _, want := range c.bools {
			if want == !present {
				return true
			}
		}
		return false
	}
	if !present {
		switch {
		case c.op.ifExists, c.op.set == setForAll:
			return true
		case c.op.set == setForAny:
			return false
		}
		// A negated operator holds for a key that is not there.
		return c.op.base.negated
	}
	neg := c.op.base.negated
	unresolved := false
	switch c.op.set {
	case setForAll:
		// Every request value must satisfy the operator.
		for _, v := range vals {
			m, u := c.matchAny(v, kc, ctx, res)
			unresolved = unresolved || u
			if m == neg {
				return false
			}
		}
		return !(neg && unresolved)
	case setForAny:
		// At least one request value must satisfy the operator.
		for _, v := range vals {
			m, u := c.matchAny(v, kc, ctx, res)
			unresolved = unresolved || u
			if m != neg && !(neg && u) {
				return true
			}
		}
		return false
	}
	// No qualifier: a positive operator holds when any request value matches
	// any policy value; a negated one when none does.
	any := false
	for _, v := range vals {
		m, u := c.matchAny(v, kc, ctx, res)
		unresolved = unresolved || u
		if m {
			any = true
			break
		}
	}
	if neg {
		// A value that named an unresolvable variable could not be checked,
		// so "matches none of them" cannot be claimed: the condition fails.
		return !any && !unresolved
	}
	return any
}

// matchAny reports whether the request value v matches any policy value
// (the positive form of the operator), and whether some policy value had a
// variable that could not be resolved.
func (c *ccond) matchAny(v string, kc *keyCache, ctx *Context, res *Result) (matched, unresolved bool) {
	switch c.op.base.typ {
	case TypeString, TypeARN:
		for i := range c.strs {
			ok, missing := c.strs[i].match(v, ctx)
			if missing != "" {
				unresolved = true
				if res != nil {
					res.addMissing(missing)
				}
			}
			if ok {
				return true, unresolved
			}
		}
		return false, unresolved
	case TypeNumeric:
		n, ok := kc.number(v)
		if !ok {
			return false, false
		}
		for _, p := range c.nums {
			if compare(c.op.base.cmp, cmp3(n, p)) {
				return true, false
			}
		}
	case TypeDate:
		t, ok := kc.date(v)
		if !ok {
			return false, false
		}
		for _, p := range c.times {
			if compare(c.op.base.cmp, t.Compare(p)) {
				return true, false
			}
		}
	case TypeBool:
		b, ok := parseBool(v)
		if !ok {
			return false, false
		}
		for _, p := range c.bools {
			if b == p {
				return true, false
			}
		}
	case TypeBinary:
		var buf [512]byte
		if base64.StdEncoding.DecodedLen(len(v)) > len(buf) {
			return false, false
		}
		n, err := base64.StdEncoding.Decode(buf[:], []byte(v))
		if err != nil {
			return false, false
		}
		for _, p := range c.bins {
			if bytes.Equal(buf[:n], p) {
				return true, false
			}
		}
	case TypeIP:
		a, ok := kc.addr(v)
		if !ok {
			return false, false
		}
		for _, p := range c.prefixes {
			if p.Contains(a) {
				return true, false
			}
		}
	}
	return false, false
}

func cmp3(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// compare applies the operator's comparison to a three-way result of
// request value against policy value.
func compare(k cmpKind, r int) bool {
	switch k {
	case cmpLT:
		return r < 0
	case cmpLE:
		return r <= 0
	case cmpGT:
		return r > 0
	case cmpGE:
		return r >= 0
	}
	return r == 0
}

// keyCache holds one context key's values and their parsed forms for the
// length of one evaluation, so that several conditions on the same key
// look it up and parse it once. gen says which evaluation filled a field.
type keyCache struct {
	gen  uint32 // evaluation that looked vals up
	vals []string

	numGen, dateGen, addrGen uint32
	numV                     float64
	dateV                    time.Time
	addrV                    netip.Addr
	numOK, dateOK, addrOK    bool
}

// The parse methods work on a nil cache too (no caching).

func (k *keyCache) number(v string) (float64, bool) {
	if k == nil {
		return parseNumber(v)
	}
	if k.numGen != k.gen {
		k.numV, k.numOK = parseNumber(v)
		k.numGen = k.gen
	}
	return k.numV, k.numOK
}

func (k *keyCache) date(v string) (time.Time, bool) {
	if k == nil {
		return parseDate(v)
	}
	if k.dateGen != k.gen {
		k.dateV, k.dateOK = parseDate(v)
		k.dateGen = k.gen
	}
	return k.dateV, k.dateOK
}

func (k *keyCache) addr(v string) (netip.Addr, bool) {
	if k == nil {
		return parseAddr(v)
	}
	if k.addrGen != k.gen {
		k.addrV, k.addrOK = parseAddr(v)
		k.addrGen = k.gen
	}
	return k.addrV, k.addrOK
}

func parseAddr(v string) (netip.Addr, bool) {
	a, err := netip.ParseAddr(strings.TrimSpace(v))
	if err != nil {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

// cost ranks a condition by how much work deciding it takes: comparing
// strings is cheaper than parsing numbers, addresses or dates.
func (c *ccond) cost() int {
	switch c.op.base.typ {
	case TypeNull, TypeBool:
		return 0
	case TypeString:
		if c.op.base.cmp == cmpLike {
			return 2
		}
		return 1
	case TypeARN:
		return 2
	case TypeNumeric:
		return 3
	case TypeIP:
		return 4
	}
	return 5 // dates, binary
}
