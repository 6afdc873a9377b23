package server

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// TestH2DrainDeadlineAfterLiftedReadDeadline: a handler that lifted the
// stream's read deadline (as the console's terminal and instance stream
// do before they find out they cannot serve) and then answers still gets
// its answer out within the drain's timeout when the client keeps its
// body open without sending a byte. The drain waited for the body's end
// with no deadline at all: the answer never went out and the stream and
// its goroutine stayed for as long as the client liked.
func TestH2DrainDeadlineAfterLiftedReadDeadline(t *testing.T) {
	const timeout = 300 * time.Millisecond
	h := drainH2Body(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = http.NewResponseController(w).SetReadDeadline(time.Time{})
		http.Error(w, "refused", http.StatusForbidden)
	}), timeout)
	srv := httptest.NewUnstartedServer(h)
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()

	body, open := io.Pipe() // a body that never ends
	defer open.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/console/x", body)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatalf("no answer while the body stays open (%v after the request): %v", time.Since(start).Round(time.Millisecond), err)
	}
	defer resp.Body.Close()
	if resp.ProtoMajor != 2 {
		t.Fatalf("HTTP/%d, want HTTP/2", resp.ProtoMajor)
	}
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("status %d, want 403", resp.StatusCode)
	}
	if d := time.Since(start); d > timeout+5*time.Second {
		t.Errorf("the answer took %v, want about %v", d, timeout)
	}
}

// TestH2DrainStillReadsTheBody: the deadline does not cut a body the
// client sends in time — the drain still reads it to its end (the reason
// it exists), and a body-less GET is answered at once.
func TestH2DrainStillReadsTheBody(t *testing.T) {
	h := drainH2Body(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "refused", http.StatusForbidden)
	}), 10*time.Second)
	srv := httptest.NewUnstartedServer(h)
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()

	b := &countingBody{left: 3 << 20}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL, b)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || b.sent.Load() != 3<<20 {
		t.Errorf("status %d after %d bytes sent; want 403 after the whole body (%d)", resp.StatusCode, b.sent.Load(), 3<<20)
	}

	resp, err = srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("GET: status %d, want 403", resp.StatusCode)
	}
}
