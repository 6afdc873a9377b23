package e2e

import (
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/iam"

	"github.com/kaginashi/kaginashi/test/e2e/harness"
)

// TestRootIdentity: what IAM answers root about itself, as AWS does,
// through the Go SDK and the aws CLI on each engine. GetUser: UserId is
// the account ID, Arn the root ARN, no UserName nor Path, CreateDate when
// the deployment was created (the endpoint's creation, both kept since
// the first start) rather than 1970. ListAccessKeys of root's own keys
// and root's CreateAccessKey audit event carry no user name rather than
// an empty one; an IAM user's still do.
func TestRootIdentity(t *testing.T) {
	t.Parallel()
	for _, engine := range harness.Engines {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			auditLog := filepath.Join(t.TempDir(), "audit.jsonl")
			s := harness.StartServer(t, engine, "--audit-log", auditLog, "--rate-limit=-1")
			e := &env{Server: s, auditLog: auditLog}
			testRootIdentitySDK(t, e)
			testRootIdentityCLI(t, e)
		})
	}
}

// endpointCreated is the deployment's endpoint's CreatedAt, as EC2 answers.
func endpointCreated(t *testing.T, e *env) time.Time {
	t.Helper()
	out := harness.Must(e.EC2(e.Root).DescribeInstanceConnectEndpoints(context.Background(), &ec2.DescribeInstanceConnectEndpointsInput{}))(t)
	if len(out.InstanceConnectEndpoints) != 1 || out.InstanceConnectEndpoints[0].CreatedAt == nil {
		t.Fatalf("DescribeInstanceConnectEndpoints: %+v", out.InstanceConnectEndpoints)
	}
	return out.InstanceConnectEndpoints[0].CreatedAt.UTC()
}

func testRootIdentitySDK(t *testing.T, e *env) {
	ctx := context.Background()
	root := e.IAM(e.Root)
	created := endpointCreated(t, e)
	if created.Before(e.StartedAt.Add(-5*time.Minute)) || created.After(time.Now().Add(time.Minute)) {
		t.Fatalf("endpoint created %v; the server started at %v", created, e.StartedAt)
	}

	u := harness.Must(root.GetUser(ctx, &iam.GetUserInput{}))(t).User
	if aws.ToString(u.UserId) != e.Account || aws.ToString(u.Arn) != "arn:aws:iam::"+e.Account+":root" {
		t.Errorf("GetUser as root: UserId %q, Arn %q; want %s and its root ARN", aws.ToString(u.UserId), aws.ToString(u.Arn), e.Account)
	}
	if u.UserName != nil || u.Path != nil {
		t.Errorf("GetUser as root: UserName %v, Path %v; want neither", aws.ToString(u.UserName), aws.ToString(u.Path))
	}
	if u.CreateDate == nil || !u.CreateDate.Equal(created) {
		t.Errorf("GetUser as root: CreateDate %v, want the deployment's creation %v", u.CreateDate, created)
	}
	if u.PasswordLastUsed != nil {
		t.Errorf("GetUser as root: PasswordLastUsed %v, which kaginashi does not record", u.PasswordLastUsed)
	}

	// Root's own keys: no UserName. The SDK reads a missing one as nil,
	// an empty one as "".
	keys := harness.Must(root.ListAccessKeys(ctx, &iam.ListAccessKeysInput{}))(t).AccessKeyMetadata
	found := false
	for _, k := range keys {
		if k.UserName != nil {
			t.Errorf("ListAccessKeys as root: key %s has UserName %q", aws.ToString(k.AccessKeyId), aws.ToString(k.UserName))
		}
		found = found || aws.ToString(k.AccessKeyId) == e.Root.ID
	}
	if !found {
		t.Errorf("ListAccessKeys as root: %d keys, none is root's %s", len(keys), e.Root.ID)
	}

	// A user's GetUser and keys keep their names.
	harness.Must(root.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("rid-alice"), Path: aws.String("/ops/")}))(t)
	alice := harness.Must(root.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String("rid-alice")}))(t).AccessKey
	got := harness.Must(root.GetUser(ctx, &iam.GetUserInput{UserName: aws.String("rid-alice")}))(t).User
	if aws.ToString(got.UserName) != "rid-alice" || aws.ToString(got.Path) != "/ops/" {
		t.Errorf("GetUser rid-alice: UserName %q, Path %q", aws.ToString(got.UserName), aws.ToString(got.Path))
	}
	ak := harness.Must(root.ListAccessKeys(ctx, &iam.ListAccessKeysInput{UserName: aws.String("rid-alice")}))(t).AccessKeyMetadata
	if len(ak) != 1 || aws.ToString(ak[0].UserName) != "rid-alice" {
		t.Errorf("ListAccessKeys rid-alice: %+v", ak)
	}

	// Root's CreateAccessKey: the audit event's accessKey has no userName.
	rk := harness.Must(root.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{}))(t).AccessKey
	harness.Must(root.DeleteAccessKey(ctx, &iam.DeleteAccessKeyInput{AccessKeyId: rk.AccessKeyId}))(t)
	seen := map[string]bool{}
	for _, ev := range harness.AuditEvents(t, e.auditLog, "CreateAccessKey") {
		resp, _ := ev["responseElements"].(map[string]any)
		k, _ := resp["accessKey"].(map[string]any)
		id, _ := k["accessKeyId"].(string)
		name, has := k["userName"]
		switch id {
		case aws.ToString(rk.AccessKeyId):
			seen["root"] = true
			if has {
				t.Errorf("root's CreateAccessKey audit event: accessKey.userName %q, want none", name)
			}
		case aws.ToString(alice.AccessKeyId):
			seen["alice"] = true
			if name != "rid-alice" {
				t.Errorf("rid-alice's CreateAccessKey audit event: accessKey.userName %v", name)
			}
		}
	}
	if !seen["root"] || !seen["alice"] {
		t.Errorf("CreateAccessKey audit events found: %v, want root's and rid-alice's", seen)
	}
}

// testRootIdentityCLI: the same through aws iam get-user and
// list-access-keys, whose JSON shows a member sent empty as "".
func testRootIdentityCLI(t *testing.T, e *env) {
	if _, err := exec.LookPath("aws"); err != nil {
		t.Fatalf("the aws CLI is not installed: %v", err)
	}
	dir := t.TempDir()
	writeCredentials(t, filepath.Join(dir, "credentials"), map[string]harness.Creds{"kaginashi-root": e.Root})
	awsCLI := func(t *testing.T, args ...string) map[string]any {
		t.Helper()
		env := e.cliEnv(t, dir, "AWS_PROFILE=kaginashi-root")
		r := run(t, env, "aws", append([]string{"--endpoint-url", e.URL(), "--ca-bundle", e.CAPath(), "--output", "json"}, args...)...)
		if r.code != 0 {
			t.Fatalf("aws %s: exit %d\nstderr: %s", strings.Join(args, " "), r.code, r.stderr)
		}
		var v map[string]any
		if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
			t.Fatalf("aws %s: %v\nstdout: %s", strings.Join(args, " "), err, r.stdout)
		}
		return v
	}
	created := endpointCreated(t, e)

	u, _ := awsCLI(t, "iam", "get-user")["User"].(map[string]any)
	if u["UserId"] != e.Account || u["Arn"] != "arn:aws:iam::"+e.Account+":root" {
		t.Errorf("aws iam get-user as root: %v", u)
	}
	for _, k := range []string{"UserName", "Path", "PasswordLastUsed"} {
		if v, ok := u[k]; ok {
			t.Errorf("aws iam get-user as root: %s %v, want none", k, v)
		}
	}
	cd, _ := u["CreateDate"].(string)
	if when, err := time.Parse(time.RFC3339, cd); err != nil || !when.Equal(created) {
		t.Errorf("aws iam get-user as root: CreateDate %q, want %v", cd, created)
	}

	keys, _ := awsCLI(t, "iam", "list-access-keys")["AccessKeyMetadata"].([]any)
	if len(keys) == 0 {
		t.Fatalf("aws iam list-access-keys as root: no keys")
	}
	for _, k := range keys {
		m, _ := k.(map[string]any)
		if v, ok := m["UserName"]; ok {
			t.Errorf("aws iam list-access-keys as root: UserName %v in %v", v, m)
		}
	}
}
