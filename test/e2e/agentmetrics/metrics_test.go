package agentmetrics

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	eic "github.com/aws/aws-sdk-go-v2/service/ec2instanceconnect"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/kaginashi/kaginashi/internal/client"
	"github.com/kaginashi/kaginashi/test/e2e/harness"
)

func bound(d time.Duration) time.Duration { return harness.Bound(d) }

// site is a server with one agent serving metrics.
type site struct {
	*harness.Server
	agent      *harness.Process
	dataDir    string
	instance   string
	privateIP  string
	endpointID string
	metrics    string // http://ADDR/metrics
}

func startSite(t *testing.T, allow int, agentArgs ...string) *site {
	t.Helper()
	return startSiteIn(t, filepath.Join(t.TempDir(), "agent"), allow, agentArgs...)
}

// startSiteIn is startSite with the agent's data directory dataDir.
func startSiteIn(t *testing.T, dataDir string, allow int, agentArgs ...string) *site {
	t.Helper()
	dir := filepath.Dir(dataDir)
	s := harness.StartServer(t, "sqlite", "--rate-limit=-1")
	st := &site{Server: s, dataDir: dataDir}
	args := s.AgentArgs(st.dataDir, append([]string{"--join-token", s.JoinToken(t, 1), "--allow-port", strconv.Itoa(allow)}, agentArgs...)...)
	st.agent = harness.Spawn(t, "agent", append(harness.BaseEnv(), "HOME="+dir), agentBin, args...)
	st.agent.WaitOutput(t, harness.AgentConnected, 1, bound(30*time.Second))
	st.instance = harness.InstanceID(t, st.dataDir)
	ctx := context.Background()
	ec2c := s.EC2(s.Root)
	out := harness.Must(ec2c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{st.instance}}))(t)
	for _, r := range out.Reservations {
		for _, in := range r.Instances {
			st.privateIP = aws.ToString(in.PrivateIpAddress)
		}
	}
	eps := harness.Must(ec2c.DescribeInstanceConnectEndpoints(ctx, &ec2.DescribeInstanceConnectEndpointsInput{}))(t)
	if len(eps.InstanceConnectEndpoints) != 1 {
		t.Fatalf("DescribeInstanceConnectEndpoints: %d endpoints, want 1", len(eps.InstanceConnectEndpoints))
	}
	st.endpointID = aws.ToString(eps.InstanceConnectEndpoints[0].InstanceConnectEndpointId)
	return st
}

func (s *site) dial(port int) (net.Conn, error) {
	cfg, _ := s.Config(s.Root)
	return client.DialTunnel(context.Background(), cfg, client.TunnelParams{
		Endpoint: s.URL(), EndpointID: s.endpointID, InstanceID: s.instance, PrivateIP: s.privateIP, RemotePort: port})
}

// scrape reads the agent's /metrics with Prometheus's text parser.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parsing /metrics: %v", err)
	}
	return mfs
}

// value is the metric's value with exactly the given labels (name=value
// pairs); absent is -1.
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
				if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		}
	}
	return -1
}

// TestAgentMetrics: a real agent with --metrics-listen; a key push and
// tunnels (one carried, one to a port the agent does not allow) move its
// counters; the gauges say connected, a recent heartbeat, one active key,
// no open tunnel after the close; no label holds a user, key or request.
func TestAgentMetrics(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	maddr := fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
	s := startSite(t, port, "--metrics-listen", maddr)
	s.agent.WaitOutput(t, `msg="serving metrics" listen=`+maddr, 1, bound(10*time.Second))
	url := "http://" + maddr + "/metrics"

	before := scrape(t, url)
	for name, want := range map[string]float64{
		"kaginashi_agent_connected":          1,
		"kaginashi_agent_active_key_records": 0,
		"kaginashi_agent_tunnels_open":       0,
		"kaginashi_agent_signing_key_error":  0,
	} {
		if got := value(before, name); got != want {
			t.Errorf("before: %s = %v, want %v", name, got, want)
		}
	}
	if got := value(before, "kaginashi_agent_connections_total", "result", "ok"); got != 1 {
		t.Errorf("connections ok = %v, want 1", got)
	}
	if beat := value(before, "kaginashi_agent_last_heartbeat_timestamp_seconds"); time.Since(time.Unix(int64(beat), 0)) > time.Minute {
		t.Errorf("last heartbeat %v is not recent", beat)
	}
	if got := value(before, "kaginashi_agent_key_records_total", "result", "refused", "reason", "signature"); got != 0 {
		t.Errorf("refused (signature) = %v before any push, want 0 (present from the start)", got)
	}
	if value(before, "kaginashi_agent_build_info") != 1 || value(before, "process_resident_memory_bytes") <= 0 {
		t.Error("no build info or process metrics")
	}

	// A push.
	pub := harness.WriteEd25519Key(t, filepath.Join(t.TempDir(), "id_ed25519"), "")
	push := harness.Must(s.EIC(s.Root).SendSSHPublicKey(context.Background(), &eic.SendSSHPublicKeyInput{
		InstanceId: aws.String(s.instance), InstanceOSUser: aws.String("ec2-user"), SSHPublicKey: aws.String(harness.AuthorizedKey(t, pub))}))(t)
	if !push.Success {
		t.Fatal("SendSSHPublicKey: no success")
	}

	// A tunnel carrying data both ways, then closed.
	conn, err := s.dial(port)
	if err != nil {
		t.Fatalf("tunnel: %v", err)
	}
	msg := strings.Repeat("metrics!", 4096) // 32 KiB
	if _, err := io.WriteString(conn, msg); err != nil {
		t.Fatal(err)
	}
	back := make([]byte, len(msg))
	conn.SetReadDeadline(time.Now().Add(bound(10 * time.Second)))
	if _, err := io.ReadFull(conn, back); err != nil || string(back) != msg {
		t.Fatalf("echo through the tunnel: %v", err)
	}
	during := scrape(t, url)
	if got := value(during, "kaginashi_agent_tunnels_open"); got != 1 {
		t.Errorf("tunnels open while one is = %v, want 1", got)
	}
	conn.Close()

	// A tunnel to a port the agent does not allow.
	if c, err := s.dial(harness.FreePort(t)); err == nil {
		c.Close()
		t.Error("a tunnel to a port the agent does not allow opened")
	}

	var after map[string]*dto.MetricFamily
	deadline := time.Now().Add(bound(10 * time.Second))
	for {
		after = scrape(t, url)
		if value(after, "kaginashi_agent_tunnels_open") == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	checks := []struct {
		name   string
		labels []string
		want   float64
	}{
		{"kaginashi_agent_key_records_total", []string{"result", "accepted"}, 1},
		{"kaginashi_agent_active_key_records", nil, 1},
		{"kaginashi_agent_tunnels_total", []string{"result", "ok"}, 1},
		{"kaginashi_agent_tunnels_total", []string{"result", "refused"}, 1},
		{"kaginashi_agent_tunnels_open", nil, 0},
		{"kaginashi_agent_tunnel_bytes_total", []string{"direction", "in"}, float64(len(msg))},
		{"kaginashi_agent_tunnel_bytes_total", []string{"direction", "out"}, float64(len(msg))},
		{"kaginashi_agent_connected", nil, 1},
	}
	for _, c := range checks {
		if got := value(after, c.name, c.labels...); got != c.want {
			t.Errorf("after: %s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	// Labels stay bounded: nothing a user or request controls.
	for name, mf := range after {
		if !strings.HasPrefix(name, "kaginashi_agent_") {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if v := lp.GetValue(); strings.Contains(v, "ec2-user") || strings.Contains(v, "ssh-ed25519") || strings.Contains(v, s.instance) {
					t.Errorf("%s has label %s=%q", name, lp.GetName(), v)
				}
			}
		}
	}
}

// TestAgentMetricsOffByDefault: without the flag the agent listens on
// nothing and says nothing about metrics; the test reports the idle
// agent's resident memory with and without the flag (the goal: ≤ 15 MB).
func TestAgentMetricsOffByDefault(t *testing.T) {
	s := startSite(t, 22)
	if strings.Contains(s.agent.Output.String(), "serving metrics") {
		t.Error("the agent serves metrics without --metrics-listen")
	}
	if ports := listeningSockets(t, s.agent.Cmd.Process.Pid); len(ports) > 0 {
		t.Errorf("without --metrics-listen the agent listens on %v", ports)
	}
	maddr := fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
	m := startSite(t, 22, "--metrics-listen", maddr)
	m.agent.WaitOutput(t, `msg="serving metrics"`, 1, bound(10*time.Second))
	if ports := listeningSockets(t, m.agent.Cmd.Process.Pid); len(ports) != 1 {
		t.Errorf("with --metrics-listen the agent listens on %v, want one socket", ports)
	}
	scrape(t, "http://"+maddr+"/metrics") // what a Prometheus scrape allocates counts too
	time.Sleep(2 * time.Second)
	off, on := rssKiB(t, s.agent.Cmd.Process.Pid), rssKiB(t, m.agent.Cmd.Process.Pid)
	t.Logf("idle agent RSS: %.1f MiB without --metrics-listen, %.1f MiB with it (after one scrape)", float64(off)/1024, float64(on)/1024)
	if !harness.RaceBuilt() && (off > 15_000 || on > 15_000) {
		t.Errorf("idle agent RSS %d KiB / %d KiB, goal ≤ 15 MB", off, on)
	}
}

// rssKiB is a process's resident memory (VmRSS) in KiB.
func rssKiB(t testing.TB, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return n
		}
	}
	t.Fatalf("no VmRSS for pid %d", pid)
	return 0
}

// listeningSockets are the TCP sockets in LISTEN state that process pid
// holds (from /proc/net/tcp{,6}, matched by the inodes of its fds).
func listeningSockets(t testing.TB, pid int) []string {
	t.Helper()
	inodes := map[string]bool{}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, fd := range fds {
		l, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
		if err == nil && strings.HasPrefix(l, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]")] = true
		}
	}
	var out []string
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			fields := strings.Fields(line)
			if len(fields) > 9 && fields[3] == "0A" && inodes[fields[9]] {
				out = append(out, fields[1])
			}
		}
	}
	return out
}
