package deregister

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kaginashi/kaginashi/test/e2e/harness"
)

// TestDeregisterAcrossReplicas: two replicas on one PostgreSQL, the agent
// connected to A, the instance deregistered through B. B asks A (the
// holder, per the store's agent session record) to end the session: A
// audits PeerEndSession, the agent is cut off at once and refused when
// it reconnects (to either replica), and stops; neither replica routes a
// key to it.
func TestDeregisterAcrossReplicas(t *testing.T) {
	ctx := context.Background()
	a, b, auditA := twoReplicas(t)
	for _, p := range []*harness.Proc{a.Proc, b.Proc} {
		if !strings.Contains(p.Stderr.String(), "routing between replicas") {
			t.Fatalf("replica on port %d does not route:\n%s", p.Port, harness.Tail(p.Stderr.String(), 20))
		}
	}

	port := echoServer(t)
	agent, id := startAgent(t, a, "host", "dev", port)
	// B routes to A: the agent is reachable through B.
	if err := push(t, b, b.Root, id); err != nil {
		t.Fatalf("SendSSHPublicKey through B before: %v", err)
	}
	ws, st, body := openTunnel(t, b, b.Root, id, port)
	if ws == nil {
		t.Fatalf("open-tunnel through B before: %d %s", st, body)
	}
	defer ws.Close()
	if err := echo(ws, "before\n"); err != nil {
		t.Fatalf("through B's tunnel before: %v", err)
	}

	res, err := deregister(ctx, b, b.Root, id)
	if err != nil {
		t.Fatalf("DeregisterInstance through B: %v\nB:\n%s", err, harness.Tail(b.Stderr.String(), 20))
	}
	if !res.AgentSessionEnded {
		t.Errorf("B's answer says no session was ended: %+v\nB:\n%s", res, harness.Tail(b.Stderr.String(), 20))
	}
	evs := harness.AuditEvents(t, auditA, "PeerEndSession")
	if len(evs) != 1 || evs[0]["errorCode"] != nil {
		t.Fatalf("A's PeerEndSession events: %v; want one, successful", evs)
	}
	out := waitExit(t, agent, "its instance was deregistered through another replica")
	if !strings.Contains(out, enrollHint) {
		t.Fatalf("the agent's last words do not say %q:\n%s", enrollHint, harness.Tail(out, 20))
	}
	_ = ws.SetDeadline(time.Now().Add(harness.Bound(10 * time.Second)))
	if err := echo(ws, "after\n"); err == nil {
		t.Fatal("the tunnel through B, opened before the deregistration, still carries bytes")
	}
	for _, s := range []*harness.Server{a, b} {
		harness.WantCode(t, push(t, s, s.Root, id), "EC2InstanceNotFoundException", 404)
	}
}

// twoReplicas starts replicas A and B on one PostgreSQL, provisioned as an
// operator would (B gets A's master key, TLS material and root
// credentials); A writes its audit trail to the returned file too.
func twoReplicas(t *testing.T) (a, b *harness.Server, auditA string) {
	t.Helper()
	pg := harness.StoreFor(t, "postgres")
	args := []string{"--rate-limit=-1"}
	dirA := filepath.Join(t.TempDir(), "a")
	auditA = filepath.Join(t.TempDir(), "audit-a.jsonl")
	pa := harness.StartProc(t, harness.ServerConfig{DataDir: dirA, Store: pg, Args: append(args[:len(args):len(args)], "--audit-log", auditA)})
	t.Cleanup(func() { pa.Stop(t) })
	dirB := filepath.Join(t.TempDir(), "b")
	if err := os.MkdirAll(dirB, 0o700); err != nil {
		t.Fatal(err)
	}
	harness.CopyDataFiles(t, dirA, dirB, "master.key", "tls", "root-credentials")
	pb := harness.StartProc(t, harness.ServerConfig{DataDir: dirB, Store: pg, Args: args})
	t.Cleanup(func() { pb.Stop(t) })
	return harness.NewServer(t, pa, "postgres"), harness.NewServer(t, pb, "postgres"), auditA
}
