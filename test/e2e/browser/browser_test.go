package browser

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/kaginashi/kaginashi/test/e2e/harness"
)

const (
	region    = "ap-northeast-1"
	account   = "123456789012"
	userGECOS = "kaginashi browser e2e test user"
	userPfx   = "kgb-"
	safePfx   = "kaginashi-browser-"
)

// world is what TestMain prepared.
var world struct {
	skip  string
	root  string // the module root
	sshd  string
	safe  string // root-owned directory sshd accepts the AuthorizedKeysCommand in
	agent string
	user  string

	sshdConfig string // the running sshd's, for the agent's inventory
	sshPort    int    // where it listens on 127.0.0.1
}

func TestMain(m *testing.M) {
	code, err := run(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "browser:", err)
		os.Exit(2)
	}
	os.Exit(code)
}

func run(m *testing.M) (int, error) {
	if world.skip = skipReason(); world.skip != "" {
		return m.Run(), nil
	}
	var err error
	if world.root, err = harness.ModuleRoot(); err != nil {
		return 0, err
	}
	bin, err := harness.BuildKaginashi("kaginashi-browser-bin-")
	defer os.RemoveAll(bin)
	if err != nil {
		return 0, err
	}
	if world.safe, world.agent, err = harness.SetUpSSHD(safePfx); err != nil {
		return 0, err
	}
	defer os.RemoveAll(world.safe)
	reapStaleUsers()
	world.user = userPfx + strconv.Itoa(os.Getpid())
	if err := harness.AddUser(world.user, "/tmp", userGECOS); err != nil {
		return 0, err
	}
	defer delUser(world.user)
	return m.Run(), nil
}

// skipReason says why the tests cannot run here; a missing package that
// scripts/deps.sh installs is an error, not a skip.
func skipReason() string {
	switch {
	case os.Getenv("KAGINASHI_SKIP_BROWSER") == "1":
		return "KAGINASHI_SKIP_BROWSER=1"
	case os.Getenv("KAGINASHI_SKIP_SSHD") == "1":
		return "KAGINASHI_SKIP_SSHD=1: the browser terminal needs a real sshd"
	case os.Geteuid() != 0:
		return "the browser tests run as root: sshd, and the local user they add, need it"
	}
	world.sshd = harness.SSHDPath
	need := map[string]string{"sshd": world.sshd, "chromium": "chromium", "node": "node", "useradd": "useradd", "userdel": "userdel"}
	for what, p := range need {
		if _, err := exec.LookPath(p); err != nil {
			fmt.Fprintf(os.Stderr, "browser: %s is not installed: run scripts/deps.sh test, or set KAGINASHI_SKIP_BROWSER=1\n", what)
			os.Exit(2)
		}
	}
	return ""
}

func delUser(name string) {
	for i := 0; i < 50; i++ {
		if exec.Command("userdel", name).Run() == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// reapStaleUsers removes the users of earlier runs whose process is gone.
func reapStaleUsers() {
	for _, u := range harness.StaleUsers(userPfx, userGECOS) {
		delUser(u)
	}
}

// startSSHD starts a private sshd on a free 127.0.0.1 port whose keys come
// from the agent with data directory dataDir; its host key's .pub is
// published for the agent's inventory (the console's SSH client pins it).
// The console reaches it with the terminal's port parameter, through an
// agent that allows the port.
func startSSHD(t *testing.T, dataDir string) {
	t.Helper()
	d := harness.StartSSHD(t, harness.SSHDOptions{
		Bin: world.sshd, Comment: "# a kaginashi browser test sshd", PublishHostKey: true, NoPenalties: true,
		Lines: []string{
			"AuthorizedKeysFile none",
			"AuthorizedKeysCommand " + world.agent + " authorized-keys --data-dir " + dataDir + " %u %f",
			"AuthorizedKeysCommandUser nobody",
			"PermitRootLogin no",
			// The MOTD, then the shell half a second later, as on a host
			// with slow login scripts: keys typed in between are echoed at
			// once and the command's output lands after the first prompt,
			// on its line ("$ ok"). The browser steps wait for the prompt
			// (run.mjs waitPrompt); before they did, this failed them every
			// time, and a loaded machine failed them now and then. (A
			// command makes sshd skip its own MOTD: cat prints it.)
			"ForceCommand cat /etc/motd; sleep 0.5; exec /bin/sh -l",
		},
	})
	world.sshdConfig, world.sshPort = d.Config, d.Port
}

func TestConsoleInBrowser(t *testing.T) {
	if world.skip != "" {
		t.Skip(world.skip)
	}
	begin := time.Now()
	s := harness.StartServer(t, "sqlite", "--region", region, "--account-id", account, "--rate-limit=-1")
	if s.Region != region || s.Account != account {
		t.Fatalf("server runs in %s/%s, want %s/%s", s.Region, s.Account, region, account)
	}
	// The agent's data directory, under the safe directory: sshd's
	// AuthorizedKeysCommand runs as nobody and reads DIR/keys.
	dataDir := harness.AgentDataDir(t, world.safe, "web")
	startSSHD(t, dataDir)

	home := t.TempDir()
	ag := harness.Spawn(t, "the agent", append(harness.BaseEnv(), "HOME=/"), world.agent, s.AgentArgs(dataDir,
		"--join-token", s.JoinToken(t, 1), "--tag", "Name=web", "--tag", "team=web", "--sshd-config", world.sshdConfig,
		"--allow-port", strconv.Itoa(world.sshPort))...)
	ag.WaitOutput(t, harness.AgentConnected, 1, 30*time.Second)
	instance := harness.InstanceID(t, dataDir)
	t.Logf("world set up in %v: server %s, instance %s, OS user %s", time.Since(begin).Round(time.Millisecond), s.URL(), instance, world.user)

	shots := filepath.Join(world.root, "test", "browser", "screenshots")
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	node := exec.CommandContext(ctx, "node", filepath.Join(world.root, "test", "browser", "run.mjs"))
	node.Dir = filepath.Join(world.root, "test", "browser")
	node.Env = append(harness.BaseEnv(), "HOME="+home,
		"KG_URL="+s.URL(), "KG_ACCOUNT="+s.Account, "KG_REGION="+s.Region,
		"KG_ROOT_SECRET="+s.Root.Secret, "KG_INSTANCE_ID="+instance, "KG_OS_USER="+world.user, "KG_SSH_PORT="+strconv.Itoa(world.sshPort),
		"KG_SEED_POLICY="+filepath.Join(world.root, "examples", "seed-policy-filled.json"),
		"KG_AGENT_DATA_DIR="+dataDir, // a step breaks its keys directory's mode for a while: a real signing-key problem
		"KG_SCREENSHOTS="+shots, "KG_CHROMIUM=chromium")
	res := &harness.SyncBuffer{}
	node.Stdout, node.Stderr = res, res
	err := node.Run()
	t.Logf("browser tests (%v):\n%s", time.Since(begin).Round(time.Millisecond), res)
	if err != nil {
		t.Errorf("node test/browser/run.mjs: %v", err)
		t.Logf("server log (tail):\n%s", harness.Tail(s.Stderr.String(), 60))
		t.Logf("agent log (tail):\n%s", harness.Tail(ag.Output.String(), 30))
	}
}
