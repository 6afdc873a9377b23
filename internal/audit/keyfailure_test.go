package audit

import (
	"bytes"
	"context"
	"errors"
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

// TestWriterLeavesOutEventOfFailedKeyRecord: a SendSSHPublicKey call's key
// record is queued, then its event recorded; they commit together. When
// the key record fails (here a duplicate request ID) the success event is
// neither stored nor written to the sink, Record says why, and the
// failure event the API edge records next is stored.
func TestWriterLeavesOutEventOfFailedKeyRecord(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var sink bytes.Buffer
	var sinkMu sync.Mutex
	w := NewWriter(st, lockedWriter{&sink, &sinkMu}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	defer w.Close()

	now := time.Now().UTC()
	rec := store.KeyRecord{RequestID: "req-1", InstanceID: "i-0123456789abcdef0", OSUser: "ec2-user", PublicKey: "ssh-ed25519 AAAA",
		Fingerprint: "SHA256:x", CallerARN: "arn:aws:iam::123456789012:user/alice", CreatedAt: now, ExpiresAt: now.Add(time.Minute)}
	if err := st.PutKeyRecord(ctx, rec); err != nil {
		t.Fatal(err)
	}
	event := func(code string) *Event {
		return &Event{EventTime: now, EventSource: "ec2-instance-connect.amazonaws.com", EventName: "SendSSHPublicKey",
			RequestID: "req-1", ErrorCode: code, UserIdentity: Identity{Type: "IAMUser", UserName: "alice"}}
	}
	wait := st.QueueKeyRecord(ctx, rec) // the same request ID again
	ok := event("")
	rerr := w.Record(ctx, ok)
	kerr := wait()
	if !errors.Is(kerr, store.ErrExists) {
		t.Fatalf("the duplicate key record: %v", kerr)
	}
	if !errors.Is(rerr, store.ErrKeyRecordFailed) {
		t.Fatalf("Record of the success event: %v, want ErrKeyRecordFailed", rerr)
	}
	failed := event("InternalFailure")
	if err := w.Record(ctx, failed); err != nil {
		t.Fatalf("Record of the failure event: %v", err)
	}
	evs, _, err := st.LookupAudit(ctx, store.AuditFilter{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 || evs[0].ID != failed.EventID || evs[0].ErrorCode != "InternalFailure" {
		t.Fatalf("stored events %+v, want only the failure", evs)
	}
	sinkMu.Lock()
	lines := strings.Count(sink.String(), "\n")
	leaked := strings.Contains(sink.String(), ok.EventID)
	sinkMu.Unlock()
	if lines != 1 || leaked {
		t.Fatalf("sink has %d lines (success event in it: %v), want the failure's only", lines, leaked)
	}
}
