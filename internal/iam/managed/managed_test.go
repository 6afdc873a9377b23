package managed

import (
	"io/fs"
	"strings"
	"testing"

	"github.com/kaginashi/kaginashi/policy"
)

func TestPoliciesCompileAndMatchFiles(t *testing.T) {
	ps := All()
	files, err := fs.Glob(documents, "aws/*.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != len(ps) {
		t.Fatalf("%d documents embedded, %d policies listed: each file needs its entry and the reverse", len(files), len(ps))
	}
	seen := map[string]bool{}
	for _, p := range ps {
		if !IsAWS(p.ARN()) || p.ARN() != ARNPrefix+p.Name {
			t.Errorf("%s: ARN %s", p.Name, p.ARN())
		}
		if len(p.ID()) != 21 || !strings.HasPrefix(p.ID(), "ANPA") || seen[p.ID()] {
			t.Errorf("%s: ID %q", p.Name, p.ID())
		}
		seen[p.ID()] = true
		if All()[0].ID() != ps[0].ID() {
			t.Errorf("%s: ID is not stable", p.Name)
		}
		if _, err := policy.ParseAndCompile(p.ARN(), []byte(p.Document)); err != nil {
			t.Errorf("%s does not compile: %v", p.Name, err)
		}
		if p.Source == "" || p.VersionID == "" || p.Updated.Before(p.Created) {
			t.Errorf("%s: source %q version %q created %v updated %v", p.Name, p.Source, p.VersionID, p.Created, p.Updated)
		}
	}
}

// The shipped documents decide as their names say.
func TestPoliciesDecide(t *testing.T) {
	docs := map[string]*policy.Set{}
	for _, p := range All() {
		c, err := policy.ParseAndCompile(p.ARN(), []byte(p.Document))
		if err != nil {
			t.Fatal(err)
		}
		docs[p.Name] = policy.NewSet(c)
	}
	inst := "arn:aws:ec2:us-east-1:123456789012:instance/i-0123456789abcdef0"
	for _, tc := range []struct {
		policy, action, resource string
		allowed                  bool
	}{
		{"AdministratorAccess", "iam:CreateUser", "*", true},
		{"PowerUserAccess", "ec2-instance-connect:SendSSHPublicKey", inst, true},
		{"PowerUserAccess", "iam:CreateUser", "*", false},
		{"PowerUserAccess", "iam:ListRoles", "*", true},
		{"IAMFullAccess", "iam:CreateAccessKey", "*", true},
		{"IAMFullAccess", "ec2:DescribeInstances", "*", false},
		{"IAMReadOnlyAccess", "iam:GetUser", "*", true},
		{"IAMReadOnlyAccess", "iam:CreateUser", "*", false},
		{"AmazonEC2ReadOnlyAccess", "ec2:DescribeInstances", "*", true},
		{"AmazonEC2ReadOnlyAccess", "ec2:CreateTags", "*", false},
		{"EC2InstanceConnect", "ec2-instance-connect:SendSSHPublicKey", inst, true},
		{"EC2InstanceConnect", "ec2-instance-connect:OpenTunnel", "*", false},
	} {
		r := docs[tc.policy].Decide(&policy.Request{Action: tc.action, Resource: tc.resource, Context: policy.NewContext()})
		if got := r.Decision == policy.Allowed; got != tc.allowed {
			t.Errorf("%s %s on %s: %v, want allowed=%v", tc.policy, tc.action, tc.resource, r.Decision, tc.allowed)
		}
	}
}
