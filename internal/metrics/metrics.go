// Package metrics owns the server's Prometheus metrics: it registers them
// on a registry of its own (never the global default one), serves them on
// a separate listener, and implements the small hook interfaces the other
// packages call (awsapi.Metrics and the wrappers below), so that those
// packages do not import Prometheus.
//
// The hot path (one API call) costs one map lookup under a read lock, a
// few atomic adds and one histogram observation: label children are
// resolved once per (action, code) and kept. Labels are bounded: actions
// are the server's operation names (the caller maps anything else to
// "unknown"), codes its error codes; no instance IDs, user names or
// addresses ever become labels.
package metrics

import (
	"context"
	"net/http"
	"runtime"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/kaginashi/kaginashi/internal/audit"
)

// Decision values for APICall: whether the call reached an authorization
// decision, and which.
const (
	DecisionNone  = ""
	DecisionAllow = "allow"
	DecisionDeny  = "deny"
)

// maxChildren bounds the (action, code) pairs kept. The callers already
// bound both labels; this is a second fence so that a bug there cannot
// grow memory without limit: pairs beyond it are counted as
// action="other".
const maxChildren = 4096

// DeprecatedEnrollments is the old name of
// kaginashi_server_agent_enrollments_total, still served (the same count)
// until the release after the one that renamed it.
const DeprecatedEnrollments = "kaginashi_agent_enrollments_total"

// latencyBuckets cover a cached SendSSHPublicKey (well under a
// millisecond of server time) up to a slow store (seconds).
var latencyBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// Registry holds the server's metrics.
type Registry struct {
	reg *prometheus.Registry

	requests  *prometheus.CounterVec
	latency   *prometheus.HistogramVec
	allow     prometheus.Counter
	deny      prometheus.Counter
	keys      prometheus.Counter
	internal  prometheus.Counter
	enrollOK  [2]prometheus.Counter
	enrollBad [2]prometheus.Counter
	tunnelUp  prometheus.Counter
	tunnelDn  prometheus.Counter
	tunnels   prometheus.Counter

	auditLatency prometheus.Observer
	auditErrors  prometheus.Counter
	auditDeleted prometheus.Counter

	mu       sync.RWMutex
	children map[callKey]*callChild
	actions  map[string]prometheus.Observer
}

type callKey struct{ action, code string }

type callChild struct {
	count   prometheus.Counter
	latency prometheus.Observer
}

// New makes a registry with the server's metrics, build information and
// the Go runtime and process collectors. version is the build's version.
func New(version string) *Registry {
	r := &Registry{reg: prometheus.NewRegistry(), children: map[callKey]*callChild{}, actions: map[string]prometheus.Observer{}}
	f := factory{r.reg}
	r.requests = f.counterVec("kaginashi_api_requests_total",
		"API calls by operation and outcome (code is OK or the error code answered).", "action", "code")
	r.latency = f.histogramVec("kaginashi_api_request_duration_seconds",
		"Time from receiving an API call to its audit event being committed, by operation.", latencyBuckets, "action")
	decisions := f.counterVec("kaginashi_authorization_decisions_total", "Policy decisions on API calls.", "decision")
	r.allow, r.deny = decisions.WithLabelValues(DecisionAllow), decisions.WithLabelValues(DecisionDeny)
	r.keys = f.counter("kaginashi_keys_pushed_total", "SSH public keys pushed to instances (successful SendSSHPublicKey calls).")
	r.internal = f.counter("kaginashi_internal_errors_total",
		"API calls answered with a server error: store failures and other internal faults (each is also logged at ERROR).")
	// kaginashi_agent_enrollments_total was this counter's first name, but
	// kaginashi_agent_ is the host agents' own prefix (their metrics,
	// docs/OPERATIONS.md): the server's is kaginashi_server_agent_….
	// The old name stays, counting the same, for one release, so that
	// dashboards and alerts can move; then it goes.
	enroll := f.counterVec("kaginashi_server_agent_enrollments_total", "Agent enrollment requests to this server by outcome.", "outcome")
	old := f.counterVec(DeprecatedEnrollments,
		"Deprecated, removed in the next release: use kaginashi_server_agent_enrollments_total (the same count). Agent enrollment requests by outcome.", "outcome")
	r.enrollOK = [2]prometheus.Counter{enroll.WithLabelValues("ok"), old.WithLabelValues("ok")}
	r.enrollBad = [2]prometheus.Counter{enroll.WithLabelValues("refused"), old.WithLabelValues("refused")}
	bytes := f.counterVec("kaginashi_tunnel_bytes_total", "Bytes carried by closed tunnels; up is client to host.", "direction")
	r.tunnelUp, r.tunnelDn = bytes.WithLabelValues("up"), bytes.WithLabelValues("down")
	r.tunnels = f.counter("kaginashi_tunnels_closed_total", "Tunnels that have closed.")
	r.auditLatency = f.histogram("kaginashi_audit_write_duration_seconds",
		"Time an audit event waits to be committed to the store (group commit).", latencyBuckets)
	r.auditErrors = f.counter("kaginashi_audit_write_errors_total", "Audit events that could not be committed (the call was answered with a server error).")
	r.auditDeleted = f.counter("kaginashi_audit_events_deleted_total", "Audit events deleted by the retention job.")

	build := f.gaugeVec("kaginashi_build_info", "Build information; the value is always 1.", "version", "goversion")
	build.WithLabelValues(version, runtime.Version()).Set(1)
	r.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return r
}

// Handler serves the registry in the Prometheus exposition formats.
func (r *Registry) Handler() http.Handler {
	return promhttp.HandlerFor(r.reg, promhttp.HandlerOpts{Registry: r.reg, MaxRequestsInFlight: 4, Timeout: 10 * time.Second})
}

// Gatherer is the registry, for tests and for embedding elsewhere.
func (r *Registry) Gatherer() prometheus.Gatherer { return r.reg }

// GaugeFunc registers a gauge whose value is read at scrape time (agents
// connected, tunnels open, audit queue depth): nothing is paid per event.
func (r *Registry) GaugeFunc(name, help string, f func() float64) {
	r.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f))
}

// CounterFunc registers a counter whose value is read at scrape time from
// a count kept elsewhere (f must never decrease).
func (r *Registry) CounterFunc(name, help string, f func() float64) {
	r.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, f))
}

// APICall counts one API call: its operation, the code answered ("OK" or
// the error code), the authorization decision (DecisionNone when it did
// not get that far), whether it was a server error, and how long it took.
func (r *Registry) APICall(action, code, decision string, internal bool, elapsed time.Duration) {
	ch := r.child(action, code)
	ch.count.Inc()
	ch.latency.Observe(elapsed.Seconds())
	switch decision {
	case DecisionAllow:
		r.allow.Inc()
		if action == "SendSSHPublicKey" && code == "OK" {
			r.keys.Inc()
		}
	case DecisionDeny:
		r.deny.Inc()
	}
	if internal {
		r.internal.Inc()
	}
}

// TunnelClosed adds a closed tunnel's bytes each way.
func (r *Registry) TunnelClosed(up, down int64) {
	r.tunnels.Inc()
	if up > 0 {
		r.tunnelUp.Add(float64(up))
	}
	if down > 0 {
		r.tunnelDn.Add(float64(down))
	}
}

// AuditDeleted counts events deleted by the retention job.
func (r *Registry) AuditDeleted(n int) {
	if n > 0 {
		r.auditDeleted.Add(float64(n))
	}
}

// child returns the (action, code) pair's counter and the action's
// histogram, resolving them once.
func (r *Registry) child(action, code string) *callChild {
	k := callKey{action, code}
	r.mu.RLock()
	ch, ok := r.children[k]
	r.mu.RUnlock()
	if ok {
		return ch
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if ch, ok := r.children[k]; ok {
		return ch
	}
	if len(r.children) >= maxChildren {
		k.action = "other"
		if ch, ok := r.children[k]; ok {
			return ch
		}
	}
	lat, ok := r.actions[k.action]
	if !ok {
		lat = r.latency.WithLabelValues(k.action)
		r.actions[k.action] = lat
	}
	ch = &callChild{count: r.requests.WithLabelValues(k.action, k.code), latency: lat}
	r.children[k] = ch
	return ch
}

// TimeAudit wraps an audit recorder so that how long each event waits
// for its commit, and commits that fail, are measured.
func (r *Registry) TimeAudit(next audit.Recorder) audit.Recorder {
	return timedRecorder{next: next, r: r}
}

type timedRecorder struct {
	next audit.Recorder
	r    *Registry
}

// Expect passes the writer's batching hint on (see audit.Expecter).
func (t timedRecorder) Expect() func() {
	if e, ok := t.next.(audit.Expecter); ok {
		return e.Expect()
	}
	return func() {}
}

func (t timedRecorder) Record(ctx context.Context, ev *audit.Event) error {
	start := time.Now()
	err := t.next.Record(ctx, ev)
	t.r.auditLatency.Observe(time.Since(start).Seconds())
	if err != nil {
		t.r.auditErrors.Inc()
	}
	return err
}

// Enrollments wraps the agent enrollment handler, counting its answers
// (200: enrolled; anything else: refused) without the gateway knowing.
func (r *Registry) Enrollments(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, req *http.Request) {
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		next(sw, req)
		c := r.enrollBad
		if sw.status == http.StatusOK {
			c = r.enrollOK
		}
		c[0].Inc()
		c[1].Inc()
	}
}

type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (s *statusWriter) WriteHeader(code int) {
	if !s.wrote {
		s.status, s.wrote = code, true
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	s.wrote = true
	return s.ResponseWriter.Write(b)
}

func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// factory registers as it creates.
type factory struct{ reg *prometheus.Registry }

func (f factory) counter(name, help string) prometheus.Counter {
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
	f.reg.MustRegister(c)
	return c
}

func (f factory) counterVec(name, help string, labels ...string) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	f.reg.MustRegister(c)
	return c
}

func (f factory) gaugeVec(name, help string, labels ...string) *prometheus.GaugeVec {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, labels)
	f.reg.MustRegister(g)
	return g
}

func (f factory) histogram(name, help string, buckets []float64) prometheus.Histogram {
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets})
	f.reg.MustRegister(h)
	return h
}

func (f factory) histogramVec(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets}, labels)
	f.reg.MustRegister(h)
	return h
}
