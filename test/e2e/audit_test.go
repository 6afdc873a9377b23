package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	cttypes "github.com/aws/aws-sdk-go-v2/service/cloudtrail/types"

	"github.com/kaginashi/kaginashi/internal/store"

	"github.com/kaginashi/kaginashi/test/e2e/harness"
)

// ctRecord is the part of a CloudTrail event the tests look at.
type ctRecord struct {
	EventVersion string `json:"eventVersion"`
	EventID      string `json:"eventID"`
	EventName    string `json:"eventName"`
	EventSource  string `json:"eventSource"`
	EventTime    string `json:"eventTime"`
	AWSRegion    string `json:"awsRegion"`
	SourceIP     string `json:"sourceIPAddress"`
	UserAgent    string `json:"userAgent"`
	ErrorCode    string `json:"errorCode"`
	ErrorMessage string `json:"errorMessage"`
	RequestID    string `json:"requestID"`
	ReadOnly     bool   `json:"readOnly"`
	Recipient    string `json:"recipientAccountId"`
	UserIdentity struct {
		Type        string `json:"type"`
		ARN         string `json:"arn"`
		AccountID   string `json:"accountId"`
		AccessKeyID string `json:"accessKeyId"`
		UserName    string `json:"userName"`
	} `json:"userIdentity"`
	RequestParameters   map[string]any `json:"requestParameters"`
	ResponseElements    map[string]any `json:"responseElements"`
	AdditionalEventData map[string]any `json:"additionalEventData"`
}

// lookup pages through LookupEvents and returns the events with their raw
// CloudTrailEvent text.
func (e *env) lookup(t *testing.T, in *cloudtrail.LookupEventsInput) ([]ctRecord, []string) {
	t.Helper()
	var recs []ctRecord
	var raws []string
	for p := cloudtrail.NewLookupEventsPaginator(e.CT(e.Root), in); p.HasMorePages(); {
		page := harness.Must(p.NextPage(context.Background()))(t)
		for _, ev := range page.Events {
			raw := aws.ToString(ev.CloudTrailEvent)
			var r ctRecord
			if err := json.Unmarshal([]byte(raw), &r); err != nil {
				t.Fatalf("CloudTrailEvent is not JSON: %v\n%s", err, raw)
			}
			if r.EventID != aws.ToString(ev.EventId) || r.EventName != aws.ToString(ev.EventName) || r.EventSource != aws.ToString(ev.EventSource) {
				t.Errorf("LookupEvents fields %q %q %q disagree with the CloudTrailEvent %+v", aws.ToString(ev.EventId), aws.ToString(ev.EventName), aws.ToString(ev.EventSource), r)
			}
			recs = append(recs, r)
			raws = append(raws, raw)
		}
	}
	return recs, raws
}

func eventAttr(k cttypes.LookupAttributeKey, v string) []cttypes.LookupAttribute {
	return []cttypes.LookupAttribute{{AttributeKey: k, AttributeValue: aws.String(v)}}
}

func testCloudTrail(t *testing.T, e *env) {
	ctx := context.Background()
	creates, _ := e.lookup(t, &cloudtrail.LookupEventsInput{LookupAttributes: eventAttr(cttypes.LookupAttributeKeyEventName, "CreateUser")})
	var bob *ctRecord
	for i, r := range creates {
		if r.EventName != "CreateUser" {
			t.Errorf("EventName filter returned %s", r.EventName)
		}
		if r.RequestParameters["userName"] == "u-bob" && r.ErrorCode == "" {
			bob = &creates[i]
		}
	}
	if bob == nil {
		t.Fatalf("no CreateUser event for u-bob among %d", len(creates))
	}
	if bob.EventSource != "iam.amazonaws.com" || bob.UserIdentity.Type != "Root" || bob.UserIdentity.AccountID != e.Account ||
		bob.UserIdentity.ARN != "arn:aws:iam::"+e.Account+":root" || bob.UserIdentity.AccessKeyID != e.Root.ID ||
		bob.SourceIP != "127.0.0.1" || !strings.Contains(bob.UserAgent, "aws-sdk-go-v2") || bob.ReadOnly || bob.Recipient != e.Account ||
		!uuidRE.MatchString(bob.RequestID) || bob.EventVersion == "" {
		t.Errorf("CreateUser event: %+v", *bob)
	}
	if _, err := time.Parse(time.RFC3339, bob.EventTime); err != nil {
		t.Errorf("eventTime %q: %v", bob.EventTime, err)
	}
	if u, _ := bob.ResponseElements["user"].(map[string]any); u["userName"] != "u-bob" {
		t.Errorf("CreateUser responseElements: %v", bob.ResponseElements)
	}

	// By user: the seed user's push and its refused ListUsers.
	seed, _ := e.lookup(t, &cloudtrail.LookupEventsInput{LookupAttributes: eventAttr(cttypes.LookupAttributeKeyUsername, "seed-user")})
	var pushed, denied bool
	for _, r := range seed {
		if r.UserIdentity.UserName != "seed-user" || r.UserIdentity.Type != "IAMUser" {
			t.Errorf("Username filter returned %+v", r.UserIdentity)
		}
		if r.EventName == "SendSSHPublicKey" && r.ErrorCode == "" && r.EventSource == "ec2-instance-connect.amazonaws.com" && r.RequestParameters["instanceOSUser"] != nil {
			pushed = true
		}
		if r.EventName == "ListUsers" && r.ErrorCode == "AccessDenied" && strings.Contains(r.ErrorMessage, "iam:ListUsers") {
			denied = true
		}
	}
	if !pushed || !denied {
		t.Errorf("seed-user's events: push %v, denied ListUsers %v, among %d", pushed, denied, len(seed))
	}

	// Time ranges.
	future, _ := e.lookup(t, &cloudtrail.LookupEventsInput{StartTime: aws.Time(time.Now().Add(time.Hour))})
	if len(future) != 0 {
		t.Errorf("events from the future: %d", len(future))
	}
	recent := harness.Must(e.CT(e.Root).LookupEvents(ctx, &cloudtrail.LookupEventsInput{StartTime: aws.Time(e.StartedAt.Add(-time.Minute)), MaxResults: aws.Int32(5)}))(t)
	if len(recent.Events) != 5 || recent.NextToken == nil {
		t.Errorf("MaxResults 5: %d events, next %v", len(recent.Events), recent.NextToken)
	}

	// Errors.
	_, err := e.CT(e.Root).LookupEvents(ctx, &cloudtrail.LookupEventsInput{LookupAttributes: eventAttr(cttypes.LookupAttributeKeyResourceType, "AWS::EC2::Instance")})
	harness.WantTyped[*cttypes.InvalidLookupAttributesException](t, err, 400)
	_, err = e.CT(e.Root).LookupEvents(ctx, &cloudtrail.LookupEventsInput{NextToken: aws.String("not-a-token")})
	harness.WantTyped[*cttypes.InvalidNextTokenException](t, err, 400)
	nobody := e.newUser(t, "ct-nobody")
	_, err = e.CT(nobody).LookupEvents(ctx, &cloudtrail.LookupEventsInput{})
	harness.WantCode(t, err, "AccessDeniedException", 400)
}

// eventSources maps the SDK's service IDs to CloudTrail event sources.
var eventSources = map[string]string{
	"IAM": "iam.amazonaws.com", "STS": "sts.amazonaws.com", "EC2": "ec2.amazonaws.com",
	"EC2 Instance Connect": "ec2-instance-connect.amazonaws.com", "CloudTrail": "cloudtrail.amazonaws.com",
}

func testAudit(t *testing.T, e *env) {
	calls := e.Calls.All()
	if len(calls) < 100 {
		t.Fatalf("only %d calls recorded: the earlier tests did not run", len(calls))
	}
	recs, raws := e.lookup(t, &cloudtrail.LookupEventsInput{})
	byRequest := map[string]ctRecord{}
	eventIDs := map[string]bool{}
	for _, r := range recs {
		if eventIDs[r.EventID] {
			t.Errorf("event %s listed twice", r.EventID)
		}
		eventIDs[r.EventID] = true
		if _, dup := byRequest[r.RequestID]; dup {
			t.Errorf("two events for request %s", r.RequestID)
		}
		byRequest[r.RequestID] = r
	}

	// Every call the tests made, allowed or refused, is there as it was
	// answered.
	missing := 0
	for _, c := range calls {
		if c.RequestID == "" {
			t.Errorf("%s %s answered %d %s without a request ID", c.Service, c.Op, c.Status, c.Code)
			continue
		}
		r, ok := byRequest[c.RequestID]
		if !ok {
			if missing++; missing <= 10 {
				t.Errorf("no audit event for %s %s by %q (%d %s, request %s)", c.Service, c.Op, c.Who, c.Status, c.Code, c.RequestID)
			}
			continue
		}
		where := c.Service + " " + c.Op + " " + c.RequestID
		if c.Op != "-" && r.EventName != c.Op {
			t.Errorf("%s: eventName %q", where, r.EventName)
		}
		if src, known := eventSources[c.Service]; known && r.EventSource != src {
			t.Errorf("%s: eventSource %q, want %q", where, r.EventSource, src)
		}
		if r.ErrorCode != c.Code {
			t.Errorf("%s: errorCode %q, the caller got %q", where, r.ErrorCode, c.Code)
		}
		if c.Code != "" && r.ErrorMessage == "" {
			t.Errorf("%s: errorCode %s without errorMessage", where, c.Code)
		}
		id := r.UserIdentity
		switch c.Who {
		case "root":
			if id.Type != "Root" || id.ARN != "arn:aws:iam::"+e.Account+":root" || id.AccountID != e.Account || id.AccessKeyID != e.Root.ID {
				t.Errorf("%s: userIdentity %+v, want root", where, id)
			}
		case "":
			if id.Type != "Unknown" || id.UserName != "" {
				t.Errorf("%s: userIdentity %+v, want Unknown", where, id)
			}
		default:
			if id.Type != "IAMUser" || id.UserName != c.Who || !strings.HasSuffix(id.ARN, ":user/"+c.Who) || id.AccessKeyID == "" || id.AccountID != e.Account {
				t.Errorf("%s: userIdentity %+v, want user %s", where, id, c.Who)
			}
		}
	}
	if missing > 10 {
		t.Errorf("... %d calls without an audit event in all", missing)
	}

	// The aws CLI's calls too.
	for _, n := range e.cliEvents {
		parts := strings.Split(n, "|")
		found := false
		for _, r := range recs {
			if r.EventName == parts[0] && r.ErrorCode == parts[2] && strings.HasPrefix(r.UserAgent, "aws-cli/") &&
				(parts[1] == "root" && r.UserIdentity.Type == "Root" || r.UserIdentity.UserName == parts[1]) {
				found = true
			}
		}
		if !found {
			t.Errorf("no audit event for the aws CLI's %s by %s (errorCode %q)", parts[0], parts[1], parts[2])
		}
	}

	// Secrets never reach the audit trail, the logs or the database file.
	if len(e.secrets) < 5 {
		t.Fatalf("only %d secrets collected", len(e.secrets))
	}
	var stored []string
	st := e.st
	for cursor := ""; ; {
		evs, next, err := st.LookupAudit(context.Background(), store.AuditFilter{Limit: 500, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range evs {
			stored = append(stored, string(ev.Record))
		}
		if next == "" {
			break
		}
		cursor = next
	}
	if len(stored) < len(recs) {
		t.Errorf("the store holds %d audit records, LookupEvents returned %d", len(stored), len(recs))
	}
	// The JSON-lines sink has the same events.
	sink, err := os.ReadFile(e.auditLog)
	if err != nil {
		t.Fatal(err)
	}
	inSink := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(string(sink)), "\n") {
		var r ctRecord
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("--audit-log line is not JSON: %v\n%s", err, line)
		}
		inSink[r.EventID] = true
	}
	for _, r := range recs {
		if !inSink[r.EventID] {
			t.Errorf("event %s (%s) is not in the --audit-log file", r.EventID, r.EventName)
			break
		}
	}
	haystacks := map[string]string{
		"LookupEvents":         strings.Join(raws, "\n"),
		"stored audit records": strings.Join(stored, "\n"),
		"--audit-log file":     string(sink),
		"server stderr":        e.Stderr.String(),
		"server stdout":        e.Stdout.String(),
	}
	if e.Engine == "sqlite" {
		var db []byte
		for _, f := range []string{"kaginashi.db", "kaginashi.db-wal"} {
			b, _ := os.ReadFile(filepath.Join(e.Cfg.DataDir, f))
			db = append(db, b...)
		}
		if len(db) == 0 {
			t.Error("no database file")
		}
		haystacks["database files"] = string(db)
	}
	for where, text := range haystacks {
		for _, s := range e.secrets {
			if strings.Contains(text, s) {
				t.Errorf("a secret (%.4s...) appears in the %s", s, where)
			}
		}
	}
	// CreateAccessKey and CreateLoginProfile are recorded, redacted.
	for _, r := range recs {
		if r.EventName == "CreateLoginProfile" && r.ErrorCode == "" && r.RequestParameters["password"] != "HIDDEN_DUE_TO_SECURITY_REASONS" {
			t.Errorf("CreateLoginProfile requestParameters: %v", r.RequestParameters)
		}
		if r.EventName == "CreateAccessKey" && r.ErrorCode == "" {
			k, _ := r.ResponseElements["accessKey"].(map[string]any)
			if k["secretAccessKey"] != "HIDDEN_DUE_TO_SECURITY_REASONS" || k["accessKeyId"] == "" {
				t.Errorf("CreateAccessKey responseElements: %v", r.ResponseElements)
			}
		}
	}

	t.Run("kaginashi audit lookup", func(t *testing.T) { testAuditCommand(t, e) })
}

// testAuditCommand runs `kaginashi audit lookup --output json` with the
// same environment as the aws CLI.
func testAuditCommand(t *testing.T, e *env) {
	dir := t.TempDir()
	writeCredentials(t, filepath.Join(dir, "credentials"), map[string]harness.Creds{"kaginashi-root": e.Root})
	env := e.cliEnv(t, dir, "AWS_PROFILE=kaginashi-root", "AWS_ENDPOINT_URL="+e.URL(), "AWS_CA_BUNDLE="+e.CAPath())
	lookup := func(args ...string) []ctRecord {
		t.Helper()
		r := run(t, env, harness.Kaginashi, append([]string{"audit", "lookup", "--output", "json"}, args...)...)
		if r.code != 0 {
			t.Fatalf("kaginashi audit lookup %v: exit %d\n%s", args, r.code, r.stderr)
		}
		var out struct{ Events []ctRecord }
		if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
			t.Fatalf("%v\n%s", err, r.stdout)
		}
		return out.Events
	}

	pushes := lookup("--event-name", "SendSSHPublicKey", "--max-items", "1000")
	var ok, refused bool
	for _, r := range pushes {
		if r.EventName != "SendSSHPublicKey" {
			t.Errorf("--event-name SendSSHPublicKey returned %s", r.EventName)
		}
		if r.UserIdentity.UserName == "seed-user" && r.ErrorCode == "" {
			ok = true
		}
		if r.UserIdentity.UserName == "seed-one" && r.ErrorCode == "AuthException" && r.ErrorMessage != "" {
			refused = true
		}
	}
	if !ok || !refused {
		t.Errorf("kaginashi audit lookup --event-name SendSSHPublicKey: seed-user's success %v, seed-one's AuthException %v (%d events)", ok, refused, len(pushes))
	}
	mine := lookup("--user", "seed-denyroot", "--since", "1h")
	var deny bool
	for _, r := range mine {
		if r.UserIdentity.UserName != "seed-denyroot" {
			t.Errorf("--user seed-denyroot returned %+v", r.UserIdentity)
		}
		if r.EventName == "SendSSHPublicKey" && r.ErrorCode == "AuthException" && r.RequestParameters["instanceOSUser"] == "root" {
			deny = true
		}
	}
	if !deny {
		t.Errorf("kaginashi audit lookup --user seed-denyroot: no refused push as root among %d events", len(mine))
	}
	// The table is read on a terminal: an event name a caller wrote (an
	// unknown action carrying an escape sequence) is shown escaped, never
	// as the sequence itself.
	hostile := "Evil\x1b]0;owned\x07Action"
	body := url.Values{"Action": {hostile}, "Version": {"2010-05-08"}}.Encode()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, e.URL()+"/", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	sum := sha256.Sum256([]byte(body))
	if err := v4.NewSigner().SignHTTP(t.Context(), aws.Credentials{AccessKeyID: e.Root.ID, SecretAccessKey: e.Root.Secret}, req, hex.EncodeToString(sum[:]), "iam", e.Region, time.Now()); err != nil {
		t.Fatal(err)
	}
	res, err := e.HTTPClient(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusBadRequest {
		t.Fatalf("Action=%q: HTTP %d, want 400 (InvalidAction)", hostile, res.StatusCode)
	}
	table := run(t, env, harness.Kaginashi, "audit", "lookup", "--output", "table", "--since", "1h", "--max-items", "1000")
	if table.code != 0 {
		t.Fatalf("kaginashi audit lookup --output table: exit %d\n%s", table.code, table.stderr)
	}
	var evil []string
	for _, l := range strings.Split(table.stdout, "\n") {
		if strings.Contains(l, "Evil") {
			evil = append(evil, l)
		}
	}
	if strings.ContainsAny(table.stdout, "\x1b\x07") || len(evil) != 1 || !strings.Contains(evil[0], `"iam:Evil\x1b]0;owned\aAction"`) {
		t.Errorf("kaginashi audit lookup --output table shows the hostile event name as %q, want it escaped, once (control characters in the table: %v)",
			evil, strings.ContainsAny(table.stdout, "\x1b\x07"))
	}

	both := lookup("--event-name", "SendSSHPublicKey", "--user", "seed-user", "--max-items", "1000")
	if len(both) == 0 {
		t.Error("--event-name SendSSHPublicKey --user seed-user: no events")
	}
	for _, r := range both {
		if r.EventName != "SendSSHPublicKey" || r.UserIdentity.UserName != "seed-user" {
			t.Errorf("--event-name SendSSHPublicKey --user seed-user returned %s by %q", r.EventName, r.UserIdentity.UserName)
		}
	}
}
