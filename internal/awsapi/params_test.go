package awsapi

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/kaginashi/kaginashi/internal/apierr"
)

func TestParams(t *testing.T) {
	v, _ := url.ParseQuery("Action=X&UserName=alice&ActionNames.member.1=a&ActionNames.member.2=b&ActionNames.member.4=gap" +
		"&Tags.member.1.Key=team&Tags.member.1.Value=web&Tags.member.2.Key=empty" +
		"&Filter.1.Name=tag:team&Filter.1.Value.1=web&Filter.1.Value.2=db&Filter.2.Name=instance-state-name&Filter.2.Value.1=running" +
		"&Tag.1.Key=a&Tag.2.Key=b&Tag.2.Value=&MaxItems=10&Bad=zz&ContextEntries.member.1.ContextKeyName=ec2:osuser&ContextEntries.member.1.ContextKeyValues.member.1=root")
	p := newParams(v)
	if got := p.req("UserName"); got != "alice" {
		t.Errorf("req = %q", got)
	}
	if got := strings.Join(p.members("ActionNames", 10), ","); got != "a,b" {
		t.Errorf("members = %q (a gap ends the list)", got)
	}
	tags := p.tags("Tags.member", 50)
	if len(tags) != 2 || tags[0].Key != "team" || tags[0].Value != "web" || tags[1].Value != "" {
		t.Errorf("tags = %+v", tags)
	}
	fs := p.filters(50)
	if len(fs) != 2 || fs[0].Name != "tag:team" || len(fs[0].Values) != 2 || fs[1].Values[0] != "running" {
		t.Errorf("filters = %+v", fs)
	}
	ms := p.tagMatches("Tag", 50)
	if len(ms) != 2 || ms[0].MatchValue || !ms[1].MatchValue {
		t.Errorf("tag matches = %+v (Tag.2.Value= present means match the empty value)", ms)
	}
	if ce := p.contextEntries(10); len(ce["ec2:osuser"]) != 1 || ce["ec2:osuser"][0] != "root" {
		t.Errorf("context entries = %v", ce)
	}
	if n := p.integer("MaxItems", 100, 1, 1000); n != 10 {
		t.Errorf("integer = %d", n)
	}
	if err := p.err(); err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
	p.req("Missing")
	p.integer("Bad", 0, 1, 5)
	p.boolean("Bad", false)
	err := p.err()
	if apierr.KindOf(err) != apierr.InvalidInput || !strings.Contains(err.Error(), "missing") {
		t.Errorf("err = %v", err)
	}
	if got := p.members("ActionNames", 1); len(got) != 1 {
		t.Errorf("over the limit: %v", got)
	}
	rec := newParams(v).record()
	if _, ok := rec["action"]; ok {
		t.Error("the audit record repeats Action")
	}
	if rec["userName"] != "alice" {
		t.Errorf("record = %v", rec)
	}
}

func TestErrorCodes(t *testing.T) {
	tests := []struct {
		p      protocol
		kind   apierr.Kind
		code   string
		status int
	}{
		{protoIAM, apierr.UnknownAccessKey, "InvalidClientTokenId", 403},
		{protoIAM, apierr.SignatureMismatch, "SignatureDoesNotMatch", 403},
		{protoIAM, apierr.AccessDenied, "AccessDenied", 403},
		{protoIAM, apierr.NotFound, "NoSuchEntity", 404},
		{protoIAM, apierr.MalformedPolicy, "MalformedPolicyDocument", 400},
		{protoIAM, apierr.Throttled, "Throttling", 400},
		{protoIAM, apierr.Internal, "ServiceFailure", 500},
		{protoSTS, apierr.InvalidInput, "ValidationError", 400},
		{protoEC2, apierr.UnknownAccessKey, "AuthFailure", 401},
		{protoEC2, apierr.AccessDenied, "UnauthorizedOperation", 403},
		{protoEC2, apierr.Throttled, "RequestLimitExceeded", 503},
		{protoEC2, apierr.DryRun, "DryRunOperation", 412},
		{protoEIC, apierr.AccessDenied, "AuthException", 403},
		{protoEIC, apierr.NotFound, "EC2InstanceNotFoundException", 404},
		{protoEIC, apierr.InvalidInput, "InvalidArgsException", 400},
		{protoEIC, apierr.Unavailable, "EC2InstanceUnavailableException", 503},
		{protoEIC, apierr.Throttled, "ThrottlingException", 429},
		{protoEIC, apierr.Internal, "ServiceException", 500},
		{protoCT, apierr.AccessDenied, "AccessDeniedException", 400},
	}
	for _, tt := range tests {
		code, status, _ := errorCode(tt.p, &apierr.Error{Kind: tt.kind})
		if code != tt.code || status != tt.status {
			t.Errorf("%s %v: %s %d, want %s %d", serviceName[tt.p], tt.kind, code, status, tt.code, tt.status)
		}
	}
	code, status, _ := errorCode(protoEIC, apierr.WithCode(apierr.Unsupported, "SerialConsoleAccessDisabledException", "x"))
	if code != "SerialConsoleAccessDisabledException" || status != 403 {
		t.Errorf("explicit code: %s %d", code, status)
	}
	// Every kind has a code in every protocol.
	for _, p := range []protocol{protoIAM, protoSTS, protoEC2, protoEIC, protoCT} {
		for k := apierr.Internal; k <= apierr.DryRun; k++ {
			if code, status, _ := errorCode(p, &apierr.Error{Kind: k}); code == "" || status == 0 {
				t.Errorf("%s has no code for kind %d", serviceName[p], k)
			}
		}
	}
}

func TestGuessProtocol(t *testing.T) {
	req := func(auth, target string) *http.Request {
		r, _ := http.NewRequest("POST", "https://x/", nil)
		if auth != "" {
			r.Header.Set("Authorization", auth)
		}
		if target != "" {
			r.Header.Set("X-Amz-Target", target)
		}
		return r
	}
	for _, tt := range []struct {
		r    *http.Request
		want protocol
	}{
		{req("AWS4-HMAC-SHA256 Credential=AKID/20261128/us-east-1/ec2/aws4_request, SignedHeaders=host, Signature=x", ""), protoEC2},
		{req("AWS4-HMAC-SHA256 Credential=AKID/20261128/us-east-1/sts/aws4_request, SignedHeaders=host, Signature=x", ""), protoSTS},
		{req("", "AWSEC2InstanceConnectService.SendSSHPublicKey"), protoEIC},
		{req("", "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.LookupEvents"), protoCT},
		{req("garbage", ""), protoIAM},
	} {
		if got := guessProtocol(tt.r); got != tt.want {
			t.Errorf("%v: %v, want %v", tt.r.Header, got, tt.want)
		}
	}
}

// FuzzParams: any form decodes without panicking, and lists stay bounded.
func FuzzParams(f *testing.F) {
	f.Add("Action=CreateUser&UserName=a&Tags.member.1.Key=k&Filter.1.Name=x&Filter.1.Value.1=y")
	f.Add("ContextEntries.member.1.ContextKeyName=a&ContextEntries.member.1.ContextKeyValues.member.1=b&MaxItems=-1")
	f.Fuzz(func(t *testing.T, q string) {
		v, err := url.ParseQuery(q)
		if err != nil {
			return
		}
		p := newParams(v)
		if len(p.members("ActionNames", 5)) > 5 || len(p.tags("Tags.member", 5)) > 5 || len(p.filters(5)) > 5 || len(p.contextEntries(5)) > 5 {
			t.Fatal("a list exceeded its bound")
		}
		p.integer("MaxItems", 1, 1, 10)
		p.boolean("X", false)
		p.tagMatches("Tag", 5)
		_ = p.err()
		_ = p.record()
	})
}
