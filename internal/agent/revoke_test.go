package agent

import (
	"testing"

	"github.com/kaginashi/kaginashi/internal/keyrecord"
)

func TestRevokedSet(t *testing.T) {
	const now = 1_000_000
	set := markRevoked(nil, "req-1", now)
	if !isRevoked(set, "req-1", now+30) {
		t.Error("a withdrawn request is not refused 30 s later")
	}
	if isRevoked(set, "req-2", now) {
		t.Error("another request is refused")
	}
	// Past every record's possible lifetime the entry is forgotten.
	later := int64(now + keyrecord.MaxLifetime + 6)
	if isRevoked(set, "req-1", later) {
		t.Error("an entry outlives any record it could refuse")
	}
	set = markRevoked(set, "req-3", later)
	if _, ok := set["req-1"]; ok || len(set) != 1 {
		t.Errorf("stale entries are not pruned: %v", set)
	}
}

func TestDropRecord(t *testing.T) {
	recs := []keyrecord.Record{{RequestID: "a"}, {RequestID: "b"}, {RequestID: "c"}}
	kept, dropped := dropRecord(recs, "b")
	if !dropped || len(kept) != 2 || kept[0].RequestID != "a" || kept[1].RequestID != "c" {
		t.Errorf("drop b: %v %+v", dropped, kept)
	}
	if len(recs) != 3 || recs[1].RequestID != "b" {
		t.Errorf("the input changed: %+v", recs)
	}
	if _, dropped := dropRecord(recs, "z"); dropped {
		t.Error("dropped a record that is not there")
	}
}
