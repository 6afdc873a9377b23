package metrics

import (
	"context"
	"log/slog"
	"net"

	"github.com/kaginashi/kaginashi/internal/metricslisten"
)

// Listen serves the registry's GET /metrics on a listener of its own
// until ctx ends (see metricslisten.Listen).
func (r *Registry) Listen(ctx context.Context, addr string, log *slog.Logger) (net.Addr, error) {
	return metricslisten.Listen(ctx, addr, r.Handler(), log)
}
