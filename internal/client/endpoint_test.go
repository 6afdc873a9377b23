package client

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
)

// toServer sends every request, whatever its host (AWS's regional
// endpoints), to a test server: the AWS path, with no endpoint URL
// configured, against a fake EC2.
type toServer struct{ u *url.URL }

func (s toServer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.URL.Scheme, r.URL.Host = s.u.Scheme, s.u.Host
	return http.DefaultTransport.RoundTrip(r)
}

// fakeAWSEC2 is EC2 on AWS with an instance in vpc-b/subnet-b2 and four
// Instance Connect Endpoints on two pages: vpc-a's first (the first in
// the region), then vpc-b's in another subnet, then — on the second
// page — a deleted one in the instance's subnet and the live one there.
// It applies the vpc-id and state filters as EC2 does.
func fakeAWSEC2(t *testing.T) aws.Config {
	t.Helper()
	type ep struct{ id, vpc, subnet, state string }
	pages := [][]ep{
		{{"eice-0aaaaaaaaaaaaaaa1", "vpc-a", "subnet-a1", "create-complete"}, {"eice-0bbbbbbbbbbbbbbb1", "vpc-b", "subnet-b1", "create-complete"}},
		{{"eice-0bbbbbbbbbbbbbbb0", "vpc-b", "subnet-b2", "delete-complete"}, {"eice-0bbbbbbbbbbbbbbb2", "vpc-b", "subnet-b2", "create-complete"}},
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		form, _ := url.ParseQuery(string(body))
		w.Header().Set("Content-Type", "text/xml")
		switch form.Get("Action") {
		case "DescribeInstances":
			_, _ = io.WriteString(w, `<DescribeInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>r</requestId><reservationSet><item><reservationId>r-1</reservationId><instancesSet><item>
<instanceId>i-0123456789abcdef0</instanceId><instanceState><code>16</code><name>running</name></instanceState><privateIpAddress>10.1.2.7</privateIpAddress>
<vpcId>vpc-b</vpcId><subnetId>subnet-b2</subnetId></item></instancesSet></item></reservationSet></DescribeInstancesResponse>`)
		case "DescribeInstanceConnectEndpoints":
			filters := map[string][]string{}
			for i := 1; form.Get(fmt.Sprintf("Filter.%d.Name", i)) != ""; i++ {
				name := form.Get(fmt.Sprintf("Filter.%d.Name", i))
				for j := 1; form.Get(fmt.Sprintf("Filter.%d.Value.%d", i, j)) != ""; j++ {
					filters[name] = append(filters[name], form.Get(fmt.Sprintf("Filter.%d.Value.%d", i, j)))
				}
			}
			match := func(name, v string) bool {
				vs, ok := filters[name]
				if !ok {
					return true
				}
				for _, x := range vs {
					if x == v {
						return true
					}
				}
				return false
			}
			page, next := 0, "page2"
			if form.Get("NextToken") == "page2" {
				page, next = 1, ""
			}
			var b strings.Builder
			for _, e := range pages[page] {
				if match("vpc-id", e.vpc) && match("state", e.state) {
					fmt.Fprintf(&b, `<item><instanceConnectEndpointId>%s</instanceConnectEndpointId><state>%s</state><dnsName>%s.fake.ec2-instance-connect-endpoint.us-east-1.amazonaws.com</dnsName><vpcId>%s</vpcId><subnetId>%s</subnetId></item>`,
						e.id, e.state, e.id, e.vpc, e.subnet)
				}
			}
			tok := ""
			if next != "" {
				tok = "<nextToken>" + next + "</nextToken>"
			}
			_, _ = fmt.Fprintf(w, `<DescribeInstanceConnectEndpointsResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>r</requestId><instanceConnectEndpointSet>%s</instanceConnectEndpointSet>%s</DescribeInstanceConnectEndpointsResponse>`, b.String(), tok)
		default:
			t.Errorf("unexpected EC2 call %s", body)
			w.WriteHeader(400)
		}
	}))
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL)
	return aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("AKIAEXAMPLEEXAMPLE01", "secretsecretsecretsecretsecretsecret0000", ""),
		HTTPClient:  &http.Client{Transport: toServer{u}},
	}
}

// TestEndpointForInstance: on AWS (no endpoint URL), the tunnel goes
// through an Instance Connect Endpoint in the instance's VPC — the one
// in its subnet when there is one, on any page — as the AWS CLI picks
// it; before, the first endpoint of the region was taken, another VPC's,
// which cannot reach the instance.
func TestEndpointForInstance(t *testing.T) {
	ctx := context.Background()
	cfg := fakeAWSEC2(t)
	in, err := DescribeInstance(ctx, cfg, "i-0123456789abcdef0")
	if err != nil {
		t.Fatal(err)
	}
	if in.VpcID != "vpc-b" || in.SubnetID != "subnet-b2" {
		t.Fatalf("DescribeInstance: VPC %q, subnet %q; want vpc-b, subnet-b2", in.VpcID, in.SubnetID)
	}
	u, id, err := EndpointFor(ctx, cfg, "", in.Target)
	if err != nil {
		t.Fatal(err)
	}
	if id != "eice-0bbbbbbbbbbbbbbb2" || u != "https://eice-0bbbbbbbbbbbbbbb2.fake.ec2-instance-connect-endpoint.us-east-1.amazonaws.com" {
		t.Errorf("endpoint %s at %s, want eice-0bbbbbbbbbbbbbbb2 (the instance's subnet)", id, u)
	}
	// Another subnet of vpc-b: vpc-b's first endpoint.
	_, id, err = EndpointFor(ctx, cfg, "", Target{InstanceID: "i-0123456789abcdef1", VpcID: "vpc-b", SubnetID: "subnet-b9"})
	if err != nil || id != "eice-0bbbbbbbbbbbbbbb1" {
		t.Errorf("an instance in vpc-b's subnet-b9: %s, %v; want eice-0bbbbbbbbbbbbbbb1", id, err)
	}
	// A VPC with no endpoint: said so, with the VPC.
	_, _, err = EndpointFor(ctx, cfg, "", Target{InstanceID: "i-0123456789abcdef2", VpcID: "vpc-c", SubnetID: "subnet-c1"})
	if err == nil || !strings.Contains(err.Error(), "vpc-c") {
		t.Errorf("an instance in vpc-c, which has no endpoint: %v; want an error naming vpc-c", err)
	}
}
