package audit

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"math"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/kaginashi/kaginashi/internal/store/sqlite"
)

// sampleEvent is an event as the API edge fills it, with values of each
// kind the maps hold.
func sampleEvent() *Event {
	return &Event{
		EventVersion: "1.08",
		UserIdentity: Identity{Type: "IAMUser", PrincipalID: "AIDAEXAMPLE", ARN: "arn:aws:iam::123456789012:user/alice",
			AccountID: "123456789012", AccessKeyID: "AKIAEXAMPLE", UserName: "alice",
			SessionContext: &SessionContext{Attributes: SessionAttributes{CreationDate: "2026-11-28T10:00:00Z", MFAAuthenticated: "true"}}},
		EventTime:       time.Date(2026, 11, 28, 10, 0, 1, 0, time.UTC),
		EventSource:     "ec2-instance-connect.amazonaws.com",
		EventName:       "SendSSHPublicKey",
		AWSRegion:       "ap-northeast-1",
		SourceIPAddress: "127.0.0.1",
		UserAgent:       "aws-cli/1.32 <script>&\u2028",
		RequestParameters: map[string]any{"instanceId": "i-0123456789abcdef0", "instanceOSUser": "ec2-user",
			"sSHPublicKey": "ssh-ed25519 AAAA\n\t\"\\\x01\x7f\xff", "n": 3.0, "small": 1e-7, "big": 1e21, "neg": -0.5,
			"list": []any{"a", 1.5, true, nil, map[string]any{"x": "y"}}, "strs": []string{"a", "b"}, "nil": nil,
			"int": 7, "int64": int64(-8), "other": struct{ A int }{1}},
		ResponseElements:    map[string]any{"requestId": "r", "success": true},
		AdditionalEventData: map[string]any{"decision": "Allow", "matchedStatements": []map[string]any{{"policy": "p", "sid": "", "index": 0}}},
		RequestID:           "r",
		EventID:             "e",
		EventType:           "AwsApiCall",
		ManagementEvent:     true,
		RecipientAccountID:  "123456789012",
	}
}

func checkEncoding(t *testing.T, ev *Event) {
	t.Helper()
	want, werr := json.Marshal(ev)
	got, gerr := appendEvent(nil, ev)
	if (werr == nil) != (gerr == nil) {
		t.Fatalf("json.Marshal error %v, appendEvent error %v", werr, gerr)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("appendEvent differs from json.Marshal:\n got %s\nwant %s", got, want)
	}
}

func TestEncodeEventMatchesJSON(t *testing.T) {
	checkEncoding(t, sampleEvent())
	ev := sampleEvent()
	ev.UserIdentity = Identity{}
	ev.RequestParameters, ev.ResponseElements, ev.AdditionalEventData = nil, map[string]any{}, map[string]any{}
	ev.ErrorCode, ev.ErrorMessage = "AccessDenied", "no <way>"
	checkEncoding(t, ev)
	ev.RequestParameters = map[string]any{"nan": math.NaN()}
	checkEncoding(t, ev) // both fail
	ev = sampleEvent()
	ev.EventTime = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
	checkEncoding(t, ev) // both fail
}

// FuzzEncodeEvent: for any strings and numbers, appendEvent writes what
// json.Marshal writes.
func FuzzEncodeEvent(f *testing.F) {
	f.Add("SendSSHPublicKey", "ssh-ed25519 AAAA", "<&>\u2028\u2029", 1.5, int64(3), true)
	f.Add("\xff\xfe", "\x00\x1f\"\\", "é日本", 1e-9, int64(-1), false)
	f.Fuzz(func(t *testing.T, name, key, value string, num float64, n int64, flag bool) {
		ev := sampleEvent()
		ev.EventName, ev.UserAgent = name, value
		ev.UserIdentity.UserName = key
		ev.EventTime = time.Unix(n%(1<<35), 0).UTC()
		ev.RequestParameters = map[string]any{key: value, value: num, name: []any{key, n, flag, num}, "n": int(n % 1000)}
		ev.ResponseElements = map[string]any{key: map[string]any{value: name}}
		checkEncoding(t, ev)
	})
}

func BenchmarkEncodeEvent(b *testing.B) {
	ev := sampleEvent()
	delete(ev.RequestParameters, "other")
	b.Run("appendEvent", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := appendEvent(make([]byte, 0, 1536), ev); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("json.Marshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := json.Marshal(ev); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestEventIDsTimeOrdered: event IDs are UUIDs that sort in the order
// they were made (version 7), so the store's unique index on them grows
// at its end.
func TestEventIDsTimeOrdered(t *testing.T) {
	ctx := t.Context()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	w := NewWriter(st, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	defer w.Close()
	prev := ""
	for range 50 {
		ev := &Event{EventTime: time.Now(), EventSource: "ec2-instance-connect.amazonaws.com", EventName: "SendSSHPublicKey"}
		if err := w.Record(ctx, ev); err != nil {
			t.Fatal(err)
		}
		u, err := uuid.Parse(ev.EventID)
		if err != nil || u.Version() != 7 {
			t.Fatalf("event ID %q: version %d, %v; want a version 7 UUID", ev.EventID, u.Version(), err)
		}
		if ev.EventID <= prev {
			t.Fatalf("event ID %s after %s: not increasing", ev.EventID, prev)
		}
		prev = ev.EventID
	}
}
