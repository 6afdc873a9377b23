package sshlogin

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kaginashi/kaginashi/internal/agent"
	"github.com/kaginashi/kaginashi/internal/agentproto"
	"github.com/kaginashi/kaginashi/internal/store"
	"github.com/kaginashi/kaginashi/test/e2e/harness"
)

// kaginashiCmd runs the kaginashi binary as an administrator would and
// returns its exit code and output.
func kaginashiCmd(t *testing.T, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(harness.Kaginashi, args...)
	cmd.Env = harness.BaseEnv()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), out.String()
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0, out.String()
}

// TestSigningKeyRollover: a real server, a real agent and a real sshd. A
// login works; the server is stopped, its record-signing key rotated,
// started again; the agent reconnects, adopts the new key (endorsed by the
// one it pinned at enrollment), and a new push logs in. identity.json shows
// the new key and the old one retired for a few minutes; a record signed by
// a random key is still refused.
func TestSigningKeyRollover(t *testing.T) {
	requireWorld(t)
	t.Parallel()
	ctx := context.Background()
	dataDir := filepath.Join(t.TempDir(), "data")
	cfg := harness.ServerConfig{DataDir: dataDir, Args: []string{"--region", region, "--account-id", account, "--rate-limit=-1"}}
	p1 := harness.StartProc(t, cfg)
	s1 := harness.NewServer(t, p1, "sqlite")
	a := enrollAgent(t, s1, "rollover", joinToken(t, s1, 1))
	sshd := startSSHD(t, sshdOptions{dataDir: a.dir})
	userA := world.userA
	paths := agent.Paths{Dir: a.dir}
	before, err := paths.LoadPublic()
	if err != nil {
		t.Fatal(err)
	}

	k1 := newKey(t)
	push(t, s1.EIC(s1.Root), a.id, userA, k1)
	sshd.wantLogin(t, userA, k1)

	// Beside a running server the rotation refuses.
	if code, out := kaginashiCmd(t, "server", "rotate-signing-key", "--data-dir", dataDir); code != 1 || !strings.Contains(out, "server is running") {
		t.Fatalf("rotate-signing-key beside a running server: exit %d\n%s", code, out)
	}
	p1.Stop(t)
	a.proc.WaitOutput(t, "disconnected from the server", 1, 10*time.Second)
	code, out := kaginashiCmd(t, "server", "rotate-signing-key", "--data-dir", dataDir)
	if code != 0 {
		t.Fatalf("rotate-signing-key: exit %d\n%s", code, out)
	}
	m := regexp.MustCompile(`old (SHA256:\S+)\n\s+new (SHA256:\S+) `).FindStringSubmatch(out)
	if m == nil || m[1] != agentproto.KeyID(before.SigningKey) || m[1] == m[2] {
		t.Fatalf("rotate-signing-key said:\n%s\n(the agent pinned %s)", out, agentproto.KeyID(before.SigningKey))
	}
	newID := m[2]

	cfg.Port = p1.Port
	p2 := harness.StartProc(t, cfg)
	t.Cleanup(func() { p2.Stop(t) })
	s2 := harness.NewServer(t, p2, "sqlite")
	a.waitConnected(t, 2)
	a.proc.WaitOutput(t, "adopted the server's new record-signing key", 1, 10*time.Second)

	k2 := newKey(t)
	var lastErr error
	waitFor(t, "a push after the rotation", 10*time.Second, func() bool {
		_, lastErr = sendKey(s2.EIC(s2.Root), a.id, userA, k2)
		return lastErr == nil
	})
	sshd.wantLogin(t, userA, k2)

	after, err := paths.LoadPublic()
	if err != nil {
		t.Fatal(err)
	}
	if agentproto.KeyID(after.SigningKey) != newID {
		t.Fatalf("identity.json pins %s, want the new key %s", agentproto.KeyID(after.SigningKey), newID)
	}
	if len(after.RetiredSigningKeys) != 1 || !bytes.Equal(after.RetiredSigningKeys[0].Key, before.SigningKey) {
		t.Fatalf("identity.json's retired keys: %+v, want the old key", after.RetiredSigningKeys)
	}
	if until := time.UnixMilli(after.RetiredSigningKeys[0].Until); until.Before(time.Now().Add(3*time.Minute)) || until.After(time.Now().Add(6*time.Minute)) {
		t.Errorf("the old key is retired until %v, want about 5 minutes from now", until)
	}
	if after.InstanceID != before.InstanceID || after.ExpiryOption != before.ExpiryOption {
		t.Errorf("identity.json lost fields: %+v, was %+v", after, before)
	}
	st, err := paths.ReadStatus()
	if err != nil || st.SigningKey != newID || st.SigningKeyError != "" {
		t.Errorf("status.json: %+v %v", st, err)
	}
	// k1's record, signed by the old key before the rotation, is still
	// served while it lives: the old key is retired, not distrusted.
	checked := false
	for _, r := range records(t, a.dir) {
		if r.Fingerprint == k1.fp && time.Unix(r.ExpiresAt, 0).After(time.Now().Add(3*time.Second)) {
			checked = true
			if out, _ := authorizedKeys(t, a.dir, userA, k1.fp); !strings.Contains(out, strings.Fields(k1.line)[1]) {
				t.Errorf("authorized-keys no longer serves a live record of the retired key: %q", out)
			}
			sshd.wantLogin(t, userA, k1)
		}
	}
	if !checked && !harness.RaceBuilt() {
		t.Error("the record signed by the old key is gone before its expiry")
	}

	// A record signed by a random key is refused, before and after.
	k3 := newKey(t)
	genuine := recordOf(t, a.dir, push(t, s2.EIC(s2.Root), a.id, userA, k3))
	_, random, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k4 := newKey(t)
	forged := genuine
	forged.RequestID, forged.PublicKey, forged.Fingerprint = "forged-1", strings.Join(strings.Fields(k4.line)[:2], " "), k4.fp
	if err := forged.Sign(random); err != nil {
		t.Fatal(err)
	}
	writeRecords(t, a.dir, genuine, forged)
	wantNoKeys(t, a.dir, userA, k4)
	sshd.wantRefused(t, userA, k4)
	sshd.wantLogin(t, userA, k3)

	// The rotation is in the audit trail, with both keys and no secret.
	evs, _, err := s2.OpenStore(t).LookupAudit(ctx, store.AuditFilter{EventName: "RotateSigningKey"})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 2 || evs[0].ErrorCode != "" || evs[1].ErrorCode != "ServerRunning" ||
		!strings.Contains(string(evs[0].Record), newID) || !strings.Contains(string(evs[0].Record), agentproto.KeyID(before.SigningKey)) {
		for _, e := range evs {
			t.Logf("%s", e.Record)
		}
		t.Fatalf("RotateSigningKey audit events: %d, want the rotation after the refusal", len(evs))
	}
}

// issuer reads the agent's client certificate and returns its issuer's
// key identifier (the agent CA that issued it).
func issuer(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "identity.crt"))
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(b)
	if block == nil {
		t.Fatal("identity.crt: no PEM")
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "identity.crt")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("identity.crt: %v, mode %v; want 0600", err, fi.Mode().Perm())
	}
	return fmt.Sprintf("%x", c.AuthorityKeyId)
}

// TestAgentCARotation: a real server, two real agents (one offline during
// the rotation) and a real sshd. rotate-agent-ca with the server stopped;
// the connected agent gets a certificate of the new CA and, after the
// next server restart, connects with it and a pushed key logs in.
// --finish refuses while the offline instance has not connected, says
// which, and with --force drops the old CA: the offline agent is then
// refused.
func TestAgentCARotation(t *testing.T) {
	requireWorld(t)
	t.Parallel()
	ctx := context.Background()
	dataDir := filepath.Join(t.TempDir(), "data")
	cfg := harness.ServerConfig{DataDir: dataDir, Args: []string{"--region", region, "--account-id", account, "--rate-limit=-1"}}
	p1 := harness.StartProc(t, cfg)
	s1 := harness.NewServer(t, p1, "sqlite")
	tok := joinToken(t, s1, 2)
	a := enrollAgent(t, s1, "ca-rotation", tok)
	away := enrollAgent(t, s1, "ca-away", tok)
	away.proc.Kill(t)
	sshd := startSSHD(t, sshdOptions{dataDir: a.dir})
	userA := world.userA
	oldIssuer := issuer(t, a.dir)

	if code, out := kaginashiCmd(t, "server", "rotate-agent-ca", "--data-dir", dataDir); code != 1 || !strings.Contains(out, "server is running") {
		t.Fatalf("rotate-agent-ca beside a running server: exit %d\n%s", code, out)
	}
	p1.Stop(t)
	a.proc.WaitOutput(t, "disconnected from the server", 1, 10*time.Second)
	code, out := kaginashiCmd(t, "server", "rotate-agent-ca", "--data-dir", dataDir)
	if code != 0 || !strings.Contains(out, "Started an agent CA rotation") {
		t.Fatalf("rotate-agent-ca: exit %d\n%s", code, out)
	}
	if code, out := kaginashiCmd(t, "server", "rotate-agent-ca", "--data-dir", dataDir); code != 1 || !strings.Contains(out, "in progress") {
		t.Fatalf("a second rotate-agent-ca: exit %d\n%s", code, out)
	}

	// The agent connects with its old certificate and is given a new one.
	cfg.Port = p1.Port
	p2 := harness.StartProc(t, cfg)
	s2 := harness.NewServer(t, p2, "sqlite")
	a.proc.WaitOutput(t, "stored a new client certificate", 1, 30*time.Second)
	if issuer(t, a.dir) == oldIssuer {
		t.Fatal("identity.crt is still from the old CA")
	}
	// It reconnects at once with it (the session that brought it ends
	// before it counts as connected): the server counts it as moved.
	a.waitConnected(t, 2)
	k1 := newKey(t)
	waitFor(t, "a push after the CA rotation", 10*time.Second, func() bool {
		_, err := sendKey(s2.EIC(s2.Root), a.id, userA, k1)
		return err == nil
	})
	sshd.wantLogin(t, userA, k1)

	// --finish: the agent that was away has not connected.
	gone := strings.Count(a.proc.Output.String(), "disconnected from the server")
	p2.Stop(t)
	a.proc.WaitOutput(t, "disconnected from the server", gone+1, 10*time.Second)
	code, out = kaginashiCmd(t, "server", "rotate-agent-ca", "--finish", "--data-dir", dataDir)
	if code != 1 || !strings.Contains(out, "1 enrolled instance(s) have not connected") || !strings.Contains(out, away.id) || strings.Contains(out, a.id) {
		t.Fatalf("--finish with an instance on the old CA: exit %d\n%s", code, out)
	}
	code, out = kaginashiCmd(t, "server", "rotate-agent-ca", "--finish", "--force", "--data-dir", dataDir)
	if code != 0 || !strings.Contains(out, "Finished the agent CA rotation") {
		t.Fatalf("--finish --force: exit %d\n%s", code, out)
	}

	p3 := harness.StartProc(t, cfg)
	t.Cleanup(func() { p3.Stop(t) })
	s3 := harness.NewServer(t, p3, "sqlite")
	a.waitConnected(t, 3) // with the new CA's certificate: the old CA is gone
	k2 := newKey(t)
	waitFor(t, "a push after --finish", 10*time.Second, func() bool {
		_, err := sendKey(s3.EIC(s3.Root), a.id, userA, k2)
		return err == nil
	})
	sshd.wantLogin(t, userA, k2)

	// The agent that was away still holds the old CA's certificate: refused.
	away.start0(t)
	away.proc.WaitOutput(t, "unknown certificate authority", 1, 20*time.Second)
	t.Logf("the agent that was away: %s", harness.Tail(away.proc.Output.String(), 3))
	if strings.Contains(away.proc.Output.String(), harness.AgentConnected) {
		t.Fatalf("an agent with a certificate of the dropped CA connected:\n%s", harness.Tail(away.proc.Output.String(), 20))
	}

	evs, _, err := s3.OpenStore(t).LookupAudit(ctx, store.AuditFilter{EventName: "RotateAgentCA"})
	if err != nil {
		t.Fatal(err)
	}
	// Newest first: --finish --force, --finish refused, the refused second
	// rotation, the rotation, the refusal beside the server.
	if len(evs) != 5 || evs[0].ErrorCode != "" || evs[1].ErrorCode == "" || evs[3].ErrorCode != "" || evs[4].ErrorCode != "ServerRunning" {
		for _, e := range evs {
			t.Logf("%s", e.Record)
		}
		t.Fatalf("RotateAgentCA audit events: %d", len(evs))
	}
}

// start0 runs the agent again without waiting for it to connect.
func (a *hostAgent) start0(t *testing.T) {
	t.Helper()
	a.runs++
	a.proc = harness.Spawn(t, fmt.Sprintf("agent %s (run %d)", a.dir, a.runs), append(harness.BaseEnv(), "HOME=/"), world.agent, a.s.AgentArgs(a.dir)...)
}
