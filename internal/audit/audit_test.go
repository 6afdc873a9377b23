package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kaginashi/kaginashi/internal/store"
	"github.com/kaginashi/kaginashi/internal/store/sqlite"
)

func TestWriterCommitsBeforeReturning(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var sink bytes.Buffer
	var sinkMu sync.Mutex
	w := NewWriter(st, lockedWriter{&sink, &sinkMu}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	const n = 200
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			ev := &Event{EventTime: time.Now(), EventSource: "iam.amazonaws.com", EventName: "CreateAccessKey",
				UserIdentity:      Identity{Type: "IAMUser", UserName: "alice"},
				RequestParameters: map[string]any{"userName": "alice", "Password": "Hunter2-secret"},
				ResponseElements:  map[string]any{"accessKey": map[string]any{"secretAccessKey": "TOPSECRET", "accessKeyId": "AKIA1"}}}
			if err := w.Record(ctx, ev); err != nil {
				errs <- err
				return
			}
			// Durable before Record returns: the event is in the store now.
			evs, _, err := st.LookupAudit(ctx, store.AuditFilter{UserName: "alice", Limit: 1000})
			if err != nil {
				errs <- err
				return
			}
			found := false
			for _, e := range evs {
				if e.ID == ev.EventID {
					found = true
				}
			}
			if !found {
				t.Errorf("event %d not in the store when Record returned", i)
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	w.Close()
	evs, _, _ := st.LookupAudit(ctx, store.AuditFilter{Limit: 1000})
	if len(evs) != n {
		t.Fatalf("%d events stored, want %d", len(evs), n)
	}
	for _, e := range evs {
		if bytes.Contains(e.Record, []byte("TOPSECRET")) || bytes.Contains(e.Record, []byte("Hunter2")) {
			t.Fatalf("a secret reached the audit record: %s", e.Record)
		}
		var rec map[string]any
		if err := json.Unmarshal(e.Record, &rec); err != nil || rec["eventVersion"] != "1.08" || rec["eventID"] == "" {
			t.Fatalf("record %s: %v", e.Record, err)
		}
	}
	sinkMu.Lock()
	lines := strings.Count(sink.String(), "\n")
	sinkMu.Unlock()
	if lines != n || strings.Contains(sink.String(), "TOPSECRET") {
		t.Errorf("sink has %d lines (want %d) or a secret", lines, n)
	}
	if err := w.Record(ctx, &Event{EventTime: time.Now()}); err != ErrClosed {
		t.Errorf("Record after Close: %v", err)
	}
}

func TestWriterReportsFailure(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	w := NewWriter(st, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	defer w.Close()
	st.Close() // the database is gone: events cannot be made durable
	if err := w.Record(ctx, &Event{EventTime: time.Now(), EventName: "X"}); err == nil {
		t.Fatal("Record succeeded with a closed store: an answer would leave unaudited")
	}
}

type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// TestRootEventsByUserName: CloudTrail's LookupEvents shows the account
// root's calls under the user name "root" and finds them by it (`kaginashi
// audit lookup --user root`), though userIdentity has no userName.
func TestRootEventsByUserName(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	w := NewWriter(st, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	defer w.Close()
	ev := &Event{EventTime: time.Now(), EventSource: "iam.amazonaws.com", EventName: "ListUsers",
		UserIdentity: Identity{Type: "Root", ARN: "arn:aws:iam::123456789012:root", AccountID: "123456789012", PrincipalID: "123456789012"}}
	if err := w.Record(ctx, ev); err != nil {
		t.Fatal(err)
	}
	evs, _, err := st.LookupAudit(ctx, store.AuditFilter{UserName: "root", Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 || evs[0].ID != ev.EventID || evs[0].UserName != "root" {
		t.Fatalf("lookup by user root: %+v", evs)
	}
	if bytes.Contains(evs[0].Record, []byte(`"userName"`)) {
		t.Errorf("the event itself keeps CloudTrail's userIdentity, with no userName for root: %s", evs[0].Record)
	}
}
