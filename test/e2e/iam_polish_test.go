package e2e

import (
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"

	"github.com/kaginashi/kaginashi/test/e2e/harness"
)

// TestIAMPolish runs, on a server per engine, what an administrator does
// before deleting a policy (how many use it, and who: GetPolicy's counts,
// ListEntitiesForPolicy, through the SDK and the aws CLI) and
// attribute-based control over users' MFA devices.
func TestIAMPolish(t *testing.T) {
	t.Parallel()
	for _, engine := range harness.Engines {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, engine)
			t.Run("PolicyUsage", func(t *testing.T) { testPolishPolicyUsage(t, e) })
			t.Run("PolicyUsageCLI", func(t *testing.T) { testPolishPolicyUsageCLI(t, e) })
			t.Run("MFAABAC", func(t *testing.T) { testPolishMFAABAC(t, e) })
		})
	}
}

// entityNames are a ListEntitiesForPolicy answer's user and group names.
func entityNames(out *iam.ListEntitiesForPolicyOutput) (users, groups []string) {
	users, groups = []string{}, []string{}
	for _, u := range out.PolicyUsers {
		users = append(users, aws.ToString(u.UserName))
	}
	for _, g := range out.PolicyGroups {
		groups = append(groups, aws.ToString(g.GroupName))
	}
	return users, groups
}

func testPolishPolicyUsage(t *testing.T, e *env) {
	ctx := context.Background()
	root := e.IAM(e.Root)
	p := harness.Must(root.CreatePolicy(ctx, &iam.CreatePolicyInput{PolicyName: aws.String("pu-p"), PolicyDocument: aws.String(adminDoc)}))(t).Policy
	if aws.ToInt32(p.PermissionsBoundaryUsageCount) != 0 {
		t.Errorf("a new policy's PermissionsBoundaryUsageCount: %d", aws.ToInt32(p.PermissionsBoundaryUsageCount))
	}
	// Names out of order of creation, one user in another path.
	harness.Must(root.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("pu-b"), PermissionsBoundary: p.Arn}))(t)
	harness.Must(root.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("pu-a"), Path: aws.String("/eng/")}))(t)
	harness.Must(root.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("pu-c")}))(t)
	harness.Must(root.CreateGroup(ctx, &iam.CreateGroupInput{GroupName: aws.String("pu-g")}))(t)
	harness.Must(root.AttachUserPolicy(ctx, &iam.AttachUserPolicyInput{UserName: aws.String("pu-a"), PolicyArn: p.Arn}))(t)
	harness.Must(root.AttachGroupPolicy(ctx, &iam.AttachGroupPolicyInput{GroupName: aws.String("pu-g"), PolicyArn: p.Arn}))(t)
	// pu-a has the policy both ways.
	harness.Must(root.PutUserPermissionsBoundary(ctx, &iam.PutUserPermissionsBoundaryInput{UserName: aws.String("pu-a"), PermissionsBoundary: p.Arn}))(t)
	harness.Must(root.PutUserPermissionsBoundary(ctx, &iam.PutUserPermissionsBoundaryInput{UserName: aws.String("pu-c"), PermissionsBoundary: aws.String(awsEIC)}))(t)

	got := harness.Must(root.GetPolicy(ctx, &iam.GetPolicyInput{PolicyArn: p.Arn}))(t).Policy
	if aws.ToInt32(got.AttachmentCount) != 2 || aws.ToInt32(got.PermissionsBoundaryUsageCount) != 2 {
		t.Errorf("GetPolicy: AttachmentCount %d, PermissionsBoundaryUsageCount %d; want 2 and 2",
			aws.ToInt32(got.AttachmentCount), aws.ToInt32(got.PermissionsBoundaryUsageCount))
	}
	counts := func(scope iamtypes.PolicyScopeType) map[string]int32 {
		m := map[string]int32{}
		for pg := iam.NewListPoliciesPaginator(root, &iam.ListPoliciesInput{Scope: scope}); pg.HasMorePages(); {
			for _, q := range harness.Must(pg.NextPage(ctx))(t).Policies {
				m[aws.ToString(q.Arn)] = aws.ToInt32(q.PermissionsBoundaryUsageCount)
			}
		}
		return m
	}
	if n := counts(iamtypes.PolicyScopeTypeLocal)[aws.ToString(p.Arn)]; n != 2 {
		t.Errorf("ListPolicies Scope=Local: PermissionsBoundaryUsageCount %d, want 2", n)
	}
	if n := counts(iamtypes.PolicyScopeTypeAws)[awsEIC]; n != 1 {
		t.Errorf("ListPolicies Scope=AWS: %s PermissionsBoundaryUsageCount %d, want 1", awsEIC, n)
	}
	if n := aws.ToInt32(harness.Must(root.GetPolicy(ctx, &iam.GetPolicyInput{PolicyArn: aws.String(awsEIC)}))(t).Policy.PermissionsBoundaryUsageCount); n != 1 {
		t.Errorf("GetPolicy %s: PermissionsBoundaryUsageCount %d, want 1", awsEIC, n)
	}

	list := func(in iam.ListEntitiesForPolicyInput) (users, groups []string) {
		t.Helper()
		in.PolicyArn = p.Arn
		return entityNames(harness.Must(root.ListEntitiesForPolicy(ctx, &in))(t))
	}
	for _, tc := range []struct {
		name          string
		in            iam.ListEntitiesForPolicyInput
		users, groups []string
	}{
		{"all", iam.ListEntitiesForPolicyInput{}, []string{"pu-a", "pu-b"}, []string{"pu-g"}},
		{"boundaries", iam.ListEntitiesForPolicyInput{PolicyUsageFilter: iamtypes.PolicyUsageTypePermissionsBoundary}, []string{"pu-a", "pu-b"}, []string{}},
		{"permissions", iam.ListEntitiesForPolicyInput{PolicyUsageFilter: iamtypes.PolicyUsageTypePermissionsPolicy}, []string{"pu-a"}, []string{"pu-g"}},
		{"groups", iam.ListEntitiesForPolicyInput{EntityFilter: iamtypes.EntityTypeGroup}, []string{}, []string{"pu-g"}},
		{"users", iam.ListEntitiesForPolicyInput{EntityFilter: iamtypes.EntityTypeUser}, []string{"pu-a", "pu-b"}, []string{}},
		{"roles", iam.ListEntitiesForPolicyInput{EntityFilter: iamtypes.EntityTypeRole}, []string{}, []string{}},
		{"group boundaries", iam.ListEntitiesForPolicyInput{EntityFilter: iamtypes.EntityTypeGroup, PolicyUsageFilter: iamtypes.PolicyUsageTypePermissionsBoundary}, []string{}, []string{}},
		{"path", iam.ListEntitiesForPolicyInput{PathPrefix: aws.String("/eng/")}, []string{"pu-a"}, []string{}},
	} {
		users, groups := list(tc.in)
		if !slices.Equal(users, tc.users) || !slices.Equal(groups, tc.groups) {
			t.Errorf("ListEntitiesForPolicy %s: users %v groups %v, want %v %v", tc.name, users, groups, tc.users, tc.groups)
		}
	}
	// Paging: one entity a page.
	var users, groups []string
	pages := 0
	for pg := iam.NewListEntitiesForPolicyPaginator(root, &iam.ListEntitiesForPolicyInput{PolicyArn: p.Arn, MaxItems: aws.Int32(1)}); pg.HasMorePages(); pages++ {
		u, g := entityNames(harness.Must(pg.NextPage(ctx))(t))
		users, groups = append(users, u...), append(groups, g...)
	}
	if pages != 3 || !slices.Equal(users, []string{"pu-a", "pu-b"}) || !slices.Equal(groups, []string{"pu-g"}) {
		t.Errorf("paged ListEntitiesForPolicy: %d pages, users %v, groups %v", pages, users, groups)
	}
	u, _ := entityNames(harness.Must(root.ListEntitiesForPolicy(ctx, &iam.ListEntitiesForPolicyInput{
		PolicyArn: aws.String(awsEIC), PolicyUsageFilter: iamtypes.PolicyUsageTypePermissionsBoundary}))(t))
	if !slices.Equal(u, []string{"pu-c"}) {
		t.Errorf("ListEntitiesForPolicy %s boundaries: %v", awsEIC, u)
	}

	// Error shapes, and authorization on the policy.
	_, err := root.ListEntitiesForPolicy(ctx, &iam.ListEntitiesForPolicyInput{PolicyArn: aws.String("arn:aws:iam::" + e.Account + ":policy/pu-missing")})
	harness.WantTyped[*iamtypes.NoSuchEntityException](t, err, 404)
	_, err = root.ListEntitiesForPolicy(ctx, &iam.ListEntitiesForPolicyInput{PolicyArn: p.Arn, EntityFilter: "Bogus"})
	harness.WantCode(t, err, "ValidationError", 400) // the model's enum, as AWS
	_, err = root.ListEntitiesForPolicy(ctx, &iam.ListEntitiesForPolicyInput{PolicyArn: p.Arn, PolicyUsageFilter: "Bogus"})
	harness.WantCode(t, err, "ValidationError", 400)
	reader := e.newUser(t, "pu-reader", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iam:ListEntitiesForPolicy","Resource":"arn:aws:iam::*:policy/pu-other"}]}`)
	_, err = e.IAM(reader).ListEntitiesForPolicy(ctx, &iam.ListEntitiesForPolicyInput{PolicyArn: p.Arn})
	harness.WantCode(t, err, "AccessDenied", 403)

	// DeletePolicy says who holds it.
	harness.Must(root.DetachUserPolicy(ctx, &iam.DetachUserPolicyInput{UserName: aws.String("pu-a"), PolicyArn: p.Arn}))(t)
	harness.Must(root.DetachGroupPolicy(ctx, &iam.DetachGroupPolicyInput{GroupName: aws.String("pu-g"), PolicyArn: p.Arn}))(t)
	_, err = root.DeletePolicy(ctx, &iam.DeletePolicyInput{PolicyArn: p.Arn})
	if ae := harness.WantTyped[*iamtypes.DeleteConflictException](t, err, 409); !strings.Contains(aws.ToString(ae.Message), "pu-a") {
		t.Errorf("DeleteConflict does not name the user: %s", aws.ToString(ae.Message))
	}
	for _, user := range []string{"pu-a", "pu-b"} {
		harness.Must(root.DeleteUserPermissionsBoundary(ctx, &iam.DeleteUserPermissionsBoundaryInput{UserName: aws.String(user)}))(t)
	}
	if n := aws.ToInt32(harness.Must(root.GetPolicy(ctx, &iam.GetPolicyInput{PolicyArn: p.Arn}))(t).Policy.PermissionsBoundaryUsageCount); n != 0 {
		t.Errorf("PermissionsBoundaryUsageCount after the boundaries went: %d", n)
	}
	harness.Must(root.DeletePolicy(ctx, &iam.DeletePolicyInput{PolicyArn: p.Arn}))(t)
}

// testPolishPolicyUsageCLI: aws iam get-policy and list-entities-for-policy,
// as an administrator runs them before delete-policy.
func testPolishPolicyUsageCLI(t *testing.T, e *env) {
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
	var created struct{ Policy struct{ Arn string } }
	awsCLI(t, &created, "iam", "create-policy", "--policy-name", "pc-bound", "--policy-document", adminDoc)
	arn := created.Policy.Arn
	awsCLI(t, nil, "iam", "create-user", "--user-name", "pc-eve", "--permissions-boundary", arn)
	awsCLI(t, nil, "iam", "create-group", "--group-name", "pc-ops")
	awsCLI(t, nil, "iam", "attach-group-policy", "--group-name", "pc-ops", "--policy-arn", arn)
	var got struct {
		Policy struct{ AttachmentCount, PermissionsBoundaryUsageCount int }
	}
	awsCLI(t, &got, "iam", "get-policy", "--policy-arn", arn)
	if got.Policy.AttachmentCount != 1 || got.Policy.PermissionsBoundaryUsageCount != 1 {
		t.Errorf("aws iam get-policy: %+v", got.Policy)
	}
	type entities struct {
		PolicyUsers  []struct{ UserName, UserId string }
		PolicyGroups []struct{ GroupName, GroupId string }
		PolicyRoles  []struct{ RoleName string }
	}
	var all, bound entities
	awsCLI(t, &all, "iam", "list-entities-for-policy", "--policy-arn", arn)
	if len(all.PolicyUsers) != 1 || all.PolicyUsers[0].UserName != "pc-eve" || !strings.HasPrefix(all.PolicyUsers[0].UserId, "AIDA") ||
		len(all.PolicyGroups) != 1 || all.PolicyGroups[0].GroupName != "pc-ops" || len(all.PolicyRoles) != 0 {
		t.Errorf("aws iam list-entities-for-policy: %+v", all)
	}
	awsCLI(t, &bound, "iam", "list-entities-for-policy", "--policy-arn", arn, "--policy-usage-filter", "PermissionsBoundary")
	if len(bound.PolicyUsers) != 1 || bound.PolicyUsers[0].UserName != "pc-eve" || len(bound.PolicyGroups) != 0 {
		t.Errorf("aws iam list-entities-for-policy --policy-usage-filter PermissionsBoundary: %+v", bound)
	}
}

// testPolishMFAABAC: a team lead may manage the MFA devices of its own
// team's users, by tags, exactly as it manages their access keys; another
// team's users are refused, explicitly.
func testPolishMFAABAC(t *testing.T, e *env) {
	ctx := context.Background()
	root := e.IAM(e.Root)
	lead := `{"Version":"2012-10-17","Statement":[
		{"Effect":"Allow","Action":["iam:CreateVirtualMFADevice","iam:DeleteVirtualMFADevice"],"Resource":"*"},
		{"Effect":"Allow","Action":["iam:EnableMFADevice","iam:ListMFADevices","iam:DeactivateMFADevice","iam:CreateAccessKey"],
		 "Resource":"arn:aws:iam::*:user/*","Condition":{"StringEquals":{"iam:ResourceTag/team":"${aws:PrincipalTag/team}"}}},
		{"Effect":"Deny","Action":["iam:EnableMFADevice","iam:ListMFADevices","iam:DeactivateMFADevice"],
		 "Resource":"*","Condition":{"StringEquals":{"aws:ResourceTag/team":"blue"}}}]}`
	creds := e.newUser(t, "ma-lead", lead)
	team := func(user, name string) {
		harness.Must(root.TagUser(ctx, &iam.TagUserInput{UserName: aws.String(user), Tags: []iamtypes.Tag{{Key: aws.String("team"), Value: aws.String(name)}}}))(t)
	}
	team("ma-lead", "red")
	for user, name := range map[string]string{"ma-red": "red", "ma-blue": "blue"} {
		harness.Must(root.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String(user)}))(t)
		team(user, name)
	}
	c := e.IAM(creds)
	device := func(name string) (string, string) {
		d := harness.Must(c.CreateVirtualMFADevice(ctx, &iam.CreateVirtualMFADeviceInput{VirtualMFADeviceName: aws.String(name)}))(t).VirtualMFADevice
		return aws.ToString(d.SerialNumber), string(d.Base32StringSeed)
	}
	enable := func(c *iam.Client, user, serial, seed string) error {
		c1, c2 := enableCodes(t, seed)
		_, err := c.EnableMFADevice(ctx, &iam.EnableMFADeviceInput{UserName: aws.String(user), SerialNumber: aws.String(serial),
			AuthenticationCode1: aws.String(c1), AuthenticationCode2: aws.String(c2)})
		return err
	}
	listMFA := func(user string) ([]iamtypes.MFADevice, error) {
		out, err := c.ListMFADevices(ctx, &iam.ListMFADevicesInput{UserName: aws.String(user)})
		if err != nil {
			return nil, err
		}
		return out.MFADevices, nil
	}

	// The lead's own team: allowed, as for access keys.
	k := harness.Must(c.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String("ma-red")}))(t).AccessKey
	e.keepSecret(aws.ToString(k.SecretAccessKey))
	redSerial, redSeed := device("ma-red-phone")
	if err := enable(c, "ma-red", redSerial, redSeed); err != nil {
		t.Fatalf("EnableMFADevice for the lead's team: %v", err)
	}
	if ds := harness.Must(listMFA("ma-red"))(t); len(ds) != 1 || aws.ToString(ds[0].SerialNumber) != redSerial {
		t.Errorf("ListMFADevices for the lead's team: %+v", ds)
	}
	harness.Must(c.DeactivateMFADevice(ctx, &iam.DeactivateMFADeviceInput{UserName: aws.String("ma-red"), SerialNumber: aws.String(redSerial)}))(t)

	// Another team: denied, whether or not the user has a device.
	blueSerial, blueSeed := device("ma-blue-phone")
	harness.WantCode(t, enable(c, "ma-blue", blueSerial, blueSeed), "AccessDenied", 403)
	if err := enable(root, "ma-blue", blueSerial, blueSeed); err != nil {
		t.Fatalf("root's EnableMFADevice: %v", err)
	}
	_, err := listMFA("ma-blue")
	harness.WantCode(t, err, "AccessDenied", 403)
	_, err = c.DeactivateMFADevice(ctx, &iam.DeactivateMFADeviceInput{UserName: aws.String("ma-blue"), SerialNumber: aws.String(blueSerial)})
	harness.WantCode(t, err, "AccessDenied", 403)
	if ds := harness.Must(root.ListMFADevices(ctx, &iam.ListMFADevicesInput{UserName: aws.String("ma-blue")}))(t).MFADevices; len(ds) != 1 {
		t.Errorf("the denied deactivation changed something: %+v", ds)
	}
	// Retagging moves a user out of the lead's reach at once.
	team("ma-red", "blue")
	_, err = listMFA("ma-red")
	harness.WantCode(t, err, "AccessDenied", 403)
}
