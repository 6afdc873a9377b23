package sshlogin

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	eictypes "github.com/aws/aws-sdk-go-v2/service/ec2instanceconnect/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"

	"github.com/kaginashi/kaginashi/internal/keyrecord"
	"github.com/kaginashi/kaginashi/test/e2e/harness"
)

// TestSSHLogin is one server with the agents of three hosts (instances),
// the first one's sshd, and cases that run in parallel against them.
func TestSSHLogin(t *testing.T) {
	requireWorld(t)
	t.Parallel()
	s := startServer(t)
	tok := joinToken(t, s, 3)
	a1 := enrollAgent(t, s, "agent1", tok)
	a2 := enrollAgent(t, s, "agent2", tok)
	sshd1 := startSSHD(t, sshdOptions{dataDir: a1.dir})
	root := s.EIC(s.Root)
	userA, userB := world.userA, world.userB

	// The filled seed policy, as the README has people use it.
	seedPolicy := harness.Must(s.IAM(s.Root).CreatePolicy(context.Background(), &iam.CreatePolicyInput{
		PolicyName: aws.String("seed"), PolicyDocument: aws.String(filledSeedPolicy(t)),
	}))(t).Policy.Arn
	seedUser := func(t *testing.T, name string) harness.Creds {
		t.Helper()
		c := newIAMUser(t, s, name)
		harness.Must(s.IAM(s.Root).AttachUserPolicy(context.Background(), &iam.AttachUserPolicyInput{UserName: aws.String(name), PolicyArn: seedPolicy}))(t)
		return c
	}

	t.Run("login with a pushed key", func(t *testing.T) {
		t.Parallel()
		if st := instanceState(t, s, a1.id); st != "running" {
			t.Errorf("DescribeInstances: %s is %q while its agent is connected, want running", a1.id, st)
		}
		k := newKey(t)
		sshd1.wantRefused(t, userA, k) // before the push, sshd knows no key at all
		req := push(t, root, a1.id, userA, k)
		// Success means the agent has the key: no waiting, no retry.
		sshd1.wantLogin(t, userA, k)

		// What sshd reads: one line, the key with sshd's own expiry check,
		// nothing else.
		rec := recordOf(t, a1.dir, req)
		out, code := authorizedKeys(t, a1.dir, userA, k.fp)
		want := fmt.Sprintf(`expiry-time="%s" %s`+"\n",
			time.Unix(rec.ExpiresAt, 0).UTC().Format("20060102150405Z"), strings.Join(strings.Fields(k.line)[:2], " "))
		if code != 0 || out != want {
			t.Errorf("authorized-keys %s %s: exit %d\n%q\nwant\n%q", userA, k.fp, code, out, want)
		}
		if d := rec.ExpiresAt - rec.IssuedAt; d != 60 {
			t.Errorf("the record lives %d s, want 60", d)
		}

		// root, the user AWS's docs log in as on many images.
		kr := newKey(t)
		push(t, root, a1.id, "root", kr)
		sshd1.wantLogin(t, "root", kr)
	})

	// The small binary sshd runs and `kaginashi-agent authorized-keys` are
	// one implementation: same output and exit status for the same
	// arguments, hostile ones included.
	t.Run("kaginashi-authorized-keys and kaginashi-agent authorized-keys agree", func(t *testing.T) {
		t.Parallel()
		k1, k2 := newKey(t), newKey(t)
		push(t, root, a1.id, userA, k1)
		push(t, root, a1.id, userA, k2)
		for _, c := range [][2]string{
			{userA, k1.fp}, {userA, ""}, {userB, k1.fp}, {"root", ""},
			{userA, k1.fp + "\n" + k2.fp}, {userA + "\n" + userA, ""}, {"-" + userA, k1.fp}, {userA, `command="/bin/sh"`},
		} {
			small, smallCode := runAuthorizedKeys(t, world.akc, a1.dir, c[0], c[1])
			whole, wholeCode := runAuthorizedKeys(t, world.agent, a1.dir, c[0], c[1])
			if small != whole || smallCode != wholeCode {
				t.Errorf("authorized-keys %q %q: kaginashi-authorized-keys exit %d %q, kaginashi-agent exit %d %q", c[0], c[1], smallCode, small, wholeCode, whole)
			}
		}
		if out, _ := runAuthorizedKeys(t, world.akc, a1.dir, userA, ""); strings.Count(out, "\n") < 2 {
			t.Errorf("both keys pushed for %s, served %q", userA, out)
		}
	})

	t.Run("refused for another OS user", func(t *testing.T) {
		t.Parallel()
		k := newKey(t)
		push(t, root, a1.id, userA, k)
		sshd1.wantRefused(t, userB, k)
		wantNoKeys(t, a1.dir, userB, k)
		sshd1.wantLogin(t, userA, k)
	})

	t.Run("refused for a key pushed to another instance", func(t *testing.T) {
		t.Parallel()
		k := newKey(t)
		push(t, root, a2.id, userA, k)
		if !hasKey(t, a2.dir, k.fp) {
			t.Fatalf("the key pushed to %s is not in its agent's records", a2.id)
		}
		sshd1.wantRefused(t, userA, k)
		if hasKey(t, a1.dir, k.fp) {
			t.Errorf("the key pushed to %s reached the agent of %s", a2.id, a1.id)
		}
		wantNoKeys(t, a1.dir, userA, k)
		// The same key pushed to this instance works.
		push(t, root, a1.id, userA, k)
		sshd1.wantLogin(t, userA, k)
	})

	t.Run("refused after the policy is detached", func(t *testing.T) {
		t.Parallel()
		ctx := context.Background()
		u := seedUser(t, "seed-detached")
		c := s.EIC(u)
		k1 := newKey(t)
		push(t, c, a1.id, userA, k1)
		sshd1.wantLogin(t, userA, k1)

		harness.Must(s.IAM(s.Root).DetachUserPolicy(ctx, &iam.DetachUserPolicyInput{UserName: aws.String(u.Who), PolicyArn: seedPolicy}))(t)
		k2 := newKey(t)
		_, err := sendKey(c, a1.id, userA, k2)
		harness.WantTyped[*eictypes.AuthException](t, err, 403)
		if hasKey(t, a1.dir, k2.fp) {
			t.Errorf("a refused push reached the agent")
		}
		sshd1.wantRefused(t, userA, k2)
	})

	t.Run("refused under an explicit Deny", func(t *testing.T) {
		t.Parallel()
		ctx := context.Background()
		u := seedUser(t, "seed-denyroot")
		harness.Must(s.IAM(s.Root).PutUserPolicy(ctx, &iam.PutUserPolicyInput{
			UserName: aws.String(u.Who), PolicyName: aws.String("no-root"),
			PolicyDocument: aws.String(harness.Doc(map[string]any{
				"Effect": "Deny", "Action": "ec2-instance-connect:SendSSHPublicKey", "Resource": "*",
				"Condition": map[string]any{"StringEquals": map[string]any{"ec2:osuser": "root"}},
			})),
		}))(t)
		c := s.EIC(u)
		k := newKey(t)
		_, err := sendKey(c, a1.id, "root", k)
		harness.WantTyped[*eictypes.AuthException](t, err, 403)
		if hasKey(t, a1.dir, k.fp) {
			t.Errorf("a denied push reached the agent")
		}
		wantNoKeys(t, a1.dir, "root", k)
		sshd1.wantRefused(t, "root", k)
		// The Deny is what refused it: the same user pushes for another
		// OS user, and that login works.
		push(t, c, a1.id, userA, k)
		sshd1.wantLogin(t, userA, k)
	})

	t.Run("syslog line", func(t *testing.T) {
		t.Parallel()
		sink := listenSyslog(t)
		sshd := startSSHD(t, sshdOptions{dataDir: a1.dir, command: syslogWrapper(t, sink.path)})
		u := seedUser(t, "seed-syslog")
		k := newKey(t)
		req := push(t, s.EIC(u), a1.id, userA, k)
		sshd.wantLogin(t, userA, k)
		want := fmt.Sprintf("Providing ssh key from kaginashi with fingerprint: %s, request-id: %s, for IAM principal: arn:aws:iam::%s:user/%s, user: %s",
			k.fp, req, account, u.Who, userA)
		msg := sink.wait(t, want, 5*time.Second)
		// <86>: facility authpriv (10), severity info (6), as sshd's own
		// log lines go to the auth log.
		if !strings.HasPrefix(msg, "<86>") || !strings.Contains(msg, "kaginashi-agent[") {
			t.Errorf("syslog message %q: want priority <86> (authpriv.info) and tag kaginashi-agent", msg)
		}
		// A key that is not served logs nothing.
		other := newKey(t)
		sshd.wantRefused(t, userA, other)
		if m := sink.find(other.fp); m != "" {
			t.Errorf("a refused key was logged: %q", m)
		}
	})

	t.Run("forged or tampered records are refused", func(t *testing.T) {
		t.Parallel()
		testTamperedRecords(t, s, a1, a2)
	})

	t.Run("an agent restart loses no active key", func(t *testing.T) {
		t.Parallel()
		a3 := enrollAgent(t, s, "agent3", tok)
		testAgentRestart(t, s, a3)
	})

	t.Run("setup-sshd then --remove", func(t *testing.T) {
		t.Parallel()
		testSetupSSHD(t, s, a2)
	})
}

// filledSeedPolicy is examples/seed-policy-filled.json, made for the region
// and account the servers here run in.
func filledSeedPolicy(t *testing.T) string {
	t.Helper()
	root, err := harness.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "examples", "seed-policy-filled.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "arn:aws:ec2:"+region+":"+account+":instance/*") {
		t.Fatalf("examples/seed-policy-filled.json is not for %s/%s any more:\n%s", region, account, b)
	}
	return string(b)
}

// testTamperedRecords writes records.json of a host by hand, as someone
// who can write it (but has not the server's signing key) would, and checks
// that authorized-keys prints nothing and exits 0, and that sshd refuses
// the login. The host is a data directory with the first agent's identity
// (its instance ID and pinned server key) and an sshd of its own.
func testTamperedRecords(t *testing.T, s *harness.Server, a1, a2 *hostAgent) {
	root := s.EIC(s.Root)
	userA, userB := world.userA, world.userB
	dir := newAgentDir(t, "tampered")
	if err := os.MkdirAll(filepath.Join(dir, "keys"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o711); err != nil {
		t.Fatal(err)
	}
	identity, err := os.ReadFile(filepath.Join(a1.dir, "keys", "identity.json"))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "keys", "identity.json"), identity, 0o644)
	sshd := startSSHD(t, sshdOptions{dataDir: dir})

	k := newKey(t)
	genuine := recordOf(t, a1.dir, push(t, root, a1.id, userA, k))
	k2 := newKey(t)
	elsewhere := recordOf(t, a2.dir, push(t, root, a2.id, userA, k2))
	attacker := newKey(t)
	_, otherServer, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}

	// The genuine record works here: what follows fails for what was
	// changed, not for the setup.
	writeRecords(t, dir, genuine)
	if out, _ := authorizedKeys(t, dir, userA, k.fp); !strings.Contains(out, strings.Fields(k.line)[1]) {
		t.Fatalf("authorized-keys does not serve the genuine record: %q", out)
	}
	sshd.wantLogin(t, userA, k)

	for _, tc := range []struct {
		name  string
		write func(t *testing.T)
		user  string
		key   sshKey
	}{
		{"the attacker's key, signed by another key", func(t *testing.T) {
			r := genuine
			r.PublicKey, r.Fingerprint = strings.Join(strings.Fields(attacker.line)[:2], " "), attacker.fp
			if err := r.Sign(otherServer); err != nil {
				t.Fatal(err)
			}
			writeRecords(t, dir, r)
		}, userA, attacker},
		{"the genuine record, re-signed by another key", func(t *testing.T) {
			r := genuine
			if err := r.Sign(otherServer); err != nil {
				t.Fatal(err)
			}
			writeRecords(t, dir, r)
		}, userA, k},
		{"the user changed", func(t *testing.T) {
			r := genuine
			r.OSUser = userB
			writeRecords(t, dir, r)
		}, userB, k},
		{"the key changed", func(t *testing.T) {
			r := genuine
			r.PublicKey, r.Fingerprint = strings.Join(strings.Fields(attacker.line)[:2], " "), attacker.fp
			writeRecords(t, dir, r)
		}, userA, attacker},
		{"an sshd option put before the key", func(t *testing.T) {
			r := genuine
			r.PublicKey = `command="/bin/sh" ` + r.PublicKey
			writeRecords(t, dir, r)
		}, userA, k},
		{"a genuine record for another instance", func(t *testing.T) {
			writeRecords(t, dir, elsewhere)
		}, userA, k2},
		{"garbage JSON", func(t *testing.T) {
			writeFile(t, filepath.Join(dir, "keys", "records.json"), []byte(`{"records": [{"requestId": "x"`), 0o644)
		}, userA, k},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.write(t)
			wantNothing(t, dir, tc.user, tc.key)
			sshd.wantRefused(t, tc.user, tc.key)
		})
	}
}

// testAgentRestart: the keys an agent acknowledged are on disk, so sshd
// keeps taking them while the agent is down; the server sees the agent
// gone and says so at once; the restarted agent reconnects without a token
// and takes new keys.
func testAgentRestart(t *testing.T, s *harness.Server, a *hostAgent) {
	root := s.EIC(s.Root)
	userA := world.userA
	sshd := startSSHD(t, sshdOptions{dataDir: a.dir})
	if st := instanceState(t, s, a.id); st != "running" {
		t.Errorf("DescribeInstances: %s is %q while its agent is connected, want running", a.id, st)
	}
	k1 := newKey(t)
	push(t, root, a.id, userA, k1)
	sshd.wantLogin(t, userA, k1)

	// An agent that does not answer (frozen: SIGSTOP): the push fails
	// within 2 s, not after the client's own timeout.
	if err := a.proc.Cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	// kill(2) only queues SIGSTOP; on a busy machine the agent's threads
	// stop when they next run. Push only once it is really stopped.
	waitFor(t, "the agent stopped (state T)", 5*time.Second, func() bool {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", a.proc.Cmd.Process.Pid))
		if err != nil {
			return false
		}
		// pid (comm) STATE ...: the state follows the last ')'.
		rest := string(b[strings.LastIndexByte(string(b), ')')+1:])
		return strings.HasPrefix(strings.TrimSpace(rest), "T")
	})
	start := time.Now()
	_, err := sendKey(root, a.id, userA, newKey(t))
	took := time.Since(start)
	a.proc.Cmd.Process.Signal(syscall.SIGCONT)
	harness.WantTyped[*eictypes.EC2InstanceUnavailableException](t, err, 503)
	t.Logf("SendSSHPublicKey to a frozen agent: EC2InstanceUnavailableException after %v", took.Round(time.Millisecond))
	if took > harness.Bound(2*time.Second) {
		t.Errorf("SendSSHPublicKey to a frozen agent took %v, want EC2InstanceUnavailableException within 2s", took)
	}

	// Crash the agent.
	a.proc.Kill(t)
	start = time.Now()
	out, code := authorizedKeys(t, a.dir, userA, k1.fp)
	if took := time.Since(start); code != 0 || !strings.Contains(out, strings.Fields(k1.line)[1]) || took > harness.Bound(time.Second) {
		t.Errorf("authorized-keys with the agent down: exit %d after %v, printed %q; want the key within 1s", code, took, out)
	}
	sshd.wantLogin(t, userA, k1)

	stoppedAfter := waitFor(t, "DescribeInstances shows the instance stopped", 5*time.Second, func() bool {
		return instanceState(t, s, a.id) == "stopped"
	})
	t.Logf("DescribeInstances: stopped %v after the agent died", stoppedAfter.Round(time.Millisecond))
	k2 := newKey(t)
	start = time.Now()
	_, err = sendKey(root, a.id, userA, k2)
	took = time.Since(start)
	harness.WantTyped[*eictypes.EC2InstanceUnavailableException](t, err, 503)
	t.Logf("SendSSHPublicKey to a stopped agent: EC2InstanceUnavailableException after %v", took.Round(time.Millisecond))
	if took > harness.Bound(2*time.Second) {
		t.Errorf("SendSSHPublicKey to a stopped agent took %v, want EC2InstanceUnavailableException within 2s", took)
	}

	// Restart it: no join token, the same identity.
	a.start(t)
	if st := instanceState(t, s, a.id); st != "running" {
		t.Errorf("DescribeInstances: %s is %q after its agent reconnected, want running", a.id, st)
	}
	push(t, root, a.id, userA, k2)
	sshd.wantLogin(t, userA, k2)
	sshd.wantLogin(t, userA, k1) // still within its 60 seconds
}

// TestKeyExpiry runs a server whose keys live 3 seconds (the hidden test
// flag --key-lifetime, which can only shorten the 60 s): a login works
// right after the push and is refused once the key expired, and editing
// the record cannot bring it back.
func TestKeyExpiry(t *testing.T) {
	requireWorld(t)
	t.Parallel()
	lifetime := int64(3)
	if harness.RaceBuilt() {
		lifetime = 12 // the login right after the push must fit in it
	}
	s := startServer(t, "--key-lifetime", fmt.Sprintf("%ds", lifetime))
	a := enrollAgent(t, s, "expiry", joinToken(t, s, 1))
	sshd := startSSHD(t, sshdOptions{dataDir: a.dir})
	userA := world.userA

	k := newKey(t)
	rec := recordOf(t, a.dir, push(t, s.EIC(s.Root), a.id, userA, k))
	if d := rec.ExpiresAt - rec.IssuedAt; d != lifetime {
		t.Fatalf("the record lives %d s, want %d (--key-lifetime)", d, lifetime)
	}
	sshd.wantLogin(t, userA, k)

	// Past the expiry, with a margin for the measured clock skew.
	time.Sleep(time.Until(time.Unix(rec.ExpiresAt, 0).Add(500 * time.Millisecond)))
	wantNothing(t, a.dir, userA, k)
	sshd.wantRefused(t, userA, k)

	// Users can never lengthen it: the record edited to live an hour,
	// or moved to now with its 3 seconds, is refused.
	long := rec
	long.ExpiresAt = rec.IssuedAt + 3600
	moved := rec
	now := time.Now().Unix()
	moved.IssuedAt, moved.ExpiresAt = now-1, now-1+lifetime
	for _, tc := range []struct {
		name string
		rec  keyrecord.Record
	}{{"edited to live an hour", long}, {"moved to now", moved}} {
		t.Run(tc.name, func(t *testing.T) {
			writeRecords(t, a.dir, tc.rec)
			wantNothing(t, a.dir, userA, k)
			sshd.wantRefused(t, userA, k)
		})
	}
}

// TestServerRestart stops the server and starts it again on the same data
// directory and port: the agent reconnects by itself within 5 s, logins
// with the keys it has go on meanwhile, and a new push works.
func TestServerRestart(t *testing.T) {
	requireWorld(t)
	t.Parallel()
	dataDir := filepath.Join(t.TempDir(), "data")
	cfg := harness.ServerConfig{DataDir: dataDir, Args: []string{"--region", region, "--account-id", account, "--rate-limit=-1"}}
	p1 := harness.StartProc(t, cfg)
	s1 := harness.NewServer(t, p1, "sqlite")
	a := enrollAgent(t, s1, "restart", joinToken(t, s1, 1))
	sshd := startSSHD(t, sshdOptions{dataDir: a.dir})
	userA := world.userA

	k1 := newKey(t)
	push(t, s1.EIC(s1.Root), a.id, userA, k1)
	sshd.wantLogin(t, userA, k1)

	p1.Stop(t)
	a.proc.WaitOutput(t, "disconnected from the server", 1, 10*time.Second)
	sshd.wantLogin(t, userA, k1) // the server is not needed to log in

	cfg.Port = p1.Port
	p2 := harness.StartProc(t, cfg)
	back := time.Now()
	t.Cleanup(func() { p2.Stop(t) })
	s2 := harness.NewServer(t, p2, "sqlite")
	c := s2.EIC(s2.Root)
	k2 := newKey(t)
	var lastErr error
	took := waitFor(t, "a push after the server restart", 10*time.Second, func() bool {
		_, lastErr = sendKey(c, a.id, userA, k2)
		return lastErr == nil
	})
	reconnected := time.Since(back)
	t.Logf("the agent was back %v after the server (first successful push after %v)", reconnected.Round(time.Millisecond), took.Round(time.Millisecond))
	if reconnected > harness.Bound(5*time.Second) {
		t.Errorf("the agent reconnected %v after the server came back, want within 5s", reconnected)
	}
	a.waitConnected(t, 2) // the same agent process, connected again
	sshd.wantLogin(t, userA, k2)
	if st := instanceState(t, s2, a.id); st != "running" {
		t.Errorf("DescribeInstances after the restart: %q, want running", st)
	}
}
