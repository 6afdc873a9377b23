package main

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kaginashi/kaginashi/internal/cli"
)

// The policies in examples/policies are the ones docs/POLICY.md
// ("Least-privilege variants") shows. This test keeps the guide honest:
// every file validates through the CLI with no ERROR and no
// SECURITY_WARNING, and decides the requests below as the guide says.
// A new file without expectations here fails the test.

const (
	exInstance = "arn:aws:ec2:ap-northeast-1:123456789012:instance/i-0123456789abcdef0"
	exOther    = "arn:aws:ec2:ap-northeast-1:123456789012:instance/i-0fedcba9876543210"
	exEndpoint = "arn:aws:ec2:ap-northeast-1:123456789012:instance-connect-endpoint/eice-0123456789abcdef0"
	exSend     = "ec2-instance-connect:SendSSHPublicKey"
	exTunnel   = "ec2-instance-connect:OpenTunnel"
)

type simCase struct {
	action, resource string
	context          []string // KEY=VALUE
	decision         string   // allowed | explicitDeny | implicitDeny
	sid              string   // the deciding statement, when one decides
}

var examplePolicies = map[string][]simCase{
	"one-instance.json": {
		{exSend, exInstance, []string{"ec2:osuser=ec2-user"}, "allowed", "SendSSHPublicKeyOneInstance"},
		{exSend, exInstance, []string{"ec2:osuser=root"}, "implicitDeny", ""},
		{exSend, exOther, []string{"ec2:osuser=ec2-user"}, "implicitDeny", ""},
		{exTunnel, exEndpoint, []string{"ec2-instance-connect:remotePort=22", "ec2-instance-connect:maxTunnelDuration=3600"}, "allowed", "OpenTunnelSSHOnly"},
		{exTunnel, exEndpoint, []string{"ec2-instance-connect:remotePort=5432", "ec2-instance-connect:maxTunnelDuration=3600"}, "implicitDeny", ""},
		{exTunnel, exInstance, []string{"ec2-instance-connect:remotePort=22", "ec2-instance-connect:maxTunnelDuration=3600"}, "implicitDeny", ""},
		{"ec2:DescribeInstances", "*", nil, "allowed", "DescribeForConnect"},
	},
	"tag-based.json": {
		{exSend, exInstance, []string{"aws:ResourceTag/team=web", "ec2:osuser=ubuntu"}, "allowed", "SendSSHPublicKeyTeamWeb"},
		{exSend, exInstance, []string{"aws:ResourceTag/team=db", "ec2:osuser=ubuntu"}, "implicitDeny", ""},
		{exSend, exInstance, []string{"ec2:osuser=ubuntu"}, "implicitDeny", ""}, // an untagged instance
		{exSend, exInstance, []string{"aws:ResourceTag/team=web", "ec2:osuser=root"}, "implicitDeny", ""},
		{exTunnel, exEndpoint, []string{"ec2-instance-connect:remotePort=22"}, "allowed", "OpenTunnelSSHOnly"},
	},
	"tag-abac.json": {
		{exSend, exInstance, []string{"ec2:ResourceTag/team=web", "aws:PrincipalTag/team=web", "aws:username=alice", "ec2:osuser=alice"}, "allowed", "SendSSHPublicKeyOwnTeam"},
		{exSend, exInstance, []string{"ec2:ResourceTag/team=db", "aws:PrincipalTag/team=web", "aws:username=alice", "ec2:osuser=alice"}, "implicitDeny", ""},
		{exSend, exInstance, []string{"ec2:ResourceTag/team=web", "aws:PrincipalTag/team=web", "aws:username=alice", "ec2:osuser=root"}, "implicitDeny", ""},
		// A user with no team tag matches no instance, not every one.
		{exSend, exInstance, []string{"ec2:ResourceTag/team=web", "aws:username=alice", "ec2:osuser=alice"}, "implicitDeny", ""},
	},
	"source-ip.json": {
		{exSend, exInstance, []string{"aws:ResourceTag/env=staging", "ec2:osuser=ec2-user", "aws:SourceIp=203.0.113.7"}, "allowed", "SendSSHPublicKeyFromOffice"},
		{exSend, exInstance, []string{"aws:ResourceTag/env=staging", "ec2:osuser=ec2-user", "aws:SourceIp=2001:db8:1234:5::9"}, "allowed", "SendSSHPublicKeyFromOffice"},
		{exSend, exInstance, []string{"aws:ResourceTag/env=staging", "ec2:osuser=ec2-user", "aws:SourceIp=198.51.100.7"}, "implicitDeny", ""},
		{exTunnel, exEndpoint, []string{"ec2-instance-connect:remotePort=22", "aws:SourceIp=203.0.113.7"}, "allowed", "OpenTunnelFromOffice"},
		{exTunnel, exEndpoint, []string{"ec2-instance-connect:remotePort=22", "aws:SourceIp=198.51.100.7"}, "implicitDeny", ""},
	},
	"mfa-console.json": {
		{exSend, exInstance, []string{"aws:ResourceTag/env=production", "ec2:osuser=ec2-user", "aws:MultiFactorAuthPresent=true"}, "allowed", "SendSSHPublicKeyWithMFA"},
		{exSend, exInstance, []string{"aws:ResourceTag/env=production", "ec2:osuser=ec2-user", "aws:MultiFactorAuthPresent=false"}, "implicitDeny", ""},
		// Access keys carry no aws:MultiFactorAuthPresent: refused.
		{exSend, exInstance, []string{"aws:ResourceTag/env=production", "ec2:osuser=ec2-user"}, "implicitDeny", ""},
		{exTunnel, exEndpoint, []string{"ec2-instance-connect:remotePort=22", "aws:MultiFactorAuthPresent=true"}, "allowed", "OpenTunnelWithMFA"},
	},
	"deny-root-login.json": {
		{exSend, exInstance, []string{"ec2:osuser=root"}, "explicitDeny", "NeverAsRoot"},
		{exSend, exInstance, []string{"ec2:osuser=ec2-user"}, "implicitDeny", ""}, // a guard grants nothing
	},
	"seed-fixed.json": {
		{exSend, exInstance, []string{"ec2:osuser=ec2-user"}, "allowed", "SendSSHPublicKeyAsEc2User"},
		{exSend, exInstance, []string{"ec2:osuser=root"}, "implicitDeny", ""},
		{exTunnel, exEndpoint, []string{"ec2-instance-connect:remotePort=22"}, "allowed", "OpenTunnelOnTheEndpoint"},
		{exTunnel, exEndpoint, []string{"ec2-instance-connect:remotePort=3389"}, "implicitDeny", ""},
	},
}

func runCLI(t *testing.T, args ...string) (int, []byte, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := cli.Main(context.Background(), args, cli.IO{In: strings.NewReader(""), Out: &out, Err: &errb})
	return code, out.Bytes(), errb.String()
}

func TestExamplePolicies(t *testing.T) {
	dir := filepath.Join("..", "..", "examples", "policies")
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no policies in %s", dir)
	}
	var names []string
	for _, f := range files {
		names = append(names, filepath.Base(f))
	}
	for name := range examplePolicies {
		if !slices.Contains(names, name) {
			t.Errorf("expectations for %s, which is not in %s", name, dir)
		}
	}
	for _, f := range files {
		name := filepath.Base(f)
		t.Run(name, func(t *testing.T) {
			cases, ok := examplePolicies[name]
			if !ok || len(cases) == 0 {
				t.Fatalf("%s has no simulate expectations in examples_test.go: add some", name)
			}
			code, out, stderr := runCLI(t, "policy", "validate", f, "--output", "json")
			if code != 0 {
				t.Fatalf("validate: exit %d\n%s%s", code, out, stderr)
			}
			var v struct {
				Findings []struct{ Type, Code, Message, Path string }
			}
			if err := json.Unmarshal(out, &v); err != nil {
				t.Fatalf("validate output: %v\n%s", err, out)
			}
			for _, fd := range v.Findings {
				if fd.Type == "ERROR" || fd.Type == "SECURITY_WARNING" {
					t.Errorf("%s %s at %s: %s", fd.Type, fd.Code, fd.Path, fd.Message)
				}
			}
			for _, c := range cases {
				args := []string{"policy", "simulate", "--policy", f, "--action", c.action, "--resource", c.resource, "--output", "json"}
				for _, kv := range c.context {
					args = append(args, "--context", kv)
				}
				code, out, stderr := runCLI(t, args...)
				if code != 0 {
					t.Fatalf("simulate %v: exit %d\n%s%s", c, code, out, stderr)
				}
				var s struct {
					Decision          string
					MatchedStatements []struct{ Sid string }
				}
				if err := json.Unmarshal(out, &s); err != nil {
					t.Fatalf("simulate output: %v\n%s", err, out)
				}
				if s.Decision != c.decision {
					t.Errorf("%s on %s with %v: %s, want %s", c.action, c.resource, c.context, s.Decision, c.decision)
					continue
				}
				if c.sid != "" && (len(s.MatchedStatements) == 0 || s.MatchedStatements[0].Sid != c.sid) {
					t.Errorf("%s on %s with %v: decided by %+v, want Sid %s", c.action, c.resource, c.context, s.MatchedStatements, c.sid)
				}
			}
		})
	}
}
