package agentmetrics

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/kaginashi/kaginashi/internal/agent"
	"github.com/kaginashi/kaginashi/internal/authkeys"
)

// parse reads the exposition with Prometheus's own parser, which also
// checks the format (names, escaping, one TYPE per family).
func parse(t *testing.T, r *Registry) map[string]*dto.MetricFamily {
	t.Helper()
	var b bytes.Buffer
	r.WriteText(&b)
	p := expfmt.NewTextParser(model.LegacyValidation)
	mfs, err := p.TextToMetricFamilies(&b)
	if err != nil {
		t.Fatalf("Prometheus's parser refuses the exposition: %v\n%s", err, b.String())
	}
	return mfs
}

// value is the series' value with these labels (pairs), -1 when absent.
func value(mfs map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	mf, ok := mfs[name]
	if !ok {
		return -1
	}
next:
	for _, m := range mf.GetMetric() {
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, lp := range m.GetLabel() {
				found = found || (lp.GetName() == labels[i] && lp.GetValue() == labels[i+1])
			}
			if !found && !(labels[i+1] == "" && !hasLabel(m, labels[i])) {
				continue next
			}
		}
		if m.Counter != nil {
			return m.Counter.GetValue()
		}
		return m.Gauge.GetValue()
	}
	return -1
}

func hasLabel(m *dto.Metric, name string) bool {
	for _, lp := range m.GetLabel() {
		if lp.GetName() == name {
			return true
		}
	}
	return false
}

func TestCountersAndBoundedReasons(t *testing.T) {
	r := New("1.2.3")
	r.KeyRecord("")
	r.KeyRecord(agent.RefusedSignature)
	r.KeyRecord(agent.RefusedSignature)
	r.KeyRecord("alice's key AAAA: something new") // must not become a label
	r.Connection(true)
	r.Connection(false)
	r.Connection(false)
	r.Tunnel(true)
	r.TunnelBytes(true, 10)
	r.TunnelBytes(false, 7)
	r.TunnelBytes(false, -1)
	r.Revoke()
	r.SigningKeyRotated()
	mfs := parse(t, r)

	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"kaginashi_agent_key_records_total", []string{"result", "accepted"}, 1},
		{"kaginashi_agent_key_records_total", []string{"result", "refused", "reason", "signature"}, 2},
		{"kaginashi_agent_key_records_total", []string{"result", "refused", "reason", "other"}, 1},
		{"kaginashi_agent_key_records_total", []string{"result", "refused", "reason", "expired"}, 0},
		{"kaginashi_agent_connections_total", []string{"result", "ok"}, 1},
		{"kaginashi_agent_connections_total", []string{"result", "error"}, 2},
		{"kaginashi_agent_tunnels_total", []string{"result", "ok"}, 1},
		{"kaginashi_agent_tunnels_total", []string{"result", "refused"}, 0},
		{"kaginashi_agent_tunnel_bytes_total", []string{"direction", "in"}, 10},
		{"kaginashi_agent_tunnel_bytes_total", []string{"direction", "out"}, 7},
		{"kaginashi_agent_revokes_total", nil, 1},
		{"kaginashi_agent_signing_key_rotations_total", nil, 1},
		{"kaginashi_agent_build_info", []string{"version", "1.2.3"}, 1},
	} {
		if got := value(mfs, c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	if n := len(mfs["kaginashi_agent_key_records_total"].GetMetric()); n != 1+len(agent.RefusalReasons) {
		t.Errorf("key_records_total has %d series, want %d (accepted and each fixed reason)", n, 1+len(agent.RefusalReasons))
	}
	if mfs["kaginashi_agent_key_records_total"].GetType() != dto.MetricType_COUNTER || mfs["kaginashi_agent_build_info"].GetType() != dto.MetricType_GAUGE {
		t.Error("wrong TYPE lines")
	}
	// Without Watch, no state gauges (rather than made-up zeros).
	if _, ok := mfs["kaginashi_agent_connected"]; ok {
		t.Error("state gauges without an agent to read")
	}
	if value(mfs, "process_resident_memory_bytes") <= 0 || value(mfs, "go_goroutines") <= 0 || value(mfs, "process_cpu_seconds_total") < 0 {
		t.Error("no process metrics")
	}
}

func TestWatchReadsAgentAtScrape(t *testing.T) {
	r := New("dev")
	st := agent.Stats{}
	r.Watch(func() agent.Stats { return st })
	if got := value(parse(t, r), "kaginashi_agent_connected"); got != 0 {
		t.Errorf("connected = %v before connecting", got)
	}
	st = agent.Stats{Connected: true, LastBeat: time.Unix(1_800_000_000, 500_000_000), ClockSkew: -1500 * time.Millisecond,
		SigningKeyError: true, ActiveKeyRecords: 3, TunnelsOpen: 2}
	mfs := parse(t, r)
	for name, v := range map[string]float64{
		"kaginashi_agent_connected":                        1,
		"kaginashi_agent_last_heartbeat_timestamp_seconds": 1_800_000_000.5,
		"kaginashi_agent_clock_skew_seconds":               -1.5,
		"kaginashi_agent_signing_key_error":                1,
		"kaginashi_agent_active_key_records":               3,
		"kaginashi_agent_tunnels_open":                     2,
	} {
		if got := value(mfs, name); got != v {
			t.Errorf("%s = %v, want %v", name, got, v)
		}
	}
}

// TestEscaping: a build version with quotes, backslashes or a newline
// still makes a valid exposition with the exact value.
func TestEscaping(t *testing.T) {
	v := "1.0 \"x\" \\ \ny"
	r := New(v)
	if got := value(parse(t, r), "kaginashi_agent_build_info", "version", v); got != 1 {
		t.Errorf("build_info with version %q: %v", v, got)
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
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain; version=0.0.4") ||
		!strings.Contains(string(body), `kaginashi_agent_build_info{version="9.9.9",goversion="go`) {
		t.Errorf("GET /metrics: %d %s\n%s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	for _, c := range []struct{ method, path string }{{"POST", "/metrics"}, {"GET", "/"}, {"GET", "/debug/pprof/"}} {
		req, _ := http.NewRequest(c.method, "http://"+addr.String()+c.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Errorf("%s %s: 200, want refused", c.method, c.path)
		}
	}
	if _, err := r.Listen(ctx, addr.String(), slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "--metrics-listen") {
		t.Errorf("a second listener on the same address: %v", err)
	}
	cancel()
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, err := http.Get("http://" + addr.String() + "/metrics")
		if err != nil {
			break
		}
		resp.Body.Close()
		if time.Now().After(deadline) {
			t.Fatal("the listener still serves after its context ended")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestServeRefusals: the AuthorizedKeysCommand's datagrams count; junk
// does not; a stale socket is replaced, anything else at its path is
// left alone; the socket is writable by the command's unprivileged user
// and gone when the agent stops.
func TestServeRefusals(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "keys"), 0o755); err != nil {
		t.Fatal(err)
	}
	sock := authkeys.RefusalSocketPath(dir)
	// A stale socket from an agent that did not stop cleanly.
	stale, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	stale.Close()
	r := New("test")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := r.ServeRefusals(ctx, dir, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatalf("ServeRefusals over a stale socket: %v", err)
	}
	if st, err := os.Stat(sock); err != nil || st.Mode().Perm() != 0o666 {
		t.Fatalf("socket: %v %v, want mode 0666", st.Mode(), err)
	}
	sig := authkeys.Refusals{}
	sig[0] = 2 // signature
	authkeys.SendRefusals(dir, &sig)
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	for _, junk := range []string{"akc1 alice=1", "akc1 signature=100001", "hello", "akc1 user=1 user=1"} {
		c.Write([]byte(junk))
	}
	c.Write([]byte("akc1 user=1 unreadable=1"))
	c.Close()
	want := map[string]float64{"signature": 2, "user": 1, "unreadable": 1, "expired": 0, "instance": 0, "malformed": 0}
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := map[string]float64{}
		mfs := parse(t, r)
		for _, m := range mfs["kaginashi_agent_authorized_keys_refusals_total"].GetMetric() {
			got[m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
		}
		if fmt.Sprint(got) == fmt.Sprint(want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("refusals %v, want %v", got, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	deadline = time.Now().Add(5 * time.Second)
	for {
		if _, err := os.Lstat(sock); os.IsNotExist(err) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the socket outlived the agent")
		}
		time.Sleep(10 * time.Millisecond)
	}

	// Something else at the path is not removed.
	if err := os.WriteFile(sock, []byte("not a socket"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := New("test").ServeRefusals(context.Background(), dir, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("ServeRefusals over a regular file: %v", err)
	}
	if b, _ := os.ReadFile(sock); string(b) != "not a socket" {
		t.Error("the regular file was replaced")
	}
}
