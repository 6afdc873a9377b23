package pgtest

import (
	"strings"
	"testing"
)

func TestMissingBinariesSayWhatToDo(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := findBinaries(t.TempDir() + "/*/bin")
	if err == nil || !strings.Contains(err.Error(), "scripts/deps.sh test") || !strings.Contains(err.Error(), SkipEnv) {
		t.Fatalf("error without instructions: %v", err)
	}
}

func TestFindsDebianBinaries(t *testing.T) {
	b, err := findBinaries("/usr/lib/postgresql/*/bin")
	if err != nil {
		t.Skip("no PostgreSQL installed here:", err)
	}
	if !strings.HasSuffix(b.initdb, "/initdb") || !strings.HasSuffix(b.postgres, "/postgres") {
		t.Fatalf("found %+v", b)
	}
}
