package cli

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/kaginashi/kaginashi/internal/client"
)

// fakeEC2 answers what open-tunnel looks up: DescribeInstances, and
// DescribeInstanceConnectEndpoints refused as for a policy without
// ec2:DescribeInstanceConnectEndpoints (the seed article's). With
// kaginashi set, it is a kaginashi server and also answers
// DescribeInstanceConnectInfo.
func fakeEC2(t *testing.T, kaginashi bool) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if target := r.Header.Get("X-Amz-Target"); target != "" {
			if !kaginashi || target != client.KaginashiTarget+"DescribeInstanceConnectInfo" {
				w.WriteHeader(http.StatusBadRequest)
				_, _ = io.WriteString(w, `{"__type":"UnknownOperationException","Message":"no such operation"}`)
				return
			}
			_, _ = io.WriteString(w, `{"Instances":[{"InstanceId":"i-0123456789abcdef0","State":"running","PrivateIpAddress":"10.0.0.5","HostKeys":[]}],"InstanceConnectEndpointId":"eice-0123456789abcdef0"}`)
			return
		}
		form, _ := url.ParseQuery(string(body))
		switch form.Get("Action") {
		case "DescribeInstances":
			_, _ = io.WriteString(w, `<DescribeInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>r</requestId><reservationSet><item><reservationId>r-1</reservationId><instancesSet><item><instanceId>i-0123456789abcdef0</instanceId><privateIpAddress>10.0.0.5</privateIpAddress><instanceState><code>16</code><name>running</name></instanceState></item></instancesSet></item></reservationSet></DescribeInstancesResponse>`)
		default:
			w.WriteHeader(http.StatusForbidden)
			_, _ = io.WriteString(w, `<Response><Errors><Error><Code>UnauthorizedOperation</Code><Message>User: arn:aws:iam::123456789012:user/a is not authorized to perform: ec2:`+form.Get("Action")+` on resource: *</Message></Error></Errors><RequestID>r</RequestID></Response>`)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func isolateAWSConfig(t *testing.T) {
	t.Helper()
	dir := t.TempDir()
	t.Setenv("AWS_CONFIG_FILE", dir+"/config")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", dir+"/credentials")
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLEEXAMPLE01")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secretsecretsecretsecretsecretsecret0000")
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_ENDPOINT_URL", "")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
}

// TestTunnelParamsWithoutDescribeEndpoints: open-tunnel --instance-id
// against a kaginashi server works for a user who may not call
// DescribeInstanceConnectEndpoints, as `kaginashi ssh` does; against a
// server that is not kaginashi the refusal stays.
func TestTunnelParamsWithoutDescribeEndpoints(t *testing.T) {
	isolateAWSConfig(t)
	ctx := context.Background()
	tf := tunnelFlags{instanceID: "i-0123456789abcdef0", remotePort: 22, localPort: 1}

	srv := fakeEC2(t, true)
	p, _, warm, err := tunnelParams(ctx, client.Flags{EndpointURL: srv.URL}, tf)
	warm.Close()
	if err != nil {
		t.Fatalf("kaginashi server, no ec2:DescribeInstanceConnectEndpoints: %v", err)
	}
	if p.Endpoint != srv.URL || p.EndpointID != "eice-0123456789abcdef0" || p.PrivateIP != "10.0.0.5" || p.InstanceID != tf.instanceID {
		t.Errorf("got %+v, want the server's URL, its endpoint eice-0123456789abcdef0 and the instance's IP", p)
	}

	other := fakeEC2(t, false)
	_, _, warm, err = tunnelParams(ctx, client.Flags{EndpointURL: other.URL}, tf)
	warm.Close()
	if !isUnauthorized(err) || !strings.Contains(err.Error(), "DescribeInstanceConnectEndpoints") {
		t.Errorf("a server that is not kaginashi: got %v, want its UnauthorizedOperation for DescribeInstanceConnectEndpoints", err)
	}
}
