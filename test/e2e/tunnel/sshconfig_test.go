package tunnel

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/kaginashi/kaginashi/test/e2e/harness"
)

var execCommand = exec.Command

// testSSHConfig: `kaginashi ssh-config` in ~/.ssh/config (here: ssh -F),
// then plain ssh, scp, sftp, rsync and git reach web through ssh-proxy.
// The configuration comes from ssh-config's flags alone: the environment
// has only the credentials, so ssh-proxy must have been given the rest.
func testSSHConfig(t *testing.T, s *harness.Server, web *hostAgent, sshd1, impostor *sshdProc) {
	user := world.user
	home := t.TempDir()
	if err := os.MkdirAll(filepath.Join(home, "tmp"), 0o700); err != nil {
		t.Fatal(err)
	}
	userAgent := startSSHAgent(t) // a user's ssh-agent, empty
	env := append(baseEnv(), "HOME="+home, "TMPDIR="+filepath.Join(home, "tmp"), "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null",
		"AWS_ACCESS_KEY_ID="+s.Root.ID, "AWS_SECRET_ACCESS_KEY="+s.Root.Secret, "KAGINASHI_DEBUG=1")
	agentEnv := append(env, "SSH_AUTH_SOCK="+userAgent.sock)

	r := runIn(t, "", env, "", harness.Kaginashi, "ssh-config", "--endpoint-url", s.URL(), "--ca-bundle", s.CAPath(), "--region", s.Region)
	kh := filepath.Join(home, ".config", "kaginashi", "known_hosts")
	for _, want := range []string{"\nHost i-* *.kaginashi\n", "    ProxyCommand " + harness.Kaginashi + " ssh-proxy --known-hosts " + kh +
		" --region " + s.Region + " --endpoint-url " + s.URL() + " --ca-bundle " + s.CAPath() + " %h %p %r\n",
		"    UserKnownHostsFile " + kh + "\n", "    StrictHostKeyChecking accept-new\n"} {
		if r.code != 0 || !strings.Contains(r.stdout, want) {
			t.Fatalf("kaginashi ssh-config: %v\nwant %q", r, want)
		}
	}
	cfg := filepath.Join(home, "ssh_config")
	writeFile(t, cfg, []byte(r.stdout), 0o600)
	port := strconv.Itoa(sshd1.Port)
	sshArgs := []string{"-F", cfg, "-o", "BatchMode=yes"}
	sshCmd := func(env []string, args ...string) result {
		t.Helper()
		return runIn(t, "", env, "", world.tools["ssh"], append(append(append([]string{}, sshArgs...), "-p", port), args...)...)
	}

	// ssh with the user's agent: ssh-proxy adds an ephemeral key to it.
	r = sshCmd(agentEnv, user+"@web.kaginashi", "echo ok")
	if r.code != 0 || r.stdout != "ok\n" {
		t.Fatalf("ssh %s@web.kaginashi: %v\nsshd:\n%s", user, r, tail(sshd1.Output.String(), 20))
	}
	if !strings.Contains(r.stderr, "added to your ssh-agent for 60 s") {
		t.Errorf("ssh-proxy's debug line does not say which key:\n%s", r.stderr)
	}
	if l := userAgent.list(t); !strings.Contains(l, "kaginashi ssh-proxy") || !strings.Contains(l, "(ED25519)") {
		t.Errorf("the user's agent holds %q; want ssh-proxy's ephemeral key", l)
	}
	r = sshCmd(agentEnv, user+"@"+web.id, "echo ok")
	if r.code != 0 || r.stdout != "ok\n" {
		t.Fatalf("ssh %s@%s: %v", user, web.id, r)
	}
	b, _ := os.ReadFile(kh)
	for _, want := range []string{"[web.kaginashi]:" + port + " " + sshd1.HostKey + "\n", "[" + web.id + "]:" + port + " " + sshd1.HostKey + "\n"} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("known_hosts lacks %q:\n%s", want, b)
		}
	}
	// The impostor's host key is refused.
	r = runIn(t, "", agentEnv, "", world.tools["ssh"], append(sshArgs, "-p", strconv.Itoa(impostor.Port), user+"@web.kaginashi", "echo ok")...)
	if r.code != 255 || r.stdout != "" || !strings.Contains(r.stderr, "Host key verification failed") {
		t.Errorf("ssh to the impostor: %v; want the host key refused", r)
	}

	// Without an agent, ssh-proxy pushes the user's ~/.ssh/id_ed25519.pub
	// (ssh finds the private key in the passwd entry's home, not $HOME:
	// -i here).
	own := newKeyAt(t, filepath.Join(home, ".ssh", "id_ed25519"))
	r = sshCmd(env, "-i", own.path, user+"@web.kaginashi", "echo ok")
	if r.code != 0 || r.stdout != "ok\n" || !strings.Contains(r.stderr, "pushing "+own.path+".pub for "+user+"@"+web.id) {
		t.Fatalf("ssh without an agent: %v", r)
	}

	dir := userDir(t)
	local := t.TempDir()
	data := randomBytes(t, 300<<10)
	writeFile(t, filepath.Join(local, "a.bin"), data, 0o644)

	// scp, both ways.
	r = runIn(t, "", agentEnv, "", world.tools["scp"], append(sshArgs, "-P", port, filepath.Join(local, "a.bin"), user+"@web.kaginashi:"+dir+"/a.bin")...)
	if r.code != 0 {
		t.Fatalf("scp up: %v", r)
	}
	wantFile(t, filepath.Join(dir, "a.bin"), data)
	r = runIn(t, "", agentEnv, "", world.tools["scp"], append(sshArgs, "-P", port, user+"@"+web.id+":"+dir+"/a.bin", filepath.Join(local, "back.bin"))...)
	if r.code != 0 {
		t.Fatalf("scp down: %v", r)
	}
	wantFile(t, filepath.Join(local, "back.bin"), data)

	// sftp.
	batch := filepath.Join(local, "batch")
	writeFile(t, batch, []byte("put "+filepath.Join(local, "a.bin")+" "+dir+"/sftp.bin\n"), 0o644)
	r = runIn(t, "", agentEnv, "", world.tools["sftp"], append(sshArgs, "-P", port, "-b", batch, user+"@web.kaginashi")...)
	if r.code != 0 {
		t.Fatalf("sftp: %v", r)
	}
	wantFile(t, filepath.Join(dir, "sftp.bin"), data)

	// rsync -e ssh.
	src := filepath.Join(local, "tree")
	writeFile2(t, filepath.Join(src, "x", "y.txt"), []byte("rsync through the tunnel\n"))
	writeFile2(t, filepath.Join(src, "z.bin"), data[:1000])
	rsh := "ssh -F " + cfg + " -o BatchMode=yes -p " + port
	r = runIn(t, "", agentEnv, "", world.tools["rsync"], "-a", "-e", rsh, src+"/", user+"@web.kaginashi:"+dir+"/tree/")
	if r.code != 0 {
		t.Fatalf("rsync: %v", r)
	}
	wantFile(t, filepath.Join(dir, "tree", "x", "y.txt"), []byte("rsync through the tunnel\n"))
	wantFile(t, filepath.Join(dir, "tree", "z.bin"), data[:1000])

	// git clone over ssh.
	repo := filepath.Join(dir, "repo.git")
	work := filepath.Join(local, "work")
	gitEnv := append(append([]string{}, agentEnv...), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com",
		"GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1")
	for _, args := range [][]string{{"init", "-q", "-b", "main", work}, {"-C", work, "commit", "-q", "--allow-empty", "-m", "through the tunnel"},
		{"clone", "-q", "--bare", work, repo}} {
		if r := runIn(t, "", gitEnv, "", world.tools["git"], args...); r.code != 0 {
			t.Fatalf("git %v: %v", args, r)
		}
	}
	if out, err := exec.Command("chown", "-R", strconv.Itoa(world.uid)+":"+strconv.Itoa(world.gid), repo).CombinedOutput(); err != nil {
		t.Fatalf("chown: %v %s", err, out)
	}
	clone := filepath.Join(local, "clone")
	r = runIn(t, "", append(gitEnv, "GIT_SSH_COMMAND=ssh -F "+cfg+" -o BatchMode=yes"), "", world.tools["git"], "clone", "-q",
		"ssh://"+user+"@web.kaginashi:"+port+repo, clone)
	if r.code != 0 {
		t.Fatalf("git clone: %v", r)
	}
	if r := runIn(t, "", gitEnv, "", world.tools["git"], "-C", clone, "log", "--format=%s"); r.stdout != "through the tunnel\n" {
		t.Errorf("the clone's log: %v", r)
	}
}

func wantFile(t *testing.T, path string, want []byte) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(b, want) {
		t.Errorf("%s: %v, %d bytes; want the %d bytes sent", path, err, len(b), len(want))
	}
}

func writeFile2(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, b, 0o644)
}
