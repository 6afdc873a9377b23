package awsapi

import (
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kaginashi/kaginashi/internal/audit"
	"github.com/kaginashi/kaginashi/internal/clientip"
	"github.com/kaginashi/kaginashi/internal/store/sqlite"
)

// TestSlowBodyDoesNotHoldAuditCommits: a request still sending its body
// (any client can send one slowly, for up to the server's ReadTimeout)
// is not yet a call whose event will come soon: the audit commits of
// other calls must not linger for it.
func TestSlowBodyDoesNotHoldAuditCommits(t *testing.T) {
	const linger = time.Second
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	log := slog.New(slog.DiscardHandler)
	w := audit.NewWriter(st, nil, log, audit.WithLinger(linger))
	t.Cleanup(func() { w.Close() })
	h := New(Config{Region: "us-east-1", Account: "123456789012", Proxies: clientip.New(nil)}, Deps{Audit: w, Log: log})

	// A request whose body never comes, until the end of the test.
	body, send := io.Pipe()
	slow := httptest.NewRequest(http.MethodPost, "/", body)
	slow.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	slowDone := make(chan struct{})
	go func() {
		defer close(slowDone)
		h.ServeHTTP(httptest.NewRecorder(), slow)
	}()
	t.Cleanup(func() {
		send.CloseWithError(errors.New("the client went away"))
		<-slowDone
	})
	time.Sleep(100 * time.Millisecond) // the slow request is reading its body

	// Another call, refused at once and audited: its commit has nothing
	// to wait for.
	start := time.Now()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPut, "/", strings.NewReader("")))
	took := time.Since(start)
	if rec.Code < 400 {
		t.Fatalf("PUT / answered %d, want an error", rec.Code)
	}
	if took >= linger/2 {
		t.Fatalf("a lone call's audit commit waited %v (linger %v) for a request still sending its body", took, linger)
	}
}
