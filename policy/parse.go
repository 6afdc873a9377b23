package policy

import (
	"fmt"
	"strings"
	"unicode"
)

// Error codes of grammar problems. They are stable: tools match on them.
const (
	CodeInvalidJSON           = "INVALID_JSON"
	CodeDuplicateKey          = "DUPLICATE_KEY"
	CodeUnknownElement        = "UNKNOWN_ELEMENT"
	CodeWrongType             = "WRONG_TYPE"
	CodeMissingStatement      = "MISSING_STATEMENT"
	CodeEmptyList             = "EMPTY_LIST"
	CodeInvalidVersion        = "INVALID_VERSION"
	CodeMissingEffect         = "MISSING_EFFECT"
	CodeInvalidEffect         = "INVALID_EFFECT"
	CodeMissingAction         = "MISSING_ACTION"
	CodeActionAndNotAction    = "ACTION_AND_NOT_ACTION"
	CodeResourceAndNot        = "RESOURCE_AND_NOT_RESOURCE"
	CodePrincipalAndNot       = "PRINCIPAL_AND_NOT_PRINCIPAL"
	CodeInvalidAction         = "INVALID_ACTION"
	CodeEmptyValue            = "EMPTY_VALUE"
	CodeInvalidPrincipal      = "INVALID_PRINCIPAL"
	CodeDuplicateSid          = "DUPLICATE_SID"
	CodeInvalidCondition      = "INVALID_CONDITION"
	CodeUnknownOperator       = "UNKNOWN_CONDITION_OPERATOR"
	CodeInvalidConditionValue = "INVALID_CONDITION_VALUE"
	CodeInvalidConditionKey   = "INVALID_CONDITION_KEY"
)

// Parse reads a policy document. It checks the grammar only — element names
// and types, duplicates, required elements — and returns every problem it
// finds as Errors, each naming the JSON path. Condition operators and values
// are checked by Compile; Validate runs both and more.
func Parse(data []byte) (*Policy, error) {
	p, errs := parse(data)
	if len(errs) > 0 {
		return nil, errs
	}
	return p, nil
}

// parse returns whatever it could build along with the problems, so that
// Validate can go on checking the parts that are fine.
func parse(data []byte) (*Policy, Errors) {
	root, jerr := parseTree(data)
	if jerr != nil {
		return nil, Errors{{Code: CodeInvalidJSON, Message: jerr.msg + ".", off: jerr.off}}
	}
	ps := &parser{}
	p := ps.policy(root)
	p.chars = nonSpaceChars(data)
	return p, ps.errs
}

type parser struct {
	errs Errors
}

func (ps *parser) errorf(code, path string, off int, format string, args ...any) {
	ps.errs = append(ps.errs, &Error{Code: code, Path: path, Message: fmt.Sprintf(format, args...), off: off})
}

func join(path, elem string) string {
	if path == "" {
		return elem
	}
	return path + "." + elem
}

// members checks an object's keys against the allowed element names and
// reports duplicates and unknown names. It returns the members by name.
func (ps *parser) members(n *jnode, path string, allowed []string) map[string]*jnode {
	out := make(map[string]*jnode, len(n.obj))
	for _, m := range n.obj {
		mp := join(path, m.key)
		if _, dup := out[m.key]; dup {
			ps.errorf(CodeDuplicateKey, mp, m.off, "%q appears more than once; IAM rejects duplicate elements — keep one and merge the values into it.", m.key)
			continue
		}
		known := false
		for _, a := range allowed {
			if a == m.key {
				known = true
				break
			}
		}
		if !known {
			hint := ""
			for _, a := range allowed {
				if strings.EqualFold(a, m.key) {
					hint = fmt.Sprintf(" Element names are case-sensitive: write %q.", a)
				}
			}
			if hint == "" {
				hint = " Allowed here: " + strings.Join(allowed, ", ") + "."
			}
			ps.errorf(CodeUnknownElement, mp, m.off, "unknown element %q.%s", m.key, hint)
			continue
		}
		out[m.key] = m.val
	}
	return out
}

func (ps *parser) wrongType(n *jnode, path, want string) {
	ps.errorf(CodeWrongType, path, n.off, "must be %s, not %s.", want, n.kind)
}

func (ps *parser) policy(n *jnode) *Policy {
	p := &Policy{}
	if n.kind != jObject {
		ps.errorf(CodeWrongType, "", n.off, "a policy document must be a JSON object with Version and Statement, not %s.", n.kind)
		return p
	}
	els := ps.members(n, "", []string{"Version", "Id", "Statement"})
	if v, ok := els["Version"]; ok {
		p.hasVersion = true
		if v.kind != jString {
			ps.wrongType(v, "Version", `the string "2012-10-17"`)
		} else {
			p.Version = v.str
			if v.str != Version2012 && v.str != Version2008 {
				ps.errorf(CodeInvalidVersion, "Version", v.off, "%q is not a policy language version; use %q.", v.str, Version2012)
			}
		}
	}
	if v, ok := els["Id"]; ok {
		if v.kind != jString {
			ps.wrongType(v, "Id", "a string")
		} else {
			p.ID = v.str
		}
	}
	st, ok := els["Statement"]
	switch {
	case !ok:
		ps.errorf(CodeMissingStatement, "Statement", n.off, "the policy has no Statement element; add at least one statement.")
	case st.kind == jObject:
		if s := ps.statement(st, "Statement", 0); s != nil {
			p.Statements = append(p.Statements, s)
		}
	case st.kind == jArray:
		if len(st.arr) == 0 {
			ps.errorf(CodeEmptyList, "Statement", st.off, "the Statement list is empty; add at least one statement.")
		}
		for i, el := range st.arr {
			path := fmt.Sprintf("Statement[%d]", i)
			if el.kind != jObject {
				ps.wrongType(el, path, "a statement object")
				continue
			}
			if s := ps.statement(el, path, i); s != nil {
				p.Statements = append(p.Statements, s)
			}
		}
	default:
		ps.wrongType(st, "Statement", "a statement object or an array of them")
	}
	ps.duplicateSids(p)
	return p
}

var statementElements = []string{"Sid", "Effect", "Principal", "NotPrincipal", "Action", "NotAction", "Resource", "NotResource", "Condition"}

func (ps *parser) statement(n *jnode, path string, index int) *Statement {
	s := &Statement{Index: index, Path: path, off: n.off}
	els := ps.members(n, path, statementElements)

	if v, ok := els["Sid"]; ok {
		s.hasSid = true
		s.sidPos = pos{join(path, "Sid"), v.off}
		if v.kind != jString {
			ps.wrongType(v, join(path, "Sid"), "a string")
		} else {
			s.Sid = v.str
		}
	}

	if v, ok := els["Effect"]; !ok {
		ps.errorf(CodeMissingEffect, join(path, "Effect"), n.off, `the statement has no Effect; add "Effect": "Allow" or "Effect": "Deny".`)
	} else if v.kind != jString {
		ps.wrongType(v, join(path, "Effect"), `"Allow" or "Deny"`)
	} else {
		s.effectRaw = v.str
		switch v.str {
		case "Allow":
			s.Effect = Allow
		case "Deny":
			s.Effect = Deny
		default:
			msg := fmt.Sprintf(`%q is not an effect; use "Allow" or "Deny".`, v.str)
			if strings.EqualFold(v.str, "allow") || strings.EqualFold(v.str, "deny") {
				msg = fmt.Sprintf(`%q: Effect is case-sensitive; write "Allow" or "Deny".`, v.str)
			}
			ps.errorf(CodeInvalidEffect, join(path, "Effect"), v.off, "%s", msg)
		}
	}

	pr, hasP := els["Principal"]
	npr, hasNP := els["NotPrincipal"]
	if hasP && hasNP {
		ps.errorf(CodePrincipalAndNot, join(path, "NotPrincipal"), npr.off, "a statement may have Principal or NotPrincipal, not both; remove one.")
	}
	if hasP {
		s.Principal = ps.principal(pr, join(path, "Principal"))
	}
	if hasNP {
		s.NotPrincipal = ps.principal(npr, join(path, "NotPrincipal"))
	}

	act, hasA := els["Action"]
	nact, hasNA := els["NotAction"]
	switch {
	case hasA && hasNA:
		ps.errorf(CodeActionAndNotAction, join(path, "NotAction"), nact.off, "a statement may have Action or NotAction, not both; remove one.")
	case hasA:
		s.Action, s.actionPos = ps.stringList(act, join(path, "Action"), true)
	case hasNA:
		s.NotAction, s.actionPos = ps.stringList(nact, join(path, "NotAction"), true)
	default:
		ps.errorf(CodeMissingAction, join(path, "Action"), n.off, `the statement has no Action or NotAction; add the actions it covers, e.g. "Action": "ec2-instance-connect:SendSSHPublicKey".`)
	}
	acts, _ := s.Actions()
	for i, a := range acts {
		if i < len(s.actionPos) {
			ps.checkAction(a, s.actionPos[i])
		}
	}

	res, hasR := els["Resource"]
	nres, hasNR := els["NotResource"]
	switch {
	case hasR && hasNR:
		ps.errorf(CodeResourceAndNot, join(path, "NotResource"), nres.off, "a statement may have Resource or NotResource, not both; remove one.")
	case hasR:
		s.Resource, s.resPos = ps.stringList(res, join(path, "Resource"), false)
	case hasNR:
		s.NotResource, s.resPos = ps.stringList(nres, join(path, "NotResource"), false)
	}

	if c, ok := els["Condition"]; ok {
		s.condPos = pos{join(path, "Condition"), c.off}
		s.Conditions = ps.conditions(c, join(path, "Condition"))
	}
	return s
}

// stringList reads an element that may be a string or a non-empty array of
// strings. A nil result means the element was unusable; an error says why.
func (ps *parser) stringList(n *jnode, path string, isAction bool) ([]string, []pos) {
	what := "resource"
	if isAction {
		what = "action"
	}
	switch n.kind {
	case jString:
		if n.str == "" {
			ps.errorf(CodeEmptyValue, path, n.off, "an empty string is not a valid %s.", what)
			return []string{}, []pos{{path, n.off}}
		}
		return []string{n.str}, []pos{{path, n.off}}
	case jArray:
		if len(n.arr) == 0 {
			ps.errorf(CodeEmptyList, path, n.off, "the list is empty; give at least one %s.", what)
			return []string{}, nil
		}
		vals := make([]string, 0, len(n.arr))
		poss := make([]pos, 0, len(n.arr))
		for i, el := range n.arr {
			ep := fmt.Sprintf("%s[%d]", path, i)
			if el.kind != jString {
				ps.wrongType(el, ep, "a string")
				continue
			}
			if el.str == "" {
				ps.errorf(CodeEmptyValue, ep, el.off, "an empty string is not a valid %s.", what)
				continue
			}
			vals = append(vals, el.str)
			poss = append(poss, pos{ep, el.off})
		}
		return vals, poss
	}
	ps.wrongType(n, path, "a string or an array of strings")
	return []string{}, nil
}

// checkAction enforces the "service:Action" shape IAM requires.
func (ps *parser) checkAction(a string, at pos) {
	if a == "*" {
		return
	}
	svc, name, ok := strings.Cut(a, ":")
	switch {
	case !ok:
		ps.errorf(CodeInvalidAction, at.path, at.off, "%q has no service prefix; actions are written service:Action, e.g. ec2:DescribeInstances.", a)
	case svc == "" || name == "":
		ps.errorf(CodeInvalidAction, at.path, at.off, "%q must have both a service prefix and an action name (service:Action).", a)
	case strings.ContainsFunc(svc, func(r rune) bool {
		return !(r < unicode.MaxASCII && (r == '-' || r == '*' || r == '?' || isAlnum(byte(r))))
	}):
		ps.errorf(CodeInvalidAction, at.path, at.off, "%q: a service prefix has only letters, digits and hyphens.", a)
	case strings.ContainsFunc(name, func(r rune) bool {
		return !(r < unicode.MaxASCII && (r == '*' || r == '?' || r == '-' || r == '_' || r == '.' || isAlnum(byte(r))))
	}):
		ps.errorf(CodeInvalidAction, at.path, at.off, "%q: an action name has only letters, digits and the wildcards * and ?.", a)
	}
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

var principalTypes = []string{"AWS", "Service", "Federated", "CanonicalUser"}

func (ps *parser) principal(n *jnode, path string) *Principal {
	p := &Principal{}
	switch n.kind {
	case jString:
		if n.str != "*" {
			ps.errorf(CodeInvalidPrincipal, path, n.off, `a principal given as a string must be "*"; otherwise write {"AWS": "arn:aws:iam::ACCOUNT:root"} or another principal type.`)
		}
		p.Wildcard = true
		return p
	case jObject:
		if len(n.obj) == 0 {
			ps.errorf(CodeEmptyList, path, n.off, "the principal map is empty.")
		}
		els := ps.members(n, path, principalTypes)
		for _, m := range n.obj {
			v, ok := els[m.key]
			if !ok || v != m.val {
				continue // unknown or duplicate, already reported
			}
			vals, _ := ps.stringList(v, join(path, m.key), false)
			p.Entries = append(p.Entries, PrincipalEntry{Type: m.key, Values: vals})
		}
		return p
	}
	ps.wrongType(n, path, `"*" or an object such as {"AWS": "..."}`)
	return p
}

func (ps *parser) conditions(n *jnode, path string) []Condition {
	if n.kind != jObject {
		ps.wrongType(n, path, `an object of operators, e.g. {"StringEquals": {"ec2:osuser": "ec2-user"}}`)
		return nil
	}
	if len(n.obj) == 0 {
		ps.errorf(CodeEmptyList, path, n.off, "the Condition block is empty; remove it or add a condition.")
	}
	var out []Condition
	seenOp := map[string]bool{}
	for _, om := range n.obj {
		opPath := join(path, om.key)
		if seenOp[om.key] {
			ps.errorf(CodeDuplicateKey, opPath, om.off, "operator %q appears more than once in this Condition block; merge its keys into one.", om.key)
			continue
		}
		seenOp[om.key] = true
		if om.val.kind != jObject {
			ps.wrongType(om.val, opPath, `an object of condition keys, e.g. {"ec2:osuser": "ec2-user"}`)
			continue
		}
		if len(om.val.obj) == 0 {
			ps.errorf(CodeEmptyList, opPath, om.val.off, "operator %q has no condition keys.", om.key)
		}
		seenKey := map[string]bool{}
		for _, km := range om.val.obj {
			kPath := join(opPath, km.key)
			lk := strings.ToLower(km.key)
			if seenKey[lk] {
				ps.errorf(CodeDuplicateKey, kPath, km.off, "condition key %q appears more than once under %s (key names are case-insensitive); merge the values.", km.key, om.key)
				continue
			}
			seenKey[lk] = true
			c := Condition{Operator: om.key, Key: km.key, Path: kPath, opPath: opPath, off: km.off}
			if km.key == "" {
				ps.errorf(CodeInvalidConditionKey, kPath, km.off, "a condition key name must not be empty.")
				continue
			}
			c.Values, c.valuePos = ps.conditionValues(km.val, kPath)
			if c.Values != nil {
				out = append(out, c)
			}
		}
	}
	return out
}

func (ps *parser) conditionValues(n *jnode, path string) ([]string, []pos) {
	scalar := func(el *jnode, p string) (string, bool) {
		switch el.kind {
		case jString, jNumber:
			return el.str, true
		case jBool:
			if el.b {
				return "true", true
			}
			return "false", true
		}
		ps.wrongType(el, p, "a string, number or boolean")
		return "", false
	}
	if n.kind != jArray {
		v, ok := scalar(n, path)
		if !ok {
			return nil, nil
		}
		return []string{v}, []pos{{path, n.off}}
	}
	if len(n.arr) == 0 {
		ps.errorf(CodeEmptyList, path, n.off, "the value list is empty; give at least one value.")
		return nil, nil
	}
	vals := make([]string, 0, len(n.arr))
	poss := make([]pos, 0, len(n.arr))
	for i, el := range n.arr {
		ep := fmt.Sprintf("%s[%d]", path, i)
		if v, ok := scalar(el, ep); ok {
			vals = append(vals, v)
			poss = append(poss, pos{ep, el.off})
		}
	}
	if len(vals) == 0 {
		return nil, nil
	}
	return vals, poss
}

func (ps *parser) duplicateSids(p *Policy) {
	seen := map[string]bool{}
	for _, s := range p.Statements {
		if !s.hasSid || s.Sid == "" {
			continue
		}
		if seen[s.Sid] {
			ps.errorf(CodeDuplicateSid, s.sidPos.path, s.sidPos.off, "Sid %q is used by another statement; statement IDs must be unique within a policy.", s.Sid)
		}
		seen[s.Sid] = true
	}
}

func nonSpaceChars(data []byte) int {
	n := 0
	for _, r := range string(data) {
		if !unicode.IsSpace(r) {
			n++
		}
	}
	return n
}
