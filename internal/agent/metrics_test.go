package agent

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kaginashi/kaginashi/internal/agentproto"
	"github.com/kaginashi/kaginashi/internal/keyrecord"
)

// TestRefusalReasons: each way accept refuses a record maps to its own
// fixed label, from the real errors accept returns.
func TestRefusalReasons(t *testing.T) {
	now := time.UnixMilli(1_800_000_000_000)
	k, other := genKey(t), genKey(t)
	a := rolloverAgent(t, pubKey(k), now)

	cases := []struct {
		name string
		rec  func() keyrecord.Record
		want string
	}{
		{"good", func() keyrecord.Record { return signedRecord(t, k, now) }, ""},
		{"signed by another key", func() keyrecord.Record { return signedRecord(t, other, now) }, RefusedSignature},
		{"tampered", func() keyrecord.Record {
			r := signedRecord(t, k, now)
			r.OSUser = "mallory"
			return r
		}, RefusedSignature},
		{"another instance", func() keyrecord.Record {
			r := signedRecord(t, k, now)
			r.InstanceID = "i-0fedcba9876543210"
			if err := r.Sign(k); err != nil {
				t.Fatal(err)
			}
			return r
		}, RefusedInstance},
		{"expired", func() keyrecord.Record { return signedRecord(t, k, now.Add(-2*time.Minute)) }, RefusedExpired},
		{"malformed user", func() keyrecord.Record {
			r := signedRecord(t, k, now)
			r.OSUser = "bad user\n"
			return r
		}, RefusedMalformed},
		{"lifetime too long", func() keyrecord.Record {
			r := signedRecord(t, k, now)
			r.ExpiresAt = r.IssuedAt + keyrecord.MaxLifetime + 1
			return r
		}, RefusedMalformed},
		{"withdrawn", func() keyrecord.Record {
			r := signedRecord(t, k, now)
			r.RequestID = "req-withdrawn"
			if err := r.Sign(k); err != nil {
				t.Fatal(err)
			}
			if err := a.revoke(r.RequestID); err != nil {
				t.Fatal(err)
			}
			return r
		}, RefusedWithdrawn},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := a.accept(tc.rec())
			if got := RefusalReason(err); got != tc.want {
				t.Errorf("reason %q (err %v), want %q", got, err, tc.want)
			}
		})
	}
	// The one reason a record cannot cause: the agent's own storage. A
	// non-empty directory where records.json goes fails the rename, even
	// for root.
	if err := os.Remove(a.paths.records()); err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(a.paths.records(), "x"), 0o700); err != nil {
		t.Fatal(err)
	}
	r := signedRecord(t, k, now)
	r.RequestID = "req-storage"
	if err := r.Sign(k); err != nil {
		t.Fatal(err)
	}
	if got := RefusalReason(a.accept(r)); got != RefusedStorage {
		t.Errorf("records.json unwritable: reason %q, want %q", got, RefusedStorage)
	}
}

func TestRefusalReasonBounded(t *testing.T) {
	if got := RefusalReason(errors.New("something new: user alice, key AAAA")); got != RefusedOther {
		t.Errorf("an unknown error maps to %q, want %q", got, RefusedOther)
	}
	if got := RefusalReason(fmt.Errorf("wrapped: %w", keyrecord.ErrExpired)); got != RefusedExpired {
		t.Errorf("a wrapped expiry maps to %q", got)
	}
	seen := map[string]bool{}
	for _, r := range RefusalReasons {
		if r == "" || seen[r] {
			t.Errorf("reason %q empty or repeated", r)
		}
		seen[r] = true
	}
}

// recorder is a Metrics that remembers its calls.
type recorder struct {
	mu        sync.Mutex
	records   []string
	rotations int
	in, out   int
}

func (r *recorder) Connection(bool) {}
func (r *recorder) KeyRecord(reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.records = append(r.records, reason)
}
func (r *recorder) Revoke()     {}
func (r *recorder) Tunnel(bool) {}
func (r *recorder) TunnelBytes(in bool, n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if in {
		r.in += n
	} else {
		r.out += n
	}
}
func (r *recorder) SigningKeyRotated() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rotations++
}

// TestRotationCountedOnlyWhenAdopted: an endorsed new key counts one
// rotation; an unendorsed one counts none and shows as a signing-key error.
func TestRotationCountedOnlyWhenAdopted(t *testing.T) {
	now := time.UnixMilli(1_800_000_000_000)
	ka, kb, kx := genKey(t), genKey(t), genKey(t)
	a := rolloverAgent(t, pubKey(ka), now)
	rec := &recorder{}
	a.metrics = rec

	a.rollover(agentproto.Beat{SigningKey: pubKey(kx)}) // no endorsement
	if rec.rotations != 0 || !a.Stats().SigningKeyError {
		t.Errorf("unendorsed key: %d rotations, signing-key error %v; want 0 and true", rec.rotations, a.Stats().SigningKeyError)
	}
	a.rollover(agentproto.Beat{SigningKey: pubKey(kb), SigningKeyChain: []agentproto.KeyLink{agentproto.Endorse(ka, pubKey(kb), 1)}})
	if rec.rotations != 1 || a.Stats().SigningKeyError {
		t.Errorf("endorsed key: %d rotations, signing-key error %v; want 1 and false", rec.rotations, a.Stats().SigningKeyError)
	}
}

// TestStatsActiveRecords counts held records by the server's clock.
func TestStatsActiveRecords(t *testing.T) {
	now := time.UnixMilli(1_800_000_000_000)
	k := genKey(t)
	clock := now
	a := rolloverAgent(t, pubKey(k), now)
	a.now = func() time.Time { return clock }
	if err := a.accept(signedRecord(t, k, now)); err != nil {
		t.Fatal(err)
	}
	if got := a.Stats().ActiveKeyRecords; got != 1 {
		t.Errorf("active records %d, want 1", got)
	}
	clock = now.Add(61 * time.Second)
	if got := a.Stats().ActiveKeyRecords; got != 0 {
		t.Errorf("active records after expiry %d, want 0", got)
	}
}

func TestRelayCounts(t *testing.T) {
	var dst bytes.Buffer
	n := 0
	src := strings.NewReader(strings.Repeat("x", 100_000))
	if err := relay(&dst, src, func(k int) { n += k }); err != nil {
		t.Fatal(err)
	}
	if n != 100_000 || dst.Len() != 100_000 {
		t.Errorf("counted %d, copied %d; want 100000 each", n, dst.Len())
	}
}
