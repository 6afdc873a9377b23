// Package policy is the IAM JSON policy language: it parses documents with
// errors that name the JSON path, validates them the way IAM Access Analyzer
// does, compiles them once and evaluates requests many times with AWS's
// semantics (explicit deny > allow > implicit deny), and explains decisions.
//
// The package does no I/O and keeps no global mutable state.
package policy

import (
	"fmt"
	"strings"
)

// Version strings IAM knows. A document without Version gets 2008 semantics,
// in which policy variables are plain text.
const (
	Version2012 = "2012-10-17"
	Version2008 = "2008-10-17"
)

// Effect is a statement's Effect element.
type Effect uint8

// The two effects.
const (
	Allow Effect = iota + 1
	Deny
)

func (e Effect) String() string {
	switch e {
	case Allow:
		return "Allow"
	case Deny:
		return "Deny"
	}
	return "Effect(" + fmt.Sprint(uint8(e)) + ")"
}

// Policy is a parsed policy document. Element values are kept as written.
type Policy struct {
	Version    string // "" when the element is absent
	ID         string
	Statements []*Statement

	// hasVersion distinguishes an absent Version from an empty one.
	hasVersion bool
	// chars is the document's length in characters without white space,
	// which is how IAM measures its size quotas.
	chars int
}

// variables reports whether policy variables are substituted: only under
// Version 2012-10-17.
func (p *Policy) variables() bool { return p.Version == Version2012 }

// Statement is one element of the Statement list. Exactly one of Action and
// NotAction is set, and at most one of Resource and NotResource (identity
// policies need one; some resource policies, such as trust policies, have
// neither).
type Statement struct {
	Sid          string
	Effect       Effect
	Principal    *Principal
	NotPrincipal *Principal
	Action       []string
	NotAction    []string
	Resource     []string
	NotResource  []string
	Conditions   []Condition

	// Index is the statement's position in the policy's Statement list.
	Index int
	// Path is the statement's JSON path: "Statement[1]", or "Statement" when
	// the policy gives a single statement object.
	Path string

	hasSid    bool
	effectRaw string
	sidPos    pos
	actionPos []pos // one per Action or NotAction value
	resPos    []pos // one per Resource or NotResource value
	condPos   pos   // the Condition element itself
	off       int
}

// Actions returns the Action or NotAction list and whether it is NotAction.
func (s *Statement) Actions() (values []string, not bool) {
	if s.NotAction != nil {
		return s.NotAction, true
	}
	return s.Action, false
}

// Resources returns the Resource or NotResource list and whether it is
// NotResource. Both are nil when the statement has neither.
func (s *Statement) Resources() (values []string, not bool) {
	if s.NotResource != nil {
		return s.NotResource, true
	}
	return s.Resource, false
}

// Principal is a Principal or NotPrincipal element: "*" or a map from
// principal type (AWS, Service, Federated, CanonicalUser) to values.
type Principal struct {
	Wildcard bool
	Entries  []PrincipalEntry
}

// PrincipalEntry is one principal type and its values.
type PrincipalEntry struct {
	Type   string
	Values []string
}

// Condition is one operator/key pair of a Condition block with its values.
// Numbers and booleans written without quotes are kept as their text.
type Condition struct {
	Operator string // as written, e.g. "ForAnyValue:StringEqualsIfExists"
	Key      string // as written; compared case-insensitively
	Values   []string
	// Path is "Statement[0].Condition.StringEquals.ec2:osuser".
	Path string

	opPath   string // "Statement[0].Condition.StringEquals"
	off      int
	valuePos []pos
}

// pos locates an element in the source: its JSON path and byte offset.
type pos struct {
	path string
	off  int
}

// Error is a problem found while parsing or compiling a policy, located by
// the JSON path of the element it concerns.
type Error struct {
	Code    string
	Path    string
	Message string
	off     int
}

func (e *Error) Error() string {
	if e.Path == "" {
		return e.Message
	}
	return e.Path + ": " + e.Message
}

// Errors is a list of problems; Parse and Compile return all they find.
type Errors []*Error

func (es Errors) Error() string {
	switch len(es) {
	case 0:
		return "no errors"
	case 1:
		return es[0].Error()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d errors: ", len(es))
	for i, e := range es {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(e.Error())
	}
	return b.String()
}
