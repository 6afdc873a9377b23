package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kaginashi/kaginashi/test/e2e/harness"
)

// cliEnv is the environment for `aws` and `kaginashi` client commands: a
// private HOME and credentials file, no config file, nothing inherited
// from the developer's AWS setup.
func (e *env) cliEnv(t *testing.T, dir string, extra ...string) []string {
	t.Helper()
	var env []string
	// What finds the aws CLI's Python, and nothing AWS.
	for _, k := range []string{"PYENV_ROOT", "PYENV_VERSION", "VIRTUAL_ENV", "LANG", "LC_ALL", "TMPDIR"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return append(append(env,
		"PATH="+os.Getenv("PATH"),
		"HOME="+dir,
		"AWS_CONFIG_FILE=/dev/null",
		"AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(dir, "credentials"),
		"AWS_DEFAULT_REGION="+e.Region,
		"AWS_REGION="+e.Region,
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_PAGER=",
	), extra...)
}

type cliResult struct {
	code           int
	stdout, stderr string
}

// run runs a command with env and returns its exit code and output.
func run(t *testing.T, env []string, name string, args ...string) cliResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := cliResult{stdout: out.String(), stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	default:
		t.Fatalf("%s %v: %v", name, args, err)
	}
	return r
}

// writeCredentials writes an AWS credentials file with these profiles.
func writeCredentials(t *testing.T, path string, profiles map[string]harness.Creds) {
	t.Helper()
	var b strings.Builder
	for name, c := range profiles {
		b.WriteString("[" + name + "]\naws_access_key_id = " + c.ID + "\naws_secret_access_key = " + c.Secret + "\n\n")
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
}

func testAWSCLI(t *testing.T, e *env) {
	if _, err := exec.LookPath("aws"); err != nil {
		t.Fatalf("the aws CLI is not installed: %v", err)
	}
	dir := t.TempDir()
	profiles := map[string]harness.Creds{"kaginashi-root": e.Root}
	writeCredentials(t, filepath.Join(dir, "credentials"), profiles)
	// Two ways to point the CLI at kaginashi: flags, and the environment.
	flags := []string{"--endpoint-url", e.URL(), "--ca-bundle", e.CAPath(), "--output", "json"}
	envVars := e.cliEnv(t, dir, "AWS_ENDPOINT_URL="+e.URL(), "AWS_CA_BUNDLE="+e.CAPath())
	aws := func(t *testing.T, profile string, args ...string) cliResult {
		t.Helper()
		env := e.cliEnv(t, dir, "AWS_PROFILE="+profile)
		full := append(append([]string{}, flags...), args...)
		if len(args) > 0 && args[0] == "iam" {
			// IAM through the environment variables instead of the flags.
			env = append(envVars, "AWS_PROFILE="+profile)
			full = append([]string{"--output", "json"}, args...)
		}
		return run(t, env, "aws", full...)
	}
	okJSON := func(t *testing.T, r cliResult, v any) {
		t.Helper()
		if r.code != 0 {
			t.Fatalf("exit %d\nstderr: %s", r.code, r.stderr)
		}
		if v != nil {
			if err := json.Unmarshal([]byte(r.stdout), v); err != nil {
				t.Fatalf("%v\nstdout: %s", err, r.stdout)
			}
		}
	}

	var who struct{ Arn, Account, UserId string }
	okJSON(t, aws(t, "kaginashi-root", "sts", "get-caller-identity"), &who)
	if who.Arn != "arn:aws:iam::"+e.Account+":root" || who.Account != e.Account {
		t.Errorf("aws sts get-caller-identity: %+v", who)
	}
	e.noteCLI("GetCallerIdentity|root|")

	var user struct {
		User struct{ UserName, Arn string }
	}
	okJSON(t, aws(t, "kaginashi-root", "iam", "create-user", "--user-name", "cli-user"), &user)
	if user.User.Arn != "arn:aws:iam::"+e.Account+":user/cli-user" {
		t.Errorf("aws iam create-user: %+v", user)
	}
	e.noteCLI("CreateUser|root|")

	seedFile := filepath.Join(dir, "seed.json")
	if err := os.WriteFile(seedFile, []byte(harness.SeedPolicy(t, e.Region, e.Account)), 0o600); err != nil {
		t.Fatal(err)
	}
	var pol struct {
		Policy struct{ Arn, DefaultVersionId string }
	}
	okJSON(t, aws(t, "kaginashi-root", "iam", "create-policy", "--policy-name", "cli-seed", "--policy-document", "file://"+seedFile), &pol)
	if pol.Policy.Arn != "arn:aws:iam::"+e.Account+":policy/cli-seed" || pol.Policy.DefaultVersionId != "v1" {
		t.Errorf("aws iam create-policy: %+v", pol)
	}
	e.noteCLI("CreatePolicy|root|")
	okJSON(t, aws(t, "kaginashi-root", "iam", "attach-user-policy", "--user-name", "cli-user", "--policy-arn", pol.Policy.Arn), nil)
	e.noteCLI("AttachUserPolicy|root|")

	var key struct {
		AccessKey struct{ AccessKeyId, SecretAccessKey, UserName string }
	}
	okJSON(t, aws(t, "kaginashi-root", "iam", "create-access-key", "--user-name", "cli-user"), &key)
	if key.AccessKey.UserName != "cli-user" || key.AccessKey.SecretAccessKey == "" {
		t.Fatalf("aws iam create-access-key: %+v", key)
	}
	e.keepSecret(key.AccessKey.SecretAccessKey)
	e.noteCLI("CreateAccessKey|root|")
	profiles["cli-user"] = harness.Creds{Who: "cli-user", ID: key.AccessKey.AccessKeyId, Secret: key.AccessKey.SecretAccessKey}
	writeCredentials(t, filepath.Join(dir, "credentials"), profiles)

	// A key made by ssh-keygen, sent with file://, which keeps the
	// file's trailing newline.
	pubFile := filepath.Join(dir, "key.pub")
	if r := run(t, e.cliEnv(t, dir), "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "cli@e2e", "-f", filepath.Join(dir, "key")); r.code != 0 {
		t.Fatalf("ssh-keygen: %d %s", r.code, r.stderr)
	}
	pub, err := os.ReadFile(pubFile)
	if err != nil || !strings.HasSuffix(string(pub), "\n") {
		t.Fatalf("key.pub %q (%v)", pub, err)
	}
	var sent struct {
		RequestId string
		Success   bool
	}
	okJSON(t, aws(t, "cli-user", "ec2-instance-connect", "send-ssh-public-key", "--instance-id", instanceID(1),
		"--instance-os-user", "ec2-user", "--ssh-public-key", "file://"+pubFile), &sent)
	if !sent.Success || !uuidRE.MatchString(sent.RequestId) {
		t.Errorf("aws ec2-instance-connect send-ssh-public-key: %+v", sent)
	}
	e.noteCLI("SendSSHPublicKey|cli-user|")
	if rec, found := e.keyRecord(t, instanceID(1), "ec2-user", sent.RequestId, time.Now()); !found {
		t.Errorf("no key record for the CLI's push %s", sent.RequestId)
	} else if line, _ := canonical(t, string(pub)); rec.PublicKey != line {
		t.Errorf("stored key %q, want %q", rec.PublicKey, line)
	}

	var desc struct {
		Reservations []struct{ Instances []struct{ InstanceId string } }
	}
	okJSON(t, aws(t, "cli-user", "ec2", "describe-instances", "--filters", "Name=tag:env,Values=prod", "Name=instance-state-name,Values=running"), &desc)
	var got []string
	for _, r := range desc.Reservations {
		for _, in := range r.Instances {
			got = append(got, in.InstanceId)
		}
	}
	if !reflect.DeepEqual(got, []string{instanceID(1)}) {
		t.Errorf("aws ec2 describe-instances --filters: %v", got)
	}
	e.noteCLI("DescribeInstances|cli-user|")

	okJSON(t, aws(t, "cli-user", "sts", "get-caller-identity"), &who)
	if who.Arn != "arn:aws:iam::"+e.Account+":user/cli-user" {
		t.Errorf("aws sts get-caller-identity as the user: %+v", who)
	}
	e.noteCLI("GetCallerIdentity|cli-user|")

	// An error: the seed grants no IAM. aws CLI v1 exits 255 on service
	// errors, v2 254.
	r := aws(t, "cli-user", "iam", "list-users")
	if (r.code != 254 && r.code != 255) || !strings.Contains(r.stderr, "(AccessDenied)") || !strings.Contains(r.stderr, "ListUsers") {
		t.Errorf("aws iam list-users as the user: exit %d\nstderr: %s", r.code, r.stderr)
	}
	e.noteCLI("ListUsers|cli-user|AccessDenied")
}
