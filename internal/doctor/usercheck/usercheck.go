// Package usercheck is the user half of `kaginashi doctor`: with the
// user's own credentials, can they log in to an instance as an OS user?
// It is apart from package doctor so that the agent binary, which runs
// the host half, does not link the AWS SDK.
package usercheck

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"

	"github.com/kaginashi/kaginashi/internal/client"
	"github.com/kaginashi/kaginashi/internal/doctor"
)

type Check = doctor.Check

func ok(name, format string, a ...any) Check { return doctor.New(name, doctor.OK, "", format, a...) }
func fail(name, fix, format string, a ...any) Check {
	return doctor.New(name, doctor.Fail, fix, format, a...)
}
func warn(name, fix, format string, a ...any) Check {
	return doctor.New(name, doctor.Warn, fix, format, a...)
}
func skip(name, format string, a ...any) Check {
	return doctor.New(name, doctor.Skip, "", format, a...)
}

func orStr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// API is what the user checks ask the server. NewAPI is the real one.
type API interface {
	CallerIdentity(ctx context.Context) (arn, account string, err error)
	Simulate(ctx context.Context, source, action, resource string, keys []ContextKey) (SimResult, error)
	Instance(ctx context.Context, id string) (client.Instance, error)
	// Endpoint finds the Instance Connect Endpoint that reaches in (the
	// instance as Instance found it, zero if it was not found).
	Endpoint(ctx context.Context, in client.Instance) (url, id string, err error)
	Tunnel(ctx context.Context, p client.TunnelParams) (net.Conn, error)
}

// ContextKey is a condition key's value for a simulation.
type ContextKey struct {
	Key, Value string
	Type       iamtypes.ContextKeyTypeEnum
}

// SimResult is one simulated decision.
type SimResult struct {
	Decision string   // allowed, explicitDeny, implicitDeny
	Matched  []string // the deciding statements' policies
	Missing  []string // context keys the policies wanted and did not get
}

// Options configure Run.
type Options struct {
	API        API
	Region     string
	InstanceID string
	// OSUser is the user to log in as; "" takes the instance's default user.
	OSUser string
	Port   int // sshd's port on the host; default the port its agent reports, else 22
	// TunnelTimeout bounds the tunnel check (default 15 s).
	TunnelTimeout time.Duration
}

// Run runs the user checks: can these credentials log in to the instance
// as the OS user?
func Run(ctx context.Context, o Options) []Check {
	portGiven := o.Port != 0
	if !portGiven {
		o.Port = 22
	}
	if o.TunnelTimeout == 0 {
		o.TunnelTimeout = 15 * time.Second
	}
	var checks []Check
	arn, account, err := o.API.CallerIdentity(ctx)
	if err != nil {
		return append(checks, fail("credentials",
			"give credentials as for the aws CLI (AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY), and point at the server: AWS_ENDPOINT_URL=https://SERVER:8443 AWS_CA_BUNDLE=ca.pem",
			"sts:GetCallerIdentity failed: %v", err),
			skip("instance-online", "no working credentials"), skip("policy-send-ssh-public-key", "no working credentials"),
			skip("policy-open-tunnel", "no working credentials"), skip("tunnel", "no working credentials"))
	}
	checks = append(checks, ok("credentials", "%s", arn))

	in, err := o.API.Instance(ctx, o.InstanceID)
	if err == nil && !portGiven && in.SSHPort > 0 {
		o.Port = in.SSHPort // as the host's agent read sshd's configuration
	}
	online := false
	switch {
	case err != nil:
		var nf *client.NotFoundError
		fix := "check what you may see: aws ec2 describe-instances (your policy needs ec2:DescribeInstances)"
		if errors.As(err, &nf) {
			fix = "check the instance ID: aws ec2 describe-instances --query 'Reservations[].Instances[].InstanceId'"
		}
		checks = append(checks, fail("instance-online", fix, "%s: %v", o.InstanceID, err))
	case in.State != "running":
		seen := ""
		if in.LastSeen != "" {
			seen = ", last seen " + in.LastSeen
		}
		checks = append(checks, fail("instance-online",
			"on the host: systemctl start kaginashi-agent, and run kaginashi doctor there to see why it is not connected",
			"the agent of %s is not connected (state %s%s)", in.Label(), orStr(in.State, "unknown"), seen))
	case in.AllowedPorts != nil && !in.PortAllowed(o.Port):
		checks = append(checks, fail("instance-online",
			fmt.Sprintf("on the host, let the agent reach the port: kaginashi-agent run --allow-port %d (or check --ssh-port)", o.Port),
			"%s is online, but its agent does not let tunnels reach port %d (allowed: %s)", in.Label(), o.Port, joinPorts(in.AllowedPorts)))
	default:
		online = true
		checks = append(checks, ok("instance-online", "%s: agent connected, port %d open to tunnels", in.Label(), o.Port))
	}

	osUser := o.OSUser
	if osUser == "" && in.DefaultUser != "" {
		osUser = in.DefaultUser
		if in.Kaginashi && !in.DefaultUserExists {
			checks = append(checks, fail("os-user", "say who to log in as: --os-user USER (and kaginashi ssh USER@"+o.InstanceID+")",
				"no --os-user given, and the instance's default user %s does not exist on it", osUser))
		}
	}
	root := strings.HasSuffix(arn, ":root")
	instanceARN := "arn:aws:ec2:" + o.Region + ":" + account + ":instance/" + o.InstanceID
	switch {
	case osUser == "":
		checks = append(checks, fail("policy-send-ssh-public-key", "give the user to log in as: --os-user USER", "the OS user is unknown (no --os-user, and the instance reports no default user)"))
	case root:
		checks = append(checks, ok("policy-send-ssh-public-key", "you are the account root: every action is allowed (use an IAM user day to day)"))
	default:
		checks = append(checks, simulate(ctx, o.API, "policy-send-ssh-public-key", arn, "ec2-instance-connect:SendSSHPublicKey", instanceARN,
			[]ContextKey{{"ec2:osuser", osUser, iamtypes.ContextKeyTypeEnumString}},
			fmt.Sprintf("allow it: kaginashi policy template eic --region %s --account-id %s --instance-id %s --os-user %s > eic.json, then attach eic.json to %s (aws iam put-user-policy … --policy-document file://eic.json)",
				o.Region, account, o.InstanceID, osUser, userName(arn))))
	}

	epURL, epID, err := o.API.Endpoint(ctx, in)
	if err != nil {
		return append(checks, fail("policy-open-tunnel", "your policy needs ec2:DescribeInstanceConnectEndpoints", "finding the Instance Connect Endpoint: %v", err),
			skip("tunnel", "no endpoint"))
	}
	if root {
		checks = append(checks, ok("policy-open-tunnel", "you are the account root: every action is allowed"))
	} else {
		keys := []ContextKey{
			{"ec2-instance-connect:remotePort", strconv.Itoa(o.Port), iamtypes.ContextKeyTypeEnumNumeric},
			{"ec2-instance-connect:maxTunnelDuration", "3600", iamtypes.ContextKeyTypeEnumNumeric},
		}
		if in.PrivateIP != "" {
			keys = append(keys, ContextKey{"ec2-instance-connect:privateIpAddress", in.PrivateIP, iamtypes.ContextKeyTypeEnumIp})
		}
		checks = append(checks, simulate(ctx, o.API, "policy-open-tunnel", arn, "ec2-instance-connect:OpenTunnel",
			"arn:aws:ec2:"+o.Region+":"+account+":instance-connect-endpoint/"+epID, keys,
			fmt.Sprintf("allow ec2-instance-connect:OpenTunnel on arn:aws:ec2:%s:%s:instance-connect-endpoint/%s with ec2-instance-connect:remotePort %d (the template's OpenTunnel statement: kaginashi policy template eic …); a grant on instance/… never matches OpenTunnel",
				o.Region, account, epID, o.Port)))
	}

	if !online {
		return append(checks, skip("tunnel", "the instance is not reachable (see instance-online)"))
	}
	checks = append(checks, tunnelCheck(ctx, o, in, epURL, epID))
	return checks
}

func simulate(ctx context.Context, api API, name, source, action, resource string, keys []ContextKey, allowFix string) Check {
	r, err := api.Simulate(ctx, source, action, resource, keys)
	if err != nil {
		var ae smithy.APIError
		if errors.As(err, &ae) && (ae.ErrorCode() == "AccessDenied" || ae.ErrorCode() == "AccessDeniedException") {
			return warn(name, fmt.Sprintf("to let doctor check it, allow iam:SimulatePrincipalPolicy on %s; or ask an administrator to run: aws iam simulate-principal-policy --policy-source-arn %s --action-names %s --resource-arns %s", source, source, action, resource),
				"cannot simulate your policy: you may not call iam:SimulatePrincipalPolicy on yourself")
		}
		return warn(name, "", "simulating %s: %v", action, err)
	}
	by := ""
	if len(r.Matched) > 0 {
		by = " by " + strings.Join(r.Matched, ", ")
	}
	missing := ""
	if len(r.Missing) > 0 {
		missing = " (context keys your policy wants and the simulation did not have: " + strings.Join(r.Missing, ", ") + ")"
	}
	switch r.Decision {
	case "allowed":
		return ok(name, "%s on %s: allowed%s", action, resource, by)
	case "explicitDeny":
		return fail(name, "remove or narrow the Deny statement in "+orStr(strings.Join(r.Matched, ", "), "your policies")+" (an explicit Deny wins over every Allow)",
			"%s on %s: explicitly denied%s%s", action, resource, by, missing)
	}
	return fail(name, allowFix, "%s on %s: no statement allows it (implicit deny)%s", action, resource, missing)
}

// tunnelCheck opens a tunnel to the port, reads sshd's banner, closes it.
func tunnelCheck(ctx context.Context, o Options, in client.Instance, epURL, epID string) Check {
	const name = "tunnel"
	ctx, cancel := context.WithTimeout(ctx, o.TunnelTimeout)
	defer cancel()
	conn, err := o.API.Tunnel(ctx, client.TunnelParams{Endpoint: epURL, EndpointID: epID, InstanceID: in.InstanceID, PrivateIP: in.PrivateIP, RemotePort: o.Port})
	if err != nil {
		var te *client.TunnelError
		fix := "see the checks above; the server's log and audit trail (kaginashi audit lookup) say more"
		if errors.As(err, &te) {
			switch {
			case te.Status == 403:
				fix = "your policy must allow ec2-instance-connect:OpenTunnel on the endpoint (see policy-open-tunnel)"
			case strings.Contains(te.Message, "Unable to connect to target"):
				fix = fmt.Sprintf("start sshd on the host, listening on port %d (systemctl start ssh)", o.Port)
			}
		}
		return fail(name, fix, "opening a tunnel to port %d of %s: %v", o.Port, o.InstanceID, err)
	}
	defer conn.Close()
	_ = conn.SetReadDeadline(time.Now().Add(o.TunnelTimeout))
	line, err := bufio.NewReader(conn).ReadString('\n')
	line = strings.TrimSpace(line)
	switch {
	case strings.HasPrefix(line, "SSH-"):
		return ok(name, "a tunnel to port %d opened and closed; sshd answered %s", o.Port, line)
	case err != nil:
		return fail(name, fmt.Sprintf("check that sshd listens on port %d of the host", o.Port), "a tunnel to port %d opened, but nothing answered: %v", o.Port, err)
	}
	return warn(name, fmt.Sprintf("check --ssh-port: port %d does not look like sshd", o.Port), "a tunnel to port %d opened; it answered %q, not an SSH banner", o.Port, truncate(line, 60))
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

func joinPorts(p []int) string {
	s := make([]string, len(p))
	for i, n := range p {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ", ")
}

// userName is NAME of arn:aws:iam::ACCOUNT:user/PATH/NAME.
func userName(arn string) string {
	if i := strings.LastIndexByte(arn, '/'); i >= 0 {
		return arn[i+1:]
	}
	return arn
}

// awsAPI is API with the AWS SDK and kaginashi's client package.
type awsAPI struct{ cfg aws.Config }

// NewAPI is the API for an AWS configuration (client.Load).
func NewAPI(cfg aws.Config) API { return awsAPI{cfg} }

func (a awsAPI) CallerIdentity(ctx context.Context) (string, string, error) {
	out, err := sts.NewFromConfig(a.cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return "", "", err
	}
	return aws.ToString(out.Arn), aws.ToString(out.Account), nil
}

func (a awsAPI) Simulate(ctx context.Context, source, action, resource string, keys []ContextKey) (SimResult, error) {
	in := &iam.SimulatePrincipalPolicyInput{PolicySourceArn: aws.String(source), ActionNames: []string{action}, ResourceArns: []string{resource}}
	for _, k := range keys {
		in.ContextEntries = append(in.ContextEntries, iamtypes.ContextEntry{ContextKeyName: aws.String(k.Key), ContextKeyType: k.Type, ContextKeyValues: []string{k.Value}})
	}
	out, err := iam.NewFromConfig(a.cfg).SimulatePrincipalPolicy(ctx, in)
	if err != nil {
		return SimResult{}, err
	}
	if len(out.EvaluationResults) == 0 {
		return SimResult{}, errors.New("the simulation returned no result")
	}
	r := out.EvaluationResults[0]
	res := SimResult{Decision: string(r.EvalDecision), Missing: r.MissingContextValues}
	for _, m := range r.MatchedStatements {
		res.Matched = append(res.Matched, aws.ToString(m.SourcePolicyId))
	}
	return res, nil
}

func (a awsAPI) Instance(ctx context.Context, id string) (client.Instance, error) {
	return client.DescribeInstance(ctx, a.cfg, id)
}

func (a awsAPI) Endpoint(ctx context.Context, in client.Instance) (string, string, error) {
	url, id, err := client.Endpoint(ctx, a.cfg, "")
	var ae smithy.APIError
	if base := aws.ToString(a.cfg.BaseEndpoint); err != nil && base != "" && in.EndpointID != "" && errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "UnauthorizedOperation", "AccessDenied", "AccessDeniedException":
			// A kaginashi server names its endpoint in the instance's
			// own description, which needs only ec2:DescribeInstances:
			// `kaginashi ssh` and open-tunnel find it there when a
			// policy lacks ec2:DescribeInstanceConnectEndpoints (the seed
			// article's does), so doctor must not call that a failure.
			return base, in.EndpointID, nil
		}
	}
	return url, id, err
}

func (a awsAPI) Tunnel(ctx context.Context, p client.TunnelParams) (net.Conn, error) {
	return client.DialTunnel(ctx, a.cfg, p)
}
