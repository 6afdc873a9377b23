package agentmetrics

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/kaginashi/kaginashi/internal/agent"
)

func TestCountersAndBoundedReasons(t *testing.T) {
	r := New("1.2.3")
	r.KeyRecord("")
	r.KeyRecord(agent.RefusedSignature)
	r.KeyRecord(agent.RefusedSignature)
	r.KeyRecord("alice's key AAAA: something new") // must not become a label
	r.Connection(true)
	r.Connection(false)
	r.Tunnel(true)
	r.TunnelBytes(true, 10)
	r.TunnelBytes(false, 7)
	r.TunnelBytes(false, -1)
	r.Revoke()
	r.SigningKeyRotated()

	want := `
# HELP kaginashi_agent_key_records_total Key records the server pushed: accepted, or refused with a reason (signature, instance, user, expired, malformed, withdrawn, storage, other).
# TYPE kaginashi_agent_key_records_total counter
kaginashi_agent_key_records_total{reason="",result="accepted"} 1
kaginashi_agent_key_records_total{reason="expired",result="refused"} 0
kaginashi_agent_key_records_total{reason="instance",result="refused"} 0
kaginashi_agent_key_records_total{reason="malformed",result="refused"} 0
kaginashi_agent_key_records_total{reason="other",result="refused"} 1
kaginashi_agent_key_records_total{reason="signature",result="refused"} 2
kaginashi_agent_key_records_total{reason="storage",result="refused"} 0
kaginashi_agent_key_records_total{reason="user",result="refused"} 0
kaginashi_agent_key_records_total{reason="withdrawn",result="refused"} 0
`
	if err := testutil.GatherAndCompare(r.Gatherer(), strings.NewReader(want), "kaginashi_agent_key_records_total"); err != nil {
		t.Error(err)
	}
	for name, v := range map[string]float64{
		"kaginashi_agent_connections_total":           2,
		"kaginashi_agent_tunnels_total":               1,
		"kaginashi_agent_tunnel_bytes_total":          17,
		"kaginashi_agent_revokes_total":               1,
		"kaginashi_agent_signing_key_rotations_total": 1,
	} {
		if got := sum(t, r.Gatherer(), name); got != v {
			t.Errorf("%s = %v, want %v", name, got, v)
		}
	}
	if got := testutil.ToFloat64(r.bytesOut); got != 7 {
		t.Errorf("bytes out = %v, want 7 (a negative count must not subtract)", got)
	}
}

func TestWatchReadsAgentAtScrape(t *testing.T) {
	r := New("dev")
	st := agent.Stats{}
	r.Watch(func() agent.Stats { return st })
	if got := sum(t, r.Gatherer(), "kaginashi_agent_connected"); got != 0 {
		t.Errorf("connected = %v before connecting", got)
	}
	beat := time.Unix(1_800_000_000, 500_000_000)
	st = agent.Stats{Connected: true, LastBeat: beat, ClockSkew: -1500 * time.Millisecond, SigningKeyError: true, ActiveKeyRecords: 3, TunnelsOpen: 2}
	for name, v := range map[string]float64{
		"kaginashi_agent_connected":                        1,
		"kaginashi_agent_last_heartbeat_timestamp_seconds": 1_800_000_000.5,
		"kaginashi_agent_clock_skew_seconds":               -1.5,
		"kaginashi_agent_signing_key_error":                1,
		"kaginashi_agent_active_key_records":               3,
		"kaginashi_agent_tunnels_open":                     2,
	} {
		if got := sum(t, r.Gatherer(), name); got != v {
			t.Errorf("%s = %v, want %v", name, got, v)
		}
	}
}

// TestOwnRegistry: nothing goes to the global default registry.
func TestOwnRegistry(t *testing.T) {
	r := New("dev")
	r.Watch(func() agent.Stats { return agent.Stats{} })
	mfs, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if strings.HasPrefix(mf.GetName(), "kaginashi_") {
			t.Errorf("%s is in the default registry", mf.GetName())
		}
	}
	if sum(t, r.Gatherer(), "kaginashi_agent_build_info") != 1 {
		t.Error("no build info")
	}
}

func TestListenServesMetrics(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := New("9.9.9")
	addr, err := r.Listen(ctx, "127.0.0.1:0", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + addr.String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `kaginashi_agent_build_info{goversion="`) || !strings.Contains(string(body), `version="9.9.9"`) {
		t.Errorf("GET /metrics: %d\n%s", resp.StatusCode, body)
	}
	if resp, err := http.Post("http://"+addr.String()+"/metrics", "text/plain", nil); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("POST /metrics: %d, want 405", resp.StatusCode)
		}
	}
	if _, err := r.Listen(ctx, addr.String(), slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "--metrics-listen") {
		t.Errorf("a second listener on the same address: %v", err)
	}
}

// sum adds a metric family's values (counters, gauges).
func sum(t *testing.T, g prometheus.Gatherer, name string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		total := 0.0
		for _, m := range mf.GetMetric() {
			switch {
			case m.Counter != nil:
				total += m.Counter.GetValue()
			case m.Gauge != nil:
				total += m.Gauge.GetValue()
			}
		}
		return total
	}
	t.Fatalf("no metric %s", name)
	return 0
}
