package e2e

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	cttypes "github.com/aws/aws-sdk-go-v2/service/cloudtrail/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"

	"github.com/kaginashi/kaginashi/internal/store"
	"github.com/kaginashi/kaginashi/test/e2e/harness"
)

// TestContract3 checks lines of issue #3's contract that an acceptance
// test written from the text would try and the other tests did
// not: found by the audit of session 6.
func TestContract3(t *testing.T) {
	t.Parallel()
	s := harness.StartServer(t, "sqlite", "--rate-limit=-1")
	e := &env{Server: s}
	t.Run("credential scope names another service", func(t *testing.T) {
		testScopedToAnotherService(t, e)
	})
	t.Run("README server quick start", func(t *testing.T) {
		testReadmeServerQuickStart(t, e)
	})
	t.Run("audit lookup takes what its table shows", func(t *testing.T) {
		testAuditLookupTable(t, e)
	})
}

// testAuditLookupTable: §4 `kaginashi audit lookup [--event-name N]
// [--user U]`. Its table names events service:Name and users by name; a
// person copies those into --event-name and --user and must get those
// events, not an empty table: iam:CreateUser, and root for the account
// root (the column said Root, which --user did not take).
func testAuditLookupTable(t *testing.T, e *env) {
	ctx := context.Background()
	harness.Must(e.IAM(e.Root).CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("table-user")}))(t)
	dir := t.TempDir()
	writeCredentials(t, filepath.Join(dir, "credentials"), map[string]harness.Creds{"kaginashi-root": e.Root})
	env := e.cliEnv(t, dir, "AWS_PROFILE=kaginashi-root", "AWS_ENDPOINT_URL="+e.URL(), "AWS_CA_BUNDLE="+e.CAPath())
	table := func(args ...string) [][]string {
		t.Helper()
		r := run(t, env, harness.Kaginashi, append([]string{"audit", "lookup", "--max-items", "1000"}, args...)...)
		if r.code != 0 {
			t.Fatalf("kaginashi audit lookup %v: exit %d\n%s", args, r.code, r.stderr)
		}
		var rows [][]string
		for _, l := range strings.Split(strings.TrimSpace(r.stdout), "\n")[1:] {
			rows = append(rows, strings.Fields(l))
		}
		return rows
	}
	var create []string
	for _, row := range table() {
		if len(row) == 5 && strings.HasSuffix(row[1], ":CreateUser") && row[4] == "ok" {
			create = row
		}
	}
	if create == nil {
		t.Fatal("the table shows no CreateUser")
	}
	for _, args := range [][]string{{"--event-name", create[1]}, {"--user", create[2]}, {"--event-name", create[1], "--user", create[2]}} {
		rows := table(args...)
		found := false
		for _, row := range rows {
			if (args[0] == "--event-name" && row[1] != create[1]) || (args[len(args)-2] == "--user" && row[2] != create[2]) {
				t.Errorf("kaginashi audit lookup %v: row %v", args, row)
			}
			found = found || (row[0] == create[0] && row[1] == create[1])
		}
		if !found {
			t.Errorf("kaginashi audit lookup %v: %d rows, not the CreateUser %v", args, len(rows), create)
		}
	}
	// Another service's name is not this one's events.
	if rows := table("--event-name", "ec2:CreateUser"); len(rows) != 0 {
		t.Errorf("--event-name ec2:CreateUser: %v", rows)
	}
	if r := run(t, env, harness.Kaginashi, "audit", "lookup", "--event-name", "iam:"); r.code != 2 || !strings.Contains(r.stderr, "--event-name") {
		t.Errorf("--event-name iam: exit %d\n%s", r.code, r.stderr)
	}
}

// testReadmeServerQuickStart: §6 "README quick start: start the server,
// point aws at it, create a user, attach the seed's policy (filled in),
// push a key". README's block is run as written, by bash with the aws CLI,
// in a directory laid out as after `make build` and the README's `kaginashi
// server --data-dir ./kd`, with three substitutions: the server's port for
// 8443, an instance (with a stand-in agent) for i-…, and no ssh login (a
// real sshd's logins are test/e2e/sshlogin's). The key must be pushed as
// alice, whom the policy is for — not as root, who may do anything — and
// the closing audit lookup must work.
func testReadmeServerQuickStart(t *testing.T, e *env) {
	if _, err := exec.LookPath("aws"); err != nil {
		t.Fatalf("the aws CLI is not installed: %v", err)
	}
	root, err := harness.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(readme), "In another terminal, as the account root:\n\n```sh\n")
	block, _, ok2 := strings.Cut(after, "```")
	if !ok || !ok2 {
		t.Fatal("README.md: no sh block after \"In another terminal, as the account root:\"")
	}

	// The instance the key goes to, with a stand-in agent for it.
	const id = "i-0e2e0000000000a11"
	now := time.Now().UTC().Truncate(time.Second)
	st := e.OpenStore(t)
	if err := st.PutInstance(context.Background(), store.Instance{ID: id, State: store.StateRunning, LaunchTime: now, LastSeen: now,
		Hostname: "web", PrivateIP: "10.0.0.21", OSID: "debian", OSVersion: "12", Platform: "Linux/UNIX", Architecture: "x86_64", DefaultUser: "admin"}); err != nil {
		t.Fatal(err)
	}
	e.ConnectFakeAgent(t, st, id)

	script := block
	for _, r := range [][2]string{{"https://localhost:8443", e.URL()}, {"i-…", id}} {
		if !strings.Contains(script, r[0]) {
			t.Fatalf("README.md's block no longer has %q:\n%s", r[0], block)
		}
		script = strings.ReplaceAll(script, r[0], r[1])
	}
	var lines []string
	for _, l := range strings.Split(script, "\n") {
		if !strings.HasPrefix(l, "ssh ") {
			lines = append(lines, l)
		}
	}
	script = strings.Join(lines, "\n")

	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	for _, d := range []string{filepath.Join(home, ".ssh"), filepath.Join(dir, "bin"), filepath.Join(dir, "examples")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(home, ".ssh", "id_ed25519.pub"), []byte(harness.Ed25519Key(t)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "examples", "seed-policy.json"), []byte(harness.RawSeedPolicy(t)), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, l := range [][2]string{{e.Cfg.DataDir, filepath.Join(dir, "kd")}, {harness.Kaginashi, filepath.Join(dir, "bin", "kaginashi")}} {
		if err := os.Symlink(l[0], l[1]); err != nil {
			t.Fatal(err)
		}
	}
	var env []string
	for _, k := range []string{"PYENV_ROOT", "PYENV_VERSION", "VIRTUAL_ENV", "LANG", "LC_ALL", "TMPDIR"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	env = append(env, "PATH="+os.Getenv("PATH"), "HOME="+home, "AWS_CONFIG_FILE=/dev/null", "AWS_EC2_METADATA_DISABLED=true", "AWS_PAGER=")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-e", "-x", "-c", script)
	cmd.Dir, cmd.Env = dir, env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("README.md's block: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "SendSSHPublicKey") {
		t.Errorf("the closing audit lookup shows no SendSSHPublicKey:\n%s", out)
	}

	// Who pushed the key: alice, as the README says.
	evs := harness.Must(e.CT(e.Root).LookupEvents(context.Background(), &cloudtrail.LookupEventsInput{
		LookupAttributes: []cttypes.LookupAttribute{{AttributeKey: cttypes.LookupAttributeKeyEventName, AttributeValue: aws.String("SendSSHPublicKey")}},
	}))(t)
	var who []string
	for _, ev := range evs.Events {
		if strings.Contains(aws.ToString(ev.CloudTrailEvent), id) {
			who = append(who, aws.ToString(ev.Username))
		}
	}
	if len(who) != 1 || who[0] != "alice" {
		t.Errorf("SendSSHPublicKey was called by %q, want once by alice\n%s", who, out)
	}
}

// serviceSigner signs every request for one SigV4 service name, whatever
// the client is for.
type serviceSigner struct{ service string }

func (s serviceSigner) SignHTTP(ctx context.Context, c aws.Credentials, r *http.Request, hash, _, region string, t time.Time, optFns ...func(*v4.SignerOptions)) error {
	return v4.NewSigner().SignHTTP(ctx, c, r, hash, s.service, region, t, optFns...)
}

// testScopedToAnotherService: §2 "credential scope (region, service)
// checked". One listener serves every API, so a request signed for another
// of them (an STS call signed for iam) is a scope error in the words and
// the shape of the API the client speaks — as AWS's endpoint for that
// service answers it — not an unknown Version or operation of the API the
// scope happens to name. A service kaginashi does not serve (s3) is the
// same error, in the client's shape too.
func testScopedToAnotherService(t *testing.T, e *env) {
	want := map[string]codeStatus{
		"IAM": {"SignatureDoesNotMatch", 403}, "STS": {"SignatureDoesNotMatch", 403}, "EC2": {"AuthFailure", 401},
		"EIC": {"InvalidSignatureException", 403}, "CloudTrail": {"InvalidSignatureException", 403},
	}
	own := map[string]string{"IAM": "iam", "STS": "sts", "EC2": "ec2", "EIC": "ec2-instance-connect", "CloudTrail": "cloudtrail"}
	others := map[string][]string{
		"IAM": {"sts", "ec2", "s3"}, "STS": {"iam", "ec2-instance-connect", "s3"}, "EC2": {"sts", "iam", "s3"},
		"EIC": {"ec2", "cloudtrail", "sts", "s3"}, "CloudTrail": {"ec2-instance-connect", "iam", "s3"},
	}
	for _, svc := range services {
		for _, signed := range others[svc.name] {
			t.Run(svc.name+"/signed for "+signed, func(t *testing.T) {
				err := svc.call(e, e.Root, harness.AsWho(""), harness.WithSigner(serviceSigner{signed}))
				w := want[svc.name]
				ae := harness.WantCode(t, err, w.code, w.status)
				if msg := ae.ErrorMessage(); !strings.Contains(msg, "Credential should be scoped to correct service") ||
					!strings.Contains(msg, "'"+own[svc.name]+"'") || !strings.Contains(msg, "'"+signed+"'") {
					t.Errorf("message %q: want it to name the service to sign for (%s) and the one signed for (%s)", msg, own[svc.name], signed)
				}
			})
		}
		// The positive control: the same signer with the right name (this
		// server has no instances: the push gets as far as the lookup).
		err := svc.call(e, e.Root, harness.WithSigner(serviceSigner{own[svc.name]}))
		if svc.name == "EIC" {
			t.Run("EIC/signed for ec2-instance-connect", func(t *testing.T) { harness.WantCode(t, err, "EC2InstanceNotFoundException", 404) })
		} else if err != nil {
			t.Errorf("%s signed for %s: %v", svc.name, own[svc.name], err)
		}
	}
}
