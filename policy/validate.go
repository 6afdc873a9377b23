package policy

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"unicode/utf8"
)

// FindingType ranks a validation finding, as IAM Access Analyzer does.
type FindingType string

// Finding types, most severe first.
const (
	FindingError           FindingType = "ERROR"
	FindingSecurityWarning FindingType = "SECURITY_WARNING"
	FindingWarning         FindingType = "WARNING"
	FindingSuggestion      FindingType = "SUGGESTION"
)

func (t FindingType) rank() int {
	switch t {
	case FindingError:
		return 0
	case FindingSecurityWarning:
		return 1
	case FindingWarning:
		return 2
	}
	return 3
}

// Finding is one result of Validate. Code is stable; Message says how to
// fix it; Path is the JSON path of the element concerned. Line and Column
// (1-based) locate it in the document.
type Finding struct {
	Type    FindingType `json:"type"`
	Code    string      `json:"code"`
	Message string      `json:"message"`
	Path    string      `json:"path"`
	Line    int         `json:"line,omitempty"`
	Column  int         `json:"column,omitempty"`

	off int
}

// Codes of the validator's own findings (grammar codes are in parse.go).
const (
	CodeMissingVersion          = "MISSING_VERSION"
	CodeVariablesNeed2012       = "POLICY_VARIABLES_NEED_2012_10_17"
	CodePolicyTooLarge          = "POLICY_SIZE_EXCEEDS_IAM_QUOTA"
	CodeInvalidSid              = "INVALID_SID"
	CodePrincipalInIdentity     = "PRINCIPAL_IN_IDENTITY_POLICY"
	CodeMissingPrincipal        = "MISSING_PRINCIPAL"
	CodeMissingResource         = "MISSING_RESOURCE"
	CodeInvalidARN              = "INVALID_ARN"
	CodeARNPlaceholder          = "ARN_PLACEHOLDER"
	CodeInvalidARNPartition     = "INVALID_ARN_PARTITION"
	CodeInvalidARNRegion        = "INVALID_ARN_REGION"
	CodeInvalidARNAccount       = "INVALID_ARN_ACCOUNT"
	CodeServiceWildcard         = "WILDCARD_IN_ARN_SERVICE"
	CodeOtherAccount            = "ARN_OTHER_ACCOUNT_OR_REGION"
	CodeUnsupportedService      = "UNSUPPORTED_SERVICE"
	CodeUnknownAction           = "UNKNOWN_ACTION"
	CodeUnknownConditionKey     = "UNKNOWN_CONDITION_KEY"
	CodeKeyNotApplicable        = "CONDITION_KEY_NOT_APPLICABLE"
	CodeKeyPartlyApplicable     = "CONDITION_KEY_NOT_SUPPLIED_BY_EVERY_ACTION"
	CodeOperatorTypeMismatch    = "OPERATOR_TYPE_MISMATCH"
	CodeSetOperatorSingleValued = "SET_OPERATOR_ON_SINGLE_VALUED_KEY"
	CodeMissingSetOperator      = "MULTIVALUED_KEY_WITHOUT_SET_OPERATOR"
	CodeOperatorSpelling        = "OPERATOR_SPELLING"
	CodeARNValueShape           = "ARN_CONDITION_VALUE_NOT_AN_ARN"
	CodeVariableNotSingle       = "VARIABLE_FOR_MULTIVALUED_KEY"
	CodeUnknownVariable         = "UNKNOWN_POLICY_VARIABLE"
	CodeEICAllInstances         = "EIC_ALL_INSTANCES_UNCONDITIONED"
	CodeEICRootLogin            = "EIC_ROOT_LOGIN"
	CodeAllowNotAction          = "ALLOW_WITH_NOT_ACTION"
	CodeAllowNotResource        = "ALLOW_WITH_NOT_RESOURCE"
	CodeAllowAll                = "ALLOW_ALL_ACTIONS_ALL_RESOURCES"
	CodePrivilegeEscalation     = "IAM_PRIVILEGE_ESCALATION"
	CodePublicPrincipal         = "ALLOW_ANY_PRINCIPAL"
	CodeResourceTypeMismatch    = "ACTION_RESOURCE_TYPE_MISMATCH"
	CodeNoResourceLevel         = "ACTION_NEEDS_RESOURCE_STAR"
	CodeOpenTunnelAnyPort       = "OPEN_TUNNEL_ANY_PORT"
	CodeRedundantAction         = "REDUNDANT_ACTION"
	CodeRedundantResource       = "REDUNDANT_RESOURCE"
	CodeRedundantStatement      = "REDUNDANT_STATEMENT"
	CodeShadowedByDeny          = "STATEMENT_SHADOWED_BY_DENY"
)

// PolicyType says where a policy is attached, which changes the rules:
// identity policies have no Principal, resource policies need one.
type PolicyType uint8

// Policy types.
const (
	IdentityPolicy PolicyType = iota
	ResourcePolicy
)

// ValidateOptions tune Validate. The zero value validates an identity
// policy with no knowledge of the deployment.
type ValidateOptions struct {
	Type PolicyType
	// Region and AccountID, when set, are the deployment's: ARNs naming
	// another account or region get a warning, and fixes name these values.
	Region    string
	AccountID string
}

// Validate checks a policy document and returns every finding, most severe
// first, then in document order. It never fails: a document that is not
// even JSON yields an ERROR finding.
func Validate(data []byte, opts ValidateOptions) []Finding {
	v := &validator{data: data, opts: opts}
	p, perrs := parse(data)
	for _, e := range perrs {
		v.add(FindingError, e.Code, e.Path, e.off, "%s", e.Message)
	}
	if p != nil {
		v.policy(p)
	}
	return v.finish()
}

// HasErrors reports whether findings include an ERROR.
func HasErrors(fs []Finding) bool {
	for _, f := range fs {
		if f.Type == FindingError {
			return true
		}
	}
	return false
}

type validator struct {
	data     []byte
	opts     ValidateOptions
	findings []Finding
}

func (v *validator) add(t FindingType, code, path string, off int, format string, args ...any) {
	v.findings = append(v.findings, Finding{Type: t, Code: code, Path: path, Message: fmt.Sprintf(format, args...), off: off})
}

func (v *validator) finish() []Finding {
	seen := map[string]bool{}
	out := v.findings[:0]
	for _, f := range v.findings {
		k := f.Code + "\x00" + f.Path + "\x00" + f.Message
		if seen[k] {
			continue
		}
		seen[k] = true
		f.Line, f.Column = lineCol(v.data, f.off)
		out = append(out, f)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if ri, rj := out[i].Type.rank(), out[j].Type.rank(); ri != rj {
			return ri < rj
		}
		return out[i].off < out[j].off
	})
	if out == nil {
		out = []Finding{}
	}
	return out
}

func (v *validator) policy(p *Policy) {
	if !p.hasVersion {
		v.add(FindingWarning, CodeMissingVersion, "Version", 0,
			`the policy has no Version, so IAM reads it with the 2008-10-17 rules, in which policy variables such as ${aws:username} are plain text. Add "Version": "2012-10-17".`)
	}
	if p.chars > 6144 {
		v.add(FindingWarning, CodePolicyTooLarge, "", 0,
			"the policy has %d characters without white space; IAM accepts at most 6,144 in a managed policy (2,048 inline for a user), so AWS would refuse it. Split it into several policies.", p.chars)
	}
	c, cerrs := compile("", p)
	for _, e := range cerrs {
		v.add(FindingError, e.Code, e.Path, e.off, "%s", e.Message)
	}
	for _, st := range c.stmts {
		v.statement(p, st)
	}
	v.selfTagging(c)
	v.redundancy(c)
}

// selfTagging warns when a policy decides on the caller's own tags
// (aws:PrincipalTag/K, as a condition key or a ${...} variable) and also
// lets the caller change user tags (iam:TagUser, iam:UntagUser) with no
// limit on the tag keys: the holder then retags itself into what the
// conditions allow — another team's hosts, say. IAM tag keys ignore case,
// so a Team condition follows a "team" tag too.
func (v *validator) selfTagging(c *Compiled) {
	uses := ""
	for _, st := range c.stmts {
		for _, cd := range st.src.Conditions {
			if k := strings.ToLower(cd.Key); strings.HasPrefix(k, "aws:principaltag/") {
				uses = cd.Key
			}
			for _, val := range cd.Values {
				if i := strings.Index(strings.ToLower(val), "${aws:principaltag/"); i >= 0 {
					uses = strings.TrimSuffix(strings.SplitN(val[i+2:], "}", 2)[0], "}")
				}
			}
		}
	}
	if uses == "" {
		return
	}
	limitsKeys := func(st *cstmt) bool {
		for _, cd := range st.src.Conditions {
			if k := strings.ToLower(cd.Key); k == "aws:tagkeys" || strings.HasPrefix(k, "aws:requesttag/") {
				return true
			}
		}
		return false
	}
	for _, st := range c.stmts {
		if st.src.Effect == Deny && (st.matchAction("iam:TagUser") || st.matchAction("iam:UntagUser")) && (limitsKeys(st) || len(st.src.Conditions) == 0) {
			return // the policy limits which tags may be changed (or forbids tagging); trust it
		}
	}
	for _, st := range c.stmts {
		s := st.src
		if s.Effect != Allow || limitsKeys(st) {
			continue
		}
		for _, name := range []string{"iam:TagUser", "iam:UntagUser"} {
			if !st.matchAction(name) {
				continue
			}
			at := pos{join(s.Path, "Action"), s.off}
			if len(s.actionPos) > 0 {
				at = pos{strings.TrimSuffix(s.actionPos[0].path, "[0]"), s.actionPos[0].off}
			}
			v.add(FindingSecurityWarning, CodePrivilegeEscalation, at.path, at.off,
				"Allow %s with no limit on the tag keys, in a policy that decides on %s: the holder can retag itself (IAM tag keys ignore case, so a \"team\" tag counts as Team) and get what the condition grants to others. Add a condition on aws:TagKeys (ForAllValues:StringNotEqualsIgnoreCase with the keys the policy decides on), or Deny %s for those keys.", name, uses, name)
			return
		}
	}
}

var sidRE = regexp.MustCompile(`^[A-Za-z0-9]*$`)

func (v *validator) statement(p *Policy, st *cstmt) {
	s := st.src
	if v.opts.Type == IdentityPolicy && s.hasSid && !sidRE.MatchString(s.Sid) {
		v.add(FindingError, CodeInvalidSid, s.sidPos.path, s.sidPos.off,
			"Sid %q has characters IAM does not allow in identity policies; use only letters and digits (A-Z, a-z, 0-9).", s.Sid)
	}
	switch v.opts.Type {
	case IdentityPolicy:
		if s.Principal != nil || s.NotPrincipal != nil {
			el := "Principal"
			if s.Principal == nil {
				el = "NotPrincipal"
			}
			v.add(FindingError, CodePrincipalInIdentity, join(s.Path, el), s.off,
				"an identity policy (attached to a user or group) must not have %s: it applies to whoever it is attached to. Remove the element.", el)
		}
		if s.Resource == nil && s.NotResource == nil {
			v.add(FindingError, CodeMissingResource, join(s.Path, "Resource"), s.off,
				`the statement has no Resource; add the resources it covers, e.g. "Resource": "arn:aws:ec2:us-east-1:123456789012:instance/i-0123456789abcdef0", or "*".`)
		}
	case ResourcePolicy:
		if s.Principal == nil && s.NotPrincipal == nil {
			v.add(FindingError, CodeMissingPrincipal, join(s.Path, "Principal"), s.off,
				`a resource policy statement needs a Principal, e.g. "Principal": {"AWS": "arn:aws:iam::123456789012:user/alice"}.`)
		}
	}
	vars := p.variables()
	v.variables(p, s)
	acts, _ := s.Actions()
	for i, a := range acts {
		if i < len(s.actionPos) {
			v.action(a, s.actionPos[i])
		}
	}
	res, _ := s.Resources()
	for i, r := range res {
		if i < len(s.resPos) {
			v.resource(r, s.resPos[i], vars)
		}
	}
	covered, foreign := coveredActions(st)
	v.conditions(st, covered, foreign)
	if s.Effect == Allow {
		v.security(st, covered)
	}
	v.resourceTypes(st, vars)
}

// coveredActions lists the served actions a statement's Action/NotAction
// covers, and whether it also covers actions of services kaginashi does not
// serve (whose condition keys it cannot know).
func coveredActions(st *cstmt) (covered []*ActionInfo, foreign bool) {
	for i := range actionTable {
		if st.matchAction(actionTable[i].FullName()) {
			covered = append(covered, &actionTable[i])
		}
	}
	if st.notAction {
		return covered, true
	}
	for _, a := range st.actions {
		svc, _, _ := strings.Cut(a.raw, ":")
		if a.raw == "*" || strings.ContainsAny(svc, "*?") || !isServedService(svc) {
			foreign = true
		}
	}
	return covered, foreign
}

func (v *validator) variables(p *Policy, s *Statement) {
	check := func(text string, at pos) {
		if !strings.Contains(text, "${") {
			return
		}
		if !p.variables() {
			if hasVariable(text) {
				v.add(FindingWarning, CodeVariablesNeed2012, at.path, at.off,
					`%q uses a policy variable, but variables are only substituted under "Version": "2012-10-17"; here the text is matched literally. Set the policy's Version to 2012-10-17.`, text)
			}
			return
		}
		for _, t := range parseVars(text) {
			if !t.isVar {
				continue
			}
			info, _, ok := LookupKey(t.rawKey)
			switch {
			case !ok && isServedKeyPrefix(t.rawKey):
				v.add(FindingWarning, CodeUnknownVariable, at.path, at.off,
					"policy variable ${%s} names no known condition key, so it never resolves and the value never matches. Check the spelling (for example ${aws:username} or ${aws:PrincipalTag/team}).", t.rawKey)
			case ok && info.Multi:
				v.add(FindingWarning, CodeVariableNotSingle, at.path, at.off,
					"${%s} is a multivalued key; IAM cannot substitute it, so the value never matches. Use a single-valued key.", t.rawKey)
			}
		}
	}
	res, _ := s.Resources()
	for i, r := range res {
		if i < len(s.resPos) {
			check(r, s.resPos[i])
		}
	}
	for _, c := range s.Conditions {
		for j, val := range c.Values {
			at := pos{c.Path, c.off}
			if j < len(c.valuePos) {
				at = c.valuePos[j]
			}
			check(val, at)
		}
	}
}

// isServedKeyPrefix reports whether a key belongs to aws: or a served
// service, so that an unknown one is a mistake rather than someone else's.
func isServedKeyPrefix(key string) bool {
	svc, _, ok := strings.Cut(key, ":")
	return ok && (strings.EqualFold(svc, "aws") || isServedService(svc))
}

func (v *validator) action(a string, at pos) {
	if a == "*" {
		return
	}
	svc, name, ok := strings.Cut(a, ":")
	if !ok || svc == "" || name == "" {
		return // reported by the parser
	}
	p := compilePattern(a, modePlain, false, true)
	for i := range actionTable {
		if ok, _ := p.match(actionTable[i].FullName(), nil); ok {
			return
		}
	}
	if strings.ContainsAny(svc, "*?") {
		return // a service wildcard that matches no served service: someone else's
	}
	if !isServedService(svc) {
		v.add(FindingWarning, CodeUnsupportedService, at.path, at.off,
			"%q: kaginashi does not serve %q, so this action never applies here (it may on AWS). kaginashi serves %s.", a, svc, strings.Join(servedServices, ", "))
		return
	}
	msg := fmt.Sprintf("%q is not an action kaginashi's %s serves, so it never applies here.", a, svc)
	if best := closestAction(a); best != "" {
		msg += fmt.Sprintf(" Did you mean %q?", best)
	}
	v.add(FindingWarning, CodeUnknownAction, at.path, at.off, "%s", msg)
}

// closestAction suggests a served action for a misspelt one.
func closestAction(a string) string {
	best, bestD := "", 1<<30
	la := strings.ToLower(a)
	for i := range actionTable {
		n := actionTable[i].FullName()
		if d := editDistance(la, strings.ToLower(n)); d < bestD {
			best, bestD = n, d
		}
	}
	if bestD > len(a)/3 {
		return ""
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

var (
	partitions     = []string{"aws", "aws-cn", "aws-us-gov", "aws-iso", "aws-iso-b", "aws-iso-e", "aws-iso-f", "aws-eusc"}
	regionRE       = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-\d{1,2}$`)
	accountRE      = regexp.MustCompile(`^\d{12}$`)
	globalServices = map[string]bool{"iam": true, "sts": false, "s3": true, "cloudfront": true, "route53": true}
)

func hasWild(s string) bool { return strings.ContainsAny(s, "*?") || strings.Contains(s, "${") }

// looksLikePlaceholder: text someone was meant to replace — not ASCII (the
// seed article's リージョン), capitals, brackets, or the words themselves.
func looksLikePlaceholder(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r >= utf8.RuneSelf || r == '<' || r == '>' || r == '{' || r == '}' || r == '[' || r == ']' || (r >= 'A' && r <= 'Z') {
			return true
		}
	}
	l := strings.ToLower(s)
	for _, w := range []string{"region", "account", "your", "example", "xxx"} {
		if strings.Contains(l, w) {
			return true
		}
	}
	return false
}

func (v *validator) resource(r string, at pos, vars bool) {
	if r == "*" {
		return
	}
	if !strings.HasPrefix(r, "arn:") {
		if strings.Contains(r, ":") || !hasWild(r) {
			v.add(FindingError, CodeInvalidARN, at.path, at.off,
				`%q is not an ARN; a resource is "*" or an ARN such as arn:aws:ec2:us-east-1:123456789012:instance/i-0123456789abcdef0.`, r)
		}
		return
	}
	parts := strings.SplitN(r, ":", 6)
	if len(parts) < 6 {
		if !strings.HasSuffix(r, "*") {
			v.add(FindingError, CodeInvalidARN, at.path, at.off,
				"%q has %d of an ARN's six parts; write arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE (parts may be empty, as in arn:aws:iam::123456789012:user/alice).", r, len(parts))
		}
		return
	}
	partition, svc, region, account, rest := parts[1], parts[2], parts[3], parts[4], parts[5]
	if !hasWild(partition) && !contains(partitions, partition) {
		if looksLikePlaceholder(partition) {
			v.add(FindingError, CodeARNPlaceholder, at.path, at.off, "%q: replace the placeholder %q with the partition, aws.", r, partition)
		} else {
			v.add(FindingError, CodeInvalidARNPartition, at.path, at.off, "%q: %q is not an AWS partition; kaginashi uses aws (others: %s).", r, partition, strings.Join(partitions[1:], ", "))
		}
	}
	if strings.ContainsAny(svc, "*?") {
		v.add(FindingError, CodeServiceWildcard, at.path, at.off,
			"%q: IAM does not allow wildcards in an ARN's service part (%q); name the service, e.g. ec2 or iam.", r, svc)
	}
	exRegion, exAccount := v.opts.Region, v.opts.AccountID
	if exRegion == "" {
		exRegion = "us-east-1"
	}
	if exAccount == "" {
		exAccount = "123456789012"
	}
	switch {
	case region == "" || hasWild(region):
	case looksLikePlaceholder(region):
		v.add(FindingError, CodeARNPlaceholder, at.path, at.off,
			"%q still holds the placeholder %q where the region goes; replace it with your region, e.g. %s.", r, region, exRegion)
	case !regionRE.MatchString(region):
		v.add(FindingError, CodeInvalidARNRegion, at.path, at.off,
			"%q: %q is not a region name; write one such as %s.", r, region, exRegion)
	case globalServices[svc]:
		v.add(FindingWarning, CodeInvalidARNRegion, at.path, at.off,
			"%q: %s ARNs have an empty region part (arn:aws:%s::ACCOUNT:...), so this never matches.", r, svc, svc)
	}
	switch {
	case account == "" || hasWild(account):
	case looksLikePlaceholder(account):
		v.add(FindingError, CodeARNPlaceholder, at.path, at.off,
			"%q still holds the placeholder %q where the account ID goes; replace it with your 12-digit account ID, e.g. %s (kaginashi's account ID is printed at server start).", r, account, exAccount)
	case !accountRE.MatchString(account):
		v.add(FindingError, CodeInvalidARNAccount, at.path, at.off,
			"%q: %q is not an account ID; an account ID has 12 digits, e.g. %s.", r, account, exAccount)
	}
	if isServedService(svc) {
		for _, ch := range rest {
			if ch >= utf8.RuneSelf {
				v.add(FindingError, CodeARNPlaceholder, at.path, at.off,
					"%q: the resource part %q holds text to replace (such as インスタンスID); write the resource's ID, e.g. instance/i-0123456789abcdef0, or instance/* for all.", r, rest)
				break
			}
		}
	}
	other := func(what, got, want string) {
		v.add(FindingWarning, CodeOtherAccount, at.path, at.off,
			"%q names %s %s, but this deployment's is %s, so the statement never matches its resources.", r, what, got, want)
	}
	if v.opts.AccountID != "" && account != "" && !hasWild(account) && accountRE.MatchString(account) && account != v.opts.AccountID {
		other("account", account, v.opts.AccountID)
	}
	if v.opts.Region != "" && region != "" && !hasWild(region) && regionRE.MatchString(region) && region != v.opts.Region && isServedService(svc) {
		other("region", region, v.opts.Region)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (v *validator) conditions(st *cstmt, covered []*ActionInfo, foreign bool) {
	s := st.src
	for _, c := range s.Conditions {
		op, err := parseOperator(c.Operator)
		if err != nil {
			continue // reported by compile
		}
		if op.canonical != c.Operator {
			v.add(FindingSuggestion, CodeOperatorSpelling, c.opPath, c.off,
				"write the operator as IAM documents it: %q.", op.canonical)
		}
		if op.base.typ == TypeARN {
			for j, val := range c.Values {
				if val == "*" || hasVariable(val) || (strings.HasPrefix(val, "arn:") && strings.Count(val, ":") >= 5) {
					continue
				}
				at := pos{c.Path, c.off}
				if j < len(c.valuePos) {
					at = c.valuePos[j]
				}
				v.add(FindingWarning, CodeARNValueShape, at.path, at.off,
					"%s compares ARNs part by part, and %q does not have an ARN's six parts (arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE); write all six, with * for any part.", op.base.name, val)
			}
		}
		info, global, known := LookupKey(c.Key)
		if !known {
			if isServedKeyPrefix(c.Key) {
				v.add(FindingWarning, CodeUnknownConditionKey, c.Path, c.off,
					"%q is not a condition key of %s, so the request never has it. Check the spelling; keys kaginashi supplies are listed in docs/POLICY.md.", c.Key, strings.SplitN(c.Key, ":", 2)[0])
			}
			continue
		}
		v.operatorType(c, op, info)
		if op.base.typ != TypeNull {
			switch {
			case op.set != setNone && !info.Multi:
				t := FindingWarning
				qual, _, _ := strings.Cut(op.canonical, ":")
				msg := fmt.Sprintf("%s is single-valued; %s: is meant for multivalued keys such as aws:TagKeys. Use %s without the qualifier.", c.Key, qual, op.base.name)
				if op.set == setForAll && s.Effect == Allow {
					t = FindingSecurityWarning
					msg += " With Allow it is also too permissive: ForAllValues holds when the key is absent."
				}
				v.add(t, CodeSetOperatorSingleValued, c.Path, c.off, "%s", msg)
			case op.set == setNone && info.Multi:
				v.add(FindingWarning, CodeMissingSetOperator, c.Path, c.off,
					"%s is multivalued; say how to compare the sets with ForAllValues:%s or ForAnyValue:%s.", c.Key, op.base.name, op.base.name)
			}
		}
		if global || len(covered) == 0 {
			continue
		}
		var supplying, lacking []string
		for _, a := range covered {
			if actionSupportsKey(a, c.Key) {
				supplying = append(supplying, a.FullName())
			} else {
				lacking = append(lacking, a.FullName())
			}
		}
		switch {
		case len(supplying) == 0 && !foreign:
			effect := "the condition never holds, so the statement never applies"
			if op.ifExists || op.base.negated || op.set == setForAll || op.base.typ == TypeNull {
				effect = "the condition is decided as if the key were absent"
			}
			v.add(FindingWarning, CodeKeyNotApplicable, c.Path, c.off,
				"%s is not supplied by any action of this statement (%s); %s. Use a key these actions supply, or move the condition to a statement for the actions that supply it.", c.Key, names(covered), effect)
		case len(supplying) > 0 && len(lacking) > 0 && !op.ifExists && !op.base.negated && op.set != setForAll && op.base.typ != TypeNull:
			v.add(FindingSuggestion, CodeKeyPartlyApplicable, c.Path, c.off,
				"%s is supplied by %s but not by %s, so for those actions the condition never holds. Move them to a statement of their own.", c.Key, strings.Join(supplying, ", "), strings.Join(lacking, ", "))
		}
	}
}

func names(as []*ActionInfo) string {
	n := make([]string, len(as))
	for i, a := range as {
		n[i] = a.FullName()
	}
	if len(n) > 4 {
		return strings.Join(n[:4], ", ") + fmt.Sprintf(" and %d more", len(n)-4)
	}
	return strings.Join(n, ", ")
}

// operatorType checks that the operator reads the key's values as the
// key's type. Strings may be compared as strings or ARNs with String*
// operators; aws:EpochTime takes Date or Numeric operators.
func (v *validator) operatorType(c Condition, op operator, key KeyInfo) {
	ot := op.base.typ
	ok := ot == TypeNull || ot == key.Type ||
		(key.Type == TypeARN && ot == TypeString) ||
		(strings.EqualFold(c.Key, "aws:EpochTime") && ot == TypeNumeric)
	if ok {
		return
	}
	want := map[ValueType]string{
		TypeString: "String operators (StringEquals, StringLike, ...)", TypeNumeric: "Numeric operators (NumericEquals, NumericLessThanEquals, ...)",
		TypeDate: "Date operators (DateLessThan, DateGreaterThan, ...)", TypeBool: "Bool", TypeBinary: "BinaryEquals",
		TypeIP: "IpAddress or NotIpAddress", TypeARN: "Arn operators (ArnLike, ArnEquals, ...) or String operators",
	}[key.Type]
	v.add(FindingError, CodeOperatorTypeMismatch, c.opPath, c.off,
		"%s compares %s values, but %s is a %s key; use %s.", op.base.name, ot, c.Key, key.Type, want)
}

// narrowing reports whether a condition restricts anything. A StringLike
// "*" or an IpAddress 0.0.0.0/0 does not.
func narrowing(c *ccond) bool {
	switch c.op.base.typ {
	case TypeString, TypeARN:
		if c.op.base.cmp == cmpLike && !c.op.base.negated {
			for i := range c.strs {
				if c.strs[i].kind != patAny {
					return true
				}
			}
			return false
		}
	case TypeIP:
		if !c.op.base.negated {
			for _, p := range c.prefixes {
				if p.Bits() != 0 {
					return true
				}
			}
			return false
		}
	}
	return true
}

var (
	sampleInstances = []string{"instance/i-0123456789abcdef0", "instance/i-0fedcba9876543210"}
	eicKeyActions   = []string{"ec2-instance-connect:SendSSHPublicKey", "ec2-instance-connect:SendSerialConsoleSSHPublicKey"}
	// policyGranting actions let their holder raise its own permissions.
	policyGranting = []string{"iam:AttachUserPolicy", "iam:PutUserPolicy", "iam:CreatePolicyVersion", "iam:SetDefaultPolicyVersion",
		"iam:AttachGroupPolicy", "iam:AddUserToGroup"}
	// credentialTakeover actions, on other users, hand over their accounts.
	credentialTakeover = []string{"iam:CreateAccessKey", "iam:CreateLoginProfile", "iam:UpdateLoginProfile"}
)

// coversEveryInstance reports whether a resource pattern matches every
// instance of its region and account — the seed article's instance/*.
func coversEveryInstance(p *pattern) bool {
	if p.kind == patAny {
		return true
	}
	parts := strings.SplitN(p.raw, ":", 6)
	if len(parts) < 6 {
		return strings.HasSuffix(p.raw, "*") && globsIntersect(analysisElems(p.raw, true, false), appendElems(nil, "arn:aws:ec2:us-east-1:123456789012:instance/x", false, false))
	}
	if parts[2] != "ec2" && !strings.ContainsAny(parts[2], "*?") {
		return false
	}
	rest := compilePattern(parts[5], modeResource, false, false)
	for _, id := range sampleInstances {
		if ok, _ := rest.match(id, nil); !ok {
			return false
		}
	}
	return true
}

func (v *validator) security(st *cstmt, covered []*ActionInfo) {
	s := st.src
	narrowed := false
	for _, c := range st.conds {
		if narrowing(c) {
			narrowed = true
		}
	}
	actionAt := pos{join(s.Path, "Action"), s.off}
	if len(s.actionPos) > 0 {
		actionAt = pos{strings.TrimSuffix(s.actionPos[0].path, "[0]"), s.actionPos[0].off}
	}
	resAt := pos{join(s.Path, "Resource"), s.off}
	if len(s.resPos) > 0 {
		resAt = pos{strings.TrimSuffix(s.resPos[0].path, "[0]"), s.resPos[0].off}
	}
	if st.notAction {
		v.add(FindingSecurityWarning, CodeAllowNotAction, actionAt.path, actionAt.off,
			"Allow with NotAction grants every action not listed — including actions added later and ones of other services. List the actions to allow with Action instead.")
	}
	if st.notResource {
		v.add(FindingSecurityWarning, CodeAllowNotResource, resAt.path, resAt.off,
			"Allow with NotResource grants the actions on every resource not listed — including resources created later. List the resources to allow with Resource instead.")
	}
	allActions := st.notAction
	for _, a := range st.actions {
		if a.kind == patAny {
			allActions = true
		}
	}
	allResources := st.noResource || st.notResource
	for i := range st.resources {
		if st.resources[i].kind == patAny {
			allResources = true
		}
	}
	if allActions && allResources && !narrowed && !st.notAction {
		v.add(FindingSecurityWarning, CodeAllowAll, s.Path, s.off,
			`the statement allows every action on every resource ("Action": "*", "Resource": "*"): full administrator access. Grant only the actions needed.`)
		return
	}

	var everyInstance []string
	for i := range st.resources {
		if !st.notResource && coversEveryInstance(&st.resources[i]) {
			everyInstance = append(everyInstance, st.resources[i].raw)
		}
	}
	for _, name := range eicKeyActions {
		if !st.matchAction(name) || !(len(everyInstance) > 0 || st.notResource) || narrowed {
			continue
		}
		where := "every instance"
		if len(everyInstance) > 0 {
			where = fmt.Sprintf("every instance (%s)", everyInstance[0])
		}
		v.add(FindingSecurityWarning, CodeEICAllInstances, resAt.path, resAt.off,
			"Allow %s on %s with no condition: whoever holds this policy can push a key to and log in to every host, as any OS user, including hosts added later (the seed article's caution about instance/*). Name the instances (instance/i-0123456789abcdef0), or add conditions such as StringEquals ec2:osuser and aws:ResourceTag/<key>, or use `kaginashi policy template eic`.", name, where)
		break
	}
	if st.matchAction("ec2-instance-connect:SendSSHPublicKey") {
		v.rootLogin(st)
	}
	if allActions {
		return
	}
	for _, name := range policyGranting {
		if st.matchAction(name) && !narrowed {
			v.add(FindingSecurityWarning, CodePrivilegeEscalation, actionAt.path, actionAt.off,
				"Allow %s with no condition lets the holder grant itself (or others) any permission, up to administrator. Keep it for administrators, or add a condition such as ArnEquals iam:PolicyARN naming the policies that may be attached.", name)
			break
		}
	}
	victim := "arn:aws:iam::123456789012:user/victim"
	if a := v.opts.AccountID; a != "" {
		victim = "arn:aws:iam::" + a + ":user/victim"
	}
	for _, name := range credentialTakeover {
		if st.matchAction(name) && !narrowed && st.matchResource(victim, nil, nil) {
			v.add(FindingSecurityWarning, CodePrivilegeEscalation, actionAt.path, actionAt.off,
				"Allow %s on every user lets the holder take over other users' accounts. Limit Resource to the caller, e.g. arn:aws:iam::ACCOUNT:user/${aws:username}.", name)
			break
		}
	}
	if v.opts.Type == ResourcePolicy && s.Principal != nil && !narrowed {
		public := s.Principal.Wildcard
		for _, e := range s.Principal.Entries {
			if e.Type == "AWS" && contains(e.Values, "*") {
				public = true
			}
		}
		if public {
			v.add(FindingSecurityWarning, CodePublicPrincipal, join(s.Path, "Principal"), s.off,
				"Principal \"*\" with no condition allows anyone at all. Name the principals or add a condition such as aws:PrincipalAccount.")
		}
	}
	for _, a := range covered {
		if a.FullName() != "ec2-instance-connect:OpenTunnel" || !st.mayMatchType("instance-connect-endpoint") {
			continue
		}
		hasPort := false
		for _, c := range st.conds {
			if strings.EqualFold(c.rawKey, "ec2-instance-connect:remotePort") {
				hasPort = true
			}
		}
		if !hasPort {
			v.add(FindingSuggestion, CodeOpenTunnelAnyPort, actionAt.path, actionAt.off,
				"OpenTunnel without an ec2-instance-connect:remotePort condition allows tunnels to every port the agents allow. Add \"NumericEquals\": {\"ec2-instance-connect:remotePort\": \"22\"} if SSH is all that is needed.")
		}
	}
}

// mayMatchType reports whether the statement's resources can match some
// resource of the named type.
func (st *cstmt) mayMatchType(typeName string) bool {
	if st.noResource || st.notResource {
		return true
	}
	t := lookupResourceType(typeName)
	if t == nil {
		return false
	}
	te := templateElems(t.ARN)
	for i := range st.resources {
		if globsIntersect(analysisElems(st.resources[i].raw, true, false), te) {
			return true
		}
	}
	return false
}

// rootLogin warns when a statement lets someone log in as root.
func (v *validator) rootLogin(st *cstmt) {
	ctx := NewContext()
	ctx.Set("ec2:osuser", "root")
	for i, c := range st.conds {
		if !strings.EqualFold(c.rawKey, "ec2:osuser") || c.op.base.typ != TypeString || c.op.base.negated {
			continue
		}
		if c.eval(ctx, nil) {
			src := st.src.Conditions[i]
			v.add(FindingSecurityWarning, CodeEICRootLogin, src.Path, src.off,
				"this condition lets the holder log in as root. Allow named users only, and use sudo for root's work.")
		}
	}
}

// resourceTypes checks that each action named literally is granted on a
// resource it can ever be authorized on — the seed's OpenTunnel grant on
// instance/*, which never matches because AWS authorizes OpenTunnel on
// instance-connect-endpoint ARNs.
func (v *validator) resourceTypes(st *cstmt, vars bool) {
	s := st.src
	if st.notAction || st.notResource || st.noResource {
		return
	}
	var resElems [][]elem
	hasStar := false
	for _, r := range s.Resource {
		if r == "*" {
			hasStar = true
		}
		resElems = append(resElems, analysisElems(r, vars, false))
	}
	if hasStar {
		return
	}
	for i, a := range s.Action {
		if strings.ContainsAny(a, "*?") {
			continue
		}
		info, ok := LookupAction(a)
		if !ok {
			continue
		}
		at := pos{join(s.Path, "Action"), s.off}
		if i < len(s.actionPos) {
			at = s.actionPos[i]
		}
		if len(info.ResourceTypes) == 0 {
			v.add(FindingWarning, CodeNoResourceLevel, at.path, at.off,
				`%s does not support resource-level permissions, so it is only ever authorized on "*"; this statement's Resource never matches it. Grant it in a statement with "Resource": "*".`, info.FullName())
			continue
		}
		matches := false
		var templates []string
		for _, rt := range info.ResourceTypes {
			t := lookupResourceType(rt)
			if t == nil {
				continue
			}
			templates = append(templates, friendlyTemplate(t.ARN))
			te := templateElems(t.ARN)
			for _, re := range resElems {
				if globsIntersect(re, te) {
					matches = true
				}
			}
		}
		if matches {
			continue
		}
		v.add(FindingWarning, CodeResourceTypeMismatch, at.path, at.off,
			"%s is authorized on %s, which this statement's Resource never matches, so the statement grants no %s. Grant it in its own statement on %s.",
			info.FullName(), strings.Join(templates, " or "), info.Name, v.suggestARN(info, s.Resource))
	}
}

// suggestARN fills an action's first resource template with the partition,
// region and account the statement already uses.
func (v *validator) suggestARN(info *ActionInfo, resources []string) string {
	t := lookupResourceType(info.ResourceTypes[0])
	partition, region, account := "aws", v.opts.Region, v.opts.AccountID
	for _, r := range resources {
		if p := strings.SplitN(r, ":", 6); len(p) == 6 {
			if !hasWild(p[1]) && p[1] != "" {
				partition = p[1]
			}
			if region == "" && regionRE.MatchString(p[3]) {
				region = p[3]
			}
			if account == "" && accountRE.MatchString(p[4]) {
				account = p[4]
			}
		}
	}
	if region == "" {
		region = "REGION"
	}
	if account == "" {
		account = "ACCOUNT"
	}
	out := strings.NewReplacer("${Partition}", partition, "${Region}", region, "${Account}", account).Replace(t.ARN)
	// The last variable is the resource's ID: offer the wildcard form.
	if i := strings.LastIndex(out, "${"); i >= 0 {
		out = out[:i] + "*"
	}
	return out
}

// friendlyTemplate writes an ARN template the way people read it:
// arn:aws:ec2:REGION:ACCOUNT:instance-connect-endpoint/ID.
func friendlyTemplate(t string) string {
	t = strings.NewReplacer("${Partition}", "aws", "${Region}", "REGION", "${Account}", "ACCOUNT").Replace(t)
	if i := strings.LastIndex(t, "${"); i >= 0 {
		t = t[:i] + "ID"
	}
	return t
}

func (v *validator) redundancy(c *Compiled) {
	for _, st := range c.stmts {
		s := st.src
		acts, _ := s.Actions()
		v.redundantValues(acts, s.actionPos, CodeRedundantAction, "action", false, true, false)
		res, _ := s.Resources()
		v.redundantValues(res, s.resPos, CodeRedundantResource, "resource", true, false, c.Policy.variables())
	}
	for i, a := range c.stmts {
		for j, b := range c.stmts {
			if i == j || !statementCovers(b, a, c.Policy.variables()) {
				continue
			}
			if a.ref.Effect == b.ref.Effect {
				// Of two identical statements, report only the later one.
				if statementCovers(a, b, c.Policy.variables()) && i < j {
					continue
				}
				v.add(FindingSuggestion, CodeRedundantStatement, a.src.Path, a.src.off,
					"everything this statement %ss is already %sed by %s; remove it or merge the two.", strings.ToLower(a.ref.Effect.String()), strings.ToLower(b.ref.Effect.String()), b.src.Path)
				break
			}
			if a.ref.Effect == Allow && b.ref.Effect == Deny {
				v.add(FindingSuggestion, CodeShadowedByDeny, a.src.Path, a.src.off,
					"this statement never takes effect: %s denies everything it allows, and an explicit deny always wins. Remove it, or narrow the Deny.", b.src.Path)
				break
			}
		}
	}
}

// redundantValues reports list values covered by another value of the same
// list, such as ec2:DescribeInstances next to ec2:Describe*.
func (v *validator) redundantValues(vals []string, poss []pos, code, what string, resource, fold, vars bool) {
	for i, a := range vals {
		if i >= len(poss) || (vars && hasVariable(a)) {
			continue
		}
		for j, b := range vals {
			if i == j || (vars && hasVariable(b)) {
				continue
			}
			ea, eb := analysisElems(a, false, fold), analysisElems(b, false, fold)
			if !subsumes(eb, ea, resource) {
				continue
			}
			if subsumes(ea, eb, resource) && i < j {
				continue // equal: report the later one only
			}
			v.add(FindingSuggestion, code, poss[i].path, poss[i].off,
				"%s %q is already covered by %q in the same list; remove it.", what, a, b)
			break
		}
	}
}

// statementCovers reports whether statement b applies to every request
// statement a applies to: b's actions and resources cover a's, and b has no
// conditions (or exactly a's), and neither names principals.
func statementCovers(b, a *cstmt, vars bool) bool {
	if a.notAction || b.notAction || a.notResource || b.notResource || a.noResource != b.noResource {
		return false
	}
	if a.src.Principal != nil || a.src.NotPrincipal != nil || b.src.Principal != nil || b.src.NotPrincipal != nil {
		return false
	}
	if len(b.conds) > 0 && !sameConditions(a.src.Conditions, b.src.Conditions) {
		return false
	}
	covers := func(as, bs []string, resource, fold bool) bool {
		for _, x := range as {
			ok := false
			for _, y := range bs {
				if x == y {
					ok = true
					break
				}
				if vars && (hasVariable(x) || hasVariable(y)) {
					continue
				}
				if subsumes(analysisElems(y, false, fold), analysisElems(x, false, fold), resource) {
					ok = true
					break
				}
			}
			if !ok {
				return false
			}
		}
		return true
	}
	return covers(a.src.Action, b.src.Action, false, true) && covers(a.src.Resource, b.src.Resource, true, false)
}

func sameConditions(a, b []Condition) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !strings.EqualFold(a[i].Operator, b[i].Operator) || !strings.EqualFold(a[i].Key, b[i].Key) || strings.Join(a[i].Values, "\x00") != strings.Join(b[i].Values, "\x00") {
			return false
		}
	}
	return true
}
