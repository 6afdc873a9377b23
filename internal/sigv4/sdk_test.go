package sigv4

import (
	"context"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/ec2instanceconnect"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// cannedResponse answers just enough of each API for the SDK clients to
// accept the reply.
func cannedResponse(w http.ResponseWriter, r *http.Request, body []byte) {
	if strings.HasPrefix(r.Header.Get("X-Amz-Target"), "AWSEC2InstanceConnectService.") {
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		w.Write([]byte(`{"RequestId":"r-1","Success":true}`))
		return
	}
	form, _ := url.ParseQuery(string(body))
	w.Header().Set("Content-Type", "text/xml")
	switch a := form.Get("Action"); a {
	case "GetUser":
		w.Write([]byte(`<GetUserResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><GetUserResult><User><Path>/</Path><UserName>alice</UserName><UserId>AIDAEXAMPLE</UserId><Arn>arn:aws:iam::123456789012:user/alice</Arn><CreateDate>2026-01-01T00:00:00Z</CreateDate></User></GetUserResult><ResponseMetadata><RequestId>r-1</RequestId></ResponseMetadata></GetUserResponse>`))
	case "GetCallerIdentity":
		w.Write([]byte(`<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><GetCallerIdentityResult><Arn>arn:aws:iam::123456789012:user/alice</Arn><UserId>AIDAEXAMPLE</UserId><Account>123456789012</Account></GetCallerIdentityResult><ResponseMetadata><RequestId>r-1</RequestId></ResponseMetadata></GetCallerIdentityResponse>`))
	default:
		w.Write([]byte(`<` + a + `Response xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><ResponseMetadata><RequestId>r-1</RequestId></ResponseMetadata></` + a + `Response>`))
	}
}

// TestSDKServiceClients drives the real service clients of the Go SDK —
// their whole middleware stack, signer included — against a server that
// verifies every call.
func TestSDKServiceClients(t *testing.T) {
	srv, results := testServer(t, time.Now, cannedResponse)
	cfg := func(token string) aws.Config {
		return aws.Config{
			Region: testRegion,
			Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
				return aws.Credentials{AccessKeyID: testAKID, SecretAccessKey: testSecret, SessionToken: token}, nil
			}),
			RetryMaxAttempts: 1,
			BaseEndpoint:     aws.String(srv.URL),
		}
	}
	ctx := context.Background()
	doc := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ec2-instance-connect:*","Resource":"*","Condition":{"StringEquals":{"aws:username":"a b+c/d~e"}}}]}`
	calls := []struct {
		name, service, token string
		call                 func(aws.Config) error
	}{
		{"iam GetUser", "iam", "", func(c aws.Config) error {
			_, err := iam.NewFromConfig(c).GetUser(ctx, &iam.GetUserInput{})
			return err
		}},
		{"iam PutUserPolicy (form-encoded JSON)", "iam", "", func(c aws.Config) error {
			_, err := iam.NewFromConfig(c).PutUserPolicy(ctx, &iam.PutUserPolicyInput{
				UserName: aws.String("alice"), PolicyName: aws.String("p ü"), PolicyDocument: aws.String(doc),
			})
			return err
		}},
		{"sts GetCallerIdentity with a session token", "sts", testToken, func(c aws.Config) error {
			_, err := sts.NewFromConfig(c).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
			return err
		}},
		{"ec2-instance-connect SendSSHPublicKey (JSON 1.1)", "ec2-instance-connect", "", func(c aws.Config) error {
			_, err := ec2instanceconnect.NewFromConfig(c).SendSSHPublicKey(ctx, &ec2instanceconnect.SendSSHPublicKeyInput{
				InstanceId: aws.String("i-0123456789abcdef0"), InstanceOSUser: aws.String("ec2-user"),
				SSHPublicKey:     aws.String("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGx3Wg0Xg0mTKs0Zm0QkFQj1FqQ8f3q4xhZkqCJ5kJ9Z test@host"),
				AvailabilityZone: aws.String("us-east-1a"),
			})
			return err
		}},
	}
	for _, c := range calls {
		t.Run(c.name, func(t *testing.T) {
			callErr := c.call(cfg(c.token))
			o := next(t, results)
			if o.err != nil {
				t.Fatalf("server: %v", o.err)
			}
			if o.manual != nil {
				t.Fatalf("server (hand-built canonical request): %v", o.manual)
			}
			if callErr != nil {
				t.Fatalf("client: %v", callErr)
			}
			if !o.sdk {
				t.Errorf("the SDK signer was not used to verify an SDK request")
			}
			if o.id.AccessKeyID != testAKID || o.id.Service != c.service || o.id.Region != testRegion || o.id.SessionToken != c.token || o.id.Presigned {
				t.Errorf("identity = %+v", o.id)
			}
		})
	}
}

// TestSDKSignerHeaderForm signs requests with the SDK's v4.Signer directly
// and verifies them as a server receives them.
func TestSDKSignerHeaderForm(t *testing.T) {
	form := []byte("Action=PutUserPolicy&Version=2010-05-08&UserName=alice&PolicyName=p%20%C3%BC&PolicyDocument=%7B%22Version%22%3A%222012-10-17%22%7D")
	jsonBody := []byte(`{"InstanceId":"i-0123456789abcdef0","InstanceOSUser":"ec2-user","SSHPublicKey":"ssh-ed25519 AAAA x","AvailabilityZone":"us-east-1a"}`)
	cases := []struct {
		name    string
		method  string
		url     string
		body    []byte
		service string
		creds   aws.Credentials
		prep    func(*http.Request) // before signing
		post    func(*http.Request) // after
		payload string              // the payload hash to sign with; body's hash if ""
		sdk     bool                // whether the SDK signer can reproduce it
		unsig   bool
	}{
		{name: "IAM Query POST", method: "POST", url: "https://iam.amazonaws.com/", body: form, service: "iam",
			prep: func(r *http.Request) {
				r.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
			}, sdk: true},
		{name: "JSON 1.1 POST with a session token", method: "POST", url: "https://ec2-instance-connect.us-east-1.amazonaws.com/", body: jsonBody,
			service: "ec2-instance-connect", creds: aws.Credentials{AccessKeyID: testAKID, SecretAccessKey: testSecret, SessionToken: testToken},
			prep: func(r *http.Request) {
				r.Header.Set("Content-Type", "application/x-amz-json-1.1")
				r.Header.Set("X-Amz-Target", "AWSEC2InstanceConnectService.SendSSHPublicKey")
			}, sdk: true},
		{name: "GET with an awkward query", method: "GET", service: "ec2",
			url: "http://127.0.0.1:8080/?Action=DescribeInstances&Version=2016-11-15&Filter.1.Name=tag%3AName&Filter.1.Value.1=a%20b%2Bc%2Fd~e%C3%BC&Filter.1.Value.2=&Empty",
			sdk: true},
		{name: "path with escapes", method: "GET", service: "ec2", url: "https://ec2.us-east-1.amazonaws.com/a%20b/c%2Fd/%C3%BC", sdk: true},
		{name: "custom headers with runs of spaces and two values", method: "POST", url: "https://iam.amazonaws.com/", body: form, service: "iam",
			prep: func(r *http.Request) {
				r.Header.Set("X-Custom", "  a   b  c ")
				r.Header.Add("X-Multi", "one")
				r.Header.Add("X-Multi", "two  words")
			}, sdk: true},
		{name: "x-amz-content-sha256 with the body's hash", method: "POST", url: "https://iam.amazonaws.com/", body: form, service: "iam",
			prep: func(r *http.Request) { r.Header.Set("X-Amz-Content-Sha256", hexSHA256(form)) }, sdk: true},
		{name: "UNSIGNED-PAYLOAD", method: "POST", url: "https://iam.amazonaws.com/", body: form, service: "iam",
			prep:    func(r *http.Request) { r.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD") },
			payload: "UNSIGNED-PAYLOAD", sdk: true, unsig: true},
		{name: "signed User-Agent and X-Amzn-Trace-Id (the SDK signer skips them)", method: "POST", url: "https://iam.amazonaws.com/", body: form, service: "iam",
			prep: func(r *http.Request) {
				// A non-canonical key slips past the SDK's IgnoredHeaders
				// lookup, so the SDK client here signs the header the way
				// another client might; the verifier's SDK path cannot.
				r.Header["user-agent"] = []string{"custom-client/1.0"}
				r.Header["x-amzn-trace-id"] = []string{"Root=1-abc"}
			},
			post: func(r *http.Request) {
				// Under its canonical key, or http.Request.Write adds its own.
				r.Header["User-Agent"] = r.Header["user-agent"]
				delete(r.Header, "user-agent")
			}, sdk: false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req := newClientRequest(t, c.method, c.url, c.body)
			if c.prep != nil {
				c.prep(req)
			}
			creds := c.creds
			if creds.AccessKeyID == "" {
				creds = testCreds
			}
			ph := c.payload
			if ph == "" {
				ph = hexSHA256(c.body)
			}
			if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, ph, c.service, testRegion, testTime); err != nil {
				t.Fatal(err)
			}
			if c.post != nil {
				c.post(req)
			}
			r, body := serverRequest(t, req)
			id := mustVerify(t, r, body, testTime.Add(2*time.Minute), c.sdk)
			if id.Service != c.service || id.SessionToken != creds.SessionToken || id.UnsignedPayload != c.unsig || !id.SignedAt.Equal(testTime) {
				t.Errorf("identity = %+v", id)
			}
		})
	}
}

// TestSignedHeaderAbsent: a client signed a header it then did not send;
// its canonical value is empty. The SDK signer would leave it out, so the
// verifier builds the canonical request by hand.
func TestSignedHeaderAbsent(t *testing.T) {
	req := newClientRequest(t, "GET", "https://ec2.us-east-1.amazonaws.com/?Action=DescribeInstances", nil)
	req.Header.Set("X-Gone", "")
	sdkSign(t, req, nil, testCreds, "ec2", testTime)
	if !strings.Contains(req.Header.Get("Authorization"), "x-gone") {
		t.Fatal("the SDK did not sign the empty header")
	}
	r, body := serverRequest(t, req)
	mustVerify(t, r, body, testTime, true)
	r.Header.Del("X-Gone")
	mustVerify(t, r, body, testTime, false)
}

// TestSDKPresignOpenTunnel: the EICE WebSocket URL presigned by the Go SDK
// (as Teleport does), with and without X-Amz-Expires and a session token.
func TestSDKPresignOpenTunnel(t *testing.T) {
	for _, expires := range []string{"", "60"} {
		for _, token := range []string{"", testToken} {
			name := "no expires"
			if expires != "" {
				name = "expires=" + expires
			}
			if token != "" {
				name += ", session token"
			}
			t.Run(name, func(t *testing.T) {
				q := url.Values{
					"instanceConnectEndpointId": {"eice-0123456789abcdef0"},
					"remotePort":                {"22"},
					"privateIpAddress":          {"10.0.1.23"},
					"maxTunnelDuration":         {"3600"},
				}
				if expires != "" {
					q.Set("X-Amz-Expires", expires)
				}
				req := newClientRequest(t, "GET", "wss://"+eiceHost+"/openTunnel?"+q.Encode(), nil)
				creds := aws.Credentials{AccessKeyID: testAKID, SecretAccessKey: testSecret, SessionToken: token}
				u := sdkPresign(t, req, creds, "ec2-instance-connect", testTime)
				if strings.Contains(u, "X-Amz-Expires") != (expires != "") {
					t.Fatalf("unexpected URL %s", u)
				}
				r := presignedServerRequest(t, strings.Replace(u, "wss://", "https://", 1))
				id := mustVerify(t, r, nil, testTime.Add(45*time.Second), true)
				if !id.Presigned || id.Service != "ec2-instance-connect" || id.SessionToken != token || id.UnsignedPayload {
					t.Errorf("identity = %+v", id)
				}
				// Still valid at the last second, expired one second later.
				life := DefaultPresignExpiry
				if expires != "" {
					life = 60 * time.Second
				}
				mustVerify(t, r, nil, testTime.Add(life), true)
				mustFail(t, r, nil, testTime.Add(life+time.Second), Expired, "Signature expired: 20261128T100000Z is now earlier than")
			})
		}
	}
}

// TestPresignOverTheWire sends a presigned URL through a real HTTP server.
func TestPresignOverTheWire(t *testing.T) {
	srv, results := testServer(t, time.Now, func(w http.ResponseWriter, r *http.Request, body []byte) {})
	req := newClientRequest(t, "GET", srv.URL+"/openTunnel?instanceConnectEndpointId=eice-0123456789abcdef0&remotePort=22&privateIpAddress=10.0.1.23", nil)
	u := sdkPresign(t, req, testCreds, "ec2-instance-connect", time.Now())
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	o := next(t, results)
	if o.err != nil || o.manual != nil || !o.sdk || !o.id.Presigned {
		t.Fatalf("outcome = %+v", o)
	}
}

// TestPresignUnsignedPayload: a URL presigned over UNSIGNED-PAYLOAD (as S3
// presigned URLs are) verifies, and says so.
func TestPresignUnsignedPayload(t *testing.T) {
	req := newClientRequest(t, "GET", "https://"+eiceHost+"/openTunnel?remotePort=22&X-Amz-Expires=90", nil)
	u, _, err := v4.NewSigner().PresignHTTP(context.Background(), testCreds, req, "UNSIGNED-PAYLOAD", "ec2-instance-connect", testRegion, testTime)
	if err != nil {
		t.Fatal(err)
	}
	r := presignedServerRequest(t, u)
	if id := mustVerify(t, r, nil, testTime, true); !id.UnsignedPayload {
		t.Errorf("UnsignedPayload not reported: %+v", id)
	}
	mustFail(t, r, nil, testTime.Add(91*time.Second), Expired, "(20261128T100131Z - 90 sec.)")
}

// TestVerifyLeavesRequestAlone: Verify only reads r — several verifiers may
// look at one request at once (under -race this catches the SDK signer
// writing X-Amz-Date into a header slice it was handed).
func TestVerifyLeavesRequestAlone(t *testing.T) {
	r, body := signedJSON(t, testCreds, "ec2-instance-connect", testRegion, nil, nil)
	before := r.Header.Clone()
	v, _ := newVerifier(t, testTime, false)
	done := make(chan error)
	for range 4 {
		go func() {
			_, err := v.Verify(context.Background(), r, body)
			done <- err
		}()
	}
	for range 4 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if !reflect.DeepEqual(before, r.Header) {
		t.Errorf("headers changed: %q → %q", before, r.Header)
	}
}
