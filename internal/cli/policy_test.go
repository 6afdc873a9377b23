package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// run executes the command line in-process, exactly as main does.
func run(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = Main(context.Background(), args, IO{In: strings.NewReader(stdin), Out: &out, Err: &errb})
	return code, out.String(), errb.String()
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

const seed = "../../examples/seed-policy.json"
const seedFilled = "../../examples/seed-policy-filled.json"

type findingsJSON struct {
	Findings []struct {
		Type, Code, Message, Path string
	} `json:"findings"`
}

func TestValidateContract(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		stdin    string
		code     int
		wantType string // a finding type that must appear ("" = list must be empty)
		wantPath string
	}{
		{"placeholders are errors", []string{"policy", "validate", seed, "--output", "json"}, "", 1, "ERROR", "Statement[0].Resource"},
		{"filled seed has no error", []string{"policy", "validate", "--output", "json", seedFilled}, "", 0, "SECURITY_WARNING", "Statement[0].Resource"},
		{"not JSON is a finding", []string{"policy", "validate", "-", "--output=json"}, "this is not json", 1, "ERROR", ""},
		{"clean policy", []string{"policy", "validate", "-", "-o", "json"}, `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ec2:DescribeInstances","Resource":"*"}]}`, 0, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := run(t, tt.stdin, tt.args...)
			if code != tt.code {
				t.Fatalf("exit %d, want %d; stderr %q", code, tt.code, errOut)
			}
			var got findingsJSON
			if err := json.Unmarshal([]byte(out), &got); err != nil {
				t.Fatalf("stdout is not JSON: %v\n%s", err, out)
			}
			if !strings.Contains(out, `"findings": [`) {
				t.Errorf("findings must be a list, even when empty: %s", out)
			}
			if tt.wantType == "" {
				if len(got.Findings) != 0 {
					t.Errorf("want no findings, got %+v", got.Findings)
				}
				return
			}
			for _, f := range got.Findings {
				if f.Type == tt.wantType && f.Path == tt.wantPath && f.Code != "" && f.Message != "" {
					return
				}
			}
			t.Errorf("want a %s finding at %q, got %+v", tt.wantType, tt.wantPath, got.Findings)
		})
	}
}

func TestValidateUsageErrors(t *testing.T) {
	for name, args := range map[string][]string{
		"no file":        {"policy", "validate"},
		"two files":      {"policy", "validate", seed, seed},
		"missing file":   {"policy", "validate", "/nonexistent/policy.json"},
		"bad output":     {"policy", "validate", seed, "--output", "yaml"},
		"unknown flag":   {"policy", "validate", seed, "--frobnicate"},
		"directory":      {"policy", "validate", os.TempDir()},
		"simulate no -a": {"policy", "simulate", "--policy", seed},
	} {
		t.Run(name, func(t *testing.T) {
			code, _, errOut := run(t, "", args...)
			if code != ExitUsage {
				t.Fatalf("exit %d, want %d", code, ExitUsage)
			}
			if !strings.HasPrefix(errOut, "kaginashi: ") {
				t.Errorf("stderr should say what went wrong: %q", errOut)
			}
		})
	}
}

func TestValidateTextOutput(t *testing.T) {
	code, out, _ := run(t, "", "policy", "validate", seed)
	if code != 1 {
		t.Fatalf("exit %d", code)
	}
	for _, want := range []string{"2 errors", "ERROR", "ARN_PLACEHOLDER", "seed-policy.json:10:25 Statement[0].Resource", "リージョン", "SECURITY_WARNING", "ACTION_RESOURCE_TYPE_MISMATCH"} {
		if !strings.Contains(out, want) {
			t.Errorf("text output lacks %q:\n%s", want, out)
		}
	}
}

type simulateJSONOut struct {
	Decision          string `json:"decision"`
	MatchedStatements []struct {
		Policy string `json:"policy"`
		Sid    string `json:"sid"`
		Index  *int   `json:"index"`
	} `json:"matchedStatements"`
	MissingContextKeys []string `json:"missingContextKeys"`
}

func TestSimulateContract(t *testing.T) {
	deny := writeFile(t, "deny.json", `{"Version":"2012-10-17","Statement":[{"Sid":"NoRoot","Effect":"Deny","Action":"ec2-instance-connect:SendSSHPublicKey","Resource":"*","Condition":{"StringEquals":{"ec2:osuser":"root"}}}]}`)
	tags := writeFile(t, "tags.json", `{"Version":"2012-10-17","Statement":[{"Sid":"T","Effect":"Allow","Action":"ec2:CreateTags","Resource":"*","Condition":{"ForAllValues:StringEquals":{"aws:TagKeys":["team","env"]},"NumericLessThan":{"k:n":"10"}}}]}`)
	inst := "arn:aws:ec2:ap-northeast-1:123456789012:instance/i-0123456789abcdef0"
	tests := []struct {
		name     string
		args     []string
		decision string
		policy   string
		index    int
		missing  []string
	}{
		{"seed allows push", []string{"--policy", seedFilled, "--action", "ec2-instance-connect:SendSSHPublicKey", "--resource", inst}, "allowed", seedFilled, 0, nil},
		{"seed allows describe", []string{"--policy", seedFilled, "--action", "ec2:DescribeInstances", "--resource", "*"}, "allowed", seedFilled, 1, nil},
		{"seed never allows OpenTunnel", []string{"--policy", seedFilled, "--action", "ec2-instance-connect:OpenTunnel", "--resource", "arn:aws:ec2:ap-northeast-1:123456789012:instance-connect-endpoint/eice-1"}, "implicitDeny", "", 0, nil},
		{"other region", []string{"--policy", seedFilled, "--action", "ec2-instance-connect:SendSSHPublicKey", "--resource", "arn:aws:ec2:us-east-1:123456789012:instance/i-0123456789abcdef0"}, "implicitDeny", "", 0, nil},
		{"explicit deny wins", []string{"--policy", seedFilled, "--policy", deny, "--action", "ec2-instance-connect:SendSSHPublicKey", "--resource", inst, "--context", "ec2:osuser=root"}, "explicitDeny", deny, 0, nil},
		{"missing key reported", []string{"--policy", seedFilled, "--policy", deny, "--action", "ec2-instance-connect:SendSSHPublicKey", "--resource", inst}, "allowed", seedFilled, 0, []string{"ec2:osuser"}},
		{"multivalued context", []string{"--policy", tags, "--action", "ec2:CreateTags", "--context", "aws:TagKeys=team", "--context", "aws:TagKeys=env", "--context", "k:n=9.5"}, "allowed", tags, 0, nil},
		{"multivalued context, one value outside", []string{"--policy", tags, "--action", "ec2:CreateTags", "--context", "aws:TagKeys=team", "--context", "aws:TagKeys=owner", "--context", "k:n=9"}, "implicitDeny", "", 0, nil},
		{"values typed by operator", []string{"--policy", tags, "--action", "ec2:CreateTags", "--context", "aws:TagKeys=team", "--context", "k:n=1e1"}, "implicitDeny", "", 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"policy", "simulate", "--output", "json"}, tt.args...)
			code, out, errOut := run(t, "", args...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			var got simulateJSONOut
			if err := json.Unmarshal([]byte(out), &got); err != nil {
				t.Fatalf("not JSON: %v\n%s", err, out)
			}
			if got.Decision != tt.decision {
				t.Fatalf("decision %q, want %q\n%s", got.Decision, tt.decision, out)
			}
			if got.MatchedStatements == nil || got.MissingContextKeys == nil {
				t.Errorf("lists must be present even when empty: %s", out)
			}
			if tt.policy == "" {
				if len(got.MatchedStatements) != 0 {
					t.Errorf("implicit deny lists no statements: %s", out)
				}
			} else if len(got.MatchedStatements) != 1 || got.MatchedStatements[0].Policy != tt.policy || got.MatchedStatements[0].Index == nil || *got.MatchedStatements[0].Index != tt.index {
				t.Errorf("matched %+v, want %s[%d]", got.MatchedStatements, tt.policy, tt.index)
			}
			if strings.Join(got.MissingContextKeys, ",") != strings.Join(tt.missing, ",") {
				t.Errorf("missing %v, want %v", got.MissingContextKeys, tt.missing)
			}
		})
	}
}

func TestSimulateRefusesPolicyWithErrors(t *testing.T) {
	code, out, errOut := run(t, "", "policy", "simulate", "--policy", seed, "--action", "ec2:DescribeInstances", "--resource", "*")
	if code != ExitUsage {
		t.Fatalf("exit %d, want 2", code)
	}
	if out != "" || !strings.Contains(errOut, "ARN_PLACEHOLDER") {
		t.Errorf("want the findings on stderr and nothing on stdout; stdout %q stderr %q", out, errOut)
	}
}

func TestSimulateRefusesPolicyWithErrorsJSON(t *testing.T) {
	code, out, errOut := run(t, "", "policy", "simulate", "--policy", seed, "--action", "ec2:DescribeInstances", "--resource", "*", "--output", "json")
	if code != ExitUsage {
		t.Fatalf("exit %d, want 2", code)
	}
	var got struct {
		Findings []struct{ Policy, Type, Code, Path string }
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("stdout is not JSON: %v\n%s", err, out)
	}
	if len(got.Findings) != 2 || got.Findings[0].Code != "ARN_PLACEHOLDER" || got.Findings[0].Type != "ERROR" || got.Findings[0].Policy != seed ||
		got.Findings[0].Path != "Statement[0].Resource" {
		t.Errorf("findings: %+v", got.Findings)
	}
	if !strings.Contains(errOut, "fix them first") {
		t.Errorf("stderr: %q", errOut)
	}
}

func TestSimulateTextSaysWhy(t *testing.T) {
	code, out, _ := run(t, "", "policy", "simulate", "--policy", seedFilled, "--action", "ec2-instance-connect:OpenTunnel",
		"--resource", "arn:aws:ec2:ap-northeast-1:123456789012:instance-connect-endpoint/eice-1")
	if code != 0 {
		t.Fatal(code)
	}
	for _, want := range []string{"decision:  implicitDeny", "Statement[0]", "the resource matches no Resource value", "the action is not in Action"} {
		if !strings.Contains(out, want) {
			t.Errorf("lacks %q:\n%s", want, out)
		}
	}
	_, out, _ = run(t, "", "policy", "simulate", "--policy", seedFilled, "--action", "ec2:DescribeInstances")
	if !strings.Contains(out, "allowed by:") || !strings.Contains(out, "Statement[1]") {
		t.Errorf("want the deciding statement:\n%s", out)
	}
}

func TestTemplateEIC(t *testing.T) {
	code, out, errOut := run(t, "", "policy", "template", "eic", "--region", "ap-northeast-1", "--account-id", "123456789012",
		"--instance-id", "i-0123456789abcdef0", "--instance-id", "i-0fedcba9876543210", "--os-user", "ec2-user",
		"--endpoint-id", "eice-0123456789abcdef0", "--source-ip", "203.0.113.0/24", "--max-tunnel-duration", "900")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"instance/i-0fedcba9876543210", "instance-connect-endpoint/eice-0123456789abcdef0", `"900"`, "203.0.113.0/24", "ec2:DescribeInstanceConnectEndpoints"} {
		if !strings.Contains(out, want) {
			t.Errorf("template lacks %q:\n%s", want, out)
		}
	}
	// Its output validates with no ERROR and no SECURITY_WARNING.
	code, vout, _ := run(t, out, "policy", "validate", "-", "--output", "json")
	var got findingsJSON
	if err := json.Unmarshal([]byte(vout), &got); err != nil || code != 0 {
		t.Fatalf("validate: exit %d, %v", code, err)
	}
	for _, f := range got.Findings {
		if f.Type == "ERROR" || f.Type == "SECURITY_WARNING" {
			t.Errorf("template output has %+v", f)
		}
	}

	code, _, errOut = run(t, "", "policy", "template", "eic", "--region", "ap-northeast-1")
	if code != ExitUsage || !strings.Contains(errOut, "--account-id") {
		t.Errorf("missing --account-id: exit %d, %q", code, errOut)
	}
	code, out, errOut = run(t, "", "policy", "template", "eic", "--region", "us-east-1", "--account-id", "123456789012", "--tag", "team=web")
	if code != 0 || !strings.Contains(out, `"aws:ResourceTag/team": "web"`) || !strings.Contains(errOut, "note:") {
		t.Errorf("tag template: exit %d, stdout %s, stderr %q", code, out, errOut)
	}
}

func TestActions(t *testing.T) {
	code, out, _ := run(t, "", "policy", "actions", "--service", "ec2-instance-connect")
	if code != 0 || !strings.Contains(out, "ec2-instance-connect:OpenTunnel") || !strings.Contains(out, "instance-connect-endpoint") || strings.Contains(out, "iam:") {
		t.Errorf("exit %d:\n%s", code, out)
	}
}

// --permissions-boundary caps the policies: both must allow, a deny in
// either is final, and the output says when the boundary is the reason.
func TestSimulatePermissionsBoundary(t *testing.T) {
	admin := writeFile(t, "admin.json", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}`)
	bound := writeFile(t, "boundary.json", `{"Version":"2012-10-17","Statement":[{"Sid":"EIC","Effect":"Allow","Action":"ec2-instance-connect:*","Resource":"*"},{"Sid":"NoRoot","Effect":"Deny","Action":"ec2-instance-connect:SendSSHPublicKey","Resource":"*","Condition":{"StringEquals":{"ec2:osuser":"root"}}}]}`)
	type out struct {
		Decision            string
		PermissionsBoundary *struct {
			Policy  string
			Allowed bool
		}
		DeniedByPermissionsBoundary *bool
		MatchedStatements           []struct{ Policy, Sid string }
	}
	for _, tt := range []struct {
		name, action, osuser, decision string
		allowed, deniedBy              bool
		matched                        []string // policy files of the deciding statements
	}{
		{"both allow", "ec2-instance-connect:SendSSHPublicKey", "ec2-user", "allowed", true, false, []string{admin, bound}},
		{"outside the boundary", "iam:CreateUser", "", "implicitDeny", false, true, nil},
		{"the boundary's deny", "ec2-instance-connect:SendSSHPublicKey", "root", "explicitDeny", false, true, []string{bound}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			args := []string{"policy", "simulate", "--output", "json", "--policy", admin, "--permissions-boundary", bound, "--action", tt.action, "--resource", "*"}
			if tt.osuser != "" {
				args = append(args, "--context", "ec2:osuser="+tt.osuser)
			}
			code, stdout, errOut := run(t, "", args...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			var got out
			if err := json.Unmarshal([]byte(stdout), &got); err != nil {
				t.Fatalf("%v: %s", err, stdout)
			}
			if got.Decision != tt.decision || got.PermissionsBoundary == nil || got.PermissionsBoundary.Policy != bound ||
				got.PermissionsBoundary.Allowed != tt.allowed || got.DeniedByPermissionsBoundary == nil || *got.DeniedByPermissionsBoundary != tt.deniedBy {
				t.Fatalf("got %s", stdout)
			}
			var files []string
			for _, m := range got.MatchedStatements {
				files = append(files, m.Policy)
			}
			if strings.Join(files, ",") != strings.Join(tt.matched, ",") {
				t.Errorf("matched statements from %v, want %v", files, tt.matched)
			}
		})
	}
	code, text, _ := run(t, "", "policy", "simulate", "--policy", admin, "--permissions-boundary", bound, "--action", "iam:CreateUser")
	if code != 0 || !strings.Contains(text, "the permissions boundary "+bound+" does not") || !strings.Contains(text, "it is why the request is refused") {
		t.Errorf("text output does not name the boundary as the reason:\n%s", text)
	}
	// Without the flag, the JSON has no boundary fields.
	_, plain, _ := run(t, "", "policy", "simulate", "--output", "json", "--policy", admin, "--action", "iam:CreateUser")
	if strings.Contains(plain, `"permissionsBoundary"`) || strings.Contains(plain, `"deniedByPermissionsBoundary"`) {
		t.Errorf("boundary fields without --permissions-boundary: %s", plain)
	}
}
