package policy

import (
	"fmt"
	"strings"
)

// Explanation is a decision with a trace of every statement: which part of
// each matched or failed. It is the slow, thorough path behind "why was I
// denied?"; Evaluate is the fast one. Both must always agree.
type Explanation struct {
	Result
	Statements []StatementTrace
}

// StatementTrace tells how one statement fared against a request.
type StatementTrace struct {
	Ref    StatementRef
	Effect Effect
	// Applies is true when every part below matched.
	Applies bool
	// ActionOK: the action is covered; Action is the Action value that
	// matched ("" for NotAction, where the point is that none did).
	ActionOK bool
	Action   string
	// ResourceOK: the resource is covered; Resource is the value that
	// matched (for NotResource: "").
	ResourceOK  bool
	Resource    string
	PrincipalOK bool
	Conditions  []ConditionTrace
}

// ConditionTrace is one condition's outcome.
type ConditionTrace struct {
	Operator      string
	Key           string
	Values        []string
	RequestValues []string
	OK            bool
	// Missing: the request had no value for Key.
	Missing bool
}

// Explain evaluates the request statement by statement, without the action
// index, and records why each statement did or did not apply.
func (s *Set) Explain(req *Request) *Explanation {
	ex := &Explanation{}
	ex.reset()
	for _, st := range s.stmts {
		tr := StatementTrace{Ref: st.ref, Effect: st.ref.Effect}
		tr.PrincipalOK = st.matchPrincipal(req.Principal)
		tr.ActionOK, tr.Action = st.explainAction(req.Action)
		if tr.ActionOK {
			tr.ResourceOK, tr.Resource = st.explainResource(req.Resource, req.Context, &ex.Result)
		}
		condsOK := true
		if tr.ActionOK && tr.ResourceOK && tr.PrincipalOK {
			for i, c := range st.conds {
				ct := ConditionTrace{
					Operator:      c.op.canonical,
					Key:           c.rawKey,
					Values:        st.src.Conditions[i].Values, // Compile keeps them in step
					RequestValues: req.Context.get(c.key),
				}
				ct.Missing = len(ct.RequestValues) == 0
				ct.OK = c.eval(req.Context, &ex.Result)
				condsOK = condsOK && ct.OK
				tr.Conditions = append(tr.Conditions, ct)
			}
		}
		tr.Applies = tr.PrincipalOK && tr.ActionOK && tr.ResourceOK && condsOK
		if tr.Applies {
			if st.ref.Effect == Deny {
				ex.deny = append(ex.deny, st.ref)
			} else {
				ex.allow = append(ex.allow, st.ref)
			}
		}
		ex.Statements = append(ex.Statements, tr)
	}
	ex.finish()
	return ex
}

func (st *cstmt) explainAction(action string) (bool, string) {
	for i := range st.actions {
		if ok, _ := st.actions[i].match(action, nil); ok {
			if st.notAction {
				return false, st.actions[i].raw
			}
			return true, st.actions[i].raw
		}
	}
	return st.notAction, ""
}

func (st *cstmt) explainResource(resource string, ctx *Context, res *Result) (bool, string) {
	if st.noResource {
		return true, ""
	}
	for i := range st.resources {
		ok, missing := st.resources[i].match(resource, ctx)
		if missing != "" {
			res.addMissing(missing)
			if st.notResource {
				return false, st.resources[i].raw
			}
		}
		if ok {
			if st.notResource {
				return false, st.resources[i].raw
			}
			return true, st.resources[i].raw
		}
	}
	return st.notResource, ""
}

// Reason says in a few words why a statement did not apply, or "applies".
func (t *StatementTrace) Reason() string {
	switch {
	case t.Applies:
		return "applies"
	case !t.PrincipalOK:
		return "the principal is not the statement's Principal"
	case !t.ActionOK:
		if t.Action != "" {
			return fmt.Sprintf("the action is excluded by NotAction %q", t.Action)
		}
		return "the action is not in Action"
	case !t.ResourceOK:
		if t.Resource != "" {
			return fmt.Sprintf("the resource is excluded by NotResource %q", t.Resource)
		}
		return "the resource matches no Resource value"
	}
	var failed []string
	for _, c := range t.Conditions {
		if c.OK {
			continue
		}
		if c.Missing {
			failed = append(failed, fmt.Sprintf("%s %s: the request has no %s", c.Operator, c.Key, c.Key))
		} else {
			failed = append(failed, fmt.Sprintf("%s %s: %s is not %s", c.Operator, c.Key, quoteList(c.RequestValues), quoteList(c.Values)))
		}
	}
	return "condition failed: " + strings.Join(failed, "; ")
}

func quoteList(vs []string) string {
	q := make([]string, len(vs))
	for i, v := range vs {
		q[i] = fmt.Sprintf("%q", v)
	}
	if len(q) == 1 {
		return q[0]
	}
	return "[" + strings.Join(q, ", ") + "]"
}
