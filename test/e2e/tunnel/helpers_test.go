package tunnel

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	eic "github.com/aws/aws-sdk-go-v2/service/ec2instanceconnect"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"golang.org/x/crypto/ssh"

	"github.com/kaginashi/kaginashi/internal/agent"
	"github.com/kaginashi/kaginashi/test/e2e/harness"
)

func bound(d time.Duration) time.Duration { return harness.Bound(d) }

func baseEnv() []string { return harness.BaseEnv() }

// --- processes -------------------------------------------------------------

// process is a child process whose output the test reads.
type process = harness.Process

// result is a finished command.
type result struct {
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// runIn runs a command to its end in dir with env and stdin.
func runIn(t testing.TB, dir string, env []string, stdin string, bin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), bound(60*time.Second))
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env, cmd.Dir = env, dir
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case ctx.Err() != nil:
		t.Fatalf("%s %v: no end within the time limit\nstdout:\n%s\nstderr:\n%s", bin, args, r.stdout, r.stderr)
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	default:
		t.Fatalf("%s: %v", bin, err)
	}
	if strings.Contains(r.stderr, "WARNING: DATA RACE") {
		t.Errorf("%s: data race\n%s", bin, r.stderr)
	}
	return r
}

// --- the server ------------------------------------------------------------

const (
	region  = "ap-northeast-1"
	account = "123456789012"
)

func startServer(t *testing.T) *harness.Server {
	t.Helper()
	s := harness.StartServer(t, "sqlite", "--region", region, "--account-id", account, "--rate-limit=-1")
	if s.Region != region || s.Account != account {
		t.Fatalf("server runs in %s/%s, want %s/%s", s.Region, s.Account, region, account)
	}
	return s
}

// joinToken makes a join token for uses enrollments.
func joinToken(t *testing.T, s *harness.Server, uses int) string {
	t.Helper()
	r := runIn(t, "", clientEnv(t, s, s.Root, t.TempDir()), "", harness.Kaginashi, "agent-token", "create", "--output", "json", "--max-uses", strconv.Itoa(uses), "--ttl", "10m")
	var tok struct {
		Token string `json:"token"`
	}
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &tok) != nil || tok.Token == "" {
		t.Fatalf("kaginashi agent-token create: %v", r)
	}
	return tok.Token
}

// newIAMUser creates an IAM user with an access key and an inline policy.
func newIAMUser(t testing.TB, s *harness.Server, name, policy string) harness.Creds {
	t.Helper()
	ctx := context.Background()
	c := s.IAM(s.Root)
	harness.Must(c.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String(name)}))(t)
	if policy != "" {
		harness.Must(c.PutUserPolicy(ctx, &iam.PutUserPolicyInput{UserName: aws.String(name), PolicyName: aws.String(name + "-policy"), PolicyDocument: aws.String(policy)}))(t)
	}
	k := harness.Must(c.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String(name)}))(t).AccessKey
	return harness.Creds{Who: name, ID: aws.ToString(k.AccessKeyId), Secret: aws.ToString(k.SecretAccessKey)}
}

// clientEnv is what a person's shell has for the kaginashi client: the
// usual AWS variables, a home of its own, a TMPDIR of its own.
func clientEnv(t testing.TB, s *harness.Server, c harness.Creds, home string, extra ...string) []string {
	t.Helper()
	tmp := filepath.Join(home, "tmp")
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		t.Fatal(err)
	}
	return append(append(baseEnv(), "HOME="+home, "TMPDIR="+tmp,
		"AWS_ENDPOINT_URL="+s.URL(), "AWS_CA_BUNDLE="+s.CAPath(), "AWS_REGION="+s.Region,
		"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null",
		"AWS_ACCESS_KEY_ID="+c.ID, "AWS_SECRET_ACCESS_KEY="+c.Secret), extra...)
}

// instanceState is the instance's state as DescribeInstances shows it.
func instanceState(t testing.TB, s *harness.Server, id string) string {
	t.Helper()
	out := harness.Must(s.EC2(s.Root).DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{InstanceIds: []string{id}}))(t)
	for _, r := range out.Reservations {
		for _, in := range r.Instances {
			if aws.ToString(in.InstanceId) == id && in.State != nil {
				return string(in.State.Name)
			}
		}
	}
	t.Fatalf("DescribeInstances does not show %s", id)
	return ""
}

// --- agents ----------------------------------------------------------------

// hostAgent is a `kaginashi-agent run` process and its data directory.
type hostAgent struct {
	dir  string
	id   string
	proc *process
}

// agentDir is a data directory for an agent, under the safe directory:
// sshd runs the AuthorizedKeysCommand as nobody, who must reach DIR/keys.
func agentDir(t testing.TB, name string) string {
	t.Helper()
	return harness.AgentDataDir(t, world.safe, name)
}

// startAgent enrolls an agent in dir with token and the given flags and
// waits until it is connected.
func startAgent(t *testing.T, s *harness.Server, name, dir, token string, args ...string) *hostAgent {
	t.Helper()
	a := &hostAgent{dir: dir}
	a.proc = harness.Spawn(t, "agent "+name, append(baseEnv(), "HOME=/"), world.agent, s.AgentArgs(a.dir, append([]string{"--join-token", token}, args...)...)...)
	a.proc.WaitOutput(t, harness.AgentConnected, 1, bound(30*time.Second))
	a.id = harness.InstanceID(t, a.dir)
	return a
}

// fingerprints are the fingerprints of the keys the agent has been pushed.
func (a *hostAgent) fingerprints(t testing.TB) []string {
	t.Helper()
	recs, err := agent.Paths{Dir: a.dir}.LoadRecords()
	if err != nil {
		t.Fatal(err)
	}
	var fps []string
	for _, r := range recs {
		fps = append(fps, r.Fingerprint)
	}
	return fps
}

// --- keys ------------------------------------------------------------------

// sshKey is a key pair on disk: the private key file and its public line.
type sshKey struct {
	path string // OpenSSH private key file, 0600; path.pub next to it
	line string // "ssh-ed25519 AAAA..."
	fp   string
}

func newKeyAt(t testing.TB, path string) sshKey {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	pub := harness.WriteEd25519Key(t, path, "")
	line := harness.AuthorizedKey(t, pub)
	writeFile(t, path+".pub", []byte(line+"\n"), 0o644)
	pk, _ := ssh.NewPublicKey(pub)
	return sshKey{path: path, line: line, fp: ssh.FingerprintSHA256(pk)}
}

func newKey(t testing.TB) sshKey { return newKeyAt(t, filepath.Join(t.TempDir(), "id_ed25519")) }

func writeFile(t testing.TB, path string, b []byte, mode os.FileMode) {
	t.Helper()
	harness.WriteFile(t, path, b, mode)
}

func push(t testing.TB, c *eic.Client, instance, osUser string, key sshKey) {
	t.Helper()
	_, err := c.SendSSHPublicKey(context.Background(), &eic.SendSSHPublicKeyInput{
		InstanceId: aws.String(instance), InstanceOSUser: aws.String(osUser), SSHPublicKey: aws.String(key.line),
	})
	if err != nil {
		t.Fatalf("SendSSHPublicKey(%s, %s): %v", instance, osUser, err)
	}
}

// --- sshd ------------------------------------------------------------------

// sshdProc is a private sshd on a loopback port.
type sshdProc struct {
	*harness.SSHD
	knownHosts string // pins its host key for direct baselines
}

// sshdOptions configure a test sshd.
type sshdOptions struct {
	dataDir string // the agent data directory authorized-keys reads
	// publishKey writes the host key's .pub next to it, where an agent
	// given this sshd's configuration reads it from.
	publishKey bool
}

// startSSHD starts an sshd whose AuthorizedKeysCommand serves the keys
// pushed to the agent of o.dataDir. MaxAuthTries 1: a client that offers
// any other key first is cut off.
func startSSHD(t testing.TB, o sshdOptions) *sshdProc {
	t.Helper()
	s := &sshdProc{}
	s.SSHD = harness.StartSSHD(t, harness.SSHDOptions{
		Bin: world.sshd, Comment: "# a kaginashi tunnel test sshd", PublishHostKey: o.publishKey, NoPenalties: true,
		Lines: []string{
			"AuthorizedKeysFile none",
			"AuthorizedKeysCommand " + world.agent + " authorized-keys --data-dir " + o.dataDir + " %u %f",
			"AuthorizedKeysCommandUser nobody",
			"PermitRootLogin prohibit-password",
			"MaxAuthTries 1",
			"Subsystem sftp internal-sftp",
		},
		OnPort: func(d *harness.SSHD) {
			s.knownHosts = filepath.Join(d.Dir, "known_hosts")
			d.PinHostKey(t, s.knownHosts)
		},
	})
	return s
}

// directSSH logs in straight to the sshd with key, no tunnel: a baseline.
func (s *sshdProc) directSSH(t testing.TB, osUser string, key sshKey, command string) result {
	t.Helper()
	return runIn(t, "", append(baseEnv(), "HOME="+t.TempDir()), "", world.tools["ssh"], "-F", "/dev/null",
		"-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes", "-o", "UserKnownHostsFile="+s.knownHosts,
		"-o", "GlobalKnownHostsFile=/dev/null", "-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none",
		"-o", "ConnectTimeout=10", "-o", "LogLevel=ERROR", "-i", key.path, "-p", strconv.Itoa(s.Port),
		osUser+"@127.0.0.1", command)
}

func tail(s string, n int) string { return harness.Tail(s, n) }

// --- an OpenSSH ssh-agent --------------------------------------------------

// sshAgent is a user's ssh-agent (OpenSSH's), with keys of its own.
type sshAgent struct {
	sock string
	proc *process
}

func startSSHAgent(t testing.TB, keys ...sshKey) *sshAgent {
	t.Helper()
	dir, err := os.MkdirTemp("", "kgt-agent-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	a := &sshAgent{sock: filepath.Join(dir, "agent.sock")}
	// -D: in the foreground, so that the test owns the process.
	a.proc = harness.Spawn(t, "ssh-agent", baseEnv(), world.tools["ssh-agent"], "-D", "-a", a.sock)
	// Listening, not merely there: the socket's file exists from its
	// bind, a moment before ssh-agent listens on it.
	waitFor(t, "ssh-agent's socket", 10*time.Second, func() bool {
		c, err := net.Dial("unix", a.sock)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	for _, k := range keys {
		if r := runIn(t, "", append(baseEnv(), "SSH_AUTH_SOCK="+a.sock), "", world.tools["ssh-add"], "-q", k.path); r.code != 0 {
			t.Fatalf("ssh-add: %v", r)
		}
	}
	return a
}

// list is ssh-add -l: one line per key.
func (a *sshAgent) list(t testing.TB) string {
	t.Helper()
	return runIn(t, "", append(baseEnv(), "SSH_AUTH_SOCK="+a.sock), "", world.tools["ssh-add"], "-l").stdout
}

func waitFor(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// userDir is a directory the test's login user owns, for files copied
// over ssh.
func userDir(t testing.TB) string {
	t.Helper()
	d, err := os.MkdirTemp("", "kgt-files-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	if err := os.Chown(d, world.uid, world.gid); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(d, 0o755); err != nil {
		t.Fatal(err)
	}
	return d
}
