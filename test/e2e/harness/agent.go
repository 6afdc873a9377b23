package harness

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/kaginashi/kaginashi/internal/agent"
)

// AdminEnv is the environment of kaginashi client commands against s with
// its root credentials file, as an administrator sets it up.
func (s *Server) AdminEnv(t testing.TB) []string {
	return append(BaseEnv(), "HOME="+t.TempDir(),
		"AWS_ENDPOINT_URL="+s.URL(), "AWS_CA_BUNDLE="+s.CAPath(), "AWS_REGION="+s.Region, "AWS_CONFIG_FILE=/dev/null",
		"AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(s.Cfg.DataDir, "root-credentials"), "AWS_PROFILE=kaginashi-root")
}

// JoinToken makes a join token for uses enrollments with the CLI, as an
// administrator does: `kaginashi agent-token create --output json` in
// AdminEnv.
func (s *Server) JoinToken(t testing.TB, uses int) string {
	t.Helper()
	cmd := exec.Command(Kaginashi, "agent-token", "create", "--output", "json", "--max-uses", strconv.Itoa(uses), "--ttl", "10m")
	cmd.Env = s.AdminEnv(t)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kaginashi agent-token create: %v\n%s", err, stderr.String())
	}
	var tok struct {
		Token     string `json:"token"`
		ExpiresAt string `json:"expiresAt"`
	}
	if err := json.Unmarshal(out, &tok); err != nil || tok.Token == "" || tok.ExpiresAt == "" {
		t.Fatalf("kaginashi agent-token create --output json: %v\n%s", err, out)
	}
	return tok.Token
}

// AgentArgs are `kaginashi-agent run`'s flags for s with data directory
// dir, then more.
func (s *Server) AgentArgs(dir string, more ...string) []string {
	return append([]string{"run", "--server", s.URL(), "--data-dir", dir, "--ca-file", s.CAPath()}, more...)
}

// AgentConnected is what an agent logs each time it connects.
const AgentConnected = `msg="connected to the server"`

// InstanceID is the instance ID an enrolled agent keeps in DIR/agent.json.
func InstanceID(t testing.TB, dataDir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dataDir, "agent.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg agent.Config
	if err := json.Unmarshal(b, &cfg); err != nil || !strings.HasPrefix(cfg.InstanceID, "i-") {
		t.Fatalf("agent.json: %v %s", err, b)
	}
	return cfg.InstanceID
}
