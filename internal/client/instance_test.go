package client

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
)

// fakeAPI answers kaginashi's JSON operation (or says it does not know
// it, as AWS would) and EC2's DescribeInstances.
func fakeAPI(t *testing.T, knowsOp bool, instances []connectInfo) (*httptest.Server, *atomic.Int32) {
	var ec2Calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if target := r.Header.Get("X-Amz-Target"); target != "" {
			if target != KaginashiTarget+"DescribeInstanceConnectInfo" || !strings.Contains(r.Header.Get("Authorization"), "/kaginashi/aws4_request") {
				t.Errorf("JSON call %q, %q", target, r.Header.Get("Authorization"))
			}
			w.Header().Set("Content-Type", "application/x-amz-json-1.1")
			if !knowsOp {
				w.WriteHeader(400)
				io.WriteString(w, `{"__type":"UnknownOperationException","message":"no such op"}`)
				return
			}
			var in struct {
				InstanceIDs []string `json:"InstanceIds"`
				Filters     []filter `json:"Filters"`
			}
			_ = json.Unmarshal(body, &in)
			var out []connectInfo
			for _, i := range instances {
				if (len(in.InstanceIDs) > 0 && i.InstanceID == in.InstanceIDs[0]) || (len(in.Filters) > 0 && in.Filters[0].Name == "tag:Name" && i.Name == in.Filters[0].Values[0]) ||
					(len(in.Filters) > 0 && in.Filters[0].Name == "tag-key" && in.Filters[0].Values[0] == "Name" && i.Name != "") {
					out = append(out, i)
				}
			}
			_ = json.NewEncoder(w).Encode(map[string]any{"Instances": out, "InstanceConnectEndpointId": "eice-0123456789abcdef0"})
			return
		}
		ec2Calls.Add(1)
		if !strings.Contains(string(body), "Action=DescribeInstances") {
			t.Errorf("EC2 call %s", body)
		}
		w.Header().Set("Content-Type", "text/xml")
		io.WriteString(w, `<DescribeInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>r</requestId><reservationSet><item><reservationId>r-1</reservationId><instancesSet><item>
<instanceId>i-0123456789abcdef0</instanceId><instanceState><code>16</code><name>running</name></instanceState><privateIpAddress>10.0.0.7</privateIpAddress><ipAddress>3.3.3.3</ipAddress>
<tagSet><item><key>Name</key><value>web</value></item></tagSet></item></instancesSet></item></reservationSet></DescribeInstancesResponse>`)
	}))
	t.Cleanup(srv.Close)
	return srv, &ec2Calls
}

func fakeConfig(url string) aws.Config {
	return aws.Config{Region: "us-east-1", BaseEndpoint: aws.String(url), Credentials: credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", ""),
		Retryer: func() aws.Retryer { return aws.NopRetryer{} }}
}

func TestDescribeInstance(t *testing.T) {
	ctx := context.Background()
	web := connectInfo{InstanceID: "i-0123456789abcdef0", Name: "web", State: "running", PrivateIP: "10.0.0.7", DefaultUser: "admin", DefaultUserExists: true,
		HostKeys: []string{"ssh-ed25519 AAAA"}, AllowedPorts: []int{22, 5432}}
	twin1 := connectInfo{InstanceID: "i-1111111111aaaaaaa", Name: "twin", State: "running"}
	twin2 := connectInfo{InstanceID: "i-2222222222bbbbbbb", Name: "twin", State: "stopped"}
	srv, ec2Calls := fakeAPI(t, true, []connectInfo{web, twin1, twin2})
	cfg := fakeConfig(srv.URL)

	for _, target := range []string{"i-0123456789abcdef0", "web"} {
		in, err := DescribeInstance(ctx, cfg, target)
		if err != nil {
			t.Fatal(err)
		}
		if !in.Kaginashi || in.InstanceID != web.InstanceID || in.DefaultUser != "admin" || len(in.HostKeys) != 1 || in.EndpointID != "eice-0123456789abcdef0" ||
			!in.PortAllowed(5432) || in.PortAllowed(2222) {
			t.Errorf("%s: %+v", target, in)
		}
	}
	_, err := DescribeInstance(ctx, cfg, "twin")
	var ae *AmbiguousError
	if !errors.As(err, &ae) || !strings.Contains(err.Error(), "i-1111111111aaaaaaa") || !strings.Contains(err.Error(), "i-2222222222bbbbbbb") {
		t.Errorf("twin: %v", err)
	}
	_, err = DescribeInstance(ctx, cfg, "nothing")
	var nf *NotFoundError
	if !errors.As(err, &nf) || !strings.Contains(err.Error(), `no instance has the Name tag "nothing"`) {
		t.Errorf("nothing: %v", err)
	}
	if n := ec2Calls.Load(); n != 0 {
		t.Errorf("%d EC2 calls; kaginashi's operation answers alone", n)
	}

	// A server without the operation (or AWS): DescribeInstances, and
	// nothing known beyond it.
	srv, ec2Calls = fakeAPI(t, false, nil)
	in, err := DescribeInstance(ctx, fakeConfig(srv.URL), "web")
	if err != nil {
		t.Fatal(err)
	}
	if in.Kaginashi || in.InstanceID != "i-0123456789abcdef0" || in.PrivateIP != "10.0.0.7" || in.PublicIP != "3.3.3.3" || in.Name != "web" ||
		in.State != "running" || in.HostKeys != nil || in.AllowedPorts != nil || !in.PortAllowed(2222) {
		t.Errorf("from DescribeInstances: %+v", in)
	}
	if ec2Calls.Load() != 1 {
		t.Errorf("%d EC2 calls, want 1", ec2Calls.Load())
	}
}

// TestDescribeInstanceByHost: ssh lowercases host names, so
// `ssh web.kaginashi` must reach the instance whose Name is "WebProd" when
// no Name is exactly "webprod".
func TestDescribeInstanceByHost(t *testing.T) {
	ctx := context.Background()
	prod := connectInfo{InstanceID: "i-0123456789abcdef0", Name: "WebProd", State: "running", DefaultUser: "admin"}
	lower := connectInfo{InstanceID: "i-3333333333ccccccc", Name: "db", State: "running"}
	upper := connectInfo{InstanceID: "i-4444444444ddddddd", Name: "DB", State: "running"}
	twin1 := connectInfo{InstanceID: "i-1111111111aaaaaaa", Name: "Twin", State: "running"}
	twin2 := connectInfo{InstanceID: "i-2222222222bbbbbbb", Name: "TWIN", State: "running"}
	srv, _ := fakeAPI(t, true, []connectInfo{prod, lower, upper, twin1, twin2})
	cfg := fakeConfig(srv.URL)

	var nf *NotFoundError
	if _, err := DescribeInstance(ctx, cfg, "webprod"); !errors.As(err, &nf) {
		t.Fatalf("DescribeInstance matches Names exactly: %v", err)
	}
	in, err := DescribeInstanceByHost(ctx, cfg, "webprod")
	if err != nil || in.InstanceID != prod.InstanceID || in.Name != "WebProd" || !in.Kaginashi || in.DefaultUser != "admin" {
		t.Errorf("webprod: %+v, %v; want %s", in, err, prod.InstanceID)
	}
	// An exact match wins over one but for case.
	if in, err := DescribeInstanceByHost(ctx, cfg, "db"); err != nil || in.InstanceID != lower.InstanceID {
		t.Errorf("db: %+v, %v; want %s", in, err, lower.InstanceID)
	}
	var ae *AmbiguousError
	if _, err := DescribeInstanceByHost(ctx, cfg, "twin"); !errors.As(err, &ae) || len(ae.Candidates) != 2 {
		t.Errorf("twin: %v; want both Twin and TWIN", err)
	}
	if _, err := DescribeInstanceByHost(ctx, cfg, "nothing"); !errors.As(err, &nf) || !strings.Contains(err.Error(), `"nothing"`) {
		t.Errorf("nothing: %v", err)
	}
}

// TestNamesLike: the hint for a Name that matched none exactly lists the
// Names that differ only in case, each once, and never the name itself.
func TestNamesLike(t *testing.T) {
	ctx := context.Background()
	srv, _ := fakeAPI(t, true, []connectInfo{
		{InstanceID: "i-0123456789abcdef0", Name: "WebProd", State: "running"},
		{InstanceID: "i-1111111111aaaaaaa", Name: "WEBPROD", State: "running"},
		{InstanceID: "i-2222222222bbbbbbb", Name: "WEBPROD", State: "stopped"},
		{InstanceID: "i-3333333333ccccccc", Name: "webprod", State: "running"},
		{InstanceID: "i-4444444444ddddddd", Name: "db", State: "running"},
	})
	cfg := fakeConfig(srv.URL)
	if got := NamesLike(ctx, cfg, "webprod"); !slices.Equal(got, []string{"WEBPROD", "WebProd"}) {
		t.Errorf("NamesLike(webprod) = %q, want WEBPROD, WebProd", got)
	}
	if got := NamesLike(ctx, cfg, "nothing"); len(got) != 0 {
		t.Errorf("NamesLike(nothing) = %q, want none", got)
	}
	if got := NamesLike(ctx, fakeConfig("http://127.0.0.1:1"), "webprod"); got != nil {
		t.Errorf("NamesLike with no server = %q, want none", got)
	}
}
