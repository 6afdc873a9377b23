package e2e

import (
	"context"
	"encoding/json"
	"net/url"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"

	"github.com/kaginashi/kaginashi/test/e2e/harness"
)

// TestIAMGaps runs, on a server per engine, what users of AWS policies
// rely on beyond the basics: permissions boundaries set after creation and
// taken into account by the simulator, AWS-managed policies, and
// attribute-based control over IAM users — through the SDK and the aws CLI.
func TestIAMGaps(t *testing.T) {
	t.Parallel()
	for _, engine := range harness.Engines {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, engine)
			t.Run("Boundaries", func(t *testing.T) { testGapBoundaries(t, e) })
			t.Run("SimulateBoundary", func(t *testing.T) { testGapSimulateBoundary(t, e) })
			t.Run("AWSManaged", func(t *testing.T) { testGapAWSManaged(t, e) })
			t.Run("ABAC", func(t *testing.T) { testGapABAC(t, e) })
			t.Run("CLI", func(t *testing.T) { testGapCLI(t, e) })
		})
	}
}

const (
	awsEIC   = "arn:aws:iam::aws:policy/EC2InstanceConnect"
	adminDoc = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}`
)

func testGapBoundaries(t *testing.T, e *env) {
	ctx := context.Background()
	root := e.IAM(e.Root)
	creds := e.newUser(t, "gb-alice", adminDoc)
	alice := e.IAM(creds)

	harness.Must(root.PutUserPermissionsBoundary(ctx, &iam.PutUserPermissionsBoundaryInput{
		UserName: aws.String("gb-alice"), PermissionsBoundary: aws.String(awsEIC)}))(t)
	u := harness.Must(root.GetUser(ctx, &iam.GetUserInput{UserName: aws.String("gb-alice")}))(t).User
	if u.PermissionsBoundary == nil || aws.ToString(u.PermissionsBoundary.PermissionsBoundaryArn) != awsEIC ||
		u.PermissionsBoundary.PermissionsBoundaryType != iamtypes.PermissionsBoundaryAttachmentTypePolicy {
		t.Fatalf("GetUser after PutUserPermissionsBoundary: %q %s", aws.ToString(u.PermissionsBoundary.PermissionsBoundaryArn), u.PermissionsBoundary.PermissionsBoundaryType)
	}
	// The inline policy allows everything; the boundary only EIC.
	_, err := alice.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("gb-never")})
	ae := harness.WantCode(t, err, "AccessDenied", 403)
	if !strings.Contains(ae.ErrorMessage(), "permissions boundary") || !strings.Contains(ae.ErrorMessage(), awsEIC) {
		t.Errorf("denial does not name the boundary: %s", ae.ErrorMessage())
	}
	wantPushed(sendKey(e.EIC(creds), instanceID(1), "admin", harness.Ed25519Key(t)))(t)

	// A user may not lift its own boundary: the boundary does not allow it.
	_, err = alice.DeleteUserPermissionsBoundary(ctx, &iam.DeleteUserPermissionsBoundaryInput{UserName: aws.String("gb-alice")})
	harness.WantCode(t, err, "AccessDenied", 403)

	harness.Must(root.DeleteUserPermissionsBoundary(ctx, &iam.DeleteUserPermissionsBoundaryInput{UserName: aws.String("gb-alice")}))(t)
	u = harness.Must(root.GetUser(ctx, &iam.GetUserInput{UserName: aws.String("gb-alice")}))(t).User
	if u.PermissionsBoundary != nil {
		t.Fatalf("boundary after DeleteUserPermissionsBoundary: %+v", u.PermissionsBoundary)
	}
	harness.Must(alice.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("gb-now")}))(t)
	harness.Must(root.DeleteUser(ctx, &iam.DeleteUserInput{UserName: aws.String("gb-now")}))(t)

	// A policy in use as a boundary cannot be deleted.
	bp := harness.Must(root.CreatePolicy(ctx, &iam.CreatePolicyInput{PolicyName: aws.String("gb-bound"), PolicyDocument: aws.String(adminDoc)}))(t).Policy
	harness.Must(root.PutUserPermissionsBoundary(ctx, &iam.PutUserPermissionsBoundaryInput{UserName: aws.String("gb-alice"), PermissionsBoundary: bp.Arn}))(t)
	_, err = root.DeletePolicy(ctx, &iam.DeletePolicyInput{PolicyArn: bp.Arn})
	harness.WantTyped[*iamtypes.DeleteConflictException](t, err, 409)
	harness.Must(root.DeleteUserPermissionsBoundary(ctx, &iam.DeleteUserPermissionsBoundaryInput{UserName: aws.String("gb-alice")}))(t)
	harness.Must(root.DeletePolicy(ctx, &iam.DeletePolicyInput{PolicyArn: bp.Arn}))(t)

	// Error shapes.
	put := func(user, arn string) error {
		_, err := root.PutUserPermissionsBoundary(ctx, &iam.PutUserPermissionsBoundaryInput{UserName: aws.String(user), PermissionsBoundary: aws.String(arn)})
		return err
	}
	harness.WantTyped[*iamtypes.NoSuchEntityException](t, put("gb-nobody", awsEIC), 404)
	harness.WantTyped[*iamtypes.InvalidInputException](t, put("gb-alice", "arn:aws:iam::"+e.Account+":user/gb-alice"), 400)
	harness.WantTyped[*iamtypes.NoSuchEntityException](t, put("gb-alice", "arn:aws:iam::"+e.Account+":policy/gb-missing"), 404)
	harness.WantTyped[*iamtypes.NoSuchEntityException](t, put("gb-alice", "arn:aws:iam::aws:policy/ReadOnlyAccess"), 404)
	_, err = root.DeleteUserPermissionsBoundary(ctx, &iam.DeleteUserPermissionsBoundaryInput{UserName: aws.String("gb-nobody")})
	harness.WantTyped[*iamtypes.NoSuchEntityException](t, err, 404)
}

func testGapSimulateBoundary(t *testing.T, e *env) {
	ctx := context.Background()
	root := e.IAM(e.Root)
	e.newUser(t, "gs-bob", adminDoc)
	harness.Must(root.PutUserPermissionsBoundary(ctx, &iam.PutUserPermissionsBoundaryInput{
		UserName: aws.String("gs-bob"), PermissionsBoundary: aws.String(awsEIC)}))(t)
	source := "arn:aws:iam::" + e.Account + ":user/gs-bob"
	out := harness.Must(root.SimulatePrincipalPolicy(ctx, &iam.SimulatePrincipalPolicyInput{
		PolicySourceArn: aws.String(source),
		ActionNames:     []string{"iam:CreateUser", "ec2-instance-connect:SendSSHPublicKey"},
		ResourceArns:    []string{e.instanceARN(instanceID(1))},
	}))(t)
	if len(out.EvaluationResults) != 2 {
		t.Fatalf("%d results", len(out.EvaluationResults))
	}
	for _, r := range out.EvaluationResults {
		want := aws.ToString(r.EvalActionName) != "iam:CreateUser"
		pb := r.PermissionsBoundaryDecisionDetail
		if pb == nil || pb.AllowedByPermissionsBoundary != want {
			t.Errorf("%s: PermissionsBoundaryDecisionDetail %+v, want allowed=%v", aws.ToString(r.EvalActionName), pb, want)
		}
		wantDecision := iamtypes.PolicyEvaluationDecisionTypeImplicitDeny
		if want {
			wantDecision = iamtypes.PolicyEvaluationDecisionTypeAllowed
		}
		if r.EvalDecision != wantDecision {
			t.Errorf("%s: %s, want %s", aws.ToString(r.EvalActionName), r.EvalDecision, wantDecision)
		}
		if want && !slices.ContainsFunc(r.MatchedStatements, func(s iamtypes.Statement) bool {
			return aws.ToString(s.SourcePolicyId) == awsEIC && s.SourcePolicyType == iamtypes.PolicySourceTypeAwsManaged
		}) {
			t.Errorf("%s: matched statements %+v lack the boundary's", aws.ToString(r.EvalActionName), r.MatchedStatements)
		}
	}
	// A boundary given in the call replaces the user's.
	out = harness.Must(root.SimulatePrincipalPolicy(ctx, &iam.SimulatePrincipalPolicyInput{
		PolicySourceArn:                    aws.String(source),
		ActionNames:                        []string{"iam:CreateUser"},
		PermissionsBoundaryPolicyInputList: []string{`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iam:*","Resource":"*"}]}`},
	}))(t)
	if r := out.EvaluationResults[0]; r.EvalDecision != iamtypes.PolicyEvaluationDecisionTypeAllowed || !r.PermissionsBoundaryDecisionDetail.AllowedByPermissionsBoundary {
		t.Errorf("with PermissionsBoundaryPolicyInputList: %+v", r)
	}
	// SimulateCustomPolicy: an explicit deny in the boundary is final.
	cust := harness.Must(root.SimulateCustomPolicy(ctx, &iam.SimulateCustomPolicyInput{
		PolicyInputList:                    []string{adminDoc},
		PermissionsBoundaryPolicyInputList: []string{`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"},{"Effect":"Deny","Action":"iam:*","Resource":"*"}]}`},
		ActionNames:                        []string{"iam:CreateUser", "ec2:DescribeInstances"},
	}))(t)
	if r := cust.EvaluationResults[0]; r.EvalDecision != iamtypes.PolicyEvaluationDecisionTypeExplicitDeny || r.PermissionsBoundaryDecisionDetail.AllowedByPermissionsBoundary {
		t.Errorf("custom, boundary deny: %+v", r)
	}
	if r := cust.EvaluationResults[1]; r.EvalDecision != iamtypes.PolicyEvaluationDecisionTypeAllowed {
		t.Errorf("custom, boundary allow: %+v", r)
	}
	// Without a boundary there is no boundary detail.
	cust = harness.Must(root.SimulateCustomPolicy(ctx, &iam.SimulateCustomPolicyInput{PolicyInputList: []string{adminDoc}, ActionNames: []string{"iam:CreateUser"}}))(t)
	if cust.EvaluationResults[0].PermissionsBoundaryDecisionDetail != nil {
		t.Errorf("boundary detail without a boundary: %+v", cust.EvaluationResults[0].PermissionsBoundaryDecisionDetail)
	}
	_, err := root.SimulateCustomPolicy(ctx, &iam.SimulateCustomPolicyInput{
		PolicyInputList: []string{adminDoc}, ActionNames: []string{"iam:CreateUser"},
		PermissionsBoundaryPolicyInputList: []string{adminDoc, adminDoc},
	})
	harness.WantTyped[*iamtypes.InvalidInputException](t, err, 400)
}

func testGapAWSManaged(t *testing.T, e *env) {
	ctx := context.Background()
	root := e.IAM(e.Root)
	const admin = "arn:aws:iam::aws:policy/AdministratorAccess"
	arns := func(scope iamtypes.PolicyScopeType) []string {
		t.Helper()
		var out []string
		for p := iam.NewListPoliciesPaginator(root, &iam.ListPoliciesInput{Scope: scope}); p.HasMorePages(); {
			for _, pol := range harness.Must(p.NextPage(ctx))(t).Policies {
				out = append(out, aws.ToString(pol.Arn))
			}
		}
		return out
	}
	shipped := []string{admin, "arn:aws:iam::aws:policy/AmazonEC2ReadOnlyAccess", awsEIC,
		"arn:aws:iam::aws:policy/IAMFullAccess", "arn:aws:iam::aws:policy/IAMReadOnlyAccess", "arn:aws:iam::aws:policy/PowerUserAccess"}
	if got := arns(iamtypes.PolicyScopeTypeAws); !slices.Equal(got, shipped) {
		t.Errorf("ListPolicies Scope=AWS: %v, want %v", got, shipped)
	}
	for _, a := range arns(iamtypes.PolicyScopeTypeLocal) {
		if strings.HasPrefix(a, "arn:aws:iam::aws:") {
			t.Errorf("ListPolicies Scope=Local lists %s", a)
		}
	}
	if all := arns(iamtypes.PolicyScopeTypeAll); !slices.Contains(all, admin) {
		t.Errorf("ListPolicies Scope=All lacks %s", admin)
	}

	p := harness.Must(root.GetPolicy(ctx, &iam.GetPolicyInput{PolicyArn: aws.String(awsEIC)}))(t).Policy
	if aws.ToString(p.PolicyName) != "EC2InstanceConnect" || !p.IsAttachable || aws.ToString(p.DefaultVersionId) != "v1" || aws.ToString(p.Path) != "/" {
		t.Errorf("GetPolicy: %+v", p)
	}
	v := harness.Must(root.GetPolicyVersion(ctx, &iam.GetPolicyVersionInput{PolicyArn: aws.String(awsEIC), VersionId: aws.String("v1")}))(t).PolicyVersion
	docText, err := url.QueryUnescape(aws.ToString(v.Document))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Statement []struct {
			Sid    string
			Action []string
		}
	}
	if err := json.Unmarshal([]byte(docText), &doc); err != nil || len(doc.Statement) != 1 ||
		!slices.Contains(doc.Statement[0].Action, "ec2-instance-connect:SendSSHPublicKey") {
		t.Errorf("GetPolicyVersion document %s (%v)", docText, err)
	}

	// Read-only.
	_, err = root.DeletePolicy(ctx, &iam.DeletePolicyInput{PolicyArn: aws.String(admin)})
	harness.WantCode(t, err, "AccessDenied", 403)
	_, err = root.CreatePolicyVersion(ctx, &iam.CreatePolicyVersionInput{PolicyArn: aws.String(admin), PolicyDocument: aws.String(adminDoc), SetAsDefault: true})
	harness.WantCode(t, err, "AccessDenied", 403)
	_, err = root.GetPolicy(ctx, &iam.GetPolicyInput{PolicyArn: aws.String("arn:aws:iam::aws:policy/ReadOnlyAccess")})
	harness.WantTyped[*iamtypes.NoSuchEntityException](t, err, 404)

	// Attachable, and it decides: EC2InstanceConnect lets a user push keys,
	// AmazonEC2ReadOnlyAccess lets it describe instances.
	creds := e.newUser(t, "gm-carol")
	_, err = sendKey(e.EIC(creds), instanceID(1), "admin", harness.Ed25519Key(t))
	if err == nil {
		t.Fatal("pushed a key without any policy")
	}
	harness.Must(root.AttachUserPolicy(ctx, &iam.AttachUserPolicyInput{UserName: aws.String("gm-carol"), PolicyArn: aws.String(awsEIC)}))(t)
	harness.Must(root.AttachUserPolicy(ctx, &iam.AttachUserPolicyInput{UserName: aws.String("gm-carol"), PolicyArn: aws.String("arn:aws:iam::aws:policy/AmazonEC2ReadOnlyAccess")}))(t)
	wantPushed(sendKey(e.EIC(creds), instanceID(1), "admin", harness.Ed25519Key(t)))(t)
	harness.Must(e.EC2(creds).DescribeInstances(ctx, &ec2.DescribeInstancesInput{}))(t)
	att := harness.Must(root.ListAttachedUserPolicies(ctx, &iam.ListAttachedUserPoliciesInput{UserName: aws.String("gm-carol")}))(t)
	if len(att.AttachedPolicies) != 2 {
		t.Errorf("ListAttachedUserPolicies: %+v", att.AttachedPolicies)
	}
	if p := harness.Must(root.GetPolicy(ctx, &iam.GetPolicyInput{PolicyArn: aws.String(awsEIC)}))(t).Policy; aws.ToInt32(p.AttachmentCount) < 1 {
		t.Errorf("AttachmentCount %d", aws.ToInt32(p.AttachmentCount))
	}
	sim := harness.Must(root.SimulatePrincipalPolicy(ctx, &iam.SimulatePrincipalPolicyInput{
		PolicySourceArn: aws.String("arn:aws:iam::" + e.Account + ":user/gm-carol"), ActionNames: []string{"ec2:DescribeInstances"},
	}))(t)
	if r := sim.EvaluationResults[0]; r.EvalDecision != iamtypes.PolicyEvaluationDecisionTypeAllowed || len(r.MatchedStatements) == 0 ||
		r.MatchedStatements[0].SourcePolicyType != iamtypes.PolicySourceTypeAwsManaged {
		t.Errorf("simulated with AWS-managed policies: %+v", r)
	}
	harness.Must(root.DetachUserPolicy(ctx, &iam.DetachUserPolicyInput{UserName: aws.String("gm-carol"), PolicyArn: aws.String(awsEIC)}))(t)
	_, err = sendKey(e.EIC(creds), instanceID(1), "admin", harness.Ed25519Key(t))
	harness.WantCode(t, err, "AuthException", 0)

	// An account policy may bear an AWS-managed policy's name.
	local := harness.Must(root.CreatePolicy(ctx, &iam.CreatePolicyInput{PolicyName: aws.String("AdministratorAccess"),
		PolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}`)}))(t)
	if aws.ToString(local.Policy.Arn) != "arn:aws:iam::"+e.Account+":policy/AdministratorAccess" {
		t.Errorf("local AdministratorAccess: %s", aws.ToString(local.Policy.Arn))
	}
	harness.Must(root.DeletePolicy(ctx, &iam.DeletePolicyInput{PolicyArn: local.Policy.Arn}))(t)
}

// testGapABAC: an IAM administrator limited to the users of its own team,
// by tags, as AWS's attribute-based access control examples do.
func testGapABAC(t *testing.T, e *env) {
	ctx := context.Background()
	root := e.IAM(e.Root)
	teamAdmin := `{"Version":"2012-10-17","Statement":[
		{"Effect":"Allow","Action":["iam:CreateAccessKey","iam:ListAccessKeys","iam:DeleteAccessKey"],"Resource":"arn:aws:iam::*:user/*",
		 "Condition":{"StringEquals":{"iam:ResourceTag/team":"${aws:PrincipalTag/team}"}}},
		{"Effect":"Allow","Action":"iam:GetUser","Resource":"*","Condition":{"StringEquals":{"aws:ResourceTag/team":"red"}}}]}`
	creds := e.newUser(t, "ga-lead", teamAdmin)
	harness.Must(root.TagUser(ctx, &iam.TagUserInput{UserName: aws.String("ga-lead"), Tags: []iamtypes.Tag{{Key: aws.String("team"), Value: aws.String("red")}}}))(t)
	for user, team := range map[string]string{"ga-red": "red", "ga-blue": "blue"} {
		harness.Must(root.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String(user), Tags: []iamtypes.Tag{{Key: aws.String("team"), Value: aws.String(team)}}}))(t)
	}
	lead := e.IAM(creds)
	k := harness.Must(lead.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String("ga-red")}))(t).AccessKey
	e.keepSecret(aws.ToString(k.SecretAccessKey))
	harness.Must(lead.GetUser(ctx, &iam.GetUserInput{UserName: aws.String("ga-red")}))(t)
	_, err := lead.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String("ga-blue")})
	harness.WantCode(t, err, "AccessDenied", 403)
	_, err = lead.GetUser(ctx, &iam.GetUserInput{UserName: aws.String("ga-blue")})
	harness.WantCode(t, err, "AccessDenied", 403)
	// Retagging moves the user out of the lead's reach at once.
	harness.Must(root.TagUser(ctx, &iam.TagUserInput{UserName: aws.String("ga-red"), Tags: []iamtypes.Tag{{Key: aws.String("team"), Value: aws.String("blue")}}}))(t)
	_, err = lead.ListAccessKeys(ctx, &iam.ListAccessKeysInput{UserName: aws.String("ga-red")})
	harness.WantCode(t, err, "AccessDenied", 403)
	harness.Must(root.DeleteAccessKey(ctx, &iam.DeleteAccessKeyInput{UserName: aws.String("ga-red"), AccessKeyId: k.AccessKeyId}))(t)
}

// testGapCLI: the same through the preinstalled aws CLI v1.
func testGapCLI(t *testing.T, e *env) {
	if _, err := exec.LookPath("aws"); err != nil {
		t.Fatalf("the aws CLI is not installed: %v", err)
	}
	dir := t.TempDir()
	writeCredentials(t, filepath.Join(dir, "credentials"), map[string]harness.Creds{"kaginashi-root": e.Root})
	awsCLI := func(t *testing.T, v any, args ...string) {
		t.Helper()
		env := e.cliEnv(t, dir, "AWS_PROFILE=kaginashi-root")
		r := run(t, env, "aws", append([]string{"--endpoint-url", e.URL(), "--ca-bundle", e.CAPath(), "--output", "json"}, args...)...)
		if r.code != 0 {
			t.Fatalf("aws %s: exit %d\nstderr: %s", strings.Join(args, " "), r.code, r.stderr)
		}
		if v != nil {
			if err := json.Unmarshal([]byte(r.stdout), v); err != nil {
				t.Fatalf("aws %s: %v\nstdout: %s", strings.Join(args, " "), err, r.stdout)
			}
		}
	}
	awsCLI(t, nil, "iam", "create-user", "--user-name", "gc-dave")
	awsCLI(t, nil, "iam", "put-user-permissions-boundary", "--user-name", "gc-dave", "--permissions-boundary", awsEIC)
	var got struct {
		User struct {
			PermissionsBoundary struct{ PermissionsBoundaryType, PermissionsBoundaryArn string }
		}
	}
	awsCLI(t, &got, "iam", "get-user", "--user-name", "gc-dave")
	if got.User.PermissionsBoundary.PermissionsBoundaryType != "PermissionsBoundaryPolicy" || got.User.PermissionsBoundary.PermissionsBoundaryArn != awsEIC {
		t.Errorf("aws iam get-user: %+v", got.User)
	}
	var list struct {
		Policies []struct{ PolicyName, Arn string }
	}
	awsCLI(t, &list, "iam", "list-policies", "--scope", "AWS")
	if len(list.Policies) != 6 {
		t.Errorf("aws iam list-policies --scope AWS: %+v", list.Policies)
	}
	awsCLI(t, nil, "iam", "attach-user-policy", "--user-name", "gc-dave", "--policy-arn", "arn:aws:iam::aws:policy/AdministratorAccess")
	var sim struct {
		EvaluationResults []struct {
			EvalDecision                      string
			PermissionsBoundaryDecisionDetail *struct{ AllowedByPermissionsBoundary bool }
		}
	}
	awsCLI(t, &sim, "iam", "simulate-principal-policy", "--policy-source-arn", "arn:aws:iam::"+e.Account+":user/gc-dave", "--action-names", "iam:CreateUser")
	if len(sim.EvaluationResults) != 1 || sim.EvaluationResults[0].EvalDecision != "implicitDeny" ||
		sim.EvaluationResults[0].PermissionsBoundaryDecisionDetail == nil || sim.EvaluationResults[0].PermissionsBoundaryDecisionDetail.AllowedByPermissionsBoundary {
		t.Errorf("aws iam simulate-principal-policy: %+v", sim.EvaluationResults)
	}
	awsCLI(t, nil, "iam", "delete-user-permissions-boundary", "--user-name", "gc-dave")
	got.User.PermissionsBoundary.PermissionsBoundaryArn = "" // Unmarshal leaves absent fields alone
	awsCLI(t, &got, "iam", "get-user", "--user-name", "gc-dave")
	if got.User.PermissionsBoundary.PermissionsBoundaryArn != "" {
		t.Errorf("aws iam get-user after delete-user-permissions-boundary: %+v", got.User)
	}
}
