package agentmetrics

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	eic "github.com/aws/aws-sdk-go-v2/service/ec2instanceconnect"
	"golang.org/x/crypto/ssh"

	"github.com/kaginashi/kaginashi/internal/authkeys"
	"github.com/kaginashi/kaginashi/test/e2e/harness"
)

// TestAKCRefusalsCounted: the real kaginashi-authorized-keys binary, run
// as sshd runs it (as user nobody when the test runs as root, only PATH
// in the environment, USER and FINGERPRINT as %u %f), reports the keys it
// refuses to the real agent's metrics: a pushed key offered for another
// user, a record whose signature fails, a data directory it cannot read.
// A served key and a key kaginashi never pushed count nothing.
func TestAKCRefusalsCounted(t *testing.T) {
	// A directory the unprivileged command can traverse (t.TempDir is
	// 0700), holding the data directory and a copy of the binary.
	root, err := os.MkdirTemp("", "kaginashi-akc-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatal(err)
	}
	akc := filepath.Join(root, "kaginashi-authorized-keys")
	b, err := os.ReadFile(akcBin)
	if err != nil {
		t.Fatal(err)
	}
	harness.WriteFile(t, akc, b, 0o755)

	maddr := fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
	s := startSiteIn(t, filepath.Join(root, "agent"), 22, "--metrics-listen", maddr)
	s.agent.WaitOutput(t, `msg="serving metrics"`, 1, bound(10*time.Second))
	url := "http://" + maddr + "/metrics"
	sock := authkeys.RefusalSocketPath(s.dataDir)
	if st, err := os.Stat(sock); err != nil || st.Mode()&os.ModeSocket == 0 {
		t.Fatalf("the agent's refusal socket %s: %v", sock, err)
	}

	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		nobody, err := user.Lookup("nobody")
		if err != nil {
			t.Fatalf("user nobody: %v", err)
		}
		uid, _ := strconv.Atoi(nobody.Uid)
		gid, _ := strconv.Atoi(nobody.Gid)
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), NoSetGroups: true}
	} else {
		t.Log("not root: the command runs as this user, not as nobody")
	}
	run := func(osUser, fp string) string {
		t.Helper()
		cmd := exec.Command(akc, "authorized-keys", "--data-dir", s.dataDir, osUser, fp)
		cmd.Env = []string{"PATH=/usr/bin:/bin"}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil {
			t.Fatalf("%s %s: %v\n%s", osUser, fp, err, errb.String())
		}
		return out.String()
	}
	refusals := func() map[string]float64 {
		mfs := scrape(t, url)
		got := map[string]float64{}
		for _, r := range authkeys.AKCReasons {
			got[r] = value(mfs, "kaginashi_agent_authorized_keys_refusals_total", "reason", r)
		}
		return got
	}
	// The datagrams are asynchronous: wait for the counts to arrive.
	expect := func(what string, want map[string]float64) {
		t.Helper()
		deadline := time.Now().Add(bound(5 * time.Second))
		for {
			got := refusals()
			if fmt.Sprint(got) == fmt.Sprint(want) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: refusals %v, want %v", what, got, want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	want := map[string]float64{}
	for _, r := range authkeys.AKCReasons {
		want[r] = 0
	}
	expect("at start", want)

	pub := harness.WriteEd25519Key(t, filepath.Join(t.TempDir(), "id_ed25519"), "")
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	fp := ssh.FingerprintSHA256(sshPub)
	push := harness.Must(s.EIC(s.Root).SendSSHPublicKey(context.Background(), &eic.SendSSHPublicKeyInput{
		InstanceId: aws.String(s.instance), InstanceOSUser: aws.String("ec2-user"), SSHPublicKey: aws.String(harness.AuthorizedKey(t, pub))}))(t)
	if !push.Success {
		t.Fatal("SendSSHPublicKey: no success")
	}

	if out := run("ec2-user", fp); out == "" {
		t.Fatal("the pushed key was not served")
	}
	if out := run("ec2-user", "SHA256:"+string(bytes.Repeat([]byte("A"), 43))); out != "" {
		t.Fatalf("an unknown key was served: %q", out)
	}
	expect("a served key and an unknown key", want)

	if out := run("root", fp); out != "" {
		t.Fatalf("the key pushed for ec2-user was served for root: %q", out)
	}
	want[authkeys.AKCUser] = 1
	expect("the key offered for another user", want)

	// A record whose signature no longer verifies (as after a rollover
	// the agent missed, or a tampered file).
	recPath := authkeys.RecordsPath(s.dataDir)
	raw, err := os.ReadFile(recPath)
	if err != nil {
		t.Fatal(err)
	}
	var recs authkeys.Records
	if err := json.Unmarshal(raw, &recs); err != nil || len(recs.Records) != 1 {
		t.Fatalf("records.json: %v, %d records", err, len(recs.Records))
	}
	recs.Records[0].Signature[0] ^= 1
	bad, _ := json.Marshal(recs)
	harness.WriteFile(t, recPath, bad, 0o644)
	if out := run("ec2-user", fp); out != "" {
		t.Fatalf("a record with a bad signature was served: %q", out)
	}
	want[authkeys.AKCSignature] = 1
	expect("a bad signature", want)

	if cred != nil {
		// identity.json that the command's user cannot read.
		pubPath := authkeys.PublicPath(s.dataDir)
		if err := os.Chmod(pubPath, 0o600); err != nil {
			t.Fatal(err)
		}
		run("ec2-user", fp)
		if err := os.Chmod(pubPath, 0o644); err != nil {
			t.Fatal(err)
		}
		want[authkeys.AKCUnreadable] = 1
		expect("an unreadable identity.json", want)
	}
	harness.WriteFile(t, recPath, raw, 0o644)

	// Stopped, the agent removes its socket; the command still answers,
	// at once, and nothing is left behind.
	if err := s.agent.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	<-s.agent.Done()
	if _, err := os.Lstat(sock); err == nil {
		t.Error("the refusal socket outlived the agent")
	}
	start := time.Now()
	if out := run("root", fp); out != "" {
		t.Fatalf("served without the agent: %q", out)
	}
	if d := time.Since(start); d > bound(2*time.Second) {
		t.Errorf("a refusing call without the agent took %v", d)
	}
}
