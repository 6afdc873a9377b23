package metrics

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/kaginashi/kaginashi/internal/audit"
)

func TestAPICall(t *testing.T) {
	r := New("v1.2.3")
	r.APICall("SendSSHPublicKey", "OK", DecisionAllow, false, 3*time.Millisecond)
	r.APICall("SendSSHPublicKey", "OK", DecisionAllow, false, 4*time.Millisecond)
	r.APICall("SendSSHPublicKey", "AuthException", DecisionDeny, false, time.Millisecond)
	r.APICall("GetUser", "OK", DecisionAllow, false, time.Millisecond)
	r.APICall("unknown", "InvalidClientTokenId", DecisionNone, false, time.Millisecond)
	r.APICall("CreateUser", "ServiceFailure", DecisionAllow, true, time.Millisecond)

	for _, c := range []struct {
		name string
		got  float64
		want float64
	}{
		{"SendSSHPublicKey OK", testutil.ToFloat64(r.requests.WithLabelValues("SendSSHPublicKey", "OK")), 2},
		{"SendSSHPublicKey AuthException", testutil.ToFloat64(r.requests.WithLabelValues("SendSSHPublicKey", "AuthException")), 1},
		{"allow", testutil.ToFloat64(r.allow), 4},
		{"deny", testutil.ToFloat64(r.deny), 1},
		{"keys pushed (only allowed, answered OK pushes)", testutil.ToFloat64(r.keys), 2},
		{"internal errors", testutil.ToFloat64(r.internal), 1},
	} {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	if n := testutil.CollectAndCount(r.latency); n != 4 {
		t.Errorf("latency series = %d, want one per action (4)", n)
	}
}

// TestCardinalityBound: past maxChildren pairs, new ones fold into
// action="other" instead of growing the registry.
func TestCardinalityBound(t *testing.T) {
	r := New("dev")
	for i := range maxChildren + 50 {
		r.APICall(fmt.Sprintf("Op%d", i), "OK", DecisionNone, false, 0)
	}
	if got := testutil.ToFloat64(r.requests.WithLabelValues("other", "OK")); got != 50 {
		t.Errorf(`action="other" = %v, want 50`, got)
	}
	if n := testutil.CollectAndCount(r.requests); n != maxChildren+1 {
		t.Errorf("series = %d, want %d", n, maxChildren+1)
	}
}

type fakeRecorder struct{ err error }

func (f fakeRecorder) Record(context.Context, *audit.Event) error {
	time.Sleep(time.Millisecond)
	return f.err
}

func TestTimeAudit(t *testing.T) {
	r := New("dev")
	if err := r.TimeAudit(fakeRecorder{}).Record(context.Background(), &audit.Event{}); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	if err := r.TimeAudit(fakeRecorder{boom}).Record(context.Background(), &audit.Event{}); !errors.Is(err, boom) {
		t.Fatalf("error %v, want the recorder's", err)
	}
	if got := testutil.ToFloat64(r.auditErrors); got != 1 {
		t.Errorf("audit errors = %v, want 1", got)
	}
	body := scrape(t, r)
	if !strings.Contains(body, "kaginashi_audit_write_duration_seconds_count 2\n") {
		t.Errorf("no audit latency count of 2 in:\n%s", grep(body, "kaginashi_audit"))
	}
}

// TestExposition: the handler serves every family, with build information
// and the Go and process collectors, and the names pass promlint.
func TestExposition(t *testing.T) {
	r := New("v9.9.9")
	r.APICall("SendSSHPublicKey", "OK", DecisionAllow, false, time.Millisecond)
	r.TunnelClosed(100, 2000)
	r.AuditDeleted(7)
	r.GaugeFunc("kaginashi_agents_connected", "Agents connected.", func() float64 { return 3 })
	body := scrape(t, r)
	for _, want := range []string{
		`kaginashi_api_requests_total{action="SendSSHPublicKey",code="OK"} 1`,
		`kaginashi_api_request_duration_seconds_bucket{action="SendSSHPublicKey",le="0.001"} 1`,
		`kaginashi_authorization_decisions_total{decision="allow"} 1`,
		`kaginashi_keys_pushed_total 1`,
		`kaginashi_tunnel_bytes_total{direction="up"} 100`,
		`kaginashi_tunnel_bytes_total{direction="down"} 2000`,
		`kaginashi_tunnels_closed_total 1`,
		`kaginashi_audit_events_deleted_total 7`,
		`kaginashi_agents_connected 3`,
		`kaginashi_build_info{goversion="go`,
		`version="v9.9.9"} 1`,
		"go_goroutines ",
		"process_resident_memory_bytes ",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("scrape lacks %q", want)
		}
	}
	problems, err := testutil.GatherAndLint(r.Gatherer())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		if strings.HasPrefix(p.Metric, "kaginashi_") {
			t.Errorf("promlint: %s: %s", p.Metric, p.Text)
		}
	}
}

func TestEnrollments(t *testing.T) {
	r := New("dev")
	h := r.Enrollments(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Query().Get("ok") == "" {
			http.Error(w, "no", http.StatusForbidden)
			return
		}
		_, _ = io.WriteString(w, "{}")
	})
	for _, q := range []string{"?ok=1", "", "?ok=1"} {
		h(httptest.NewRecorder(), httptest.NewRequest("POST", "/agent/v1/enroll"+q, nil))
	}
	// The server's name, and the deprecated one (the agents' prefix)
	// counting the same until it is removed.
	want := `
# HELP kaginashi_server_agent_enrollments_total Agent enrollment requests to this server by outcome.
# TYPE kaginashi_server_agent_enrollments_total counter
kaginashi_server_agent_enrollments_total{outcome="ok"} 2
kaginashi_server_agent_enrollments_total{outcome="refused"} 1
# HELP kaginashi_agent_enrollments_total Deprecated, removed in the next release: use kaginashi_server_agent_enrollments_total (the same count). Agent enrollment requests by outcome.
# TYPE kaginashi_agent_enrollments_total counter
kaginashi_agent_enrollments_total{outcome="ok"} 2
kaginashi_agent_enrollments_total{outcome="refused"} 1
`
	if err := testutil.GatherAndCompare(r.Gatherer(), strings.NewReader(want),
		"kaginashi_server_agent_enrollments_total", DeprecatedEnrollments); err != nil {
		t.Error(err)
	}
}

// TestListen: the separate listener serves GET /metrics only, and stops
// with its context.
func TestListen(t *testing.T) {
	r := New("dev")
	ctx, cancel := context.WithCancel(context.Background())
	addr, err := r.Listen(ctx, "127.0.0.1:0", slogDiscard())
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.Get("http://" + addr.String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !strings.Contains(string(b), "kaginashi_build_info") {
		t.Fatalf("GET /metrics: %d\n%s", res.StatusCode, b)
	}
	if res, err := http.Post("http://"+addr.String()+"/metrics", "text/plain", nil); err != nil || res.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /metrics: %v %v, want 405", res.StatusCode, err)
	}
	cancel()
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := http.Get("http://" + addr.String() + "/metrics")
		if err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the listener still serves after its context ended")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := r.Listen(context.Background(), "256.0.0.1:1", slogDiscard()); err == nil || !strings.Contains(err.Error(), "--metrics-listen") {
		t.Errorf("a bad address: %v, want an error naming --metrics-listen", err)
	}
}

func slogDiscard() *slog.Logger { return slog.New(slog.DiscardHandler) }

func scrape(t *testing.T, r *Registry) string {
	t.Helper()
	rec := httptest.NewRecorder()
	r.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 {
		t.Fatalf("scrape: %d", rec.Code)
	}
	return rec.Body.String()
}

func grep(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// BenchmarkAPICall is the instrumentation's cost per API call on the hot
// path (a resolved pair): it must not allocate.
func BenchmarkAPICall(b *testing.B) {
	r := New("dev")
	r.APICall("SendSSHPublicKey", "OK", DecisionAllow, false, time.Millisecond)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r.APICall("SendSSHPublicKey", "OK", DecisionAllow, false, time.Millisecond)
		}
	})
}

func TestAPICallDoesNotAllocate(t *testing.T) {
	r := New("dev")
	r.APICall("SendSSHPublicKey", "OK", DecisionAllow, false, time.Millisecond)
	if n := testing.AllocsPerRun(100, func() {
		r.APICall("SendSSHPublicKey", "OK", DecisionAllow, false, time.Millisecond)
	}); n != 0 {
		t.Errorf("APICall allocates %v times per call, want 0", n)
	}
}
