package e2e

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/iam/types"

	"github.com/kaginashi/kaginashi/test/e2e/harness"
)

// TestIAMTagKeysCarryStoredSpelling: IAM tag keys ignore case — TagUser
// with team=… overwrites the user's Team tag, UntagUser TEAM removes it —
// so aws:TagKeys must name the tag as the user has it, not only as the
// caller spelled it. A Deny on changing Team (ForAnyValue:StringEquals
// aws:TagKeys ["Team"], the limit policy validate's
// IAM_PRIVILEGE_ESCALATION finding asks for) was dodged by spelling it
// team: the condition compares values case-sensitively, the service does
// not.
func TestIAMTagKeysCarryStoredSpelling(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "sqlite")
	ctx := context.Background()
	root := e.IAM(e.Root)
	harness.Must(root.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("tk-target"),
		Tags: []types.Tag{{Key: aws.String("Team"), Value: aws.String("ops")}}}))(t)
	mallory := e.IAM(e.newUser(t, "tk-mallory", harness.Doc(
		map[string]any{"Effect": "Allow", "Action": []string{"iam:TagUser", "iam:UntagUser", "iam:ListUserTags"}, "Resource": "*"},
		map[string]any{"Effect": "Deny", "Action": []string{"iam:TagUser", "iam:UntagUser"}, "Resource": "*",
			"Condition": map[string]any{"ForAnyValue:StringEquals": map[string]any{"aws:TagKeys": []string{"Team"}}}},
	)))
	// The Deny holds as written…
	_, err := mallory.TagUser(ctx, &iam.TagUserInput{UserName: aws.String("tk-target"), Tags: []types.Tag{{Key: aws.String("Team"), Value: aws.String("admin")}}})
	harness.WantCode(t, err, "AccessDenied", 403)
	// …and whatever the spelling of the key.
	_, err = mallory.TagUser(ctx, &iam.TagUserInput{UserName: aws.String("tk-target"), Tags: []types.Tag{{Key: aws.String("team"), Value: aws.String("admin")}}})
	harness.WantCode(t, err, "AccessDenied", 403)
	_, err = mallory.UntagUser(ctx, &iam.UntagUserInput{UserName: aws.String("tk-target"), TagKeys: []string{"TEAM"}})
	harness.WantCode(t, err, "AccessDenied", 403)
	tags := harness.Must(root.ListUserTags(ctx, &iam.ListUserTagsInput{UserName: aws.String("tk-target")}))(t).Tags
	if len(tags) != 1 || aws.ToString(tags[0].Key) != "Team" || aws.ToString(tags[0].Value) != "ops" {
		t.Errorf("tk-target's tags after the denied calls: %+v, want Team=ops", tags)
	}
	// Other keys are still Mallory's to set and remove.
	harness.Must(mallory.TagUser(ctx, &iam.TagUserInput{UserName: aws.String("tk-target"), Tags: []types.Tag{{Key: aws.String("note"), Value: aws.String("x")}}}))(t)
	harness.Must(mallory.UntagUser(ctx, &iam.UntagUserInput{UserName: aws.String("tk-target"), TagKeys: []string{"NOTE"}}))(t)
}

// TestIAMRequestTagCarriesStoredSpelling: IAM matches tag keys with
// Unicode case folding (ſensitivity is Sensitivity, the Kelvin sign K is
// k), while condition keys are lower-cased, which leaves ſ and K alone: a
// TagUser with ſensitivity=low overwrote the user's Sensitivity tag while
// a Deny on aws:RequestTag/Sensitivity never saw it. The request's tags
// are condition keys under the spelling they will be stored with, too.
func TestIAMRequestTagCarriesStoredSpelling(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "sqlite")
	ctx := context.Background()
	root := e.IAM(e.Root)
	harness.Must(root.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("tk-data"),
		Tags: []types.Tag{{Key: aws.String("Sensitivity"), Value: aws.String("high")}}}))(t)
	mallory := e.IAM(e.newUser(t, "tk-mallory2", harness.Doc(
		map[string]any{"Effect": "Allow", "Action": []string{"iam:TagUser"}, "Resource": "*"},
		map[string]any{"Effect": "Deny", "Action": []string{"iam:TagUser"}, "Resource": "*",
			"Condition": map[string]any{"StringEquals": map[string]any{"aws:RequestTag/Sensitivity": "low"}}},
	)))
	for _, k := range []string{"Sensitivity", "sensitivity", "\u017fensitivity"} {
		_, err := mallory.TagUser(ctx, &iam.TagUserInput{UserName: aws.String("tk-data"), Tags: []types.Tag{{Key: aws.String(k), Value: aws.String("low")}}})
		if err == nil {
			t.Errorf("TagUser %q=low passed a Deny on aws:RequestTag/Sensitivity=low", k)
		}
	}
	tags := harness.Must(root.ListUserTags(ctx, &iam.ListUserTagsInput{UserName: aws.String("tk-data")}))(t).Tags
	if len(tags) != 1 || aws.ToString(tags[0].Value) != "high" {
		t.Errorf("tk-data's tags after the denied calls: %+v, want Sensitivity=high", tags)
	}
}
