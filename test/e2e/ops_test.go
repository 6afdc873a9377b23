package e2e

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	eictypes "github.com/aws/aws-sdk-go-v2/service/ec2instanceconnect/types"

	"github.com/kaginashi/kaginashi/internal/store"
	"github.com/kaginashi/kaginashi/test/e2e/harness"
)

var metricsAddrRE = regexp.MustCompile(`msg="metrics serving" listen=(\S+)`)

// metricsAddr waits for the server's "metrics serving" line.
func metricsAddr(t *testing.T, p *harness.Proc) string {
	t.Helper()
	deadline := time.Now().Add(harness.Bound(10 * time.Second))
	for time.Now().Before(deadline) {
		if m := metricsAddrRE.FindStringSubmatch(p.Stderr.String()); m != nil {
			return m[1]
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no metrics listener in the log:\n%s", p.Stderr)
	return ""
}

// logOnFailure shows the server's log when the test fails.
func logOnFailure(t *testing.T, p *harness.Proc) {
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("server log:\n%s", harness.Tail(p.Stderr.String(), 60))
		}
	})
}

// waitLog waits for a line in the server's log.
func waitLog(t *testing.T, p *harness.Proc, want string) {
	t.Helper()
	deadline := time.Now().Add(harness.Bound(10 * time.Second))
	for !strings.Contains(p.Stderr.String(), want) {
		if time.Now().After(deadline) || p.Exited() {
			t.Fatalf("no %q in the server's log:\n%s", want, p.Stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func get(t *testing.T, c *http.Client, url string) (int, string) {
	t.Helper()
	res, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, string(b)
}

// TestMetrics scrapes a real server's /metrics, on its own listener, after
// a real SendSSHPublicKey (allowed) and one refused by policy.
func TestMetrics(t *testing.T) {
	s := harness.StartServer(t, "sqlite", "--metrics-listen", "127.0.0.1:0", "--rate-limit=-1")
	logOnFailure(t, s.Proc)
	addr := metricsAddr(t, s.Proc)
	ctx := context.Background()
	st := s.OpenStore(t)
	now := time.Now().UTC().Truncate(time.Second)
	const id = "i-0e2e0000000000a01"
	if err := st.PutInstance(ctx, store.Instance{ID: id, State: store.StateRunning, LaunchTime: now, LastSeen: now,
		Hostname: "metrics-1", PrivateIP: "10.9.0.1", Platform: "Linux/UNIX", Architecture: "x86_64", DefaultUser: "admin"}); err != nil {
		t.Fatal(err)
	}
	s.ConnectFakeAgent(t, st, id)
	key := harness.Ed25519Key(t)
	out, err := sendKey(s.EIC(s.Root), id, "admin", key)
	if err != nil || !out.Success {
		t.Fatalf("SendSSHPublicKey as root: %v", err)
	}
	// A user without policy is denied.
	ic := s.IAM(s.Root)
	harness.Must(ic.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("metrics-nobody")}))(t)
	ak := harness.Must(ic.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String("metrics-nobody")}))(t).AccessKey
	nobody := harness.Creds{Who: "metrics-nobody", ID: aws.ToString(ak.AccessKeyId), Secret: aws.ToString(ak.SecretAccessKey)}
	_, err = sendKey(s.EIC(nobody), id, "admin", key)
	harness.WantTyped[*eictypes.AuthException](t, err, 403)
	// An operation no one has: its name must not become a label.
	_, _ = s.STS(s.Root).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})

	code, body := get(t, http.DefaultClient, "http://"+addr+"/metrics")
	if code != 200 {
		t.Fatalf("GET /metrics: %d\n%s", code, body)
	}
	for _, want := range []string{
		`kaginashi_api_requests_total{action="SendSSHPublicKey",code="OK"} 1`,
		`kaginashi_api_requests_total{action="SendSSHPublicKey",code="AuthException"} 1`,
		`kaginashi_api_requests_total{action="GetCallerIdentity",code="OK"} 1`,
		`kaginashi_api_request_duration_seconds_count{action="SendSSHPublicKey"} 2`,
		`kaginashi_keys_pushed_total 1`,
		`kaginashi_authorization_decisions_total{decision="deny"} 1`,
		`kaginashi_agents_connected 1`,
		`kaginashi_tunnels_open 0`,
		`kaginashi_audit_queue_depth 0`,
		`kaginashi_audit_write_duration_seconds_count `,
		`kaginashi_tls_certificate_expiry_timestamp_seconds `,
		`kaginashi_build_info{goversion="go`,
		"go_goroutines ",
		"process_resident_memory_bytes ",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	for _, leak := range []string{id, "metrics-nobody", "10.9.0.1", s.Root.ID, "127.0.0.1"} {
		if strings.Contains(body, leak) {
			t.Errorf("/metrics carries %q: instance IDs, users and addresses must not be labels", leak)
		}
	}
	// Not on the public API listener.
	if code, body := get(t, s.HTTP, s.URL()+"/metrics"); code == 200 && strings.Contains(body, "kaginashi_") {
		t.Error("the API listener serves /metrics")
	}
}

// TestAuditRetention: a server restarted with a short retention deletes
// the older events at start, and records that it did.
func TestAuditRetention(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	p := harness.StartProc(t, harness.ServerConfig{DataDir: dir})
	s := harness.NewServer(t, p, "sqlite")
	logOnFailure(t, p)
	ctx := context.Background()
	for range 3 {
		harness.Must(s.STS(s.Root).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{}))(t)
	}
	p.Stop(t)
	time.Sleep(1500 * time.Millisecond)

	p2 := harness.StartProc(t, harness.ServerConfig{DataDir: dir, Args: []string{"--audit-retention", "1s"}})
	t.Cleanup(func() { p2.Stop(t) })
	waitLog(t, p2, "audit retention: deleted old events")
	if !strings.Contains(p2.Stderr.String(), "count=3") {
		t.Errorf("the retention log line does not count 3 events:\n%s", p2.Stderr)
	}
	st := s.OpenStore(t)
	evs, _, err := st.LookupAudit(ctx, store.AuditFilter{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range evs {
		names = append(names, e.Name)
	}
	if len(evs) != 1 || evs[0].Name != "DeleteAuditEvents" || !strings.Contains(string(evs[0].Record), `"deletedCount":3`) {
		t.Fatalf("events after retention: %v\n%v", names, evs)
	}
}

// TestAuditLogReopensOnHangup: after logrotate moves the JSON-lines file,
// SIGHUP makes the server start a new one.
func TestAuditLogReopensOnHangup(t *testing.T) {
	logPath := filepath.Join(t.TempDir(), "audit.jsonl")
	s := harness.StartServer(t, "sqlite", "--audit-log", logPath)
	logOnFailure(t, s.Proc)
	ctx := context.Background()
	harness.Must(s.STS(s.Root).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{}))(t)
	if err := os.Rename(logPath, logPath+".1"); err != nil {
		t.Fatal(err)
	}
	if err := s.Cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitLog(t, s.Proc, "SIGHUP: reopening the audit log")
	deadline := time.Now().Add(harness.Bound(10 * time.Second))
	for {
		if _, err := os.Stat(logPath); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no new %s after SIGHUP\n%s", logPath, s.Stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	harness.Must(s.IAM(s.Root).ListUsers(ctx, &iam.ListUsersInput{}))(t)
	if n, m := len(harness.AuditEvents(t, logPath+".1", "GetCallerIdentity")), len(harness.AuditEvents(t, logPath+".1", "ListUsers")); n != 1 || m != 0 {
		t.Errorf("rotated file: %d GetCallerIdentity, %d ListUsers; want 1 and 0", n, m)
	}
	if n, m := len(harness.AuditEvents(t, logPath, "GetCallerIdentity")), len(harness.AuditEvents(t, logPath, "ListUsers")); n != 0 || m != 1 {
		t.Errorf("new file: %d GetCallerIdentity, %d ListUsers; want 0 and 1", n, m)
	}
}
