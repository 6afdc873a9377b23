package policy

import (
	"math/bits"
	"sort"
	"strings"
)

func trailingZeros(x uint64) int { return bits.TrailingZeros64(x) }

// Decision is the outcome of evaluating a request against policies.
type Decision uint8

// The three decisions, named as IAM's policy simulator names them.
const (
	ImplicitDeny Decision = iota
	Allowed
	ExplicitDeny
)

func (d Decision) String() string {
	switch d {
	case Allowed:
		return "allowed"
	case ExplicitDeny:
		return "explicitDeny"
	}
	return "implicitDeny"
}

// MarshalText makes decisions appear as "allowed" etc. in JSON.
func (d Decision) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// RequestPrincipal identifies who makes a request, for statements that
// have a Principal element (resource policies). Identity policies apply to
// their principal and ignore it.
type RequestPrincipal struct {
	Type    string // "AWS" (an IAM user or role, or root), "Service", ...
	ARN     string // arn:aws:iam::123456789012:user/alice
	Account string // 123456789012
}

// Request is what is being decided: who does which action on which
// resource, in which context.
type Request struct {
	Action    string // service:Action; case-insensitive
	Resource  string // an ARN, or "*"
	Context   *Context
	Principal *RequestPrincipal
}

// StatementRef names a statement: its policy, its Sid, its index.
type StatementRef struct {
	Policy string `json:"policy"`
	Sid    string `json:"sid"`
	Index  int    `json:"index"`
	Effect Effect `json:"-"`
	Path   string `json:"-"`
}

// Result is a decision with its reasons. A Result can be reused across
// Evaluate calls; it then allocates nothing once its lists have grown.
type Result struct {
	Decision Decision
	// Matched lists the statements that decided: every Deny that applied
	// for an explicit deny, every Allow that applied when allowed, nothing
	// for an implicit deny.
	Matched []StatementRef
	// Missing lists context keys (as spelled in the policies) that
	// conditions or variables of statements matching the action and resource
	// asked for, and the request lacked.
	Missing []string

	allow, deny []StatementRef

	// keys caches the request's values for each condition key of the set
	// being evaluated, indexed by the slot NewSet gave the key; gen tells
	// which evaluation filled an entry, so nothing is cleared between calls.
	keys []keyCache
	gen  uint32
	// asked and askedVar collect, as bit sets over key slots, the keys the
	// applicable statements ask for; Missing is filled from them at the end.
	asked, askedVar keyMask
}

// keyMask is a set of key slots. Sets with more keys than it holds report
// missing keys statement by statement instead.
type keyMask [4]uint64

const maskSlots = len(keyMask{}) * 64

func (m *keyMask) set(slot int32) { m[slot>>6] |= 1 << (slot & 63) }

func (m *keyMask) or(o *keyMask) {
	for i := range m {
		m[i] |= o[i]
	}
}

func (r *Result) reset() {
	r.Decision = ImplicitDeny
	r.Matched = nil
	r.Missing = r.Missing[:0]
	r.allow = r.allow[:0]
	r.deny = r.deny[:0]
}

// begin prepares the key cache for an evaluation over n key slots.
func (r *Result) begin(n int) {
	if len(r.keys) < n {
		r.keys = make([]keyCache, n)
		r.gen = 0
	}
	r.gen++
	if r.gen == 0 { // wrapped: forget every entry
		clear(r.keys)
		r.gen = 1
	}
	r.asked, r.askedVar = keyMask{}, keyMask{}
}

// key returns the cache entry of a key slot of set s, looking the key up
// in ctx on first use in this evaluation.
func (r *Result) key(s *Set, slot int32, ctx *Context) *keyCache {
	k := &r.keys[slot]
	if k.gen != r.gen {
		k.gen = r.gen
		k.vals = ctx.lookup(s.keys[slot], s.keyHashes[slot])
	}
	return k
}

func (r *Result) addMissing(key string) {
	for _, k := range r.Missing {
		if strings.EqualFold(k, key) {
			return
		}
	}
	r.Missing = append(r.Missing, key)
}

func (r *Result) finish() {
	switch {
	case len(r.deny) > 0:
		r.Decision, r.Matched = ExplicitDeny, r.deny
	case len(r.allow) > 0:
		r.Decision, r.Matched = Allowed, r.allow
	default:
		r.Decision, r.Matched = ImplicitDeny, nil
	}
}

// Set is a compiled group of policies evaluated together — for example all
// the policies that apply to one IAM user. It is safe for concurrent use.
type Set struct {
	stmts []*setStmt
	// byAction maps a lower-case action name to the statements whose
	// Action/NotAction covers it, so evaluation skips action matching for
	// every action the index knows. byService narrows the scan for other
	// actions to the statements that can cover some action of the service.
	byAction  map[string][]*setStmt
	byService map[string][]*setStmt
	// keys are the set's condition and variable keys, lower case; a
	// statement refers to them by slot. keyNames spell them as the first
	// policy that uses them does, for Result.Missing.
	keys      []string
	keyHashes []uint64
	keyNames  []string
}

// setStmt is a statement as one Set evaluates it. The compiled statement
// may be shared by several sets; slots are this set's.
type setStmt struct {
	*cstmt
	condSlots []int32 // the slot of each condition's key
	// order is the order conditions are tried in: cheapest first, so a
	// failing string compare saves parsing an address or a date. Conditions
	// AND together, so the order changes the cost, never the answer.
	order []int
	// asks are the keys whose absence Result.Missing reports: every
	// condition key but Null's, and variables in condition values. The
	// masks hold the same slots when the set has few enough keys.
	asks             []askKey
	askMask, varMask keyMask
}

type askKey struct {
	slot  int32
	name  string // as spelled in the policy
	isVar bool   // a variable: it needs exactly one value
}

// NewSet indexes compiled policies for evaluation. The index covers every
// action kaginashi serves and every action named literally in the policies.
func NewSet(policies ...*Compiled) *Set {
	s := &Set{byAction: map[string][]*setStmt{}, byService: map[string][]*setStmt{}}
	slots := map[string]int32{}
	slot := func(key string) int32 {
		lk := strings.ToLower(key)
		n, ok := slots[lk]
		if !ok {
			n = int32(len(s.keys))
			slots[lk] = n
			s.keys = append(s.keys, lk)
			s.keyHashes = append(s.keyHashes, keyHash(lk))
			s.keyNames = append(s.keyNames, key)
		}
		return n
	}
	actions := map[string]bool{}
	// spellings: the index also answers to the catalog's spelling of each
	// action (the case callers use), which saves lower-casing the request.
	spellings := map[string]string{}
	for _, a := range catalogActions() {
		actions[strings.ToLower(a)] = true
		spellings[a] = strings.ToLower(a)
	}
	for _, p := range policies {
		for _, st := range p.stmts {
			ss := &setStmt{cstmt: st}
			for _, c := range st.conds {
				ss.condSlots = append(ss.condSlots, slot(c.rawKey))
				if c.op.base.typ != TypeNull {
					ss.asks = append(ss.asks, askKey{slot: slot(c.rawKey), name: c.rawKey})
				}
				for i := range c.strs {
					for _, t := range c.strs[i].toks {
						if t.isVar && !t.hasDef {
							ss.asks = append(ss.asks, askKey{slot: slot(t.rawKey), name: t.rawKey, isVar: true})
						}
					}
				}
			}
			ss.order = make([]int, len(st.conds))
			for i := range ss.order {
				ss.order[i] = i
			}
			sort.SliceStable(ss.order, func(i, j int) bool {
				return st.conds[ss.order[i]].cost() < st.conds[ss.order[j]].cost()
			})
			for _, a := range ss.asks {
				if a.slot < int32(maskSlots) {
					if a.isVar {
						ss.varMask.set(a.slot)
					} else {
						ss.askMask.set(a.slot)
					}
				}
			}
			s.stmts = append(s.stmts, ss)
			for i := range st.actions {
				if st.actions[i].kind == patExact {
					actions[st.actions[i].lit] = true
				}
			}
		}
	}
	services := map[string]bool{}
	for a := range actions {
		s.byAction[a] = s.filter(func(st *setStmt) bool { return st.matchAction(a) })
		svc, _, _ := strings.Cut(a, ":")
		services[svc] = true
	}
	for spelled, lower := range spellings {
		s.byAction[spelled] = s.byAction[lower]
	}
	for svc := range services {
		s.byService[svc] = s.filter(func(st *setStmt) bool { return st.mayCoverService(svc) })
	}
	return s
}

// filter returns the set's statements that keep accepts, in order.
func (s *Set) filter(keep func(*setStmt) bool) []*setStmt {
	var out []*setStmt
	for _, st := range s.stmts {
		if keep(st) {
			out = append(out, st)
		}
	}
	return out
}

// mayCoverService reports whether the statement's Action/NotAction can
// cover some action "svc:Name" (with exactly one colon) of the service.
func (st *cstmt) mayCoverService(svc string) bool {
	if st.notAction {
		return true
	}
	for i := range st.actions {
		raw := st.actions[i].raw
		prefix, _, found := strings.Cut(raw, ":")
		switch {
		case !found:
			// "*", or a malformed value whose wildcards might reach the colon.
			if strings.ContainsAny(raw, "*?") {
				return true
			}
		case strings.Count(raw, ":") == 1:
			// The pattern's one colon must meet the action's: the part
			// before it must match the service name.
			p := compilePattern(prefix, modePlain, false, true)
			if ok, _ := p.match(svc, nil); ok {
				return true
			}
		}
	}
	return false
}

// Len is the number of statements in the set.
func (s *Set) Len() int { return len(s.stmts) }

// Decide evaluates a request and returns a fresh Result.
func (s *Set) Decide(req *Request) *Result {
	var r Result
	s.Evaluate(req, &r)
	return &r
}

// Evaluate decides a request into res, reusing res's storage. It does not
// allocate once res has grown to the set's needs, and is safe to call from
// many goroutines with distinct Results.
func (s *Set) Evaluate(req *Request, res *Result) {
	res.reset()
	res.begin(len(s.keys))
	cands, indexed := s.candidates(req.Action)
	for _, st := range cands {
		if !indexed && !st.matchAction(req.Action) {
			continue
		}
		if s.applies(st, req, res) {
			if st.ref.Effect == Deny {
				res.deny = append(res.deny, st.ref)
			} else {
				res.allow = append(res.allow, st.ref)
			}
		}
	}
	s.reportMissing(req.Context, res)
	res.finish()
}

// reportMissing adds to Missing the asked-for keys the request lacks.
func (s *Set) reportMissing(ctx *Context, res *Result) {
	for w := range res.asked {
		for bits := res.asked[w] | res.askedVar[w]; bits != 0; bits &= bits - 1 {
			slot := int32(w*64 + trailingZeros(bits))
			n := len(res.key(s, slot, ctx).vals)
			isVar := res.askedVar[w]&(1<<(slot&63)) != 0 && res.asked[w]&(1<<(slot&63)) == 0
			if n == 0 || (isVar && n != 1) {
				res.addMissing(s.keyNames[slot])
			}
		}
	}
}

// applies reports whether a statement whose action matches applies to the
// request. Conditions stop at the first that fails; the keys the statement
// asks for are noted before, so Missing does not depend on that order.
func (s *Set) applies(st *setStmt, req *Request, res *Result) bool {
	if !st.matchPrincipal(req.Principal) || !st.matchResource(req.Resource, req.Context, res) {
		return false
	}
	if len(s.keys) <= 64 {
		res.asked[0] |= st.askMask[0]
		res.askedVar[0] |= st.varMask[0]
	} else if len(s.keys) <= maskSlots {
		res.asked.or(&st.askMask)
		res.askedVar.or(&st.varMask)
	} else {
		for _, a := range st.asks {
			n := len(res.key(s, a.slot, req.Context).vals)
			if n == 0 || (a.isVar && n != 1) {
				res.addMissing(a.name)
			}
		}
	}
	for _, i := range st.order {
		c := st.conds[i]
		kc := res.key(s, st.condSlots[i], req.Context)
		if !c.decide(kc.vals, kc, req.Context, nil) {
			return false
		}
	}
	return true
}

func (s *Set) candidates(action string) ([]*setStmt, bool) {
	if c, ok := s.byAction[action]; ok {
		return c, true // the catalog's own spelling
	}
	var buf [128]byte
	if len(action) > len(buf) {
		return s.stmts, false
	}
	n := copy(buf[:], action)
	for i := 0; i < n; i++ {
		buf[i] = lowerASCII(buf[i])
	}
	// The string(bytes) conversions in map indexes do not allocate.
	if c, ok := s.byAction[string(buf[:n])]; ok {
		return c, true
	}
	if i := strings.IndexByte(string(buf[:n]), ':'); i >= 0 && strings.IndexByte(string(buf[i+1:n]), ':') < 0 {
		if c, ok := s.byService[string(buf[:i])]; ok {
			return c, false
		}
	}
	return s.stmts, false
}

// Compiled is a policy ready for evaluation.
type Compiled struct {
	Name   string
	Policy *Policy
	stmts  []*cstmt
}

// cstmt is a compiled statement.
type cstmt struct {
	ref          StatementRef
	actions      []pattern
	notAction    bool
	resources    []pattern
	notResource  bool
	noResource   bool // neither Resource nor NotResource: applies to any
	principal    *Principal
	notPrincipal *Principal
	conds        []*ccond
	src          *Statement
}

// Compile prepares a parsed policy for evaluation. name identifies the
// policy in results. It fails on anything evaluation cannot honour: unknown
// operators, values of the wrong type.
func Compile(name string, p *Policy) (*Compiled, error) {
	c, errs := compile(name, p)
	if len(errs) > 0 {
		return nil, errs
	}
	return c, nil
}

// ParseAndCompile parses and compiles a document in one step.
func ParseAndCompile(name string, data []byte) (*Compiled, error) {
	p, err := Parse(data)
	if err != nil {
		return nil, err
	}
	return Compile(name, p)
}

func compile(name string, p *Policy) (*Compiled, Errors) {
	c := &Compiled{Name: name, Policy: p}
	var errs Errors
	vars := p.variables()
	for _, s := range p.Statements {
		st := &cstmt{
			ref:          StatementRef{Policy: name, Sid: s.Sid, Index: s.Index, Effect: s.Effect, Path: s.Path},
			principal:    s.Principal,
			notPrincipal: s.NotPrincipal,
			src:          s,
		}
		acts, not := s.Actions()
		st.notAction = not
		for _, a := range acts {
			// Actions take no policy variables.
			st.actions = append(st.actions, compilePattern(a, modePlain, false, true))
		}
		res, notR := s.Resources()
		st.notResource = notR
		st.noResource = res == nil
		for _, r := range res {
			st.resources = append(st.resources, compileResource(r, vars))
		}
		for i := range s.Conditions {
			cc, cerrs := compileCondition(&s.Conditions[i], vars)
			errs = append(errs, cerrs...)
			if cc != nil {
				st.conds = append(st.conds, cc)
			}
		}
		if s.Effect == 0 {
			continue // unusable statement, already reported by the parser
		}
		c.stmts = append(c.stmts, st)
	}
	return c, errs
}

func (st *cstmt) matchAction(action string) bool {
	m := false
	for i := range st.actions {
		if ok, _ := st.actions[i].match(action, nil); ok {
			m = true
			break
		}
	}
	return m != st.notAction
}

func (st *cstmt) matchResource(resource string, ctx *Context, res *Result) bool {
	if st.noResource {
		return true
	}
	m := false
	for i := range st.resources {
		ok, missing := st.resources[i].match(resource, ctx)
		if missing != "" {
			if res != nil {
				res.addMissing(missing)
			}
			// "Not one of these" cannot be claimed for a value that could
			// not be computed: a NotResource with an unresolvable variable
			// does not apply (else an Allow would grant every resource).
			if st.notResource {
				return false
			}
		}
		if ok {
			m = true
			break
		}
	}
	return m != st.notResource
}

func (st *cstmt) matchPrincipal(rp *RequestPrincipal) bool {
	switch {
	case st.principal != nil:
		return principalMatches(st.principal, rp)
	case st.notPrincipal != nil:
		return rp != nil && !principalMatches(st.notPrincipal, rp)
	}
	return true
}

func principalMatches(p *Principal, rp *RequestPrincipal) bool {
	if rp == nil {
		return false
	}
	if p.Wildcard {
		return true
	}
	for _, e := range p.Entries {
		if !strings.EqualFold(e.Type, rp.typ()) {
			continue
		}
		for _, v := range e.Values {
			switch {
			case v == "*":
				return true
			case e.Type == "AWS" && rp.Account != "" && (v == rp.Account || isRootOf(v, rp.Account)):
				return true
			case v == rp.ARN:
				return true
			}
		}
	}
	return false
}

func (rp *RequestPrincipal) typ() string {
	if rp.Type == "" {
		return "AWS"
	}
	return rp.Type
}

// isRootOf reports whether v is the account-root principal
// arn:PARTITION:iam::ACCOUNT:root, which stands for the whole account.
func isRootOf(v, account string) bool {
	rest, ok := strings.CutPrefix(v, "arn:")
	if !ok {
		return false
	}
	_, rest, ok = strings.Cut(rest, ":")
	return ok && rest == "iam::"+account+":root"
}
