package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/kaginashi/kaginashi/test/e2e/harness"
)

// TestUnauthenticatedFloodAudit: a burst of unsigned calls from one
// client on a real server: the first BURST are audited one by one, the
// rest (and a badly signed call) are answered the same and summed up in
// one UnauthenticatedCallsSuppressed event, recorded at shutdown, whose
// count and codes are right; the Prometheus counter agrees; a signed call
// from the same address is audited normally. Other methods on / get 405
// with Allow in the API's error shape.
func TestUnauthenticatedFloodAudit(t *testing.T) {
	t.Parallel()
	const burst, unsigned = 10, 60
	auditLog := filepath.Join(t.TempDir(), "audit.jsonl")
	// A rate of one call in 1,000 s: no token comes back during the test.
	// Summaries only at shutdown, so that there is exactly one.
	p := harness.StartProc(t, harness.ServerConfig{DataDir: filepath.Join(t.TempDir(), "data"), Args: []string{
		"--audit-log", auditLog, "--rate-limit=-1", "--metrics-listen", "127.0.0.1:0",
		"--unauthenticated-audit-rate", "0.001", "--unauthenticated-audit-burst", "10",
		"--unauthenticated-audit-summary-every", "1h",
	}})
	s := harness.NewServer(t, p, "sqlite")
	logOnFailure(t, p)
	addr := metricsAddr(t, p)
	ctx := context.Background()

	post := func(method, body string, hdr map[string]string) (int, http.Header, string) {
		req, err := http.NewRequest(method, s.URL()+"/", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := s.HTTP.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, resp.Header, string(b)
	}
	form := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
	for i := range unsigned {
		code, _, body := post(http.MethodPost, "Action=GetCallerIdentity&Version=2011-06-15", form)
		if code != http.StatusForbidden || !strings.Contains(body, "<Code>MissingAuthenticationToken</Code>") {
			t.Fatalf("unsigned call %d: %d %s, want 403 MissingAuthenticationToken whether audited or not", i, code, body)
		}
	}
	// A bad signature is refused before a principal is known too.
	_, err := s.STS(harness.Creds{Who: "forger", ID: s.Root.ID, Secret: "not-the-secret"}).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	harness.WantCode(t, err, "SignatureDoesNotMatch", http.StatusForbidden)
	// A signed call from the same address is audited as ever.
	harness.Must(s.STS(s.Root).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{}))(t)

	// Other methods on /: 405, Allow, the error in a shape a client reads.
	for _, tc := range []struct {
		method string
		hdr    map[string]string
		want   string
	}{
		{http.MethodPut, form, `<Code>MethodNotAllowed</Code>`},
		{http.MethodDelete, map[string]string{"X-Amz-Target": "AWSEC2InstanceConnectService.SendSSHPublicKey", "Content-Type": "application/x-amz-json-1.1"}, `"__type":"MethodNotAllowed"`},
		{http.MethodPatch, nil, `<Error><Code>MethodNotAllowed</Code>`},
		{http.MethodOptions, nil, `<Error><Code>MethodNotAllowed</Code>`},
	} {
		code, hdr, body := post(tc.method, "", tc.hdr)
		if code != http.StatusMethodNotAllowed || hdr.Get("Allow") != "GET, HEAD, POST" || !strings.Contains(body, tc.want) {
			t.Errorf("%s /: %d, Allow %q\n%s\nwant 405, Allow GET, HEAD, POST, and %s", tc.method, code, hdr.Get("Allow"), body, tc.want)
		}
	}

	suppressed := unsigned - burst + 1
	if code, body := get(t, http.DefaultClient, "http://"+addr+"/metrics"); code != 200 ||
		!strings.Contains(body, "kaginashi_unauthenticated_calls_suppressed_total "+strconv.Itoa(suppressed)+"\n") {
		t.Errorf("metrics: want kaginashi_unauthenticated_calls_suppressed_total %d\n%s", suppressed, linesWith(body, "unauthenticated"))
	}

	p.Stop(t) // the summary is recorded at shutdown

	var audited, signed int
	var summaries []map[string]any
	for _, ev := range harness.AuditEvents(t, auditLog, "GetCallerIdentity") {
		if ev["sourceIPAddress"] != "127.0.0.1" {
			t.Errorf("event from %v, want 127.0.0.1", ev["sourceIPAddress"])
		}
		switch ev["errorCode"] {
		case "MissingAuthenticationToken":
			audited++
		case nil:
			signed++
		default:
			t.Errorf("GetCallerIdentity audited with %v: the bad signature was over the budget", ev["errorCode"])
		}
	}
	if audited != burst || signed != 1 {
		t.Errorf("%d unsigned calls audited one by one (want the burst, %d) and %d signed (want 1)", audited, burst, signed)
	}
	summaries = harness.AuditEvents(t, auditLog, "UnauthenticatedCallsSuppressed")
	if len(summaries) != 1 {
		t.Fatalf("%d summaries, want 1: %v", len(summaries), summaries)
	}
	sum := summaries[0]
	resp, _ := sum["responseElements"].(map[string]any)
	codes, _ := resp["errorCodes"].(map[string]any)
	if sum["eventSource"] != "kaginashi" || sum["eventType"] != "AwsServiceEvent" || sum["sourceIPAddress"] != "127.0.0.1" ||
		resp["suppressedCount"] != float64(suppressed) || codes["MissingAuthenticationToken"] != float64(unsigned-burst) || codes["SignatureDoesNotMatch"] != 1.0 ||
		resp["firstEventTime"] == nil || resp["lastEventTime"] == nil {
		b, _ := json.MarshalIndent(sum, "", "  ")
		t.Errorf("summary, want %d calls from 127.0.0.1 (%d MissingAuthenticationToken, 1 SignatureDoesNotMatch):\n%s", suppressed, unsigned-burst, b)
	}
}

// linesWith is the lines of s that hold sub.
func linesWith(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
