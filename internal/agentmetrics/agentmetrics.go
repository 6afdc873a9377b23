// Package agentmetrics owns kaginashi-agent's Prometheus metrics (run
// --metrics-listen): the same library and conventions as the server's
// (package metrics) — a registry of its own (never the global default
// one), a plain-HTTP /metrics on a listener of its own, bounded labels —
// and implements agent.Metrics so that package agent does not import
// Prometheus.
//
// It is a package of its own, not part of package metrics, because that
// one imports the server's audit and store packages, which the agent
// binary must not carry. Nothing here runs unless the flag is given: no
// registry, no listener, no goroutine.
//
// Per event it costs an atomic add; the state gauges (connected, last
// heartbeat, clock skew, active records, open tunnels, signing-key error)
// are read from the agent at scrape time, so heartbeats pay nothing.
package agentmetrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/kaginashi/kaginashi/internal/agent"
)

// Registry holds the agent's metrics. It implements agent.Metrics.
type Registry struct {
	reg *prometheus.Registry

	connOK, connErr    prometheus.Counter
	accepted           prometheus.Counter
	refused            map[string]prometheus.Counter
	revokes            prometheus.Counter
	tunnelOK, tunnelNo prometheus.Counter
	bytesIn, bytesOut  prometheus.Counter
	rotations          prometheus.Counter
}

var _ agent.Metrics = (*Registry)(nil)

// New makes a registry with the agent's event counters, its build
// information and the Go runtime and process collectors. version is the
// agent's version.
func New(version string) *Registry {
	r := &Registry{reg: prometheus.NewRegistry(), refused: map[string]prometheus.Counter{}}
	conns := r.counterVec("kaginashi_agent_connections_total",
		"Attempts to connect to the server: ok when the server answered the hello, error when the attempt failed before.", "result")
	r.connOK, r.connErr = conns.WithLabelValues("ok"), conns.WithLabelValues("error")
	recs := r.counterVec("kaginashi_agent_key_records_total",
		"Key records the server pushed: accepted, or refused with a reason (signature, instance, user, expired, malformed, withdrawn, storage, other).",
		"result", "reason")
	r.accepted = recs.WithLabelValues("accepted", "")
	for _, reason := range agent.RefusalReasons {
		r.refused[reason] = recs.WithLabelValues("refused", reason)
	}
	r.revokes = r.counter("kaginashi_agent_revokes_total", "Key records the server withdrew (their push had timed out).")
	tunnels := r.counterVec("kaginashi_agent_tunnels_total",
		"Tunnel requests: ok when connected to the local port, refused when the port is not allowed or does not answer.", "result")
	r.tunnelOK, r.tunnelNo = tunnels.WithLabelValues("ok"), tunnels.WithLabelValues("refused")
	bytes := r.counterVec("kaginashi_agent_tunnel_bytes_total",
		"Bytes carried by tunnels: in is from the server to the host's service, out from the service to the server.", "direction")
	r.bytesIn, r.bytesOut = bytes.WithLabelValues("in"), bytes.WithLabelValues("out")
	r.rotations = r.counter("kaginashi_agent_signing_key_rotations_total",
		"Times the agent adopted the server's new record-signing key (endorsed by the pinned one).")

	build := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "kaginashi_agent_build_info",
		Help: "Build information; the value is always 1."}, []string{"version", "goversion"})
	r.reg.MustRegister(build)
	build.WithLabelValues(version, runtime.Version()).Set(1)
	r.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return r
}

// Watch registers the gauges read from the agent's state at scrape time.
// stats is normally (*agent.Agent).Stats.
func (r *Registry) Watch(stats func() agent.Stats) {
	gauge := func(name, help string, f func(agent.Stats) float64) {
		r.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 { return f(stats()) }))
	}
	gauge("kaginashi_agent_connected", "1 while the agent is connected to the server, else 0.", func(s agent.Stats) float64 { return b2f(s.Connected) })
	gauge("kaginashi_agent_last_heartbeat_timestamp_seconds",
		"When the server last answered the agent's hello or heartbeat (Unix seconds; 0 before the first).",
		func(s agent.Stats) float64 {
			if s.LastBeat.IsZero() {
				return 0
			}
			return float64(s.LastBeat.UnixMilli()) / 1000
		})
	gauge("kaginashi_agent_clock_skew_seconds", "Server time minus host time, as last measured.",
		func(s agent.Stats) float64 { return s.ClockSkew.Seconds() })
	gauge("kaginashi_agent_active_key_records", "Key records held and not yet expired.",
		func(s agent.Stats) float64 { return float64(s.ActiveKeyRecords) })
	gauge("kaginashi_agent_tunnels_open", "Tunnels being carried now.", func(s agent.Stats) float64 { return float64(s.TunnelsOpen) })
	gauge("kaginashi_agent_signing_key_error",
		"1 while the server signs key records with a key this agent cannot trust (every push is refused until solved; see kaginashi-agent doctor), else 0.",
		func(s agent.Stats) float64 { return b2f(s.SigningKeyError) })
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// Connection implements agent.Metrics.
func (r *Registry) Connection(ok bool) {
	if ok {
		r.connOK.Inc()
	} else {
		r.connErr.Inc()
	}
}

// KeyRecord implements agent.Metrics. A reason outside the fixed set
// counts as "other", so the label stays bounded whatever the caller passes.
func (r *Registry) KeyRecord(reason string) {
	if reason == "" {
		r.accepted.Inc()
		return
	}
	c, ok := r.refused[reason]
	if !ok {
		c = r.refused[agent.RefusedOther]
	}
	c.Inc()
}

// Revoke implements agent.Metrics.
func (r *Registry) Revoke() { r.revokes.Inc() }

// Tunnel implements agent.Metrics.
func (r *Registry) Tunnel(ok bool) {
	if ok {
		r.tunnelOK.Inc()
	} else {
		r.tunnelNo.Inc()
	}
}

// TunnelBytes implements agent.Metrics.
func (r *Registry) TunnelBytes(in bool, n int) {
	if n <= 0 {
		return
	}
	if in {
		r.bytesIn.Add(float64(n))
	} else {
		r.bytesOut.Add(float64(n))
	}
}

// SigningKeyRotated implements agent.Metrics.
func (r *Registry) SigningKeyRotated() { r.rotations.Inc() }

// Gatherer is the registry, for tests.
func (r *Registry) Gatherer() prometheus.Gatherer { return r.reg }

// Handler serves the registry in the Prometheus exposition formats.
func (r *Registry) Handler() http.Handler {
	return promhttp.HandlerFor(r.reg, promhttp.HandlerOpts{Registry: r.reg, MaxRequestsInFlight: 4, Timeout: 10 * time.Second})
}

// Listen opens the metrics listener and serves GET /metrics on it (plain
// HTTP, no authentication: bind it to localhost or a private network)
// until ctx ends. It returns the address it listens on.
func (r *Registry) Listen(ctx context.Context, addr string, log *slog.Logger) (net.Addr, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--metrics-listen %s: %w", addr, err)
	}
	if tcp, ok := ln.Addr().(*net.TCPAddr); ok && !tcp.IP.IsLoopback() {
		log.Warn("metrics are served without authentication on a non-loopback address: keep it on a private network", "listen", ln.Addr().String())
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", r.Handler())
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("the metrics listener stopped", "err", err)
		}
	}()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	return ln.Addr(), nil
}

func (r *Registry) counter(name, help string) prometheus.Counter {
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
	r.reg.MustRegister(c)
	return c
}

func (r *Registry) counterVec(name, help string, labels ...string) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	r.reg.MustRegister(c)
	return c
}
