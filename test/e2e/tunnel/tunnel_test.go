package tunnel

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/kaginashi/kaginashi/internal/client"
	"github.com/kaginashi/kaginashi/test/e2e/harness"
)

// TestTunnel is one server, four hosts (agents) and their sshds, and cases
// that run in parallel against them:
//
//   - web: an agent with Name=web that reports sshd1's host key and lets
//     tunnels reach sshd1 and an impostor sshd with another host key (a
//     host-key swap, as a man in the middle on the host would present);
//   - twin: an agent that reports no host key (as on AWS, where nobody
//     knows them), with sshd3; and twin2, another Name=twin;
//   - gone: an agent that is killed.
//
// The sshds listen on 127.0.0.1:RANDOM; the tests reach them only through
// the tunnel, except for baselines.
func TestTunnel(t *testing.T) {
	requireWorld(t)
	start := time.Now()
	s := startServer(t)
	tok := joinToken(t, s, 4)
	user := world.user

	webDir := agentDir(t, "web")
	sshd1 := startSSHD(t, sshdOptions{dataDir: webDir, publishKey: true})
	impostor := startSSHD(t, sshdOptions{dataDir: webDir})
	web := startAgent(t, s, "web", webDir, tok, "--tag", "Name=web", "--sshd-config", sshd1.Config,
		"--allow-port", strconv.Itoa(sshd1.Port), "--allow-port", strconv.Itoa(impostor.Port))
	twinDir := agentDir(t, "twin")
	sshd3 := startSSHD(t, sshdOptions{dataDir: twinDir})
	twin := startAgent(t, s, "twin", twinDir, tok, "--tag", "Name=twin", "--sshd-config", sshd3.Config, "--allow-port", strconv.Itoa(sshd3.Port))
	twin2 := startAgent(t, s, "twin2", agentDir(t, "twin2"), tok, "--tag", "Name=twin")
	gone := startAgent(t, s, "gone", agentDir(t, "gone"), tok, "--tag", "Name=gone")
	t.Logf("set up in %v", time.Since(start).Round(time.Millisecond))

	p1 := strconv.Itoa(sshd1.Port)
	kg := func(t *testing.T, env []string, args ...string) result {
		t.Helper()
		return runIn(t, "", env, "", harness.Kaginashi, args...)
	}
	rootEnv := func(t *testing.T, extra ...string) (string, []string) {
		home := t.TempDir()
		return home, clientEnv(t, s, s.Root, home, extra...)
	}
	knownHosts := func(home string) string { return filepath.Join(home, ".config", "kaginashi", "known_hosts") }

	t.Run("DescribeInstanceConnectInfo", func(t *testing.T) {
		t.Parallel()
		ctx := context.Background()
		cfg, _ := s.Config(s.Root, harness.AuditedAs("-"))
		in, err := client.DescribeInstance(ctx, cfg, web.id)
		if err != nil {
			t.Fatal(err)
		}
		if !in.Kaginashi || in.Name != "web" || in.State != "running" || !strings.HasPrefix(in.EndpointID, "eice-") {
			t.Errorf("%+v: want kaginashi's answer for web, running, with the endpoint", in)
		}
		if !slices.Equal(in.HostKeys, []string{sshd1.HostKey}) {
			t.Errorf("HostKeys %q, want sshd1's %q", in.HostKeys, sshd1.HostKey)
		}
		for _, p := range []int{22, sshd1.Port, impostor.Port} {
			if !slices.Contains(in.AllowedPorts, p) {
				t.Errorf("AllowedPorts %v lacks %d", in.AllowedPorts, p)
			}
		}
		if in.PortAllowed(sshd3.Port) {
			t.Errorf("AllowedPorts %v: port %d is another agent's", in.AllowedPorts, sshd3.Port)
		}
		if in.DefaultUser == "" {
			t.Errorf("no DefaultUser")
		}
		byName, err := client.DescribeInstance(ctx, cfg, "web")
		if err != nil || byName.InstanceID != web.id {
			t.Errorf("by Name web: %v, %v; want %s", byName.InstanceID, err, web.id)
		}
		tw, err := client.DescribeInstance(ctx, cfg, twin.id)
		if err != nil || len(tw.HostKeys) != 0 {
			t.Errorf("twin: %v, host keys %q; want none (its sshd publishes no .pub)", err, tw.HostKeys)
		}
		_, err = client.DescribeInstance(ctx, cfg, "twin")
		var ae *client.AmbiguousError
		if !errors.As(err, &ae) || len(ae.Candidates) != 2 {
			t.Errorf("twin: %v; want ambiguous between 2", err)
		}
		_, err = client.DescribeInstance(ctx, cfg, "i-0123456789abcdef0")
		var nf *client.NotFoundError
		if !errors.As(err, &nf) {
			t.Errorf("an unknown ID: %v; want not found", err)
		}
		// Authorized as ec2:DescribeInstances.
		nobody := newIAMUser(t, s, "describe-nothing", "")
		ncfg, _ := s.Config(nobody, harness.AuditedAs("-"))
		_, err = client.DescribeInstance(ctx, ncfg, web.id)
		var je *client.APIError
		if !errors.As(err, &je) || je.Code != "AccessDeniedException" || !strings.Contains(je.Message, "ec2:DescribeInstances") {
			t.Errorf("without ec2:DescribeInstances: %v; want AccessDeniedException for ec2:DescribeInstances", err)
		}
	})

	t.Run("the SSH port comes from the host's sshd_config", func(t *testing.T) {
		t.Parallel()
		_, env := rootEnv(t)
		cfg, _ := s.Config(s.Root, harness.AuditedAs("-"))
		in, err := client.DescribeInstance(context.Background(), cfg, twin.id)
		if err != nil {
			t.Fatal(err)
		}
		if in.SSHPort != sshd3.Port {
			t.Fatalf("DescribeInstanceConnectInfo SSHPort = %d, want %d (the Port of %s)", in.SSHPort, sshd3.Port, sshd3.Config)
		}
		// No --ssh-port: kaginashi ssh takes the agent's word.
		if r := kg(t, env, "ssh", user+"@"+twin.id, "--", "echo", "ok"); r.code != 0 || r.stdout != "ok\n" {
			t.Fatalf("kaginashi ssh without --ssh-port: %v", r)
		}
	})

	t.Run("ssh by ID and by Name", func(t *testing.T) {
		t.Parallel()
		home, env := rootEnv(t)
		r := kg(t, env, "ssh", "--ssh-port", p1, user+"@"+web.id, "--", "echo", "ok")
		if r.code != 0 || r.stdout != "ok\n" {
			t.Fatalf("kaginashi ssh %s@%s -- echo ok: %v\nsshd:\n%s", user, web.id, r, tail(sshd1.Output.String(), 20))
		}
		r = kg(t, env, "ssh", "--ssh-port", p1, "--os-user", user, "web", "--", "echo ok; id -un")
		if r.code != 0 || r.stdout != "ok\n"+user+"\n" {
			t.Fatalf("kaginashi ssh --os-user %s web: %v", user, r)
		}
		// ssh's exit status is kaginashi's.
		if r := kg(t, env, "ssh", "--ssh-port", p1, user+"@web", "--", "exit 7"); r.code != 7 {
			t.Errorf("-- exit 7: %v; want exit 7", r)
		}
		// The host key, pinned from the inventory: kaginashi's known_hosts,
		// 0600 in a 0700 directory, under the instance ID (HostKeyAlias).
		kh := knownHosts(home)
		b, err := os.ReadFile(kh)
		if err != nil || string(b) != web.id+" "+sshd1.HostKey+"\n" {
			t.Errorf("%s: %v\n%q\nwant %q", kh, err, b, web.id+" "+sshd1.HostKey+"\n")
		}
		wantMode(t, kh, 0o600)
		wantMode(t, filepath.Dir(kh), 0o700)

		// XDG_CONFIG_HOME moves it.
		xdg := filepath.Join(home, "xdg")
		env2 := append(env, "XDG_CONFIG_HOME="+xdg)
		if r := kg(t, env2, "ssh", "--ssh-port", p1, user+"@web", "--", "true"); r.code != 0 {
			t.Fatalf("with XDG_CONFIG_HOME: %v", r)
		}
		if _, err := os.Stat(filepath.Join(xdg, "kaginashi", "known_hosts")); err != nil {
			t.Errorf("XDG_CONFIG_HOME is not respected: %v", err)
		}

		// Without a user: the instance's default user, as its agent
		// reports it. This machine's default user (admin on Debian) may
		// not exist: then kaginashi says so instead of letting sshd
		// refuse.
		cfg, _ := s.Config(s.Root, harness.AuditedAs("-"))
		in, err := client.DescribeInstance(context.Background(), cfg, web.id)
		if err != nil {
			t.Fatal(err)
		}
		r = kg(t, env, "ssh", "--ssh-port", p1, "web", "--", "id -un")
		if !in.DefaultUserExists {
			if r.code != 255 || !strings.Contains(r.stderr, `the default user "`+in.DefaultUser+`" of `+web.id+" (web) does not exist") ||
				!strings.Contains(r.stderr, "kaginashi ssh USER@web") {
				t.Errorf("default user %q that does not exist: %v", in.DefaultUser, r)
			}
		} else if r.stdout != in.DefaultUser+"\n" && !strings.Contains(r.stderr, "Permission denied") {
			t.Errorf("default user %q: %v", in.DefaultUser, r)
		}
	})

	t.Run("the private key never touches the disk", func(t *testing.T) {
		t.Parallel()
		// The user's own agent holds other keys, and sshd allows one
		// attempt (MaxAuthTries 1): ssh must offer the pushed key alone.
		decoys := startSSHAgent(t, newKey(t), newKey(t))
		// A short TMPDIR of its own: with a longer one, too long for a
		// socket's path, kaginashi would use /tmp.
		tmp, err := os.MkdirTemp("", "kgt-tmp-")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(tmp) })
		home, env := rootEnv(t, "SSH_AUTH_SOCK="+decoys.sock, "TMPDIR="+tmp)
		p := harness.NewProcess("kaginashi ssh", env, harness.Kaginashi)
		p.Cmd = execCommand(harness.Kaginashi, "ssh", "--ssh-port", p1, user+"@web", "--", "-v", "echo started; sleep 5; echo done")
		p.Cmd.Env = env
		p.Stdout = &harness.SyncBuffer{}
		p.Cmd.Stdout, p.Cmd.Stderr = p.Stdout, p.Output
		p.Start(t)
		p.WaitIn(t, p.Stdout, "started", 1, bound(30*time.Second))

		// While ssh runs: one private directory, 0700, with the agent's
		// socket and the public key; nothing anywhere holds a private key.
		var pubFile string
		ents, err := os.ReadDir(tmp)
		if err != nil || len(ents) != 1 || !strings.HasPrefix(ents[0].Name(), "kaginashi-ssh-") {
			t.Fatalf("TMPDIR holds %v (%v); want one kaginashi-ssh-* directory", names(ents), err)
		}
		dir := filepath.Join(tmp, ents[0].Name())
		wantMode(t, dir, 0o700)
		inside, _ := os.ReadDir(dir)
		if got := names(inside); !slices.Equal(got, []string{"agent.sock", "id_ed25519.pub"}) {
			t.Errorf("%s holds %v; want agent.sock and id_ed25519.pub", dir, got)
		}
		if fi, err := os.Lstat(filepath.Join(dir, "agent.sock")); err != nil || fi.Mode()&fs.ModeSocket == 0 {
			t.Errorf("agent.sock: %v %v; want a socket", fi, err)
		}
		pubFile = filepath.Join(dir, "id_ed25519.pub")
		filepath.WalkDir(home, func(path string, d fs.DirEntry, err error) error {
			if err != nil || !d.Type().IsRegular() {
				return nil
			}
			b, _ := os.ReadFile(path)
			if bytes.Contains(b, []byte("PRIVATE KEY")) || bytes.Contains(b, []byte("openssh-key-v1")) {
				t.Errorf("%s holds a private key", path)
			}
			return nil
		})
		b, err := os.ReadFile(pubFile)
		if err != nil {
			t.Fatal(err)
		}
		pk, _, _, _, err := ssh.ParseAuthorizedKey(b)
		if err != nil {
			t.Fatal(err)
		}
		fp := ssh.FingerprintSHA256(pk)
		if !slices.Contains(web.fingerprints(t), fp) {
			t.Errorf("the key in %s (%s) was not pushed to web", pubFile, fp)
		}

		select {
		case <-p.Done():
		case <-time.After(bound(30 * time.Second)):
			t.Fatalf("kaginashi ssh did not end\n%s", p.Output)
		}
		if p.Err() != nil || p.Stdout.String() != "started\ndone\n" {
			t.Fatalf("kaginashi ssh: %v, stdout %q\nstderr:\n%s", p.Err(), p.Stdout, p.Output)
		}
		offered := strings.Count(p.Output.String(), "Offering public key")
		if offered != 1 || !strings.Contains(p.Output.String(), "Offering public key: "+pubFile+" ED25519 "+fp+" explicit agent") {
			t.Errorf("ssh offered %d keys; want the pushed one alone, from the private agent:\n%s", offered, p.Output)
		}
		if ents, _ := os.ReadDir(tmp); len(ents) != 0 {
			t.Errorf("after ssh, TMPDIR still holds %v", names(ents))
		}
		if l := decoys.list(t); strings.Count(l, "\n") != 2 {
			t.Errorf("the user's agent changed: %q", l)
		}
	})

	t.Run("--private-key-file", func(t *testing.T) {
		t.Parallel()
		// The user's key, not in their agent, which holds others: ssh must
		// offer that key alone (IdentitiesOnly), or sshd's single attempt
		// goes to an agent key.
		decoys := startSSHAgent(t, newKey(t), newKey(t))
		_, env := rootEnv(t, "SSH_AUTH_SOCK="+decoys.sock)
		k := newKey(t)
		r := kg(t, env, "ssh", "--private-key-file", k.path, "--ssh-port", p1, user+"@web", "--", "echo", "ok")
		if r.code != 0 || r.stdout != "ok\n" {
			t.Fatalf("kaginashi ssh --private-key-file: %v\nsshd:\n%s", r, tail(sshd1.Output.String(), 10))
		}
		if !slices.Contains(web.fingerprints(t), k.fp) {
			t.Errorf("the key of --private-key-file (%s) was not pushed", k.fp)
		}
	})

	t.Run("host keys are pinned", func(t *testing.T) {
		t.Parallel()
		root := s.EIC(s.Root)
		// A host-key swap: the impostor presents another key than the one
		// web's agent reported. Refused before any login...
		_, env := rootEnv(t)
		r := kg(t, env, "ssh", "--ssh-port", strconv.Itoa(impostor.Port), user+"@web", "--", "echo", "ok")
		if r.code != 255 || r.stdout != "" || !strings.Contains(r.stderr, "Host key verification failed") {
			t.Errorf("through the impostor: %v; want ssh's host key refusal (exit 255)", r)
		}
		// ...though the impostor would have let us in.
		k := newKey(t)
		push(t, root, web.id, user, k)
		if b := impostor.directSSH(t, user, k, "echo ok"); b.code != 0 || b.stdout != "ok\n" {
			t.Fatalf("baseline, straight to the impostor: %v", b)
		}

		// A wrong key for web in the file (stale, or planted) is replaced
		// by the reported one; other lines stay.
		home, env := rootEnv(t)
		kh := knownHosts(home)
		wrong := harness.Ed25519Key(t)
		other := "other.example " + harness.Ed25519Key(t)
		if err := os.MkdirAll(filepath.Dir(kh), 0o700); err != nil {
			t.Fatal(err)
		}
		writeFile(t, kh, []byte(other+"\n"+web.id+" "+wrong+"\n"), 0o600)
		if r := kg(t, env, "ssh", "--ssh-port", p1, user+"@web", "--", "echo", "ok"); r.code != 0 || r.stdout != "ok\n" {
			t.Fatalf("with a stale key in known_hosts: %v", r)
		}
		if b, _ := os.ReadFile(kh); string(b) != other+"\n"+web.id+" "+sshd1.HostKey+"\n" {
			t.Errorf("known_hosts after the login:\n%s", b)
		}

		// A host whose key the server does not know: accepted once (ssh's
		// accept-new), then pinned; a different one is refused.
		home, env = rootEnv(t)
		kh = knownHosts(home)
		p3 := strconv.Itoa(sshd3.Port)
		if r := kg(t, env, "ssh", "--ssh-port", p3, user+"@"+twin.id, "--", "echo", "ok"); r.code != 0 || r.stdout != "ok\n" {
			t.Fatalf("first login to %s (no known host key): %v", twin.id, r)
		}
		// (Debian's ssh_config hashes the names ssh adds: ssh-keygen -F.)
		if f := runIn(t, "", baseEnv(), "", "ssh-keygen", "-F", twin.id, "-f", kh); f.code != 0 || !strings.Contains(f.stdout, sshd3.HostKey) {
			b, _ := os.ReadFile(kh)
			t.Errorf("ssh did not pin %s's key: %v\n%s", twin.id, f, b)
		}
		if r := kg(t, env, "ssh", "--ssh-port", p3, user+"@"+twin.id, "--", "echo", "ok"); r.code != 0 || r.stdout != "ok\n" {
			t.Fatalf("second login to %s: %v", twin.id, r)
		}
		writeFile(t, kh, []byte(twin.id+" "+wrong+"\n"), 0o600)
		r = kg(t, env, "ssh", "--ssh-port", p3, user+"@"+twin.id, "--", "echo", "ok")
		if r.code != 255 || r.stdout != "" || !strings.Contains(r.stderr, "Host key verification failed") {
			t.Errorf("%s with another key in known_hosts: %v; want the host key refused", twin.id, r)
		}
	})

	t.Run("ssh-config: ssh, scp, sftp, rsync, git", func(t *testing.T) {
		t.Parallel()
		testSSHConfig(t, s, web, sshd1, impostor)
	})

	t.Run("ambiguous Name", func(t *testing.T) {
		t.Parallel()
		_, env := rootEnv(t)
		r := kg(t, env, "ssh", user+"@twin", "--", "true")
		if r.code != 255 || !strings.Contains(r.stderr, `2 instances have the Name "twin"; use one of their instance IDs`) ||
			!strings.Contains(r.stderr, twin.id) || !strings.Contains(r.stderr, twin2.id) {
			t.Errorf("kaginashi ssh twin: %v; want the two candidates", r)
		}
	})

	t.Run("a denied user sees the deciding statement", func(t *testing.T) {
		t.Parallel()
		allowAll := map[string]any{"Effect": "Allow", "Action": []string{"ec2:DescribeInstances", "ec2:DescribeInstanceConnectEndpoints", "ec2-instance-connect:*"}, "Resource": "*"}
		alice := newIAMUser(t, s, "alice", harness.Doc(allowAll, map[string]any{
			"Sid": "NoLoginsAsTheTestUser", "Effect": "Deny", "Action": "ec2-instance-connect:SendSSHPublicKey", "Resource": "*",
			"Condition": map[string]any{"StringEquals": map[string]any{"ec2:osuser": user}},
		}))
		r := kg(t, clientEnv(t, s, alice, t.TempDir()), "ssh", "--ssh-port", p1, user+"@web", "--", "true")
		wantProblem(t, "alice (SendSSHPublicKey denied)", r, 255,
			"kaginashi: access denied: User: arn:aws:iam::"+account+":user/alice is not authorized to perform: ec2-instance-connect:SendSSHPublicKey",
			"Sid NoLoginsAsTheTestUser", "kaginashi: the policy statement named above denies it")

		// The tunnel denied: the ProxyCommand says why, through ssh.
		bob := newIAMUser(t, s, "bob", harness.Doc(allowAll, map[string]any{
			"Sid": "TunnelsToPort22Only", "Effect": "Deny", "Action": "ec2-instance-connect:OpenTunnel", "Resource": "*",
			"Condition": map[string]any{"NumericNotEquals": map[string]any{"ec2-instance-connect:remotePort": "22"}},
		}))
		r = kg(t, clientEnv(t, s, bob, t.TempDir()), "ssh", "--ssh-port", p1, user+"@web", "--", "true")
		if r.code != 255 || !strings.Contains(r.stderr, "kaginashi: access denied: User: arn:aws:iam::"+account+":user/bob is not authorized to perform: ec2-instance-connect:OpenTunnel") ||
			!strings.Contains(r.stderr, "Sid TunnelsToPort22Only") || strings.Contains(r.stderr, "goroutine") {
			t.Errorf("bob (OpenTunnel denied): %v", r)
		}
		t.Logf("bob (OpenTunnel denied, through ssh) sees:\n%s", r.stderr)

		// No policy at all: the action to ask for.
		carol := newIAMUser(t, s, "carol", "")
		r = kg(t, clientEnv(t, s, carol, t.TempDir()), "ssh", "--ssh-port", p1, user+"@web", "--", "true")
		wantProblem(t, "carol (no policy)", r, 255, "kaginashi: access denied: User: arn:aws:iam::"+account+":user/carol is not authorized to perform: ec2:DescribeInstances",
			"kaginashi: no policy allows it: ask an administrator to allow ec2:DescribeInstances for you")
	})

	t.Run("agent offline", func(t *testing.T) {
		t.Parallel()
		if err := gone.proc.Cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		<-gone.proc.Done()
		waitFor(t, "the server marks gone stopped", bound(20*time.Second), func() bool { return instanceState(t, s, gone.id) == "stopped" })
		_, env := rootEnv(t)
		r := kg(t, env, "ssh", user+"@gone", "--", "true")
		wantProblem(t, "ssh to gone", r, 255, "kaginashi: the agent of "+gone.id+" (gone) is offline: it is not connected to the server",
			"kaginashi: start it on the host (systemctl start kaginashi-agent")
		// open-tunnel, which does not look first: the server's answer.
		r = kg(t, env, "open-tunnel", "--instance-id", gone.id)
		wantProblem(t, "open-tunnel to gone", r, 1, "kaginashi: the agent of "+gone.id+" is offline: it is not connected to the server",
			"kaginashi: start it on the host")
	})

	t.Run("port not allowed", func(t *testing.T) {
		t.Parallel()
		bad := strconv.Itoa(harness.FreePort(t))
		_, env := rootEnv(t)
		r := kg(t, env, "ssh", "--ssh-port", bad, user+"@web", "--", "true")
		allowed := []int{22, sshd1.Port, impostor.Port}
		slices.Sort(allowed) // the agent reports them sorted
		wantProblem(t, "ssh to a port not allowed", r, 255,
			"kaginashi: port "+bad+" of "+web.id+" (web) is not open to tunnels: its agent allows "+joinInts(allowed),
			"kaginashi: on the host, let the agent reach it: kaginashi-agent run --allow-port "+bad)
		// open-tunnel asks the agent, which refuses.
		r = kg(t, env, "open-tunnel", "--instance-id", web.id, "--remote-port", bad)
		wantProblem(t, "open-tunnel to a port not allowed", r, 1, "kaginashi: "+web.id+" refused the tunnel: port "+bad+" is not allowed by this host's agent",
			"add it with kaginashi-agent run --allow-port "+bad)
	})
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ", ")
}

// wantProblem asserts a failure told in at most two lines that hold
// wants, with no Go or SDK noise.
func wantProblem(t *testing.T, what string, r result, code int, wants ...string) {
	t.Helper()
	lines := strings.Split(strings.TrimRight(r.stderr, "\n"), "\n")
	ok := r.code == code && len(lines) <= 2 && r.stdout == ""
	for _, w := range wants {
		ok = ok && strings.Contains(r.stderr, w)
	}
	for _, noise := range []string{"goroutine", "operation error", "RequestID", "https response error", "panic"} {
		ok = ok && !strings.Contains(r.stderr, noise)
	}
	if !ok {
		t.Errorf("%s: %v\nwant exit %d and at most two lines with %q", what, r, code, wants)
	}
	t.Logf("%s says:\n%s", what, r.stderr)
}

func wantMode(t *testing.T, path string, mode os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Errorf("%s: %v", path, err)
		return
	}
	if fi.Mode().Perm() != mode {
		t.Errorf("%s: mode %v, want %v", path, fi.Mode().Perm(), mode)
	}
}

func names(ents []os.DirEntry) []string {
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	slices.Sort(out)
	return out
}

// randomBytes is n random bytes.
func randomBytes(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}
