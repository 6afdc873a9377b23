package usercheck

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/kaginashi/kaginashi/internal/client"
)

// deniedEC2 answers every EC2 call as a policy without
// ec2:DescribeInstanceConnectEndpoints does (the seed article's): 403
// UnauthorizedOperation, in EC2's error shape, for the real SDK to parse.
func deniedEC2(t *testing.T, code string) aws.Config {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/xml")
		w.WriteHeader(http.StatusForbidden)
		_, _ = io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error><Code>`+code+`</Code><Message>User: arn:aws:iam::123456789012:user/alice is not authorized to perform: ec2:DescribeInstanceConnectEndpoints</Message></Error></Errors><RequestID>r-1</RequestID></Response>`)
	}))
	t.Cleanup(srv.Close)
	return aws.Config{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(srv.URL),
		Credentials:  credentials.NewStaticCredentialsProvider("AKIAEXAMPLE", "secret", ""),
		HTTPClient:   srv.Client(),
	}
}

// TestEndpointFallsBackToTheInstance: a user whose policy lacks
// ec2:DescribeInstanceConnectEndpoints logs in through a kaginashi server
// anyway (`kaginashi ssh` and open-tunnel take the endpoint from the
// instance's description), so doctor takes it from there too instead of
// failing policy-open-tunnel and skipping the tunnel check.
func TestEndpointFallsBackToTheInstance(t *testing.T) {
	cfg := deniedEC2(t, "UnauthorizedOperation")
	api := NewAPI(cfg)
	url, id, err := api.Endpoint(context.Background(), client.Instance{Target: client.Target{InstanceID: "i-0123456789abcdef0"}, EndpointID: "eice-1"})
	if err != nil || url != aws.ToString(cfg.BaseEndpoint) || id != "eice-1" {
		t.Errorf("Endpoint = %q, %q, %v; want the server's URL and the instance's eice-1", url, id, err)
	}
	// An instance that names no endpoint (not found, or on AWS): the
	// refusal stands, for the check to report with its fix.
	if _, _, err := api.Endpoint(context.Background(), client.Instance{}); err == nil || !strings.Contains(err.Error(), "UnauthorizedOperation") {
		t.Errorf("Endpoint with no instance = %v; want the UnauthorizedOperation", err)
	}
	// Another error is not a policy's refusal: no fallback.
	other := NewAPI(deniedEC2(t, "InvalidParameterValue"))
	if _, _, err := other.Endpoint(context.Background(), client.Instance{EndpointID: "eice-1"}); err == nil {
		t.Error("Endpoint fell back on an InvalidParameterValue; want the error")
	}
}
