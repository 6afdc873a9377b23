package policy

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
)

// seedDocs feeds every policy in the repository to the fuzzers.
func seedDocs(f *testing.F) {
	f.Helper()
	files, _ := filepath.Glob("../examples/*.json")
	more, _ := filepath.Glob("testdata/bench/policies/*.json")
	for _, name := range append(files, more...) {
		if b, err := os.ReadFile(name); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(stmt(`{"Effect":"Allow","Action":"ec2-instance-connect:*","Resource":"arn:aws:ec2:*:${aws:PrincipalTag/acct, '1'}:instance/*","Condition":{"ForAnyValue:StringLike":{"aws:TagKeys":["a*","${?}"]},"NumericLessThanEquals":{"ec2-instance-connect:maxTunnelDuration":"3600"},"IpAddressIfExists":{"aws:SourceIp":["10.0.0.0/8","::1"]},"DateLessThan":{"aws:CurrentTime":"2030-01-01T00:00:00Z"},"Null":{"ec2:osuser":"false"}}}`)))
	f.Add([]byte(`{"Statement":{"Effect":"Deny","NotAction":"iam:*","NotResource":"*","Principal":{"AWS":"*"}}}`))
	f.Add([]byte(`not json`))
}

// FuzzValidate: any input yields findings, never a panic, and every
// finding is well formed. Whatever compiles evaluates the same way on the
// indexed fast path and the explaining slow path.
func FuzzValidate(f *testing.F) {
	seedDocs(f)
	f.Fuzz(func(t *testing.T, doc []byte) {
		fs := Validate(doc, ValidateOptions{})
		for _, x := range fs {
			if x.Type.rank() > 3 || x.Code == "" || x.Message == "" || (x.Type != FindingError && x.Type != FindingSecurityWarning && x.Type != FindingWarning && x.Type != FindingSuggestion) {
				t.Fatalf("malformed finding %+v", x)
			}
		}
		c, err := ParseAndCompile("fuzz", doc)
		if err != nil {
			return
		}
		set := NewSet(c)
		for _, r := range fuzzRequests {
			checkAgree(t, set, &r)
		}
	})
}

var fuzzRequests = []Request{
	{Action: "ec2-instance-connect:SendSSHPublicKey", Resource: "arn:aws:ec2:us-east-1:123456789012:instance/i-0123456789abcdef0", Context: ctxOf("ec2:osuser", "ec2-user", "aws:username", "alice", "aws:SourceIp", "10.1.2.3")},
	{Action: "ec2-instance-connect:OpenTunnel", Resource: "arn:aws:ec2:us-east-1:123456789012:instance-connect-endpoint/eice-1", Context: ctxOf("ec2-instance-connect:remotePort", "22", "aws:TagKeys", "a", "aws:TagKeys", "b")},
	{Action: "s3:GetObject", Resource: "arn:aws:s3:::bucket/key:with:colons"},
	{Action: "iam:GetUser", Resource: "arn:aws:iam::123456789012:user/alice", Context: ctxOf("aws:username", "alice")},
}

func checkAgree(t *testing.T, set *Set, r *Request) {
	t.Helper()
	fast := set.Decide(r)
	slow := set.Explain(r)
	if fast.Decision != slow.Decision || len(fast.Matched) != len(slow.Matched) {
		t.Fatalf("%s %s: Evaluate says %v %v, Explain says %v %v", r.Action, r.Resource, fast.Decision, fast.Matched, slow.Decision, slow.Matched)
	}
	for i := range fast.Matched {
		if fast.Matched[i] != slow.Matched[i] {
			t.Fatalf("matched statements differ: %v vs %v", fast.Matched, slow.Matched)
		}
	}
}

// FuzzEvaluate drives one statement's action, resource and condition with
// fuzzed text, and checks that both evaluation paths agree.
func FuzzEvaluate(f *testing.F) {
	f.Add("ec2:Describe*", "arn:aws:ec2:*:*:instance/*", "StringLike", "ec2:osuser", "ec2-*", "ec2:DescribeInstances", "arn:aws:ec2:us-east-1:1:instance/i-1", "ec2-user")
	f.Add("*", "*", "NumericLessThan", "k:n", "10", "a:b", "x", "9.5")
	f.Add("iam:*User", "arn:aws:iam::1:user/${aws:username}", "ArnLike", "aws:PrincipalArn", "arn:aws:iam::*:user/*", "IAM:GETUSER", "arn:aws:iam::1:user/bob", "arn:aws:iam::1:user/bob")
	f.Add("s3:?et*", "arn:aws:s3:::b/*", "ForAllValues:StringEquals", "aws:TagKeys", "a", "s3:GetObject", "arn:aws:s3:::b/k:1", "a")
	f.Add("a:b", "${*}", "IpAddress", "aws:SourceIp", "10.0.0.0/8", "a:b", "*", "::ffff:10.0.0.1")
	f.Add("a:b", "*", "DateGreaterThan", "aws:CurrentTime", "2020-01-01", "a:b", "*", "1700000000")
	f.Fuzz(func(t *testing.T, action, resource, op, key, value, reqAction, reqResource, reqValue string) {
		doc, err := marshalPolicy(map[string]any{
			"Version": Version2012,
			"Statement": []any{
				map[string]any{"Effect": "Allow", "Action": action, "Resource": resource, "Condition": map[string]any{op: map[string]any{key: value}}},
				map[string]any{"Effect": "Deny", "Action": "zz:Never", "NotResource": resource},
				map[string]any{"Effect": "Deny", "Action": action + "x", "Resource": reqResource, "Condition": map[string]any{"StringEquals": map[string]any{key: reqValue}}},
			},
		})
		if err != nil {
			return
		}
		c, err := ParseAndCompile("fuzz", doc)
		if err != nil {
			return
		}
		ctx := NewContext()
		ctx.Add(key, reqValue)
		ctx.Add("aws:username", reqValue)
		checkAgree(t, NewSet(c), &Request{Action: reqAction, Resource: reqResource, Context: ctx})
	})
}

// globRegexp is an independent reference for the glob matchers: the same
// rules written as a regular expression.
func globRegexp(p string, mode matchMode) *regexp.Regexp {
	var b strings.Builder
	b.WriteString(`^(?s:`)
	for i, r := range p {
		switch {
		case r == '*' && mode == modeResource && i+1 < len(p) && p[i+1] != ':':
			b.WriteString(`[^:]*`)
		case r == '*':
			b.WriteString(`.*`)
		case r == '?' && mode == modeResource:
			b.WriteString(`[^:]`)
		case r == '?':
			b.WriteString(`.`)
		default:
			b.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	b.WriteString(`)$`)
	return regexp.MustCompile(b.String())
}

// FuzzGlob checks the hand-written matchers against regular expressions.
func FuzzGlob(f *testing.F) {
	for _, s := range [][2]string{
		{"arn:aws:ec2:*:*:instance/*", "arn:aws:ec2:us-east-1:123:instance/i-1"},
		{"a*b*c", "aXbYbZc"},
		{"*:b", "a:x:b"},
		{"a*:b", "a:x:b"},
		{"a?c", "a:c"},
		{"x*y:z", "x1:y:z"},
		{"??", "日本"},
		{"*?*?", "日"},
		{"", ""},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, p, s string) {
		if !utf8.ValidString(p) || !utf8.ValidString(s) || len(p) > 64 {
			return
		}
		for _, mode := range []matchMode{modePlain, modeResource} {
			pat := compilePattern(p, mode, false, false)
			if mode == modeResource {
				pat = compileResource(p, false)
			}
			got, _ := pat.match(s, nil)
			want := globRegexp(p, mode).MatchString(s)
			if got != want {
				t.Fatalf("mode %d: match(%q, %q) = %v, regexp says %v", mode, p, s, got, want)
			}
		}
	})
}

// FuzzResourceSegments checks the segment walk of Resource patterns (with
// policy variables) against the general matcher over the whole pattern.
func FuzzResourceSegments(f *testing.F) {
	f.Add("arn:aws:ec2:*:123:instance/${aws:username}", "alice", "arn:aws:ec2:us-east-1:123:instance/alice")
	f.Add("arn:aws:iam::*:user/${aws:username}/*", "a:b", "arn:aws:iam::1:user/a:b/x:y")
	f.Add("arn:${aws:username}:s3:::b/*", "aws", "arn:aws:s3:::b/k:1")
	f.Add("a*:${aws:username}?:c", "x", "a:1:x:y:c")
	f.Fuzz(func(t *testing.T, p, user, s string) {
		if len(p) > 64 {
			return
		}
		ctx := NewContext()
		ctx.Set("aws:username", user)
		segs := compileResource(p, true)
		whole := compilePattern(p, modeResource, true, false)
		// Which unresolvable variable gets reported may differ when the
		// walk decides before reaching it; the answer may not.
		got, gm := segs.match(s, ctx)
		want, wm := whole.match(s, ctx)
		if got != want || (got && gm != "") {
			t.Fatalf("pattern %q user %q value %q: segments say %v %q, whole says %v %q", p, user, s, got, gm, want, wm)
		}
	})
}
