package cli

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/aws/smithy-go"

	"github.com/kaginashi/kaginashi/internal/client"
)

func TestChooseRoute(t *testing.T) {
	kg := client.Instance{Kaginashi: true, Target: client.Target{InstanceID: "i-0123456789abcdef0", PrivateIP: "10.0.0.5"}}
	pub := client.Instance{Target: client.Target{InstanceID: "i-1", PublicIP: "3.3.3.3", PrivateIP: "10.0.0.1", IPv6: "2600::1"}}
	priv := client.Instance{Target: client.Target{InstanceID: "i-2", PrivateIP: "10.0.0.2", IPv6: "2600::2"}}
	v6 := client.Instance{Target: client.Target{InstanceID: "i-3", IPv6: "2600::3"}}
	none := client.Instance{Target: client.Target{InstanceID: "i-4"}}
	for _, tc := range []struct {
		in   client.Instance
		kind string
		want string // "tunnel", an address, or "error"
	}{
		{kg, "auto", "tunnel"}, {kg, "eice", "tunnel"}, {kg, "direct", "10.0.0.5"},
		// The AWS CLI's rules.
		{pub, "auto", "3.3.3.3"}, {pub, "direct", "3.3.3.3"}, {pub, "eice", "tunnel"},
		{priv, "auto", "tunnel"}, {priv, "direct", "2600::2"}, {priv, "eice", "tunnel"},
		{v6, "auto", "2600::3"}, {v6, "eice", "error"}, {v6, "direct", "2600::3"},
		{none, "auto", "error"}, {none, "direct", "error"},
		{kg, "ssm", "error"},
	} {
		r, err := chooseRoute(tc.in, tc.kind)
		got := r.addr
		switch {
		case err != nil:
			got = "error"
		case r.tunnel:
			got = "tunnel"
		}
		if got != tc.want {
			t.Errorf("%s %s: %s (%v), want %s", tc.in.InstanceID, tc.kind, got, err, tc.want)
		}
	}
}

func TestCheckReachable(t *testing.T) {
	in := client.Instance{Kaginashi: true, Target: client.Target{InstanceID: "i-0123456789abcdef0", Name: "web", State: "running"}, AllowedPorts: []int{22, 2222}}
	if err := checkReachable(in, route{tunnel: true}, 2222); err != nil {
		t.Errorf("an allowed port: %v", err)
	}
	err := checkReachable(in, route{tunnel: true}, 5432)
	if err == nil || !strings.Contains(err.Error(), "port 5432 of i-0123456789abcdef0 (web) is not open to tunnels: its agent allows 22, 2222") ||
		!strings.Contains(err.Error(), "kaginashi-agent run --allow-port 5432") {
		t.Errorf("a port not allowed: %v", err)
	}
	if err := checkReachable(in, route{addr: "10.0.0.1"}, 5432); err != nil {
		t.Errorf("direct connections do not go through the agent: %v", err)
	}
	in.AllowedPorts = nil
	if err := checkReachable(in, route{tunnel: true}, 5432); err != nil {
		t.Errorf("unknown ports: %v", err)
	}
	in.State, in.LastSeen = "stopped", "2026-11-28T10:00:00Z"
	if err := checkReachable(in, route{tunnel: true}, 22); err == nil || !strings.Contains(err.Error(), "the agent of i-0123456789abcdef0 (web) is offline") ||
		!strings.Contains(err.Error(), "last seen 2026-11-28T10:00:00Z") || !strings.Contains(err.Error(), "systemctl start kaginashi-agent") {
		t.Errorf("offline: %v", err)
	}
	aws := client.Instance{Target: client.Target{InstanceID: "i-1", State: "stopped"}}
	if err := checkReachable(aws, route{tunnel: true}, 22); err == nil || !strings.Contains(err.Error(), "aws ec2 start-instances --instance-ids i-1") {
		t.Errorf("a stopped EC2 instance: %v", err)
	}
}

func TestQuoting(t *testing.T) {
	for in, want := range map[string]string{
		"/usr/local/bin/kaginashi": "/usr/local/bin/kaginashi",
		"/opt/my tools/kaginashi":  "'/opt/my tools/kaginashi'",
		"/o'k/x":                   `'/o'\''k/x'`,
		"/100%/x":                  "/100%%/x",
		"https://h:8443":           "https://h:8443",
		"$(reboot)":                "'$(reboot)'",
	} {
		if got := shellWord(in); got != want {
			t.Errorf("shellWord(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]string{
		"/tmp/a/agent.sock": "/tmp/a/agent.sock",
		"/tmp/my dir/k":     `"/tmp/my dir/k"`,
		`/tmp/q"/k`:         `"/tmp/q\"/k"`,
		"/tmp/50%/k":        "/tmp/50%%/k",
	} {
		if got := sshValue(in); got != want {
			t.Errorf("sshValue(%q) = %q, want %q", in, got, want)
		}
	}
	args := clientArgs(client.Flags{Profile: "p", Region: "r", EndpointURL: "https://e", CABundle: "/ca.pem", NoVerifySSL: true})
	if got := strings.Join(args, " "); got != "--profile p --region r --endpoint-url https://e --ca-bundle /ca.pem --no-verify-ssl" {
		t.Errorf("clientArgs: %s", got)
	}
	if args := clientArgs(client.Flags{}); len(args) != 0 {
		t.Errorf("no flags given, none passed: %v", args)
	}
}

type apiErr struct{ code, msg string }

func (e apiErr) Error() string {
	return "operation error X: Y, https response error, " + e.code + ": " + e.msg
}
func (e apiErr) ErrorCode() string             { return e.code }
func (e apiErr) ErrorMessage() string          { return e.msg }
func (e apiErr) ErrorFault() smithy.ErrorFault { return smithy.FaultClient }

func TestExplain(t *testing.T) {
	x := explainCtx{instance: "i-0123456789abcdef0 (web)", port: 2222}
	explicit := "User: arn:aws:iam::123456789012:user/a is not authorized to perform: ec2-instance-connect:SendSSHPublicKey on resource: arn:aws:ec2:r:1:instance/i-1 with an explicit deny in an identity-based policy (p inline Sid NoRoot)"
	implicit := "User: arn:aws:iam::123456789012:user/a is not authorized to perform: ec2-instance-connect:OpenTunnel on resource: arn:x because no identity-based policy allows the ec2-instance-connect:OpenTunnel action"
	for _, tc := range []struct {
		err   error
		wants []string
	}{
		{fmt.Errorf("wrapped: %w", apiErr{"AuthException", explicit}), []string{"access denied: " + explicit + "\nkaginashi: the policy statement named above denies it"}},
		{&client.TunnelError{Status: 403, Code: "AccessDeniedException", Message: implicit}, []string{"access denied: " + implicit, "ask an administrator to allow ec2-instance-connect:OpenTunnel for you"}},
		{&client.APIError{Code: "AccessDeniedException", Message: "nope"}, []string{"access denied: nope", "docs/POLICY.md"}},
		// The seed article's policy grants OpenTunnel on instance/*, which
		// never matches: the hint names the resource OpenTunnel needs.
		{&client.TunnelError{Status: 403, Code: "AccessDeniedException", Message: "User: arn:aws:iam::123456789012:user/a is not authorized to perform: ec2-instance-connect:OpenTunnel on resource: arn:aws:ec2:us-east-1:123456789012:instance-connect-endpoint/eice-0123456789abcdef0 because no identity-based policy allows the ec2-instance-connect:OpenTunnel action"},
			[]string{"ask an administrator to allow ec2-instance-connect:OpenTunnel on arn:aws:ec2:us-east-1:123456789012:instance-connect-endpoint/* for you",
				"not instance/*"}},
		{apiErr{"EC2InstanceUnavailableException", "The agent of instance i-1 is not connected."}, []string{"the agent of i-0123456789abcdef0 (web) is offline", "systemctl start kaginashi-agent"}},
		{&client.TunnelError{Code: "InstanceUnavailable", Message: "x"}, []string{"is offline"}},
		{&client.TunnelError{Code: "TargetRefused", Message: "port 2222 is not allowed by this host's agent (allowed: [22]); add it with kaginashi-agent run --allow-port 2222"},
			[]string{"i-0123456789abcdef0 (web) refused the tunnel: port 2222 is not allowed"}},
		{&client.TunnelError{Code: "TargetRefused", Message: "Unable to connect to target: nothing accepts connections on 127.0.0.1:2222 of this host"}, []string{"is sshd listening on port 2222?"}},
		{apiErr{"UnrecognizedClientException", "The security token included in the request is invalid."}, []string{"the server does not accept your credentials", "AWS_PROFILE"}},
		{&client.NotFoundError{Target: "web"}, []string{`no instance has the Name tag "web"`}},
		{&client.NotFoundError{Target: "web", Like: []string{"Web", "WEB"}}, []string{`no instance has the Name tag "web" (Names match with their case: there is "Web", "WEB")`, `write the Name with its case, e.g. "Web"`}},
		{fmt.Errorf("x: %w", &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}), []string{"cannot reach", "--endpoint-url"}},
		{errors.New("failed to refresh cached credentials, no EC2 IMDS role found"), []string{"no AWS credentials found", "AWS_PROFILE"}},
	} {
		got := explain(tc.err, x).Error()
		for _, w := range tc.wants {
			if !strings.Contains(got, w) {
				t.Errorf("explain(%v) =\n%s\nwant %q", tc.err, got, w)
			}
		}
		if strings.Contains(got, "operation error") || strings.Count(got, "\n") > 1 {
			t.Errorf("explain(%v) = %q: SDK noise or more than two lines", tc.err, got)
		}
	}
	amb := &client.AmbiguousError{Name: "twin", Candidates: []client.Target{{InstanceID: "i-2"}, {InstanceID: "i-1"}}}
	if got := explain(amb, x); got != error(amb) {
		t.Errorf("an ambiguous name is told as it is: %v", got)
	}
}

func TestCheckSSHArgs(t *testing.T) {
	for _, ok := range [][]string{nil, {"echo", "-p", "1"}, {"-L", "8080:localhost:80", "-N"}, {"-v", "-o", "ServerAliveInterval=30", "uptime"},
		{"-tt", "sudo", "-l"}, {"-i", "-p"}, {"--", "-p"}} {
		if err := checkSSHArgs(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range [][]string{{"-p", "2222"}, {"-p2222"}, {"-vp", "2222"}, {"-l", "root"}, {"-o", "Port=2222"}, {"-oUser=root"},
		{"-o", "ProxyCommand none"}, {"-v", "-o", "StrictHostKeyChecking=no", "true"}} {
		if err := checkSSHArgs(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
