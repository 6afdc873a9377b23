package policy_test

// Action and Resource matching, from reference_policies_elements_action.html,
// _notaction.html, _resource.html and _notresource.html.

import (
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"

	"github.com/kaginashi/kaginashi/policy"
)

func quoteList(vs []string) string {
	q := make([]string, len(vs))
	for i, v := range vs {
		q[i] = `"` + v + `"`
	}
	return "[" + strings.Join(q, ",") + "]"
}

// Action: "service:action"; the prefix and the action name are
// case-insensitive ("EC2:StartInstances" is the same as
// "ec2:startinstances"); * matches any run of characters and ? one
// character, anywhere in the name; "*" alone is every action. NotAction
// with Allow allows every action except those listed.
func TestActionMatching(t *testing.T) {
	tests := []struct {
		name     string
		patterns []string
		not      bool
		action   string
		want     bool
	}{
		{"exact", []string{actSend}, false, actSend, true},
		{"other action", []string{actSend}, false, actSerial, false},
		{"prefix and name case-insensitive in policy", []string{"EC2-Instance-Connect:sendsshpublickey"}, false, actSend, true},
		{"prefix and name case-insensitive in request", []string{actSend}, false, "EC2-INSTANCE-CONNECT:SENDSSHPUBLICKEY", true},
		{"case-insensitive, non-catalogue action", []string{"S3:GetObject"}, false, "s3:getobject", true},
		{"* matches everything", []string{"*"}, false, actTunnel, true},
		{"* matches a non-catalogue action", []string{"*"}, false, "dynamodb:GetItem", true},
		{"service:*", []string{"ec2-instance-connect:*"}, false, actTunnel, true},
		{"service:* does not match another service", []string{"ec2-instance-connect:*"}, false, actDescribe, false},
		{"ec2:* does not match ec2-instance-connect", []string{"ec2:*"}, false, actSend, false},
		{"ec2:* matches ec2", []string{"ec2:*"}, false, actDescribe, true},
		{"trailing *", []string{"ec2-instance-connect:Send*"}, false, actSerial, true},
		{"trailing * not matching", []string{"ec2-instance-connect:Send*"}, false, actTunnel, false},
		{"leading *", []string{"ec2-instance-connect:*PublicKey"}, false, actSend, true},
		{"leading * not matching", []string{"ec2-instance-connect:*PublicKey"}, false, actTunnel, false},
		{"middle *", []string{"ec2-instance-connect:Send*Console*"}, false, actSerial, true},
		{"middle * not matching", []string{"ec2-instance-connect:Send*Console*"}, false, actSend, false},
		{"* matches empty", []string{"ec2-instance-connect:SendSSH*PublicKey"}, false, actSend, true},
		{"wildcard pattern is case-insensitive", []string{"ec2:describe*"}, false, "EC2:DescribeInstances", true},
		{"wildcard pattern, request upper case", []string{"EC2:Describe*Instances"}, false, "ec2:describeinstances", true},
		{"? one character at the end", []string{"ec2-instance-connect:SendSSHPublicKe?"}, false, actSend, true},
		{"? one character at the start", []string{"ec2-instance-connect:?endSSHPublicKey"}, false, actSend, true},
		{"? in the middle", []string{"ec2:Describe?nstances"}, false, actDescribe, true},
		{"? does not match zero characters", []string{"ec2-instance-connect:SendSSHPublicKey?"}, false, actSend, false},
		{"? does not match two characters", []string{"ec2:Describ?nstances"}, false, actDescribe, false},
		{"* and ? together", []string{"ec2:*Instance?"}, false, actDescribe, true},
		{"not a prefix match", []string{"ec2:Describe"}, false, actDescribe, false},
		{"not a suffix match", []string{"ec2:Instances"}, false, actDescribe, false},
		{"list ORed", []string{actDescribe, actTunnel}, false, actTunnel, true},
		{"list ORed, none", []string{actDescribe, actTunnel}, false, actSend, false},
		{"non-catalogue action with wildcard", []string{"s3:Get*"}, false, "s3:GetObject", true},
		{"non-catalogue action, not matching", []string{"s3:Get*"}, false, "s3:PutObject", false},

		{"NotAction: listed action excluded", []string{actDescribe}, true, actDescribe, false},
		{"NotAction: other action included", []string{actDescribe}, true, actSend, true},
		{"NotAction: non-catalogue action included", []string{actDescribe}, true, "s3:GetObject", true},
		{"NotAction: case-insensitive exclusion", []string{"EC2:describeINSTANCES"}, true, actDescribe, false},
		{"NotAction: wildcard exclusion", []string{"ec2-instance-connect:*"}, true, actTunnel, false},
		{"NotAction: wildcard, other service", []string{"ec2-instance-connect:*"}, true, actDescribe, true},
		{"NotAction: list, excluded", []string{"ec2:Describe*", actTunnel}, true, actTunnel, false},
		{"NotAction: list, included", []string{"ec2:Describe*", actTunnel}, true, actSend, true},
		{"NotAction: * excludes everything", []string{"*"}, true, actSend, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			elem := "Action"
			if tc.not {
				elem = "NotAction"
			}
			set := newSet(t, doc{"a", stmtDoc(`{"Sid":"S","Effect":"Allow","` + elem + `":` + quoteList(tc.patterns) + `,"Resource":"*"}`)})
			want := policy.ImplicitDeny
			if tc.want {
				want = policy.Allowed
			}
			res := set.Decide(&policy.Request{Action: tc.action, Resource: inst})
			if res.Decision != want {
				t.Errorf("%s %v vs %s: Decision = %v, want %v", elem, tc.patterns, tc.action, res.Decision, want)
			}
			// The same with Deny: an explicit deny exactly when the Allow
			// would have applied.
			dset := newSet(t, doc{"d", stmtDoc(`{"Sid":"S","Effect":"Deny","` + elem + `":` + quoteList(tc.patterns) + `,"Resource":"*"}`)})
			dwant := policy.ImplicitDeny
			if tc.want {
				dwant = policy.ExplicitDeny
			}
			if got := dset.Decide(&policy.Request{Action: tc.action, Resource: inst}).Decision; got != dwant {
				t.Errorf("Deny %s %v vs %s: Decision = %v, want %v", elem, tc.patterns, tc.action, got, dwant)
			}
		})
	}
}

// Deny with NotAction denies everything except the listed actions; Allow
// with NotAction is not a deny of the listed ones.
func TestNotActionCombinations(t *testing.T) {
	set := newSet(t,
		doc{"allow", stmtDoc(`{"Sid":"A","Effect":"Allow","Action":"*","Resource":"*"}`)},
		doc{"deny", stmtDoc(`{"Sid":"D","Effect":"Deny","NotAction":"ec2:Describe*","Resource":"*"}`)},
	)
	for _, tc := range []struct {
		action string
		want   policy.Decision
	}{
		{actDescribe, policy.Allowed},
		{"ec2:DescribeImages", policy.Allowed},
		{actSend, policy.ExplicitDeny},
		{"s3:GetObject", policy.ExplicitDeny},
	} {
		if got := set.Decide(&policy.Request{Action: tc.action, Resource: "*"}).Decision; got != tc.want {
			t.Errorf("%s: Decision = %v, want %v", tc.action, got, tc.want)
		}
	}
	// Allow NotAction X plus Allow X: X is still allowed (NotAction is not a
	// deny).
	set = newSet(t, doc{"p", stmtDoc(
		`{"Sid":"NA","Effect":"Allow","NotAction":"` + actTunnel + `","Resource":"*"},` +
			`{"Sid":"T","Effect":"Allow","Action":"` + actTunnel + `","Resource":"` + eice + `"}`)})
	if got := set.Decide(&policy.Request{Action: actTunnel, Resource: eice}).Decision; got != policy.Allowed {
		t.Errorf("OpenTunnel with its own Allow: %v, want allowed", got)
	}
	if got := set.Decide(&policy.Request{Action: actTunnel, Resource: inst}).Decision; got != policy.ImplicitDeny {
		t.Errorf("OpenTunnel elsewhere: %v, want implicitDeny", got)
	}
}

// Resource: an ARN, matched case-sensitively. "You can use wildcard
// characters (* and ?) within any ARN segment (the parts separated by
// colons)... If the * wildcard is the last character of a resource ARN
// segment, it can expand to match beyond the colon boundaries." Otherwise
// wildcards stay inside their segment. "*" alone is every resource.
// NotResource matches every resource except those listed.
func TestResourceMatching(t *testing.T) {
	const (
		s3obj   = "arn:aws:s3:::bucket/a/b.txt"
		logStrm = "arn:aws:logs:us-east-1:123456789012:log-group:app:log-stream:s1"
	)
	tests := []struct {
		name     string
		patterns []string
		not      bool
		resource string
		want     bool
	}{
		{"exact", []string{inst}, false, inst, true},
		{"exact, other id", []string{inst}, false, "arn:aws:ec2:ap-northeast-1:123456789012:instance/i-0000000000000000", false},
		{"case-sensitive resource part", []string{inst}, false, "arn:aws:ec2:ap-northeast-1:123456789012:instance/I-0123456789ABCDEF0", false},
		{"case-sensitive resource type", []string{"arn:aws:ec2:ap-northeast-1:123456789012:Instance/*"}, false, inst, false},
		{"case-sensitive region", []string{"arn:aws:ec2:AP-NORTHEAST-1:123456789012:instance/*"}, false, inst, false},
		{"case-sensitive prefix", []string{"ARN:AWS:ec2:ap-northeast-1:123456789012:instance/*"}, false, inst, false},
		{"lone *", []string{"*"}, false, inst, true},
		{"lone * matches request *", []string{"*"}, false, "*", true},
		{"ARN does not match request *", []string{"arn:aws:ec2:*:*:*"}, false, "*", false},
		{"not a prefix match", []string{"arn:aws:ec2:ap-northeast-1:123456789012:instance/i-0123"}, false, inst, false},

		// * and ? in each segment.
		{"* partition", []string{"arn:*:ec2:ap-northeast-1:123456789012:instance/*"}, false, inst, true},
		{"? partition", []string{"arn:aw?:ec2:ap-northeast-1:123456789012:instance/*"}, false, inst, true},
		{"? partition, aws-cn", []string{"arn:aws-?n:ec2:ap-northeast-1:123456789012:instance/*"}, false, "arn:aws-cn:ec2:ap-northeast-1:123456789012:instance/i-1", true},
		{"? partition, not aws", []string{"arn:aws-?n:ec2:ap-northeast-1:123456789012:instance/*"}, false, inst, false},
		{"* region", []string{"arn:aws:ec2:*:123456789012:instance/*"}, false, inst, true},
		{"* region, other account", []string{"arn:aws:ec2:*:123456789012:instance/*"}, false, instAcct, false},
		{"* inside region", []string{"arn:aws:ec2:ap-*-1:123456789012:instance/*"}, false, inst, true},
		{"* inside region, not matching", []string{"arn:aws:ec2:ap-*-1:123456789012:instance/*"}, false, "arn:aws:ec2:ap-northeast-2:123456789012:instance/i-1", false},
		{"? region", []string{"arn:aws:ec2:ap-northeast-?:123456789012:instance/*"}, false, inst, true},
		{"? region needs one char", []string{"arn:aws:ec2:ap-northeast-?:123456789012:instance/*"}, false, "arn:aws:ec2:ap-northeast-:123456789012:instance/i-1", false},
		{"* account", []string{"arn:aws:ec2:ap-northeast-1:*:instance/*"}, false, instAcct, true},
		{"* account, other region", []string{"arn:aws:ec2:ap-northeast-1:*:instance/*"}, false, instUSE1, false},
		{"??? in account", []string{"arn:aws:ec2:ap-northeast-1:123456789???:instance/*"}, false, inst, true},
		{"? account, exact length", []string{"arn:aws:ec2:ap-northeast-1:12345678901?:instance/*"}, false, inst, true},
		{"? account, too short", []string{"arn:aws:ec2:ap-northeast-1:1234567890?:instance/*"}, false, inst, false},
		{"* resource id", []string{"arn:aws:ec2:ap-northeast-1:123456789012:instance/i-*"}, false, inst, true},
		{"* inside resource id", []string{"arn:aws:ec2:ap-northeast-1:123456789012:instance/i-0123*cdef0"}, false, inst, true},
		{"* inside resource id, wrong tail", []string{"arn:aws:ec2:ap-northeast-1:123456789012:instance/i-0123*cdef1"}, false, inst, false},
		{"? resource id", []string{"arn:aws:ec2:ap-northeast-1:123456789012:instance/i-0123456789abcdef?"}, false, inst, true},
		{"? resource, one multibyte char", []string{"arn:aws:s3:::bucket/?"}, false, "arn:aws:s3:::bucket/名", true},
		{"instance/* is not instance-connect-endpoint", []string{"arn:aws:ec2:ap-northeast-1:123456789012:instance/*"}, false, eice, false},
		{"instance* covers instance-connect-endpoint", []string{"arn:aws:ec2:ap-northeast-1:123456789012:instance*"}, false, eice, true},
		{"* in resource crosses /", []string{"arn:aws:s3:::bucket/*"}, false, s3obj, true},
		{"* in the middle crosses /", []string{"arn:aws:s3:::bucket/*.txt"}, false, s3obj, true},
		{"every segment wildcarded", []string{"arn:*:ec2:*:*:*"}, false, inst, true},
		{"several wildcards in several segments", []string{"arn:a*:ec2:ap-*-?:1*2:instance/i-*0"}, false, inst, true},
		{"empty region and account", []string{"arn:aws:s3:::bucket/*"}, false, "arn:aws:s3:::bucket/x", true},
		{"* matches empty region and account", []string{"arn:aws:s3:*:*:bucket/*"}, false, "arn:aws:s3:::bucket/x", true},
		{"bucket vs bucket/*", []string{"arn:aws:s3:::bucket/*"}, false, "arn:aws:s3:::bucket", false},
		{"bucket* covers both", []string{"arn:aws:s3:::bucket*"}, false, "arn:aws:s3:::bucket", true},
		{"list ORed", []string{instUSE1, inst}, false, inst, true},
		{"list ORed, none", []string{instUSE1, instAcct}, false, inst, false},

		// Wildcards do not cross colons, except a * that ends a segment.
		{"* not at segment end does not cross a colon", []string{"arn:aws:ec2:ap-*2:instance/i-0123456789abcdef0"}, false, inst, false},
		{"* not at segment end, within its segment", []string{"arn:aws:ec2:ap-*1:123456789012:instance/i-0123456789abcdef0"}, false, inst, true},
		{"? does not match a colon", []string{"arn:aws:ec2:ap-northeast-1?123456789012:instance/i-0123456789abcdef0"}, false, inst, false},
		{"? does not match a colon in the resource part", []string{"arn:aws:logs:us-east-1:123456789012:log-group:app?log-stream:s1"}, false, logStrm, false},
		{"* inside resource segment does not cross a colon", []string{"arn:aws:logs:us-east-1:123456789012:log-group:a*p:log-stream:s1"}, false, "arn:aws:logs:us-east-1:123456789012:log-group:a:x:p:log-stream:s1", false},
		{"* inside resource segment, within its segment", []string{"arn:aws:logs:us-east-1:123456789012:log-group:a*p:log-stream:s1"}, false, logStrm, true},
		{"trailing * of account segment spans the rest", []string{"arn:aws:ec2:ap-northeast-1:*"}, false, inst, true},
		{"trailing * of region segment spans region and account", []string{"arn:aws:ec2:*:instance/i-0123456789abcdef0"}, false, inst, true},
		{"trailing * of region prefix spans", []string{"arn:aws:ec2:ap-*:instance/*"}, false, inst, true},
		{"trailing * spanning still needs the literal tail", []string{"arn:aws:ec2:*:volume/*"}, false, inst, false},
		{"trailing * of partition spans everything", []string{"arn:*"}, false, inst, true},
		{"trailing * in resource spans colons", []string{"arn:aws:logs:us-east-1:123456789012:log-group:app*"}, false, logStrm, true},
		{"whole * resource segment spans colons", []string{"arn:aws:logs:us-east-1:123456789012:log-group:*"}, false, logStrm, true},
		{"* segment before literal segments", []string{"arn:aws:logs:us-east-1:123456789012:log-group:*:log-stream:s1"}, false, logStrm, true},
		{"no wildcard: extra segment in request", []string{"arn:aws:logs:us-east-1:123456789012:log-group:app"}, false, logStrm, false},
		{"no wildcard: missing segment in request", []string{logStrm}, false, "arn:aws:logs:us-east-1:123456789012:log-group:app", false},

		// NotResource.
		{"NotResource: listed excluded", []string{"arn:aws:ec2:ap-northeast-1:123456789012:instance/*"}, true, inst, false},
		{"NotResource: unlisted included", []string{"arn:aws:ec2:ap-northeast-1:123456789012:instance/*"}, true, eice, true},
		{"NotResource: request *", []string{"arn:aws:ec2:ap-northeast-1:123456789012:instance/*"}, true, "*", true},
		{"NotResource: case-sensitive", []string{"arn:aws:ec2:ap-northeast-1:123456789012:Instance/*"}, true, inst, true},
		{"NotResource: list", []string{instUSE1, "arn:aws:ec2:*:*:instance-connect-endpoint/*"}, true, eice, false},
		{"NotResource: lone * excludes all", []string{"*"}, true, inst, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			elem := "Resource"
			if tc.not {
				elem = "NotResource"
			}
			set := newSet(t, doc{"r", stmtDoc(`{"Sid":"S","Effect":"Allow","Action":"*","` + elem + `":` + quoteList(tc.patterns) + `}`)})
			want := policy.ImplicitDeny
			if tc.want {
				want = policy.Allowed
			}
			if got := set.Decide(&policy.Request{Action: actSend, Resource: tc.resource}).Decision; got != want {
				t.Errorf("%s %v vs %s: Decision = %v, want %v", elem, tc.patterns, tc.resource, got, want)
			}
		})
	}
}

// Deny with NotResource denies every resource but the listed ones.
func TestDenyNotResource(t *testing.T) {
	set := newSet(t,
		doc{"allow", stmtDoc(`{"Sid":"A","Effect":"Allow","Action":"*","Resource":"*"}`)},
		doc{"fence", stmtDoc(`{"Sid":"F","Effect":"Deny","Action":"` + actSend + `","NotResource":"arn:aws:ec2:` + region + `:` + acct + `:instance/*"}`)},
	)
	for _, tc := range []struct {
		action, resource string
		want             policy.Decision
	}{
		{actSend, inst, policy.Allowed},
		{actSend, instUSE1, policy.ExplicitDeny},
		{actSend, instAcct, policy.ExplicitDeny},
		{actSend, eice, policy.ExplicitDeny},
		{actTunnel, eice, policy.Allowed}, // the fence is for SendSSHPublicKey only
	} {
		if got := set.Decide(&policy.Request{Action: tc.action, Resource: tc.resource}).Decision; got != tc.want {
			t.Errorf("%s on %s: Decision = %v, want %v", tc.action, tc.resource, got, tc.want)
		}
	}
}

// ---------------------------------------------------------------------------
// Differential tests against reference matchers written from the documented
// rules (regular expressions), over small alphabets that make the corner
// cases (colons, empty segments, adjacent wildcards) common.
// ---------------------------------------------------------------------------

// resourceRegexp is the documented Resource rule: * is any run of
// characters and ? one character, inside a colon-separated segment; a *
// that is the last character of a segment may run on beyond colons.
func resourceRegexp(p string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString(`^`)
	for i, seg := range strings.Split(p, ":") {
		if i > 0 {
			b.WriteString(":")
		}
		for j, c := range seg {
			switch {
			case c == '*' && j == len(seg)-1:
				b.WriteString(`.*`)
			case c == '*':
				b.WriteString(`[^:]*`)
			case c == '?':
				b.WriteString(`[^:]`)
			default:
				b.WriteString(regexp.QuoteMeta(string(c)))
			}
		}
	}
	b.WriteString(`$`)
	return regexp.MustCompile(b.String())
}

// plainRegexp is StringLike's rule (and Action's, case-insensitively):
// * is any run of characters, ? any one character.
func plainRegexp(p string, fold bool) string {
	var b strings.Builder
	b.WriteString(`(?s)`)
	if fold {
		b.WriteString(`(?i)`)
	}
	b.WriteString(`^`)
	for _, c := range p {
		switch c {
		case '*':
			b.WriteString(`.*`)
		case '?':
			b.WriteString(`.`)
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	b.WriteString(`$`)
	return b.String()
}

func randString(r *rand.Rand, alphabet string, minLen, maxLen int) string {
	n := minLen + r.IntN(maxLen-minLen+1)
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[r.IntN(len(alphabet))]
	}
	return string(b)
}

func allowedBy(t *testing.T, stmt string, req *policy.Request) bool {
	t.Helper()
	set := newSet(t, doc{"x", stmtDoc(stmt)})
	return set.Decide(req).Decision == policy.Allowed
}

func TestResourceMatchingDifferential(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	fails := 0
	for i := 0; i < 6000 && fails < 10; i++ {
		pat := randString(r, "ab:*?", 1, 9)
		val := randString(r, "ab:", 0, 9)
		want := resourceRegexp(pat).MatchString(val)
		got := allowedBy(t, `{"Effect":"Allow","Action":"*","Resource":"`+pat+`"}`,
			&policy.Request{Action: actSend, Resource: val})
		if got != want {
			fails++
			t.Errorf("Resource %q vs %q: matched %v, want %v", pat, val, got, want)
		}
	}
}

func TestStringLikeDifferential(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	fails := 0
	for i := 0; i < 4000 && fails < 10; i++ {
		pat := randString(r, "ab:/*?", 1, 8)
		val := randString(r, "ab:/", 0, 8)
		want := regexp.MustCompile(plainRegexp(pat, false)).MatchString(val)
		got := allowedBy(t, `{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"StringLike":{"s3:prefix":"`+pat+`"}}}`,
			&policy.Request{Action: actSend, Resource: inst, Context: ctxOf(kv("s3:prefix", val))})
		if got != want {
			fails++
			t.Errorf("StringLike %q vs %q: matched %v, want %v", pat, val, got, want)
		}
	}
}

func TestActionMatchingDifferential(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	fails := 0
	for i := 0; i < 3000 && fails < 10; i++ {
		pat := "svc:" + randString(r, "aB*?", 1, 7)
		act := "SvC:" + randString(r, "Ab", 1, 7)
		want := regexp.MustCompile(plainRegexp(pat, true)).MatchString(act)
		got := allowedBy(t, `{"Effect":"Allow","Action":"`+pat+`","Resource":"*"}`,
			&policy.Request{Action: act, Resource: "*"})
		if got != want {
			fails++
			t.Errorf("Action %q vs %q: matched %v, want %v", pat, act, got, want)
		}
	}
}

// ArnLike compares the six components of two ARNs one by one; the sixth
// (the resource) is everything after the fifth colon.
func TestArnLikeDifferential(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	arn := func(alpha, last string) string {
		parts := []string{"arn"}
		for range 4 {
			parts = append(parts, randString(r, alpha, 0, 3))
		}
		return strings.Join(append(parts, randString(r, last, 0, 5)), ":")
	}
	fails := 0
	for i := 0; i < 4000 && fails < 10; i++ {
		pat := arn("ab*?", "ab:*?")
		val := arn("ab", "ab:")
		pp, vp := strings.SplitN(pat, ":", 6), strings.SplitN(val, ":", 6)
		want := true
		for j := range 6 {
			if !regexp.MustCompile(plainRegexp(pp[j], false)).MatchString(vp[j]) {
				want = false
			}
		}
		got := allowedBy(t, `{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"ArnLike":{"aws:SourceArn":"`+pat+`"}}}`,
			&policy.Request{Action: actSend, Resource: inst, Context: ctxOf(kv("aws:SourceArn", val))})
		if got != want {
			fails++
			t.Errorf("ArnLike %q vs %q: matched %v, want %v", pat, val, got, want)
		}
	}
}
