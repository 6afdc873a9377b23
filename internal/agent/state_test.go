package agent

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/kaginashi/kaginashi/internal/keyrecord"
)

// TestSaveAccepted: the records written without fsync replace the file
// whole (no temporary file left), readable by the AuthorizedKeysCommand's
// reader, world-readable as the command needs.
func TestSaveAccepted(t *testing.T) {
	p := Paths{Dir: filepath.Join(t.TempDir(), "agent")}
	if err := p.ensureDirs(); err != nil {
		t.Fatal(err)
	}
	for _, ids := range [][]string{{"a"}, {"a", "b"}, {"b"}} {
		var rs Records
		for _, id := range ids {
			rs.Records = append(rs.Records, keyrecord.Record{RequestID: id, ExpiresAt: 100})
		}
		if err := p.saveAccepted(rs); err != nil {
			t.Fatal(err)
		}
		got, err := p.LoadRecords()
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(ids) {
			t.Fatalf("after saving %v: %+v", ids, got)
		}
		for i := range ids {
			if got[i].RequestID != ids[i] {
				t.Fatalf("after saving %v: %+v", ids, got)
			}
		}
	}
	fi, err := os.Stat(p.records())
	if err != nil {
		t.Fatal(err)
	}
	if m := fi.Mode().Perm(); m != 0o644 {
		t.Errorf("records.json mode %o, want 644", m)
	}
	left, err := filepath.Glob(filepath.Join(p.keysDir(), ".tmp-*"))
	if err != nil || len(left) != 0 {
		t.Errorf("temporary files left: %v %v", left, err)
	}
}
