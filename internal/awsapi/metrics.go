package awsapi

import (
	"time"

	"github.com/kaginashi/kaginashi/internal/apierr"
)

// Metrics receives counts from the API edge. internal/metrics implements
// it; this package does not import Prometheus. Calls happen on the hot
// path, so implementations must be cheap and must not block.
type Metrics interface {
	// APICall reports one call: its operation (a name of this server's
	// operations, or "unknown": never the caller's raw text), the code
	// answered ("OK" or the error code), the decision ("", "allow",
	// "deny"), whether it was a server error, and its time from receipt
	// to the audit commit.
	APICall(action, code, decision string, internal bool, elapsed time.Duration)
	// TunnelClosed reports a closed tunnel's bytes up (client → host) and
	// down.
	TunnelClosed(up, down int64)
}

// OpenTunnels is how many tunnels this handler holds open now.
func (h *Handler) OpenTunnels() int { return len(h.tunnelSlots) }

// observe reports a recorded call to the metrics hook. code is the error
// code recorded ("" on success); auditErr, when set, turned the answer
// into a server error.
func (h *Handler) observe(c *call, code string, failure *apierr.Error, auditErr error) {
	m := h.deps.Metrics
	if m == nil {
		return
	}
	internal := failure != nil && failure.Kind == apierr.Internal
	if auditErr != nil {
		code, _, _ = errorCode(c.proto, apierr.Wrap(auditErr, "recording the audit event"))
		internal = true
	}
	if code == "" {
		code = "OK"
	}
	decision := ""
	if c.decision != nil {
		decision = "deny"
		if c.decision.Allowed {
			decision = "allow"
		}
	}
	m.APICall(h.actionLabel(c), code, decision, internal, h.now().Sub(c.info.Time))
}

// actionLabel bounds the action label to this server's operation names:
// an unknown or garbled name from a caller becomes "unknown", so that
// callers cannot mint label values.
func (h *Handler) actionLabel(c *call) string {
	if c.op != nil {
		return c.op.name
	}
	if o, ok := h.ops[c.proto][c.name]; ok {
		return o.name
	}
	return "unknown"
}

func (h *Handler) tunnelClosed(up, down int64) {
	if h.deps.Metrics != nil {
		h.deps.Metrics.TunnelClosed(up, down)
	}
}
