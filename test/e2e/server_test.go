package e2e

import (
	"fmt"
	"os"
	"path/filepath"

	"testing"

	"github.com/kaginashi/kaginashi/internal/store/postgres/pgtest"
	"github.com/kaginashi/kaginashi/test/e2e/harness"
)

func TestMain(m *testing.M) {
	// pgtest.Main exits the process, so the binary's directory cannot be
	// removed afterwards: each run reaps the directories of runs whose
	// process is gone instead (harness.TempDir).
	dir, err := harness.TempDir(os.TempDir(), "kaginashi-e2e-bin-")
	if err == nil {
		err = harness.Build(dir, "./cmd/kaginashi")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(2)
	}
	harness.Kaginashi = filepath.Join(dir, "kaginashi")
	pgtest.Main(m)
}
