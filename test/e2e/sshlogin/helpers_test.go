package sshlogin

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	eic "github.com/aws/aws-sdk-go-v2/service/ec2instanceconnect"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"golang.org/x/crypto/ssh"

	"github.com/kaginashi/kaginashi/internal/agent"
	"github.com/kaginashi/kaginashi/internal/keyrecord"
	"github.com/kaginashi/kaginashi/test/e2e/harness"
)

// --- processes -------------------------------------------------------------

// process is a child process whose output the test reads.
type process struct {
	name    string
	cmd     *exec.Cmd
	output  *harness.SyncBuffer // stdout and stderr
	done    chan struct{}
	waitErr error
}

// spawn starts a process that is killed when the test ends if it still
// runs.
func spawn(t testing.TB, name string, env []string, bin string, args ...string) *process {
	t.Helper()
	p := &process{name: name, cmd: exec.Command(bin, args...), output: &harness.SyncBuffer{}, done: make(chan struct{})}
	p.cmd.Env = env
	p.cmd.Stdout, p.cmd.Stderr = p.output, p.output
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	go func() {
		p.waitErr = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		if !p.exited() {
			p.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-p.done:
			case <-time.After(10 * time.Second):
				p.cmd.Process.Kill()
				<-p.done
			}
		}
		// Binaries built with -race (KAGINASHI_E2E_RACE=1) report here.
		if strings.Contains(p.output.String(), "WARNING: DATA RACE") {
			t.Errorf("%s: data race\n%s", name, p.output)
		}
	})
	return p
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// kill sends SIGKILL (a crash: nothing is flushed or said goodbye) and
// waits for the exit.
func (p *process) kill(t testing.TB) {
	t.Helper()
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatalf("killing %s: %v", p.name, err)
	}
	<-p.done
}

// waitOutput waits until the output holds want at least n times.
func (p *process) waitOutput(t testing.TB, want string, n int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for strings.Count(p.output.String(), want) < n {
		if p.exited() {
			t.Fatalf("%s exited (%v) before saying %q\noutput:\n%s", p.name, p.waitErr, want, p.output)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not say %q (%d times) within %v\noutput:\n%s", p.name, want, n, timeout, p.output)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitFor polls cond until it holds.
func waitFor(t testing.TB, what string, timeout time.Duration, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > timeout {
			t.Fatalf("%s: not within %v", what, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start)
}

// raceBuilt: the binaries were built with -race (KAGINASHI_E2E_RACE=1),
// which makes every process start and run several times slower.
var raceBuilt = os.Getenv("KAGINASHI_E2E_RACE") == "1"

// bound is a time limit the product promises, stretched for race-built
// binaries.
func bound(d time.Duration) time.Duration {
	if raceBuilt {
		return 4 * d
	}
	return d
}

func baseEnv() []string { return []string{"PATH=" + os.Getenv("PATH"), "LANG=C", "TZ=UTC"} }

// --- the server ------------------------------------------------------------

// The server runs in the region and account of examples/seed-policy-filled.json,
// so that the filled seed policy works as it is.
const (
	region  = "ap-northeast-1"
	account = "123456789012"
)

func startServer(t *testing.T, args ...string) *harness.Server {
	t.Helper()
	s := harness.StartServer(t, "sqlite", append([]string{"--region", region, "--account-id", account, "--rate-limit=-1"}, args...)...)
	if s.Region != region || s.Account != account {
		t.Fatalf("server runs in %s/%s, want %s/%s", s.Region, s.Account, region, account)
	}
	return s
}

// joinToken makes a join token for uses enrollments with the CLI, as an
// administrator does: `kaginashi agent-token create --output json` with
// the server's root credentials file and the usual AWS variables.
func joinToken(t *testing.T, s *harness.Server, uses int) string {
	t.Helper()
	env := append(baseEnv(), "HOME="+t.TempDir(),
		"AWS_ENDPOINT_URL="+s.URL(), "AWS_CA_BUNDLE="+s.CAPath(), "AWS_REGION="+s.Region, "AWS_CONFIG_FILE=/dev/null",
		"AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(s.Cfg.DataDir, "root-credentials"), "AWS_PROFILE=kaginashi-root")
	cmd := exec.Command(harness.Kaginashi, "agent-token", "create", "--output", "json", "--max-uses", strconv.Itoa(uses), "--ttl", "10m")
	cmd.Env = env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kaginashi agent-token create: %v\n%s", err, stderr.String())
	}
	var tok struct {
		Token     string `json:"token"`
		ExpiresAt string `json:"expiresAt"`
	}
	if err := json.Unmarshal(out, &tok); err != nil || tok.Token == "" || tok.ExpiresAt == "" {
		t.Fatalf("kaginashi agent-token create --output json: %v\n%s", err, out)
	}
	return tok.Token
}

// push sends key for osUser to instance and returns the request ID.
func push(t testing.TB, c *eic.Client, instance, osUser string, key sshKey) string {
	t.Helper()
	out, err := sendKey(c, instance, osUser, key)
	if err != nil {
		t.Fatalf("SendSSHPublicKey(%s, %s): %v", instance, osUser, err)
	}
	if !out.Success || aws.ToString(out.RequestId) == "" {
		t.Fatalf("SendSSHPublicKey(%s, %s): success %v, request ID %q", instance, osUser, out.Success, aws.ToString(out.RequestId))
	}
	return aws.ToString(out.RequestId)
}

func sendKey(c *eic.Client, instance, osUser string, key sshKey) (*eic.SendSSHPublicKeyOutput, error) {
	return c.SendSSHPublicKey(context.Background(), &eic.SendSSHPublicKeyInput{
		InstanceId: aws.String(instance), InstanceOSUser: aws.String(osUser), SSHPublicKey: aws.String(key.line),
	})
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

// newIAMUser creates an IAM user with an access key.
func newIAMUser(t testing.TB, s *harness.Server, name string) harness.Creds {
	t.Helper()
	ctx := context.Background()
	c := s.IAM(s.Root)
	harness.Must(c.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String(name)}))(t)
	k := harness.Must(c.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String(name)}))(t).AccessKey
	return harness.Creds{Who: name, ID: aws.ToString(k.AccessKeyId), Secret: aws.ToString(k.SecretAccessKey)}
}

// --- agents ----------------------------------------------------------------

// hostAgent is a `kaginashi-agent run` process and its data directory.
type hostAgent struct {
	s    *harness.Server
	dir  string
	id   string // instance ID
	proc *process
	runs int // processes started so far
}

// newAgentDir is a data directory under the safe directory: sshd runs the
// AuthorizedKeysCommand as an unprivileged user, who must reach DIR/keys.
func newAgentDir(t testing.TB, name string) string {
	t.Helper()
	parent, err := os.MkdirTemp(world.safe, name+"-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(parent, 0o755); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(parent, "data")
}

// enrollAgent enrolls a new agent with token and waits until it is
// connected.
func enrollAgent(t *testing.T, s *harness.Server, name, token string) *hostAgent {
	t.Helper()
	a := &hostAgent{s: s, dir: newAgentDir(t, name)}
	a.start(t, "--join-token", token)
	b, err := os.ReadFile(filepath.Join(a.dir, "agent.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg agent.Config
	if err := json.Unmarshal(b, &cfg); err != nil || !strings.HasPrefix(cfg.InstanceID, "i-") {
		t.Fatalf("agent.json: %v %s", err, b)
	}
	a.id = cfg.InstanceID
	return a
}

// start runs the agent and waits until it says it is connected.
func (a *hostAgent) start(t *testing.T, args ...string) {
	t.Helper()
	a.runs++
	args = append([]string{"run", "--server", a.s.URL(), "--data-dir", a.dir, "--ca-file", a.s.CAPath()}, args...)
	a.proc = spawn(t, fmt.Sprintf("agent %s (run %d)", a.dir, a.runs), append(baseEnv(), "HOME=/"), world.agent, args...)
	a.waitConnected(t, 1)
}

// waitConnected waits until this run of the agent has connected n times.
func (a *hostAgent) waitConnected(t testing.TB, n int) {
	t.Helper()
	a.proc.waitOutput(t, `msg="connected to the server"`, n, 30*time.Second)
}

// records are the agent's persisted key records.
func records(t testing.TB, dir string) []keyrecord.Record {
	t.Helper()
	recs, err := agent.Paths{Dir: dir}.LoadRecords()
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

// recordOf finds a persisted record by request ID.
func recordOf(t testing.TB, dir, requestID string) keyrecord.Record {
	t.Helper()
	for _, r := range records(t, dir) {
		if r.RequestID == requestID {
			return r
		}
	}
	t.Fatalf("no record of request %s in %s", requestID, dir)
	return keyrecord.Record{}
}

// hasKey says whether any persisted record carries fingerprint.
func hasKey(t testing.TB, dir, fingerprint string) bool {
	t.Helper()
	for _, r := range records(t, dir) {
		if r.Fingerprint == fingerprint {
			return true
		}
	}
	return false
}

// writeRecords replaces DIR/keys/records.json, as an attacker with write
// access to it would.
func writeRecords(t testing.TB, dir string, recs ...keyrecord.Record) {
	t.Helper()
	b, err := json.MarshalIndent(agent.Records{Records: recs}, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "keys", "records.json"), b, 0o644)
}

func writeFile(t testing.TB, path string, b []byte, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, b, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

// nobody is the unprivileged user the test sshds run the
// AuthorizedKeysCommand as.
func nobody() (uid, gid uint32, err error) {
	u, err := user.Lookup("nobody")
	if err != nil {
		return 0, 0, err
	}
	id, _ := strconv.Atoi(u.Uid)
	g, _ := strconv.Atoi(u.Gid)
	return uint32(id), uint32(g), nil
}

// authorizedKeys runs `kaginashi-agent authorized-keys` as sshd does: as
// the unprivileged user nobody, with a clean environment.
func authorizedKeys(t testing.TB, dir, osUser, fingerprint string) (stdout string, code int) {
	t.Helper()
	uid, gid, err := nobody()
	if err != nil {
		t.Fatalf("user nobody: %v", err)
	}
	args := []string{"authorized-keys", "--data-dir", dir, osUser}
	if fingerprint != "" {
		args = append(args, fingerprint)
	}
	cmd := exec.Command(world.agent, args...)
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: gid}}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		t.Fatalf("authorized-keys: %v", err)
	}
	if errb.Len() > 0 {
		t.Logf("authorized-keys %s stderr: %s", osUser, strings.TrimSpace(errb.String()))
	}
	return out.String(), code
}

// wantNoKeys asserts that authorized-keys serves no key for osUser with
// key's fingerprint (nothing printed, exit 0), nor key among all of
// osUser's keys (other tests push theirs to the same agent).
func wantNoKeys(t testing.TB, dir, osUser string, key sshKey) {
	t.Helper()
	if out, code := authorizedKeys(t, dir, osUser, key.fp); out != "" || code != 0 {
		t.Errorf("authorized-keys %s %s: exit %d, printed %q; want nothing and exit 0", osUser, key.fp, code, out)
	}
	if out, code := authorizedKeys(t, dir, osUser, ""); strings.Contains(out, strings.Fields(key.line)[1]) || code != 0 {
		t.Errorf("authorized-keys %s: exit %d, printed %q; want exit 0 and not key %s", osUser, code, out, key.fp)
	}
}

// wantNothing asserts that authorized-keys prints nothing at all for
// osUser and exits 0, with key's fingerprint and without (a data directory
// no other test uses).
func wantNothing(t testing.TB, dir, osUser string, key sshKey) {
	t.Helper()
	for _, fp := range []string{key.fp, ""} {
		if out, code := authorizedKeys(t, dir, osUser, fp); out != "" || code != 0 {
			t.Errorf("authorized-keys %s %s: exit %d, printed %q; want nothing and exit 0", osUser, fp, code, out)
		}
	}
}

// --- SSH keys ----------------------------------------------------------------

// sshKey is a client key pair: the private key file for ssh -i and the
// public key line for SendSSHPublicKey.
type sshKey struct {
	path string // OpenSSH private key file, mode 0600
	line string // "ssh-ed25519 AAAA... comment"
	fp   string // SHA256:...
}

func newKey(t testing.TB) sshKey {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "sshlogin@kaginashi")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "id_ed25519")
	writeFile(t, path, pem.EncodeToMemory(block), 0o600)
	pk, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return sshKey{path: path, line: harness.AuthorizedKey(t, pub) + " sshlogin@kaginashi", fp: ssh.FingerprintSHA256(pk)}
}

// --- sshd and ssh ----------------------------------------------------------------

// sshdProc is a private sshd on a loopback port.
type sshdProc struct {
	*process
	dir        string
	port       int
	config     string // its sshd_config
	knownHosts string // pins its host key
}

// sshdOptions configure a test sshd.
type sshdOptions struct {
	dir     string // for its files; "" is a new temporary directory
	dataDir string // the agent data directory authorized-keys reads
	// command is the AuthorizedKeysCommand before "--data-dir DIR %u %f";
	// "" is "AGENT authorized-keys".
	command string
	// main replaces the AuthorizedKeysCommand lines after the common ones
	// (the setup-sshd test: a stock configuration, without kaginashi).
	main *string
}

// commonConfig is what every test sshd has: its own port, host key and
// PidFile, public keys only, nothing from this machine's /etc/ssh.
func commonConfig(dir string, port int) string {
	lines := []string{
		"# a kaginashi sshlogin test sshd",
		"Port " + strconv.Itoa(port),
		"ListenAddress 127.0.0.1",
		"HostKey " + filepath.Join(dir, "ssh_host_ed25519_key"),
		"PidFile " + filepath.Join(dir, "sshd.pid"),
		"UsePAM no",
		"AuthorizedKeysFile none",
		"PubkeyAuthentication yes",
		"PasswordAuthentication no",
		"KbdInteractiveAuthentication no",
		"PermitRootLogin prohibit-password",
		"LogLevel VERBOSE",
	}
	if world.sshdPenalties {
		lines = append(lines, "PerSourcePenalties no") // refused logins are the point here
	}
	return strings.Join(lines, "\n") + "\n"
}

// startSSHD starts an sshd for the agent data directory o.dataDir. The
// AuthorizedKeysCommand runs as nobody, like kaginashi's own unprivileged
// user.
func startSSHD(t testing.TB, o sshdOptions) *sshdProc {
	t.Helper()
	dir := o.dir
	if dir == "" {
		dir = t.TempDir()
	}
	s := &sshdProc{dir: dir, config: filepath.Join(dir, "sshd_config"), knownHosts: filepath.Join(dir, "known_hosts")}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "ssh_host_ed25519_key"), pem.EncodeToMemory(block), 0o600)
	command := o.command
	if command == "" {
		command = world.agent + " authorized-keys"
	}
	for attempt := 0; ; attempt++ {
		s.port = harness.FreePort(t)
		cfg := commonConfig(dir, s.port)
		if o.main != nil {
			cfg += *o.main
		} else {
			cfg += "AuthorizedKeysCommand " + command + " --data-dir " + o.dataDir + " %u %f\n" +
				"AuthorizedKeysCommandUser nobody\n"
		}
		writeFile(t, s.config, []byte(cfg), 0o644)
		writeFile(t, s.knownHosts, []byte(fmt.Sprintf("[127.0.0.1]:%d %s\n", s.port, harness.AuthorizedKey(t, pub))), 0o644)
		// -D: no daemon, so the test owns the process; -e: log to stderr.
		s.process = spawn(t, "sshd", baseEnv(), world.sshd, "-D", "-e", "-f", s.config)
		if s.waitListening(t, 1) {
			return s
		}
		if attempt == 3 {
			t.Fatalf("sshd found no free port\n%s", s.output)
		}
	}
}

// waitListening waits until sshd has said it listens n times (once more
// after each reload); false if the port was taken.
func (s *sshdProc) waitListening(t testing.TB, n int) bool {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for strings.Count(s.output.String(), "Server listening on") < n {
		if s.exited() {
			if strings.Contains(s.output.String(), "Address already in use") {
				return false
			}
			t.Fatalf("sshd exited (%v)\n%s", s.waitErr, s.output)
		}
		if time.Now().After(deadline) {
			t.Fatalf("sshd not listening after 20s\n%s", s.output)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

// ssh runs `ssh osUser@127.0.0.1 COMMAND` with key and nothing else: no
// agent, no config file, the host key pinned.
func (s *sshdProc) ssh(t testing.TB, osUser string, key sshKey, command string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, world.ssh, "-F", "/dev/null",
		"-o", "BatchMode=yes",
		"-o", "StrictHostKeyChecking=yes",
		"-o", "UserKnownHostsFile="+s.knownHosts,
		"-o", "GlobalKnownHostsFile=/dev/null",
		"-o", "IdentitiesOnly=yes",
		"-o", "IdentityAgent=none",
		"-o", "PreferredAuthentications=publickey",
		"-o", "ConnectTimeout=10",
		"-o", "LogLevel=ERROR",
		"-i", key.path,
		"-p", strconv.Itoa(s.port),
		osUser+"@127.0.0.1", command)
	cmd.Env = append(baseEnv(), "HOME="+t.TempDir())
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		t.Fatalf("ssh: %v", err)
	}
	return out.String(), errb.String(), code
}

// loginCommand prints who logged in, as the remote shell sees it.
const loginCommand = `echo "kaginashi-login:$(id -un)"`

// wantLogin asserts that osUser logs in with key and runs a command.
func (s *sshdProc) wantLogin(t testing.TB, osUser string, key sshKey) {
	t.Helper()
	out, errOut, code := s.ssh(t, osUser, key, loginCommand)
	if want := "kaginashi-login:" + osUser + "\n"; code != 0 || out != want {
		t.Fatalf("ssh %s@sshd with key %s: exit %d, output %q, want %q\nssh stderr: %s\nsshd log (tail):\n%s",
			osUser, key.fp, code, out, want, errOut, tail(s.output.String(), 30))
	}
}

// wantRefused asserts that sshd refuses key for osUser: ssh's "Permission
// denied (publickey)" and exit 255, nothing else (a refused connection or
// a host key mismatch would not prove anything).
func (s *sshdProc) wantRefused(t testing.TB, osUser string, key sshKey) {
	t.Helper()
	out, errOut, code := s.ssh(t, osUser, key, loginCommand)
	if code != 255 || !strings.Contains(errOut, "Permission denied (publickey)") || out != "" {
		t.Fatalf("ssh %s@sshd with key %s: exit %d, output %q, stderr %q; want it refused (exit 255, Permission denied (publickey))\nsshd log (tail):\n%s",
			osUser, key.fp, code, out, errOut, tail(s.output.String(), 30))
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
