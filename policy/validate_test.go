package policy

import (
	"os"
	"strings"
	"testing"
)

// stmt wraps statements in a 2012-10-17 policy.
func stmt(statements ...string) string {
	return `{"Version":"2012-10-17","Statement":[` + strings.Join(statements, ",") + `]}`
}

func findingOf(fs []Finding, typ FindingType, code, path string) *Finding {
	for i := range fs {
		if fs[i].Type == typ && fs[i].Code == code && (path == "" || fs[i].Path == path) {
			return &fs[i]
		}
	}
	return nil
}

func TestValidateRules(t *testing.T) {
	const inst = "arn:aws:ec2:us-east-1:123456789012:instance/"
	const eice = "arn:aws:ec2:us-east-1:123456789012:instance-connect-endpoint/"
	tests := []struct {
		name string
		doc  string
		opts ValidateOptions
		typ  FindingType
		code string
		path string
		// absent: the finding must NOT be reported.
		absent bool
		// msg: a fragment the message must contain.
		msg string
	}{
		{name: "not json is an error finding", doc: `{`, typ: FindingError, code: CodeInvalidJSON, path: ""},
		{name: "missing version", doc: `{"Statement":[{"Effect":"Allow","Action":"ec2:DescribeInstances","Resource":"*"}]}`, typ: FindingWarning, code: CodeMissingVersion, path: "Version"},
		{name: "variables under 2008", doc: `{"Version":"2008-10-17","Statement":[{"Effect":"Allow","Action":"iam:GetUser","Resource":"arn:aws:iam::123456789012:user/${aws:username}"}]}`,
			typ: FindingWarning, code: CodeVariablesNeed2012, path: "Statement[0].Resource"},
		{name: "placeholder region", doc: stmt(`{"Effect":"Allow","Action":"ec2-instance-connect:SendSSHPublicKey","Resource":"arn:aws:ec2:リージョン:123456789012:instance/i-0123456789abcdef0"}`),
			typ: FindingError, code: CodeARNPlaceholder, path: "Statement[0].Resource", msg: "region"},
		{name: "placeholder account with deployment's id in fix", opts: ValidateOptions{AccountID: "999988887777"}, doc: stmt(`{"Effect":"Allow","Action":"ec2-instance-connect:SendSSHPublicKey","Resource":"arn:aws:ec2:us-east-1:ACCOUNT_ID:instance/i-0123456789abcdef0"}`),
			typ: FindingError, code: CodeARNPlaceholder, path: "Statement[0].Resource", msg: "999988887777"},
		{name: "placeholder instance id", doc: stmt(`{"Effect":"Allow","Action":"ec2-instance-connect:SendSSHPublicKey","Resource":"arn:aws:ec2:us-east-1:123456789012:instance/インスタンスID"}`),
			typ: FindingError, code: CodeARNPlaceholder, path: "Statement[0].Resource"},
		{name: "bad account", doc: stmt(`{"Effect":"Allow","Action":"ec2-instance-connect:SendSSHPublicKey","Resource":"arn:aws:ec2:us-east-1:1234:instance/i-0123456789abcdef0"}`),
			typ: FindingError, code: CodeInvalidARNAccount},
		{name: "bad region", doc: stmt(`{"Effect":"Allow","Action":"ec2-instance-connect:SendSSHPublicKey","Resource":"arn:aws:ec2:useast1:123456789012:instance/i-0123456789abcdef0"}`),
			typ: FindingError, code: CodeInvalidARNRegion},
		{name: "iam arn with region", doc: stmt(`{"Effect":"Allow","Action":"iam:GetUser","Resource":"arn:aws:iam:us-east-1:123456789012:user/a"}`),
			typ: FindingWarning, code: CodeInvalidARNRegion},
		{name: "short arn", doc: stmt(`{"Effect":"Allow","Action":"iam:GetUser","Resource":"arn:aws:iam:user/a"}`), typ: FindingError, code: CodeInvalidARN},
		{name: "not an arn", doc: stmt(`{"Effect":"Allow","Action":"ec2-instance-connect:SendSSHPublicKey","Resource":"instance/i-0123456789abcdef0"}`), typ: FindingError, code: CodeInvalidARN},
		{name: "bad partition", doc: stmt(`{"Effect":"Allow","Action":"iam:GetUser","Resource":"arn:amazon:iam::123456789012:user/a"}`), typ: FindingError, code: CodeInvalidARNPartition},
		{name: "service wildcard", doc: stmt(`{"Effect":"Allow","Action":"iam:GetUser","Resource":"arn:aws:i*:us-east-1:123456789012:user/a"}`), typ: FindingError, code: CodeServiceWildcard},
		{name: "other account", opts: ValidateOptions{AccountID: "999988887777", Region: "us-east-1"}, doc: stmt(`{"Effect":"Allow","Action":"ec2-instance-connect:SendSSHPublicKey","Resource":"` + inst + `i-0123456789abcdef0"}`),
			typ: FindingWarning, code: CodeOtherAccount},
		{name: "other region", opts: ValidateOptions{AccountID: "123456789012", Region: "eu-west-1"}, doc: stmt(`{"Effect":"Allow","Action":"ec2-instance-connect:SendSSHPublicKey","Resource":"` + inst + `i-0123456789abcdef0"}`),
			typ: FindingWarning, code: CodeOtherAccount, msg: "eu-west-1"},
		{name: "unknown action of served service", doc: stmt(`{"Effect":"Allow","Action":"ec2-instance-connect:SendSSHKey","Resource":"*"}`),
			typ: FindingWarning, code: CodeUnknownAction, path: "Statement[0].Action", msg: "SendSSHPublicKey"},
		{name: "unimplemented ec2 action", doc: stmt(`{"Effect":"Allow","Action":"ec2:RunInstances","Resource":"*"}`), typ: FindingWarning, code: CodeUnknownAction},
		{name: "wildcard matching no served action", doc: stmt(`{"Effect":"Allow","Action":"ec2:Terminate*","Resource":"*"}`), typ: FindingWarning, code: CodeUnknownAction},
		{name: "action of another service", doc: stmt(`{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}`), typ: FindingWarning, code: CodeUnsupportedService},
		{name: "known action with other case is fine", doc: stmt(`{"Effect":"Allow","Action":"EC2:describeinstances","Resource":"*"}`), code: CodeUnknownAction, typ: FindingWarning, absent: true},
		{name: "unknown condition key", doc: stmt(`{"Effect":"Allow","Action":"ec2-instance-connect:SendSSHPublicKey","Resource":"` + inst + `i-0123456789abcdef0","Condition":{"StringEquals":{"ec2:osusr":"ec2-user"}}}`),
			typ: FindingWarning, code: CodeUnknownConditionKey, path: "Statement[0].Condition.StringEquals.ec2:osusr"},
		{name: "key not applicable", doc: stmt(`{"Effect":"Allow","Action":"ec2-instance-connect:OpenTunnel","Resource":"` + eice + `*","Condition":{"StringEquals":{"ec2:osuser":"ec2-user"},"NumericEquals":{"ec2-instance-connect:remotePort":"22"}}}`),
			typ: FindingWarning, code: CodeKeyNotApplicable, path: "Statement[0].Condition.StringEquals.ec2:osuser", msg: "never holds"},
		{name: "key supplied by only some actions", doc: stmt(`{"Effect":"Allow","Action":["ec2-instance-connect:SendSSHPublicKey","ec2:DescribeInstances"],"Resource":"*","Condition":{"StringEquals":{"ec2:osuser":"ec2-user"}}}`),
			typ: FindingSuggestion, code: CodeKeyPartlyApplicable, msg: "ec2:DescribeInstances"},
		// IAM's resource types table: iam:ResourceTag/* is the user's and
		// role's key; the policy resource type has aws:ResourceTag/* only.
		{name: "iam:ResourceTag never holds for a policy", doc: stmt(`{"Effect":"Allow","Action":["iam:GetPolicy","iam:TagPolicy"],"Resource":"arn:aws:iam::123456789012:policy/*","Condition":{"StringEquals":{"iam:ResourceTag/team":"a"}}}`),
			typ: FindingWarning, code: CodeKeyNotApplicable, path: "Statement[0].Condition.StringEquals.iam:ResourceTag/team", msg: "never holds"},
		{name: "iam:ResourceTag holds for a user", doc: stmt(`{"Effect":"Allow","Action":"iam:GetUser","Resource":"arn:aws:iam::123456789012:user/*","Condition":{"StringEquals":{"iam:ResourceTag/team":"a"}}}`),
			typ: FindingWarning, code: CodeKeyNotApplicable, absent: true},
		{name: "aws:ResourceTag holds for a policy", doc: stmt(`{"Effect":"Allow","Action":"iam:GetPolicy","Resource":"arn:aws:iam::123456789012:policy/*","Condition":{"StringEquals":{"aws:ResourceTag/team":"a"}}}`),
			typ: FindingWarning, code: CodeKeyNotApplicable, absent: true},
		{name: "global key applies everywhere", doc: stmt(`{"Effect":"Allow","Action":"ec2:DescribeInstances","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}}`),
			typ: FindingWarning, code: CodeKeyNotApplicable, absent: true},
		{name: "operator type mismatch", doc: stmt(`{"Effect":"Allow","Action":"ec2-instance-connect:OpenTunnel","Resource":"` + eice + `*","Condition":{"StringEquals":{"ec2-instance-connect:remotePort":"22"}}}`),
			typ: FindingError, code: CodeOperatorTypeMismatch, path: "Statement[0].Condition.StringEquals", msg: "Numeric"},
		{name: "ip key with string op", doc: stmt(`{"Effect":"Allow","Action":"ec2:DescribeInstances","Resource":"*","Condition":{"StringLike":{"aws:SourceIp":"10.*"}}}`),
			typ: FindingError, code: CodeOperatorTypeMismatch},
		{name: "arn key with string op is fine", doc: stmt(`{"Effect":"Allow","Action":"ec2:DescribeInstances","Resource":"*","Condition":{"StringLike":{"aws:PrincipalArn":"arn:aws:iam::123456789012:user/*"}}}`),
			typ: FindingError, code: CodeOperatorTypeMismatch, absent: true},
		{name: "epoch time numeric is fine", doc: stmt(`{"Effect":"Allow","Action":"ec2:DescribeInstances","Resource":"*","Condition":{"NumericLessThan":{"aws:EpochTime":"2000000000"}}}`),
			typ: FindingError, code: CodeOperatorTypeMismatch, absent: true},
		{name: "ForAllValues on single valued key with Allow", doc: stmt(`{"Effect":"Allow","Action":"ec2-instance-connect:SendSSHPublicKey","Resource":"` + inst + `i-0123456789abcdef0","Condition":{"ForAllValues:StringEquals":{"ec2:osuser":"ec2-user"}}}`),
			typ: FindingSecurityWarning, code: CodeSetOperatorSingleValued},
		{name: "ForAnyValue on single valued key", doc: stmt(`{"Effect":"Allow","Action":"ec2-instance-connect:SendSSHPublicKey","Resource":"` + inst + `i-0123456789abcdef0","Condition":{"ForAnyValue:StringEquals":{"ec2:osuser":"ec2-user"}}}`),
			typ: FindingWarning, code: CodeSetOperatorSingleValued},
		{name: "multivalued key without qualifier", doc: stmt(`{"Effect":"Allow","Action":"ec2:CreateTags","Resource":"` + inst + `*","Condition":{"StringEquals":{"aws:TagKeys":"team"}}}`),
			typ: FindingWarning, code: CodeMissingSetOperator},
		{name: "arn condition value with too few parts", doc: stmt(`{"Effect":"Allow","Action":"ec2:DescribeInstances","Resource":"*","Condition":{"ArnLike":{"aws:PrincipalArn":["arn:aws:iam::123456789012:user/*","arn:aws:iam:*"]}}}`),
			typ: FindingWarning, code: CodeARNValueShape, path: "Statement[0].Condition.ArnLike.aws:PrincipalArn[1]"},
		{name: "operator spelling", doc: stmt(`{"Effect":"Allow","Action":"ec2:DescribeInstances","Resource":"*","Condition":{"ipaddress":{"aws:SourceIp":"10.0.0.0/8"}}}`),
			typ: FindingSuggestion, code: CodeOperatorSpelling, msg: "IpAddress"},
		{name: "unknown variable", doc: stmt(`{"Effect":"Allow","Action":"iam:GetUser","Resource":"arn:aws:iam::123456789012:user/${aws:usrname}"}`),
			typ: FindingWarning, code: CodeUnknownVariable},
		{name: "multivalued variable", doc: stmt(`{"Effect":"Allow","Action":"iam:GetUser","Resource":"arn:aws:iam::123456789012:user/${aws:TagKeys}"}`),
			typ: FindingWarning, code: CodeVariableNotSingle},
		{name: "seed caution: every instance, no condition", doc: stmt(`{"Effect":"Allow","Action":"ec2-instance-connect:SendSSHPublicKey","Resource":"` + inst + `*"}`),
			typ: FindingSecurityWarning, code: CodeEICAllInstances, path: "Statement[0].Resource"},
		{name: "every instance via Resource star", doc: stmt(`{"Effect":"Allow","Action":"ec2-instance-connect:*","Resource":"*"}`),
			typ: FindingSecurityWarning, code: CodeEICAllInstances},
		{name: "every instance narrowed by osuser is fine", doc: stmt(`{"Effect":"Allow","Action":"ec2-instance-connect:SendSSHPublicKey","Resource":"` + inst + `*","Condition":{"StringEquals":{"ec2:osuser":"ec2-user"}}}`),
			typ: FindingSecurityWarning, code: CodeEICAllInstances, absent: true},
		{name: "StringLike star does not narrow", doc: stmt(`{"Effect":"Allow","Action":"ec2-instance-connect:SendSSHPublicKey","Resource":"` + inst + `*","Condition":{"StringLike":{"ec2:osuser":"*"}}}`),
			typ: FindingSecurityWarning, code: CodeEICAllInstances},
		{name: "one instance is fine", doc: stmt(`{"Effect":"Allow","Action":"ec2-instance-connect:SendSSHPublicKey","Resource":"` + inst + `i-0123456789abcdef0"}`),
			typ: FindingSecurityWarning, code: CodeEICAllInstances, absent: true},
		{name: "root login", doc: stmt(`{"Effect":"Allow","Action":"ec2-instance-connect:SendSSHPublicKey","Resource":"` + inst + `i-0123456789abcdef0","Condition":{"StringLike":{"ec2:osuser":["r*"]}}}`),
			typ: FindingSecurityWarning, code: CodeEICRootLogin},
		{name: "allow with NotAction", doc: stmt(`{"Effect":"Allow","NotAction":"iam:*","Resource":"*"}`), typ: FindingSecurityWarning, code: CodeAllowNotAction, path: "Statement[0].NotAction"},
		{name: "allow with NotResource", doc: stmt(`{"Effect":"Allow","Action":"ec2:DescribeInstances","NotResource":"arn:aws:ec2:us-east-1:123456789012:instance/i-0123456789abcdef0"}`),
			typ: FindingSecurityWarning, code: CodeAllowNotResource, path: "Statement[0].NotResource"},
		{name: "deny with NotAction is fine", doc: stmt(`{"Effect":"Deny","NotAction":"iam:*","Resource":"*"}`), typ: FindingSecurityWarning, code: CodeAllowNotAction, absent: true},
		{name: "allow all", doc: stmt(`{"Effect":"Allow","Action":"*","Resource":"*"}`), typ: FindingSecurityWarning, code: CodeAllowAll},
		{name: "privilege escalation", doc: stmt(`{"Effect":"Allow","Action":"iam:AttachUserPolicy","Resource":"arn:aws:iam::123456789012:user/${aws:username}"}`),
			typ: FindingSecurityWarning, code: CodePrivilegeEscalation},
		{name: "credential takeover", doc: stmt(`{"Effect":"Allow","Action":"iam:CreateAccessKey","Resource":"arn:aws:iam::123456789012:user/*"}`),
			typ: FindingSecurityWarning, code: CodePrivilegeEscalation},
		{name: "own access keys are fine", doc: stmt(`{"Effect":"Allow","Action":"iam:CreateAccessKey","Resource":"arn:aws:iam::123456789012:user/${aws:username}"}`),
			typ: FindingSecurityWarning, code: CodePrivilegeEscalation, absent: true},
		{name: "self-tagging with principal tag conditions", doc: stmt(
			`{"Effect":"Allow","Action":"ec2-instance-connect:SendSSHPublicKey","Resource":"*","Condition":{"StringEquals":{"aws:ResourceTag/Team":"${aws:PrincipalTag/Team}"}}}`,
			`{"Effect":"Allow","Action":"iam:TagUser","Resource":"arn:aws:iam::123456789012:user/${aws:username}"}`),
			typ: FindingSecurityWarning, code: CodePrivilegeEscalation, path: "Statement[1].Action", msg: "retag itself"},
		{name: "self-tagging limited by aws:TagKeys is fine", doc: stmt(
			`{"Effect":"Allow","Action":"ec2:DescribeInstances","Resource":"*","Condition":{"StringEquals":{"aws:PrincipalTag/Team":"ops"}}}`,
			`{"Effect":"Allow","Action":"iam:TagUser","Resource":"arn:aws:iam::123456789012:user/${aws:username}","Condition":{"ForAllValues:StringNotEqualsIgnoreCase":{"aws:TagKeys":["Team"]}}}`),
			typ: FindingSecurityWarning, code: CodePrivilegeEscalation, absent: true},
		{name: "a Deny on tagging that does not limit tag keys does not silence it", doc: stmt(
			`{"Effect":"Allow","Action":"ec2:DescribeInstances","Resource":"*","Condition":{"StringEquals":{"aws:PrincipalTag/Team":"ops"}}}`,
			`{"Effect":"Allow","Action":"iam:TagUser","Resource":"arn:aws:iam::123456789012:user/${aws:username}"}`,
			`{"Effect":"Deny","Action":"iam:TagUser","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":"false"}}}`),
			typ: FindingSecurityWarning, code: CodePrivilegeEscalation, path: "Statement[1].Action"},
		{name: "a Deny on tagging the decided keys silences it", doc: stmt(
			`{"Effect":"Allow","Action":"ec2:DescribeInstances","Resource":"*","Condition":{"StringEquals":{"aws:PrincipalTag/Team":"ops"}}}`,
			`{"Effect":"Allow","Action":"iam:TagUser","Resource":"arn:aws:iam::123456789012:user/${aws:username}"}`,
			`{"Effect":"Deny","Action":["iam:TagUser","iam:UntagUser"],"Resource":"*","Condition":{"ForAnyValue:StringEqualsIgnoreCase":{"aws:TagKeys":["Team"]}}}`),
			typ: FindingSecurityWarning, code: CodePrivilegeEscalation, absent: true},
		{name: "tagging without principal tag conditions is fine", doc: stmt(
			`{"Effect":"Allow","Action":"iam:TagUser","Resource":"arn:aws:iam::123456789012:user/${aws:username}"}`),
			typ: FindingSecurityWarning, code: CodePrivilegeEscalation, absent: true},
		{name: "principal in identity policy", doc: stmt(`{"Effect":"Allow","Principal":"*","Action":"ec2:DescribeInstances","Resource":"*"}`),
			typ: FindingError, code: CodePrincipalInIdentity},
		{name: "missing principal in resource policy", opts: ValidateOptions{Type: ResourcePolicy}, doc: stmt(`{"Effect":"Allow","Action":"ec2:DescribeInstances","Resource":"*"}`),
			typ: FindingError, code: CodeMissingPrincipal},
		{name: "public principal", opts: ValidateOptions{Type: ResourcePolicy}, doc: stmt(`{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"ec2:DescribeInstances","Resource":"*"}`),
			typ: FindingSecurityWarning, code: CodePublicPrincipal},
		{name: "missing resource", doc: stmt(`{"Effect":"Allow","Action":"ec2:DescribeInstances"}`), typ: FindingError, code: CodeMissingResource},
		{name: "bad sid", doc: stmt(`{"Sid":"allow ssh!","Effect":"Allow","Action":"ec2:DescribeInstances","Resource":"*"}`), typ: FindingError, code: CodeInvalidSid, path: "Statement[0].Sid"},
		{name: "OpenTunnel on instance ARN", doc: stmt(`{"Effect":"Allow","Action":["ec2-instance-connect:SendSSHPublicKey","ec2-instance-connect:OpenTunnel"],"Resource":"` + inst + `i-0123456789abcdef0"}`),
			typ: FindingWarning, code: CodeResourceTypeMismatch, path: "Statement[0].Action[1]", msg: "arn:aws:ec2:us-east-1:123456789012:instance-connect-endpoint/*"},
		{name: "SendSSHPublicKey on endpoint ARN", doc: stmt(`{"Effect":"Allow","Action":"ec2-instance-connect:SendSSHPublicKey","Resource":"` + eice + `*"}`),
			typ: FindingWarning, code: CodeResourceTypeMismatch, msg: "instance/ID"},
		{name: "describe on an ARN", doc: stmt(`{"Effect":"Allow","Action":"ec2:DescribeInstances","Resource":"` + inst + `*"}`),
			typ: FindingWarning, code: CodeNoResourceLevel},
		{name: "OpenTunnel any port", doc: stmt(`{"Effect":"Allow","Action":"ec2-instance-connect:OpenTunnel","Resource":"` + eice + `*"}`),
			typ: FindingSuggestion, code: CodeOpenTunnelAnyPort},
		{name: "redundant action", doc: stmt(`{"Effect":"Allow","Action":["ec2:DescribeInstances","ec2:Describe*"],"Resource":"*"}`),
			typ: FindingSuggestion, code: CodeRedundantAction, path: "Statement[0].Action[0]"},
		{name: "duplicate action reported once", doc: stmt(`{"Effect":"Allow","Action":["ec2:DescribeInstances","ec2:describeinstances"],"Resource":"*"}`),
			typ: FindingSuggestion, code: CodeRedundantAction, path: "Statement[0].Action[1]"},
		{name: "redundant resource", doc: stmt(`{"Effect":"Allow","Action":"ec2-instance-connect:SendSSHPublicKey","Resource":["` + inst + `i-0123456789abcdef0","` + inst + `*"],"Condition":{"StringEquals":{"ec2:osuser":"a"}}}`),
			typ: FindingSuggestion, code: CodeRedundantResource, path: "Statement[0].Resource[0]"},
		{name: "resource star in a segment does not cover a colon", doc: stmt(`{"Effect":"Allow","Action":"ec2-instance-connect:SendSSHPublicKey","Resource":["` + inst + `i-*x","arn:aws:ec2:us-east-1:123456789012:instance/i-1:x"],"Condition":{"StringEquals":{"ec2:osuser":"a"}}}`),
			typ: FindingSuggestion, code: CodeRedundantResource, absent: true},
		{name: "redundant statement", doc: stmt(`{"Sid":"A","Effect":"Allow","Action":"ec2:DescribeInstances","Resource":"*"}`, `{"Sid":"B","Effect":"Allow","Action":"ec2:Describe*","Resource":"*"}`),
			typ: FindingSuggestion, code: CodeRedundantStatement, path: "Statement[0]"},
		{name: "conditional statement does not cover", doc: stmt(`{"Effect":"Allow","Action":"ec2:DescribeInstances","Resource":"*"}`, `{"Effect":"Allow","Action":"ec2:Describe*","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":"true"}}}`),
			typ: FindingSuggestion, code: CodeRedundantStatement, absent: true},
		{name: "shadowed by deny", doc: stmt(`{"Effect":"Allow","Action":"ec2-instance-connect:SendSSHPublicKey","Resource":"`+inst+`i-0123456789abcdef0"}`, `{"Effect":"Deny","Action":"ec2-instance-connect:*","Resource":"*"}`),
			typ: FindingSuggestion, code: CodeShadowedByDeny, path: "Statement[0]"},
		{name: "too large", doc: stmt(`{"Effect":"Allow","Action":"ec2:DescribeInstances","Resource":"*","Condition":{"StringEquals":{"aws:username":["` + strings.Repeat("a", 7000) + `"]}}}`),
			typ: FindingWarning, code: CodePolicyTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := Validate([]byte(tt.doc), tt.opts)
			f := findingOf(fs, tt.typ, tt.code, tt.path)
			if tt.absent {
				if f != nil {
					t.Fatalf("unexpected %s %s at %s: %s", f.Type, f.Code, f.Path, f.Message)
				}
				return
			}
			if f == nil {
				t.Fatalf("want %s %s at %q; got %+v", tt.typ, tt.code, tt.path, fs)
			}
			if f.Message == "" || !strings.Contains(f.Message, tt.msg) {
				t.Errorf("message %q lacks %q", f.Message, tt.msg)
			}
			if tt.code != CodeInvalidJSON && f.Path != "" && f.Line == 0 {
				t.Errorf("finding has no line: %+v", f)
			}
		})
	}
}

func TestValidateFindingsAreSorted(t *testing.T) {
	fs := Validate([]byte(stmt(
		`{"Effect":"Allow","Action":["ec2:DescribeInstances","ec2:Describe*"],"Resource":"*"}`,
		`{"Effect":"Allow","Action":"*","Resource":"*"}`,
		`{"Effect":"Allow","Action":"ec2:DescribeInstances","Resource":"arn:aws:ec2:リージョン:123456789012:instance/*"}`,
	)), ValidateOptions{})
	for i := 1; i < len(fs); i++ {
		if fs[i-1].Type.rank() > fs[i].Type.rank() {
			t.Fatalf("findings out of order: %v before %v", fs[i-1].Type, fs[i].Type)
		}
	}
	if len(fs) < 3 || fs[0].Type != FindingError {
		t.Fatalf("got %+v", fs)
	}
}

func TestValidateCleanPolicyHasNoFindings(t *testing.T) {
	doc := stmt(
		`{"Sid":"Push","Effect":"Allow","Action":"ec2-instance-connect:SendSSHPublicKey","Resource":"arn:aws:ec2:us-east-1:123456789012:instance/*","Condition":{"StringEquals":{"ec2:osuser":"ubuntu","aws:ResourceTag/team":"${aws:PrincipalTag/team}"}}}`,
		`{"Sid":"Tunnel","Effect":"Allow","Action":"ec2-instance-connect:OpenTunnel","Resource":"arn:aws:ec2:us-east-1:123456789012:instance-connect-endpoint/*","Condition":{"NumericEquals":{"ec2-instance-connect:remotePort":"22"}}}`,
		`{"Sid":"Read","Effect":"Allow","Action":["ec2:DescribeInstances","ec2:DescribeInstanceConnectEndpoints"],"Resource":"*"}`,
		`{"Sid":"Self","Effect":"Allow","Action":["iam:GetUser","iam:ListAccessKeys"],"Resource":"arn:aws:iam::123456789012:user/${aws:username}"}`,
		`{"Sid":"NoRoot","Effect":"Deny","Action":"ec2-instance-connect:SendSSHPublicKey","Resource":"*","Condition":{"StringEquals":{"ec2:osuser":"root"}}}`,
	)
	if fs := Validate([]byte(doc), ValidateOptions{Region: "us-east-1", AccountID: "123456789012"}); len(fs) != 0 {
		t.Fatalf("want no findings, got %+v", fs)
	}
}

// The seed article's policy: with placeholders it is an ERROR; filled in,
// it has no ERROR but a SECURITY_WARNING for instance/* and a WARNING that
// its OpenTunnel grant never matches, naming the right ARN.
func TestValidateSeedPolicy(t *testing.T) {
	raw, err := os.ReadFile("../examples/seed-policy.json")
	if err != nil {
		t.Fatal(err)
	}
	fs := Validate(raw, ValidateOptions{})
	if !HasErrors(fs) {
		t.Fatalf("seed policy with placeholders: want ERROR, got %+v", fs)
	}
	var placeholders []string
	for _, f := range fs {
		if f.Code == CodeARNPlaceholder {
			placeholders = append(placeholders, f.Message)
		}
	}
	if len(placeholders) != 2 || !strings.Contains(placeholders[0]+placeholders[1], "リージョン") || !strings.Contains(placeholders[0]+placeholders[1], "アカウントID") {
		t.Errorf("want both placeholders named, got %q", placeholders)
	}

	filled, err := os.ReadFile("../examples/seed-policy-filled.json")
	if err != nil {
		t.Fatal(err)
	}
	fs = Validate(filled, ValidateOptions{})
	if HasErrors(fs) {
		t.Fatalf("filled seed policy: want no ERROR, got %+v", fs)
	}
	if findingOf(fs, FindingSecurityWarning, CodeEICAllInstances, "Statement[0].Resource") == nil {
		t.Errorf("want the instance/* security warning, got %+v", fs)
	}
	f := findingOf(fs, FindingWarning, CodeResourceTypeMismatch, "Statement[0].Action[1]")
	if f == nil || !strings.Contains(f.Message, "arn:aws:ec2:ap-northeast-1:123456789012:instance-connect-endpoint/*") {
		t.Errorf("want the OpenTunnel resource warning with the fix, got %+v", fs)
	}
}

func TestEICTemplate(t *testing.T) {
	tests := []struct {
		name string
		tpl  EICTemplate
		// allowed and denied requests against the generated policy
		allow, deny []Request
	}{
		{
			name: "instances and users",
			tpl:  EICTemplate{Region: "ap-northeast-1", AccountID: "123456789012", InstanceIDs: []string{"i-0123456789abcdef0"}, OSUsers: []string{"ec2-user", "ubuntu"}, EndpointID: "eice-0123456789abcdef0", MaxTunnelDuration: 600},
			allow: []Request{
				{Action: "ec2-instance-connect:SendSSHPublicKey", Resource: "arn:aws:ec2:ap-northeast-1:123456789012:instance/i-0123456789abcdef0", Context: ctxOf("ec2:osuser", "ubuntu")},
				{Action: "ec2-instance-connect:OpenTunnel", Resource: "arn:aws:ec2:ap-northeast-1:123456789012:instance-connect-endpoint/eice-0123456789abcdef0", Context: ctxOf("ec2-instance-connect:remotePort", "22", "ec2-instance-connect:maxTunnelDuration", "600")},
				{Action: "ec2:DescribeInstances", Resource: "*"},
				{Action: "ec2:DescribeInstanceConnectEndpoints", Resource: "*"},
			},
			deny: []Request{
				{Action: "ec2-instance-connect:SendSSHPublicKey", Resource: "arn:aws:ec2:ap-northeast-1:123456789012:instance/i-0fedcba9876543210", Context: ctxOf("ec2:osuser", "ubuntu")},
				{Action: "ec2-instance-connect:SendSSHPublicKey", Resource: "arn:aws:ec2:ap-northeast-1:123456789012:instance/i-0123456789abcdef0", Context: ctxOf("ec2:osuser", "root")},
				{Action: "ec2-instance-connect:OpenTunnel", Resource: "arn:aws:ec2:ap-northeast-1:123456789012:instance-connect-endpoint/eice-0123456789abcdef0", Context: ctxOf("ec2-instance-connect:remotePort", "3389", "ec2-instance-connect:maxTunnelDuration", "600")},
				{Action: "ec2-instance-connect:OpenTunnel", Resource: "arn:aws:ec2:ap-northeast-1:123456789012:instance-connect-endpoint/eice-0123456789abcdef0", Context: ctxOf("ec2-instance-connect:remotePort", "22", "ec2-instance-connect:maxTunnelDuration", "3600")},
				{Action: "iam:CreateUser", Resource: "arn:aws:iam::123456789012:user/x"},
			},
		},
		{
			name: "tag and source ip",
			tpl:  EICTemplate{Region: "us-east-1", AccountID: "123456789012", Tags: []Tag{{"team", "web"}}, OSUsers: []string{"admin"}, SourceIPs: []string{"203.0.113.0/24"}},
			allow: []Request{
				{Action: "ec2-instance-connect:SendSSHPublicKey", Resource: "arn:aws:ec2:us-east-1:123456789012:instance/i-0123456789abcdef0", Context: ctxOf("ec2:osuser", "admin", "aws:ResourceTag/team", "web", "aws:SourceIp", "203.0.113.9")},
				{Action: "ec2-instance-connect:OpenTunnel", Resource: "arn:aws:ec2:us-east-1:123456789012:instance-connect-endpoint/eice-1", Context: ctxOf("ec2-instance-connect:remotePort", "22", "ec2-instance-connect:maxTunnelDuration", "3600", "aws:SourceIp", "203.0.113.9")},
			},
			deny: []Request{
				{Action: "ec2-instance-connect:SendSSHPublicKey", Resource: "arn:aws:ec2:us-east-1:123456789012:instance/i-0123456789abcdef0", Context: ctxOf("ec2:osuser", "admin", "aws:ResourceTag/team", "db", "aws:SourceIp", "203.0.113.9")},
				{Action: "ec2-instance-connect:SendSSHPublicKey", Resource: "arn:aws:ec2:us-east-1:123456789012:instance/i-0123456789abcdef0", Context: ctxOf("ec2:osuser", "admin", "aws:ResourceTag/team", "web", "aws:SourceIp", "198.51.100.1")},
				{Action: "ec2-instance-connect:OpenTunnel", Resource: "arn:aws:ec2:us-east-1:123456789012:instance-connect-endpoint/eice-1", Context: ctxOf("ec2-instance-connect:remotePort", "22", "ec2-instance-connect:maxTunnelDuration", "3600")},
			},
		},
		{
			name: "defaults",
			tpl:  EICTemplate{Region: "eu-central-1", AccountID: "123456789012"},
			allow: []Request{
				{Action: "ec2-instance-connect:SendSSHPublicKey", Resource: "arn:aws:ec2:eu-central-1:123456789012:instance/i-0123456789abcdef0", Context: ctxOf("ec2:osuser", DefaultOSUser)},
			},
			deny: []Request{
				{Action: "ec2-instance-connect:SendSSHPublicKey", Resource: "arn:aws:ec2:eu-central-1:123456789012:instance/i-0123456789abcdef0", Context: ctxOf("ec2:osuser", "ubuntu")},
				{Action: "ec2-instance-connect:SendSSHPublicKey", Resource: "arn:aws:ec2:us-east-1:123456789012:instance/i-0123456789abcdef0", Context: ctxOf("ec2:osuser", DefaultOSUser)},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc, _, err := tt.tpl.Document()
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range Validate(doc, ValidateOptions{Region: tt.tpl.Region, AccountID: tt.tpl.AccountID}) {
				if f.Type != FindingSuggestion {
					t.Errorf("template output has %s %s: %s\n%s", f.Type, f.Code, f.Message, doc)
				}
			}
			c, err := ParseAndCompile("eic", doc)
			if err != nil {
				t.Fatal(err)
			}
			set := NewSet(c)
			for _, r := range tt.allow {
				if d := set.Decide(&r).Decision; d != Allowed {
					t.Errorf("%s %s: %v, want allowed", r.Action, r.Resource, d)
				}
			}
			for _, r := range tt.deny {
				if d := set.Decide(&r).Decision; d != ImplicitDeny {
					t.Errorf("%s %s %v: %v, want implicitDeny", r.Action, r.Resource, r.Context, d)
				}
			}
		})
	}
}

func TestEICTemplateRejectsBadInput(t *testing.T) {
	base := EICTemplate{Region: "us-east-1", AccountID: "123456789012"}
	for name, mut := range map[string]func(*EICTemplate){
		"region":      func(t *EICTemplate) { t.Region = "リージョン" },
		"account":     func(t *EICTemplate) { t.AccountID = "12" },
		"instance":    func(t *EICTemplate) { t.InstanceIDs = []string{"i-XYZ"} },
		"os user":     func(t *EICTemplate) { t.OSUsers = []string{"bad user"} },
		"tag":         func(t *EICTemplate) { t.Tags = []Tag{{"team", "${aws:username}"}} },
		"source ip":   func(t *EICTemplate) { t.SourceIPs = []string{"10.0.0.0/99"} },
		"duration":    func(t *EICTemplate) { t.MaxTunnelDuration = 3601 },
		"endpoint":    func(t *EICTemplate) { t.EndpointID = "x" },
		"partition":   func(t *EICTemplate) { t.Partition = "amazon" },
		"os user $":   func(t *EICTemplate) { t.OSUsers = []string{"a$b"} },
		"digits only": func(t *EICTemplate) { t.OSUsers = []string{"1234"} },
	} {
		tpl := base
		mut(&tpl)
		if _, _, err := tpl.Document(); err == nil {
			t.Errorf("%s: want an error", name)
		}
	}
}

func TestValidOSUser(t *testing.T) {
	for _, u := range []string{"ec2-user", "ubuntu", "_svc", "a", "a.b@c", "user$", "1a", "12-x", strings.Repeat("a", 32)} {
		if err := ValidOSUser(u); err != nil {
			t.Errorf("%q: %v", u, err)
		}
	}
	for _, u := range []string{"", "-a", "a b", "a$b", "1", "123", strings.Repeat("a", 33), "a\n", "rööt", "a;b"} {
		if ValidOSUser(u) == nil {
			t.Errorf("%q: want invalid", u)
		}
	}
}

// ctxOf builds a context from key, value pairs.
func ctxOf(kv ...string) *Context {
	c := NewContext()
	for i := 0; i+1 < len(kv); i += 2 {
		c.Add(kv[i], kv[i+1])
	}
	return c
}
