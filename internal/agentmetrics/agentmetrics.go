// Package agentmetrics owns kaginashi-agent's Prometheus metrics (run
// --metrics-listen), with the server's conventions (package metrics):
// names prefixed kaginashi_agent_, bounded labels, a registry of their
// own, a plain-HTTP GET /metrics on a listener of its own. It implements
// agent.Metrics so that package agent knows nothing of it.
//
// Unlike the server it does not use the Prometheus client library
// (github.com/prometheus/client_golang): importing it costs every agent
// 2.5 MiB of resident memory and 4 MB of binary, flag or not (its package
// initialisation fills a default registry and the protobuf descriptor
// registry; measured on kaginashi-agent run: 10.8 → 13.2 MiB idle), and
// the agent's idle footprint is a goal of its own (≤ 15 MB). What it
// serves is small and fixed — counters and gauges, no histograms — so it
// writes the text exposition format (version 0.0.4, which every
// Prometheus server accepts) itself; the tests read it back with
// Prometheus's own parser (github.com/prometheus/common/expfmt).
//
// Nothing here exists unless the flag is given: no registry, no listener,
// no goroutine. Per event it costs an atomic add; the state gauges
// (connected, last heartbeat, clock skew, active records, open tunnels,
// signing-key error) are read from the agent at scrape time, so heartbeats
// pay nothing.
package agentmetrics

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/kaginashi/kaginashi/internal/agent"
	"github.com/kaginashi/kaginashi/internal/authkeys"
	"github.com/kaginashi/kaginashi/internal/metricslisten"
)

// Registry holds the agent's metrics. It implements agent.Metrics; its
// zero value is not usable: use New.
type Registry struct {
	version string

	connOK, connErr    atomic.Uint64
	accepted           atomic.Uint64
	refused            [len(agent.RefusalReasons)]atomic.Uint64
	revokes            atomic.Uint64
	tunnelOK, tunnelNo atomic.Uint64
	bytesIn, bytesOut  atomic.Uint64
	rotations          atomic.Uint64
	// akcRefused counts the AuthorizedKeysCommand's refusals, by
	// authkeys.AKCReasons (ServeRefusals).
	akcRefused [len(authkeys.AKCReasons)]atomic.Uint64

	// stats reads the agent's state at scrape time (Watch); nil: the
	// state gauges are left out.
	stats atomic.Pointer[func() agent.Stats]
}

var _ agent.Metrics = (*Registry)(nil)

// New makes a registry. version is the agent's version (build info).
func New(version string) *Registry { return &Registry{version: version} }

// Watch makes the state gauges read stats (normally (*agent.Agent).Stats)
// at each scrape.
func (r *Registry) Watch(stats func() agent.Stats) { r.stats.Store(&stats) }

// Connection implements agent.Metrics.
func (r *Registry) Connection(ok bool) {
	if ok {
		r.connOK.Add(1)
	} else {
		r.connErr.Add(1)
	}
}

// KeyRecord implements agent.Metrics. A reason outside the fixed set
// counts as "other", so the label stays bounded whatever the caller passes.
func (r *Registry) KeyRecord(reason string) {
	if reason == "" {
		r.accepted.Add(1)
		return
	}
	other := 0
	for i, known := range agent.RefusalReasons {
		if known == reason {
			r.refused[i].Add(1)
			return
		}
		if known == agent.RefusedOther {
			other = i
		}
	}
	r.refused[other].Add(1)
}

// Revoke implements agent.Metrics.
func (r *Registry) Revoke() { r.revokes.Add(1) }

// Tunnel implements agent.Metrics.
func (r *Registry) Tunnel(ok bool) {
	if ok {
		r.tunnelOK.Add(1)
	} else {
		r.tunnelNo.Add(1)
	}
}

// TunnelBytes implements agent.Metrics.
func (r *Registry) TunnelBytes(in bool, n int) {
	if n <= 0 {
		return
	}
	if in {
		r.bytesIn.Add(uint64(n))
	} else {
		r.bytesOut.Add(uint64(n))
	}
}

// SigningKeyRotated implements agent.Metrics.
func (r *Registry) SigningKeyRotated() { r.rotations.Add(1) }

// sample is one series: label pairs (name, value, ...) and its value.
type sample struct {
	labels []string
	value  float64
}

// family is one metric family of the exposition.
type family struct {
	name, typ, help string
	samples         []sample
}

func one(v float64) []sample { return []sample{{value: v}} }

func u(a *atomic.Uint64) float64 { return float64(a.Load()) }

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// families are the metrics now, in a fixed order.
func (r *Registry) families() []family {
	recs := []sample{{labels: []string{"result", "accepted", "reason", ""}, value: u(&r.accepted)}}
	for i, reason := range agent.RefusalReasons {
		recs = append(recs, sample{labels: []string{"result", "refused", "reason", reason}, value: u(&r.refused[i])})
	}
	var akc []sample
	for i, reason := range authkeys.AKCReasons {
		akc = append(akc, sample{labels: []string{"reason", reason}, value: u(&r.akcRefused[i])})
	}
	fs := []family{
		{"kaginashi_agent_authorized_keys_refusals_total", "counter",
			"Key records sshd asked the AuthorizedKeysCommand about and it refused, by reason (signature, instance, user, expired, malformed; unreadable: the data directory could not be read). Counted when the command reports them to the agent's socket.",
			akc},
		{"kaginashi_agent_build_info", "gauge", "Build information; the value is always 1.",
			[]sample{{labels: []string{"version", r.version, "goversion", runtime.Version()}, value: 1}}},
		{"kaginashi_agent_connections_total", "counter",
			"Attempts to connect to the server: ok when the server answered the hello, error when the attempt failed before.",
			[]sample{{labels: []string{"result", "ok"}, value: u(&r.connOK)}, {labels: []string{"result", "error"}, value: u(&r.connErr)}}},
		{"kaginashi_agent_key_records_total", "counter",
			"Key records the server pushed: accepted, or refused with a reason (signature, instance, user, expired, malformed, withdrawn, storage, other).",
			recs},
		{"kaginashi_agent_revokes_total", "counter", "Key records the server withdrew (their push had timed out).", one(u(&r.revokes))},
		{"kaginashi_agent_signing_key_rotations_total", "counter",
			"Times the agent adopted the server's new record-signing key (endorsed by the pinned one).", one(u(&r.rotations))},
		{"kaginashi_agent_tunnel_bytes_total", "counter",
			"Bytes carried by tunnels: in is from the server to the host's service, out from the service to the server.",
			[]sample{{labels: []string{"direction", "in"}, value: u(&r.bytesIn)}, {labels: []string{"direction", "out"}, value: u(&r.bytesOut)}}},
		{"kaginashi_agent_tunnels_total", "counter",
			"Tunnel requests: ok when connected to the local port, refused when the port is not allowed or does not answer.",
			[]sample{{labels: []string{"result", "ok"}, value: u(&r.tunnelOK)}, {labels: []string{"result", "refused"}, value: u(&r.tunnelNo)}}},
	}
	if f := r.stats.Load(); f != nil {
		s := (*f)()
		beat := 0.0
		if !s.LastBeat.IsZero() {
			beat = float64(s.LastBeat.UnixMilli()) / 1000
		}
		fs = append(fs,
			family{"kaginashi_agent_active_key_records", "gauge", "Key records held and not yet expired.", one(float64(s.ActiveKeyRecords))},
			family{"kaginashi_agent_clock_skew_seconds", "gauge", "Server time minus host time, as last measured.", one(s.ClockSkew.Seconds())},
			family{"kaginashi_agent_connected", "gauge", "1 while the agent is connected to the server, else 0.", one(b2f(s.Connected))},
			family{"kaginashi_agent_last_heartbeat_timestamp_seconds", "gauge",
				"When the server last answered the agent's hello or heartbeat (Unix seconds; 0 before the first).", one(beat)},
			family{"kaginashi_agent_signing_key_error", "gauge",
				"1 while a signing-key problem makes logins with pushed keys fail (the server signs with a key this agent cannot trust, the AuthorizedKeysCommand cannot read the pinned key, or pushes keep failing their signature check; the agent's log and the server say which), else 0.",
				one(b2f(s.SigningKeyError))},
			family{"kaginashi_agent_tunnels_open", "gauge", "Tunnels being carried now.", one(float64(s.TunnelsOpen))},
		)
	}
	return append(fs, processFamilies()...)
}

// processFamilies are the standard process and Go runtime metrics (the
// names client_golang's collectors use) that matter for an idle agent.
func processFamilies() []family {
	fs := []family{{"go_goroutines", "gauge", "Number of goroutines that currently exist.", one(float64(runtime.NumGoroutine()))}}
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		fs = append(fs, family{"process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.", one(cpu.Seconds())})
	}
	if b, err := os.ReadFile("/proc/self/statm"); err == nil {
		if f := strings.Fields(string(b)); len(f) > 1 {
			if pages, err := strconv.ParseUint(f[1], 10, 64); err == nil {
				fs = append(fs, family{"process_resident_memory_bytes", "gauge", "Resident memory size in bytes.",
					one(float64(pages) * float64(os.Getpagesize()))})
			}
		}
	}
	return fs
}

// WriteText writes the metrics in Prometheus's text exposition format
// (version 0.0.4).
func (r *Registry) WriteText(b *bytes.Buffer) {
	for _, f := range r.families() {
		fmt.Fprintf(b, "# HELP %s %s\n# TYPE %s %s\n", f.name, escape(f.help, false), f.name, f.typ)
		for _, s := range f.samples {
			b.WriteString(f.name)
			if len(s.labels) > 0 {
				b.WriteByte('{')
				for i := 0; i+1 < len(s.labels); i += 2 {
					if i > 0 {
						b.WriteByte(',')
					}
					fmt.Fprintf(b, "%s=\"%s\"", s.labels[i], escape(s.labels[i+1], true))
				}
				b.WriteByte('}')
			}
			b.WriteByte(' ')
			b.WriteString(formatValue(s.value))
			b.WriteByte('\n')
		}
	}
}

// escape escapes a HELP text (backslash, newline) or a label value (also
// the double quote), as the text format requires.
func escape(s string, quote bool) string {
	if !strings.ContainsAny(s, "\\\n\"") {
		return s
	}
	var b strings.Builder
	for _, c := range s {
		switch {
		case c == '\\':
			b.WriteString(`\\`)
		case c == '\n':
			b.WriteString(`\n`)
		case c == '"' && quote:
			b.WriteString(`\"`)
		default:
			b.WriteRune(c)
		}
	}
	return b.String()
}

func formatValue(v float64) string {
	switch {
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	case math.IsNaN(v):
		return "NaN"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

// Handler serves GET /metrics.
func (r *Registry) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var b bytes.Buffer
		r.WriteText(&b)
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		w.Header().Set("Content-Length", strconv.Itoa(b.Len()))
		if req.Method != http.MethodHead {
			_, _ = w.Write(b.Bytes())
		}
	})
}

// Listen serves GET /metrics on a listener of its own until ctx ends
// (see metricslisten.Listen). It returns the address it listens on.
func (r *Registry) Listen(ctx context.Context, addr string, log *slog.Logger) (net.Addr, error) {
	return metricslisten.Listen(ctx, addr, r.Handler(), log)
}
