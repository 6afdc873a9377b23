package sigv4

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

var jsonBody = []byte(`{"InstanceId":"i-0123456789abcdef0","InstanceOSUser":"ec2-user","SSHPublicKey":"ssh-ed25519 AAAA x"}`)

// signedJSON is a SendSSHPublicKey call signed by the SDK at testTime, as
// the server receives it. prep runs before signing, post after.
func signedJSON(t testing.TB, creds aws.Credentials, service, region string, prep, post func(*http.Request)) (*http.Request, []byte) {
	t.Helper()
	req := newClientRequest(t, "POST", "https://ec2-instance-connect.us-east-1.amazonaws.com/", jsonBody)
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "AWSEC2InstanceConnectService.SendSSHPublicKey")
	if prep != nil {
		prep(req)
	}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hexSHA256(jsonBody), service, region, testTime); err != nil {
		t.Fatal(err)
	}
	if post != nil {
		post(req)
	}
	return serverRequest(t, req)
}

// tunnelURL is an openTunnel URL presigned by the SDK at testTime.
func tunnelURL(t testing.TB, expires string) string {
	t.Helper()
	q := "instanceConnectEndpointId=eice-0123456789abcdef0&privateIpAddress=10.0.1.23&remotePort=22"
	if expires != "" {
		q += "&X-Amz-Expires=" + expires
	}
	req := newClientRequest(t, "GET", "https://"+eiceHost+"/openTunnel?"+q, nil)
	return sdkPresign(t, req, testCreds, "ec2-instance-connect", testTime)
}

func editQuery(t testing.TB, u string, edit func(q string) string) *http.Request {
	t.Helper()
	base, q, _ := strings.Cut(u, "?")
	return presignedServerRequest(t, base+"?"+edit(q))
}

func TestVerifyErrors(t *testing.T) {
	at := testTime.Add(time.Minute)
	type tc struct {
		name string
		req  func(t *testing.T) (*http.Request, []byte)
		now  time.Time
		kind Kind
		msg  string
	}
	header := func(creds aws.Credentials, service, region string) func(t *testing.T) (*http.Request, []byte) {
		return func(t *testing.T) (*http.Request, []byte) { return signedJSON(t, creds, service, region, nil, nil) }
	}
	edited := func(post func(*http.Request)) func(t *testing.T) (*http.Request, []byte) {
		return func(t *testing.T) (*http.Request, []byte) {
			return signedJSON(t, testCreds, "ec2-instance-connect", testRegion, nil, post)
		}
	}
	presigned := func(expires string, edit func(string) string) func(t *testing.T) (*http.Request, []byte) {
		return func(t *testing.T) (*http.Request, []byte) {
			return editQuery(t, tunnelURL(t, expires), edit), nil
		}
	}
	same := func(q string) string { return q }
	setAuth := func(f func(string) string) func(*http.Request) {
		return func(r *http.Request) { r.Header.Set("Authorization", f(r.Header.Get("Authorization"))) }
	}
	cases := []tc{
		{name: "no auth at all", kind: MissingAuth, msg: "Request is missing Authentication Token",
			req: func(t *testing.T) (*http.Request, []byte) {
				return serverRequest(t, newClientRequest(t, "POST", "https://iam.amazonaws.com/", []byte("Action=GetUser")))
			}},
		{name: "unknown key", kind: UnknownKey, msg: msgUnknownKey,
			req: header(aws.Credentials{AccessKeyID: "AKIAUNKNOWNKEY000000", SecretAccessKey: testSecret}, "ec2-instance-connect", testRegion)},
		{name: "wrong secret", kind: SignatureMismatch, msg: msgSignatureMismatch,
			req: header(aws.Credentials{AccessKeyID: testAKID, SecretAccessKey: otherSecret}, "ec2-instance-connect", testRegion)},
		{name: "another key's secret", kind: SignatureMismatch, msg: msgSignatureMismatch,
			req: header(aws.Credentials{AccessKeyID: otherAKID, SecretAccessKey: testSecret}, "ec2-instance-connect", testRegion)},
		{name: "tampered body", kind: SignatureMismatch, msg: msgSignatureMismatch,
			req: func(t *testing.T) (*http.Request, []byte) {
				r, body := signedJSON(t, testCreds, "ec2-instance-connect", testRegion, nil, nil)
				return r, []byte(strings.Replace(string(body), "ec2-user", "root0000", 1))
			}},
		{name: "tampered body under x-amz-content-sha256", kind: SignatureMismatch, msg: msgContentSHA256,
			req: func(t *testing.T) (*http.Request, []byte) {
				r, body := signedJSON(t, testCreds, "ec2-instance-connect", testRegion,
					func(r *http.Request) { r.Header.Set("X-Amz-Content-Sha256", hexSHA256(jsonBody)) }, nil)
				return r, append(body, ' ')
			}},
		{name: "x-amz-content-sha256 not a digest", kind: Malformed, msg: "x-amz-content-sha256 must be",
			req: edited(func(r *http.Request) { r.Header.Set("X-Amz-Content-Sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD") })},
		{name: "tampered signed header", kind: SignatureMismatch, msg: msgSignatureMismatch,
			req: edited(func(r *http.Request) {
				r.Header.Set("X-Amz-Target", "AWSEC2InstanceConnectService.SendSerialConsoleSSHPublicKey")
			})},
		{name: "signed header dropped", kind: SignatureMismatch, msg: msgSignatureMismatch,
			req: edited(func(r *http.Request) { r.Header.Del("X-Amz-Target") })},
		{name: "signed header doubled", kind: SignatureMismatch, msg: msgSignatureMismatch,
			req: edited(func(r *http.Request) { r.Header.Add("Content-Type", "text/plain") })},
		{name: "host changed", kind: SignatureMismatch, msg: msgSignatureMismatch,
			req: edited(func(r *http.Request) { r.Host = "iam.amazonaws.com" })},
		{name: "method changed", kind: SignatureMismatch, msg: msgSignatureMismatch,
			req: edited(func(r *http.Request) { r.Method = "PUT" })},
		{name: "path changed", kind: SignatureMismatch, msg: msgSignatureMismatch,
			req: edited(func(r *http.Request) { r.URL.Path = "/x" })},
		{name: "query param added to a header-signed request", kind: SignatureMismatch, msg: msgSignatureMismatch,
			req: edited(func(r *http.Request) { r.URL.RawQuery = "Action=DeleteUser" })},
		{name: "signature of another request", kind: SignatureMismatch, msg: msgSignatureMismatch,
			req: edited(setAuth(func(a string) string { return a[:len(a)-64] + strings.Repeat("0", 64) }))},
		{name: "X-Amz-Date moved by a second", kind: SignatureMismatch, msg: msgSignatureMismatch,
			req: edited(func(r *http.Request) { r.Header.Set("X-Amz-Date", "20261128T100001Z") })},
		{name: "session token swapped", kind: SignatureMismatch, msg: msgSignatureMismatch,
			req: func(t *testing.T) (*http.Request, []byte) {
				return signedJSON(t, aws.Credentials{AccessKeyID: testAKID, SecretAccessKey: testSecret, SessionToken: testToken},
					"ec2-instance-connect", testRegion, nil, func(r *http.Request) { r.Header.Set("X-Amz-Security-Token", "other") })
			}},
		{name: "wrong region", kind: WrongScope, msg: "Credential should be scoped to a valid region, not 'eu-west-1'.",
			req: header(testCreds, "ec2-instance-connect", "eu-west-1")},
		{name: "wrong service", kind: WrongScope, msg: "Credential should be scoped to correct service: 'iam' or 'sts' or 'ec2' or 'ec2-instance-connect', not 's3'.",
			req: header(testCreds, "s3", testRegion)},
		{name: "credential date is not the request's day", kind: WrongScope,
			msg: "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '20261127' != '20261128', from '20261128T100000Z'.",
			req: edited(setAuth(func(a string) string { return strings.Replace(a, "/20261128/", "/20261127/", 1) }))},
		{name: "header date too old", now: testTime.Add(5*time.Minute + time.Second), kind: Skewed,
			msg: "Signature expired: 20261128T100000Z is now earlier than 20261128T100001Z (20261128T100501Z - 5 min.)",
			req: edited(nil)},
		{name: "header date in the future", now: testTime.Add(-5*time.Minute - time.Second), kind: Skewed,
			msg: "Signature not yet current: 20261128T100000Z is still later than 20261128T095959Z (20261128T095459Z + 5 min.)",
			req: edited(nil)},
		{name: "header form with another algorithm", kind: UnsupportedAlgorithm, msg: "'AWS4-ECDSA-P256-SHA256'",
			req: edited(setAuth(func(a string) string { return strings.Replace(a, "AWS4-HMAC-SHA256", "AWS4-ECDSA-P256-SHA256", 1) }))},
		{name: "Signature Version 2 header", kind: UnsupportedAlgorithm, msg: "'AWS'",
			req: edited(setAuth(func(string) string { return "AWS " + testAKID + ":frJIUN8DYpKDtOLCwo//yllqDzg=" }))},
		{name: "bearer token", kind: UnsupportedAlgorithm, msg: "'Bearer'",
			req: edited(setAuth(func(string) string { return "Bearer eyJhbGciOi" }))},
		{name: "Signature Version 2 query", kind: UnsupportedAlgorithm, msg: "Signature Version 2",
			req: func(t *testing.T) (*http.Request, []byte) {
				return serverRequest(t, newClientRequest(t, "GET", "https://ec2.amazonaws.com/?Action=DescribeInstances&AWSAccessKeyId="+testAKID+"&SignatureVersion=2&SignatureMethod=HmacSHA256&Signature=abc%3D", nil))
			}},
		{name: "two Authorization headers", kind: Malformed, msg: "2 Authorization headers",
			req: edited(func(r *http.Request) { r.Header.Add("Authorization", r.Header.Get("Authorization")) })},
		{name: "two X-Amz-Date headers", kind: Malformed, msg: "2 X-Amz-Date headers",
			req: edited(func(r *http.Request) { r.Header.Add("X-Amz-Date", r.Header.Get("X-Amz-Date")) })},
		{name: "no date", kind: Malformed, msg: "requires existence of either a 'X-Amz-Date' or a 'Date' header",
			req: edited(func(r *http.Request) { r.Header.Del("X-Amz-Date") })},

		// Presigned URLs.
		{name: "presigned: both auth mechanisms", kind: Malformed, msg: "Only one auth mechanism allowed",
			req: func(t *testing.T) (*http.Request, []byte) {
				r := editQuery(t, tunnelURL(t, "60"), same)
				r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=x")
				return r, nil
			}},
		{name: "presigned: tampered param", kind: SignatureMismatch, msg: msgSignatureMismatch,
			req: presigned("60", func(q string) string { return strings.Replace(q, "remotePort=22", "remotePort=3389", 1) })},
		{name: "presigned: unsigned param added", kind: SignatureMismatch, msg: msgSignatureMismatch,
			req: presigned("60", func(q string) string { return q + "&maxTunnelDuration=3600" })},
		{name: "presigned: param added in front", kind: SignatureMismatch, msg: msgSignatureMismatch,
			req: presigned("60", func(q string) string { return "a=&" + q })},
		{name: "presigned: param removed", kind: SignatureMismatch, msg: msgSignatureMismatch,
			req: presigned("60", func(q string) string { return strings.Replace(q, "privateIpAddress=10.0.1.23&", "", 1) })},
		{name: "presigned: param doubled", kind: SignatureMismatch, msg: msgSignatureMismatch,
			req: presigned("60", func(q string) string { return q + "&remotePort=22" })},
		{name: "presigned: X-Amz-Expires raised", kind: SignatureMismatch, msg: msgSignatureMismatch,
			req: presigned("60", func(q string) string { return strings.Replace(q, "X-Amz-Expires=60", "X-Amz-Expires=600", 1) })},
		{name: "presigned: X-Amz-Expires added to a URL without one", kind: SignatureMismatch, msg: msgSignatureMismatch,
			req: presigned("", func(q string) string { return q + "&X-Amz-Expires=3600" })},
		{name: "presigned: X-Amz-Expires dropped", kind: SignatureMismatch, msg: msgSignatureMismatch,
			req: presigned("60", func(q string) string { return strings.Replace(q, "X-Amz-Expires=60&", "", 1) })},
		{name: "presigned: session token added", kind: SignatureMismatch, msg: msgSignatureMismatch,
			req: presigned("60", func(q string) string { return q + "&X-Amz-Security-Token=abc" })},
		{name: "presigned: path changed", kind: SignatureMismatch, msg: msgSignatureMismatch,
			req: func(t *testing.T) (*http.Request, []byte) {
				return presignedServerRequest(t, strings.Replace(tunnelURL(t, "60"), "/openTunnel?", "/openTunnel/?", 1)), nil
			}},
		{name: "presigned: another host", kind: SignatureMismatch, msg: msgSignatureMismatch,
			req: func(t *testing.T) (*http.Request, []byte) {
				return presignedServerRequest(t, strings.Replace(tunnelURL(t, "60"), "eice-0123", "eice-9123", 1)), nil
			}},
		{name: "presigned: POST with a body", kind: SignatureMismatch, msg: msgSignatureMismatch,
			req: func(t *testing.T) (*http.Request, []byte) {
				r := presignedServerRequest(t, tunnelURL(t, "60"))
				return r, []byte("x")
			}},
		{name: "presigned: expired (default 5 minutes)", now: testTime.Add(10 * time.Minute), kind: Expired,
			msg: "Signature expired: 20261128T100000Z is now earlier than 20261128T100500Z (20261128T101000Z - 5 min.)",
			req: presigned("", same)},
		{name: "presigned: expired (X-Amz-Expires=60)", now: testTime.Add(61 * time.Second), kind: Expired,
			msg: "Signature expired: 20261128T100000Z is now earlier than 20261128T100001Z (20261128T100101Z - 1 min.)",
			req: presigned("60", same)},
		{name: "presigned: in the future", now: testTime.Add(-6 * time.Minute), kind: Skewed,
			msg: "Signature not yet current: 20261128T100000Z is still later than 20261128T095900Z (20261128T095400Z + 5 min.)",
			req: presigned("60", same)},
		{name: "presigned: another algorithm", kind: UnsupportedAlgorithm, msg: "X-Amz-Algorithm only supports AWS4-HMAC-SHA256",
			req: presigned("60", func(q string) string { return strings.Replace(q, "AWS4-HMAC-SHA256", "AWS4-ECDSA-P256-SHA256", 1) })},
		{name: "presigned: wrong region", kind: WrongScope, msg: "not 'eu-west-1'",
			req: presigned("60", func(q string) string { return strings.Replace(q, "%2Fus-east-1%2F", "%2Feu-west-1%2F", 1) })},
		{name: "presigned: credential date mismatch", kind: WrongScope, msg: "'20261129' != '20261128'",
			req: presigned("60", func(q string) string { return strings.Replace(q, "%2F20261128%2F", "%2F20261129%2F", 1) })},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, body := c.req(t)
			now := c.now
			if now.IsZero() {
				now = at
			}
			e := mustFail(t, r, body, now, c.kind, c.msg)
			if c.kind >= UnknownKey && e.AccessKeyID == "" {
				t.Errorf("AccessKeyID not reported")
			}
		})
	}
}

// TestVerifyControls: changes that must NOT break a signature.
func TestVerifyControls(t *testing.T) {
	at := testTime.Add(time.Minute)
	t.Run("unsigned header changed", func(t *testing.T) {
		r, body := signedJSON(t, testCreds, "ec2-instance-connect", testRegion, nil, func(r *http.Request) {
			r.Header.Set("User-Agent", "something else")
			r.Header.Set("X-Unsigned", "added")
		})
		mustVerify(t, r, body, at, true)
	})
	t.Run("presigned query re-encoded and reordered", func(t *testing.T) {
		u := tunnelURL(t, "60")
		r := editQuery(t, u, func(q string) string {
			ps := strings.Split(q, "&")
			for i, j := 0, len(ps)-1; i < j; i, j = i+1, j-1 {
				ps[i], ps[j] = ps[j], ps[i]
			}
			q = strings.Join(ps, "&")
			q = strings.ReplaceAll(q, "eice-", "eice%2d")
			return strings.ReplaceAll(q, "%2F", "%2f")
		})
		mustVerify(t, r, nil, at, true)
	})
	t.Run("clock exactly at the skew limits", func(t *testing.T) {
		r, body := signedJSON(t, testCreds, "ec2-instance-connect", testRegion, nil, nil)
		mustVerify(t, r, body, testTime.Add(5*time.Minute+999*time.Millisecond), true)
		mustVerify(t, r, body, testTime.Add(-5*time.Minute), true)
	})
	t.Run("presigned URL used long after X-Amz-Date within X-Amz-Expires", func(t *testing.T) {
		r := presignedServerRequest(t, tunnelURL(t, "604800"))
		mustVerify(t, r, nil, testTime.Add(6*24*time.Hour), true)
	})
}

func TestLookupFailure(t *testing.T) {
	boom := errors.New("store unavailable")
	v, err := New(Config{Region: testRegion, Services: testServices, Now: func() time.Time { return testTime },
		Lookup: func(context.Context, string) (string, error) { return "", boom }})
	if err != nil {
		t.Fatal(err)
	}
	r, body := signedJSON(t, testCreds, "ec2-instance-connect", testRegion, nil, nil)
	_, err = v.Verify(context.Background(), r, body)
	if !errors.Is(err, boom) || KindOf(err) != 0 {
		t.Fatalf("err = %v (kind %v), want the lookup error as a server fault", err, KindOf(err))
	}
}

func TestNewConfig(t *testing.T) {
	lk := testLookup
	for _, c := range []Config{
		{Services: testServices, Lookup: lk},
		{Region: "us east", Services: testServices, Lookup: lk},
		{Region: testRegion, Lookup: lk},
		{Region: testRegion, Services: []string{""}, Lookup: lk},
		{Region: testRegion, Services: testServices},
		{Region: testRegion, Services: testServices, Lookup: lk, MaxSkew: -1},
	} {
		if _, err := New(c); err == nil {
			t.Errorf("New(%+v) accepted", c)
		}
	}
	v, err := New(Config{Region: testRegion, Services: testServices, Lookup: lk})
	if err != nil || v.maxSkew != 5*time.Minute || v.now == nil {
		t.Fatalf("defaults: %+v, %v", v, err)
	}
}

// hostileAuthorizations are Authorization values that must be refused
// before any key is looked up.
var hostileAuthorizations = []string{
	"",
	" ",
	"AWS4-HMAC-SHA256",
	"AWS4-HMAC-SHA256 ",
	"AWS4-HMAC-SHA256 Credential=",
	"AWS4-HMAC-SHA256 Credential=" + testAKID + "/20261128/us-east-1/ec2-instance-connect/aws4_request",
	"AWS4-HMAC-SHA256 Credential=" + testAKID + "/20261128/us-east-1/ec2-instance-connect/aws4_request, SignedHeaders=host",
	"AWS4-HMAC-SHA256 SignedHeaders=host, Signature=" + strings.Repeat("a", 64),
	"AWS4-HMAC-SHA256 Credential=a, Credential=b, SignedHeaders=host, Signature=" + strings.Repeat("a", 64),
	"AWS4-HMAC-SHA256 Credential=" + testAKID + "/20261128/us-east-1/ec2-instance-connect/aws4_request, SignedHeaders=host, Signature=" + strings.Repeat("a", 64) + ", Extra=1",
	"AWS4-HMAC-SHA256 Credential " + testAKID,
	"AWS4-HMAC-SHA256 ,,,",
	"AWS4-HMAC-SHA256 =,=,=",
}

func authWith(cred, signed, sig string) string {
	return "AWS4-HMAC-SHA256 Credential=" + cred + ", SignedHeaders=" + signed + ", Signature=" + sig
}

func TestMalformedAuthorization(t *testing.T) {
	goodCred := testAKID + "/20261128/us-east-1/ec2-instance-connect/aws4_request"
	goodSigned := "content-type;host;x-amz-date;x-amz-target"
	goodSig := strings.Repeat("ab", 32)
	hostile := append([]string{}, hostileAuthorizations...)
	for _, cred := range []string{
		"", "/", "////", testAKID + "/20261128/us-east-1/ec2-instance-connect",
		testAKID + "/20261128/us-east-1/ec2-instance-connect/aws4_request/x",
		"/20261128/us-east-1/ec2-instance-connect/aws4_request",
		strings.Repeat("A", 200) + "/20261128/us-east-1/ec2-instance-connect/aws4_request",
		"AKIA\x00X/20261128/us-east-1/ec2-instance-connect/aws4_request",
		"AKIA X/20261128/us-east-1/ec2-instance-connect/aws4_request",
		"AKIA\r\nX-Injected: 1/20261128/us-east-1/ec2-instance-connect/aws4_request",
		"AKIAÜ/20261128/us-east-1/ec2-instance-connect/aws4_request",
		testAKID + "/2026112/us-east-1/ec2-instance-connect/aws4_request",
		testAKID + "/20261328/us-east-1/ec2-instance-connect/aws4_request",
		testAKID + "/20260230/us-east-1/ec2-instance-connect/aws4_request",
		testAKID + "/2026-11-2/us-east-1/ec2-instance-connect/aws4_request",
		testAKID + "/+2026112/us-east-1/ec2-instance-connect/aws4_request",
		testAKID + "/20261128//ec2-instance-connect/aws4_request",
		testAKID + "/20261128/us east 1/ec2-instance-connect/aws4_request",
		testAKID + "/20261128/" + strings.Repeat("r", 65) + "/ec2-instance-connect/aws4_request",
		testAKID + "/20261128/us-east-1//aws4_request",
		testAKID + "/20261128/us-east-1/ec2%20x/aws4_request",
		testAKID + "/20261128/us-east-1/ec2-instance-connect/aws4_requesT",
		testAKID + "/20261128/us-east-1/ec2-instance-connect/",
	} {
		hostile = append(hostile, authWith(cred, goodSigned, goodSig))
	}
	many := make([]string, 65)
	for i := range many {
		many[i] = "x-h" + string(rune('a'+i/26)) + string(rune('a'+i%26))
	}
	many[64] = "host"
	for _, sh := range []string{
		"", ";", "host;", ";host", "x-amz-date;host", "Host", "host;host", "host;;x-amz-date", "x-amz-date",
		"content-type;host;x amz date", "content-type;host;x-amz-date\x00", "hoSt", "höst;host",
		strings.Join(many, ";"), strings.Repeat("h", 129) + ";host",
	} {
		hostile = append(hostile, authWith(goodCred, sh, goodSig))
	}
	for _, sig := range []string{
		"", "abc", strings.Repeat("a", 63), strings.Repeat("a", 65), strings.Repeat("A", 64), strings.Repeat("g", 64),
		strings.Repeat("a", 62) + "\x00\x00", strings.Repeat("ab", 32) + " ",
	} {
		if strings.HasSuffix(sig, " ") {
			sig += ", x"
		}
		hostile = append(hostile, authWith(goodCred, goodSigned, sig))
	}
	hostile = append(hostile, authWith(goodCred, goodSigned, goodSig)+strings.Repeat(" ", maxAuthorizationLen))

	for _, h := range hostile {
		r, body := signedJSON(t, testCreds, "ec2-instance-connect", testRegion, nil, nil)
		r.Header.Set("Authorization", h)
		for _, manual := range []bool{false, true} {
			lookups := 0
			v, err := New(Config{Region: testRegion, Services: testServices, Now: func() time.Time { return testTime },
				Lookup: func(ctx context.Context, id string) (string, error) { lookups++; return testLookup(ctx, id) }})
			if err != nil {
				t.Fatal(err)
			}
			v.manualOnly = manual
			id, err := v.Verify(context.Background(), r, body)
			k := KindOf(err)
			if id != nil || (k != Malformed && k != UnsupportedAlgorithm) {
				t.Errorf("Authorization %q: got %+v, %v; want Malformed", h, id, err)
				continue
			}
			if lookups != 0 {
				t.Errorf("Authorization %q: the key was looked up", h)
			}
			checkMessage(t, err)
		}
	}
}

func TestMalformedDates(t *testing.T) {
	for _, d := range []string{
		"", "2026-11-28T10:00:00Z", "20261128T100000", "20261128100000Z", "20261128T250000Z", "20261128T106000Z",
		"20260230T100000Z", "20261128t100000z", "20261128T10000Z0", "20261128T100000Z ", "+0261128T100000Z",
		"20261128T1000６0Z", strings.Repeat("9", 100),
	} {
		r, body := signedJSON(t, testCreds, "ec2-instance-connect", testRegion, nil, nil)
		r.Header["X-Amz-Date"] = []string{d}
		mustFail(t, r, body, testTime, Malformed, "X-Amz-Date")
	}
	for _, d := range []string{"yesterday", "Sat, 28 Nov 2026 10:00:00", "Sat, 28 Nov 2026 25:00:00 GMT", strings.Repeat("x", 65)} {
		r, body := signedJSON(t, testCreds, "ec2-instance-connect", testRegion, nil, nil)
		r.Header.Del("X-Amz-Date")
		r.Header.Set("Date", d)
		mustFail(t, r, body, testTime, Malformed, "Date")
	}
}

func TestMalformedPresignedQuery(t *testing.T) {
	u := tunnelURL(t, "60")
	_, q, _ := strings.Cut(u, "?")
	drop := func(name string) string {
		var keep []string
		for _, p := range strings.Split(q, "&") {
			if !strings.HasPrefix(p, name+"=") {
				keep = append(keep, p)
			}
		}
		return strings.Join(keep, "&")
	}
	set := func(name, val string) string { return drop(name) + "&" + name + "=" + val }
	queries := []string{
		drop("X-Amz-Algorithm"), drop("X-Amz-Credential"), drop("X-Amz-Date"), drop("X-Amz-SignedHeaders"), drop("X-Amz-Signature"),
		q + "&X-Amz-Signature=" + strings.Repeat("a", 64), q + "&X-Amz-Date=20261128T100000Z", q + "&X-Amz-Expires=60",
		q + "&X-Amz-Credential=x", q + "&X-Amz-Security-Token=a&X-Amz-Security-Token=b",
		set("X-Amz-Expires", "0"), set("X-Amz-Expires", "-1"), set("X-Amz-Expires", "604801"), set("X-Amz-Expires", "1e3"),
		set("X-Amz-Expires", "60s"), set("X-Amz-Expires", "99999999"), set("X-Amz-Expires", ""), set("X-Amz-Expires", "%2B60"),
		set("X-Amz-Date", "2026-11-28T10:00:00Z"), set("X-Amz-Date", ""),
		set("X-Amz-Credential", url.QueryEscape(testAKID+"/20261128/us-east-1/ec2-instance-connect")),
		set("X-Amz-SignedHeaders", "Host"), set("X-Amz-SignedHeaders", ""), set("X-Amz-SignedHeaders", "x-amz-date"),
		set("X-Amz-Signature", strings.Repeat("Z", 64)),
		set("X-Amz-Security-Token", strings.Repeat("t", maxSessionTokenLen+1)),
		q + "&bad=%zz", q + "&bad=%4", "%=x&" + q, q + "&" + strings.Repeat("a=b&", maxQueryParams),
		q + "&pad=" + strings.Repeat("x", maxQueryLen),
	}
	for _, qq := range queries {
		r := presignedServerRequest(t, "https://"+eiceHost+"/openTunnel?"+qq)
		mustFail(t, r, nil, testTime, Malformed, "")
	}
}

// checkMessage: messages carry no control characters and no secret, and
// hostile input is echoed only truncated.
func checkMessage(t *testing.T, err error) {
	t.Helper()
	e := err.(*Error)
	if e.Message == "" || len(e.Message) > 400 {
		t.Errorf("message length %d: %q", len(e.Message), e.Message)
	}
	for i := 0; i < len(e.Message); i++ {
		if c := e.Message[i]; c < 0x20 || c > 0x7e {
			t.Errorf("message has byte %#x: %q", c, e.Message)
			break
		}
	}
}

func TestMessagesArePrintable(t *testing.T) {
	r, body := signedJSON(t, testCreds, "ec2-instance-connect", testRegion, nil, nil)
	r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=\x1b[31m"+strings.Repeat("Ü", 100)+"/x, SignedHeaders=host, Signature=x")
	v, _ := newVerifier(t, testTime, false)
	_, err := v.Verify(context.Background(), r, body)
	if KindOf(err) != Malformed {
		t.Fatalf("err = %v", err)
	}
	checkMessage(t, err)
	if !strings.Contains(err.Error(), "...'") {
		t.Errorf("long value not truncated: %v", err)
	}
}

func TestKindString(t *testing.T) {
	for k := MissingAuth; k <= SignatureMismatch; k++ {
		if s := k.String(); strings.HasPrefix(s, "Kind(") {
			t.Errorf("kind %d has no name", k)
		}
	}
	if Kind(0).String() != "Kind(0)" || Kind(99).String() != "Kind(99)" {
		t.Error("unknown kinds")
	}
}

// TestBoundsBeforeLookup: oversized signed header values are refused
// before the key is looked up.
func TestBoundsBeforeLookup(t *testing.T) {
	r, body := signedJSON(t, testCreds, "ec2-instance-connect", testRegion, func(r *http.Request) {
		r.Header.Set("X-Big", strings.Repeat("b", maxCanonicalHeadersLen))
	}, nil)
	lookups := 0
	v, err := New(Config{Region: testRegion, Services: testServices, Now: func() time.Time { return testTime },
		Lookup: func(ctx context.Context, id string) (string, error) { lookups++; return testLookup(ctx, id) }})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(context.Background(), r, body); KindOf(err) != Malformed || lookups != 0 {
		t.Fatalf("err = %v, lookups = %d", err, lookups)
	}
	r.Header.Set("X-Big", strings.Repeat("b", 1000)) // within bounds, but not what was signed
	if _, err := v.Verify(context.Background(), r, body); KindOf(err) != SignatureMismatch || lookups != 1 {
		t.Fatalf("err = %v, lookups = %d", err, lookups)
	}
}
