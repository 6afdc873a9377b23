package rotate

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2instanceconnect"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/kaginashi/kaginashi/internal/bootstrap"
	"github.com/kaginashi/kaginashi/internal/seal"
	"github.com/kaginashi/kaginashi/internal/store"
	"github.com/kaginashi/kaginashi/internal/store/postgres/pgtest"
	"github.com/kaginashi/kaginashi/test/e2e/harness"
)

var world struct{ agent string }

func TestMain(m *testing.M) {
	// pgtest.Main exits the process: a stale binary directory is reaped
	// by a later run.
	harness.ReapStale(os.TempDir(), "kaginashi-rotate-bin-")
	bin, err := harness.BuildKaginashi("kaginashi-rotate-bin-", "./cmd/kaginashi-agent")
	if err != nil {
		fmt.Fprintln(os.Stderr, "rotate:", err)
		os.Exit(2)
	}
	world.agent = filepath.Join(bin, "kaginashi-agent")
	pgtest.Main(m)
}

// rotate runs the command as an admin would and returns its exit code and
// output.
func rotate(t *testing.T, env []string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(harness.Kaginashi, append([]string{"server", "rotate-master-key"}, args...)...)
	cmd.Env = append(harness.BaseEnv(), env...)
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

func totpAt(t *testing.T, seed string, at time.Time) string {
	t.Helper()
	c, err := totp.GenerateCodeCustom(seed, at, totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestRotateMasterKey: a user with an access key and an MFA device, an
// enrolled agent; the server stopped, the key rotated, the server started
// again: the old access key still signs, a push still verifies at the
// agent (which pinned the signing key at enrollment), the MFA seed still
// checks codes, and the old master key opens nothing.
func TestRotateMasterKey(t *testing.T) {
	for _, engine := range harness.Engines {
		t.Run(engine, func(t *testing.T) { testRotate(t, engine) })
	}
}

func testRotate(t *testing.T, engine string) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "data")
	cfg := harness.ServerConfig{DataDir: dir, Store: harness.StoreFor(t, engine), Args: []string{"--rate-limit=-1"}}
	cfg.Port = harness.FreePort(t)
	s := harness.NewServer(t, harness.StartProc(t, cfg), engine)
	storeArgs := []string{"--data-dir", dir}
	if cfg.Store != "" {
		storeArgs = append(storeArgs, "--store", cfg.Store)
	}

	// A user who may push keys, with an access key and an MFA device.
	root := s.IAM(s.Root)
	harness.Must(root.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("alice")}))(t)
	harness.Must(root.PutUserPolicy(ctx, &iam.PutUserPolicyInput{UserName: aws.String("alice"), PolicyName: aws.String("push"),
		PolicyDocument: aws.String(harness.SeedPolicy(t, s.Region, s.Account))}))(t)
	ak := harness.Must(root.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String("alice")}))(t)
	alice := harness.Creds{Who: "alice", ID: aws.ToString(ak.AccessKey.AccessKeyId), Secret: aws.ToString(ak.AccessKey.SecretAccessKey)}
	dev := harness.Must(root.CreateVirtualMFADevice(ctx, &iam.CreateVirtualMFADeviceInput{VirtualMFADeviceName: aws.String("alice-phone")}))(t)
	serial, seed := aws.ToString(dev.VirtualMFADevice.SerialNumber), string(dev.VirtualMFADevice.Base32StringSeed)

	// A real agent, enrolled: it pins the record-signing key.
	agentDir := filepath.Join(t.TempDir(), "agent")
	agent := harness.Spawn(t, "agent", append(harness.BaseEnv(), "HOME="+agentDir), world.agent,
		s.AgentArgs(agentDir, "--join-token", s.JoinToken(t, 1))...)
	agent.WaitOutput(t, harness.AgentConnected, 1, harness.Bound(30*time.Second))
	instance := harness.InstanceID(t, agentDir)
	push := func(s *harness.Server) error {
		_, err := s.EIC(alice).SendSSHPublicKey(ctx, &ec2instanceconnect.SendSSHPublicKeyInput{
			InstanceId: aws.String(instance), InstanceOSUser: aws.String("root"), SSHPublicKey: aws.String(harness.Ed25519Key(t))})
		return err
	}
	if err := push(s); err != nil {
		t.Fatalf("push before the rotation: %v", err)
	}

	// Beside a running server the rotation refuses, and changes nothing.
	keyPath := filepath.Join(dir, "master.key")
	oldKey, err := bootstrap.ReadKeyFile(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	code, out := rotate(t, nil, storeArgs...)
	if code != 1 || !strings.Contains(out, "server is running") {
		t.Fatalf("rotation beside a running server: exit %d\n%s", code, out)
	}
	if k, _ := bootstrap.ReadKeyFile(keyPath); !bytes.Equal(k, oldKey) {
		t.Fatal("a refused rotation changed master.key")
	}

	s.Stop(t)
	code, out = rotate(t, nil, storeArgs...)
	if code != 0 {
		t.Fatalf("rotate-master-key: exit %d\n%s", code, out)
	}
	// Root's key, alice's key, the MFA seed, the agent CA, the signing
	// key and the canary.
	if !strings.Contains(out, "Re-sealed 6 secrets") || !strings.Contains(out, "until you delete it") {
		t.Fatalf("rotate-master-key said:\n%s", out)
	}
	if engine == "postgres" && !strings.Contains(out, "every other replica") {
		t.Fatalf("no word about the other replicas:\n%s", out)
	}
	old := regexp.MustCompile(`kept as (\S+master\.key\.old-\d{8}T\d{6}Z) `).FindStringSubmatch(out)
	if old == nil {
		t.Fatalf("no old key file named:\n%s", out)
	}
	if k, err := bootstrap.ReadKeyFile(old[1]); err != nil || !bytes.Equal(k, oldKey) {
		t.Fatalf("old key file %s: %v (the old key: %v)", old[1], err, bytes.Equal(k, oldKey))
	}
	newKey, err := bootstrap.ReadKeyFile(keyPath)
	if err != nil || bytes.Equal(newKey, oldKey) {
		t.Fatalf("master.key after the rotation: %v, unchanged %v", err, bytes.Equal(newKey, oldKey))
	}

	// The server starts again with the new key, on the same port, and
	// the agent comes back.
	s2 := harness.NewServer(t, harness.StartProc(t, cfg), engine)
	t.Cleanup(func() { s2.Stop(t) })
	agent.WaitOutput(t, harness.AgentConnected, 2, harness.Bound(60*time.Second))

	id, err := s2.STS(alice).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil || !strings.HasSuffix(aws.ToString(id.Arn), ":user/alice") {
		t.Fatalf("alice's old access key after the rotation: %v %v", err, id)
	}
	// Success only once the agent verified the record's signature with
	// the key it pinned before the rotation.
	var pushErr error
	for deadline := time.Now().Add(harness.Bound(10 * time.Second)); ; time.Sleep(200 * time.Millisecond) {
		if pushErr = push(s2); pushErr == nil || time.Now().After(deadline) {
			break
		}
	}
	if pushErr != nil {
		t.Fatalf("push after the rotation: %v", pushErr)
	}
	// The MFA seed opens: codes from the seed shown before the rotation
	// enable the device.
	now := time.Now()
	if _, err := s2.IAM(s2.Root).EnableMFADevice(ctx, &iam.EnableMFADeviceInput{UserName: aws.String("alice"), SerialNumber: aws.String(serial),
		AuthenticationCode1: aws.String(totpAt(t, seed, now.Add(-30*time.Second))), AuthenticationCode2: aws.String(totpAt(t, seed, now))}); err != nil {
		t.Fatalf("EnableMFADevice with the seed from before the rotation: %v", err)
	}

	// Both attempts are in the audit trail: the refusal, then the rotation.
	st := s2.OpenStore(t)
	evs, _, err := st.LookupAudit(ctx, store.AuditFilter{EventName: "RotateMasterKey"})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 2 || evs[0].ErrorCode != "" || evs[1].ErrorCode != "ServerRunning" ||
		!strings.Contains(string(evs[0].Record), `"resealedCount":6`) {
		for _, e := range evs {
			t.Logf("%s", e.Record)
		}
		t.Fatalf("RotateMasterKey audit events: %d, want the rotation after the refusal", len(evs))
	}

	// The old master key opens nothing in the database; the new one does.
	k, err := st.GetAccessKey(ctx, alice.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		key   []byte
		opens bool
	}{{"old", oldKey, false}, {"new", newKey, true}} {
		sealer, err := seal.New(c.key)
		if err != nil {
			t.Fatal(err)
		}
		secret, err := sealer.Open(k.SecretCiphertext, k.ID)
		if got := err == nil && string(secret) == alice.Secret; got != c.opens {
			t.Errorf("the %s master key opens alice's secret: %v, want %v", c.name, got, c.opens)
		}
		d, err := st.GetMFADevice(ctx, serial)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := sealer.Open(d.SeedCiphertext, d.SerialNumber); (err == nil) != c.opens {
			t.Errorf("the %s master key opens the MFA seed: %v, want %v", c.name, err == nil, c.opens)
		}
	}
}
