package e2e

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/protocol/ec2query"
	awsxml "github.com/aws/aws-sdk-go-v2/aws/protocol/xml"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	eic "github.com/aws/aws-sdk-go-v2/service/ec2instanceconnect"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/kaginashi/kaginashi/test/e2e/harness"
)

// service is one API with a cheap call to try authentication on.
type service struct {
	name string
	call func(e *env, c harness.Creds, opts ...harness.ClientOpt) error
}

var services = []service{
	{"IAM", func(e *env, c harness.Creds, opts ...harness.ClientOpt) error {
		_, err := e.IAM(c, opts...).ListUsers(context.Background(), &iam.ListUsersInput{})
		return err
	}},
	{"STS", func(e *env, c harness.Creds, opts ...harness.ClientOpt) error {
		_, err := e.STS(c, opts...).GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{})
		return err
	}},
	{"EC2", func(e *env, c harness.Creds, opts ...harness.ClientOpt) error {
		_, err := e.EC2(c, opts...).DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{})
		return err
	}},
	{"EIC", func(e *env, c harness.Creds, opts ...harness.ClientOpt) error {
		_, err := e.EIC(c, opts...).SendSSHPublicKey(context.Background(), &eic.SendSSHPublicKeyInput{
			InstanceId: aws.String(instanceID(1)), InstanceOSUser: aws.String("ec2-user"),
			SSHPublicKey: aws.String("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGHc4JbJrvBTm3MKLddNoBY5IOD3nKlXuiqXmfsC0lz9 e2e@kaginashi"),
		})
		return err
	}},
	{"CloudTrail", func(e *env, c harness.Creds, opts ...harness.ClientOpt) error {
		_, err := e.CT(c, opts...).LookupEvents(context.Background(), &cloudtrail.LookupEventsInput{MaxResults: aws.Int32(1)})
		return err
	}},
}

type codeStatus struct {
	code   string
	status int
}

func testAuthFailures(t *testing.T, e *env) {
	// A positive control for each service: root gets through.
	for _, svc := range services {
		if err := svc.call(e, e.Root); err != nil {
			t.Fatalf("%s as root: %v", svc.name, err)
		}
	}
	otherRegion := "eu-north-1"
	if e.Region == otherRegion {
		otherRegion = "eu-west-3"
	}
	modes := []struct {
		name  string
		creds harness.Creds
		opts  []harness.ClientOpt
		want  map[string]codeStatus
	}{
		{"unknown access key", harness.Creds{ID: "AKIAE2EUNKNOWNKEY000", Secret: strings.Repeat("x", 40)}, nil, map[string]codeStatus{
			"IAM": {"InvalidClientTokenId", 403}, "STS": {"InvalidClientTokenId", 403}, "EC2": {"AuthFailure", 401},
			"EIC": {"UnrecognizedClientException", 403}, "CloudTrail": {"UnrecognizedClientException", 403},
		}},
		{"wrong secret", harness.Creds{ID: e.Root.ID, Secret: strings.Repeat("x", 40)}, nil, map[string]codeStatus{
			"IAM": {"SignatureDoesNotMatch", 403}, "STS": {"SignatureDoesNotMatch", 403}, "EC2": {"AuthFailure", 401},
			"EIC": {"InvalidSignatureException", 403}, "CloudTrail": {"InvalidSignatureException", 403},
		}},
		{"signed 10 minutes ago", e.Root, []harness.ClientOpt{harness.WithSigner(shiftedSigner{v4.NewSigner(), -10 * time.Minute})}, map[string]codeStatus{
			"IAM": {"SignatureDoesNotMatch", 403}, "STS": {"SignatureDoesNotMatch", 403}, "EC2": {"RequestExpired", 400},
			"EIC": {"InvalidSignatureException", 403}, "CloudTrail": {"InvalidSignatureException", 403},
		}},
		{"signed 10 minutes ahead", e.Root, []harness.ClientOpt{harness.WithSigner(shiftedSigner{v4.NewSigner(), 10 * time.Minute})}, map[string]codeStatus{
			"IAM": {"SignatureDoesNotMatch", 403}, "STS": {"SignatureDoesNotMatch", 403}, "EC2": {"RequestExpired", 400},
			"EIC": {"InvalidSignatureException", 403}, "CloudTrail": {"InvalidSignatureException", 403},
		}},
		{"no Authorization header", e.Root, []harness.ClientOpt{stripAuth()}, map[string]codeStatus{
			"IAM": {"MissingAuthenticationToken", 403}, "STS": {"MissingAuthenticationToken", 403}, "EC2": {"AuthFailure", 401},
			"EIC": {"MissingAuthenticationTokenException", 403}, "CloudTrail": {"MissingAuthenticationTokenException", 403},
		}},
		{"scoped to another region", e.Root, []harness.ClientOpt{harness.InRegion(otherRegion)}, map[string]codeStatus{
			"IAM": {"SignatureDoesNotMatch", 403}, "STS": {"SignatureDoesNotMatch", 403}, "EC2": {"AuthFailure", 401},
			"EIC": {"InvalidSignatureException", 403}, "CloudTrail": {"InvalidSignatureException", 403},
		}},
	}
	for _, m := range modes {
		for _, svc := range services {
			t.Run(m.name+"/"+svc.name, func(t *testing.T) {
				want := m.want[svc.name]
				err := svc.call(e, m.creds, append([]harness.ClientOpt{harness.AsWho("")}, m.opts...)...)
				harness.WantCode(t, err, want.code, want.status)
			})
		}
	}
	// The skew window is five minutes: four minutes off is fine.
	for _, svc := range services {
		if err := svc.call(e, e.Root, harness.WithSigner(shiftedSigner{v4.NewSigner(), -4 * time.Minute})); err != nil {
			t.Errorf("%s signed 4 minutes ago: %v", svc.name, err)
		}
	}
}

// pastPresigner presigns as if it were now+shift, valid for expires.
type pastPresigner struct {
	shift   time.Duration
	expires time.Duration
}

func (p pastPresigner) PresignHTTP(ctx context.Context, c aws.Credentials, r *http.Request, hash, service, region string, t time.Time, optFns ...func(*v4.SignerOptions)) (string, http.Header, error) {
	q := r.URL.Query()
	q.Set("X-Amz-Expires", strconv.Itoa(int(p.expires/time.Second)))
	r.URL.RawQuery = q.Encode()
	return v4.NewSigner().PresignHTTP(ctx, c, r, hash, service, region, t.Add(p.shift), optFns...)
}

func testPresigned(t *testing.T, e *env) {
	presign := func(p pastPresigner) string {
		t.Helper()
		pc := sts.NewPresignClient(e.STS(e.Root), func(o *sts.PresignOptions) { o.Presigner = p })
		req := harness.Must(pc.PresignGetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{}))(t)
		if req.Method != http.MethodGet || !strings.Contains(req.URL, "X-Amz-Signature=") {
			t.Fatalf("presigned %s %s", req.Method, req.URL)
		}
		return req.URL
	}
	get := func(who, url string) (int, []byte) {
		t.Helper()
		resp, err := e.HTTP.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		c := harness.SentCall{Who: who, Service: "STS", Op: "GetCallerIdentity", RequestID: resp.Header.Get("X-Amzn-RequestId"), Status: resp.StatusCode}
		if resp.StatusCode != 200 {
			ec, _ := awsxml.GetErrorResponseComponents(bytes.NewReader(body), false)
			c.Code = ec.Code
		}
		e.Calls.Add(c)
		return resp.StatusCode, body
	}

	status, body := get("root", presign(pastPresigner{0, time.Minute}))
	if status != 200 || !strings.Contains(string(body), "<Arn>arn:aws:iam::"+e.Account+":root</Arn>") {
		t.Fatalf("fresh presigned URL: %d\n%s", status, body)
	}
	status, body = get("", presign(pastPresigner{-10 * time.Minute, time.Minute}))
	ec, err := awsxml.GetErrorResponseComponents(bytes.NewReader(body), false)
	if err != nil || status != 403 || ec.Code != "SignatureDoesNotMatch" || ec.Message == "" || ec.RequestID == "" {
		t.Errorf("presigned URL past its expiry: %d %+v (%v)\n%s", status, ec, err, body)
	}
	// Still within X-Amz-Expires although signed long ago: valid.
	status, body = get("root", presign(pastPresigner{-10 * time.Minute, time.Hour}))
	if status != 200 {
		t.Errorf("presigned 10 minutes ago for an hour: %d\n%s", status, body)
	}
	// A presigned URL whose parameters were changed fails.
	u := strings.Replace(presign(pastPresigner{0, time.Minute}), "Action=GetCallerIdentity", "Action=GetCallerIdentity&Extra=1", 1)
	status, body = get("", u)
	if ec, _ := awsxml.GetErrorResponseComponents(bytes.NewReader(body), false); status != 403 || ec.Code != "SignatureDoesNotMatch" {
		t.Errorf("tampered presigned URL: %d %+v", status, ec)
	}
}

func testMalformedRequests(t *testing.T, e *env) {
	big := bytes.Repeat([]byte("a"), 1<<20+1024)
	cases := []struct {
		name string
		svc  string
		opts []harness.ClientOpt
		want codeStatus
	}{
		{"IAM body not a form", "IAM", []harness.ClientOpt{replaceBody([]byte("Action=ListUsers&Version=2010-05-08&%zz")), harness.AuditedAs("-"), harness.AsWho("")}, codeStatus{"InvalidInput", 400}},
		{"STS body not a form", "STS", []harness.ClientOpt{replaceBody([]byte("%zz")), harness.AuditedAs("-"), harness.AsWho("")}, codeStatus{"ValidationError", 400}},
		{"EC2 body not a form", "EC2", []harness.ClientOpt{replaceBody([]byte("Action=DescribeInstances&%zz")), harness.AuditedAs("-"), harness.AsWho("")}, codeStatus{"InvalidParameterValue", 400}},
		{"EIC body not JSON", "EIC", []harness.ClientOpt{replaceBody([]byte("{not json"))}, codeStatus{"InvalidArgsException", 400}},
		{"EIC body a JSON array", "EIC", []harness.ClientOpt{replaceBody([]byte(`["InstanceId"]`))}, codeStatus{"InvalidArgsException", 400}},
		{"EIC body with a wrong type", "EIC", []harness.ClientOpt{replaceBody([]byte(`{"InstanceId": 42}`))}, codeStatus{"InvalidArgsException", 400}},
		{"CloudTrail body not JSON", "CloudTrail", []harness.ClientOpt{replaceBody([]byte("{not json"))}, codeStatus{"InvalidParameterException", 400}},
		{"IAM body over 1 MiB", "IAM", []harness.ClientOpt{replaceBody(big), harness.AuditedAs("-"), harness.AsWho("")}, codeStatus{"RequestEntityTooLarge", 413}},
		{"EC2 body over 1 MiB", "EC2", []harness.ClientOpt{replaceBody(big), harness.AuditedAs("-"), harness.AsWho("")}, codeStatus{"RequestEntityTooLarge", 413}},
		{"EIC body over 1 MiB", "EIC", []harness.ClientOpt{replaceBody(big), harness.AsWho("")}, codeStatus{"InvalidArgsException", 413}},
		{"IAM unknown Action", "IAM", []harness.ClientOpt{replaceBody([]byte("Action=FrobnicateUser&Version=2010-05-08")), harness.AuditedAs("FrobnicateUser")}, codeStatus{"InvalidAction", 400}},
		{"STS unknown Action", "STS", []harness.ClientOpt{replaceBody([]byte("Action=AssumeNothing&Version=2011-06-15")), harness.AuditedAs("AssumeNothing")}, codeStatus{"InvalidAction", 400}},
		{"EC2 unknown Action", "EC2", []harness.ClientOpt{replaceBody([]byte("Action=RunInstances&Version=2016-11-15")), harness.AuditedAs("RunInstances")}, codeStatus{"InvalidAction", 400}},
		{"EIC unknown target", "EIC", []harness.ClientOpt{setHeader("X-Amz-Target", "AWSEC2InstanceConnectService.Frobnicate"), harness.AuditedAs("Frobnicate")}, codeStatus{"UnknownOperationException", 400}},
		{"IAM unsupported Version", "IAM", []harness.ClientOpt{replaceBody([]byte("Action=ListUsers&Version=2099-01-01"))}, codeStatus{"InvalidParameterValue", 400}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, svc := range services {
				if svc.name == tc.svc {
					err := svc.call(e, e.Root, tc.opts...)
					harness.WantCode(t, err, tc.want.code, tc.want.status)
					return
				}
			}
			t.Fatalf("no service %s", tc.svc)
		})
	}

	// Requests no SDK would send: never a 500, always the protocol's shape.
	raw := func(t *testing.T, method, body string, header map[string]string) (int, string, http.Header) {
		t.Helper()
		req, err := http.NewRequest(method, e.URL()+"/", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range header {
			req.Header.Set(k, v)
		}
		resp, err := e.HTTP.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp.Header
	}
	form := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
	for _, tc := range []struct {
		name, method, body string
		header             map[string]string
		parse              string // xml (IAM/STS), ec2, json
		want               codeStatus
	}{
		{"GET / without anything", "GET", "", nil, "xml", codeStatus{"MissingAuthenticationToken", 403}},
		{"POST / without auth", "POST", "Action=ListUsers&Version=2010-05-08", form, "xml", codeStatus{"MissingAuthenticationToken", 403}},
		{"EC2 without auth", "POST", "Action=DescribeInstances&Version=2016-11-15", form, "ec2", codeStatus{"AuthFailure", 401}},
		{"EIC without auth", "POST", "{}", map[string]string{"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "AWSEC2InstanceConnectService.SendSSHPublicKey"}, "json", codeStatus{"MissingAuthenticationTokenException", 403}},
		{"truncated Authorization", "POST", "Action=ListUsers&Version=2010-05-08", map[string]string{
			"Content-Type": "application/x-www-form-urlencoded", "X-Amz-Date": time.Now().UTC().Format("20060102T150405Z"),
			"Authorization": "AWS4-HMAC-SHA256 Credential=" + e.Root.ID + "/" + time.Now().UTC().Format("20060102") + "/us-east-1/iam/aws4_request",
		}, "xml", codeStatus{"IncompleteSignature", 400}},
		{"other Authorization scheme", "POST", "Action=ListUsers&Version=2010-05-08", map[string]string{
			"Content-Type": "application/x-www-form-urlencoded", "Authorization": "Basic cm9vdDpyb290",
		}, "xml", codeStatus{"IncompleteSignature", 400}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body, hdr := raw(t, tc.method, tc.body, tc.header)
			var code string
			switch tc.parse {
			case "xml":
				ec, err := awsxml.GetErrorResponseComponents(strings.NewReader(body), false)
				if err != nil {
					t.Fatalf("%v\n%s", err, body)
				}
				code = ec.Code
			case "ec2":
				ec, err := ec2query.GetErrorResponseComponents(strings.NewReader(body))
				if err != nil {
					t.Fatalf("%v\n%s", err, body)
				}
				code = ec.Code
			case "json":
				code = hdr.Get("X-Amzn-ErrorType")
			}
			if status != tc.want.status || code != tc.want.code {
				t.Errorf("%d %s, want %d %s\n%s", status, code, tc.want.status, tc.want.code, body)
			}
			e.Calls.Add(harness.SentCall{Who: "", Service: "-", Op: "-", RequestID: hdr.Get("X-Amzn-RequestId"), Code: code, Status: status})
		})
	}
}
