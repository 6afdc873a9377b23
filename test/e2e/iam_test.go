package e2e

import (
	"context"
	"encoding/json"
	"net/url"
	"reflect"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/kaginashi/kaginashi/test/e2e/harness"
)

func testSTS(t *testing.T, e *env) {
	ctx := context.Background()
	root := harness.Must(e.STS(e.Root).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{}))(t)
	if aws.ToString(root.Account) != e.Account || aws.ToString(root.Arn) != "arn:aws:iam::"+e.Account+":root" || aws.ToString(root.UserId) != e.Account {
		t.Errorf("root GetCallerIdentity: account %q arn %q userId %q", aws.ToString(root.Account), aws.ToString(root.Arn), aws.ToString(root.UserId))
	}
	// A user with no policy at all may still ask who it is.
	alice := e.newUser(t, "sts-alice")
	u := harness.Must(e.IAM(e.Root).GetUser(ctx, &iam.GetUserInput{UserName: aws.String("sts-alice")}))(t)
	me := harness.Must(e.STS(alice).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{}))(t)
	if aws.ToString(me.Arn) != "arn:aws:iam::"+e.Account+":user/sts-alice" || aws.ToString(me.UserId) != aws.ToString(u.User.UserId) || aws.ToString(me.Account) != e.Account {
		t.Errorf("user GetCallerIdentity: %+v", me)
	}
	// STS signed for us-east-1, as SDKs with the global endpoint do.
	harness.Must(e.STS(alice, harness.InRegion("us-east-1")).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{}))(t)
}

func testIAMUsers(t *testing.T, e *env) {
	ctx := context.Background()
	c := e.IAM(e.Root)
	created := harness.Must(c.CreateUser(ctx, &iam.CreateUserInput{
		UserName: aws.String("u-bob"), Path: aws.String("/eng/"),
		Tags: []iamtypes.Tag{{Key: aws.String("team"), Value: aws.String("infra")}},
	}))(t)
	u := created.User
	if aws.ToString(u.Arn) != "arn:aws:iam::"+e.Account+":user/eng/u-bob" || aws.ToString(u.Path) != "/eng/" ||
		len(aws.ToString(u.UserId)) != 21 || u.CreateDate == nil || u.CreateDate.IsZero() {
		t.Errorf("CreateUser: %+v", u)
	}
	got := harness.Must(c.GetUser(ctx, &iam.GetUserInput{UserName: aws.String("u-bob")}))(t).User
	if aws.ToString(got.UserId) != aws.ToString(u.UserId) || !reflect.DeepEqual(tagMap(got.Tags), map[string]string{"team": "infra"}) {
		t.Errorf("GetUser: %+v tags %v", got, tagMap(got.Tags))
	}

	harness.Must(c.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("u-carol")}))(t)
	list := harness.Must(c.ListUsers(ctx, &iam.ListUsersInput{}))(t)
	var names []string
	for _, u := range list.Users {
		names = append(names, aws.ToString(u.UserName))
	}
	if !slices.Contains(names, "u-bob") || !slices.Contains(names, "u-carol") {
		t.Errorf("ListUsers: %v", names)
	}
	eng := harness.Must(c.ListUsers(ctx, &iam.ListUsersInput{PathPrefix: aws.String("/eng/")}))(t)
	if len(eng.Users) != 1 || aws.ToString(eng.Users[0].UserName) != "u-bob" {
		t.Errorf("ListUsers /eng/: %+v", eng.Users)
	}
	// Paging: one user per page, every user once.
	var paged []string
	for p := iam.NewListUsersPaginator(c, &iam.ListUsersInput{MaxItems: aws.Int32(1)}); p.HasMorePages(); {
		page := harness.Must(p.NextPage(ctx))(t)
		if len(page.Users) > 1 {
			t.Fatalf("MaxItems 1 gave %d users", len(page.Users))
		}
		for _, u := range page.Users {
			paged = append(paged, aws.ToString(u.UserName))
		}
	}
	if !reflect.DeepEqual(paged, names) {
		t.Errorf("paged ListUsers %v, want %v", paged, names)
	}

	// Tags.
	harness.Must(c.TagUser(ctx, &iam.TagUserInput{UserName: aws.String("u-bob"), Tags: []iamtypes.Tag{
		{Key: aws.String("team"), Value: aws.String("platform")}, {Key: aws.String("cost"), Value: aws.String("42")},
	}}))(t)
	tags := harness.Must(c.ListUserTags(ctx, &iam.ListUserTagsInput{UserName: aws.String("u-bob")}))(t)
	if want := map[string]string{"team": "platform", "cost": "42"}; !reflect.DeepEqual(tagMap(tags.Tags), want) {
		t.Errorf("ListUserTags after TagUser: %v, want %v", tagMap(tags.Tags), want)
	}
	harness.Must(c.UntagUser(ctx, &iam.UntagUserInput{UserName: aws.String("u-bob"), TagKeys: []string{"cost"}}))(t)
	tags = harness.Must(c.ListUserTags(ctx, &iam.ListUserTagsInput{UserName: aws.String("u-bob")}))(t)
	if want := map[string]string{"team": "platform"}; !reflect.DeepEqual(tagMap(tags.Tags), want) {
		t.Errorf("ListUserTags after UntagUser: %v, want %v", tagMap(tags.Tags), want)
	}

	// Delete; the user is gone.
	harness.Must(c.DeleteUser(ctx, &iam.DeleteUserInput{UserName: aws.String("u-carol")}))(t)
	_, err := c.GetUser(ctx, &iam.GetUserInput{UserName: aws.String("u-carol")})
	harness.WantTyped[*iamtypes.NoSuchEntityException](t, err, 404)
	_, err = c.DeleteUser(ctx, &iam.DeleteUserInput{UserName: aws.String("u-carol")})
	harness.WantTyped[*iamtypes.NoSuchEntityException](t, err, 404)
}

func tagMap(ts []iamtypes.Tag) map[string]string {
	m := map[string]string{}
	for _, t := range ts {
		m[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return m
}

func testIAMAccessKeys(t *testing.T, e *env) {
	ctx := context.Background()
	c := e.IAM(e.Root)
	k1 := e.newUser(t, "k-dave")
	k2 := e.newKey(t, "k-dave")
	if k1.ID == k2.ID || k1.Secret == k2.Secret || len(k1.ID) != 20 || len(k1.Secret) != 40 {
		t.Errorf("keys %q/%d chars and %q/%d chars", k1.ID, len(k1.Secret), k2.ID, len(k2.Secret))
	}
	// IAM's quota: two keys per user.
	_, err := c.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String("k-dave")})
	harness.WantTyped[*iamtypes.LimitExceededException](t, err, 409)

	list := harness.Must(c.ListAccessKeys(ctx, &iam.ListAccessKeysInput{UserName: aws.String("k-dave")}))(t)
	var ids []string
	for _, m := range list.AccessKeyMetadata {
		ids = append(ids, aws.ToString(m.AccessKeyId))
		if m.Status != iamtypes.StatusTypeActive || aws.ToString(m.UserName) != "k-dave" {
			t.Errorf("ListAccessKeys: %+v", m)
		}
	}
	slices.Sort(ids)
	want := []string{k1.ID, k2.ID}
	slices.Sort(want)
	if !reflect.DeepEqual(ids, want) {
		t.Errorf("ListAccessKeys: %v, want %v", ids, want)
	}

	// The key works; inactive, it does not; active again, it does.
	stsK1 := e.STS(k1)
	harness.Must(stsK1.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{}))(t)
	harness.Must(c.UpdateAccessKey(ctx, &iam.UpdateAccessKeyInput{UserName: aws.String("k-dave"), AccessKeyId: aws.String(k1.ID), Status: iamtypes.StatusTypeInactive}))(t)
	list = harness.Must(c.ListAccessKeys(ctx, &iam.ListAccessKeysInput{UserName: aws.String("k-dave")}))(t)
	for _, m := range list.AccessKeyMetadata {
		if aws.ToString(m.AccessKeyId) == k1.ID && m.Status != iamtypes.StatusTypeInactive {
			t.Errorf("after UpdateAccessKey Inactive: %+v", m)
		}
	}
	_, err = e.STS(k1, harness.AsWho("")).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	harness.WantCode(t, err, "InvalidClientTokenId", 403)
	harness.Must(c.UpdateAccessKey(ctx, &iam.UpdateAccessKeyInput{UserName: aws.String("k-dave"), AccessKeyId: aws.String(k1.ID), Status: iamtypes.StatusTypeActive}))(t)
	harness.Must(stsK1.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{}))(t)

	// A user with keys cannot be deleted.
	_, err = c.DeleteUser(ctx, &iam.DeleteUserInput{UserName: aws.String("k-dave")})
	harness.WantTyped[*iamtypes.DeleteConflictException](t, err, 409)

	// Deleted, the key no longer authenticates.
	harness.Must(c.DeleteAccessKey(ctx, &iam.DeleteAccessKeyInput{UserName: aws.String("k-dave"), AccessKeyId: aws.String(k1.ID)}))(t)
	_, err = e.STS(k1, harness.AsWho("")).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	harness.WantCode(t, err, "InvalidClientTokenId", 403)
	_, err = c.DeleteAccessKey(ctx, &iam.DeleteAccessKeyInput{UserName: aws.String("k-dave"), AccessKeyId: aws.String(k1.ID)})
	harness.WantTyped[*iamtypes.NoSuchEntityException](t, err, 404)
	list = harness.Must(c.ListAccessKeys(ctx, &iam.ListAccessKeysInput{UserName: aws.String("k-dave")}))(t)
	if len(list.AccessKeyMetadata) != 1 || aws.ToString(list.AccessKeyMetadata[0].AccessKeyId) != k2.ID {
		t.Errorf("ListAccessKeys after delete: %+v", list.AccessKeyMetadata)
	}

	// Without UserName, a user manages its own keys (given the permission).
	self := e.newUser(t, "k-erin", harness.Doc(map[string]any{"Effect": "Allow", "Action": "iam:*AccessKey*", "Resource": "arn:aws:iam::" + e.Account + ":user/${aws:username}"}))
	own := harness.Must(e.IAM(self).ListAccessKeys(ctx, &iam.ListAccessKeysInput{}))(t)
	if len(own.AccessKeyMetadata) != 1 || aws.ToString(own.AccessKeyMetadata[0].AccessKeyId) != self.ID {
		t.Errorf("ListAccessKeys of the caller: %+v", own.AccessKeyMetadata)
	}
	_, err = e.IAM(self).ListAccessKeys(ctx, &iam.ListAccessKeysInput{UserName: aws.String("k-dave")})
	harness.WantCode(t, err, "AccessDenied", 403)
}

func testIAMManagedPolicies(t *testing.T, e *env) {
	ctx := context.Background()
	c := e.IAM(e.Root)
	v1 := harness.Doc(map[string]any{"Sid": "V1", "Effect": "Allow", "Action": "ec2:DescribeInstances", "Resource": "*"})
	// v2 keeps its formatting: GetPolicyVersion must return the very text.
	v2 := "{\n  \"Version\": \"2012-10-17\",\n  \"Statement\": [{\"Sid\": \"V2\", \"Effect\": \"Allow\", \"Action\": [\"ec2:DescribeInstances\", \"ec2:DescribeTags\"], \"Resource\": \"*\", \"Condition\": {\"StringNotEquals\": {\"aws:UserAgent\": \"a+b %/&=?* ü\"}}}]\n}"
	created := harness.Must(c.CreatePolicy(ctx, &iam.CreatePolicyInput{
		PolicyName: aws.String("mp-describe"), Path: aws.String("/e2e/"), Description: aws.String("describe things"), PolicyDocument: aws.String(v1),
	}))(t).Policy
	arn := aws.ToString(created.Arn)
	if arn != "arn:aws:iam::"+e.Account+":policy/e2e/mp-describe" || aws.ToString(created.DefaultVersionId) != "v1" || !created.IsAttachable {
		t.Errorf("CreatePolicy: %+v", created)
	}
	got := harness.Must(c.GetPolicy(ctx, &iam.GetPolicyInput{PolicyArn: aws.String(arn)}))(t).Policy
	if aws.ToString(got.PolicyName) != "mp-describe" || aws.ToString(got.Description) != "describe things" || aws.ToInt32(got.AttachmentCount) != 0 {
		t.Errorf("GetPolicy: %+v", got)
	}
	list := harness.Must(c.ListPolicies(ctx, &iam.ListPoliciesInput{Scope: iamtypes.PolicyScopeTypeLocal, PathPrefix: aws.String("/e2e/")}))(t)
	if len(list.Policies) != 1 || aws.ToString(list.Policies[0].Arn) != arn {
		t.Errorf("ListPolicies /e2e/: %+v", list.Policies)
	}

	// Versions.
	pv := harness.Must(c.CreatePolicyVersion(ctx, &iam.CreatePolicyVersionInput{PolicyArn: aws.String(arn), PolicyDocument: aws.String(v2)}))(t).PolicyVersion
	if aws.ToString(pv.VersionId) != "v2" || pv.IsDefaultVersion {
		t.Errorf("CreatePolicyVersion: %+v", pv)
	}
	vs := harness.Must(c.ListPolicyVersions(ctx, &iam.ListPolicyVersionsInput{PolicyArn: aws.String(arn)}))(t).Versions
	defaults := map[string]bool{}
	for _, v := range vs {
		defaults[aws.ToString(v.VersionId)] = v.IsDefaultVersion
	}
	if !reflect.DeepEqual(defaults, map[string]bool{"v1": true, "v2": false}) {
		t.Errorf("ListPolicyVersions: %v", defaults)
	}
	gv := harness.Must(c.GetPolicyVersion(ctx, &iam.GetPolicyVersionInput{PolicyArn: aws.String(arn), VersionId: aws.String("v2")}))(t).PolicyVersion
	// IAM returns documents URL-encoded, and the SDK hands them over as is.
	raw := aws.ToString(gv.Document)
	if raw == v2 || json.Valid([]byte(raw)) {
		t.Errorf("GetPolicyVersion document is not URL-encoded: %q", raw)
	}
	decoded, err := url.QueryUnescape(raw)
	if err != nil {
		t.Fatalf("GetPolicyVersion document does not URL-decode: %v", err)
	}
	if decoded != v2 {
		t.Errorf("GetPolicyVersion document decodes to\n%s\nwant\n%s", decoded, v2)
	}
	harness.Must(c.SetDefaultPolicyVersion(ctx, &iam.SetDefaultPolicyVersionInput{PolicyArn: aws.String(arn), VersionId: aws.String("v2")}))(t)
	if d := aws.ToString(harness.Must(c.GetPolicy(ctx, &iam.GetPolicyInput{PolicyArn: aws.String(arn)}))(t).Policy.DefaultVersionId); d != "v2" {
		t.Errorf("default version after SetDefaultPolicyVersion: %s", d)
	}
	// The default version cannot be deleted; another can.
	_, err = c.DeletePolicyVersion(ctx, &iam.DeletePolicyVersionInput{PolicyArn: aws.String(arn), VersionId: aws.String("v2")})
	harness.WantTyped[*iamtypes.DeleteConflictException](t, err, 409)
	harness.Must(c.DeletePolicyVersion(ctx, &iam.DeletePolicyVersionInput{PolicyArn: aws.String(arn), VersionId: aws.String("v1")}))(t)
	_, err = c.GetPolicyVersion(ctx, &iam.GetPolicyVersionInput{PolicyArn: aws.String(arn), VersionId: aws.String("v1")})
	harness.WantTyped[*iamtypes.NoSuchEntityException](t, err, 404)

	// Attachments to a user.
	user := e.newUser(t, "mp-frank")
	ec2c := e.EC2(user)
	_, err = ec2c.DescribeInstances(ctx, nil)
	harness.WantCode(t, err, "UnauthorizedOperation", 403)
	harness.Must(c.AttachUserPolicy(ctx, &iam.AttachUserPolicyInput{UserName: aws.String("mp-frank"), PolicyArn: aws.String(arn)}))(t)
	att := harness.Must(c.ListAttachedUserPolicies(ctx, &iam.ListAttachedUserPoliciesInput{UserName: aws.String("mp-frank")}))(t).AttachedPolicies
	if len(att) != 1 || aws.ToString(att[0].PolicyArn) != arn || aws.ToString(att[0].PolicyName) != "mp-describe" {
		t.Errorf("ListAttachedUserPolicies: %+v", att)
	}
	if n := aws.ToInt32(harness.Must(c.GetPolicy(ctx, &iam.GetPolicyInput{PolicyArn: aws.String(arn)}))(t).Policy.AttachmentCount); n != 1 {
		t.Errorf("AttachmentCount %d, want 1", n)
	}
	harness.Must(ec2c.DescribeInstances(ctx, nil))(t) // the attached policy takes effect at once
	_, err = c.DeletePolicy(ctx, &iam.DeletePolicyInput{PolicyArn: aws.String(arn)})
	harness.WantTyped[*iamtypes.DeleteConflictException](t, err, 409)
	harness.Must(c.DetachUserPolicy(ctx, &iam.DetachUserPolicyInput{UserName: aws.String("mp-frank"), PolicyArn: aws.String(arn)}))(t)
	if att := harness.Must(c.ListAttachedUserPolicies(ctx, &iam.ListAttachedUserPoliciesInput{UserName: aws.String("mp-frank")}))(t).AttachedPolicies; len(att) != 0 {
		t.Errorf("ListAttachedUserPolicies after detach: %+v", att)
	}
	_, err = ec2c.DescribeInstances(ctx, nil)
	harness.WantCode(t, err, "UnauthorizedOperation", 403)
	_, err = c.DetachUserPolicy(ctx, &iam.DetachUserPolicyInput{UserName: aws.String("mp-frank"), PolicyArn: aws.String(arn)})
	harness.WantTyped[*iamtypes.NoSuchEntityException](t, err, 404)

	harness.Must(c.DeletePolicy(ctx, &iam.DeletePolicyInput{PolicyArn: aws.String(arn)}))(t)
	_, err = c.GetPolicy(ctx, &iam.GetPolicyInput{PolicyArn: aws.String(arn)})
	harness.WantTyped[*iamtypes.NoSuchEntityException](t, err, 404)
}

func testIAMInlinePolicies(t *testing.T, e *env) {
	ctx := context.Background()
	c := e.IAM(e.Root)
	user := e.newUser(t, "ip-grace")
	d := harness.Doc(map[string]any{"Effect": "Allow", "Action": "iam:GetUser", "Resource": "arn:aws:iam::" + e.Account + ":user/${aws:username}"})
	_, err := e.IAM(user).GetUser(ctx, &iam.GetUserInput{})
	harness.WantCode(t, err, "AccessDenied", 403)
	harness.Must(c.PutUserPolicy(ctx, &iam.PutUserPolicyInput{UserName: aws.String("ip-grace"), PolicyName: aws.String("self"), PolicyDocument: aws.String(d)}))(t)
	me := harness.Must(e.IAM(user).GetUser(ctx, &iam.GetUserInput{}))(t).User
	if aws.ToString(me.UserName) != "ip-grace" {
		t.Errorf("GetUser of the caller: %+v", me)
	}
	// ${aws:username} resolves to the caller: not another user.
	_, err = e.IAM(user).GetUser(ctx, &iam.GetUserInput{UserName: aws.String("sts-alice")})
	harness.WantCode(t, err, "AccessDenied", 403)

	gp := harness.Must(c.GetUserPolicy(ctx, &iam.GetUserPolicyInput{UserName: aws.String("ip-grace"), PolicyName: aws.String("self")}))(t)
	if dec, err := url.QueryUnescape(aws.ToString(gp.PolicyDocument)); err != nil || dec != d {
		t.Errorf("GetUserPolicy document %q decodes to %q (%v), want %q", aws.ToString(gp.PolicyDocument), dec, err, d)
	}
	names := harness.Must(c.ListUserPolicies(ctx, &iam.ListUserPoliciesInput{UserName: aws.String("ip-grace")}))(t).PolicyNames
	if !reflect.DeepEqual(names, []string{"self"}) {
		t.Errorf("ListUserPolicies: %v", names)
	}
	harness.Must(c.DeleteUserPolicy(ctx, &iam.DeleteUserPolicyInput{UserName: aws.String("ip-grace"), PolicyName: aws.String("self")}))(t)
	_, err = c.GetUserPolicy(ctx, &iam.GetUserPolicyInput{UserName: aws.String("ip-grace"), PolicyName: aws.String("self")})
	harness.WantTyped[*iamtypes.NoSuchEntityException](t, err, 404)
	_, err = e.IAM(user).GetUser(ctx, &iam.GetUserInput{})
	harness.WantCode(t, err, "AccessDenied", 403)
}

func testIAMGroups(t *testing.T, e *env) {
	ctx := context.Background()
	c := e.IAM(e.Root)
	g := harness.Must(c.CreateGroup(ctx, &iam.CreateGroupInput{GroupName: aws.String("g-ops"), Path: aws.String("/teams/")}))(t).Group
	if aws.ToString(g.Arn) != "arn:aws:iam::"+e.Account+":group/teams/g-ops" || len(aws.ToString(g.GroupId)) != 21 {
		t.Errorf("CreateGroup: %+v", g)
	}
	_, err := c.CreateGroup(ctx, &iam.CreateGroupInput{GroupName: aws.String("G-OPS")})
	harness.WantTyped[*iamtypes.EntityAlreadyExistsException](t, err, 409)

	user := e.newUser(t, "g-heidi")
	harness.Must(c.AddUserToGroup(ctx, &iam.AddUserToGroupInput{GroupName: aws.String("g-ops"), UserName: aws.String("g-heidi")}))(t)
	gg := harness.Must(c.GetGroup(ctx, &iam.GetGroupInput{GroupName: aws.String("g-ops")}))(t)
	if len(gg.Users) != 1 || aws.ToString(gg.Users[0].UserName) != "g-heidi" || aws.ToString(gg.Group.GroupName) != "g-ops" {
		t.Errorf("GetGroup: %+v %+v", gg.Group, gg.Users)
	}
	lg := harness.Must(c.ListGroups(ctx, &iam.ListGroupsInput{PathPrefix: aws.String("/teams/")}))(t).Groups
	if len(lg) != 1 || aws.ToString(lg[0].GroupName) != "g-ops" {
		t.Errorf("ListGroups: %+v", lg)
	}
	gfu := harness.Must(c.ListGroupsForUser(ctx, &iam.ListGroupsForUserInput{UserName: aws.String("g-heidi")}))(t).Groups
	if len(gfu) != 1 || aws.ToString(gfu[0].GroupName) != "g-ops" {
		t.Errorf("ListGroupsForUser: %+v", gfu)
	}

	// A policy attached to the group applies to its members.
	p := harness.Must(c.CreatePolicy(ctx, &iam.CreatePolicyInput{PolicyName: aws.String("g-describe"), PolicyDocument: aws.String(
		harness.Doc(map[string]any{"Effect": "Allow", "Action": "ec2:DescribeInstances", "Resource": "*"}))}))(t).Policy
	_, err = e.EC2(user).DescribeInstances(ctx, nil)
	harness.WantCode(t, err, "UnauthorizedOperation", 403)
	harness.Must(c.AttachGroupPolicy(ctx, &iam.AttachGroupPolicyInput{GroupName: aws.String("g-ops"), PolicyArn: p.Arn}))(t)
	att := harness.Must(c.ListAttachedGroupPolicies(ctx, &iam.ListAttachedGroupPoliciesInput{GroupName: aws.String("g-ops")}))(t).AttachedPolicies
	if len(att) != 1 || aws.ToString(att[0].PolicyArn) != aws.ToString(p.Arn) {
		t.Errorf("ListAttachedGroupPolicies: %+v", att)
	}
	harness.Must(e.EC2(user).DescribeInstances(ctx, nil))(t)

	// A group with members or policies cannot be deleted.
	_, err = c.DeleteGroup(ctx, &iam.DeleteGroupInput{GroupName: aws.String("g-ops")})
	harness.WantTyped[*iamtypes.DeleteConflictException](t, err, 409)
	// Leaving the group takes its permissions away.
	harness.Must(c.RemoveUserFromGroup(ctx, &iam.RemoveUserFromGroupInput{GroupName: aws.String("g-ops"), UserName: aws.String("g-heidi")}))(t)
	_, err = e.EC2(user).DescribeInstances(ctx, nil)
	harness.WantCode(t, err, "UnauthorizedOperation", 403)
	if gfu := harness.Must(c.ListGroupsForUser(ctx, &iam.ListGroupsForUserInput{UserName: aws.String("g-heidi")}))(t).Groups; len(gfu) != 0 {
		t.Errorf("ListGroupsForUser after removal: %+v", gfu)
	}
	harness.Must(c.DetachGroupPolicy(ctx, &iam.DetachGroupPolicyInput{GroupName: aws.String("g-ops"), PolicyArn: p.Arn}))(t)
	harness.Must(c.DeleteGroup(ctx, &iam.DeleteGroupInput{GroupName: aws.String("g-ops")}))(t)
	_, err = c.GetGroup(ctx, &iam.GetGroupInput{GroupName: aws.String("g-ops")})
	harness.WantTyped[*iamtypes.NoSuchEntityException](t, err, 404)
}

func testIAMLoginProfiles(t *testing.T, e *env) {
	ctx := context.Background()
	c := e.IAM(e.Root)
	e.newUser(t, "lp-ivan")
	pw, pw2 := "E2e-Passw0rd!"+randomHex(t, 8), "E2e-Changed#"+randomHex(t, 8)
	e.keepSecret(pw)
	e.keepSecret(pw2)
	_, err := c.CreateLoginProfile(ctx, &iam.CreateLoginProfileInput{UserName: aws.String("lp-ivan"), Password: aws.String("short")})
	harness.WantTyped[*iamtypes.PasswordPolicyViolationException](t, err, 400)
	lp := harness.Must(c.CreateLoginProfile(ctx, &iam.CreateLoginProfileInput{UserName: aws.String("lp-ivan"), Password: aws.String(pw), PasswordResetRequired: true}))(t).LoginProfile
	if aws.ToString(lp.UserName) != "lp-ivan" || !lp.PasswordResetRequired || lp.CreateDate == nil {
		t.Errorf("CreateLoginProfile: %+v", lp)
	}
	_, err = c.CreateLoginProfile(ctx, &iam.CreateLoginProfileInput{UserName: aws.String("lp-ivan"), Password: aws.String(pw)})
	harness.WantTyped[*iamtypes.EntityAlreadyExistsException](t, err, 409)
	harness.Must(c.UpdateLoginProfile(ctx, &iam.UpdateLoginProfileInput{UserName: aws.String("lp-ivan"), Password: aws.String(pw2), PasswordResetRequired: aws.Bool(false)}))(t)
	got := harness.Must(c.GetLoginProfile(ctx, &iam.GetLoginProfileInput{UserName: aws.String("lp-ivan")}))(t).LoginProfile
	if got.PasswordResetRequired {
		t.Errorf("GetLoginProfile after update: %+v", got)
	}
	_, err = c.DeleteUser(ctx, &iam.DeleteUserInput{UserName: aws.String("lp-ivan")})
	harness.WantTyped[*iamtypes.DeleteConflictException](t, err, 409)
	harness.Must(c.DeleteLoginProfile(ctx, &iam.DeleteLoginProfileInput{UserName: aws.String("lp-ivan")}))(t)
	_, err = c.GetLoginProfile(ctx, &iam.GetLoginProfileInput{UserName: aws.String("lp-ivan")})
	harness.WantTyped[*iamtypes.NoSuchEntityException](t, err, 404)
}

func testIAMSimulate(t *testing.T, e *env) {
	ctx := context.Background()
	c := e.IAM(e.Root)
	e.newUser(t, "sim-judy")
	pushAllowDenyRoot := harness.Doc(
		map[string]any{"Sid": "AllowPush", "Effect": "Allow", "Action": "ec2-instance-connect:SendSSHPublicKey", "Resource": "arn:aws:ec2:" + e.Region + ":" + e.Account + ":instance/*"},
		map[string]any{"Sid": "DenyRoot", "Effect": "Deny", "Action": "ec2-instance-connect:SendSSHPublicKey", "Resource": "*", "Condition": map[string]any{"StringEquals": map[string]any{"ec2:osuser": "root"}}},
	)
	arn := e.attachManaged(t, "sim-judy", "sim-push", pushAllowDenyRoot)
	instance := e.instanceARN(instanceID(1))
	userARN := "arn:aws:iam::" + e.Account + ":user/sim-judy"

	// decisions maps "action resource" to "decision matched-sources".
	decisions := func(rs []iamtypes.EvaluationResult) map[string]string {
		m := map[string]string{}
		for _, r := range rs {
			v := string(r.EvalDecision)
			for _, s := range r.MatchedStatements {
				v += " " + aws.ToString(s.SourcePolicyId) + "/" + string(s.SourcePolicyType)
			}
			m[aws.ToString(r.EvalActionName)+" "+aws.ToString(r.EvalResourceName)] = v
		}
		return m
	}

	out := harness.Must(c.SimulatePrincipalPolicy(ctx, &iam.SimulatePrincipalPolicyInput{
		PolicySourceArn: aws.String(userARN),
		ActionNames:     []string{"ec2-instance-connect:SendSSHPublicKey", "iam:ListUsers"},
		ResourceArns:    []string{instance},
	}))(t)
	want := map[string]string{
		"ec2-instance-connect:SendSSHPublicKey " + instance: "allowed " + arn + "/user-managed",
		"iam:ListUsers " + instance:                         "implicitDeny",
	}
	if got := decisions(out.EvaluationResults); !reflect.DeepEqual(got, want) {
		t.Errorf("SimulatePrincipalPolicy:\n got %v\nwant %v", got, want)
	}
	// With ec2:osuser root the Deny matches, and wins.
	out = harness.Must(c.SimulatePrincipalPolicy(ctx, &iam.SimulatePrincipalPolicyInput{
		PolicySourceArn: aws.String(userARN),
		ActionNames:     []string{"ec2-instance-connect:SendSSHPublicKey"},
		ResourceArns:    []string{instance},
		ContextEntries: []iamtypes.ContextEntry{{
			ContextKeyName: aws.String("ec2:osuser"), ContextKeyType: iamtypes.ContextKeyTypeEnumString, ContextKeyValues: []string{"root"},
		}},
	}))(t)
	want = map[string]string{"ec2-instance-connect:SendSSHPublicKey " + instance: "explicitDeny " + arn + "/user-managed"}
	if got := decisions(out.EvaluationResults); !reflect.DeepEqual(got, want) {
		t.Errorf("SimulatePrincipalPolicy with ec2:osuser=root:\n got %v\nwant %v", got, want)
	}
	_, err := c.SimulatePrincipalPolicy(ctx, &iam.SimulatePrincipalPolicyInput{
		PolicySourceArn: aws.String("arn:aws:iam::" + e.Account + ":user/nobody-here"), ActionNames: []string{"iam:ListUsers"},
	})
	harness.WantTyped[*iamtypes.NoSuchEntityException](t, err, 404)

	// SimulateCustomPolicy evaluates the given documents only.
	custom := harness.Must(c.SimulateCustomPolicy(ctx, &iam.SimulateCustomPolicyInput{
		PolicyInputList: []string{pushAllowDenyRoot},
		ActionNames:     []string{"ec2-instance-connect:SendSSHPublicKey", "ec2:DescribeInstances"},
		ResourceArns:    []string{instance},
		ContextEntries: []iamtypes.ContextEntry{{
			ContextKeyName: aws.String("ec2:osuser"), ContextKeyType: iamtypes.ContextKeyTypeEnumString, ContextKeyValues: []string{"ec2-user"},
		}},
	}))(t)
	want = map[string]string{
		"ec2-instance-connect:SendSSHPublicKey " + instance: "allowed PolicyInputList.1/none",
		"ec2:DescribeInstances " + instance:                 "implicitDeny",
	}
	if got := decisions(custom.EvaluationResults); !reflect.DeepEqual(got, want) {
		t.Errorf("SimulateCustomPolicy:\n got %v\nwant %v", got, want)
	}
	_, err = c.SimulateCustomPolicy(ctx, &iam.SimulateCustomPolicyInput{PolicyInputList: []string{harness.RawSeedPolicy(t)}, ActionNames: []string{"ec2:DescribeInstances"}})
	harness.WantTyped[*iamtypes.MalformedPolicyDocumentException](t, err, 400)
}

func testIAMErrors(t *testing.T, e *env) {
	ctx := context.Background()
	c := e.IAM(e.Root)
	harness.Must(c.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("err-kim")}))(t)
	seedDenied := e.newUser(t, "err-seed")
	e.attachManaged(t, "err-seed", "err-seed-policy", harness.SeedPolicy(t, e.Region, e.Account))

	cases := []struct {
		name  string
		call  func() error
		check func(t *testing.T, err error)
	}{
		{"NoSuchEntity", func() error {
			_, err := c.GetUser(ctx, &iam.GetUserInput{UserName: aws.String("err-nobody")})
			return err
		}, func(t *testing.T, err error) { harness.WantTyped[*iamtypes.NoSuchEntityException](t, err, 404) }},
		{"EntityAlreadyExists (names are case-insensitive)", func() error {
			_, err := c.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("ERR-KIM")})
			return err
		}, func(t *testing.T, err error) { harness.WantTyped[*iamtypes.EntityAlreadyExistsException](t, err, 409) }},
		{"DeleteConflict", func() error {
			_, err := c.DeleteUser(ctx, &iam.DeleteUserInput{UserName: aws.String("err-seed")})
			return err
		}, func(t *testing.T, err error) { harness.WantTyped[*iamtypes.DeleteConflictException](t, err, 409) }},
		{"MalformedPolicyDocument: the seed with its placeholders", func() error {
			_, err := c.CreatePolicy(ctx, &iam.CreatePolicyInput{PolicyName: aws.String("err-raw-seed"), PolicyDocument: aws.String(harness.RawSeedPolicy(t))})
			return err
		}, func(t *testing.T, err error) {
			me := harness.WantTyped[*iamtypes.MalformedPolicyDocumentException](t, err, 400)
			if !containsAny(me.ErrorMessage(), "リージョン", "Resource") {
				t.Errorf("MalformedPolicyDocument does not say what is wrong: %q", me.ErrorMessage())
			}
		}},
		{"MalformedPolicyDocument: not JSON", func() error {
			_, err := c.PutUserPolicy(ctx, &iam.PutUserPolicyInput{UserName: aws.String("err-kim"), PolicyName: aws.String("p"), PolicyDocument: aws.String("{not json")})
			return err
		}, func(t *testing.T, err error) {
			harness.WantTyped[*iamtypes.MalformedPolicyDocumentException](t, err, 400)
		}},
		{"ValidationError: user name", func() error {
			_, err := c.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("bad name!")})
			return err
		}, func(t *testing.T, err error) { harness.WantCode(t, err, "ValidationError", 400) }},
		{"ValidationError: version ID", func() error {
			_, err := c.GetPolicyVersion(ctx, &iam.GetPolicyVersionInput{PolicyArn: aws.String("arn:aws:iam::" + e.Account + ":policy/err-seed-policy"), VersionId: aws.String("version-one")})
			return err
		}, func(t *testing.T, err error) { harness.WantCode(t, err, "ValidationError", 400) }},
		{"AccessDenied: the seed grants no IAM", func() error {
			_, err := e.IAM(seedDenied).ListUsers(ctx, &iam.ListUsersInput{})
			return err
		}, func(t *testing.T, err error) {
			ae := harness.WantCode(t, err, "AccessDenied", 403)
			if !containsAny(ae.ErrorMessage(), "iam:ListUsers") {
				t.Errorf("AccessDenied message does not name the action: %q", ae.ErrorMessage())
			}
		}},
		{"AccessDenied: no self-service", func() error {
			_, err := e.IAM(seedDenied).CreateAccessKey(ctx, &iam.CreateAccessKeyInput{})
			return err
		}, func(t *testing.T, err error) { harness.WantCode(t, err, "AccessDenied", 403) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { tc.check(t, tc.call()) })
	}
}
