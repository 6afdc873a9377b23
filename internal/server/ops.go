package server

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/kaginashi/kaginashi/internal/audit"
	"github.com/kaginashi/kaginashi/internal/awsapi"
	"github.com/kaginashi/kaginashi/internal/bootstrap"
	"github.com/kaginashi/kaginashi/internal/gateway"
	"github.com/kaginashi/kaginashi/internal/metrics"
)

// registerGauges registers the gauges read at scrape time: they cost
// nothing on the paths they describe.
func registerGauges(reg *metrics.Registry, gw *gateway.Gateway, api *awsapi.Handler, auditor *audit.Writer, certs *bootstrap.CertSource) {
	reg.GaugeFunc("kaginashi_agents_connected", "Agents connected to this server process.", func() float64 { return float64(gw.Count()) })
	reg.GaugeFunc("kaginashi_agents_signing_key_problem",
		"Agents connected to this server process that report a signing-key problem: logins with keys pushed to their hosts fail until it is solved (the server's log names each instance and the problem).",
		func() float64 { return float64(gw.SigningKeyProblems()) })
	reg.GaugeFunc("kaginashi_tunnels_open", "Tunnels open through this server process.", func() float64 { return float64(api.OpenTunnels()) })
	reg.GaugeFunc("kaginashi_audit_queue_depth", "Audit events waiting for the next group commit.", func() float64 { return float64(auditor.Queued()) })
	if certs != nil {
		reg.GaugeFunc("kaginashi_tls_certificate_expiry_timestamp_seconds", "When the TLS certificate served now expires (Unix time).",
			func() float64 { return float64(certs.Leaf().NotAfter.Unix()) })
	}
}

// reloadOnHangup reopens the audit JSON-lines file (after logrotate moved
// it) and re-reads the TLS certificate files on SIGHUP, until ctx ends.
// Either may be nil.
func reloadOnHangup(ctx context.Context, certs *bootstrap.CertSource, sink *audit.FileSink, log *slog.Logger) {
	if certs == nil && sink == nil {
		return
	}
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGHUP)
	defer signal.Stop(ch)
	for {
		select {
		case <-ctx.Done():
			return
		case <-ch:
		}
		log.Info("SIGHUP: reopening the audit log and re-reading the TLS certificate")
		if sink != nil {
			if err := sink.Reopen(); err != nil {
				log.Error("reopening the audit log failed; still writing the old file", "err", err)
			}
		}
		if certs != nil {
			if err := certs.Reload(); err != nil {
				log.Error("re-reading the TLS certificate failed; the current one stays in use", "err", err)
			}
		}
	}
}
