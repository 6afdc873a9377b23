package usercheck

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/aws/smithy-go"

	"github.com/kaginashi/kaginashi/internal/client"
	"github.com/kaginashi/kaginashi/internal/doctor"
)

// fakeAPI answers like a server where dev may log in as root to
// i-0123456789abcdef0 through port 2222; each test breaks one thing.
type fakeAPI struct {
	arn      string
	idErr    error
	inst     client.Instance
	instErr  error
	sim      map[string]SimResult // by action
	simErr   error
	simKeys  map[string][]ContextKey
	epErr    error
	tunErr   error
	banner   string
	tunnelTo client.TunnelParams
	// endpointFor is the instance Endpoint was asked about.
	endpointFor client.Instance
}

func healthyAPI() *fakeAPI {
	return &fakeAPI{
		arn: "arn:aws:iam::123456789012:user/dev",
		inst: client.Instance{Target: client.Target{InstanceID: "i-0123456789abcdef0", State: "running", PrivateIP: "192.0.2.7"},
			Kaginashi: true, DefaultUser: "admin", DefaultUserExists: true, AllowedPorts: []int{22, 2222}, EndpointID: "eice-1"},
		sim: map[string]SimResult{
			"ec2-instance-connect:SendSSHPublicKey": {Decision: "allowed", Matched: []string{"kaginashi-dev"}},
			"ec2-instance-connect:OpenTunnel":       {Decision: "allowed", Matched: []string{"arn:aws:iam::123456789012:policy/eic"}},
		},
		simKeys: map[string][]ContextKey{},
		banner:  "SSH-2.0-OpenSSH_9.2\r\n",
	}
}

func (f *fakeAPI) CallerIdentity(context.Context) (string, string, error) {
	return f.arn, "123456789012", f.idErr
}

func (f *fakeAPI) Simulate(_ context.Context, source, action, resource string, keys []ContextKey) (SimResult, error) {
	f.simKeys[action] = keys
	if f.simErr != nil {
		return SimResult{}, f.simErr
	}
	return f.sim[action], nil
}

func (f *fakeAPI) Instance(context.Context, string) (client.Instance, error) {
	return f.inst, f.instErr
}

func (f *fakeAPI) Endpoint(_ context.Context, in client.Instance) (string, string, error) {
	f.endpointFor = in
	return "https://kg.example:8443", "eice-1", f.epErr
}

func (f *fakeAPI) Tunnel(_ context.Context, p client.TunnelParams) (net.Conn, error) {
	f.tunnelTo = p
	if f.tunErr != nil {
		return nil, f.tunErr
	}
	a, b := net.Pipe()
	go func() {
		_, _ = io.WriteString(b, f.banner)
		_, _ = io.Copy(io.Discard, b)
		b.Close()
	}()
	return a, nil
}

func run(f *fakeAPI, osUser string) map[string]doctor.Check {
	checks := Run(context.Background(), Options{API: f, Region: "us-east-1", InstanceID: "i-0123456789abcdef0", OSUser: osUser, Port: 2222, TunnelTimeout: 2 * time.Second})
	m := map[string]doctor.Check{}
	for _, c := range checks {
		m[c.Name] = c
	}
	return m
}

func want(t *testing.T, m map[string]doctor.Check, name string, st doctor.Status, msg, fix string) {
	t.Helper()
	c, found := m[name]
	if !found {
		t.Fatalf("no %s check in %v", name, m)
	}
	if c.Status != st || !strings.Contains(c.Message, msg) || !strings.Contains(c.Fix, fix) {
		t.Errorf("%s = %+v\nwant status %s, message with %q, fix with %q", name, c, st, msg, fix)
	}
	if st == doctor.Fail && c.Fix == "" {
		t.Errorf("%s fails without a fix", name)
	}
}

func TestHealthy(t *testing.T) {
	f := healthyAPI()
	m := run(f, "root")
	want(t, m, "credentials", doctor.OK, "user/dev", "")
	want(t, m, "instance-online", doctor.OK, "port 2222 open", "")
	want(t, m, "policy-send-ssh-public-key", doctor.OK, "allowed by kaginashi-dev", "")
	want(t, m, "policy-open-tunnel", doctor.OK, "instance-connect-endpoint/eice-1: allowed by arn:aws:iam::123456789012:policy/eic", "")
	want(t, m, "tunnel", doctor.OK, "SSH-2.0-OpenSSH_9.2", "")
	if len(m) != 5 {
		t.Errorf("%d checks, want 5: %v", len(m), m)
	}
	// The simulation asks with the request's context keys.
	if k := f.simKeys["ec2-instance-connect:SendSSHPublicKey"]; len(k) != 1 || k[0].Key != "ec2:osuser" || k[0].Value != "root" {
		t.Errorf("SendSSHPublicKey simulated with %v", k)
	}
	got := map[string]string{}
	for _, k := range f.simKeys["ec2-instance-connect:OpenTunnel"] {
		got[k.Key] = k.Value
	}
	if got["ec2-instance-connect:remotePort"] != "2222" || got["ec2-instance-connect:privateIpAddress"] != "192.0.2.7" || got["ec2-instance-connect:maxTunnelDuration"] != "3600" {
		t.Errorf("OpenTunnel simulated with %v", got)
	}
	if f.endpointFor.EndpointID != "eice-1" {
		t.Errorf("Endpoint asked about %+v, want the instance Instance found", f.endpointFor)
	}
	if f.tunnelTo.RemotePort != 2222 || f.tunnelTo.InstanceID != "i-0123456789abcdef0" || f.tunnelTo.EndpointID != "eice-1" {
		t.Errorf("tunnel opened with %+v", f.tunnelTo)
	}
}

func TestBroken(t *testing.T) {
	denied := &smithy.GenericAPIError{Code: "AccessDenied", Message: "not authorized to perform iam:SimulatePrincipalPolicy"}
	for _, tc := range []struct {
		name     string
		breakIt  func(*fakeAPI)
		osUser   string
		check    string
		status   doctor.Status
		msg, fix string
	}{
		{"bad credentials", func(f *fakeAPI) { f.idErr = errors.New("InvalidClientTokenId") }, "root", "credentials", doctor.Fail, "InvalidClientTokenId", "AWS_ENDPOINT_URL"},
		{"no such instance", func(f *fakeAPI) { f.instErr = &client.NotFoundError{Target: "i-0123456789abcdef0"} }, "root", "instance-online", doctor.Fail, "i-0123456789abcdef0", "describe-instances"},
		{"agent offline", func(f *fakeAPI) { f.inst.State = "stopped"; f.inst.LastSeen = "2026-11-28T10:00:00Z" }, "root", "instance-online", doctor.Fail, "not connected (state stopped, last seen", "systemctl start kaginashi-agent"},
		{"port not allowed", func(f *fakeAPI) { f.inst.AllowedPorts = []int{22} }, "root", "instance-online", doctor.Fail, "does not let tunnels reach port 2222", "--allow-port 2222"},
		{"implicit deny", func(f *fakeAPI) { f.sim["ec2-instance-connect:SendSSHPublicKey"] = SimResult{Decision: "implicitDeny"} }, "bob", "policy-send-ssh-public-key", doctor.Fail, "implicit deny", "--os-user bob"},
		{"explicit deny", func(f *fakeAPI) {
			f.sim["ec2-instance-connect:OpenTunnel"] = SimResult{Decision: "explicitDeny", Matched: []string{"NoTunnels"}}
		}, "root", "policy-open-tunnel", doctor.Fail, "explicitly denied by NoTunnels", "Deny statement in NoTunnels"},
		{"missing keys", func(f *fakeAPI) {
			f.sim["ec2-instance-connect:SendSSHPublicKey"] = SimResult{Decision: "implicitDeny", Missing: []string{"aws:MultiFactorAuthPresent"}}
		}, "root", "policy-send-ssh-public-key", doctor.Fail, "aws:MultiFactorAuthPresent", "policy template eic"},
		{"cannot simulate", func(f *fakeAPI) { f.simErr = denied }, "root", "policy-send-ssh-public-key", doctor.Warn, "may not call iam:SimulatePrincipalPolicy", "simulate-principal-policy"},
		{"default user missing", func(f *fakeAPI) { f.inst.DefaultUserExists = false }, "", "os-user", doctor.Fail, "admin does not exist", "--os-user USER"},
		{"no endpoint", func(f *fakeAPI) { f.epErr = errors.New("UnauthorizedOperation") }, "root", "policy-open-tunnel", doctor.Fail, "UnauthorizedOperation", "DescribeInstanceConnectEndpoints"},
		{"tunnel refused", func(f *fakeAPI) {
			f.tunErr = &client.TunnelError{Status: 403, Code: "AccessDeniedException", Message: "not authorized"}
		}, "root", "tunnel", doctor.Fail, "AccessDeniedException", "policy-open-tunnel"},
		{"nothing listens", func(f *fakeAPI) {
			f.tunErr = &client.TunnelError{Status: 400, Code: "InvalidParameter", Message: "Unable to connect to target: nothing accepts connections"}
		}, "root", "tunnel", doctor.Fail, "Unable to connect", "start sshd"},
		{"not sshd", func(f *fakeAPI) { f.banner = "HTTP/1.1 400 Bad Request\r\n" }, "root", "tunnel", doctor.Warn, "not an SSH banner", "--ssh-port"},
		{"silent", func(f *fakeAPI) { f.banner = "" }, "root", "tunnel", doctor.Fail, "nothing answered", "sshd listens"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := healthyAPI()
			tc.breakIt(f)
			m := run(f, tc.osUser)
			want(t, m, tc.check, tc.status, tc.msg, tc.fix)
		})
	}
}

func TestRoot(t *testing.T) {
	f := healthyAPI()
	f.arn = "arn:aws:iam::123456789012:root"
	f.simErr = errors.New("must not be called")
	m := run(f, "root")
	want(t, m, "policy-send-ssh-public-key", doctor.OK, "account root", "")
	want(t, m, "policy-open-tunnel", doctor.OK, "account root", "")
}

func TestAgentOfflineSkipsTunnel(t *testing.T) {
	f := healthyAPI()
	f.inst.State = "stopped"
	f.tunErr = errors.New("must not be called")
	m := run(f, "root")
	want(t, m, "tunnel", doctor.Skip, "not reachable", "")
}
