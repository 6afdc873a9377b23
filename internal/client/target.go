package client

import (
	"context"
	"errors"
	"fmt"
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
					PublicIP: aws.ToString(i.PublicIpAddress), IPv6: aws.ToString(i.Ipv6Address), Platform: aws.ToString(i.PlatformDetails)}
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

// Endpoint finds the Instance Connect Endpoint to tunnel through: with a
// kaginashi endpoint configured (AWS_ENDPOINT_URL), the server itself;
// on AWS, the first usable endpoint (DnsName, port 443).
func Endpoint(ctx context.Context, cfg aws.Config, id string) (url, endpointID string, err error) {
	cl := ec2.NewFromConfig(cfg)
	in := &ec2.DescribeInstanceConnectEndpointsInput{}
	if id != "" {
		in.InstanceConnectEndpointIds = []string{id}
	}
	out, err := cl.DescribeInstanceConnectEndpoints(ctx, in)
	if err != nil {
		return "", "", err
	}
	for _, e := range out.InstanceConnectEndpoints {
		switch e.State {
		case ec2types.Ec2InstanceConnectEndpointStateCreateComplete, ec2types.Ec2InstanceConnectEndpointStateUpdateComplete,
			ec2types.Ec2InstanceConnectEndpointStateUpdateInProgress, ec2types.Ec2InstanceConnectEndpointStateUpdateFailed:
		default:
			continue
		}
		endpointID = aws.ToString(e.InstanceConnectEndpointId)
		if base := aws.ToString(cfg.BaseEndpoint); base != "" {
			// kaginashi: the server is the endpoint, at its own URL and port.
			return base, endpointID, nil
		}
		return "https://" + aws.ToString(e.DnsName), endpointID, nil
	}
	return "", "", fmt.Errorf("no usable EC2 Instance Connect Endpoint in %s", cfg.Region)
}
