package server

import (
	"io"
	"net/http"
	"time"

	"github.com/kaginashi/kaginashi/internal/audit"
)

// auditProbeEvery is how often a writer whose commits fail tries one of
// its own, so that /healthz recovers with no traffic (a load balancer
// sends none to a replica it took out).
const auditProbeEvery = 5 * time.Second

// healthz answers load balancers: 503 while the server stops, and while
// the audit store fails (every API call would answer 500, since its event
// cannot commit), 200 otherwise. It reads memory only — the audit
// writer's latest commit outcome — so a probe costs no store round trip.
func healthz(auditHealth func() *audit.Failure) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := r.Context().Err(); err != nil {
			http.Error(w, "stopping", http.StatusServiceUnavailable)
			return
		}
		if f := auditHealth(); f != nil {
			// Not the error itself: /healthz needs no credentials, and a
			// store error can name files, hosts or users. The server's log
			// has it ("committing events failed").
			http.Error(w, "audit store failing since "+f.Since.UTC().Format(time.RFC3339)+" (the error is in the server's log)", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, "ok\n")
	}
}
