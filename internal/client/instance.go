package client

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// kaginashi's own JSON API: target prefix and signing name.
const (
	KaginashiTarget  = "Kaginashi_20261128."
	KaginashiService = "kaginashi"
)

// Instance is what a login needs to know about its target.
type Instance struct {
	Target
	// Kaginashi says the facts below came from a kaginashi server
	// (DescribeInstanceConnectInfo); false on AWS, where only
	// DescribeInstances answers and the rest is unknown.
	Kaginashi         bool
	DefaultUser       string
	DefaultUserExists bool
	HostKeys          []string // OpenSSH "type base64" lines
	AllowedPorts      []int    // nil: unknown
	SSHPort           int      // sshd's port as the agent read it; 0: unknown
	LastSeen          string
	// EndpointID is the kaginashi server's Instance Connect Endpoint, to
	// tunnel through without looking it up.
	EndpointID string
}

var instanceIDRE = regexp.MustCompile(`^i-[0-9a-f]{8,17}$`)

// IsInstanceID says whether s has the shape of an EC2 instance ID.
func IsInstanceID(s string) bool { return instanceIDRE.MatchString(s) }

// AmbiguousError is a Name tag that several instances carry.
type AmbiguousError struct {
	Name       string
	Candidates []Target
}

func (e *AmbiguousError) Error() string {
	var lines []string
	for _, t := range e.Candidates {
		lines = append(lines, fmt.Sprintf("  %s  %-10s %s", t.InstanceID, t.State, t.PrivateIP))
	}
	sort.Strings(lines)
	return fmt.Sprintf("%d instances have the Name %q; use one of their instance IDs:\n%s", len(e.Candidates), e.Name, strings.Join(lines, "\n"))
}

// NotFoundError is a target that matches no instance.
type NotFoundError struct {
	Target string
	// Like are the Names that match Target but for case (NamesLike), for
	// the message: Names match exactly, as EC2's tag filters do.
	Like []string
}

func (e *NotFoundError) Error() string {
	if IsInstanceID(e.Target) {
		return fmt.Sprintf("there is no instance %s (or you may not see it)", e.Target)
	}
	if len(e.Like) > 0 {
		q := make([]string, len(e.Like))
		for i, n := range e.Like {
			q[i] = strconv.Quote(n)
		}
		return fmt.Sprintf("no instance has the Name tag %q (Names match with their case: there is %s)", e.Target, strings.Join(q, ", "))
	}
	return fmt.Sprintf("no instance has the Name tag %q (and it is not an instance ID)", e.Target)
}

// NamesLike lists the Names, other than name itself, that match name but
// for case, each once: a hint for a name that matched none exactly
// (`kaginashi ssh web` for the instance named "Web"). A failed listing
// gives none: the hint is not worth an error of its own.
func NamesLike(ctx context.Context, cfg aws.Config, name string) []string {
	named, err := namedInstances(ctx, cfg)
	if err != nil {
		return nil
	}
	var like []string
	for _, t := range named {
		if t.Name != name && strings.EqualFold(t.Name, name) && !slices.Contains(like, t.Name) {
			like = append(like, t.Name)
		}
	}
	sort.Strings(like)
	return like
}

// nameFilterValue escapes EC2 filter wildcards, so that a Name is matched
// as it is.
func nameFilterValue(name string) string {
	return strings.NewReplacer(`\`, `\\`, `*`, `\*`, `?`, `\?`).Replace(name)
}

// DescribeInstance finds the target, an instance ID or a Name tag, with
// what a login needs: from kaginashi's DescribeInstanceConnectInfo when a
// kaginashi endpoint is configured (host keys, default user, allowed
// ports), else — on AWS, or a server without that operation — from
// DescribeInstances alone.
func DescribeInstance(ctx context.Context, cfg aws.Config, target string) (Instance, error) {
	if aws.ToString(cfg.BaseEndpoint) != "" {
		in, err := describeKaginashi(ctx, cfg, target)
		var ae *APIError
		if err == nil || !errors.As(err, &ae) || (ae.Code != "UnknownOperationException" && ae.Status != 404) {
			return in, err
		}
	}
	t, err := ResolveTarget(ctx, cfg, target)
	return Instance{Target: t}, err
}

type connectInfo struct {
	InstanceID        string   `json:"InstanceId"`
	Name              string   `json:"Name"`
	State             string   `json:"State"`
	LastSeen          string   `json:"LastSeen"`
	PrivateIP         string   `json:"PrivateIpAddress"`
	IPv6              string   `json:"Ipv6Address"`
	DefaultUser       string   `json:"DefaultUser"`
	DefaultUserExists bool     `json:"DefaultUserExists"`
	HostKeys          []string `json:"HostKeys"`
	AllowedPorts      []int    `json:"AllowedPorts"`
	SSHPort           int      `json:"SSHPort"`
}

type filter struct {
	Name   string   `json:"Name"`
	Values []string `json:"Values"`
}

func describeKaginashi(ctx context.Context, cfg aws.Config, target string) (Instance, error) {
	var in struct {
		InstanceIDs []string `json:"InstanceIds,omitempty"`
		Filters     []filter `json:"Filters,omitempty"`
	}
	if IsInstanceID(target) {
		in.InstanceIDs = []string{target}
	} else {
		in.Filters = []filter{{Name: "tag:Name", Values: []string{nameFilterValue(target)}}}
	}
	var out struct {
		Instances  []connectInfo `json:"Instances"`
		EndpointID string        `json:"InstanceConnectEndpointId"`
	}
	if err := CallJSON(ctx, cfg, KaginashiService, KaginashiTarget+"DescribeInstanceConnectInfo", in, &out); err != nil {
		var ae *APIError
		if errors.As(err, &ae) && strings.HasPrefix(ae.Code, "InvalidInstanceID.NotFound") {
			return Instance{}, &NotFoundError{Target: target}
		}
		return Instance{}, err
	}
	switch len(out.Instances) {
	case 0:
		return Instance{}, &NotFoundError{Target: target}
	case 1:
	default:
		ae := &AmbiguousError{Name: target}
		for _, i := range out.Instances {
			ae.Candidates = append(ae.Candidates, Target{InstanceID: i.InstanceID, Name: i.Name, State: i.State, PrivateIP: i.PrivateIP})
		}
		return Instance{}, ae
	}
	i := out.Instances[0]
	return Instance{
		Target:    Target{InstanceID: i.InstanceID, Name: i.Name, State: i.State, PrivateIP: i.PrivateIP, IPv6: i.IPv6},
		Kaginashi: true, DefaultUser: i.DefaultUser, DefaultUserExists: i.DefaultUserExists,
		HostKeys: i.HostKeys, AllowedPorts: i.AllowedPorts, SSHPort: i.SSHPort, LastSeen: i.LastSeen, EndpointID: out.EndpointID,
	}, nil
}

// PortAllowed says whether the instance's agent lets tunnels reach port;
// true when that is unknown.
func (i Instance) PortAllowed(port int) bool {
	if i.AllowedPorts == nil {
		return true
	}
	for _, p := range i.AllowedPorts {
		if p == port {
			return true
		}
	}
	return false
}

// Label is "i-... (Name)" for messages.
func (t Target) Label() string {
	if t.Name != "" {
		return t.InstanceID + " (" + t.Name + ")"
	}
	return t.InstanceID
}

// DescribeInstanceByHost is DescribeInstance for a Name that went through
// ssh, which lowercases host names: `ssh web.kaginashi` for the instance
// whose Name tag is "Web". When no Name matches exactly, the one Name
// that matches but for case does (several: ambiguous, as usual).
func DescribeInstanceByHost(ctx context.Context, cfg aws.Config, target string) (Instance, error) {
	in, err := DescribeInstance(ctx, cfg, target)
	var nf *NotFoundError
	if err == nil || IsInstanceID(target) || !errors.As(err, &nf) {
		return in, err
	}
	named, lerr := namedInstances(ctx, cfg)
	if lerr != nil {
		return in, err // not found says it best
	}
	var found []Target
	for _, t := range named {
		if strings.EqualFold(t.Name, target) {
			found = append(found, t)
		}
	}
	switch len(found) {
	case 0:
		return in, err
	case 1:
		return DescribeInstance(ctx, cfg, found[0].InstanceID)
	}
	return Instance{}, &AmbiguousError{Name: target, Candidates: found}
}

// namedInstances lists the instances that have a Name tag, from
// kaginashi's DescribeInstanceConnectInfo when it answers, else from
// DescribeInstances.
func namedInstances(ctx context.Context, cfg aws.Config) ([]Target, error) {
	if aws.ToString(cfg.BaseEndpoint) != "" {
		var out struct {
			Instances []connectInfo `json:"Instances"`
		}
		in := struct {
			Filters []filter `json:"Filters"`
		}{Filters: []filter{{Name: "tag-key", Values: []string{"Name"}}}}
		err := CallJSON(ctx, cfg, KaginashiService, KaginashiTarget+"DescribeInstanceConnectInfo", in, &out)
		var ae *APIError
		if err == nil {
			var ts []Target
			for _, i := range out.Instances {
				ts = append(ts, Target{InstanceID: i.InstanceID, Name: i.Name, State: i.State, PrivateIP: i.PrivateIP})
			}
			return ts, nil
		}
		if !errors.As(err, &ae) || (ae.Code != "UnknownOperationException" && ae.Status != 404) {
			return nil, err
		}
	}
	return describeTargets(ctx, cfg, &ec2.DescribeInstancesInput{Filters: []ec2types.Filter{{Name: aws.String("tag-key"), Values: []string{"Name"}}}})
}
