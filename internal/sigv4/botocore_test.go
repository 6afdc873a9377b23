package sigv4

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// botocoreScript signs requests with botocore's own signers (SigV4Auth,
// SigV4QueryAuth — what the aws CLI uses), sends them with botocore's HTTP
// session to the server at argv[1], and prints one JSON line per case.
const botocoreScript = `
import json, sys
from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.httpsession import URLLib3Session

base, akid, secret, token = sys.argv[1:5]
creds = Credentials(akid, secret)
tcreds = Credentials(akid, secret, token)
wrong = Credentials(akid, secret[::-1])
session = URLLib3Session()
tunnel = {'instanceConnectEndpointId': 'eice-0123456789abcdef0', 'remotePort': '22', 'privateIpAddress': '10.0.1.23'}

def form(**kw):
    r = AWSRequest(method='POST', url=base + '/', data='Action=PutUserPolicy&Version=2010-05-08&UserName=alice&PolicyName=p%20x&PolicyDocument=%7B%22Version%22%3A%222012-10-17%22%7D',
                   headers={'Content-Type': 'application/x-www-form-urlencoded; charset=utf-8'})
    return r

def json11():
    return AWSRequest(method='POST', url=base + '/', data=json.dumps({'InstanceId': 'i-0123456789abcdef0', 'InstanceOSUser': 'ec2-user', 'SSHPublicKey': 'ssh-ed25519 AAAA x'}),
                      headers={'Content-Type': 'application/x-amz-json-1.1', 'X-Amz-Target': 'AWSEC2InstanceConnectService.SendSSHPublicKey'})

def header(name, req, signer):
    signer.add_auth(req)
    return name, req.prepare()

def presign(name, path, params, signer):
    req = AWSRequest(method='GET', url=base + path, params=params)
    signer.add_auth(req)
    # Send exactly the URL botocore produced, with a WebSocket handshake's
    # (unsigned) headers.
    get = AWSRequest(method='GET', url=req.url, headers={'Connection': 'Upgrade', 'Upgrade': 'websocket', 'Sec-WebSocket-Version': '13', 'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ=='})
    return name, get.prepare()

def cases():
    yield header('iam form POST', form(), SigV4Auth(creds, 'iam', 'us-east-1'))
    yield header('JSON 1.1 POST', json11(), SigV4Auth(creds, 'ec2-instance-connect', 'us-east-1'))
    yield header('GET with query params', AWSRequest(method='GET', url=base + '/', params={'Action': 'DescribeInstances', 'Version': '2016-11-15', 'Filter.1.Value.1': 'a b+c/d~e \u00fc', 'Empty': ''}), SigV4Auth(creds, 'ec2', 'us-east-1'))
    yield header('session token', form(), SigV4Auth(tcreds, 'sts', 'us-east-1'))
    r = form(); r.headers['Date'] = 'set by the signer'
    yield header('Date header instead of X-Amz-Date', r, SigV4Auth(creds, 'iam', 'us-east-1'))
    r = form(); r.context['payload_signing_enabled'] = False
    yield header('UNSIGNED-PAYLOAD', r, SigV4Auth(creds, 'iam', 'us-east-1'))
    r = form(); r.headers['X-Custom'] = '  a   b    c  '
    yield header('header value with runs of spaces', r, SigV4Auth(creds, 'iam', 'us-east-1'))
    r = AWSRequest(method='GET', url=base + '//double//slash/?Action=DescribeInstances')
    yield header('path with empty segments', r, SigV4Auth(creds, 'ec2', 'us-east-1'))
    yield header('wrong secret', form(), SigV4Auth(wrong, 'iam', 'us-east-1'))
    yield presign('presigned openTunnel', '/openTunnel', tunnel, SigV4QueryAuth(creds, 'ec2-instance-connect', 'us-east-1', expires=60))
    yield presign('presigned openTunnel with token', '/openTunnel', dict(tunnel, maxTunnelDuration='3600'), SigV4QueryAuth(tcreds, 'ec2-instance-connect', 'us-east-1', expires=60))
    yield presign('presigned, wrong region', '/openTunnel', tunnel, SigV4QueryAuth(creds, 'ec2-instance-connect', 'eu-west-1', expires=60))

for name, prepared in cases():
    resp = session.send(prepared)
    print(json.dumps({'case': name, 'status': resp.status_code, 'body': resp.text}))
    sys.stdout.flush()
`

func TestBotocore(t *testing.T) {
	if err := exec.Command("python3", "-c", "import botocore.auth, botocore.httpsession").Run(); err != nil {
		t.Skipf("python3 with botocore is not available: %v", err)
	}
	srv, results := testServer(t, time.Now, func(w http.ResponseWriter, r *http.Request, body []byte) {})
	cmd := exec.Command("python3", "-c", botocoreScript, srv.URL, testAKID, testSecret, testToken)
	done := make(chan struct{})
	var out []byte
	var runErr error
	go func() { out, runErr = cmd.Output(); close(done) }()

	want := []struct {
		kind    Kind
		sdk     bool
		service string
		token   string
		unsig   bool
		msg     string
	}{
		{service: "iam", sdk: true},
		{service: "ec2-instance-connect", sdk: true},
		{service: "ec2", sdk: true},
		{service: "sts", sdk: true, token: testToken},
		{service: "iam", sdk: false},
		{service: "iam", sdk: true, unsig: true},
		{service: "iam", sdk: true},
		{service: "ec2", sdk: true},
		{kind: SignatureMismatch, msg: msgSignatureMismatch},
		{service: "ec2-instance-connect", sdk: true},
		{service: "ec2-instance-connect", sdk: true, token: testToken},
		{kind: WrongScope, msg: "Credential should be scoped to a valid region, not 'eu-west-1'."},
	}
	var got []outcome
	for range want {
		select {
		case o := <-results:
			got = append(got, o)
		case <-done:
			t.Fatalf("botocore script ended early: %v\n%s", runErr, out)
		case <-time.After(60 * time.Second):
			t.Fatal("botocore script timed out")
		}
	}
	<-done
	if runErr != nil {
		if ee, ok := runErr.(*exec.ExitError); ok {
			t.Fatalf("botocore script: %v\n%s", runErr, ee.Stderr)
		}
		t.Fatal(runErr)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != len(want) {
		t.Fatalf("%d result lines, want %d:\n%s", len(lines), len(want), out)
	}
	for i, w := range want {
		var line struct {
			Case   string
			Status int
			Body   string
		}
		if err := json.Unmarshal([]byte(lines[i]), &line); err != nil {
			t.Fatal(err)
		}
		o := got[i]
		t.Run(line.Case, func(t *testing.T) {
			if w.kind != 0 {
				if KindOf(o.err) != w.kind || KindOf(o.manual) != w.kind || line.Status != http.StatusForbidden {
					t.Fatalf("got %v / %v (status %d), want %v", o.err, o.manual, line.Status, w.kind)
				}
				if !strings.Contains(o.err.Error(), w.msg) {
					t.Errorf("message %q does not contain %q", o.err, w.msg)
				}
				return
			}
			if o.err != nil || o.manual != nil || line.Status != http.StatusOK {
				t.Fatalf("status %d: %v / hand-built: %v", line.Status, o.err, o.manual)
			}
			if o.sdk != w.sdk {
				t.Errorf("verified with the SDK signer = %v, want %v", o.sdk, w.sdk)
			}
			id := o.id
			if id.AccessKeyID != testAKID || id.Service != w.service || id.SessionToken != w.token || id.UnsignedPayload != w.unsig {
				t.Errorf("identity = %+v", id)
			}
			if fmt.Sprint(id.Presigned) != fmt.Sprint(strings.HasPrefix(line.Case, "presigned")) {
				t.Errorf("Presigned = %v", id.Presigned)
			}
		})
	}
}
