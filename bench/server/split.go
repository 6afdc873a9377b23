package main

import (
	"bytes"
	"context"
	"fmt"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/google/pprof/profile"
)

// sideSplit is where one window's CPU went, by the pprof label "side" the
// goroutines carry (server, agent, client; "" for the runtime's own
// goroutines: GC workers, the scheduler), per successful request.
type sideSplit struct {
	target string
	perReq map[string]time.Duration
	ok     int64
}

// measureSplit runs one extra closed-loop window on t under a CPU profile
// (100 Hz) and sums the samples by side. The machine is shared by the
// servers, the benchmark agents (which stand in for hosts elsewhere) and
// the load generator, so the rate alone cannot say how much of the
// machine the server itself needs.
func measureSplit(ctx context.Context, t *Target, clients int, warmup, dur time.Duration, sshKey string) (*sideSplit, error) {
	var buf bytes.Buffer
	var perr error
	during := func(start bool) {
		if start {
			perr = pprof.StartCPUProfile(&buf)
			return
		}
		if perr == nil {
			pprof.StopCPUProfile()
		}
	}
	r := runLoad(ctx, t, clients, 0, warmup, dur, sshKey, during)
	if perr != nil {
		return nil, fmt.Errorf("cpu profile: %w", perr)
	}
	p, err := profile.Parse(&buf)
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	idx := -1
	for i, st := range p.SampleType {
		if st.Type == "cpu" && st.Unit == "nanoseconds" {
			idx = i
		}
	}
	if idx < 0 {
		return nil, fmt.Errorf("cpu profile: no cpu/nanoseconds sample type")
	}
	sums := map[string]time.Duration{}
	for _, s := range p.Sample {
		side := ""
		if v := s.Label["side"]; len(v) > 0 {
			side = v[0]
		}
		sums[side] += time.Duration(s.Value[idx])
	}
	sp := &sideSplit{target: t.Name, perReq: map[string]time.Duration{}, ok: r.OK}
	for side, d := range sums {
		sp.perReq[side] = d / time.Duration(max(r.OK, 1))
	}
	return sp, nil
}

// writeSplit is the report's paragraph on the splits.
func writeSplit(w *strings.Builder, clients int, splits []*sideSplit) {
	if len(splits) == 0 {
		return
	}
	fmt.Fprintf(w, "\nWhere the CPU goes, per successful request (a separate %d-client closed-loop window per target, CPU-profiled at 100 Hz, samples summed by the goroutines' pprof label; the profiler costs a few per cent):\n\n", clients)
	fmt.Fprintln(w, "| target | server | benchmark agents | load generator | runtime (GC, scheduler) | all |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|")
	for _, sp := range splits {
		var all time.Duration
		for _, d := range sp.perReq {
			all += d
		}
		cellOf := func(side string) string {
			d, ok := sp.perReq[side]
			if !ok {
				return "–"
			}
			return fmtMicros(d)
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s |\n", sp.target, cellOf("server"), cellOf("agent"), cellOf("client"), cellOf(""), fmtMicros(all))
	}
	// The benchmark agents stand in for hosts: in a deployment their CPU
	// is the hosts', not the server machine's.
	fmt.Fprintf(w, "\nThe benchmark agents verify each record's Ed25519 signature and acknowledge it over their own TLS connection, as real agents do on their hosts; here they share the same 2 cores.\n")
}
