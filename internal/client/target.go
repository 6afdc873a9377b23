package client

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"
)

// Target is an instance to reach, as DescribeInstances shows it.
type Target struct {
	InstanceID string
	Name       string
	State      string
	PrivateIP  string
	PublicIP   string
	IPv6       string
	Platform   string
	// VpcID and SubnetID choose the Instance Connect Endpoint on AWS
	// (empty from a kaginashi server, whose endpoint is itself).
	VpcID    string
	SubnetID string
}

// ResolveTarget finds an instance by ID (i-...) or by its Name tag. An
// ambiguous name lists the candidates.
func ResolveTarget(ctx context.Context, cfg aws.Config, target string) (Target, error) {
	in := &ec2.DescribeInstancesInput{}
	if IsInstanceID(target) {
		in.InstanceIds = []string{target}
	} else {
		in.Filters = []ec2types.Filter{{Name: aws.String("tag:Name"), Values: []string{nameFilterValue(target)}}}
	}
	found, err := describeTargets(ctx, cfg, in)
	if err != nil {
		var ae smithy.APIError
		if errors.As(err, &ae) && strings.HasPrefix(ae.ErrorCode(), "InvalidInstanceID.NotFound") {
			return Target{}, &NotFoundError{Target: target}
		}
		return Target{}, err
	}
	switch len(found) {
	case 0:
		return Target{}, &NotFoundError{Target: target}
	case 1:
		return found[0], nil
	}
	return Target{}, &AmbiguousError{Name: target, Candidates: found}
}

// describeTargets is DescribeInstances, every page, as Targets.
func describeTargets(ctx context.Context, cfg aws.Config, in *ec2.DescribeInstancesInput) ([]Target, error) {
	var found []Target
	for p := ec2.NewDescribeInstancesPaginator(ec2.NewFromConfig(cfg), in); p.HasMorePages(); {
		out, err := p.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		for _, r := range out.Reservations {
			for _, i := range r.Instances {
				t := Target{InstanceID: aws.ToString(i.InstanceId), PrivateIP: aws.ToString(i.PrivateIpAddress),
					PublicIP: aws.ToString(i.PublicIpAddress), IPv6: aws.ToString(i.Ipv6Address), Platform: aws.ToString(i.PlatformDetails),
					VpcID: aws.ToString(i.VpcId), SubnetID: aws.ToString(i.SubnetId)}
				if i.State != nil {
					t.State = string(i.State.Name)
				}
				for _, tg := range i.Tags {
					if aws.ToString(tg.Key) == "Name" {
						t.Name = aws.ToString(tg.Value)
					}
				}
				found = append(found, t)
			}
		}
	}
	return found, nil
}

// Endpoint finds the Instance Connect Endpoint to tunnel through, for no
// particular instance: EndpointFor with an unknown VPC.
func Endpoint(ctx context.Context, cfg aws.Config, id string) (url, endpointID string, err error) {
	return EndpointFor(ctx, cfg, id, Target{})
}

// usableEndpointStates are the states of an endpoint that opens tunnels
// (the AWS CLI's list).
var usableEndpointStates = []ec2types.Ec2InstanceConnectEndpointState{
	ec2types.Ec2InstanceConnectEndpointStateCreateComplete, ec2types.Ec2InstanceConnectEndpointStateUpdateComplete,
	ec2types.Ec2InstanceConnectEndpointStateUpdateInProgress, ec2types.Ec2InstanceConnectEndpointStateUpdateFailed,
}

// EndpointFor finds the Instance Connect Endpoint to reach t through: with
// a kaginashi endpoint configured (AWS_ENDPOINT_URL), the server itself;
// on AWS, the endpoint id when given, else — as the AWS CLI chooses — a
// usable endpoint in t's VPC, the one in t's subnet if there is one (an
// endpoint reaches only its own VPC; the region's first endpoint may be
// another VPC's), or the region's first when t's VPC is unknown. Its URL
// is https://DnsName (port 443).
func EndpointFor(ctx context.Context, cfg aws.Config, id string, t Target) (url, endpointID string, err error) {
	states := make([]string, len(usableEndpointStates))
	for i, st := range usableEndpointStates {
		states[i] = string(st)
	}
	in := &ec2.DescribeInstanceConnectEndpointsInput{}
	base := aws.ToString(cfg.BaseEndpoint)
	byVPC := id == "" && base == "" && t.VpcID != ""
	switch {
	case id != "":
		in.InstanceConnectEndpointIds = []string{id}
	case byVPC:
		in.Filters = []ec2types.Filter{{Name: aws.String("state"), Values: states}, {Name: aws.String("vpc-id"), Values: []string{t.VpcID}}}
	}
	var first *ec2types.Ec2InstanceConnectEndpoint
	for p := ec2.NewDescribeInstanceConnectEndpointsPaginator(ec2.NewFromConfig(cfg), in); p.HasMorePages(); {
		out, err := p.NextPage(ctx)
		if err != nil {
			return "", "", err
		}
		for i := range out.InstanceConnectEndpoints {
			e := &out.InstanceConnectEndpoints[i]
			if !slices.Contains(usableEndpointStates, e.State) || (byVPC && aws.ToString(e.VpcId) != t.VpcID) {
				continue
			}
			if base != "" {
				// kaginashi: the server is the endpoint, at its own URL and port.
				return base, aws.ToString(e.InstanceConnectEndpointId), nil
			}
			if first == nil {
				first = e
			}
			if !byVPC || aws.ToString(e.SubnetId) == t.SubnetID {
				return "https://" + aws.ToString(e.DnsName), aws.ToString(e.InstanceConnectEndpointId), nil
			}
		}
	}
	if first != nil {
		return "https://" + aws.ToString(first.DnsName), aws.ToString(first.InstanceConnectEndpointId), nil
	}
	if byVPC {
		return "", "", fmt.Errorf("no usable EC2 Instance Connect Endpoint in %s (the VPC of %s) in %s: create one there (aws ec2 create-instance-connect-endpoint --subnet-id %s)", t.VpcID, t.InstanceID, cfg.Region, t.SubnetID)
	}
	return "", "", fmt.Errorf("no usable EC2 Instance Connect Endpoint in %s", cfg.Region)
}
