package replicas

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	eic "github.com/aws/aws-sdk-go-v2/service/ec2instanceconnect"

	"github.com/kaginashi/kaginashi/test/e2e/harness"
)

// TestPeerListen: replica B serves the peer API on a listener of its own
// (--peer-listen on 127.0.0.2, standing in for a private interface). A key
// pushed, and a tunnel opened, through A reach the agent connected to B
// through that listener; B's public listener answers /_peer/ with 404, as
// for a path that does not exist, and its peer listener serves /healthz
// and nothing of the API.
//
// It uses the world TestMain made (sshd's safe directory, the local user)
// and leaves its removal to TestReplicas, which runs after it (files run
// in name order); run alone, the next run's TestMain reaps them.
func TestPeerListen(t *testing.T) {
	if world.skip != "" {
		t.Skip(world.skip)
	}
	ctx := context.Background()
	pg := harness.StoreFor(t, "postgres")
	args := []string{"--region", region, "--account-id", account, "--rate-limit=-1"}

	dirA := filepath.Join(t.TempDir(), "a")
	pa := harness.StartProc(t, harness.ServerConfig{DataDir: dirA, Store: pg, Args: args})
	t.Cleanup(func() { pa.Stop(t) })
	a := harness.NewServer(t, pa, "postgres")
	dirB := filepath.Join(t.TempDir(), "b")
	if err := os.MkdirAll(dirB, 0o700); err != nil {
		t.Fatal(err)
	}
	harness.CopyDataFiles(t, dirA, dirB, "master.key", "tls", "root-credentials")
	auditB := filepath.Join(t.TempDir(), "audit-b.jsonl")
	peerAddr := "127.0.0.2:" + strconv.Itoa(harness.FreePort(t))
	pb := harness.StartProc(t, harness.ServerConfig{DataDir: dirB, Store: pg,
		Args: append(args[:len(args):len(args)], "--audit-log", auditB, "--peer-listen", peerAddr)})
	t.Cleanup(func() { pb.Stop(t) })
	b := harness.NewServer(t, pb, "postgres")
	// B's default peer URL is its peer listener's address, which A dials.
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(pb.Stderr.String(), "routing between replicas") && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	if want := `peerURL=https://` + peerAddr; !strings.Contains(pb.Stderr.String(), want) {
		t.Fatalf("B does not route at its peer listener (want %s):\n%s", want, harness.Tail(pb.Stderr.String(), 20))
	}

	// The agent is B's.
	agentDir := harness.AgentDataDir(t, world.safe, "host")
	sshd := harness.StartSSHD(t, harness.SSHDOptions{
		Comment: "# a kaginashi peer-listen test sshd", PublishHostKey: true, NoPenalties: true,
		Lines: []string{
			"AuthorizedKeysFile none",
			"AuthorizedKeysCommand " + world.agent + " authorized-keys --data-dir " + agentDir + " %u %f",
			"AuthorizedKeysCommandUser nobody",
			"MaxAuthTries 1",
		},
	})
	knownHosts := filepath.Join(t.TempDir(), "known_hosts")
	sshd.PinHostKey(t, knownHosts)
	agent := harness.Spawn(t, "agent", append(harness.BaseEnv(), "HOME=/"), world.agent,
		b.AgentArgs(agentDir, "--join-token", b.JoinToken(t, 1), "--sshd-config", sshd.Config, "--allow-port", strconv.Itoa(sshd.Port))...)
	agent.WaitOutput(t, harness.AgentConnected, 1, harness.Bound(30*time.Second))
	id := harness.InstanceID(t, agentDir)

	t.Run("PushThroughA", func(t *testing.T) {
		keyPath := filepath.Join(t.TempDir(), "id_ed25519")
		pubLine := harness.AuthorizedKey(t, harness.WriteEd25519Key(t, keyPath, ""))
		if _, err := a.EIC(a.Root, harness.AuditedAs("-")).SendSSHPublicKey(ctx, &eic.SendSSHPublicKeyInput{
			InstanceId: aws.String(id), InstanceOSUser: aws.String(world.user), SSHPublicKey: aws.String(pubLine)}); err != nil {
			t.Fatalf("SendSSHPublicKey through A (the agent is on B): %v\nA:\n%s\nB:\n%s", err,
				harness.Tail(pa.Stderr.String(), 20), harness.Tail(pb.Stderr.String(), 20))
		}
		out, errOut, code := run(t, append(harness.BaseEnv(), "HOME="+t.TempDir()), "ssh", "-F", "/dev/null",
			"-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes", "-o", "UserKnownHostsFile="+knownHosts,
			"-o", "GlobalKnownHostsFile=/dev/null", "-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none",
			"-o", "ConnectTimeout=10", "-o", "LogLevel=ERROR", "-i", keyPath, "-p", strconv.Itoa(sshd.Port),
			world.user+"@127.0.0.1", "echo ok")
		if code != 0 || out != "ok\n" {
			t.Fatalf("ssh after the push: exit %d, %q\n%s", code, out, errOut)
		}
		if evs := harness.AuditEvents(t, auditB, "PeerDeliver"); len(evs) != 1 || evs[0]["errorCode"] != nil {
			t.Fatalf("B's PeerDeliver events: %v; want one, successful", evs)
		}
	})

	t.Run("SSHThroughA", func(t *testing.T) {
		home := t.TempDir()
		if err := os.MkdirAll(filepath.Join(home, "tmp"), 0o700); err != nil {
			t.Fatal(err)
		}
		env := append(harness.BaseEnv(), "HOME="+home, "TMPDIR="+filepath.Join(home, "tmp"),
			"AWS_ENDPOINT_URL="+a.URL(), "AWS_CA_BUNDLE="+a.CAPath(), "AWS_REGION="+region,
			"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null",
			"AWS_ACCESS_KEY_ID="+a.Root.ID, "AWS_SECRET_ACCESS_KEY="+a.Root.Secret)
		out, errOut, code := run(t, env, harness.Kaginashi, "ssh", world.user+"@"+id, "--", "echo", "ok")
		if code != 0 || out != "ok\n" {
			t.Fatalf("kaginashi ssh through A: exit %d, %q\n%s\nA:\n%s\nB:\n%s", code, out, errOut,
				harness.Tail(pa.Stderr.String(), 20), harness.Tail(pb.Stderr.String(), 20))
		}
		deadline := time.Now().Add(harness.Bound(5 * time.Second))
		for len(harness.AuditEvents(t, auditB, "PeerTunnel")) != 1 {
			if time.Now().After(deadline) {
				t.Fatalf("B's PeerTunnel events: %v; want one", harness.AuditEvents(t, auditB, "PeerTunnel"))
			}
			time.Sleep(100 * time.Millisecond)
		}
	})

	t.Run("Listeners", func(t *testing.T) {
		client := pb.HTTPClient(t) // B's CA; the certificate names localhost and 127.0.0.1
		tr := client.Transport.(*http.Transport)
		tr.TLSClientConfig.ServerName = "localhost" // as the replicas verify each other
		status := func(method, u string) int {
			t.Helper()
			req, err := http.NewRequest(method, u, strings.NewReader("{}"))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatalf("%s %s: %v", method, u, err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			return resp.StatusCode
		}
		peer := "https://" + peerAddr
		for _, c := range []struct {
			method, url string
			want        int
		}{
			{"POST", b.URL() + "/_peer/deliver", http.StatusNotFound},
			{"GET", b.URL() + "/_peer/tunnel?instanceId=" + id + "&port=22", http.StatusNotFound},
			{"GET", b.URL() + "/healthz", http.StatusOK},
			{"GET", peer + "/healthz", http.StatusOK},
			{"POST", peer + "/_peer/deliver", http.StatusUnauthorized}, // there, and unsigned
			{"POST", peer + "/", http.StatusNotFound},
			{"GET", peer + "/openTunnel", http.StatusNotFound},
			// A has no --peer-listen: its peer API stays on its listener.
			{"POST", a.URL() + "/_peer/deliver", http.StatusUnauthorized},
		} {
			if got := status(c.method, c.url); got != c.want {
				t.Errorf("%s %s: %d, want %d", c.method, c.url, got, c.want)
			}
		}
		if t.Failed() {
			fmt.Fprintln(os.Stderr, harness.Tail(pb.Stderr.String(), 20))
		}
	})
}
