package e2e

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"

	"github.com/kaginashi/kaginashi/test/e2e/harness"
)

// testValidationErrors: what breaks the IAM model (enums, lengths,
// ranges, patterns) is a ValidationError with AWS's sentence, decided
// before authorization; what only IAM's rules forbid stays InvalidInput.
// (The SDK for Go v2 checks only required members itself, so all of this
// reaches the server.)
func testValidationErrors(t *testing.T, e *env) {
	ctx := context.Background()
	root := e.IAM(e.Root)
	nobody := e.IAM(e.newUser(t, "ve-nobody")) // no policy at all
	want := func(what string, err error, msg string) {
		t.Helper()
		ae := harness.WantCode(t, err, "ValidationError", 400)
		if msg != "" && ae.ErrorMessage() != msg {
			t.Errorf("%s:\n got %q\nwant %q", what, ae.ErrorMessage(), msg)
		}
	}
	_, err := root.ListPolicies(ctx, &iam.ListPoliciesInput{Scope: "Bogus"})
	want("ListPolicies Scope", err, "1 validation error detected: Value 'Bogus' at 'scope' failed to satisfy constraint: Member must satisfy enum value set: [All, AWS, Local]")
	// Validation comes before authorization, as AWS: a caller with no
	// permission learns that the request is malformed, nothing else.
	_, err = nobody.ListPolicies(ctx, &iam.ListPoliciesInput{Scope: "Bogus"})
	want("ListPolicies Scope without permission", err, "")
	_, err = nobody.ListPolicies(ctx, &iam.ListPoliciesInput{Scope: iamtypes.PolicyScopeTypeLocal})
	harness.WantCode(t, err, "AccessDenied", 403)

	_, err = root.ListUsers(ctx, &iam.ListUsersInput{MaxItems: aws.Int32(0)})
	want("ListUsers MaxItems 0", err, "1 validation error detected: Value '0' at 'maxItems' failed to satisfy constraint: Member must have value greater than or equal to 1")
	_, err = root.ListUsers(ctx, &iam.ListUsersInput{MaxItems: aws.Int32(1001)})
	want("ListUsers MaxItems 1001", err, "1 validation error detected: Value '1001' at 'maxItems' failed to satisfy constraint: Member must have value less than or equal to 1000")
	long := strings.Repeat("n", 65)
	_, err = root.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String(long)})
	want("CreateUser long name", err, "1 validation error detected: Value '"+long+"' at 'userName' failed to satisfy constraint: Member must have length less than or equal to 64")
	_, err = root.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("bad name!")})
	want("CreateUser bad name", err, "The specified value for userName is invalid. It must contain only alphanumeric characters and/or the following: +=,.@_-")
	_, err = root.CreateGroup(ctx, &iam.CreateGroupInput{GroupName: aws.String("ve-g"), Path: aws.String("ops")})
	want("CreateGroup bad path", err, "The specified value for path is invalid. It must begin and end with / and contain only alphanumeric characters and/or / characters.")
	_, err = root.GetPolicy(ctx, &iam.GetPolicyInput{PolicyArn: aws.String("arn:short")})
	want("GetPolicy short ARN", err, "1 validation error detected: Value 'arn:short' at 'policyArn' failed to satisfy constraint: Member must have length greater than or equal to 20")
	_, err = root.ListEntitiesForPolicy(ctx, &iam.ListEntitiesForPolicyInput{PolicyArn: aws.String(awsEIC), EntityFilter: "Users", PolicyUsageFilter: "Both"})
	want("ListEntitiesForPolicy two filters", err, "2 validation errors detected: "+
		"Value 'Users' at 'entityFilter' failed to satisfy constraint: Member must satisfy enum value set: [User, Role, Group, LocalManagedPolicy, AWSManagedPolicy]; "+
		"Value 'Both' at 'policyUsageFilter' failed to satisfy constraint: Member must satisfy enum value set: [PermissionsPolicy, PermissionsBoundary]")
	_, err = root.UpdateAccessKey(ctx, &iam.UpdateAccessKeyInput{AccessKeyId: aws.String("AKIAIOSFODNN7EXAMPLE"), Status: "On"})
	want("UpdateAccessKey Status", err, "1 validation error detected: Value 'On' at 'status' failed to satisfy constraint: Member must satisfy enum value set: [Active, Inactive, Expired]")
	harness.Must(root.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("ve-user")}))(t)
	_, err = root.TagUser(ctx, &iam.TagUserInput{UserName: aws.String("ve-user"), Tags: iamTags("bad!", "x")})
	want("TagUser key pattern", err, `1 validation error detected: Value 'bad!' at 'tags.1.member.key' failed to satisfy constraint: Member must satisfy regular expression pattern: [\p{L}\p{Z}\p{N}_.:/=+\-@]+`)
	var many []string
	for i := range 51 {
		many = append(many, "k"+strings.Repeat("x", i), "v")
	}
	_, err = root.TagUser(ctx, &iam.TagUserInput{UserName: aws.String("ve-user"), Tags: iamTags(many...)})
	want("TagUser 51 tags", err, "1 validation error detected: Value at 'tags' failed to satisfy constraint: Member must have length less than or equal to 50")
	_, err = root.CreateLoginProfile(ctx, &iam.CreateLoginProfileInput{UserName: aws.String("ve-user"), Password: aws.String("pässwörd☃-secret")})
	ae := harness.WantCode(t, err, "ValidationError", 400)
	if strings.Contains(ae.ErrorMessage(), "secret") {
		t.Errorf("a password is echoed: %s", ae.ErrorMessage())
	}

	// A document with no findings but a character beyond Latin-1: the
	// model's pattern (one with findings is MalformedPolicyDocument first,
	// which names them; see the raw seed in iam_test.go).
	snowman := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iam:GetUser","Resource":"*","Condition":{"StringEquals":{"aws:username":"☃"}}}]}`
	_, err = root.CreatePolicy(ctx, &iam.CreatePolicyInput{PolicyName: aws.String("ve-snowman"), PolicyDocument: aws.String(snowman)})
	want("CreatePolicy non-Latin-1 document", err, "")

	// IAM's own rules, beyond the model: InvalidInput.
	_, err = root.GetPolicy(ctx, &iam.GetPolicyInput{PolicyArn: aws.String("arn:aws:iam::" + e.Account + ":user/ve-user")})
	harness.WantTyped[*iamtypes.InvalidInputException](t, err, 400)
	_, err = root.TagUser(ctx, &iam.TagUserInput{UserName: aws.String("ve-user"), Tags: iamTags("team", "a", "TEAM", "b")})
	harness.WantTyped[*iamtypes.InvalidInputException](t, err, 400)
	_, err = root.ListUsers(ctx, &iam.ListUsersInput{Marker: aws.String("not-a-marker")})
	harness.WantTyped[*iamtypes.InvalidInputException](t, err, 400)
}

// testValidationErrorsCLI: the aws CLI's error line names the code. (It
// checks required members and minimum lengths itself, but no enums,
// patterns or maximums.)
func testValidationErrorsCLI(t *testing.T, e *env) {
	if _, err := exec.LookPath("aws"); err != nil {
		t.Fatalf("the aws CLI is not installed: %v", err)
	}
	dir := t.TempDir()
	writeCredentials(t, filepath.Join(dir, "credentials"), map[string]harness.Creds{"kaginashi-root": e.Root})
	fails := func(wantLine string, args ...string) {
		t.Helper()
		env := e.cliEnv(t, dir, "AWS_PROFILE=kaginashi-root")
		r := run(t, env, "aws", append([]string{"--endpoint-url", e.URL(), "--ca-bundle", e.CAPath(), "--output", "json"}, args...)...)
		if r.code == 0 {
			t.Fatalf("aws %s: succeeded\nstdout: %s", strings.Join(args, " "), r.stdout)
		}
		if !strings.Contains(r.stderr, wantLine) {
			t.Errorf("aws %s: exit %d\nstderr: %s\nwant: %s", strings.Join(args, " "), r.code, r.stderr, wantLine)
		}
	}
	fails("An error occurred (ValidationError) when calling the ListPolicies operation: 1 validation error detected: Value 'Bogus' at 'scope' failed to satisfy constraint: Member must satisfy enum value set: [All, AWS, Local]",
		"iam", "list-policies", "--scope", "Bogus")
	fails("An error occurred (ValidationError) when calling the CreateUser operation: The specified value for userName is invalid. It must contain only alphanumeric characters and/or the following: +=,.@_-",
		"iam", "create-user", "--user-name", "bad name!")
	fails("An error occurred (ValidationError) when calling the ListUsers operation: 1 validation error detected: Value '5000' at 'maxItems' failed to satisfy constraint: Member must have value less than or equal to 1000",
		"iam", "list-users", "--page-size", "5000")
	fails("An error occurred (ValidationError) when calling the ListEntitiesForPolicy operation: 1 validation error detected: Value 'Users' at 'entityFilter'",
		"iam", "list-entities-for-policy", "--policy-arn", awsEIC, "--entity-filter", "Users")
	fails("An error occurred (InvalidInput) when calling the GetPolicy operation:",
		"iam", "get-policy", "--policy-arn", "arn:aws:iam::"+e.Account+":user/someone")
}
