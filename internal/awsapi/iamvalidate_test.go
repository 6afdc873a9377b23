package awsapi

import (
	"compress/gzip"
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/kaginashi/kaginashi/internal/apierr"
)

func TestIAMModelCoversEveryOperation(t *testing.T) {
	for name := range iamOps() {
		if _, ok := iamModel[name]; !ok {
			t.Errorf("iam:%s has no model entry in iammodel.go: its parameters are not validated", name)
		}
	}
}

func TestValidateIAM(t *testing.T) {
	long := strings.Repeat("a", 65)
	tags51 := url.Values{"UserName": {"u"}}
	for i := 1; i <= 51; i++ {
		tags51.Set("Tags.member."+strconv.Itoa(i)+".Key", "k"+strconv.Itoa(i))
		tags51.Set("Tags.member."+strconv.Itoa(i)+".Value", "v")
	}
	for _, tc := range []struct {
		op   string
		form url.Values
		want string // "" = valid
	}{
		{"ListPolicies", url.Values{}, ""},
		{"ListPolicies", url.Values{"Scope": {"Local"}, "MaxItems": {"1000"}, "OnlyAttached": {"true"}}, ""},
		{"ListPolicies", url.Values{"Scope": {"Bogus"}},
			"1 validation error detected: Value 'Bogus' at 'scope' failed to satisfy constraint: Member must satisfy enum value set: [All, AWS, Local]"},
		{"ListPolicies", url.Values{"MaxItems": {"0"}},
			"1 validation error detected: Value '0' at 'maxItems' failed to satisfy constraint: Member must have value greater than or equal to 1"},
		{"ListUsers", url.Values{"MaxItems": {"1001"}},
			"1 validation error detected: Value '1001' at 'maxItems' failed to satisfy constraint: Member must have value less than or equal to 1000"},
		{"ListUsers", url.Values{"MaxItems": {"ten"}},
			"1 validation error detected: Value 'ten' at 'maxItems' failed to satisfy constraint: Member must be an integer"},
		{"ListEntitiesForPolicy", url.Values{"PolicyArn": {"arn:aws:iam::aws:policy/X"}, "EntityFilter": {"Users"}, "PolicyUsageFilter": {"Both"}},
			"2 validation errors detected: Value 'Users' at 'entityFilter' failed to satisfy constraint: Member must satisfy enum value set: [User, Role, Group, LocalManagedPolicy, AWSManagedPolicy]; " +
				"Value 'Both' at 'policyUsageFilter' failed to satisfy constraint: Member must satisfy enum value set: [PermissionsPolicy, PermissionsBoundary]"},
		{"GetPolicy", url.Values{},
			"1 validation error detected: Value null at 'policyArn' failed to satisfy constraint: Member must not be null"},
		{"GetPolicy", url.Values{"PolicyArn": {"arn:short"}},
			"1 validation error detected: Value 'arn:short' at 'policyArn' failed to satisfy constraint: Member must have length greater than or equal to 20"},
		{"CreateUser", url.Values{"UserName": {long}},
			"1 validation error detected: Value '" + long + "' at 'userName' failed to satisfy constraint: Member must have length less than or equal to 64"},
		{"GetUser", url.Values{"UserName": {long}}, ""}, // existing users' names may be 128 long
		{"CreateUser", url.Values{"UserName": {"a b"}},
			"The specified value for userName is invalid. It must contain only alphanumeric characters and/or the following: +=,.@_-"},
		{"CreateUser", url.Values{"UserName": {"ok"}, "Path": {"eng"}},
			"The specified value for path is invalid. It must begin and end with / and contain only alphanumeric characters and/or / characters."},
		{"CreateUser", url.Values{"UserName": {"ok"}, "Path": {"/eng/"}, "Tags.member.1.Key": {"team"}, "Tags.member.1.Value": {"a"}}, ""},
		{"CreateUser", url.Values{"UserName": {"ok"}, "Tags.member.1.Key": {strings.Repeat("k", 129)}, "Tags.member.1.Value": {"a"}},
			"1 validation error detected: Value '" + clip(strings.Repeat("k", 129)) + "' at 'tags.1.member.key' failed to satisfy constraint: Member must have length less than or equal to 128"},
		{"CreateUser", url.Values{"UserName": {"ok"}, "Tags.member.1.Key": {"team"}},
			"1 validation error detected: Value null at 'tags.1.member.value' failed to satisfy constraint: Member must not be null"},
		{"TagUser", url.Values{"UserName": {"ok"}, "Tags.member.1.Key": {"bad!"}, "Tags.member.1.Value": {"a"}},
			`1 validation error detected: Value 'bad!' at 'tags.1.member.key' failed to satisfy constraint: Member must satisfy regular expression pattern: [\p{L}\p{Z}\p{N}_.:/=+\-@]+`},
		{"TagUser", tags51,
			"1 validation error detected: Value at 'tags' failed to satisfy constraint: Member must have length less than or equal to 50"},
		{"TagUser", url.Values{"UserName": {"ok"}},
			"1 validation error detected: Value null at 'tags' failed to satisfy constraint: Member must not be null"},
		{"UpdateAccessKey", url.Values{"AccessKeyId": {"AKIAAAAAAAAAAAAAAAAA"}, "Status": {"On"}},
			"1 validation error detected: Value 'On' at 'status' failed to satisfy constraint: Member must satisfy enum value set: [Active, Inactive, Expired]"},
		// Left to iam.ValidatePolicy, after the document's findings.
		{"CreatePolicy", url.Values{"PolicyName": {"p"}, "PolicyDocument": {`{"Sid":"☃"}`}}, ""},
		{"CreatePolicy", url.Values{"PolicyName": {"p"}, "PolicyDocument": {""}},
			"1 validation error detected: Value '' at 'policyDocument' failed to satisfy constraint: Member must have length greater than or equal to 1"},
		{"CreatePolicy", url.Values{"PolicyName": {"p"}, "PolicyDocument": {"{}"}, "SetAsDefault": {"maybe"}}, ""}, // not CreatePolicy's member
		{"CreatePolicyVersion", url.Values{"PolicyArn": {"arn:aws:iam::aws:policy/X"}, "PolicyDocument": {"{}"}, "SetAsDefault": {"maybe"}},
			"1 validation error detected: Value 'maybe' at 'setAsDefault' failed to satisfy constraint: Member must be a boolean (true or false)"},
		{"GetPolicyVersion", url.Values{"PolicyArn": {"arn:aws:iam::aws:policy/X"}, "VersionId": {"1"}},
			"1 validation error detected: Value '1' at 'versionId' failed to satisfy constraint: Member must satisfy regular expression pattern: v[1-9][0-9]*(\\.[A-Za-z0-9-]*)?"},
		// Secrets are never echoed.
		{"CreateLoginProfile", url.Values{"UserName": {"u"}, "Password": {"sécret☃"}},
			`1 validation error detected: Value at 'password' failed to satisfy constraint: Member must satisfy regular expression pattern: [\u0009\u000A\u000D\u0020-\u00FF]+`},
		{"EnableMFADevice", url.Values{"UserName": {"u"}, "SerialNumber": {"arn:aws:iam::1:mfa/x"}, "AuthenticationCode1": {"1234567"}, "AuthenticationCode2": {"123456"}},
			"1 validation error detected: Value at 'authenticationCode1' failed to satisfy constraint: Member must have length less than or equal to 6"},
		{"SimulateCustomPolicy", url.Values{"PolicyInputList.member.1": {"{}"}, "ActionNames.member.1": {"x"}},
			"1 validation error detected: Value 'x' at 'actionNames.1.member' failed to satisfy constraint: Member must have length greater than or equal to 3"},
	} {
		err := validateIAM(tc.form, iamModel[tc.op])
		if tc.want == "" {
			if err != nil {
				t.Errorf("%s %v: %v", tc.op, tc.form, err)
			}
			continue
		}
		ae := apierr.As(err)
		if err == nil || ae.Kind != apierr.InvalidInput || ae.Code != "ValidationError" {
			t.Errorf("%s %v: %v, want ValidationError", tc.op, tc.form, err)
			continue
		}
		if ae.Message != tc.want {
			t.Errorf("%s %v:\n got %s\nwant %s", tc.op, tc.form, ae.Message, tc.want)
		}
		if code, status, _ := errorCode(protoIAM, ae); code != "ValidationError" || status != 400 {
			t.Errorf("%s: wire %s %d", tc.op, code, status)
		}
	}
}

// TestIAMModelMatchesBotocore checks iammodel.go against the model it was
// generated from: botocore's, as the preinstalled aws CLI v1 ships it.
func TestIAMModelMatchesBotocore(t *testing.T) {
	path := os.Getenv("KAGINASHI_BOTOCORE_IAM_MODEL")
	if path == "" {
		matches, _ := filepath.Glob("/root/.pyenv/versions/*/lib/python*/site-packages/botocore/data/iam/2010-05-08/service-2.json.gz")
		if len(matches) == 0 {
			t.Skip("no botocore IAM model here (set KAGINASHI_BOTOCORE_IAM_MODEL)")
		}
		path = matches[0]
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	type shape struct {
		Type     string
		Min, Max *int
		Pattern  string
		Enum     []string
		Required []string
		Member   *struct{ Shape string }
		Members  map[string]struct{ Shape string }
	}
	var m struct {
		Operations map[string]struct{ Input struct{ Shape string } }
		Shapes     map[string]shape
	}
	if err := json.NewDecoder(zr).Decode(&m); err != nil {
		t.Fatal(err)
	}
	checkScalar := func(where string, ours *iamShape, name string) {
		s := m.Shapes[name]
		if ours.name != name {
			t.Errorf("%s: shape %s, model %s", where, ours.name, name)
			return
		}
		lo, hi := 0, -1
		if s.Min != nil {
			lo = *s.Min
		}
		if s.Max != nil {
			hi = *s.Max
		}
		if ours.kind == iamBool {
			return
		}
		if ours.min != lo || ours.max != hi || modelPattern(ours.pattern) != s.Pattern || strings.Join(ours.enum, ",") != strings.Join(s.Enum, ",") {
			t.Errorf("%s (%s): ours %d..%d %q %v, model %d..%d %q %v", where, name, ours.min, ours.max, modelPattern(ours.pattern), ours.enum, lo, hi, s.Pattern, s.Enum)
		}
	}
	for op, members := range iamModel {
		in := m.Shapes[m.Operations[op].Input.Shape]
		if len(in.Members) != len(members) {
			t.Errorf("%s: %d members, model %d", op, len(members), len(in.Members))
		}
		for _, mem := range members {
			ms, ok := in.Members[mem.name]
			if !ok {
				t.Errorf("%s.%s: not in the model", op, mem.name)
				continue
			}
			req := false
			for _, r := range in.Required {
				req = req || r == mem.name
			}
			if req != mem.required {
				t.Errorf("%s.%s: required %v, model %v", op, mem.name, mem.required, req)
			}
			if mem.list == nil {
				checkScalar(op+"."+mem.name, mem.shape, ms.Shape)
				continue
			}
			ls := m.Shapes[ms.Shape]
			if ls.Type != "list" || (ls.Max != nil && *ls.Max != mem.list.max) || (ls.Max == nil && mem.list.max != 0) {
				t.Errorf("%s.%s: list max %d, model %+v", op, mem.name, mem.list.max, ls.Max)
			}
			if mem.list.elem != nil {
				checkScalar(op+"."+mem.name+".member", mem.list.elem, ls.Member.Shape)
				continue
			}
			st := m.Shapes[ls.Member.Shape]
			for _, f := range mem.list.fields {
				checkScalar(op+"."+mem.name+".member."+f.name, f.shape, st.Members[f.name].Shape)
			}
		}
	}
}

// FuzzValidateIAM: any form, no panic, and a failure is a ValidationError.
func FuzzValidateIAM(f *testing.F) {
	f.Add("ListPolicies", "Scope=Bogus&MaxItems=0")
	f.Add("TagUser", "UserName=a&Tags.member.1.Key=k&Tags.member.3.Value=v")
	f.Add("CreateLoginProfile", "UserName=%00&Password=%ff")
	f.Add("SimulateCustomPolicy", "ContextEntries.member.1.ContextKeyType=x&ActionNames=")
	f.Fuzz(func(t *testing.T, op, query string) {
		form, err := url.ParseQuery(query)
		if err != nil {
			return
		}
		members, ok := iamModel[op]
		if !ok {
			members = iamModel["TagUser"]
		}
		if err := validateIAM(form, members); err != nil {
			if ae := apierr.As(err); ae.Code != "ValidationError" || ae.Message == "" {
				t.Fatalf("%v", err)
			}
		}
	})
}
