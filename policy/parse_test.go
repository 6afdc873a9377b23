package policy

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParseGrammarErrors(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		code string
		path string
	}{
		{"not json", `{"Version": `, CodeInvalidJSON, ""},
		{"empty document", `   `, CodeInvalidJSON, ""},
		{"trailing text", `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"*","Resource":"*"}} x`, CodeInvalidJSON, ""},
		{"top level array", `[]`, CodeWrongType, ""},
		{"unknown top element", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}],"Foo":1}`, CodeUnknownElement, "Foo"},
		{"element name case", `{"version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}`, CodeUnknownElement, "version"},
		{"duplicate top key", `{"Version":"2012-10-17","Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}`, CodeDuplicateKey, "Version"},
		{"bad version", `{"Version":"2012-10-18","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}`, CodeInvalidVersion, "Version"},
		{"version wrong type", `{"Version":2012,"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}`, CodeWrongType, "Version"},
		{"no statement", `{"Version":"2012-10-17"}`, CodeMissingStatement, "Statement"},
		{"empty statement list", `{"Version":"2012-10-17","Statement":[]}`, CodeEmptyList, "Statement"},
		{"statement wrong type", `{"Version":"2012-10-17","Statement":"x"}`, CodeWrongType, "Statement"},
		{"statement element wrong type", `{"Version":"2012-10-17","Statement":[1]}`, CodeWrongType, "Statement[0]"},
		{"unknown statement element", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Actions":"x"}]}`, CodeUnknownElement, "Statement[0].Actions"},
		{"duplicate statement key", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Effect":"Deny","Action":"*","Resource":"*"}]}`, CodeDuplicateKey, "Statement[0].Effect"},
		{"missing effect", `{"Version":"2012-10-17","Statement":[{"Action":"*","Resource":"*"}]}`, CodeMissingEffect, "Statement[0].Effect"},
		{"effect case", `{"Version":"2012-10-17","Statement":[{"Effect":"allow","Action":"*","Resource":"*"}]}`, CodeInvalidEffect, "Statement[0].Effect"},
		{"action and notaction", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","NotAction":"s3:*","Resource":"*"}]}`, CodeActionAndNotAction, "Statement[0].NotAction"},
		{"no action", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Resource":"*"}]}`, CodeMissingAction, "Statement[0].Action"},
		{"resource and notresource", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*","NotResource":"*"}]}`, CodeResourceAndNot, "Statement[0].NotResource"},
		{"principal and notprincipal", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Principal":"*","NotPrincipal":"*"}]}`, CodePrincipalAndNot, "Statement[0].NotPrincipal"},
		{"empty action list", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":[],"Resource":"*"}]}`, CodeEmptyList, "Statement[0].Action"},
		{"action not string", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["ec2:DescribeInstances",3],"Resource":"*"}]}`, CodeWrongType, "Statement[0].Action[1]"},
		{"action no prefix", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"DescribeInstances","Resource":"*"}]}`, CodeInvalidAction, "Statement[0].Action"},
		{"action bad chars", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ec2:Describe Instances","Resource":"*"}]}`, CodeInvalidAction, "Statement[0].Action"},
		{"empty resource", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":""}]}`, CodeEmptyValue, "Statement[0].Resource"},
		{"resource object", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":{"a":"b"}}]}`, CodeWrongType, "Statement[0].Resource"},
		{"condition not object", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Condition":[]}]}`, CodeWrongType, "Statement[0].Condition"},
		{"operator value not object", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"StringLike":"x"}}]}`, CodeWrongType, "Statement[0].Condition.StringLike"},
		{"condition value object", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"StringLike":{"ec2:osuser":{"a":1}}}}]}`, CodeWrongType, "Statement[0].Condition.StringLike.ec2:osuser"},
		{"condition value null", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"StringLike":{"ec2:osuser":[null]}}}]}`, CodeWrongType, "Statement[0].Condition.StringLike.ec2:osuser[0]"},
		{"duplicate operator", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"StringLike":{"a:b":"x"},"StringLike":{"a:c":"y"}}}]}`, CodeDuplicateKey, "Statement[0].Condition.StringLike"},
		{"duplicate key any case", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"StringLike":{"ec2:osuser":"x","EC2:OsUser":"y"}}}]}`, CodeDuplicateKey, "Statement[0].Condition.StringLike.EC2:OsUser"},
		{"empty condition values", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"StringLike":{"ec2:osuser":[]}}}]}`, CodeEmptyList, "Statement[0].Condition.StringLike.ec2:osuser"},
		{"duplicate sid", `{"Version":"2012-10-17","Statement":[{"Sid":"A","Effect":"Allow","Action":"*","Resource":"*"},{"Sid":"A","Effect":"Deny","Action":"*","Resource":"*"}]}`, CodeDuplicateSid, "Statement[1].Sid"},
		{"principal bad string", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Principal":"alice"}]}`, CodeInvalidPrincipal, "Statement[0].Principal"},
		{"principal unknown type", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Principal":{"User":"alice"}}]}`, CodeUnknownElement, "Statement[0].Principal.User"},
		{"single statement object path", `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"StringLike":{"k:k":[{}]}}}}`, CodeWrongType, "Statement.Condition.StringLike.k:k[0]"},
		{"deep nesting", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"StringLike":{"k:k":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}}}]}`, CodeInvalidJSON, ""},
		{"invalid utf8", "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"\xff\"}]}", CodeInvalidJSON, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.doc))
			var errs Errors
			if !errors.As(err, &errs) {
				t.Fatalf("Parse = %v, want Errors", err)
			}
			for _, e := range errs {
				if e.Code == tt.code && e.Path == tt.path {
					if e.Message == "" {
						t.Errorf("%s at %s has no message", e.Code, e.Path)
					}
					return
				}
			}
			t.Errorf("want %s at %q, got %v", tt.code, tt.path, errs)
		})
	}
}

func TestParseAcceptsAWSForms(t *testing.T) {
	tests := []struct {
		name  string
		doc   string
		check func(*testing.T, *Policy)
	}{
		{"single statement, string values", `{"Version":"2012-10-17","Statement":{"Sid":"One","Effect":"Allow","Action":"ec2:DescribeInstances","Resource":"*"}}`,
			func(t *testing.T, p *Policy) {
				if len(p.Statements) != 1 || p.Statements[0].Path != "Statement" || p.Statements[0].Action[0] != "ec2:DescribeInstances" || p.Statements[0].Sid != "One" {
					t.Errorf("got %+v", p.Statements[0])
				}
			}},
		{"no version", `{"Statement":[{"Effect":"Deny","NotAction":["iam:*"],"NotResource":["arn:aws:iam::123456789012:user/a"]}]}`,
			func(t *testing.T, p *Policy) {
				s := p.Statements[0]
				if p.Version != "" || p.variables() || s.Effect != Deny || s.NotAction[0] != "iam:*" || s.NotResource == nil {
					t.Errorf("got %+v %+v", p, s)
				}
			}},
		{"numbers and booleans as condition values", `{"Version":"2012-10-17","Id":"x","Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"NumericEquals":{"ec2-instance-connect:remotePort":22},"Bool":{"aws:SecureTransport":true}}}]}`,
			func(t *testing.T, p *Policy) {
				cs := p.Statements[0].Conditions
				if len(cs) != 2 || cs[0].Values[0] != "22" || cs[1].Values[0] != "true" || p.ID != "x" {
					t.Errorf("got %+v", cs)
				}
				if cs[0].Path != "Statement[0].Condition.NumericEquals.ec2-instance-connect:remotePort" {
					t.Errorf("path %q", cs[0].Path)
				}
			}},
		{"principal map", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Principal":{"AWS":["123456789012","arn:aws:iam::123456789012:user/a"],"Service":"ec2.amazonaws.com"}}]}`,
			func(t *testing.T, p *Policy) {
				pr := p.Statements[0].Principal
				if pr == nil || len(pr.Entries) != 2 || pr.Entries[0].Type != "AWS" || len(pr.Entries[0].Values) != 2 {
					t.Errorf("got %+v", pr)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Parse([]byte(tt.doc))
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, p)
		})
	}
}

func TestCompileErrors(t *testing.T) {
	tests := []struct {
		name, cond, code, path string
	}{
		{"unknown operator", `{"StringEqualz":{"ec2:osuser":"a"}}`, CodeUnknownOperator, "Statement[0].Condition.StringEqualz"},
		{"bad set qualifier", `{"ForSomeValues:StringEquals":{"aws:TagKeys":"a"}}`, CodeUnknownOperator, "Statement[0].Condition.ForSomeValues:StringEquals"},
		{"null ifexists", `{"NullIfExists":{"aws:TagKeys":"true"}}`, CodeUnknownOperator, "Statement[0].Condition.NullIfExists"},
		{"numeric not number", `{"NumericEquals":{"ec2-instance-connect:remotePort":["22","ssh"]}}`, CodeInvalidConditionValue, "Statement[0].Condition.NumericEquals.ec2-instance-connect:remotePort[1]"},
		{"date not date", `{"DateLessThan":{"aws:CurrentTime":"tomorrow"}}`, CodeInvalidConditionValue, "Statement[0].Condition.DateLessThan.aws:CurrentTime"},
		{"bool not bool", `{"Bool":{"aws:SecureTransport":"yes"}}`, CodeInvalidConditionValue, "Statement[0].Condition.Bool.aws:SecureTransport"},
		{"cidr not cidr", `{"IpAddress":{"aws:SourceIp":"10.0.0.0/33"}}`, CodeInvalidConditionValue, "Statement[0].Condition.IpAddress.aws:SourceIp"},
		{"binary not base64", `{"BinaryEquals":{"k:b":"!!"}}`, CodeInvalidConditionValue, "Statement[0].Condition.BinaryEquals.k:b"},
		{"null not bool", `{"Null":{"k:b":"maybe"}}`, CodeInvalidConditionValue, "Statement[0].Condition.Null.k:b"},
		{"variable in key", `{"StringEquals":{"${aws:username}":"a"}}`, CodeInvalidConditionKey, "Statement[0].Condition.StringEquals.${aws:username}"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Condition":` + tt.cond + `}]}`
			_, err := ParseAndCompile("p", []byte(doc))
			var errs Errors
			if !errors.As(err, &errs) {
				t.Fatalf("got %v, want Errors", err)
			}
			for _, e := range errs {
				if e.Code == tt.code && e.Path == tt.path {
					return
				}
			}
			t.Errorf("want %s at %s, got %v", tt.code, tt.path, errs)
		})
	}
}

func TestParseOperatorCanonical(t *testing.T) {
	for in, want := range map[string]string{
		"StringEquals":                           "StringEquals",
		"stringequals":                           "StringEquals",
		"ForAnyValue:StringLikeIfExists":         "ForAnyValue:StringLikeIfExists",
		"forallvalues:stringnotequalsignorecase": "ForAllValues:StringNotEqualsIgnoreCase",
		"NotIpAddressIfExists":                   "NotIpAddressIfExists",
		"Null":                                   "Null",
	} {
		op, err := parseOperator(in)
		if err != nil || op.canonical != want {
			t.Errorf("parseOperator(%q) = %q, %v; want %q", in, op.canonical, err, want)
		}
	}
}

func TestLineCol(t *testing.T) {
	data := []byte("{\n  \"a\": \"リージョン\",\n  \"b\": 1\n}")
	off := strings.Index(string(data), `"b"`)
	if l, c := lineCol(data, off); l != 3 || c != 3 {
		t.Errorf("lineCol = %d:%d, want 3:3", l, c)
	}
	off = strings.Index(string(data), "ジ")
	if l, c := lineCol(data, off); l != 2 || c != 11 {
		t.Errorf("lineCol = %d:%d, want 2:11 (columns count characters)", l, c)
	}
}
func TestParseDateShapes(t *testing.T) {
	noon := time.Date(2026, 1, 31, 12, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"2026-01-31":                time.Date(2026, 1, 31, 0, 0, 0, 0, time.UTC),
		"2026-01-31T12:00:00Z":      noon,
		"2026-01-31T12:00:00.123Z":  noon.Add(123 * time.Millisecond),
		"2026-01-31T21:00:00+09:00": noon,
		"2026-01-31T21:00+09:00":    noon,
		"2026-01-31T07:00:00-05:00": noon,
		"2026-01-31T12:00Z":         noon,
		"2026-01-31T12:00:00":       noon,
		"2026-01-31T12:00":          noon,
		"20260131T120000Z":          noon,
		"1769860800":                noon,
		"1769860800.5":              noon.Add(500 * time.Millisecond),
	} {
		got, ok := parseDate(in)
		if !ok || !got.Equal(want) {
			t.Errorf("parseDate(%q) = %v, %v; want %v", in, got, ok, want)
		}
	}
	for _, in := range []string{"tomorrow", "2026-13-01", "2026-01-31T25:00:00Z", "", "-", "1e5"} {
		if _, ok := parseDate(in); ok {
			t.Errorf("parseDate(%q) succeeded", in)
		}
	}
}
