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
// administrator does (harness.Server.JoinToken).
func joinToken(t *testing.T, s *harness.Server, uses int) string {
	t.Helper()
	return s.JoinToken(t, uses)
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
	proc *harness.Process
	runs int // processes started so far
}

// newAgentDir is a data directory under the safe directory: sshd runs the
// AuthorizedKeysCommand as an unprivileged user, who must reach DIR/keys.
func newAgentDir(t testing.TB, name string) string {
	t.Helper()
	return harness.AgentDataDir(t, world.safe, name)
}

// enrollAgent enrolls a new agent with token and waits until it is
// connected.
func enrollAgent(t *testing.T, s *harness.Server, name, token string) *hostAgent {
	t.Helper()
	a := &hostAgent{s: s, dir: newAgentDir(t, name)}
	a.start(t, "--join-token", token)
	a.id = harness.InstanceID(t, a.dir)
	return a
}

// start runs the agent and waits until it says it is connected.
func (a *hostAgent) start(t *testing.T, args ...string) {
	t.Helper()
	a.runs++
	a.proc = harness.Spawn(t, fmt.Sprintf("agent %s (run %d)", a.dir, a.runs), append(harness.BaseEnv(), "HOME=/"), world.agent, a.s.AgentArgs(a.dir, args...)...)
	a.waitConnected(t, 1)
}

// waitConnected waits until this run of the agent has connected n times.
func (a *hostAgent) waitConnected(t testing.TB, n int) {
	t.Helper()
	a.proc.WaitOutput(t, harness.AgentConnected, n, 30*time.Second)
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
	harness.WriteFile(t, path, b, mode)
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

// authorizedKeys runs the AuthorizedKeysCommand the sshds run
// (kaginashi-authorized-keys authorized-keys) as sshd does: as the
// unprivileged user nobody, with a clean environment.
func authorizedKeys(t testing.TB, dir, osUser, fingerprint string) (stdout string, code int) {
	t.Helper()
	return runAuthorizedKeys(t, world.akc, dir, osUser, fingerprint)
}

// runAuthorizedKeys runs bin's authorized-keys as sshd does.
func runAuthorizedKeys(t testing.TB, bin, dir, osUser, fingerprint string) (stdout string, code int) {
	t.Helper()
	uid, gid, err := nobody()
	if err != nil {
		t.Fatalf("user nobody: %v", err)
	}
	args := []string{"authorized-keys", "--data-dir", dir, osUser}
	if fingerprint != "" {
		args = append(args, fingerprint)
	}
	cmd := exec.Command(bin, args...)
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
	*harness.SSHD
	knownHosts string // pins its host key
}

// sshdOptions configure a test sshd.
type sshdOptions struct {
	dir     string // for its files; "" is a new temporary directory
	dataDir string // the agent data directory authorized-keys reads
	// command is the AuthorizedKeysCommand before "--data-dir DIR %u %f";
	// "" is "AKC authorized-keys", what setup-sshd installs.
	command string
	// main replaces the AuthorizedKeysCommand lines after the common ones
	// (the setup-sshd test: a stock configuration, without kaginashi).
	main *string
}

// startSSHD starts an sshd for the agent data directory o.dataDir: its own
// port, host key and PidFile, public keys only, nothing from this
// machine's /etc/ssh. The AuthorizedKeysCommand runs as nobody, like
// kaginashi's own unprivileged user.
func startSSHD(t testing.TB, o sshdOptions) *sshdProc {
	t.Helper()
	command := o.command
	if command == "" {
		command = world.akc + " authorized-keys"
	}
	lines := []string{"AuthorizedKeysFile none", "PermitRootLogin prohibit-password"}
	if o.main != nil {
		lines = append(lines, strings.TrimSuffix(*o.main, "\n"))
	} else {
		lines = append(lines, "AuthorizedKeysCommand "+command+" --data-dir "+o.dataDir+" %u %f", "AuthorizedKeysCommandUser nobody")
	}
	s := &sshdProc{}
	s.SSHD = harness.StartSSHD(t, harness.SSHDOptions{
		Bin: world.sshd, Dir: o.dir, Comment: "# a kaginashi sshlogin test sshd", Lines: lines, NoPenalties: true,
		OnPort: func(d *harness.SSHD) {
			s.knownHosts = filepath.Join(d.Dir, "known_hosts")
			d.PinHostKey(t, s.knownHosts)
		},
	})
	return s
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
		"-p", strconv.Itoa(s.Port),
		osUser+"@127.0.0.1", command)
	cmd.Env = append(harness.BaseEnv(), "HOME="+t.TempDir())
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
			osUser, key.fp, code, out, want, errOut, harness.Tail(s.Output.String(), 30))
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
			osUser, key.fp, code, out, errOut, harness.Tail(s.Output.String(), 30))
	}
}
