package server

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/kaginashi/kaginashi/internal/audit"
)

func TestHealthzFollowsAuditHealth(t *testing.T) {
	var failing *audit.Failure
	h := healthz(func() *audit.Failure { return failing })
	get := func(ctx context.Context) (int, string) {
		rec := httptest.NewRecorder()
		h(rec, httptest.NewRequest(http.MethodGet, "/healthz", nil).WithContext(ctx))
		return rec.Code, rec.Body.String()
	}
	if code, body := get(t.Context()); code != 200 || body != "ok\n" {
		t.Fatalf("healthy: %d %q", code, body)
	}
	since := time.Date(2026, 11, 28, 20, 0, 0, 0, time.FixedZone("x", 3600))
	failing = &audit.Failure{Since: since, Err: errors.New("audit: commit: open /secret/path/kaginashi.db: disk is full\n(extra line)")}
	code, body := get(t.Context())
	want := "audit store failing since 2026-11-28T19:00:00Z (the error is in the server's log)\n"
	if code != http.StatusServiceUnavailable || body != want {
		t.Fatalf("failing: %d %q, want 503 %q", code, body, want)
	}
	if strings.Contains(body, "/secret/path") {
		t.Fatalf("an unauthenticated probe sees the store's error: %q", body)
	}
	if strings.Count(body, "\n") != 1 {
		t.Fatalf("reason is not one line: %q", body)
	}
	failing = nil
	if code, _ := get(t.Context()); code != 200 {
		t.Fatalf("recovered: %d", code)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if code, _ := get(ctx); code != http.StatusServiceUnavailable {
		t.Fatalf("stopping: %d", code)
	}
}
