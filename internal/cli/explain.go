package cli

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strings"

	"github.com/aws/smithy-go"

	"github.com/kaginashi/kaginashi/internal/client"
)

// problem is an error told for a person: what went wrong, in one line, and
// what to do about it, in another.
type problem struct {
	what, fix string
}

func (p *problem) Error() string {
	if p.fix == "" {
		return p.what
	}
	return p.what + "\nkaginashi: " + p.fix
}

// explainCtx is what a message can mention.
type explainCtx struct {
	instance string // "i-... (Name)"
	port     int
	endpoint string // the server URL, "" on AWS
	// portFlag is how the command at hand is given another port:
	// "--remote-port" (open-tunnel: any service), "ssh's -p" (ssh-proxy);
	// "" is kaginashi ssh's --ssh-port.
	portFlag string
}

var (
	performRE = regexp.MustCompile(`perform: (\S+)`)
	// endpointResourceRE is the denied resource when it is an Instance
	// Connect Endpoint: its ARN up to the ID.
	endpointResourceRE = regexp.MustCompile(`on resource: (arn:[^:\s]+:ec2:[^:\s]*:[^:\s]*:instance-connect-endpoint/)\S+`)
)

// codeOf digs the API error code and message out of the SDK's, the JSON
// API's and the tunnel handshake's errors.
func codeOf(err error) (code, msg string, ok bool) {
	var te *client.TunnelError
	if errors.As(err, &te) {
		return te.Code, te.Message, te.Code != ""
	}
	var je *client.APIError
	if errors.As(err, &je) {
		return je.Code, je.Message, true
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode(), ae.ErrorMessage(), true
	}
	return "", "", false
}

// apiFailure is a client command's failure to get its answer (no
// configuration, the server unreachable or refusing): told as explain
// tells it, exit status 1 (2 is for the caller's usage mistakes).
func apiFailure(err error, endpoint string) error {
	return &exitError{code: 1, err: explain(err, explainCtx{endpoint: endpoint})}
}

// explain turns an error of a client command into what went wrong and the
// fix, without the SDK's wrapping (operation names, request IDs).
func explain(err error, x explainCtx) error {
	if err == nil {
		return nil
	}
	var (
		ee *exitError
		pr *problem
		nf *client.NotFoundError
		am *client.AmbiguousError
	)
	if errors.As(err, &ee) || errors.As(err, &pr) || errors.As(err, &am) {
		return err
	}
	if errors.As(err, &nf) {
		if len(nf.Like) > 0 {
			return &problem{what: nf.Error(), fix: fmt.Sprintf("write the Name with its case, e.g. %q", nf.Like[0])}
		}
		return &problem{what: nf.Error(), fix: "check the ID or Name, the region (--region) and the server (--endpoint-url)"}
	}
	inst := x.instance
	if inst == "" {
		inst = "the instance"
	}
	if code, msg, ok := codeOf(err); ok {
		switch code {
		case "AccessDenied", "AccessDeniedException", "AuthException", "UnauthorizedOperation":
			p := &problem{what: "access denied: " + msg}
			switch {
			case strings.Contains(msg, "explicit deny"):
				p.fix = "the policy statement named above denies it: ask an administrator to change that statement, or use an OS user, host or port it does not cover"
				if strings.Contains(msg, "perform: ec2-instance-connect:OpenTunnel ") {
					// A tunnel has no OS user; its own condition keys are
					// the port and the duration.
					p.fix = "the policy statement named above denies it: ask an administrator to change that statement, or open a tunnel it does not cover (another port, a shorter --max-tunnel-duration)"
				}
			case performRE.MatchString(msg):
				action := performRE.FindStringSubmatch(msg)[1]
				p.fix = "no policy allows it: ask an administrator to allow " + action + " for you (docs/POLICY.md)"
				if strings.HasPrefix(action, "ec2-instance-connect:") || strings.HasPrefix(action, "ec2:") {
					p.fix = "no policy allows it: ask an administrator to allow " + action + " for you (docs/POLICY.md; examples/seed-policy.json)"
				}
				if m := endpointResourceRE.FindStringSubmatch(msg); m != nil && action == "ec2-instance-connect:OpenTunnel" {
					// The seed article's policy lists OpenTunnel on
					// instance/*, which never matches: OpenTunnel's
					// resource is the endpoint. Say so, or the hint sends
					// people back to the very policy they hold.
					// A statement on the endpoint whose conditions do not
					// match this tunnel (NumericEquals remotePort 22 for
					// port 5432) refuses it just the same: name the keys
					// and this tunnel's values too.
					port := ""
					if x.port > 0 {
						port = fmt.Sprintf(" %d", x.port)
					}
					p.fix = "no policy allows it: ask an administrator to allow ec2-instance-connect:OpenTunnel on " + m[1] +
						"* for you, with any conditions matching this tunnel (ec2-instance-connect:remotePort" + port +
						", ec2-instance-connect:maxTunnelDuration: the server's maximum, 3600, unless --max-tunnel-duration; ec2-instance-connect:privateIpAddress); it is granted on the endpoint, not instance/* (a statement on instance/*, like the seed article's, grants no tunnel; docs/POLICY.md)"
				}
			default:
				p.fix = "ask an administrator for a policy that allows it (docs/POLICY.md)"
			}
			return p
		case "EC2InstanceUnavailableException", "InstanceUnavailable":
			return &problem{what: fmt.Sprintf("the agent of %s is offline: it is not connected to the server", inst),
				fix: "start it on the host (systemctl start kaginashi-agent; systemctl status kaginashi-agent tells why it stopped), or check that the host is up and can reach the server"}
		case "TargetRefused":
			p := &problem{what: fmt.Sprintf("%s refused the tunnel: %s", inst, msg)}
			if strings.Contains(msg, "not allowed") && !strings.Contains(msg, "--allow-port") {
				p.fix = fmt.Sprintf("on the host, let the agent reach the port: kaginashi-agent run --allow-port %d", x.port)
			} else if strings.Contains(msg, "nothing accepts connections") {
				switch x.portFlag {
				case "":
					p.fix = fmt.Sprintf("start the service on the host (is sshd listening on port %d?), or pick the port with --ssh-port", x.port)
				case "--remote-port":
					p.fix = fmt.Sprintf("start the service on the host (does anything listen on 127.0.0.1:%d there?), or pick the port with --remote-port", x.port)
				default:
					p.fix = fmt.Sprintf("start the service on the host (is sshd listening on port %d?), or pick the port with %s", x.port, x.portFlag)
				}
			}
			return p
		case "TargetUnreachable":
			return &problem{what: fmt.Sprintf("the server could not reach %s through its agent: %s", inst, msg), fix: "try again; if it persists, restart the agent on the host"}
		case "TooManyTunnels", "ThrottlingException", "RequestLimitExceeded", "Throttling":
			return &problem{what: "the server is busy: " + msg, fix: "try again in a moment"}
		case "EC2InstanceNotFoundException", "InvalidInstanceID.NotFound", "InvalidInstanceID.Malformed":
			return &problem{what: msg, fix: "check the ID or Name, the region (--region) and the server (--endpoint-url)"}
		case "EC2InstanceStateInvalidException", "IncorrectInstanceState":
			return &problem{what: fmt.Sprintf("%s cannot take a login now: %s", inst, msg), fix: "start the instance (or its agent) and try again"}
		case "ExpiredToken", "ExpiredTokenException":
			// Temporary credentials (STS, an SSO session) that ran out:
			// new ones, not another key.
			return &problem{what: fmt.Sprintf("your credentials have expired (%s: %s)", code, msg),
				fix: "get new ones (aws sso login --profile P, or new STS credentials) and try again"}
		case "InvalidClientTokenId", "UnrecognizedClientException", "AuthFailure", "InvalidSignatureException", "SignatureDoesNotMatch",
			"IncompleteSignatureException", "MissingAuthenticationTokenException", "RequestExpired":
			return &problem{what: fmt.Sprintf("the server does not accept your credentials (%s: %s)", code, msg),
				fix: "check the access key (AWS_PROFILE, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY), the region and the system clock"}
		}
		if msg == "" {
			return &problem{what: code}
		}
		return &problem{what: code + ": " + msg}
	}
	var ue x509.UnknownAuthorityError
	var he x509.HostnameError
	if errors.As(err, &ue) || errors.As(err, &he) || strings.Contains(err.Error(), "x509: ") {
		return &problem{what: "the server's TLS certificate is not trusted: " + lastPart(err),
			fix: "pass the server's CA with --ca-bundle (its DIR/tls/ca.pem) or set AWS_CA_BUNDLE"}
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		where := x.endpoint
		if where == "" {
			where = "AWS"
		}
		return &problem{what: fmt.Sprintf("cannot reach %s: %v", where, oe), fix: "check --endpoint-url (AWS_ENDPOINT_URL) and that the server runs"}
	}
	s := err.Error()
	if strings.Contains(s, "failed to retrieve credentials") || strings.Contains(s, "failed to refresh cached credentials") || strings.Contains(s, "no EC2 IMDS role found") {
		return &problem{what: "no AWS credentials found", fix: "set AWS_PROFILE (a profile of ~/.aws/credentials) or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, as for the aws CLI"}
	}
	return err
}

// lastPart is the end of an error chain's text: the cause without the
// wrapping.
func lastPart(err error) string {
	s := err.Error()
	if i := strings.LastIndex(s, ": x509: "); i >= 0 {
		return s[i+2:]
	}
	return s
}
