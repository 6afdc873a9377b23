package e2e

import (
	"context"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"

	"github.com/kaginashi/kaginashi/test/e2e/harness"
)

// TestIAMABAC runs, on a server per engine, attribute-based control where
// a managed policy is the resource (its tags as aws:ResourceTag/*, on
// every policy action; not as iam:ResourceTag/*, the user's and role's
// key) and where tags are in the request (aws:RequestTag/* and
// aws:TagKeys on CreateUser, CreatePolicy, TagUser, TagPolicy and the
// untag calls), and IAM's model validation answered as ValidationError.
func TestIAMABAC(t *testing.T) {
	t.Parallel()
	for _, engine := range harness.Engines {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, engine)
			t.Run("PolicyResourceTags", func(t *testing.T) { testABACPolicyResourceTags(t, e) })
			t.Run("RequestTags", func(t *testing.T) { testABACRequestTags(t, e) })
			t.Run("ValidationError", func(t *testing.T) { testValidationErrors(t, e) })
			t.Run("ValidationErrorCLI", func(t *testing.T) { testValidationErrorsCLI(t, e) })
		})
	}
}

func iamTags(kv ...string) []iamtypes.Tag {
	var out []iamtypes.Tag
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, iamtypes.Tag{Key: aws.String(kv[i]), Value: aws.String(kv[i+1])})
	}
	return out
}

func testABACPolicyResourceTags(t *testing.T, e *env) {
	ctx := context.Background()
	root := e.IAM(e.Root)
	// Team a's policies are the developer's to manage; anyone's may be
	// read; team b's are out of reach, read or not (the explicit Deny
	// beats the broad read Allow).
	dev := `{"Version":"2012-10-17","Statement":[
		{"Effect":"Allow","Action":["iam:GetPolicy","iam:GetPolicyVersion","iam:ListPolicyVersions","iam:CreatePolicyVersion",
			"iam:SetDefaultPolicyVersion","iam:DeletePolicyVersion","iam:DeletePolicy","iam:ListEntitiesForPolicy",
			"iam:TagPolicy","iam:UntagPolicy","iam:ListPolicyTags"],
		 "Resource":"arn:aws:iam::*:policy/*","Condition":{"StringEquals":{"aws:ResourceTag/team":"a"}}},
		{"Effect":"Allow","Action":["iam:GetPolicy","iam:ListPolicyTags"],"Resource":"*"},
		{"Effect":"Deny","Action":"iam:*","Resource":"*","Condition":{"StringEquals":{"aws:ResourceTag/team":"b"}}}]}`
	c := e.IAM(e.newUser(t, "pa-dev", dev))
	create := func(name string, tags ...string) *string {
		t.Helper()
		return harness.Must(root.CreatePolicy(ctx, &iam.CreatePolicyInput{PolicyName: aws.String(name), PolicyDocument: aws.String(adminDoc), Tags: iamTags(tags...)}))(t).Policy.Arn
	}
	pa, pb, pn, pdel := create("pa-a", "team", "a"), create("pa-b", "team", "b"), create("pa-none"), create("pa-del", "team", "a")
	denied := func(what string, err error) {
		t.Helper()
		if err == nil {
			t.Fatalf("%s: allowed, want AccessDenied", what)
		}
		harness.WantCode(t, err, "AccessDenied", 403)
	}
	ok := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	doc2 := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ec2:Describe*","Resource":"*"}]}`

	// Reads: team a and untagged by the broad Allow, team b denied.
	_, err := c.GetPolicy(ctx, &iam.GetPolicyInput{PolicyArn: pa})
	ok("GetPolicy team=a", err)
	_, err = c.GetPolicy(ctx, &iam.GetPolicyInput{PolicyArn: pn})
	ok("GetPolicy untagged", err)
	_, err = c.GetPolicy(ctx, &iam.GetPolicyInput{PolicyArn: pb})
	denied("GetPolicy team=b", err)
	_, err = c.ListPolicyTags(ctx, &iam.ListPolicyTagsInput{PolicyArn: pb})
	denied("ListPolicyTags team=b", err)

	// iam:ResourceTag/* is the user's and role's key, not the policy's
	// (AWS's Service Authorization Reference gives the policy resource
	// type aws:ResourceTag/* only): a grant conditioned on it never holds
	// for a policy, however the policy is tagged.
	iamKey := e.IAM(e.newUser(t, "pa-iamkey", `{"Version":"2012-10-17","Statement":[
		{"Effect":"Allow","Action":["iam:GetPolicy","iam:ListPolicyTags"],"Resource":"arn:aws:iam::*:policy/*",
		 "Condition":{"StringEquals":{"iam:ResourceTag/team":"a"}}}]}`))
	_, err = iamKey.GetPolicy(ctx, &iam.GetPolicyInput{PolicyArn: pa})
	denied("GetPolicy team=a on iam:ResourceTag/team", err)
	_, err = iamKey.ListPolicyTags(ctx, &iam.ListPolicyTagsInput{PolicyArn: pa})
	denied("ListPolicyTags team=a on iam:ResourceTag/team", err)

	// The version life cycle on team a's policy, allowed by its tag only.
	v := harness.Must(c.CreatePolicyVersion(ctx, &iam.CreatePolicyVersionInput{PolicyArn: pa, PolicyDocument: aws.String(doc2)}))(t).PolicyVersion
	_, err = c.GetPolicyVersion(ctx, &iam.GetPolicyVersionInput{PolicyArn: pa, VersionId: v.VersionId})
	ok("GetPolicyVersion team=a", err)
	vs := harness.Must(c.ListPolicyVersions(ctx, &iam.ListPolicyVersionsInput{PolicyArn: pa}))(t).Versions
	if len(vs) != 2 {
		t.Errorf("ListPolicyVersions team=a: %d versions, want 2", len(vs))
	}
	_, err = c.SetDefaultPolicyVersion(ctx, &iam.SetDefaultPolicyVersionInput{PolicyArn: pa, VersionId: v.VersionId})
	ok("SetDefaultPolicyVersion team=a", err)
	_, err = c.SetDefaultPolicyVersion(ctx, &iam.SetDefaultPolicyVersionInput{PolicyArn: pa, VersionId: aws.String("v1")})
	ok("SetDefaultPolicyVersion back", err)
	_, err = c.DeletePolicyVersion(ctx, &iam.DeletePolicyVersionInput{PolicyArn: pa, VersionId: v.VersionId})
	ok("DeletePolicyVersion team=a", err)
	_, err = c.ListEntitiesForPolicy(ctx, &iam.ListEntitiesForPolicyInput{PolicyArn: pa})
	ok("ListEntitiesForPolicy team=a", err)

	// The same on team b's (explicit Deny) and the untagged one (no Allow).
	for _, arn := range []*string{pb, pn} {
		_, err = c.CreatePolicyVersion(ctx, &iam.CreatePolicyVersionInput{PolicyArn: arn, PolicyDocument: aws.String(doc2)})
		denied("CreatePolicyVersion "+aws.ToString(arn), err)
		_, err = c.GetPolicyVersion(ctx, &iam.GetPolicyVersionInput{PolicyArn: arn, VersionId: aws.String("v1")})
		denied("GetPolicyVersion "+aws.ToString(arn), err)
		_, err = c.ListPolicyVersions(ctx, &iam.ListPolicyVersionsInput{PolicyArn: arn})
		denied("ListPolicyVersions "+aws.ToString(arn), err)
		_, err = c.SetDefaultPolicyVersion(ctx, &iam.SetDefaultPolicyVersionInput{PolicyArn: arn, VersionId: aws.String("v1")})
		denied("SetDefaultPolicyVersion "+aws.ToString(arn), err)
		_, err = c.DeletePolicyVersion(ctx, &iam.DeletePolicyVersionInput{PolicyArn: arn, VersionId: aws.String("v2")})
		denied("DeletePolicyVersion "+aws.ToString(arn), err)
		_, err = c.ListEntitiesForPolicy(ctx, &iam.ListEntitiesForPolicyInput{PolicyArn: arn})
		denied("ListEntitiesForPolicy "+aws.ToString(arn), err)
		_, err = c.DeletePolicy(ctx, &iam.DeletePolicyInput{PolicyArn: arn})
		denied("DeletePolicy "+aws.ToString(arn), err)
		_, err = c.TagPolicy(ctx, &iam.TagPolicyInput{PolicyArn: arn, Tags: iamTags("team", "a")})
		denied("TagPolicy "+aws.ToString(arn), err)
	}
	// A policy that does not exist has no tags: refused like the untagged
	// one, so the answer does not tell whether it exists.
	missing := aws.String("arn:aws:iam::" + e.Account + ":policy/pa-missing")
	_, err = c.CreatePolicyVersion(ctx, &iam.CreatePolicyVersionInput{PolicyArn: missing, PolicyDocument: aws.String(doc2)})
	denied("CreatePolicyVersion of a missing policy", err)

	// Tags of team a's policy: managed by the developer, listed.
	ok("TagPolicy team=a", func() error {
		_, err := c.TagPolicy(ctx, &iam.TagPolicyInput{PolicyArn: pa, Tags: iamTags("env", "dev")})
		return err
	}())
	got := harness.Must(c.ListPolicyTags(ctx, &iam.ListPolicyTagsInput{PolicyArn: pa}))(t).Tags
	if !slices.EqualFunc(got, iamTags("env", "dev", "team", "a"), func(a, b iamtypes.Tag) bool {
		return aws.ToString(a.Key) == aws.ToString(b.Key) && aws.ToString(a.Value) == aws.ToString(b.Value)
	}) {
		t.Errorf("ListPolicyTags team=a: %+v", got)
	}
	if p := harness.Must(c.GetPolicy(ctx, &iam.GetPolicyInput{PolicyArn: pa}))(t).Policy; len(p.Tags) != 2 {
		t.Errorf("GetPolicy team=a: %d tags, want 2", len(p.Tags))
	}
	ok("UntagPolicy team=a", func() error {
		_, err := c.UntagPolicy(ctx, &iam.UntagPolicyInput{PolicyArn: pa, TagKeys: []string{"env"}})
		return err
	}())
	ok("DeletePolicy team=a", func() error {
		_, err := c.DeletePolicy(ctx, &iam.DeletePolicyInput{PolicyArn: pdel})
		return err
	}())

	// Retagging moves a policy across at once, both ways.
	harness.Must(root.TagPolicy(ctx, &iam.TagPolicyInput{PolicyArn: pa, Tags: iamTags("team", "b")}))(t)
	_, err = c.GetPolicy(ctx, &iam.GetPolicyInput{PolicyArn: pa})
	denied("GetPolicy after retagging to team=b", err)
	harness.Must(root.UntagPolicy(ctx, &iam.UntagPolicyInput{PolicyArn: pb, TagKeys: []string{"TEAM"}}))(t) // keys in any case
	_, err = c.GetPolicy(ctx, &iam.GetPolicyInput{PolicyArn: pb})
	ok("GetPolicy after untagging team=b", err)
	if ts := harness.Must(root.ListPolicyTags(ctx, &iam.ListPolicyTagsInput{PolicyArn: pb}))(t).Tags; len(ts) != 0 {
		t.Errorf("ListPolicyTags after UntagPolicy TEAM: %+v", ts)
	}
	// A key differing only in case replaces the value, keeping the key.
	harness.Must(root.TagPolicy(ctx, &iam.TagPolicyInput{PolicyArn: pa, Tags: iamTags("Team", "a")}))(t)
	if ts := harness.Must(root.ListPolicyTags(ctx, &iam.ListPolicyTagsInput{PolicyArn: pa}))(t).Tags; len(ts) != 1 ||
		aws.ToString(ts[0].Key) != "team" || aws.ToString(ts[0].Value) != "a" {
		t.Errorf("ListPolicyTags after TagPolicy Team=a: %+v", ts)
	}
	_, err = c.GetPolicy(ctx, &iam.GetPolicyInput{PolicyArn: pa})
	ok("GetPolicy after retagging to team=a", err)

	// AWS-managed policies carry no tags of the account's.
	_, err = root.TagPolicy(ctx, &iam.TagPolicyInput{PolicyArn: aws.String(awsEIC), Tags: iamTags("team", "a")})
	harness.WantCode(t, err, "AccessDenied", 403)
	// At most 50 tags a policy: LimitExceeded once the sum passes it.
	var many []string
	for i := range 50 {
		many = append(many, "k"+string(rune('A'+i/26))+string(rune('a'+i%26)), "v")
	}
	_, err = root.TagPolicy(ctx, &iam.TagPolicyInput{PolicyArn: pn, Tags: iamTags(many...)})
	ok("TagPolicy with 50 tags", err)
	_, err = root.TagPolicy(ctx, &iam.TagPolicyInput{PolicyArn: pn, Tags: iamTags("one", "more")})
	harness.WantCode(t, err, "LimitExceeded", 409)
	_, err = root.TagPolicy(ctx, &iam.TagPolicyInput{PolicyArn: pn, Tags: iamTags("kAa", "overwritten")})
	ok("TagPolicy overwriting at 50", err)
	_, err = root.TagPolicy(ctx, &iam.TagPolicyInput{PolicyArn: pn, Tags: iamTags("dup", "1", "DUP", "2")})
	harness.WantCode(t, err, "InvalidInput", 400)
	_, err = root.TagPolicy(ctx, &iam.TagPolicyInput{PolicyArn: missing, Tags: iamTags("team", "a")})
	harness.WantCode(t, err, "NoSuchEntity", 404)
}

func testABACRequestTags(t *testing.T, e *env) {
	ctx := context.Background()
	root := e.IAM(e.Root)
	// Create and tag only with team=a and no key but team and env; untag
	// env only.
	dev := `{"Version":"2012-10-17","Statement":[
		{"Effect":"Allow","Action":["iam:CreateUser","iam:CreatePolicy","iam:TagUser","iam:TagPolicy"],"Resource":"*",
		 "Condition":{"StringEquals":{"aws:RequestTag/team":"a"},"ForAllValues:StringEquals":{"aws:TagKeys":["team","env"]}}},
		{"Effect":"Allow","Action":["iam:UntagUser","iam:UntagPolicy"],"Resource":"*",
		 "Condition":{"ForAllValues:StringEquals":{"aws:TagKeys":["env"]},"Null":{"aws:TagKeys":"false"}}}]}`
	c := e.IAM(e.newUser(t, "rt-dev", dev))
	denied := func(what string, err error) {
		t.Helper()
		if err == nil {
			t.Fatalf("%s: allowed, want AccessDenied", what)
		}
		harness.WantCode(t, err, "AccessDenied", 403)
	}
	ok := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	createUser := func(name string, tags ...string) error {
		_, err := c.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String(name), Tags: iamTags(tags...)})
		return err
	}
	createPolicy := func(name string, tags ...string) error {
		_, err := c.CreatePolicy(ctx, &iam.CreatePolicyInput{PolicyName: aws.String(name), PolicyDocument: aws.String(adminDoc), Tags: iamTags(tags...)})
		return err
	}
	for what, create := range map[string]func(string, ...string) error{"CreateUser": createUser, "CreatePolicy": createPolicy} {
		ok(what+" team=a", create("rt-"+what+"-a", "team", "a"))
		ok(what+" team=a env=x", create("rt-"+what+"-ae", "team", "a", "env", "x"))
		denied(what+" team=b", create("rt-"+what+"-b", "team", "b"))
		denied(what+" team=a owner=x", create("rt-"+what+"-ao", "team", "a", "owner", "x"))
		denied(what+" without tags", create("rt-"+what+"-none"))
	}
	policyARN := aws.String("arn:aws:iam::" + e.Account + ":policy/rt-CreatePolicy-a")

	_, err := c.TagUser(ctx, &iam.TagUserInput{UserName: aws.String("rt-CreateUser-a"), Tags: iamTags("team", "a", "env", "y")})
	ok("TagUser team=a", err)
	_, err = c.TagUser(ctx, &iam.TagUserInput{UserName: aws.String("rt-CreateUser-a"), Tags: iamTags("team", "b")})
	denied("TagUser team=b", err)
	_, err = c.TagUser(ctx, &iam.TagUserInput{UserName: aws.String("rt-CreateUser-a"), Tags: iamTags("env", "z")})
	denied("TagUser without team", err)
	_, err = c.TagPolicy(ctx, &iam.TagPolicyInput{PolicyArn: policyARN, Tags: iamTags("team", "a", "env", "y")})
	ok("TagPolicy team=a", err)
	_, err = c.TagPolicy(ctx, &iam.TagPolicyInput{PolicyArn: policyARN, Tags: iamTags("team", "b")})
	denied("TagPolicy team=b", err)
	_, err = c.TagPolicy(ctx, &iam.TagPolicyInput{PolicyArn: policyARN, Tags: iamTags("team", "a", "owner", "x")})
	denied("TagPolicy owner=x", err)

	_, err = c.UntagUser(ctx, &iam.UntagUserInput{UserName: aws.String("rt-CreateUser-a"), TagKeys: []string{"env"}})
	ok("UntagUser env", err)
	_, err = c.UntagUser(ctx, &iam.UntagUserInput{UserName: aws.String("rt-CreateUser-a"), TagKeys: []string{"team"}})
	denied("UntagUser team", err)
	_, err = c.UntagPolicy(ctx, &iam.UntagPolicyInput{PolicyArn: policyARN, TagKeys: []string{"env"}})
	ok("UntagPolicy env", err)
	_, err = c.UntagPolicy(ctx, &iam.UntagPolicyInput{PolicyArn: policyARN, TagKeys: []string{"env", "team"}})
	denied("UntagPolicy env team", err)
	if ts := harness.Must(root.ListPolicyTags(ctx, &iam.ListPolicyTagsInput{PolicyArn: policyARN}))(t).Tags; len(ts) != 1 || aws.ToString(ts[0].Key) != "team" {
		t.Errorf("the policy's tags after the requests: %+v", ts)
	}
}
