package policy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
)

// EICTemplate describes a least-privilege Instance Connect policy: the
// seed article's policy done right. Region and AccountID are required.
type EICTemplate struct {
	Partition   string // default "aws"
	Region      string
	AccountID   string
	InstanceIDs []string
	// Tags narrows SendSSHPublicKey to instances carrying every tag (used
	// when no InstanceIDs are given, or in addition to them).
	Tags    []Tag
	OSUsers []string
	// EndpointID is the Instance Connect Endpoint; "" allows every endpoint
	// of the account and region (kaginashi has one).
	EndpointID string
	// SourceIPs, when set, limit both actions to these CIDR blocks.
	SourceIPs []string
	// MaxTunnelDuration caps tunnels, in seconds (1-3600; 0 means 3600).
	MaxTunnelDuration int
}

// Tag is a key and value.
type Tag struct{ Key, Value string }

var (
	instanceIDRE = regexp.MustCompile(`^i-[0-9a-f]{8,32}$`)
	endpointIDRE = regexp.MustCompile(`^eice-[0-9a-zA-Z_]+$`)
	// Compiled on first use: {1,128} of these Unicode classes takes about
	// 5 ms and 5 MB to compile, which every kaginashi process (each ssh
	// ProxyCommand among them) would otherwise pay at start.
	tagKeyRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[\p{L}\p{Z}\p{N}_.:/=+\-@]{1,128}$`) })
)

// DefaultOSUser is the OS user the template allows when none is named: the
// AWS CLI's own default for `ec2-instance-connect ssh`.
const DefaultOSUser = "ec2-user"

// Document renders the policy as indented JSON. notes tell the caller about
// defaults it applied (to show a person, not to parse).
func (t EICTemplate) Document() (doc []byte, notes []string, err error) {
	if t.Partition == "" {
		t.Partition = "aws"
	}
	if !contains(partitions, t.Partition) {
		return nil, nil, fmt.Errorf("partition %q: want one of %s", t.Partition, strings.Join(partitions, ", "))
	}
	if !regionRE.MatchString(t.Region) {
		return nil, nil, fmt.Errorf("region %q: want a region name such as us-east-1", t.Region)
	}
	if !accountRE.MatchString(t.AccountID) {
		return nil, nil, fmt.Errorf("account ID %q: want 12 digits", t.AccountID)
	}
	for _, id := range t.InstanceIDs {
		if !instanceIDRE.MatchString(id) {
			return nil, nil, fmt.Errorf("instance ID %q: want i- and 8 to 32 lower-case hex digits", id)
		}
	}
	for _, tg := range t.Tags {
		if !tagKeyRE().MatchString(tg.Key) || strings.ContainsAny(tg.Key+tg.Value, "${}*?") {
			return nil, nil, fmt.Errorf("tag %q=%q: keys are 1-128 letters, digits, spaces and _.:/=+-@, and neither may hold ${, }, * or ?", tg.Key, tg.Value)
		}
	}
	if len(t.OSUsers) == 0 {
		t.OSUsers = []string{DefaultOSUser}
		notes = append(notes, fmt.Sprintf("no --os-user given: allowing %s, the AWS CLI's default user; name the users your hosts log in as (ubuntu, admin, ...)", DefaultOSUser))
	}
	for _, u := range t.OSUsers {
		if err := ValidOSUser(u); err != nil {
			return nil, nil, err
		}
		if u == "root" {
			notes = append(notes, "allowing root logins: prefer a named user with sudo")
		}
	}
	if t.EndpointID != "" && !endpointIDRE.MatchString(t.EndpointID) {
		return nil, nil, fmt.Errorf("endpoint ID %q: want eice- followed by letters, digits or _", t.EndpointID)
	}
	for _, c := range t.SourceIPs {
		if _, ok := parseCIDR(c); !ok {
			return nil, nil, fmt.Errorf("source IP %q: want a CIDR block such as 203.0.113.0/24", c)
		}
	}
	switch {
	case t.MaxTunnelDuration == 0:
		t.MaxTunnelDuration = 3600
	case t.MaxTunnelDuration < 1 || t.MaxTunnelDuration > 3600:
		return nil, nil, fmt.Errorf("max tunnel duration %d: want 1 to 3600 seconds", t.MaxTunnelDuration)
	}

	prefix := "arn:" + t.Partition + ":ec2:" + t.Region + ":" + t.AccountID + ":"
	var instances []string
	for _, id := range t.InstanceIDs {
		instances = append(instances, prefix+"instance/"+id)
	}
	if len(instances) == 0 {
		instances = []string{prefix + "instance/*"}
		if len(t.Tags) == 0 {
			notes = append(notes, "no --instance-id or --tag given: every instance of the account and region is allowed, for the named OS users only")
		}
	}
	push := map[string]map[string]any{
		"StringEquals": {"ec2:osuser": oneOrMany(t.OSUsers)},
	}
	for _, tg := range t.Tags {
		push["StringEquals"]["aws:ResourceTag/"+tg.Key] = tg.Value
	}
	endpoint := prefix + "instance-connect-endpoint/*"
	if t.EndpointID != "" {
		endpoint = prefix + "instance-connect-endpoint/" + t.EndpointID
	}
	tunnel := map[string]map[string]any{
		"NumericEquals":         {"ec2-instance-connect:remotePort": "22"},
		"NumericLessThanEquals": {"ec2-instance-connect:maxTunnelDuration": strconv.Itoa(t.MaxTunnelDuration)},
	}
	if len(t.SourceIPs) > 0 {
		push["IpAddress"] = map[string]any{"aws:SourceIp": oneOrMany(t.SourceIPs)}
		tunnel["IpAddress"] = map[string]any{"aws:SourceIp": oneOrMany(t.SourceIPs)}
	}
	doc, err = marshalPolicy(templateDoc{
		Version: Version2012,
		Statement: []templateStatement{
			{Sid: "SendSSHPublicKey", Effect: "Allow", Action: "ec2-instance-connect:SendSSHPublicKey", Resource: oneOrMany(instances), Condition: push},
			{Sid: "OpenTunnel", Effect: "Allow", Action: "ec2-instance-connect:OpenTunnel", Resource: endpoint, Condition: tunnel},
			{Sid: "DescribeForConnect", Effect: "Allow", Action: []string{"ec2:DescribeInstances", "ec2:DescribeInstanceConnectEndpoints"}, Resource: "*"},
		},
	})
	return doc, notes, err
}

type templateDoc struct {
	Version   string
	Statement []templateStatement
}

type templateStatement struct {
	Sid       string
	Effect    string
	Action    any
	Resource  any
	Condition map[string]map[string]any `json:",omitempty"`
}

func oneOrMany(vs []string) any {
	if len(vs) == 1 {
		return vs[0]
	}
	return vs
}

func marshalPolicy(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "    ")
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// The two branches of the EC2 Instance Connect model's InstanceOSUser
// pattern. The second has a look-ahead, (?=.{2,32}$), which Go's regexp
// lacks: ValidOSUser checks that length by hand.
var (
	osUserRE1 = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9@._-]{0,30}[A-Za-z0-9$_-]?$`)
	osUserRE2 = regexp.MustCompile(`^[0-9]{1,32}[A-Za-z@._-][A-Za-z0-9@._-]*[A-Za-z0-9$_-]?$`)
)

// ValidOSUser checks an OS user name the way the EC2 Instance Connect API
// model does (InstanceOSUser): 1-32 characters; a letter or _ first, or
// digits followed by at least one non-digit.
func ValidOSUser(u string) error {
	if len(u) >= 1 && len(u) <= 32 && osUserRE1.MatchString(u) {
		return nil
	}
	if len(u) >= 2 && len(u) <= 32 && osUserRE2.MatchString(u) {
		return nil
	}
	return fmt.Errorf("OS user %q: want 1-32 characters, letters, digits and ._@- (a $ may end it), not starting with - or a digit-only name", u)
}
