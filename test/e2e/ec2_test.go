package e2e

import (
	"context"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/kaginashi/kaginashi/test/e2e/harness"
)

// instanceIDs are the instances of a DescribeInstances answer, sorted.
func instanceIDs(out *ec2.DescribeInstancesOutput) []string {
	ids := []string{}
	for _, r := range out.Reservations {
		for _, in := range r.Instances {
			ids = append(ids, aws.ToString(in.InstanceId))
		}
	}
	slices.Sort(ids)
	return ids
}

func ids(ns ...int) []string {
	out := []string{}
	for _, n := range ns {
		out = append(out, instanceID(n))
	}
	slices.Sort(out)
	return out
}

func filter(name string, values ...string) ec2types.Filter {
	return ec2types.Filter{Name: aws.String(name), Values: values}
}

func testEC2DescribeInstances(t *testing.T, e *env) {
	ctx := context.Background()
	c := e.EC2(e.Root)

	all := harness.Must(c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{}))(t)
	if got := instanceIDs(all); !reflect.DeepEqual(got, ids(1, 2, 3, 4, 5, 6, 7)) {
		t.Fatalf("DescribeInstances: %v", got)
	}
	// One instance in detail.
	one := harness.Must(c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{instanceID(1)}}))(t)
	if len(one.Reservations) != 1 || len(one.Reservations[0].Instances) != 1 {
		t.Fatalf("DescribeInstances by ID: %+v", one.Reservations)
	}
	r := one.Reservations[0]
	in := r.Instances[0]
	if aws.ToString(r.OwnerId) != e.Account || !strings.HasPrefix(aws.ToString(r.ReservationId), "r-") {
		t.Errorf("reservation: owner %q id %q", aws.ToString(r.OwnerId), aws.ToString(r.ReservationId))
	}
	if in.State == nil || in.State.Name != ec2types.InstanceStateNameRunning || aws.ToInt32(in.State.Code) != 16 {
		t.Errorf("state: %+v", in.State)
	}
	if aws.ToString(in.PrivateIpAddress) != "10.0.0.11" || aws.ToString(in.PlatformDetails) != "Linux/UNIX" || in.Architecture != ec2types.ArchitectureValuesX8664 {
		t.Errorf("instance: ip %q platform %q arch %q", aws.ToString(in.PrivateIpAddress), aws.ToString(in.PlatformDetails), in.Architecture)
	}
	if in.Placement == nil || !strings.HasPrefix(aws.ToString(in.Placement.AvailabilityZone), e.Region) {
		t.Errorf("placement: %+v", in.Placement)
	}
	if got := ec2TagMap(in.Tags); !reflect.DeepEqual(got, map[string]string{"Name": "web-1", "env": "prod"}) {
		t.Errorf("tags: %v", got)
	}
	// The agent's inventory shows as read-only kaginashi: tags, and
	// filters on them.
	sys := map[string]string{}
	for _, tg := range in.Tags {
		if k := aws.ToString(tg.Key); strings.HasPrefix(k, "kaginashi:") {
			sys[k] = aws.ToString(tg.Value)
		}
	}
	if sys["kaginashi:hostname"] != "host-1" || sys["kaginashi:os-id"] != "debian" || sys["kaginashi:default-user"] != "admin" || sys["kaginashi:last-seen"] == "" {
		t.Errorf("system tags: %v", sys)
	}
	byOS := harness.Must(c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{Filters: []ec2types.Filter{filter("tag:kaginashi:hostname", "host-1")}}))(t)
	if got := instanceIDs(byOS); !reflect.DeepEqual(got, []string{instanceID(1)}) {
		t.Errorf("tag:kaginashi:hostname=host-1: %v", got)
	}
	_, err := c.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{instanceID(1)}, Tags: []ec2types.Tag{{Key: aws.String("kaginashi:os"), Value: aws.String("forged")}}})
	harness.WantCode(t, err, "InvalidParameterValue", 400)
	stopped := harness.Must(c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{instanceID(3)}}))(t)
	if st := stopped.Reservations[0].Instances[0].State; st.Name != ec2types.InstanceStateNameStopped || aws.ToInt32(st.Code) != 80 {
		t.Errorf("stopped instance state: %+v", st)
	}

	for _, tc := range []struct {
		name    string
		ids     []string
		filters []ec2types.Filter
		want    []string
	}{
		{"two IDs", []string{instanceID(2), instanceID(1)}, nil, ids(1, 2)},
		{"instance-state-name stopped", nil, []ec2types.Filter{filter("instance-state-name", "stopped")}, ids(3)},
		{"instance-state-name running", nil, []ec2types.Filter{filter("instance-state-name", "running")}, ids(1, 2, 4, 5, 6, 7)},
		{"tag:env prod", nil, []ec2types.Filter{filter("tag:env", "prod")}, ids(1, 3)},
		{"tag:env prod or dev", nil, []ec2types.Filter{filter("tag:env", "prod", "dev")}, ids(1, 2, 3)},
		{"tag:Name wildcard", nil, []ec2types.Filter{filter("tag:Name", "web-*")}, ids(1, 2)},
		{"tag-key env", nil, []ec2types.Filter{filter("tag-key", "env")}, ids(1, 2, 3)},
		{"private-ip-address", nil, []ec2types.Filter{filter("private-ip-address", "10.0.0.12")}, ids(2)},
		{"filters AND", nil, []ec2types.Filter{filter("instance-state-name", "running"), filter("tag:env", "prod")}, ids(1)},
		{"IDs and filter", []string{instanceID(1), instanceID(3)}, []ec2types.Filter{filter("instance-state-name", "stopped")}, ids(3)},
		{"instance-id filter", nil, []ec2types.Filter{filter("instance-id", instanceID(5))}, ids(5)},
		{"no match", nil, []ec2types.Filter{filter("tag:env", "staging")}, ids()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := harness.Must(c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: tc.ids, Filters: tc.filters}))(t)
			if got := instanceIDs(out); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}

	t.Run("MaxResults/NextToken", func(t *testing.T) {
		var pages [][]string
		var seen []string
		for p := ec2.NewDescribeInstancesPaginator(c, &ec2.DescribeInstancesInput{MaxResults: aws.Int32(5)}); p.HasMorePages(); {
			page := harness.Must(p.NextPage(ctx))(t)
			pages = append(pages, instanceIDs(page))
			seen = append(seen, instanceIDs(page)...)
			if len(pages) > 3 {
				t.Fatal("paging does not end")
			}
		}
		if len(pages) != 2 || len(pages[0]) != 5 || len(pages[1]) != 2 {
			t.Errorf("pages %v, want 5 then 2 instances", pages)
		}
		slices.Sort(seen)
		if !reflect.DeepEqual(seen, ids(1, 2, 3, 4, 5, 6, 7)) {
			t.Errorf("paged instances %v", seen)
		}
		// Paging and filters together.
		first := harness.Must(c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{MaxResults: aws.Int32(5), Filters: []ec2types.Filter{filter("instance-state-name", "running")}}))(t)
		if len(instanceIDs(first)) != 5 || first.NextToken == nil {
			t.Fatalf("first filtered page: %v next %v", instanceIDs(first), first.NextToken)
		}
		second := harness.Must(c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{MaxResults: aws.Int32(5), NextToken: first.NextToken, Filters: []ec2types.Filter{filter("instance-state-name", "running")}}))(t)
		if got := append(instanceIDs(first), instanceIDs(second)...); !reflect.DeepEqual(got, ids(1, 2, 4, 5, 6, 7)) || second.NextToken != nil {
			t.Errorf("filtered pages: %v, next %v", got, second.NextToken)
		}
	})
}

// ec2TagMap is the instance's own tags (not kaginashi's read-only
// inventory tags).
func ec2TagMap(ts []ec2types.Tag) map[string]string {
	m := map[string]string{}
	for _, t := range ts {
		if !strings.HasPrefix(aws.ToString(t.Key), "kaginashi:") {
			m[aws.ToString(t.Key)] = aws.ToString(t.Value)
		}
	}
	return m
}

func testEC2Endpoints(t *testing.T, e *env) {
	ctx := context.Background()
	c := e.EC2(e.Root)
	out := harness.Must(c.DescribeInstanceConnectEndpoints(ctx, &ec2.DescribeInstanceConnectEndpointsInput{}))(t)
	if len(out.InstanceConnectEndpoints) != 1 {
		t.Fatalf("DescribeInstanceConnectEndpoints: %+v", out.InstanceConnectEndpoints)
	}
	ep := out.InstanceConnectEndpoints[0]
	id := aws.ToString(ep.InstanceConnectEndpointId)
	if !strings.HasPrefix(id, "eice-") || aws.ToString(ep.OwnerId) != e.Account || ep.State != ec2types.Ec2InstanceConnectEndpointStateCreateComplete ||
		aws.ToString(ep.InstanceConnectEndpointArn) != "arn:aws:ec2:"+e.Region+":"+e.Account+":instance-connect-endpoint/"+id ||
		aws.ToString(ep.DnsName) != strings.TrimPrefix(e.URL(), "https://") {
		t.Errorf("endpoint: id %q owner %q state %q arn %q dns %q", id, aws.ToString(ep.OwnerId), ep.State, aws.ToString(ep.InstanceConnectEndpointArn), aws.ToString(ep.DnsName))
	}
	byID := harness.Must(c.DescribeInstanceConnectEndpoints(ctx, &ec2.DescribeInstanceConnectEndpointsInput{InstanceConnectEndpointIds: []string{id}}))(t)
	if len(byID.InstanceConnectEndpoints) != 1 {
		t.Errorf("by ID: %+v", byID.InstanceConnectEndpoints)
	}
	none := harness.Must(c.DescribeInstanceConnectEndpoints(ctx, &ec2.DescribeInstanceConnectEndpointsInput{Filters: []ec2types.Filter{filter("state", "delete-complete")}}))(t)
	if len(none.InstanceConnectEndpoints) != 0 {
		t.Errorf("state filter: %+v", none.InstanceConnectEndpoints)
	}
	_, err := c.DescribeInstanceConnectEndpoints(ctx, &ec2.DescribeInstanceConnectEndpointsInput{InstanceConnectEndpointIds: []string{"eice-0123456789abcdef0"}})
	harness.WantCode(t, err, "InvalidInstanceConnectEndpointId.NotFound", 400)
	_, err = c.DescribeInstanceConnectEndpoints(ctx, &ec2.DescribeInstanceConnectEndpointsInput{Filters: []ec2types.Filter{filter("no-such-filter", "x")}})
	harness.WantCode(t, err, "InvalidParameterValue", 400)
}

func testEC2Tags(t *testing.T, e *env) {
	ctx := context.Background()
	c := e.EC2(e.Root)
	i4, i5 := instanceID(4), instanceID(5)
	harness.Must(c.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{i4, i5}, Tags: []ec2types.Tag{
		{Key: aws.String("owner"), Value: aws.String("e2e")}, {Key: aws.String("tier"), Value: aws.String("batch")},
	}}))(t)
	got := harness.Must(c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{Filters: []ec2types.Filter{filter("tag:owner", "e2e")}}))(t)
	if !reflect.DeepEqual(instanceIDs(got), ids(4, 5)) {
		t.Errorf("after CreateTags, tag:owner=e2e: %v", instanceIDs(got))
	}

	dt := harness.Must(c.DescribeTags(ctx, &ec2.DescribeTagsInput{Filters: []ec2types.Filter{filter("resource-id", i4)}}))(t)
	var rows []string
	for _, d := range dt.Tags {
		rows = append(rows, aws.ToString(d.ResourceId)+" "+string(d.ResourceType)+" "+aws.ToString(d.Key)+"="+aws.ToString(d.Value))
	}
	want := []string{i4 + " instance Name=batch-4", i4 + " instance owner=e2e", i4 + " instance tier=batch"}
	if !reflect.DeepEqual(rows, want) {
		t.Errorf("DescribeTags resource-id:\n got %v\nwant %v", rows, want)
	}
	// The SDK's paginator follows NextToken through every page.
	var paged []string
	pages := ec2.NewDescribeTagsPaginator(c, &ec2.DescribeTagsInput{MaxResults: aws.Int32(5)})
	for n := 0; pages.HasMorePages(); n++ {
		p := harness.Must(pages.NextPage(ctx))(t)
		if len(p.Tags) > 5 || n > 100 {
			t.Fatalf("DescribeTags page %d has %d rows (MaxResults 5)", n, len(p.Tags))
		}
		for _, d := range p.Tags {
			paged = append(paged, aws.ToString(d.ResourceId)+" "+aws.ToString(d.Key))
		}
	}
	all := harness.Must(c.DescribeTags(ctx, &ec2.DescribeTagsInput{}))(t)
	if len(all.Tags) <= 5 || len(paged) != len(all.Tags) {
		t.Errorf("DescribeTags paged: %d rows, unpaged %d (want more than one page, equal)", len(paged), len(all.Tags))
	}
	byKey := harness.Must(c.DescribeTags(ctx, &ec2.DescribeTagsInput{Filters: []ec2types.Filter{filter("key", "owner")}}))(t)
	if len(byKey.Tags) != 2 {
		t.Errorf("DescribeTags key=owner: %+v", byKey.Tags)
	}

	// DeleteTags by key; with a value, only while the tag has that value.
	harness.Must(c.DeleteTags(ctx, &ec2.DeleteTagsInput{Resources: []string{i4, i5}, Tags: []ec2types.Tag{{Key: aws.String("owner")}}}))(t)
	harness.Must(c.DeleteTags(ctx, &ec2.DeleteTagsInput{Resources: []string{i4}, Tags: []ec2types.Tag{{Key: aws.String("tier"), Value: aws.String("not-batch")}}}))(t)
	harness.Must(c.DeleteTags(ctx, &ec2.DeleteTagsInput{Resources: []string{i5}, Tags: []ec2types.Tag{{Key: aws.String("tier"), Value: aws.String("batch")}}}))(t)
	after := harness.Must(c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{i4, i5}}))(t)
	for _, r := range after.Reservations {
		for _, in := range r.Instances {
			tags := ec2TagMap(in.Tags)
			want := map[string]string{"Name": "batch-4", "tier": "batch"}
			if aws.ToString(in.InstanceId) == i5 {
				want = map[string]string{"Name": "batch-5"}
			}
			if !reflect.DeepEqual(tags, want) {
				t.Errorf("%s tags after DeleteTags: %v, want %v", aws.ToString(in.InstanceId), tags, want)
			}
		}
	}
	harness.Must(c.DeleteTags(ctx, &ec2.DeleteTagsInput{Resources: []string{i4}, Tags: []ec2types.Tag{{Key: aws.String("tier")}}}))(t)

	// Tagging is authorized per resource, with aws:RequestTag.
	tagger := e.newUser(t, "ec2-tagger", harness.Doc(map[string]any{
		"Effect": "Allow", "Action": "ec2:CreateTags", "Resource": e.instanceARN(i4),
		"Condition": map[string]any{"StringEquals": map[string]any{"aws:RequestTag/owner": "tagger"}},
	}))
	tc := e.EC2(tagger)
	harness.Must(tc.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{i4}, Tags: []ec2types.Tag{{Key: aws.String("owner"), Value: aws.String("tagger")}}}))(t)
	_, err := tc.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{i4}, Tags: []ec2types.Tag{{Key: aws.String("owner"), Value: aws.String("someone")}}})
	harness.WantCode(t, err, "UnauthorizedOperation", 403)
	_, err = tc.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{i4, i5}, Tags: []ec2types.Tag{{Key: aws.String("owner"), Value: aws.String("tagger")}}})
	harness.WantCode(t, err, "UnauthorizedOperation", 403)
	if tags := ec2TagMap(harness.Must(c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{i5}}))(t).Reservations[0].Instances[0].Tags); tags["owner"] != "" {
		t.Errorf("a denied CreateTags tagged %s: %v", i5, tags)
	}
	harness.Must(c.DeleteTags(ctx, &ec2.DeleteTagsInput{Resources: []string{i4}, Tags: []ec2types.Tag{{Key: aws.String("owner")}}}))(t)
}

func testEC2Errors(t *testing.T, e *env) {
	ctx := context.Background()
	c := e.EC2(e.Root)
	nobody := e.newUser(t, "ec2-nobody")
	cases := []struct {
		name   string
		call   func() error
		code   string
		status int
	}{
		{"InvalidInstanceID.NotFound", func() error {
			_, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{instanceID(1), missingID}})
			return err
		}, "InvalidInstanceID.NotFound", 400},
		{"InvalidInstanceID.Malformed", func() error {
			_, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{"i-xyz"}})
			return err
		}, "InvalidInstanceID.Malformed", 400},
		{"InvalidInstanceID.NotFound on CreateTags", func() error {
			_, err := c.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{missingID}, Tags: []ec2types.Tag{{Key: aws.String("a"), Value: aws.String("b")}}})
			return err
		}, "InvalidInstanceID.NotFound", 400},
		{"UnauthorizedOperation", func() error {
			_, err := e.EC2(nobody).DescribeInstances(ctx, &ec2.DescribeInstancesInput{})
			return err
		}, "UnauthorizedOperation", 403},
		{"UnauthorizedOperation for a missing instance too", func() error {
			_, err := e.EC2(nobody).CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{missingID}, Tags: []ec2types.Tag{{Key: aws.String("a"), Value: aws.String("b")}}})
			return err
		}, "UnauthorizedOperation", 403},
		{"UnauthorizedOperation on DryRun", func() error {
			_, err := e.EC2(nobody).DescribeInstances(ctx, &ec2.DescribeInstancesInput{DryRun: aws.Bool(true)})
			return err
		}, "UnauthorizedOperation", 403},
		{"DryRunOperation", func() error {
			_, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{DryRun: aws.Bool(true)})
			return err
		}, "DryRunOperation", 412},
		{"DryRunOperation on CreateTags changes nothing", func() error {
			_, err := c.CreateTags(ctx, &ec2.CreateTagsInput{DryRun: aws.Bool(true), Resources: []string{instanceID(6)}, Tags: []ec2types.Tag{{Key: aws.String("dry"), Value: aws.String("run")}}})
			return err
		}, "DryRunOperation", 412},
		{"InvalidParameterValue: unknown filter", func() error {
			_, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{Filters: []ec2types.Filter{filter("no-such-filter", "x")}})
			return err
		}, "InvalidParameterValue", 400},
		{"InvalidParameterCombination: IDs with MaxResults", func() error {
			_, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{instanceID(1)}, MaxResults: aws.Int32(5)})
			return err
		}, "InvalidParameterCombination", 400},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { harness.WantCode(t, tc.call(), tc.code, tc.status) })
	}
	if tags := ec2TagMap(harness.Must(c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{instanceID(6)}}))(t).Reservations[0].Instances[0].Tags); tags["dry"] != "" {
		t.Errorf("DryRun CreateTags tagged the instance: %v", tags)
	}
}
