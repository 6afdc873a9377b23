package awsapi

import (
	"encoding/xml"
	"strings"

	"github.com/kaginashi/kaginashi/internal/apierr"
	"github.com/kaginashi/kaginashi/internal/inventory"
	"github.com/kaginashi/kaginashi/internal/store"
	"github.com/kaginashi/kaginashi/policy"
)

// EC2 XML shapes (DescribeInstances and friends; lowerCamel, lists as
// xSet>item).

type ec2Tag struct {
	Key   string `xml:"key"`
	Value string `xml:"value"`
}

type ec2State struct {
	Code int    `xml:"code"`
	Name string `xml:"name"`
}

type ec2Instance struct {
	InstanceID     string   `xml:"instanceId"`
	ImageID        string   `xml:"imageId"`
	State          ec2State `xml:"instanceState"`
	PrivateDNSName string   `xml:"privateDnsName"`
	DNSName        string   `xml:"dnsName"`
	Reason         string   `xml:"reason"`
	AMILaunchIndex int      `xml:"amiLaunchIndex"`
	InstanceType   string   `xml:"instanceType"`
	LaunchTime     string   `xml:"launchTime"`
	Placement      struct {
		AvailabilityZone string `xml:"availabilityZone"`
		Tenancy          string `xml:"tenancy"`
	} `xml:"placement"`
	Platform         string   `xml:"platform,omitempty"`
	MonitoringState  string   `xml:"monitoring>state"`
	PrivateIPAddress string   `xml:"privateIpAddress,omitempty"`
	IPv6Address      string   `xml:"ipv6Address,omitempty"`
	Architecture     string   `xml:"architecture,omitempty"`
	RootDeviceType   string   `xml:"rootDeviceType"`
	Virtualization   string   `xml:"virtualizationType"`
	Hypervisor       string   `xml:"hypervisor"`
	Tags             []ec2Tag `xml:"tagSet>item,omitempty"`
	PlatformDetails  string   `xml:"platformDetails"`
	UsageOperation   string   `xml:"usageOperation"`
}

type ec2Reservation struct {
	ReservationID string        `xml:"reservationId"`
	OwnerID       string        `xml:"ownerId"`
	Instances     []ec2Instance `xml:"instancesSet>item"`
}

type describeInstancesResponse struct {
	XMLName xml.Name `xml:"DescribeInstancesResponse"`
	ec2Envelope
	Reservations []ec2Reservation `xml:"reservationSet>item"`
	NextToken    string           `xml:"nextToken,omitempty"`
}

type ec2Endpoint struct {
	OwnerID          string   `xml:"ownerId"`
	EndpointID       string   `xml:"instanceConnectEndpointId"`
	EndpointARN      string   `xml:"instanceConnectEndpointArn"`
	State            string   `xml:"state"`
	DNSName          string   `xml:"dnsName"`
	NetworkInterface []string `xml:"networkInterfaceIdSet>item"`
	VpcID            string   `xml:"vpcId"`
	SubnetID         string   `xml:"subnetId"`
	AvailabilityZone string   `xml:"availabilityZone"`
	CreatedAt        string   `xml:"createdAt"`
	PreserveClientIP bool     `xml:"preserveClientIp"`
	SecurityGroups   []string `xml:"securityGroupIdSet>item"`
	IPAddressType    string   `xml:"ipAddressType"`
	Tags             []ec2Tag `xml:"tagSet>item,omitempty"`
}

type describeEndpointsResponse struct {
	XMLName xml.Name `xml:"DescribeInstanceConnectEndpointsResponse"`
	ec2Envelope
	Endpoints []ec2Endpoint `xml:"instanceConnectEndpointSet>item"`
	NextToken string        `xml:"nextToken,omitempty"`
}

type returnResponse struct {
	XMLName xml.Name
	ec2Envelope
	Return bool `xml:"return"`
}

type ec2TagDescription struct {
	ResourceID   string `xml:"resourceId"`
	ResourceType string `xml:"resourceType"`
	Key          string `xml:"key"`
	Value        string `xml:"value"`
}

type describeTagsResponse struct {
	XMLName xml.Name `xml:"DescribeTagsResponse"`
	ec2Envelope
	Tags      []ec2TagDescription `xml:"tagSet>item"`
	NextToken string              `xml:"nextToken,omitempty"`
}

func ec2Tags(ts []store.Tag) []ec2Tag {
	out := make([]ec2Tag, len(ts))
	for i, t := range ts {
		out[i] = ec2Tag{t.Key, t.Value}
	}
	return out
}

// InstanceXML renders an instance the way EC2 does. Disconnected hosts
// show as "stopped": they exist but cannot take a login now.
func (h *Handler) instanceXML(in store.Instance) ec2Instance {
	x := ec2Instance{
		InstanceID: in.ID, ImageID: "ami-kaginashi", State: ec2State{inventory.StateCode(in.State), in.State},
		PrivateDNSName: inventory.PrivateDNSName(in), InstanceType: "kaginashi.host", LaunchTime: isoTime(in.LaunchTime),
		MonitoringState: "disabled", PrivateIPAddress: in.PrivateIP, IPv6Address: in.IPv6, Architecture: in.Architecture,
		RootDeviceType: "ebs", Virtualization: "hvm", Hypervisor: "xen", Tags: ec2Tags(inventory.AllTags(in)),
		PlatformDetails: in.Platform, UsageOperation: "RunInstances",
	}
	if x.PlatformDetails == "" {
		x.PlatformDetails = "Linux/UNIX"
	}
	x.Placement.AvailabilityZone = in.AvailabilityZ
	if x.Placement.AvailabilityZone == "" {
		x.Placement.AvailabilityZone = h.cfg.Region + "a"
	}
	x.Placement.Tenancy = "default"
	return x
}

func (c *call) filters() []inventory.Filter {
	var out []inventory.Filter
	for _, f := range c.params.filters(50) {
		out = append(out, inventory.Filter{Name: f.Name, Values: f.Values})
	}
	return out
}

// dryRun answers EC2's DryRun after authorization.
func (c *call) dryRun() error {
	if c.params.boolean("DryRun", false) {
		return apierr.New(apierr.DryRun, "Request would have succeeded, but DryRun flag is set.")
	}
	return nil
}

func ec2Ops() map[string]*op {
	ops := map[string]*op{}
	add := func(name string, readOnly bool, run func(c *call) (any, error)) {
		ops[name] = &op{name: name, action: "ec2:" + name, readOnly: readOnly, run: run}
	}
	add("DescribeInstances", true, func(c *call) (any, error) {
		ids := c.params.indexed("InstanceId", 1000)
		filters := c.filters()
		max := c.params.integer("MaxResults", 0, 5, 1000)
		next := c.params.str("NextToken")
		if err := c.decoded(); err != nil {
			return nil, err
		}
		if err := c.authorize("*", nil); err != nil {
			return nil, err
		}
		if err := c.dryRun(); err != nil {
			return nil, err
		}
		pg, err := c.h.deps.Inventory.Describe(c.ctx, ids, filters, max, next)
		if err != nil {
			return nil, err
		}
		out := &describeInstancesResponse{Reservations: []ec2Reservation{}, NextToken: pg.NextToken}
		for _, in := range pg.Instances {
			out.Reservations = append(out.Reservations, ec2Reservation{
				ReservationID: "r-" + strings.TrimPrefix(in.ID, "i-"), OwnerID: c.h.cfg.Account,
				Instances: []ec2Instance{c.h.instanceXML(in)},
			})
		}
		return out, nil
	})
	add("DescribeInstanceConnectEndpoints", true, func(c *call) (any, error) {
		ids := c.params.indexed("InstanceConnectEndpointId", 50)
		filters := c.filters()
		c.params.integer("MaxResults", 0, 1, 50)
		if err := c.decoded(); err != nil {
			return nil, err
		}
		for _, f := range filters {
			switch {
			case f.Name == "state", f.Name == "instance-connect-endpoint-id", f.Name == "vpc-id",
				f.Name == "subnet-id", f.Name == "tag-key", strings.HasPrefix(f.Name, "tag:"):
			default:
				return nil, apierr.WithCode(apierr.InvalidInput, "InvalidParameterValue", "The filter '%s' is invalid", truncate(f.Name, 128))
			}
		}
		if err := c.authorize("*", nil); err != nil {
			return nil, err
		}
		if err := c.dryRun(); err != nil {
			return nil, err
		}
		e, err := c.h.deps.Inventory.Endpoint(c.ctx)
		if err != nil {
			return nil, err
		}
		out := &describeEndpointsResponse{Endpoints: []ec2Endpoint{}}
		if len(ids) > 0 {
			found := false
			for _, id := range ids {
				if id == e.ID {
					found = true
				} else {
					return nil, apierr.WithCode(apierr.NotFound, "InvalidInstanceConnectEndpointId.NotFound", "The instance connect endpoint ID '%s' does not exist", id)
				}
			}
			if !found {
				return out, nil
			}
		}
		x := ec2Endpoint{
			OwnerID: c.h.cfg.Account, EndpointID: e.ID, EndpointARN: e.ARN, State: "create-complete", DNSName: e.DNSName,
			NetworkInterface: []string{}, AvailabilityZone: c.h.cfg.Region + "a", CreatedAt: isoTime(e.CreatedAt),
			SecurityGroups: []string{}, IPAddressType: "dualstack", Tags: ec2Tags(e.Tags),
		}
		if endpointMatches(x, filters) {
			out.Endpoints = append(out.Endpoints, x)
		}
		return out, nil
	})
	tagResources := func(c *call) ([]string, error) {
		ids := c.params.indexed("ResourceId", 1000)
		if len(ids) == 0 {
			c.params.fail("ResourceId.1 is required")
		}
		return ids, c.decoded()
	}
	add("CreateTags", false, func(c *call) (any, error) {
		tags := c.params.tags("Tag", 50)
		ids, err := tagResources(c)
		if err != nil {
			return nil, err
		}
		if len(tags) == 0 {
			return nil, apierr.WithCode(apierr.InvalidInput, "MissingParameter", "The request must contain the parameter Tag")
		}
		// The request's own keys, before authorization (a parameter
		// error); a clash with a resource's tags is found after it.
		if err := inventory.CheckTagKeyCase(nil, tags); err != nil {
			return nil, err
		}
		rs, err := c.taggedResources(ids)
		if err != nil {
			return nil, err
		}
		if err := c.authorizeTagging(rs, func(_ taggedResource, rc *policy.Context) {
			requestTags(tags)(rc)
			rc.Set("ec2:CreateAction", "CreateTags")
		}); err != nil {
			return nil, err
		}
		if err := c.dryRun(); err != nil {
			return nil, err
		}
		if err := c.h.deps.Inventory.CreateTags(c.ctx, ids, tags); err != nil {
			return nil, err
		}
		return &returnResponse{XMLName: xml.Name{Local: "CreateTagsResponse"}, Return: true}, nil
	})
	add("DeleteTags", false, func(c *call) (any, error) {
		tags := c.params.tagMatches("Tag", 50)
		ids, err := tagResources(c)
		if err != nil {
			return nil, err
		}
		rs, err := c.taggedResources(ids)
		if err != nil {
			return nil, err
		}
		if err := c.authorizeTagging(rs, func(r taggedResource, rc *policy.Context) {
			// aws:TagKeys are the keys the call deletes: the ones it
			// names, or — with no Tag.N, which deletes every tag — all of
			// the resource's, so that a Deny on a key that matters holds
			// against deleting everything as against deleting that key.
			var keys []string
			if len(tags) == 0 {
				for _, t := range r.tags {
					keys = append(keys, t.Key)
				}
			}
			for _, t := range tags {
				keys = append(keys, t.Key)
				if t.MatchValue {
					rc.Set("aws:RequestTag/"+t.Key, t.Value)
				}
			}
			if len(keys) > 0 {
				rc.Set("aws:TagKeys", keys...)
			}
		}); err != nil {
			return nil, err
		}
		if err := c.dryRun(); err != nil {
			return nil, err
		}
		if err := c.h.deps.Inventory.DeleteTags(c.ctx, ids, tags); err != nil {
			return nil, err
		}
		return &returnResponse{XMLName: xml.Name{Local: "DeleteTagsResponse"}, Return: true}, nil
	})
	add("DescribeTags", true, func(c *call) (any, error) {
		filters := c.filters()
		max := c.params.integer("MaxResults", 0, 5, 1000)
		next := c.params.str("NextToken")
		if err := c.decoded(); err != nil {
			return nil, err
		}
		if err := c.authorize("*", nil); err != nil {
			return nil, err
		}
		if err := c.dryRun(); err != nil {
			return nil, err
		}
		ts, err := c.h.deps.Inventory.DescribeTags(c.ctx, filters)
		if err != nil {
			return nil, err
		}
		ts, token, err := inventory.PageTags(ts, max, next)
		if err != nil {
			return nil, err
		}
		out := &describeTagsResponse{Tags: []ec2TagDescription{}, NextToken: token}
		for _, t := range ts {
			out.Tags = append(out.Tags, ec2TagDescription{t.ResourceID, t.ResourceType, t.Key, t.Value})
		}
		return out, nil
	})
	return ops
}

// endpointMatches applies DescribeInstanceConnectEndpoints' filters.
func endpointMatches(e ec2Endpoint, filters []inventory.Filter) bool {
	for _, f := range filters {
		var have []string
		switch {
		case f.Name == "state":
			have = []string{e.State}
		case f.Name == "instance-connect-endpoint-id":
			have = []string{e.EndpointID}
		case f.Name == "vpc-id":
			have = []string{e.VpcID}
		case f.Name == "subnet-id":
			have = []string{e.SubnetID}
		case f.Name == "tag-key":
			for _, t := range e.Tags {
				have = append(have, t.Key)
			}
		case strings.HasPrefix(f.Name, "tag:"):
			for _, t := range e.Tags {
				if t.Key == strings.TrimPrefix(f.Name, "tag:") {
					have = append(have, t.Value)
				}
			}
		}
		ok := false
		for _, v := range f.Values {
			for _, h := range have {
				if v == h {
					ok = true
				}
			}
		}
		if !ok {
			return false
		}
	}
	return true
}
