package agentmetrics

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/kaginashi/kaginashi/test/e2e/harness"
)

// agentBin is the kaginashi-agent binary the tests run; akcBin the
// AuthorizedKeysCommand's own binary.
var agentBin, akcBin string

func TestMain(m *testing.M) {
	bin, err := harness.BuildKaginashi("kaginashi-agentmetrics-bin-", "./cmd/kaginashi-agent", "./cmd/kaginashi-authorized-keys")
	if err != nil {
		os.RemoveAll(bin)
		fmt.Fprintln(os.Stderr, "agentmetrics:", err)
		os.Exit(2)
	}
	agentBin = filepath.Join(bin, "kaginashi-agent")
	akcBin = filepath.Join(bin, "kaginashi-authorized-keys")
	code := m.Run()
	os.RemoveAll(bin)
	os.Exit(code)
}
