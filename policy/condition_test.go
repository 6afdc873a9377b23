package policy_test

// Condition operators, set qualifiers and condition logic, from
// reference_policies_elements_condition_operators.html,
// reference_policies_condition-logic-multiple-context-keys-or-values.html and
// reference_policies_condition-single-vs-multi-valued-context-keys.html.

import (
	"testing"

	"github.com/kaginashi/kaginashi/policy"
)

// condCase is one Condition block evaluated against one request context. The
// block sits in an Allow for SendSSHPublicKey on "*", so the condition holds
// exactly when the request is allowed.
type condCase struct {
	name string
	cond string // the Condition element's JSON object
	ctx  map[string][]string
	want bool
}

// one builds {"op": {"key": value}}; value is raw JSON.
func one(op, key, value string) string {
	return `{"` + op + `":{"` + key + `":` + value + `}}`
}

// kv builds a one-key context map.
func kv(key string, values ...string) map[string][]string {
	return map[string][]string{key: values}
}

func condPolicy(version, cond string) string {
	v := ""
	if version != "" {
		v = `"Version":"` + version + `",`
	}
	return `{` + v + `"Statement":[{"Sid":"C","Effect":"Allow","Action":"` + actSend + `","Resource":"*","Condition":` + cond + `}]}`
}

func runCondCases(t *testing.T, cases []condCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			set := newSet(t, doc{"c", condPolicy("2012-10-17", tc.cond)})
			res := set.Decide(&policy.Request{Action: actSend, Resource: inst, Context: ctxOf(tc.ctx)})
			want := policy.ImplicitDeny
			if tc.want {
				want = policy.Allowed
			}
			if res.Decision != want {
				t.Errorf("condition %s with context %v: Decision = %v, want %v", tc.cond, tc.ctx, res.Decision, want)
			}
		})
	}
}

// opSpec describes one base operator with a policy value, a request value
// for which the condition holds and one for which it does not.
type opSpec struct {
	op, key, value string // value is raw JSON
	yes, no        string
	negated        bool // the operator is a negated one (Not...)
}

// opSpecs covers every condition operator but Null.
var opSpecs = []opSpec{
	{"StringEquals", "ec2:osuser", `"ec2-user"`, "ec2-user", "EC2-user", false},
	{"StringNotEquals", "ec2:osuser", `"root"`, "ec2-user", "root", true},
	{"StringEqualsIgnoreCase", "ec2:osuser", `"EC2-User"`, "ec2-user", "ubuntu", false},
	{"StringNotEqualsIgnoreCase", "ec2:osuser", `"ROOT"`, "ec2-user", "root", true},
	{"StringLike", "ec2:osuser", `"ec2-*"`, "ec2-user", "ubuntu", false},
	{"StringNotLike", "ec2:osuser", `"r??t"`, "ec2-user", "root", true},
	{"NumericEquals", "aws:MultiFactorAuthAge", `3600`, "3600", "3601", false},
	{"NumericNotEquals", "aws:MultiFactorAuthAge", `0`, "5", "0", true},
	{"NumericLessThan", "aws:MultiFactorAuthAge", `3600`, "3599", "3600", false},
	{"NumericLessThanEquals", "aws:MultiFactorAuthAge", `3600`, "3600", "3601", false},
	{"NumericGreaterThan", "aws:MultiFactorAuthAge", `10`, "11", "10", false},
	{"NumericGreaterThanEquals", "aws:MultiFactorAuthAge", `10`, "10", "9", false},
	{"DateEquals", "aws:CurrentTime", `"2026-01-01T00:00:00Z"`, "2026-01-01T00:00:00Z", "2026-01-01T00:00:01Z", false},
	{"DateNotEquals", "aws:CurrentTime", `"2026-01-01T00:00:00Z"`, "2026-01-01T00:00:01Z", "2026-01-01T00:00:00Z", true},
	{"DateLessThan", "aws:CurrentTime", `"2026-01-01T00:00:00Z"`, "2025-12-31T23:59:59Z", "2026-01-01T00:00:00Z", false},
	{"DateLessThanEquals", "aws:CurrentTime", `"2026-01-01T00:00:00Z"`, "2026-01-01T00:00:00Z", "2026-01-01T00:00:01Z", false},
	{"DateGreaterThan", "aws:CurrentTime", `"2026-01-01T00:00:00Z"`, "2026-01-01T00:00:01Z", "2026-01-01T00:00:00Z", false},
	{"DateGreaterThanEquals", "aws:CurrentTime", `"2026-01-01T00:00:00Z"`, "2026-01-01T00:00:00Z", "2025-12-31T23:59:59Z", false},
	{"Bool", "aws:SecureTransport", `true`, "true", "false", false},
	{"BinaryEquals", "kaginashi:Blob", `"QmluYXJ5VmFsdWVJbkJhc2U2NA=="`, "QmluYXJ5VmFsdWVJbkJhc2U2NA==", "T3RoZXJWYWx1ZQ==", false},
	{"IpAddress", "aws:SourceIp", `"203.0.113.0/24"`, "203.0.113.9", "198.51.100.9", false},
	{"NotIpAddress", "aws:SourceIp", `"203.0.113.0/24"`, "198.51.100.9", "203.0.113.9", true},
	{"ArnEquals", "aws:SourceArn", `"arn:aws:iam::123456789012:role/admin"`, "arn:aws:iam::123456789012:role/admin", "arn:aws:iam::123456789012:role/dev", false},
	{"ArnLike", "aws:PrincipalArn", `"arn:aws:iam::123456789012:role/team-*"`, "arn:aws:iam::123456789012:role/team-a", "arn:aws:iam::123456789012:role/dev", false},
	{"ArnNotEquals", "aws:SourceArn", `"arn:aws:iam::123456789012:role/admin"`, "arn:aws:iam::123456789012:role/dev", "arn:aws:iam::123456789012:role/admin", true},
	{"ArnNotLike", "aws:PrincipalArn", `"arn:aws:iam::*:role/admin"`, "arn:aws:iam::123456789012:role/dev", "arn:aws:iam::999999999999:role/admin", true},
}

// TestConditionOperatorMatrix checks every operator and its IfExists form
// for a value that satisfies it, one that does not, and a missing key:
//   - a missing key makes ordinary operators false and negated operators
//     (StringNotEquals, NotIpAddress, ArnNotLike, ...) true;
//   - "...IfExists": if the key is present, evaluate as the base operator;
//     if it is absent, the condition is true.
func TestConditionOperatorMatrix(t *testing.T) {
	var cases []condCase
	for _, s := range opSpecs {
		for _, ifExists := range []bool{false, true} {
			op := s.op
			if ifExists {
				op += "IfExists"
			}
			cond := one(op, s.key, s.value)
			cases = append(cases,
				condCase{op + "/holds", cond, kv(s.key, s.yes), true},
				condCase{op + "/fails", cond, kv(s.key, s.no), false},
				condCase{op + "/missing key", cond, nil, s.negated || ifExists},
				condCase{op + "/other key only", cond, kv("aws:username", s.yes), s.negated || ifExists},
			)
		}
	}
	if len(cases) != 26*2*4 {
		t.Fatalf("matrix has %d rows, want %d", len(cases), 26*2*4)
	}
	runCondCases(t, cases)
}

func TestStringOperators(t *testing.T) {
	runCondCases(t, []condCase{
		{"StringEquals exact", one("StringEquals", "ec2:osuser", `"ec2-user"`), kv("ec2:osuser", "ec2-user"), true},
		{"StringEquals is case-sensitive", one("StringEquals", "ec2:osuser", `"ec2-user"`), kv("ec2:osuser", "EC2-USER"), false},
		{"StringEquals is not a prefix match", one("StringEquals", "ec2:osuser", `"ec2"`), kv("ec2:osuser", "ec2-user"), false},
		{"StringEquals: * is literal", one("StringEquals", "ec2:osuser", `"ec2-*"`), kv("ec2:osuser", "ec2-user"), false},
		{"StringEquals: * matches literal *", one("StringEquals", "ec2:osuser", `"ec2-*"`), kv("ec2:osuser", "ec2-*"), true},
		{"StringEquals: ? is literal", one("StringEquals", "ec2:osuser", `"r??t"`), kv("ec2:osuser", "root"), false},
		{"StringEquals values ORed, second", one("StringEquals", "ec2:osuser", `["ec2-user","ubuntu"]`), kv("ec2:osuser", "ubuntu"), true},
		{"StringEquals values ORed, none", one("StringEquals", "ec2:osuser", `["ec2-user","ubuntu"]`), kv("ec2:osuser", "root"), false},
		{"StringEquals number written unquoted", one("StringEquals", "aws:PrincipalAccount", `123456789012`), kv("aws:PrincipalAccount", "123456789012"), true},
		{"StringEquals unicode", one("StringEquals", "aws:PrincipalTag/name", `"ユーザー"`), kv("aws:PrincipalTag/name", "ユーザー"), true},

		{"StringNotEquals differs", one("StringNotEquals", "ec2:osuser", `"root"`), kv("ec2:osuser", "ec2-user"), true},
		{"StringNotEquals equal", one("StringNotEquals", "ec2:osuser", `"root"`), kv("ec2:osuser", "root"), false},
		{"StringNotEquals is case-sensitive", one("StringNotEquals", "ec2:osuser", `"root"`), kv("ec2:osuser", "ROOT"), true},
		{"StringNotEquals NOR: first", one("StringNotEquals", "ec2:osuser", `["root","admin"]`), kv("ec2:osuser", "root"), false},
		{"StringNotEquals NOR: second", one("StringNotEquals", "ec2:osuser", `["root","admin"]`), kv("ec2:osuser", "admin"), false},
		{"StringNotEquals NOR: neither", one("StringNotEquals", "ec2:osuser", `["root","admin"]`), kv("ec2:osuser", "ubuntu"), true},

		{"StringEqualsIgnoreCase", one("StringEqualsIgnoreCase", "ec2:osuser", `"EC2-User"`), kv("ec2:osuser", "ec2-USER"), true},
		{"StringEqualsIgnoreCase differs", one("StringEqualsIgnoreCase", "ec2:osuser", `"EC2-User"`), kv("ec2:osuser", "ec2-users"), false},
		{"StringEqualsIgnoreCase: * is literal", one("StringEqualsIgnoreCase", "ec2:osuser", `"EC2-*"`), kv("ec2:osuser", "ec2-user"), false},
		{"StringEqualsIgnoreCase values ORed", one("StringEqualsIgnoreCase", "ec2:osuser", `["Root","Ubuntu"]`), kv("ec2:osuser", "UBUNTU"), true},
		{"StringNotEqualsIgnoreCase equal ignoring case", one("StringNotEqualsIgnoreCase", "ec2:osuser", `"Root"`), kv("ec2:osuser", "rOOT"), false},
		{"StringNotEqualsIgnoreCase differs", one("StringNotEqualsIgnoreCase", "ec2:osuser", `"Root"`), kv("ec2:osuser", "ubuntu"), true},
		{"StringNotEqualsIgnoreCase NOR", one("StringNotEqualsIgnoreCase", "ec2:osuser", `["Root","Admin"]`), kv("ec2:osuser", "ADMIN"), false},

		{"StringLike * suffix", one("StringLike", "ec2:osuser", `"ec2-*"`), kv("ec2:osuser", "ec2-user"), true},
		{"StringLike * matches empty", one("StringLike", "ec2:osuser", `"ec2-*"`), kv("ec2:osuser", "ec2-"), true},
		{"StringLike * prefix", one("StringLike", "s3:prefix", `"*/docs"`), kv("s3:prefix", "home/alice/docs"), true},
		{"StringLike * middle", one("StringLike", "s3:prefix", `"home/*/docs"`), kv("s3:prefix", "home/alice/docs"), true},
		{"StringLike * middle, wrong tail", one("StringLike", "s3:prefix", `"home/*/docs"`), kv("s3:prefix", "home/alice/doc"), false},
		{"StringLike * crosses / and :", one("StringLike", "s3:prefix", `"a*z"`), kv("s3:prefix", "a/b:c/z"), true},
		{"StringLike several *", one("StringLike", "s3:prefix", `"*a*b*"`), kv("s3:prefix", "xxaxxbxx"), true},
		{"StringLike several *, out of order", one("StringLike", "s3:prefix", `"*a*b*"`), kv("s3:prefix", "xxbxxaxx"), false},
		{"StringLike ? one char", one("StringLike", "ec2:osuser", `"r??t"`), kv("ec2:osuser", "root"), true},
		{"StringLike ? not zero chars", one("StringLike", "ec2:osuser", `"r??t"`), kv("ec2:osuser", "rot"), false},
		{"StringLike ? not two chars", one("StringLike", "ec2:osuser", `"r??t"`), kv("ec2:osuser", "rooot"), false},
		{"StringLike ? one multibyte char", one("StringLike", "aws:PrincipalTag/name", `"?"`), kv("aws:PrincipalTag/name", "名"), true},
		{"StringLike is case-sensitive", one("StringLike", "ec2:osuser", `"EC2-*"`), kv("ec2:osuser", "ec2-user"), false},
		{"StringLike anchored at both ends", one("StringLike", "ec2:osuser", `"user"`), kv("ec2:osuser", "ec2-user"), false},
		{"StringLike lone *", one("StringLike", "ec2:osuser", `"*"`), kv("ec2:osuser", "anything"), true},
		{"StringLike values ORed", one("StringLike", "ec2:osuser", `["ec2-*","ubuntu"]`), kv("ec2:osuser", "ubuntu"), true},
		{"StringNotLike matching", one("StringNotLike", "ec2:osuser", `"ec2-*"`), kv("ec2:osuser", "ec2-user"), false},
		{"StringNotLike not matching", one("StringNotLike", "ec2:osuser", `"ec2-*"`), kv("ec2:osuser", "ubuntu"), true},
		{"StringNotLike NOR", one("StringNotLike", "ec2:osuser", `["ec2-*","ub*"]`), kv("ec2:osuser", "ubuntu"), false},
		{"StringNotLike NOR, none match", one("StringNotLike", "ec2:osuser", `["ec2-*","ub*"]`), kv("ec2:osuser", "admin"), true},
	})
}

func TestNumericOperators(t *testing.T) {
	const k = "aws:MultiFactorAuthAge"
	runCondCases(t, []condCase{
		{"NumericEquals int", one("NumericEquals", k, `22`), kv(k, "22"), true},
		{"NumericEquals int as string", one("NumericEquals", k, `"22"`), kv(k, "22"), true},
		{"NumericEquals compares numbers, not text", one("NumericEquals", k, `22`), kv(k, "22.0"), true},
		{"NumericEquals leading zero", one("NumericEquals", k, `22`), kv(k, "022"), true},
		{"NumericEquals differs", one("NumericEquals", k, `22`), kv(k, "23"), false},
		{"NumericEquals float", one("NumericEquals", k, `1.5`), kv(k, "1.50"), true},
		{"NumericEquals negative", one("NumericEquals", k, `-3`), kv(k, "-3"), true},
		{"NumericEquals values ORed", one("NumericEquals", k, `[1, 2, 3]`), kv(k, "2"), true},
		{"NumericEquals values ORed, none", one("NumericEquals", k, `[1, 2, 3]`), kv(k, "4"), false},
		{"NumericEquals request not a number", one("NumericEquals", k, `22`), kv(k, "twenty-two"), false},
		{"NumericNotEquals differs", one("NumericNotEquals", k, `22`), kv(k, "21"), true},
		{"NumericNotEquals equal as number", one("NumericNotEquals", k, `22`), kv(k, "22.0"), false},
		{"NumericNotEquals NOR", one("NumericNotEquals", k, `[1, 2]`), kv(k, "2"), false},
		{"NumericNotEquals NOR, none", one("NumericNotEquals", k, `[1, 2]`), kv(k, "3"), true},
		{"NumericLessThan less", one("NumericLessThan", k, `3600`), kv(k, "3599"), true},
		{"NumericLessThan equal", one("NumericLessThan", k, `3600`), kv(k, "3600"), false},
		{"NumericLessThan greater", one("NumericLessThan", k, `3600`), kv(k, "3601"), false},
		{"NumericLessThan float", one("NumericLessThan", k, `1.5`), kv(k, "1.25"), true},
		{"NumericLessThan float equal", one("NumericLessThan", k, `1.5`), kv(k, "1.5"), false},
		{"NumericLessThan negative", one("NumericLessThan", k, `0`), kv(k, "-0.5"), true},
		{"NumericLessThan compares numerically (9 < 10)", one("NumericLessThan", k, `10`), kv(k, "9"), true},
		{"NumericLessThanEquals equal", one("NumericLessThanEquals", k, `3600`), kv(k, "3600"), true},
		{"NumericLessThanEquals float equal", one("NumericLessThanEquals", k, `0.25`), kv(k, "0.250"), true},
		{"NumericLessThanEquals greater", one("NumericLessThanEquals", k, `3600`), kv(k, "3600.5"), false},
		{"NumericGreaterThan greater", one("NumericGreaterThan", k, `10`), kv(k, "10.001"), true},
		{"NumericGreaterThan equal", one("NumericGreaterThan", k, `10`), kv(k, "10"), false},
		{"NumericGreaterThan less", one("NumericGreaterThan", k, `10`), kv(k, "2"), false},
		{"NumericGreaterThan compares numerically (100 > 20)", one("NumericGreaterThan", k, `20`), kv(k, "100"), true},
		{"NumericGreaterThanEquals equal", one("NumericGreaterThanEquals", k, `10`), kv(k, "10"), true},
		{"NumericGreaterThanEquals less", one("NumericGreaterThanEquals", k, `10`), kv(k, "9.99"), false},
		{"NumericGreaterThanEquals any of values", one("NumericGreaterThanEquals", k, `[100, 5]`), kv(k, "6"), true},
	})
}

// Date operators compare instants: ISO 8601 (with or without zone and
// fraction, or a bare date) or seconds since the epoch, either form on
// either side. 1767225600 is 2026-01-01T00:00:00Z.
func TestDateOperators(t *testing.T) {
	const k = "aws:CurrentTime"
	const e = "aws:EpochTime"
	runCondCases(t, []condCase{
		{"DateEquals same instant", one("DateEquals", k, `"2026-01-01T00:00:00Z"`), kv(k, "2026-01-01T00:00:00Z"), true},
		{"DateEquals zone offset in policy", one("DateEquals", k, `"2026-01-01T09:00:00+09:00"`), kv(k, "2026-01-01T00:00:00Z"), true},
		{"DateEquals zone offset in request", one("DateEquals", k, `"2026-01-01T00:00:00Z"`), kv(k, "2025-12-31T19:00:00-05:00"), true},
		{"DateEquals zone offset differs", one("DateEquals", k, `"2026-01-01T00:00:00+09:00"`), kv(k, "2026-01-01T00:00:00Z"), false},
		{"DateEquals fraction", one("DateEquals", k, `"2026-01-01T00:00:00.250Z"`), kv(k, "2026-01-01T00:00:00.25Z"), true},
		{"DateEquals fraction differs", one("DateEquals", k, `"2026-01-01T00:00:00Z"`), kv(k, "2026-01-01T00:00:00.5Z"), false},
		{"DateEquals no zone is UTC", one("DateEquals", k, `"2026-01-01T00:00:00"`), kv(k, "2026-01-01T00:00:00Z"), true},
		{"DateEquals no zone with fraction", one("DateEquals", k, `"2026-01-01T00:00:00.5"`), kv(k, "2026-01-01T00:00:00.500Z"), true},
		{"DateEquals date only is midnight UTC", one("DateEquals", k, `"2026-01-01"`), kv(k, "2026-01-01T00:00:00Z"), true},
		{"DateEquals date only in request", one("DateEquals", k, `"2026-01-01T00:00:00Z"`), kv(k, "2026-01-01"), true},
		{"DateEquals epoch policy, ISO request", one("DateEquals", k, `"1767225600"`), kv(k, "2026-01-01T00:00:00Z"), true},
		{"DateEquals epoch policy as JSON number", one("DateEquals", k, `1767225600`), kv(k, "2026-01-01T00:00:00Z"), true},
		{"DateEquals ISO policy, epoch request", one("DateEquals", e, `"2026-01-01T00:00:00Z"`), kv(e, "1767225600"), true},
		{"DateEquals epoch both", one("DateEquals", e, `"1767225600"`), kv(e, "1767225600"), true},
		{"DateEquals epoch off by one", one("DateEquals", e, `"2026-01-01T00:00:00Z"`), kv(e, "1767225601"), false},
		{"DateEquals request not a date", one("DateEquals", k, `"2026-01-01T00:00:00Z"`), kv(k, "yesterday"), false},
		{"DateNotEquals differs", one("DateNotEquals", k, `"2026-01-01T00:00:00Z"`), kv(k, "2026-01-02T00:00:00Z"), true},
		{"DateNotEquals same instant in another zone", one("DateNotEquals", k, `"2026-01-01T00:00:00Z"`), kv(k, "2026-01-01T09:00:00+09:00"), false},
		{"DateNotEquals NOR", one("DateNotEquals", k, `["2026-01-01T00:00:00Z","2027-01-01T00:00:00Z"]`), kv(k, "2027-01-01T00:00:00Z"), false},
		{"DateLessThan earlier", one("DateLessThan", k, `"2026-01-01T00:00:00Z"`), kv(k, "2025-12-31T23:59:59Z"), true},
		{"DateLessThan equal", one("DateLessThan", k, `"2026-01-01T00:00:00Z"`), kv(k, "2026-01-01T00:00:00Z"), false},
		{"DateLessThan later", one("DateLessThan", k, `"2026-01-01T00:00:00Z"`), kv(k, "2026-06-01T00:00:00Z"), false},
		{"DateLessThan date only", one("DateLessThan", k, `"2026-01-01"`), kv(k, "2025-12-31T23:59:59Z"), true},
		{"DateLessThan date only, same day", one("DateLessThan", k, `"2026-01-01"`), kv(k, "2026-01-01T00:00:01Z"), false},
		{"DateLessThan sub-second", one("DateLessThan", k, `"2026-01-01T00:00:00.5Z"`), kv(k, "2026-01-01T00:00:00.25Z"), true},
		{"DateLessThan epoch request vs ISO policy", one("DateLessThan", e, `"2026-01-01T00:00:00Z"`), kv(e, "1767225599"), true},
		{"DateLessThan ISO request vs epoch policy", one("DateLessThan", k, `1767225600`), kv(k, "2026-01-01T00:00:01Z"), false},
		{"DateLessThan across years (not text order)", one("DateLessThan", k, `"2026-01-01T09:00:00+09:00"`), kv(k, "2025-12-31T23:30:00Z"), true},
		{"DateLessThanEquals equal", one("DateLessThanEquals", k, `"2026-01-01T00:00:00Z"`), kv(k, "2026-01-01T00:00:00Z"), true},
		{"DateLessThanEquals equal across forms", one("DateLessThanEquals", e, `"2026-01-01T00:00:00Z"`), kv(e, "1767225600"), true},
		{"DateLessThanEquals later", one("DateLessThanEquals", k, `"2026-01-01T00:00:00Z"`), kv(k, "2026-01-01T00:00:00.001Z"), false},
		{"DateGreaterThan later", one("DateGreaterThan", k, `"2026-01-01T00:00:00Z"`), kv(k, "2026-01-01T00:00:01Z"), true},
		{"DateGreaterThan fraction later", one("DateGreaterThan", k, `"2026-01-01T00:00:00Z"`), kv(k, "2026-01-01T00:00:00.5Z"), true},
		{"DateGreaterThan equal", one("DateGreaterThan", k, `"2026-01-01T00:00:00Z"`), kv(k, "2026-01-01T00:00:00Z"), false},
		{"DateGreaterThan epoch request", one("DateGreaterThan", e, `"2026-01-01"`), kv(e, "1767225601"), true},
		{"DateGreaterThan epoch both", one("DateGreaterThan", e, `1767225600`), kv(e, "1767225599"), false},
		{"DateGreaterThanEquals equal", one("DateGreaterThanEquals", k, `"2026-01-01T00:00:00Z"`), kv(k, "2026-01-01T00:00:00Z"), true},
		{"DateGreaterThanEquals earlier", one("DateGreaterThanEquals", k, `"2026-01-01T00:00:00Z"`), kv(k, "2025-12-31T23:59:59.999Z"), false},
		{"DateGreaterThanEquals offset", one("DateGreaterThanEquals", k, `"2026-01-01T00:00:00Z"`), kv(k, "2026-01-01T08:00:00+09:00"), false},
	})
}

func TestBoolOperator(t *testing.T) {
	const k = "aws:SecureTransport"
	runCondCases(t, []condCase{
		{"JSON true, request true", one("Bool", k, `true`), kv(k, "true"), true},
		{"JSON true, request false", one("Bool", k, `true`), kv(k, "false"), false},
		{"string true, request true", one("Bool", k, `"true"`), kv(k, "true"), true},
		{"string true, request false", one("Bool", k, `"true"`), kv(k, "false"), false},
		{"JSON false, request false", one("Bool", k, `false`), kv(k, "false"), true},
		{"JSON false, request true", one("Bool", k, `false`), kv(k, "true"), false},
		{"string false, request false", one("Bool", k, `"false"`), kv(k, "false"), true},
		{"request not a boolean", one("Bool", k, `true`), kv(k, "yes"), false},
		{"missing", one("Bool", k, `false`), nil, false},
		{"BoolIfExists missing", one("BoolIfExists", k, `false`), nil, true},
		{"BoolIfExists present, differs", one("BoolIfExists", k, `false`), kv(k, "true"), false},
	})
}

func TestBinaryEquals(t *testing.T) {
	const k = "kaginashi:Blob"
	runCondCases(t, []condCase{
		{"same bytes", one("BinaryEquals", k, `"QmluYXJ5VmFsdWVJbkJhc2U2NA=="`), kv(k, "QmluYXJ5VmFsdWVJbkJhc2U2NA=="), true},
		{"different bytes", one("BinaryEquals", k, `"QmluYXJ5VmFsdWVJbkJhc2U2NA=="`), kv(k, "QmluYXJ5VmFsdWVJbkJhc2U2NQ=="), false},
		{"prefix of the bytes", one("BinaryEquals", k, `"AAECAw=="`), kv(k, "AAEC"), false},
		{"binary, not text: case matters", one("BinaryEquals", k, `"YWJj"`), kv(k, "YWJD"), false},
		{"values ORed", one("BinaryEquals", k, `["AAECAw==","BAUG"]`), kv(k, "BAUG"), true},
		{"missing", one("BinaryEquals", k, `"AAECAw=="`), nil, false},
		{"IfExists missing", one("BinaryEqualsIfExists", k, `"AAECAw=="`), nil, true},
	})
}

func TestIPOperators(t *testing.T) {
	const k = "aws:SourceIp"
	runCondCases(t, []condCase{
		{"IPv4 in CIDR", one("IpAddress", k, `"203.0.113.0/24"`), kv(k, "203.0.113.77"), true},
		{"IPv4 network address", one("IpAddress", k, `"203.0.113.0/24"`), kv(k, "203.0.113.0"), true},
		{"IPv4 last address", one("IpAddress", k, `"203.0.113.0/24"`), kv(k, "203.0.113.255"), true},
		{"IPv4 just outside", one("IpAddress", k, `"203.0.113.0/24"`), kv(k, "203.0.114.0"), false},
		{"IPv4 /32", one("IpAddress", k, `"203.0.113.9/32"`), kv(k, "203.0.113.9"), true},
		{"IPv4 /32 other", one("IpAddress", k, `"203.0.113.9/32"`), kv(k, "203.0.113.10"), false},
		{"IPv4 bare address", one("IpAddress", k, `"203.0.113.9"`), kv(k, "203.0.113.9"), true},
		{"IPv4 bare address other", one("IpAddress", k, `"203.0.113.9"`), kv(k, "203.0.113.10"), false},
		{"IPv4 /0", one("IpAddress", k, `"0.0.0.0/0"`), kv(k, "198.51.100.1"), true},
		{"IPv4 host bits set in CIDR", one("IpAddress", k, `"203.0.113.77/24"`), kv(k, "203.0.113.1"), true},
		{"IPv4 values ORed", one("IpAddress", k, `["198.51.100.0/24","203.0.113.0/24"]`), kv(k, "203.0.113.1"), true},
		{"IPv4 values ORed, none", one("IpAddress", k, `["198.51.100.0/24","203.0.113.0/24"]`), kv(k, "192.0.2.1"), false},
		{"IPv6 in CIDR", one("IpAddress", k, `"2001:db8::/32"`), kv(k, "2001:db8:abcd:12::1"), true},
		{"IPv6 outside", one("IpAddress", k, `"2001:db8::/32"`), kv(k, "2001:db9::1"), false},
		{"IPv6 request in long form", one("IpAddress", k, `"2001:db8::/32"`), kv(k, "2001:0db8:0000:0000:0000:0000:0000:0001"), true},
		{"IPv6 uppercase", one("IpAddress", k, `"2001:DB8::/32"`), kv(k, "2001:db8::1"), true},
		{"IPv6 bare address", one("IpAddress", k, `"2001:db8::1"`), kv(k, "2001:db8::1"), true},
		{"IPv6 bare address other", one("IpAddress", k, `"2001:db8::1"`), kv(k, "2001:db8::2"), false},
		{"IPv6 /128", one("IpAddress", k, `"2001:db8::1/128"`), kv(k, "2001:db8::1"), true},
		{"IPv4-mapped IPv6 request in IPv4 CIDR", one("IpAddress", k, `"203.0.113.0/24"`), kv(k, "::ffff:203.0.113.9"), true},
		{"IPv4-mapped IPv6 request outside IPv4 CIDR", one("IpAddress", k, `"203.0.113.0/24"`), kv(k, "::ffff:198.51.100.9"), false},
		{"IPv4 request vs IPv6 CIDR", one("IpAddress", k, `"2001:db8::/32"`), kv(k, "203.0.113.9"), false},
		{"IPv6 request vs IPv4 CIDR", one("IpAddress", k, `"203.0.113.0/24"`), kv(k, "2001:db8::1"), false},
		{"mixed v4/v6 list, v6 hit", one("IpAddress", k, `["203.0.113.0/24","2001:db8::/32"]`), kv(k, "2001:db8::5"), true},
		{"request not an address", one("IpAddress", k, `"203.0.113.0/24"`), kv(k, "example.com"), false},
		{"NotIpAddress outside", one("NotIpAddress", k, `"203.0.113.0/24"`), kv(k, "198.51.100.1"), true},
		{"NotIpAddress inside", one("NotIpAddress", k, `"203.0.113.0/24"`), kv(k, "203.0.113.1"), false},
		{"NotIpAddress NOR: in first", one("NotIpAddress", k, `["203.0.113.0/24","2001:db8::/32"]`), kv(k, "203.0.113.1"), false},
		{"NotIpAddress NOR: in second", one("NotIpAddress", k, `["203.0.113.0/24","2001:db8::/32"]`), kv(k, "2001:db8::1"), false},
		{"NotIpAddress NOR: in neither", one("NotIpAddress", k, `["203.0.113.0/24","2001:db8::/32"]`), kv(k, "192.0.2.1"), true},
		{"NotIpAddress IPv4-mapped inside", one("NotIpAddress", k, `"203.0.113.0/24"`), kv(k, "::ffff:203.0.113.9"), false},
		{"NotIpAddress bare address", one("NotIpAddress", k, `"203.0.113.9"`), kv(k, "203.0.113.9"), false},
	})
}

// Arn operators: "Each of the six colon-delimited components of the ARN is
// checked separately and each can include multi-character match wildcards
// (*) or single-character match wildcards (?)"; case-sensitive; ArnEquals
// and ArnLike behave alike.
func TestArnOperators(t *testing.T) {
	const k = "aws:SourceArn"
	const instARN = "arn:aws:ec2:us-east-1:123456789012:instance/i-1"
	runCondCases(t, []condCase{
		{"ArnLike exact", one("ArnLike", k, `"`+instARN+`"`), kv(k, instARN), true},
		{"ArnLike * in region", one("ArnLike", k, `"arn:aws:ec2:*:123456789012:instance/*"`), kv(k, instARN), true},
		{"ArnLike * in account", one("ArnLike", k, `"arn:aws:ec2:us-east-1:*:instance/i-1"`), kv(k, instARN), true},
		{"ArnLike * in partition", one("ArnLike", k, `"arn:*:ec2:us-east-1:123456789012:instance/i-1"`), kv(k, instARN), true},
		{"ArnLike ? in region", one("ArnLike", k, `"arn:aws:ec2:us-east-?:123456789012:instance/i-1"`), kv(k, instARN), true},
		{"ArnLike ? needs one char", one("ArnLike", k, `"arn:aws:ec2:us-east-?:123456789012:instance/i-1"`), kv(k, "arn:aws:ec2:us-east-10:123456789012:instance/i-1"), false},
		{"ArnLike component-wise: * in region does not reach into account", one("ArnLike", k, `"arn:aws:ec2:*:instance/i-1"`), kv(k, instARN), false},
		{"ArnLike component-wise: * does not span components", one("ArnLike", k, `"arn:aws:ec2:us-*:instance/i-1"`), kv(k, instARN), false},
		{"ArnLike all components *", one("ArnLike", k, `"arn:*:*:*:*:*"`), kv(k, instARN), true},
		{"ArnLike resource with colons", one("ArnLike", k, `"arn:aws:logs:us-east-1:123456789012:log-group:*"`), kv(k, "arn:aws:logs:us-east-1:123456789012:log-group:app:log-stream:s1"), true},
		{"ArnLike resource with colons, ? and *", one("ArnLike", k, `"arn:aws:logs:us-east-1:123456789012:log-group:ap?:*"`), kv(k, "arn:aws:logs:us-east-1:123456789012:log-group:app:log-stream:s1"), true},
		{"ArnLike empty region and account", one("ArnLike", k, `"arn:aws:iam::123456789012:role/*"`), kv(k, "arn:aws:iam::123456789012:role/admin"), true},
		{"ArnLike empty component vs *", one("ArnLike", k, `"arn:aws:iam:*:*:role/admin"`), kv(k, "arn:aws:iam::123456789012:role/admin"), true},
		{"ArnLike region must be empty", one("ArnLike", k, `"arn:aws:iam::123456789012:role/admin"`), kv(k, "arn:aws:iam:us-east-1:123456789012:role/admin"), false},
		{"ArnLike is case-sensitive", one("ArnLike", k, `"arn:aws:iam::123456789012:role/Admin"`), kv(k, "arn:aws:iam::123456789012:role/admin"), false},
		{"ArnLike service must match", one("ArnLike", k, `"arn:aws:ec2:*:*:*"`), kv(k, "arn:aws:s3:::bucket"), false},
		{"ArnLike request too short", one("ArnLike", k, `"arn:aws:iam::123456789012:role/admin"`), kv(k, "arn:aws:iam::123456789012"), false},
		{"ArnLike request not an ARN", one("ArnLike", k, `"arn:aws:iam::*:role/*"`), kv(k, "not-an-arn"), false},
		{"ArnLike values ORed", one("ArnLike", k, `["arn:aws:iam::*:role/a","arn:aws:iam::*:role/b*"]`), kv(k, "arn:aws:iam::123456789012:role/bee"), true},
		{"ArnEquals exact", one("ArnEquals", k, `"`+instARN+`"`), kv(k, instARN), true},
		{"ArnEquals differs", one("ArnEquals", k, `"`+instARN+`"`), kv(k, "arn:aws:ec2:us-east-1:123456789012:instance/i-2"), false},
		{"ArnEquals takes wildcards like ArnLike", one("ArnEquals", k, `"arn:aws:ec2:*:123456789012:instance/*"`), kv(k, instARN), true},
		{"ArnEquals component-wise", one("ArnEquals", k, `"arn:aws:ec2:*:instance/i-1"`), kv(k, instARN), false},
		{"ArnNotEquals differs", one("ArnNotEquals", k, `"`+instARN+`"`), kv(k, "arn:aws:ec2:us-east-1:123456789012:instance/i-2"), true},
		{"ArnNotEquals equal", one("ArnNotEquals", k, `"`+instARN+`"`), kv(k, instARN), false},
		{"ArnNotEquals with wildcard", one("ArnNotEquals", k, `"arn:aws:ec2:*:123456789012:*"`), kv(k, instARN), false},
		{"ArnNotLike matching", one("ArnNotLike", k, `"arn:aws:ec2:*:*:instance/*"`), kv(k, instARN), false},
		{"ArnNotLike not matching", one("ArnNotLike", k, `"arn:aws:ec2:*:*:volume/*"`), kv(k, instARN), true},
		{"ArnNotLike NOR", one("ArnNotLike", k, `["arn:aws:ec2:*:*:volume/*","arn:aws:ec2:us-*:*:*"]`), kv(k, instARN), false},
		{"ArnNotLike NOR, none", one("ArnNotLike", k, `["arn:aws:ec2:*:*:volume/*","arn:aws:ec2:eu-*:*:*"]`), kv(k, instARN), true},
		{"ArnNotLike component-wise: too few components never match", one("ArnNotLike", k, `"arn:aws:ec2:*:instance/i-1"`), kv(k, instARN), true},
	})
}

// Null: "true" holds when the key is absent, "false" when it is present.
func TestNullOperator(t *testing.T) {
	const k = "aws:TokenIssueTime"
	runCondCases(t, []condCase{
		{"Null true, absent", one("Null", k, `"true"`), nil, true},
		{"Null true, present", one("Null", k, `"true"`), kv(k, "2026-01-01T00:00:00Z"), false},
		{"Null false, present", one("Null", k, `"false"`), kv(k, "2026-01-01T00:00:00Z"), true},
		{"Null false, absent", one("Null", k, `"false"`), nil, false},
		{"Null JSON true, absent", one("Null", k, `true`), nil, true},
		{"Null JSON true, present", one("Null", k, `true`), kv(k, "x"), false},
		{"Null JSON false, present", one("Null", k, `false`), kv(k, "x"), true},
		{"Null JSON false, absent", one("Null", k, `false`), nil, false},
		{"Null key name case-insensitive", one("Null", "AWS:TokenIssueTime", `false`), kv("aws:tokenissuetime", "x"), true},
		{"Null true, only another key present", one("Null", k, `true`), kv("aws:username", "alice"), true},
		{"Null on a multivalued key, present", one("Null", "aws:TagKeys", `false`), kv("aws:TagKeys", "a", "b"), true},
	})
}

// Set qualifiers on a multivalued key (reference_policies_condition-single-
// vs-multi-valued-context-keys.html):
//   - ForAllValues: true if every request value matches at least one policy
//     value; also true when the key is absent from the request;
//   - ForAnyValue: true if at least one request value matches at least one
//     policy value; false when the key is absent.
//
// With a negated operator the qualifier applies to the negated test: every
// (ForAllValues) or some (ForAnyValue) request value matches none of the
// policy values.
func TestSetOperators(t *testing.T) {
	const k = "aws:TagKeys"
	all := func(op, v string) string { return one("ForAllValues:"+op, k, v) }
	anyv := func(op, v string) string { return one("ForAnyValue:"+op, k, v) }
	tags := func(v ...string) map[string][]string { return kv(k, v...) }
	cases := []condCase{
		{"ForAllValues:StringEquals subset", all("StringEquals", `["env","team"]`), tags("env"), true},
		{"ForAllValues:StringEquals equal set", all("StringEquals", `["env","team"]`), tags("team", "env"), true},
		{"ForAllValues:StringEquals one outside", all("StringEquals", `["env","team"]`), tags("env", "cost"), false},
		{"ForAllValues:StringEquals all outside", all("StringEquals", `["env","team"]`), tags("cost"), false},
		{"ForAllValues:StringEquals repeated request value", all("StringEquals", `["env"]`), tags("env", "env"), true},
		{"ForAllValues:StringEquals case-sensitive", all("StringEquals", `["env"]`), tags("Env"), false},
		{"ForAllValues:StringEquals missing key", all("StringEquals", `["env","team"]`), nil, true},
		{"ForAllValues:StringEqualsIgnoreCase", all("StringEqualsIgnoreCase", `["Env","Team"]`), tags("ENV", "team"), true},
		{"ForAllValues:StringLike", all("StringLike", `["team-*","env"]`), tags("team-a", "env", "team-b"), true},
		{"ForAllValues:StringLike one outside", all("StringLike", `["team-*","env"]`), tags("team-a", "cost"), false},
		{"ForAllValues:StringNotEquals none forbidden", all("StringNotEquals", `["secret","internal"]`), tags("env", "team"), true},
		{"ForAllValues:StringNotEquals one forbidden", all("StringNotEquals", `["secret","internal"]`), tags("env", "internal"), false},
		{"ForAllValues:StringNotEquals missing key", all("StringNotEquals", `["secret"]`), nil, true},
		{"ForAllValues:StringNotLike none matching", all("StringNotLike", `["aws:*"]`), tags("env", "team"), true},
		{"ForAllValues:StringNotLike one matching", all("StringNotLike", `["aws:*"]`), tags("env", "aws:cloudformation:stack-name"), false},
		{"ForAllValues:StringEqualsIfExists missing key", all("StringEqualsIfExists", `["env"]`), nil, true},
		{"ForAllValues:StringEqualsIfExists present outside", all("StringEqualsIfExists", `["env"]`), tags("cost"), false},

		{"ForAnyValue:StringEquals one inside", anyv("StringEquals", `["env","team"]`), tags("cost", "team"), true},
		{"ForAnyValue:StringEquals all inside", anyv("StringEquals", `["env","team"]`), tags("env", "team"), true},
		{"ForAnyValue:StringEquals none inside", anyv("StringEquals", `["env","team"]`), tags("cost", "owner"), false},
		{"ForAnyValue:StringEquals missing key", anyv("StringEquals", `["env","team"]`), nil, false},
		{"ForAnyValue:StringEqualsIgnoreCase", anyv("StringEqualsIgnoreCase", `["env"]`), tags("cost", "ENV"), true},
		{"ForAnyValue:StringLike", anyv("StringLike", `["team-*"]`), tags("cost", "team-x"), true},
		{"ForAnyValue:StringLike none", anyv("StringLike", `["team-*"]`), tags("cost", "teamx"), false},
		{"ForAnyValue:StringNotEquals one not listed", anyv("StringNotEquals", `["env"]`), tags("env", "team"), true},
		{"ForAnyValue:StringNotEquals all listed", anyv("StringNotEquals", `["env","team"]`), tags("env", "team"), false},
		{"ForAnyValue:StringNotEquals missing key", anyv("StringNotEquals", `["env"]`), nil, false},
		{"ForAnyValue:StringNotLike one outside", anyv("StringNotLike", `["aws:*"]`), tags("aws:x", "env"), true},
		{"ForAnyValue:StringNotLike all inside", anyv("StringNotLike", `["aws:*"]`), tags("aws:x", "aws:y"), false},
		{"ForAnyValue:StringEqualsIfExists missing key", anyv("StringEqualsIfExists", `["env"]`), nil, true},
		{"ForAnyValue:StringEqualsIfExists present, none", anyv("StringEqualsIfExists", `["env"]`), tags("cost"), false},
		{"ForAnyValue:ArnLike", one("ForAnyValue:ArnLike", "kaginashi:Arns", `"arn:aws:iam::*:role/admin"`),
			kv("kaginashi:Arns", "arn:aws:iam::123456789012:role/dev", "arn:aws:iam::123456789012:role/admin"), true},
		{"ForAllValues:ArnLike one outside", one("ForAllValues:ArnLike", "kaginashi:Arns", `"arn:aws:iam::*:role/admin"`),
			kv("kaginashi:Arns", "arn:aws:iam::123456789012:role/dev", "arn:aws:iam::123456789012:role/admin"), false},
		{"ForAnyValue:IpAddress", one("ForAnyValue:IpAddress", "kaginashi:Ips", `"203.0.113.0/24"`), kv("kaginashi:Ips", "192.0.2.1", "203.0.113.1"), true},
		{"ForAllValues:IpAddress one outside", one("ForAllValues:IpAddress", "kaginashi:Ips", `"203.0.113.0/24"`), kv("kaginashi:Ips", "192.0.2.1", "203.0.113.1"), false},
		{"ForAnyValue:NumericLessThan", one("ForAnyValue:NumericLessThan", "kaginashi:Nums", `10`), kv("kaginashi:Nums", "20", "5"), true},
		{"ForAllValues:NumericLessThan", one("ForAllValues:NumericLessThan", "kaginashi:Nums", `10`), kv("kaginashi:Nums", "20", "5"), false},
		{"set qualifier key name case-insensitive", one("ForAnyValue:StringEquals", "AWS:TAGKEYS", `"env"`), kv("aws:tagkeys", "env"), true},
	}
	runCondCases(t, cases)

	// An emptied key (every value removed) is the same as a missing one.
	for _, tc := range []struct {
		name string
		cond string
		want bool
	}{
		{"ForAllValues:StringEquals empty key", all("StringEquals", `["env"]`), true},
		{"ForAllValues:StringNotEquals empty key", all("StringNotEquals", `["env"]`), true},
		{"ForAnyValue:StringEquals empty key", anyv("StringEquals", `["env"]`), false},
		{"ForAnyValue:StringNotEquals empty key", anyv("StringNotEquals", `["env"]`), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			set := newSet(t, doc{"c", condPolicy("2012-10-17", tc.cond)})
			c := policy.NewContext()
			c.Add(k, "env")
			c.Set(k) // remove every value
			if got := c.Get(k); got != nil {
				t.Fatalf("Get after Set(k) = %q, want nil", got)
			}
			res := set.Decide(&policy.Request{Action: actSend, Resource: inst, Context: c})
			want := policy.ImplicitDeny
			if tc.want {
				want = policy.Allowed
			}
			if res.Decision != want {
				t.Errorf("Decision = %v, want %v", res.Decision, want)
			}
		})
	}
}

// reference_policies_condition-logic-multiple-context-keys-or-values.html:
// several operators are ANDed, several keys under one operator are ANDed,
// several values for one key are ORed — and for a negated operator the
// values are NORed. Condition key names are case-insensitive.
func TestConditionLogic(t *testing.T) {
	twoOps := `{"StringEquals":{"ec2:osuser":"ec2-user"},"IpAddress":{"aws:SourceIp":"203.0.113.0/24"}}`
	twoKeys := `{"StringEquals":{"ec2:osuser":"ec2-user","aws:username":"alice"}}`
	threeOps := `{"StringLike":{"ec2:osuser":"ec2-*"},"NumericLessThan":{"aws:MultiFactorAuthAge":"3600"},"Bool":{"aws:SecureTransport":"true"}}`
	ctx := func(kvs ...string) map[string][]string {
		m := map[string][]string{}
		for i := 0; i < len(kvs); i += 2 {
			m[kvs[i]] = append(m[kvs[i]], kvs[i+1])
		}
		return m
	}
	runCondCases(t, []condCase{
		{"AND across operators: both hold", twoOps, ctx("ec2:osuser", "ec2-user", "aws:SourceIp", "203.0.113.5"), true},
		{"AND across operators: IP fails", twoOps, ctx("ec2:osuser", "ec2-user", "aws:SourceIp", "192.0.2.5"), false},
		{"AND across operators: user fails", twoOps, ctx("ec2:osuser", "root", "aws:SourceIp", "203.0.113.5"), false},
		{"AND across operators: one key missing", twoOps, ctx("ec2:osuser", "ec2-user"), false},
		{"AND across three operators", threeOps, ctx("ec2:osuser", "ec2-user", "aws:MultiFactorAuthAge", "10", "aws:SecureTransport", "true"), true},
		{"AND across three operators: last fails", threeOps, ctx("ec2:osuser", "ec2-user", "aws:MultiFactorAuthAge", "10", "aws:SecureTransport", "false"), false},
		{"AND across keys: both hold", twoKeys, ctx("ec2:osuser", "ec2-user", "aws:username", "alice"), true},
		{"AND across keys: one fails", twoKeys, ctx("ec2:osuser", "ec2-user", "aws:username", "bob"), false},
		{"AND across keys: one missing", twoKeys, ctx("ec2:osuser", "ec2-user"), false},
		{"OR across values", one("StringEquals", "ec2:osuser", `["ec2-user","ubuntu","admin"]`), ctx("ec2:osuser", "admin"), true},
		{"OR across values: none", one("StringEquals", "ec2:osuser", `["ec2-user","ubuntu","admin"]`), ctx("ec2:osuser", "root"), false},
		{"NOR for StringNotEquals: first listed", one("StringNotEquals", "ec2:osuser", `["root","admin"]`), ctx("ec2:osuser", "root"), false},
		{"NOR for StringNotEquals: second listed", one("StringNotEquals", "ec2:osuser", `["root","admin"]`), ctx("ec2:osuser", "admin"), false},
		{"NOR for StringNotEquals: unlisted", one("StringNotEquals", "ec2:osuser", `["root","admin"]`), ctx("ec2:osuser", "ubuntu"), true},
		{"NOR for NotIpAddress", one("NotIpAddress", "aws:SourceIp", `["10.0.0.0/8","192.168.0.0/16"]`), ctx("aws:SourceIp", "192.168.1.1"), false},
		{"NOR for NumericNotEquals", one("NumericNotEquals", "aws:MultiFactorAuthAge", `[1, 2]`), ctx("aws:MultiFactorAuthAge", "1"), false},
		{"negated and positive ANDed",
			`{"StringNotEquals":{"ec2:osuser":"root"},"StringLike":{"ec2:osuser":"*"}}`, ctx("ec2:osuser", "ubuntu"), true},
		{"negated and positive ANDed, negated fails",
			`{"StringNotEquals":{"ec2:osuser":"root"},"StringLike":{"ec2:osuser":"*"}}`, ctx("ec2:osuser", "root"), false},
		{"mixed case key in policy, lower case in request", one("StringEquals", "EC2:OsUser", `"ec2-user"`), ctx("ec2:osuser", "ec2-user"), true},
		{"lower case key in policy, upper case in request", one("StringEquals", "ec2:osuser", `"ec2-user"`), ctx("EC2:OSUSER", "ec2-user"), true},
		{"key case-insensitive for IfExists present", one("StringEqualsIfExists", "Aws:SourceIP", `"x"`), ctx("aws:sourceip", "y"), false},
		{"key case does not leak into values", one("StringEquals", "EC2:OsUser", `"ec2-user"`), ctx("ec2:osuser", "EC2-USER"), false},
		{"IfExists on one key, present key fails the other",
			`{"StringEqualsIfExists":{"ec2:osuser":"ec2-user"},"IpAddress":{"aws:SourceIp":"203.0.113.0/24"}}`, ctx("aws:SourceIp", "192.0.2.1"), false},
		{"IfExists on one key, absent, other holds",
			`{"StringEqualsIfExists":{"ec2:osuser":"ec2-user"},"IpAddress":{"aws:SourceIp":"203.0.113.0/24"}}`, ctx("aws:SourceIp", "203.0.113.1"), true},
	})
}

// Context.Set and Add treat key names case-insensitively.
func TestContextKeysCaseInsensitive(t *testing.T) {
	c := policy.NewContext()
	c.Set("AWS:SourceIp", "203.0.113.1")
	c.Add("aws:sourceip", "203.0.113.2")
	if got := c.Get("aws:SOURCEIP"); len(got) != 2 || got[0] != "203.0.113.1" || got[1] != "203.0.113.2" {
		t.Errorf("Get = %q, want both values", got)
	}
	c.Set("Aws:SourceIP")
	if got := c.Get("aws:sourceip"); got != nil {
		t.Errorf("Get after clearing = %q, want nil", got)
	}
}
