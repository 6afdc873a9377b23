package policy_test

// An independent, table-driven test suite for the evaluation semantics of
// the IAM policy language, written from AWS's documentation:
//
//   - reference_policies_evaluation-logic.html (explicit deny > allow >
//     implicit deny)
//   - reference_policies_elements_action.html / _resource.html /
//     _principal.html / _notprincipal.html / _version.html
//   - reference_policies_elements_condition_operators.html
//   - reference_policies_condition-logic-multiple-context-keys-or-values.html
//   - reference_policies_condition-single-vs-multi-valued-context-keys.html
//   - reference_policies_variables.html
//
// and /work/shared/spec/aws-compat.md §5. It uses the public API only.
// Condition operator tables live in condition_test.go, Action and Resource
// matching tables in glob_test.go.

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/kaginashi/kaginashi/policy"
)

// Names shared by the tables.
const (
	actSend     = "ec2-instance-connect:SendSSHPublicKey"
	actSerial   = "ec2-instance-connect:SendSerialConsoleSSHPublicKey"
	actTunnel   = "ec2-instance-connect:OpenTunnel"
	actDescribe = "ec2:DescribeInstances"

	acct     = "123456789012"
	region   = "ap-northeast-1"
	inst     = "arn:aws:ec2:ap-northeast-1:123456789012:instance/i-0123456789abcdef0"
	instUSE1 = "arn:aws:ec2:us-east-1:123456789012:instance/i-0123456789abcdef0"
	instAcct = "arn:aws:ec2:ap-northeast-1:999999999999:instance/i-0123456789abcdef0"
	eice     = "arn:aws:ec2:ap-northeast-1:123456789012:instance-connect-endpoint/eice-0123456789abcdef0"
)

// doc is a named policy document.
type doc struct {
	name string
	json string
}

// compileDoc parses and compiles a document, failing the test on error.
func compileDoc(t testing.TB, name, text string) *policy.Compiled {
	t.Helper()
	c, err := policy.ParseAndCompile(name, []byte(text))
	if err != nil {
		t.Fatalf("ParseAndCompile(%s): %v\n%s", name, err, text)
	}
	return c
}

// newSet compiles docs into one Set.
func newSet(t testing.TB, docs ...doc) *policy.Set {
	t.Helper()
	var cs []*policy.Compiled
	for _, d := range docs {
		cs = append(cs, compileDoc(t, d.name, d.json))
	}
	return policy.NewSet(cs...)
}

// ctxOf builds a Context from a map; a nil map gives an empty context.
func ctxOf(m map[string][]string) *policy.Context {
	c := policy.NewContext()
	for k, v := range m {
		c.Set(k, v...)
	}
	return c
}

// ref is the part of a StatementRef the tables assert: policy name, Sid,
// index.
type ref struct {
	Policy string
	Sid    string
	Index  int
}

func (r ref) String() string { return fmt.Sprintf("%s/%q/%d", r.Policy, r.Sid, r.Index) }

func refsOf(ms []policy.StatementRef) []ref {
	out := make([]ref, 0, len(ms))
	for _, m := range ms {
		out = append(out, ref{m.Policy, m.Sid, m.Index})
	}
	slices.SortFunc(out, func(a, b ref) int { return strings.Compare(a.String(), b.String()) })
	return out
}

func sortedRefs(rs []ref) []ref {
	out := slices.Clone(rs)
	if out == nil {
		out = []ref{}
	}
	slices.SortFunc(out, func(a, b ref) int { return strings.Compare(a.String(), b.String()) })
	return out
}

func sortedStrings(s []string) []string {
	out := slices.Clone(s)
	if out == nil {
		out = []string{}
	}
	slices.Sort(out)
	return out
}

// stmtDoc is a one-statement 2012-10-17 policy.
func stmtDoc(stmt string) string {
	return `{"Version":"2012-10-17","Statement":[` + stmt + `]}`
}

// ---------------------------------------------------------------------------
// Decision logic
// ---------------------------------------------------------------------------

// AWS evaluation logic: by default every request is implicitly denied; an
// explicit Deny in any applicable policy overrides any Allow; otherwise an
// applicable Allow allows. Result.Matched lists the deciding statements:
// every matching Deny for explicitDeny, every matching Allow for allowed,
// nothing for implicitDeny.
func TestDecisionLogic(t *testing.T) {
	allowSend := `{"Sid":"AllowSend","Effect":"Allow","Action":"` + actSend + `","Resource":"*"}`
	denySend := `{"Sid":"DenySend","Effect":"Deny","Action":"` + actSend + `","Resource":"*"}`
	allowAll := `{"Sid":"AllowAll","Effect":"Allow","Action":"*","Resource":"*"}`
	denyAll := `{"Sid":"DenyAll","Effect":"Deny","Action":"*","Resource":"*"}`
	allowDescribe := `{"Sid":"AllowDescribe","Effect":"Allow","Action":"` + actDescribe + `","Resource":"*"}`
	denyOtherRegion := `{"Sid":"DenyUSE1","Effect":"Deny","Action":"` + actSend + `","Resource":"arn:aws:ec2:us-east-1:*"}`
	denyIfRoot := `{"Sid":"DenyRoot","Effect":"Deny","Action":"` + actSend + `","Resource":"*","Condition":{"StringEquals":{"ec2:osuser":"root"}}}`
	allowIfEC2User := `{"Sid":"AllowEC2User","Effect":"Allow","Action":"` + actSend + `","Resource":"*","Condition":{"StringEquals":{"ec2:osuser":"ec2-user"}}}`
	noSid := `{"Effect":"Allow","Action":"` + actSend + `","Resource":"*"}`

	tests := []struct {
		name     string
		docs     []doc
		action   string
		resource string
		ctx      map[string][]string
		want     policy.Decision
		matched  []ref
	}{
		{
			name:   "no policies: implicit deny",
			action: actSend, resource: inst,
			want: policy.ImplicitDeny,
		},
		{
			name:   "single allow",
			docs:   []doc{{"p1", stmtDoc(allowSend)}},
			action: actSend, resource: inst,
			want: policy.Allowed, matched: []ref{{"p1", "AllowSend", 0}},
		},
		{
			name:   "allow for another action only: implicit deny",
			docs:   []doc{{"p1", stmtDoc(allowDescribe)}},
			action: actSend, resource: inst,
			want: policy.ImplicitDeny,
		},
		{
			name:   "deny alone is an explicit deny",
			docs:   []doc{{"p1", stmtDoc(denySend)}},
			action: actSend, resource: inst,
			want: policy.ExplicitDeny, matched: []ref{{"p1", "DenySend", 0}},
		},
		{
			name:   "explicit deny in one policy beats allow in another",
			docs:   []doc{{"allow", stmtDoc(allowSend)}, {"deny", stmtDoc(denySend)}},
			action: actSend, resource: inst,
			want: policy.ExplicitDeny, matched: []ref{{"deny", "DenySend", 0}},
		},
		{
			name:   "explicit deny beats allow regardless of policy order",
			docs:   []doc{{"deny", stmtDoc(denySend)}, {"allow", stmtDoc(allowSend)}},
			action: actSend, resource: inst,
			want: policy.ExplicitDeny, matched: []ref{{"deny", "DenySend", 0}},
		},
		{
			name:   "explicit deny in the same policy beats allow",
			docs:   []doc{{"p", stmtDoc(allowSend + "," + denySend)}},
			action: actSend, resource: inst,
			want: policy.ExplicitDeny, matched: []ref{{"p", "DenySend", 1}},
		},
		{
			name: "all matching denies across policies are listed, no allows",
			docs: []doc{
				{"a", stmtDoc(allowAll + "," + denySend)},
				{"b", stmtDoc(denyAll)},
				{"c", stmtDoc(allowSend + "," + denyOtherRegion)},
			},
			action: actSend, resource: instUSE1,
			want: policy.ExplicitDeny,
			matched: []ref{
				{"a", "DenySend", 1},
				{"b", "DenyAll", 0},
				{"c", "DenyUSE1", 1},
			},
		},
		{
			name: "all matching allows across policies are listed",
			docs: []doc{
				{"a", stmtDoc(allowAll + "," + allowDescribe)},
				{"b", stmtDoc(allowDescribe + "," + allowSend)},
				{"c", stmtDoc(denyOtherRegion)},
			},
			action: actSend, resource: inst,
			want: policy.Allowed,
			matched: []ref{
				{"a", "AllowAll", 0},
				{"b", "AllowSend", 1},
			},
		},
		{
			name:   "deny whose resource does not match does not apply",
			docs:   []doc{{"p", stmtDoc(allowSend + "," + denyOtherRegion)}},
			action: actSend, resource: inst,
			want: policy.Allowed, matched: []ref{{"p", "AllowSend", 0}},
		},
		{
			name:   "deny whose condition fails does not apply",
			docs:   []doc{{"p", stmtDoc(allowSend + "," + denyIfRoot)}},
			action: actSend, resource: inst,
			ctx:  map[string][]string{"ec2:osuser": {"ec2-user"}},
			want: policy.Allowed, matched: []ref{{"p", "AllowSend", 0}},
		},
		{
			name:   "deny whose condition holds applies",
			docs:   []doc{{"p", stmtDoc(allowSend + "," + denyIfRoot)}},
			action: actSend, resource: inst,
			ctx:  map[string][]string{"ec2:osuser": {"root"}},
			want: policy.ExplicitDeny, matched: []ref{{"p", "DenyRoot", 1}},
		},
		{
			name:   "allow whose condition fails: implicit deny, nothing matched",
			docs:   []doc{{"p", stmtDoc(allowIfEC2User)}},
			action: actSend, resource: inst,
			ctx:  map[string][]string{"ec2:osuser": {"root"}},
			want: policy.ImplicitDeny,
		},
		{
			name:   "allow whose condition key is missing: implicit deny",
			docs:   []doc{{"p", stmtDoc(allowIfEC2User)}},
			action: actSend, resource: inst,
			want: policy.ImplicitDeny,
		},
		{
			name:   "statement without Sid is reported with an empty Sid and its index",
			docs:   []doc{{"p", stmtDoc(allowDescribe + "," + noSid)}},
			action: actSend, resource: inst,
			want: policy.Allowed, matched: []ref{{"p", "", 1}},
		},
		{
			name:   "single statement object (not an array) has index 0",
			docs:   []doc{{"p", `{"Version":"2012-10-17","Statement":` + allowSend + `}`}},
			action: actSend, resource: inst,
			want: policy.Allowed, matched: []ref{{"p", "AllowSend", 0}},
		},
		{
			name:   "deny * * beats everything",
			docs:   []doc{{"a", stmtDoc(allowAll)}, {"b", stmtDoc(allowSend)}, {"z", stmtDoc(denyAll)}},
			action: actDescribe, resource: "*",
			want: policy.ExplicitDeny, matched: []ref{{"z", "DenyAll", 0}},
		},
		{
			name:   "allow with a failed condition plus an unconditional allow",
			docs:   []doc{{"p", stmtDoc(allowIfEC2User + "," + allowSend)}},
			action: actSend, resource: inst,
			ctx:  map[string][]string{"ec2:osuser": {"root"}},
			want: policy.Allowed, matched: []ref{{"p", "AllowSend", 1}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			set := newSet(t, tc.docs...)
			req := &policy.Request{Action: tc.action, Resource: tc.resource, Context: ctxOf(tc.ctx)}
			res := set.Decide(req)
			if res.Decision != tc.want {
				t.Fatalf("Decision = %v, want %v (matched %v)", res.Decision, tc.want, refsOf(res.Matched))
			}
			got, want := refsOf(res.Matched), sortedRefs(tc.matched)
			if !slices.Equal(got, want) {
				t.Errorf("Matched = %v, want %v", got, want)
			}
			for _, m := range res.Matched {
				wantEff := policy.Allow
				if tc.want == policy.ExplicitDeny {
					wantEff = policy.Deny
				}
				if m.Effect != wantEff {
					t.Errorf("Matched %v has Effect %v, want %v", m, m.Effect, wantEff)
				}
			}
		})
	}
}

// A reused Result must not carry anything over from the previous request.
func TestEvaluateReusedResultIsReset(t *testing.T) {
	set := newSet(t, doc{"p", stmtDoc(
		`{"Sid":"A","Effect":"Allow","Action":"` + actSend + `","Resource":"*","Condition":{"StringEquals":{"ec2:osuser":"ec2-user"}}},` +
			`{"Sid":"D","Effect":"Deny","Action":"` + actSend + `","Resource":"` + instUSE1 + `"}`)})
	var res policy.Result

	steps := []struct {
		resource string
		ctx      map[string][]string
		want     policy.Decision
		matched  []ref
		missing  []string
	}{
		{inst, map[string][]string{"ec2:osuser": {"ec2-user"}}, policy.Allowed, []ref{{"p", "A", 0}}, nil},
		{inst, nil, policy.ImplicitDeny, nil, []string{"ec2:osuser"}},
		{instUSE1, map[string][]string{"ec2:osuser": {"ec2-user"}}, policy.ExplicitDeny, []ref{{"p", "D", 1}}, nil},
		{inst, map[string][]string{"ec2:osuser": {"root"}}, policy.ImplicitDeny, nil, nil},
		{inst, map[string][]string{"ec2:osuser": {"ec2-user"}}, policy.Allowed, []ref{{"p", "A", 0}}, nil},
	}
	for i, s := range steps {
		set.Evaluate(&policy.Request{Action: actSend, Resource: s.resource, Context: ctxOf(s.ctx)}, &res)
		if res.Decision != s.want {
			t.Errorf("step %d: Decision = %v, want %v", i, res.Decision, s.want)
		}
		if got, want := refsOf(res.Matched), sortedRefs(s.matched); !slices.Equal(got, want) {
			t.Errorf("step %d: Matched = %v, want %v", i, got, want)
		}
		if got, want := sortedStrings(res.Missing), sortedStrings(s.missing); !slices.Equal(got, want) {
			t.Errorf("step %d: Missing = %v, want %v", i, got, want)
		}
	}
}

// A nil Context is a request with no context keys.
func TestNilContext(t *testing.T) {
	set := newSet(t, doc{"p", stmtDoc(
		`{"Sid":"A","Effect":"Allow","Action":"` + actSend + `","Resource":"*","Condition":{"StringNotEquals":{"ec2:osuser":"root"}}},` +
			`{"Sid":"B","Effect":"Allow","Action":"` + actDescribe + `","Resource":"*","Condition":{"StringEquals":{"ec2:osuser":"root"}}}`)})
	if got := set.Decide(&policy.Request{Action: actSend, Resource: inst}).Decision; got != policy.Allowed {
		t.Errorf("negated operator, nil context: %v, want allowed", got)
	}
	res := set.Decide(&policy.Request{Action: actDescribe, Resource: "*"})
	if res.Decision != policy.ImplicitDeny {
		t.Errorf("positive operator, nil context: %v, want implicitDeny", res.Decision)
	}
	if !slices.Equal(res.Missing, []string{"ec2:osuser"}) {
		t.Errorf("Missing = %v, want [ec2:osuser]", res.Missing)
	}
}

// ---------------------------------------------------------------------------
// Missing context keys
// ---------------------------------------------------------------------------

// Result.Missing names the context keys (as spelled in the policy) that the
// conditions or variables of statements whose action and resource matched
// asked for and the request did not supply — what SimulatePrincipalPolicy
// reports as MissingContextValues.
func TestMissingContextKeys(t *testing.T) {
	twoConds := `{"Sid":"A","Effect":"Allow","Action":"` + actSend + `","Resource":"*",
		"Condition":{"StringEquals":{"ec2:osuser":"ec2-user"},"IpAddress":{"aws:SourceIp":"203.0.113.0/24"}}}`
	tests := []struct {
		name     string
		stmts    string
		action   string
		resource string
		ctx      map[string][]string
		want     policy.Decision
		missing  []string
	}{
		{
			name:  "both keys missing",
			stmts: twoConds, action: actSend, resource: inst,
			want: policy.ImplicitDeny, missing: []string{"ec2:osuser", "aws:SourceIp"},
		},
		{
			name:  "one key missing",
			stmts: twoConds, action: actSend, resource: inst,
			ctx:  map[string][]string{"ec2:osuser": {"ec2-user"}},
			want: policy.ImplicitDeny, missing: []string{"aws:SourceIp"},
		},
		{
			name:  "one key missing, the other present but not matching: both conditions evaluated",
			stmts: twoConds, action: actSend, resource: inst,
			ctx:  map[string][]string{"ec2:osuser": {"root"}},
			want: policy.ImplicitDeny, missing: []string{"aws:SourceIp"},
		},
		{
			name:  "nothing missing",
			stmts: twoConds, action: actSend, resource: inst,
			ctx:  map[string][]string{"ec2:osuser": {"ec2-user"}, "aws:sourceip": {"203.0.113.5"}},
			want: policy.Allowed, missing: nil,
		},
		{
			name:  "statement whose action does not match asks for nothing",
			stmts: twoConds, action: actDescribe, resource: "*",
			want: policy.ImplicitDeny, missing: nil,
		},
		{
			name: "statement whose resource does not match asks for nothing",
			stmts: `{"Effect":"Allow","Action":"` + actSend + `","Resource":"` + instUSE1 + `",
				"Condition":{"StringEquals":{"ec2:osuser":"ec2-user"}}}`,
			action: actSend, resource: inst,
			want: policy.ImplicitDeny, missing: nil,
		},
		{
			name: "key reported as spelled in the policy",
			stmts: `{"Effect":"Allow","Action":"` + actSend + `","Resource":"*",
				"Condition":{"StringEquals":{"EC2:OsUser":"ec2-user"}}}`,
			action: actSend, resource: inst,
			want: policy.ImplicitDeny, missing: []string{"EC2:OsUser"},
		},
		{
			name: "negated operator on a missing key holds but still reports the key",
			stmts: `{"Effect":"Allow","Action":"` + actSend + `","Resource":"*",
				"Condition":{"StringNotEquals":{"ec2:osuser":"root"}}}`,
			action: actSend, resource: inst,
			want: policy.Allowed, missing: []string{"ec2:osuser"},
		},
		{
			name: "a key asked for by two statements is listed once",
			stmts: `{"Effect":"Allow","Action":"` + actSend + `","Resource":"*","Condition":{"StringEquals":{"ec2:osuser":"a"}}},
				{"Effect":"Deny","Action":"` + actSend + `","Resource":"*","Condition":{"StringEquals":{"ec2:osuser":"root"}}}`,
			action: actSend, resource: inst,
			want: policy.ImplicitDeny, missing: []string{"ec2:osuser"},
		},
		{
			name:   "unresolvable variable in Resource",
			stmts:  `{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::home/${aws:username}/*"}`,
			action: "s3:GetObject", resource: "arn:aws:s3:::home/alice/a.txt",
			want: policy.ImplicitDeny, missing: []string{"aws:username"},
		},
		{
			name: "unresolvable variable in a condition value",
			stmts: `{"Effect":"Allow","Action":"` + actSend + `","Resource":"*",
				"Condition":{"StringEquals":{"ec2:osuser":"${aws:username}"}}}`,
			action: actSend, resource: inst,
			ctx:  map[string][]string{"ec2:osuser": {"alice"}},
			want: policy.ImplicitDeny, missing: []string{"aws:username"},
		},
		{
			name: "variable with a default is never missing",
			stmts: `{"Effect":"Allow","Action":"` + actSend + `","Resource":"*",
				"Condition":{"StringEquals":{"ec2:osuser":"${aws:username, 'ec2-user'}"}}}`,
			action: actSend, resource: inst,
			ctx:  map[string][]string{"ec2:osuser": {"ec2-user"}},
			want: policy.Allowed, missing: nil,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			set := newSet(t, doc{"p", stmtDoc(tc.stmts)})
			res := set.Decide(&policy.Request{Action: tc.action, Resource: tc.resource, Context: ctxOf(tc.ctx)})
			if res.Decision != tc.want {
				t.Errorf("Decision = %v, want %v", res.Decision, tc.want)
			}
			if got, want := sortedStrings(res.Missing), sortedStrings(tc.missing); !slices.Equal(got, want) {
				t.Errorf("Missing = %q, want %q", got, want)
			}
		})
	}
}

// ---------------------------------------------------------------------------
// Policy variables
// ---------------------------------------------------------------------------

// reference_policies_variables.html: variables are marked ${key} and are
// replaced by the request's value of that (single-valued) context key, only
// under Version 2012-10-17; with 2008-10-17 or no Version they are literal
// text. ${key, 'default'} supplies a default. ${*}, ${?} and ${$} stand for
// the literal characters. "If AWS cannot resolve a variable this might cause
// the entire statement to be invalid" — the value naming it cannot match.
// A variable's value is text, never a wildcard.
func TestPolicyVariables(t *testing.T) {
	const get = "s3:GetObject"
	home := func(version, res string) string {
		v := ""
		if version != "" {
			v = `"Version":"` + version + `",`
		}
		return `{` + v + `"Statement":[{"Sid":"S","Effect":"Allow","Action":"` + get + `","Resource":"` + res + `"}]}`
	}
	cond := func(op, key, value string) string {
		return stmtDoc(`{"Sid":"S","Effect":"Allow","Action":"` + get + `","Resource":"*","Condition":{"` + op + `":{"` + key + `":` + value + `}}}`)
	}
	homeRes := "arn:aws:s3:::home/${aws:username}/*"
	alice := map[string][]string{"aws:username": {"alice"}}

	tests := []struct {
		name     string
		docs     []doc
		resource string
		ctx      map[string][]string
		want     policy.Decision
		missing  []string // checked only when checkMissing
		checkMis bool
	}{
		// Resource.
		{name: "resource: variable resolves", docs: []doc{{"p", home("2012-10-17", homeRes)}},
			resource: "arn:aws:s3:::home/alice/notes.txt", ctx: alice, want: policy.Allowed},
		{name: "resource: other user's prefix", docs: []doc{{"p", home("2012-10-17", homeRes)}},
			resource: "arn:aws:s3:::home/bob/notes.txt", ctx: alice, want: policy.ImplicitDeny},
		{name: "resource: variable name is case-insensitive", docs: []doc{{"p", home("2012-10-17", "arn:aws:s3:::home/${AWS:UserName}/*")}},
			resource: "arn:aws:s3:::home/alice/notes.txt", ctx: alice, want: policy.Allowed},
		{name: "resource: value with * is literal, does not widen", docs: []doc{{"p", home("2012-10-17", homeRes)}},
			resource: "arn:aws:s3:::home/bob/notes.txt", ctx: map[string][]string{"aws:username": {"*"}}, want: policy.ImplicitDeny},
		{name: "resource: value with * matches the literal *", docs: []doc{{"p", home("2012-10-17", homeRes)}},
			resource: "arn:aws:s3:::home/*/notes.txt", ctx: map[string][]string{"aws:username": {"*"}}, want: policy.Allowed},
		{name: "resource: value with ? is literal", docs: []doc{{"p", home("2012-10-17", homeRes)}},
			resource: "arn:aws:s3:::home/abc/notes.txt", ctx: map[string][]string{"aws:username": {"a?c"}}, want: policy.ImplicitDeny},
		{name: "resource: value with ? matches the literal ?", docs: []doc{{"p", home("2012-10-17", homeRes)}},
			resource: "arn:aws:s3:::home/a?c/notes.txt", ctx: map[string][]string{"aws:username": {"a?c"}}, want: policy.Allowed},
		{name: "resource: unresolvable variable cannot match", docs: []doc{{"p", home("2012-10-17", homeRes)}},
			resource: "arn:aws:s3:::home/alice/notes.txt", want: policy.ImplicitDeny,
			missing: []string{"aws:username"}, checkMis: true},
		{name: "resource: multivalued key cannot be a variable", docs: []doc{{"p", home("2012-10-17", homeRes)}},
			resource: "arn:aws:s3:::home/alice/notes.txt", ctx: map[string][]string{"aws:username": {"alice", "bob"}}, want: policy.ImplicitDeny},
		{name: "resource: ${ec2:osuser}", docs: []doc{{"p", home("2012-10-17", "arn:aws:s3:::home/${ec2:osuser}/*")}},
			resource: "arn:aws:s3:::home/ec2-user/x", ctx: map[string][]string{"ec2:osuser": {"ec2-user"}}, want: policy.Allowed},
		{name: "resource: ${aws:PrincipalTag/team}", docs: []doc{{"p", home("2012-10-17", "arn:aws:s3:::team/${aws:PrincipalTag/team}/*")}},
			resource: "arn:aws:s3:::team/blue/x", ctx: map[string][]string{"aws:principaltag/team": {"blue"}}, want: policy.Allowed},
		{name: "resource: ${aws:PrincipalTag/team} other team", docs: []doc{{"p", home("2012-10-17", "arn:aws:s3:::team/${aws:PrincipalTag/team}/*")}},
			resource: "arn:aws:s3:::team/red/x", ctx: map[string][]string{"aws:PrincipalTag/team": {"blue"}}, want: policy.ImplicitDeny},
		{name: "resource: two variables", docs: []doc{{"p", home("2012-10-17", "arn:aws:s3:::${aws:PrincipalTag/team}/${aws:username}/*")}},
			resource: "arn:aws:s3:::blue/alice/x", ctx: map[string][]string{"aws:PrincipalTag/team": {"blue"}, "aws:username": {"alice"}}, want: policy.Allowed},

		// Defaults.
		{name: "default used when the key is missing", docs: []doc{{"p", home("2012-10-17", "arn:aws:s3:::home/${aws:username, 'guest'}/*")}},
			resource: "arn:aws:s3:::home/guest/x", want: policy.Allowed, missing: nil, checkMis: true},
		{name: "default not used when the key is present", docs: []doc{{"p", home("2012-10-17", "arn:aws:s3:::home/${aws:username, 'guest'}/*")}},
			resource: "arn:aws:s3:::home/guest/x", ctx: alice, want: policy.ImplicitDeny},
		{name: "key value used over the default", docs: []doc{{"p", home("2012-10-17", "arn:aws:s3:::home/${aws:username, 'guest'}/*")}},
			resource: "arn:aws:s3:::home/alice/x", ctx: alice, want: policy.Allowed},
		{name: "default in a condition value", docs: []doc{{"p", cond("StringEquals", "s3:prefix", `"${aws:PrincipalTag/team, 'company-wide'}"`)}},
			resource: "arn:aws:s3:::b", ctx: map[string][]string{"s3:prefix": {"company-wide"}}, want: policy.Allowed},

		// Escapes.
		{name: "escape ${*} is a literal *", docs: []doc{{"p", home("2012-10-17", "arn:aws:s3:::lit/${*}")}},
			resource: "arn:aws:s3:::lit/*", want: policy.Allowed},
		{name: "escape ${*} is not a wildcard", docs: []doc{{"p", home("2012-10-17", "arn:aws:s3:::lit/${*}")}},
			resource: "arn:aws:s3:::lit/anything", want: policy.ImplicitDeny},
		{name: "escape ${?} is a literal ?", docs: []doc{{"p", home("2012-10-17", "arn:aws:s3:::lit/a${?}")}},
			resource: "arn:aws:s3:::lit/a?", want: policy.Allowed},
		{name: "escape ${?} is not a wildcard", docs: []doc{{"p", home("2012-10-17", "arn:aws:s3:::lit/a${?}")}},
			resource: "arn:aws:s3:::lit/ab", want: policy.ImplicitDeny},
		{name: "escape ${$} is a literal $", docs: []doc{{"p", home("2012-10-17", "arn:aws:s3:::lit/${$}{x}")}},
			resource: "arn:aws:s3:::lit/${x}", want: policy.Allowed},
		{name: "escape ${$} does not start a variable", docs: []doc{{"p", home("2012-10-17", "arn:aws:s3:::lit/${$}{aws:username}")}},
			resource: "arn:aws:s3:::lit/alice", ctx: alice, want: policy.ImplicitDeny},
		{name: "escape next to a variable and a real wildcard", docs: []doc{{"p", home("2012-10-17", "arn:aws:s3:::home/${aws:username}/${*}*")}},
			resource: "arn:aws:s3:::home/alice/*draft", ctx: alice, want: policy.Allowed},
		{name: "escape next to a variable: * still literal", docs: []doc{{"p", home("2012-10-17", "arn:aws:s3:::home/${aws:username}/${*}*")}},
			resource: "arn:aws:s3:::home/alice/draft", ctx: alice, want: policy.ImplicitDeny},
		{name: "escape ${*} in StringLike is literal", docs: []doc{{"p", cond("StringLike", "s3:prefix", `"a${*}b"`)}},
			resource: "arn:aws:s3:::b", ctx: map[string][]string{"s3:prefix": {"axxb"}}, want: policy.ImplicitDeny},
		{name: "escape ${*} in StringLike matches *", docs: []doc{{"p", cond("StringLike", "s3:prefix", `"a${*}b"`)}},
			resource: "arn:aws:s3:::b", ctx: map[string][]string{"s3:prefix": {"a*b"}}, want: policy.Allowed},

		{name: "unterminated ${ is literal text", docs: []doc{{"p", home("2012-10-17", "arn:aws:s3:::lit/${aws:username")}},
			resource: "arn:aws:s3:::lit/${aws:username", ctx: alice, want: policy.Allowed},
		{name: "variable followed by ?", docs: []doc{{"p", home("2012-10-17", "arn:aws:s3:::home/${aws:username}?")}},
			resource: "arn:aws:s3:::home/alice1", ctx: alice, want: policy.Allowed},
		{name: "variable followed by ?, too long", docs: []doc{{"p", home("2012-10-17", "arn:aws:s3:::home/${aws:username}?")}},
			resource: "arn:aws:s3:::home/alice12", ctx: alice, want: policy.ImplicitDeny},

		// Condition values.
		{name: "StringEquals ${aws:username}", docs: []doc{{"p", cond("StringEquals", "ec2:osuser", `"${aws:username}"`)}},
			resource: "arn:aws:s3:::b", ctx: map[string][]string{"ec2:osuser": {"alice"}, "aws:username": {"alice"}}, want: policy.Allowed},
		{name: "StringEquals ${aws:username} differs", docs: []doc{{"p", cond("StringEquals", "ec2:osuser", `"${aws:username}"`)}},
			resource: "arn:aws:s3:::b", ctx: map[string][]string{"ec2:osuser": {"bob"}, "aws:username": {"alice"}}, want: policy.ImplicitDeny},
		{name: "StringEquals ${aws:username} among other values", docs: []doc{{"p", cond("StringEquals", "ec2:osuser", `["ec2-user","${aws:username}"]`)}},
			resource: "arn:aws:s3:::b", ctx: map[string][]string{"ec2:osuser": {"alice"}, "aws:username": {"alice"}}, want: policy.Allowed},
		{name: "unresolvable value does not stop a literal value from matching", docs: []doc{{"p", cond("StringEquals", "ec2:osuser", `["${aws:username}","ec2-user"]`)}},
			resource: "arn:aws:s3:::b", ctx: map[string][]string{"ec2:osuser": {"ec2-user"}}, want: policy.Allowed},
		{name: "StringEqualsIgnoreCase ${aws:username}", docs: []doc{{"p", cond("StringEqualsIgnoreCase", "ec2:osuser", `"${aws:username}"`)}},
			resource: "arn:aws:s3:::b", ctx: map[string][]string{"ec2:osuser": {"alice"}, "aws:username": {"Alice"}}, want: policy.Allowed},
		{name: "StringLike home/${aws:username}/*", docs: []doc{{"p", cond("StringLike", "s3:prefix", `"home/${aws:username}/*"`)}},
			resource: "arn:aws:s3:::b", ctx: map[string][]string{"s3:prefix": {"home/alice/docs"}, "aws:username": {"alice"}}, want: policy.Allowed},
		{name: "StringLike home/${aws:username}/* other user", docs: []doc{{"p", cond("StringLike", "s3:prefix", `"home/${aws:username}/*"`)}},
			resource: "arn:aws:s3:::b", ctx: map[string][]string{"s3:prefix": {"home/bob/docs"}, "aws:username": {"alice"}}, want: policy.ImplicitDeny},
		{name: "StringLike variable value * is literal", docs: []doc{{"p", cond("StringLike", "s3:prefix", `"home/${aws:username}/*"`)}},
			resource: "arn:aws:s3:::b", ctx: map[string][]string{"s3:prefix": {"home/bob/docs"}, "aws:username": {"*"}}, want: policy.ImplicitDeny},
		{name: "ArnLike ${aws:username}", docs: []doc{{"p", cond("ArnLike", "aws:SourceArn", `"arn:aws:iam::123456789012:user/${aws:username}"`)}},
			resource: "arn:aws:s3:::b", ctx: map[string][]string{"aws:SourceArn": {"arn:aws:iam::123456789012:user/alice"}, "aws:username": {"alice"}}, want: policy.Allowed},
		{name: "ArnLike ${aws:username} other user", docs: []doc{{"p", cond("ArnLike", "aws:SourceArn", `"arn:aws:iam::123456789012:user/${aws:username}"`)}},
			resource: "arn:aws:s3:::b", ctx: map[string][]string{"aws:SourceArn": {"arn:aws:iam::123456789012:user/bob"}, "aws:username": {"alice"}}, want: policy.ImplicitDeny},
		{name: "ArnLike variable value * is literal", docs: []doc{{"p", cond("ArnLike", "aws:SourceArn", `"arn:aws:iam::123456789012:user/${aws:username}"`)}},
			resource: "arn:aws:s3:::b", ctx: map[string][]string{"aws:SourceArn": {"arn:aws:iam::123456789012:user/bob"}, "aws:username": {"*"}}, want: policy.ImplicitDeny},
		{name: "StringEquals ${aws:PrincipalTag/team} vs ResourceTag", docs: []doc{{"p", cond("StringEquals", "aws:ResourceTag/team", `"${aws:PrincipalTag/team}"`)}},
			resource: "arn:aws:s3:::b", ctx: map[string][]string{"aws:ResourceTag/team": {"blue"}, "aws:PrincipalTag/team": {"blue"}}, want: policy.Allowed},
		{name: "StringEquals ${aws:PrincipalTag/team} mismatch", docs: []doc{{"p", cond("StringEquals", "aws:ResourceTag/team", `"${aws:PrincipalTag/team}"`)}},
			resource: "arn:aws:s3:::b", ctx: map[string][]string{"aws:ResourceTag/team": {"red"}, "aws:PrincipalTag/team": {"blue"}}, want: policy.ImplicitDeny},
		{name: "StringEquals ${aws:PrincipalTag/team} unresolvable", docs: []doc{{"p", cond("StringEquals", "aws:ResourceTag/team", `"${aws:PrincipalTag/team}"`)}},
			resource: "arn:aws:s3:::b", ctx: map[string][]string{"aws:ResourceTag/team": {"blue"}}, want: policy.ImplicitDeny,
			missing: []string{"aws:PrincipalTag/team"}, checkMis: true},
		{name: "StringEquals ${ec2:osuser}", docs: []doc{{"p", cond("StringEquals", "aws:username", `"${ec2:osuser}"`)}},
			resource: "arn:aws:s3:::b", ctx: map[string][]string{"aws:username": {"ubuntu"}, "ec2:osuser": {"ubuntu"}}, want: policy.Allowed},
		// "If AWS cannot resolve a variable this might cause the entire
		// statement to be invalid": a negated operator cannot claim "none
		// matched" for a value it could not compute.
		{name: "StringNotEquals with unresolvable variable: statement does not apply", docs: []doc{{"p", cond("StringNotEquals", "ec2:osuser", `"${aws:username}"`)}},
			resource: "arn:aws:s3:::b", ctx: map[string][]string{"ec2:osuser": {"bob"}}, want: policy.ImplicitDeny},
		{name: "StringNotEquals with resolved variable", docs: []doc{{"p", cond("StringNotEquals", "ec2:osuser", `"${aws:username}"`)}},
			resource: "arn:aws:s3:::b", ctx: map[string][]string{"ec2:osuser": {"bob"}, "aws:username": {"alice"}}, want: policy.Allowed},
		{name: "deny with unresolvable variable in Resource does not apply",
			docs: []doc{{"allow", stmtDoc(`{"Sid":"A","Effect":"Allow","Action":"*","Resource":"*"}`)},
				{"deny", stmtDoc(`{"Sid":"D","Effect":"Deny","Action":"` + get + `","Resource":"` + homeRes + `"}`)}},
			resource: "arn:aws:s3:::home/alice/x", want: policy.Allowed},
		{name: "deny with resolved variable in Resource applies",
			docs: []doc{{"allow", stmtDoc(`{"Sid":"A","Effect":"Allow","Action":"*","Resource":"*"}`)},
				{"deny", stmtDoc(`{"Sid":"D","Effect":"Deny","Action":"` + get + `","Resource":"` + homeRes + `"}`)}},
			resource: "arn:aws:s3:::home/alice/x", ctx: alice, want: policy.ExplicitDeny},

		// Versions: variables only under 2012-10-17.
		{name: "2008-10-17: variable in Resource is literal text", docs: []doc{{"p", home("2008-10-17", homeRes)}},
			resource: "arn:aws:s3:::home/alice/x", ctx: alice, want: policy.ImplicitDeny},
		{name: "2008-10-17: literal ${aws:username} matches itself", docs: []doc{{"p", home("2008-10-17", homeRes)}},
			resource: "arn:aws:s3:::home/${aws:username}/x", ctx: alice, want: policy.Allowed},
		{name: "no Version: variable in Resource is literal text", docs: []doc{{"p", home("", homeRes)}},
			resource: "arn:aws:s3:::home/alice/x", ctx: alice, want: policy.ImplicitDeny},
		{name: "no Version: literal ${aws:username} matches itself", docs: []doc{{"p", home("", homeRes)}},
			resource: "arn:aws:s3:::home/${aws:username}/x", ctx: alice, want: policy.Allowed},
		{name: "no Version: unresolved literal is not reported missing", docs: []doc{{"p", home("", homeRes)}},
			resource: "arn:aws:s3:::home/alice/x", want: policy.ImplicitDeny, missing: nil, checkMis: true},
		{name: "2008-10-17: variable in StringEquals is literal text",
			docs:     []doc{{"p", `{"Version":"2008-10-17","Statement":[{"Effect":"Allow","Action":"` + get + `","Resource":"*","Condition":{"StringEquals":{"ec2:osuser":"${aws:username}"}}}]}`}},
			resource: "arn:aws:s3:::b", ctx: map[string][]string{"ec2:osuser": {"alice"}, "aws:username": {"alice"}}, want: policy.ImplicitDeny},
		{name: "2008-10-17: literal text in StringEquals matches itself",
			docs:     []doc{{"p", `{"Version":"2008-10-17","Statement":[{"Effect":"Allow","Action":"` + get + `","Resource":"*","Condition":{"StringEquals":{"ec2:osuser":"${aws:username}"}}}]}`}},
			resource: "arn:aws:s3:::b", ctx: map[string][]string{"ec2:osuser": {"${aws:username}"}, "aws:username": {"alice"}}, want: policy.Allowed},
		{name: "no Version: variable in StringLike is literal text",
			docs:     []doc{{"p", `{"Statement":[{"Effect":"Allow","Action":"` + get + `","Resource":"*","Condition":{"StringLike":{"s3:prefix":"home/${aws:username}/*"}}}]}`}},
			resource: "arn:aws:s3:::b", ctx: map[string][]string{"s3:prefix": {"home/alice/x"}, "aws:username": {"alice"}}, want: policy.ImplicitDeny},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			set := newSet(t, tc.docs...)
			res := set.Decide(&policy.Request{Action: get, Resource: tc.resource, Context: ctxOf(tc.ctx)})
			if res.Decision != tc.want {
				t.Errorf("Decision = %v, want %v (missing %q)", res.Decision, tc.want, res.Missing)
			}
			if tc.checkMis {
				if got, want := sortedStrings(res.Missing), sortedStrings(tc.missing); !slices.Equal(got, want) {
					t.Errorf("Missing = %q, want %q", got, want)
				}
			}
		})
	}
}

// ---------------------------------------------------------------------------
// Principal / NotPrincipal (resource-based policies)
// ---------------------------------------------------------------------------

// reference_policies_elements_principal.html: "*" is everyone; an account
// ID or arn:aws:iam::ACCOUNT:root stands for the account (any principal in
// it); a user ARN is that user; several values are ORed. NotPrincipal
// matches every principal except those listed.
func TestPrincipal(t *testing.T) {
	alice := &policy.RequestPrincipal{Type: "AWS", ARN: "arn:aws:iam::123456789012:user/alice", Account: "123456789012"}
	bob := &policy.RequestPrincipal{Type: "AWS", ARN: "arn:aws:iam::123456789012:user/bob", Account: "123456789012"}
	carol := &policy.RequestPrincipal{Type: "AWS", ARN: "arn:aws:iam::999999999999:user/carol", Account: "999999999999"}
	root := &policy.RequestPrincipal{Type: "AWS", ARN: "arn:aws:iam::123456789012:root", Account: "123456789012"}
	ec2svc := &policy.RequestPrincipal{Type: "Service", ARN: "ec2.amazonaws.com"}

	allowP := func(principal string) string {
		return stmtDoc(`{"Sid":"P","Effect":"Allow","Principal":` + principal + `,"Action":"` + actSend + `","Resource":"*"}`)
	}
	allowNP := func(principal string) string {
		return stmtDoc(`{"Sid":"NP","Effect":"Allow","NotPrincipal":` + principal + `,"Action":"` + actSend + `","Resource":"*"}`)
	}
	allowAllDenyNP := stmtDoc(`{"Sid":"A","Effect":"Allow","Principal":"*","Action":"*","Resource":"*"},` +
		`{"Sid":"D","Effect":"Deny","NotPrincipal":{"AWS":["arn:aws:iam::123456789012:user/alice","arn:aws:iam::123456789012:root"]},"Action":"` + actSend + `","Resource":"*"}`)

	tests := []struct {
		name string
		doc  string
		who  *policy.RequestPrincipal
		want policy.Decision
	}{
		{"* matches a user", allowP(`"*"`), alice, policy.Allowed},
		{"* matches another account", allowP(`"*"`), carol, policy.Allowed},
		{"* matches a service", allowP(`"*"`), ec2svc, policy.Allowed},
		{"AWS * matches a user", allowP(`{"AWS":"*"}`), carol, policy.Allowed},
		{"account id matches a user of the account", allowP(`{"AWS":"123456789012"}`), alice, policy.Allowed},
		{"account id matches the account root", allowP(`{"AWS":"123456789012"}`), root, policy.Allowed},
		{"account id does not match another account", allowP(`{"AWS":"123456789012"}`), carol, policy.ImplicitDeny},
		{"account root ARN matches a user of the account", allowP(`{"AWS":"arn:aws:iam::123456789012:root"}`), bob, policy.Allowed},
		{"account root ARN does not match another account", allowP(`{"AWS":"arn:aws:iam::123456789012:root"}`), carol, policy.ImplicitDeny},
		{"user ARN matches that user", allowP(`{"AWS":"arn:aws:iam::123456789012:user/alice"}`), alice, policy.Allowed},
		{"user ARN does not match another user", allowP(`{"AWS":"arn:aws:iam::123456789012:user/alice"}`), bob, policy.ImplicitDeny},
		{"user ARN does not match the account root", allowP(`{"AWS":"arn:aws:iam::123456789012:user/alice"}`), root, policy.ImplicitDeny},
		{"list of ARNs is ORed", allowP(`{"AWS":["arn:aws:iam::123456789012:user/alice","arn:aws:iam::123456789012:user/bob"]}`), bob, policy.Allowed},
		{"list of ARNs excludes others", allowP(`{"AWS":["arn:aws:iam::123456789012:user/alice","arn:aws:iam::999999999999:root"]}`), bob, policy.ImplicitDeny},
		{"list mixing account and ARN", allowP(`{"AWS":["arn:aws:iam::123456789012:user/alice","999999999999"]}`), carol, policy.Allowed},
		{"service principal matches the service", allowP(`{"Service":"ec2.amazonaws.com"}`), ec2svc, policy.Allowed},
		{"service principal does not match a user", allowP(`{"Service":"ec2.amazonaws.com"}`), alice, policy.ImplicitDeny},
		{"AWS principal does not match a service", allowP(`{"AWS":"arn:aws:iam::123456789012:root"}`), ec2svc, policy.ImplicitDeny},
		{"several principal types", allowP(`{"AWS":"arn:aws:iam::123456789012:user/alice","Service":"ec2.amazonaws.com"}`), ec2svc, policy.Allowed},
		{"NotPrincipal allow: listed user excluded", allowNP(`{"AWS":"arn:aws:iam::123456789012:user/bob"}`), bob, policy.ImplicitDeny},
		{"NotPrincipal allow: others included", allowNP(`{"AWS":"arn:aws:iam::123456789012:user/bob"}`), alice, policy.Allowed},
		{"Deny NotPrincipal: listed user not denied", allowAllDenyNP, alice, policy.Allowed},
		{"Deny NotPrincipal: unlisted user denied", allowAllDenyNP, carol, policy.ExplicitDeny},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			set := newSet(t, doc{"rp", tc.doc})
			res := set.Decide(&policy.Request{Action: actSend, Resource: inst, Principal: tc.who})
			if res.Decision != tc.want {
				t.Errorf("Decision = %v, want %v", res.Decision, tc.want)
			}
		})
	}
}

// ---------------------------------------------------------------------------
// The seed policy
// ---------------------------------------------------------------------------

// examples/seed-policy-filled.json allows SendSSHPublicKey on any instance
// in ap-northeast-1 / 123456789012 and ec2:DescribeInstances everywhere.
// Its OpenTunnel grant names instance ARNs, but AWS authorizes OpenTunnel on
// arn:aws:ec2:REGION:ACCOUNT:instance-connect-endpoint/ID, so it never
// allows OpenTunnel.
func TestSeedPolicy(t *testing.T) {
	data, err := os.ReadFile("../examples/seed-policy-filled.json")
	if err != nil {
		t.Fatal(err)
	}
	set := policy.NewSet(compileDoc(t, "seed", string(data)))
	tests := []struct {
		name     string
		action   string
		resource string
		want     policy.Decision
		matched  []ref
	}{
		{"send on an instance in region/account", actSend, inst, policy.Allowed, []ref{{"seed", "", 0}}},
		{"send on another instance id", actSend, "arn:aws:ec2:ap-northeast-1:123456789012:instance/i-0fedcba9876543210", policy.Allowed, []ref{{"seed", "", 0}}},
		{"send, action case-insensitive", "EC2-Instance-Connect:sendsshpublickey", inst, policy.Allowed, []ref{{"seed", "", 0}}},
		{"send in another region", actSend, instUSE1, policy.ImplicitDeny, nil},
		{"send in another account", actSend, instAcct, policy.ImplicitDeny, nil},
		{"send, resource case-sensitive", actSend, "arn:aws:ec2:ap-northeast-1:123456789012:Instance/i-0123456789abcdef0", policy.ImplicitDeny, nil},
		{"send, other partition", actSend, "arn:aws-cn:ec2:ap-northeast-1:123456789012:instance/i-0123456789abcdef0", policy.ImplicitDeny, nil},
		{"send on an endpoint ARN", actSend, eice, policy.ImplicitDeny, nil},
		{"serial console not granted", actSerial, inst, policy.ImplicitDeny, nil},
		{"describe instances on *", actDescribe, "*", policy.Allowed, []ref{{"seed", "", 1}}},
		{"describe instances on an ARN", actDescribe, inst, policy.Allowed, []ref{{"seed", "", 1}}},
		{"open-tunnel on the endpoint ARN is never allowed", actTunnel, eice, policy.ImplicitDeny, nil},
		{"open-tunnel on an endpoint in another region", actTunnel, "arn:aws:ec2:us-east-1:123456789012:instance-connect-endpoint/eice-0123456789abcdef0", policy.ImplicitDeny, nil},
		{"other ec2 action", "ec2:TerminateInstances", inst, policy.ImplicitDeny, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := set.Decide(&policy.Request{Action: tc.action, Resource: tc.resource, Context: policy.NewContext()})
			if res.Decision != tc.want {
				t.Errorf("Decision = %v, want %v", res.Decision, tc.want)
			}
			if got, want := refsOf(res.Matched), sortedRefs(tc.matched); !slices.Equal(got, want) {
				t.Errorf("Matched = %v, want %v", got, want)
			}
		})
	}
}

// ---------------------------------------------------------------------------
// Allocation and concurrency
// ---------------------------------------------------------------------------

const allocPolicy = `{
  "Version": "2012-10-17",
  "Statement": [
    {
      "Sid": "Own",
      "Effect": "Allow",
      "Action": ["ec2-instance-connect:SendSSHPublicKey", "ec2-instance-connect:Send*"],
      "Resource": "arn:aws:ec2:*:123456789012:instance/${aws:PrincipalTag/instance-prefix}*",
      "Condition": {
        "StringEquals": {"ec2:osuser": ["ec2-user", "${aws:username}"]},
        "StringLike": {"aws:PrincipalTag/team": "team-*"},
        "IpAddress": {"aws:SourceIp": ["203.0.113.0/24", "2001:db8::/32"]},
        "NumericLessThanEquals": {"aws:MultiFactorAuthAge": 3600},
        "DateLessThan": {"aws:CurrentTime": "2030-01-01T00:00:00Z"},
        "Bool": {"aws:SecureTransport": true},
        "ArnLike": {"aws:PrincipalArn": "arn:aws:iam::123456789012:user/*"},
        "ForAnyValue:StringEquals": {"aws:TagKeys": ["env", "team"]}
      }
    },
    {
      "Sid": "DenyRoot",
      "Effect": "Deny",
      "Action": "ec2-instance-connect:*",
      "Resource": "*",
      "Condition": {"StringEquals": {"ec2:osuser": "root"}}
    }
  ]
}`

func allocRequest() *policy.Request {
	c := policy.NewContext()
	c.Set("aws:PrincipalTag/instance-prefix", "i-0123")
	c.Set("aws:username", "alice")
	c.Set("ec2:osuser", "alice")
	c.Set("aws:PrincipalTag/team", "team-blue")
	c.Set("aws:SourceIp", "203.0.113.7")
	c.Set("aws:MultiFactorAuthAge", "120")
	c.Set("aws:CurrentTime", "2026-05-01T12:00:00Z")
	c.Set("aws:SecureTransport", "true")
	c.Set("aws:PrincipalArn", "arn:aws:iam::123456789012:user/alice")
	c.Set("aws:TagKeys", "cost", "team")
	return &policy.Request{Action: actSend, Resource: inst, Context: c}
}

// Result documents that a reused Result makes Evaluate allocation-free.
func TestEvaluateReusedResultAllocatesNothing(t *testing.T) {
	set := newSet(t, doc{"alloc", allocPolicy})
	req := allocRequest()
	var res policy.Result
	set.Evaluate(req, &res) // let res grow
	if res.Decision != policy.Allowed {
		t.Fatalf("Decision = %v, want allowed (missing %q)", res.Decision, res.Missing)
	}
	if n := testing.AllocsPerRun(200, func() { set.Evaluate(req, &res) }); n != 0 {
		t.Errorf("Evaluate allocated %v times per run, want 0", n)
	}

	// Also when denied and when keys are missing.
	deny := allocRequest()
	deny.Context.Set("ec2:osuser", "root")
	set.Evaluate(deny, &res)
	if res.Decision != policy.ExplicitDeny {
		t.Fatalf("Decision = %v, want explicitDeny", res.Decision)
	}
	if n := testing.AllocsPerRun(200, func() { set.Evaluate(deny, &res) }); n != 0 {
		t.Errorf("Evaluate (deny) allocated %v times per run, want 0", n)
	}
	bare := &policy.Request{Action: actSend, Resource: inst, Context: policy.NewContext()}
	set.Evaluate(bare, &res)
	if res.Decision != policy.ImplicitDeny || len(res.Missing) == 0 {
		t.Fatalf("Decision = %v, Missing = %q; want implicitDeny with missing keys", res.Decision, res.Missing)
	}
	if n := testing.AllocsPerRun(200, func() { set.Evaluate(bare, &res) }); n != 0 {
		t.Errorf("Evaluate (missing keys) allocated %v times per run, want 0", n)
	}
}

// A Set is safe for concurrent use with distinct Results.
func TestEvaluateConcurrent(t *testing.T) {
	set := newSet(t, doc{"alloc", allocPolicy})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := allocRequest()
			if g%2 == 1 {
				req.Context.Set("ec2:osuser", "root")
			}
			want := policy.Allowed
			if g%2 == 1 {
				want = policy.ExplicitDeny
			}
			var res policy.Result
			for range 200 {
				set.Evaluate(req, &res)
				if res.Decision != want {
					t.Errorf("goroutine %d: Decision = %v, want %v", g, res.Decision, want)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// An Allow with NotResource naming an unresolvable variable must not grant
// every resource: the statement does not apply, like a negated condition.
func TestNotResourceUnresolvableVariableDoesNotApply(t *testing.T) {
	doc := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iam:GetUser","NotResource":"arn:aws:iam::123456789012:user/${aws:username}"}]}`
	c, err := policy.ParseAndCompile("p", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	set := policy.NewSet(c)
	req := &policy.Request{Action: "iam:GetUser", Resource: "arn:aws:iam::123456789012:user/bob"}
	if r := set.Decide(req); r.Decision != policy.ImplicitDeny || len(r.Missing) != 1 {
		t.Fatalf("no aws:username: got %v %v, want implicitDeny with aws:username missing", r.Decision, r.Missing)
	}
	if ex := set.Explain(req); ex.Decision != policy.ImplicitDeny {
		t.Fatalf("Explain disagrees: %v", ex.Decision)
	}
	req.Context = policy.NewContext()
	req.Context.Set("aws:username", "alice")
	if r := set.Decide(req); r.Decision != policy.Allowed {
		t.Fatalf("alice asking for bob: got %v, want allowed (bob is not alice)", r.Decision)
	}
}
