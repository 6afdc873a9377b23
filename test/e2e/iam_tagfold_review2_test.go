package e2e

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/iam/types"

	"github.com/kaginashi/kaginashi/test/e2e/harness"
)

// TestIAMTagFoldedDuplicateKeys (S6-H13): iam's mergeTags matches a
// request's keys to the user's with Unicode case folding, so Acceſs (long
// s) and Access in one TagUser both land on the user's Access tag, the
// last one winning; checkTags only lower-cases, so it let the pair
// through. aws:RequestTag/Access then carried Acceſs's value (51a7e98's
// stored spelling, set after the request's own), not the one written
// last: a Deny on aws:RequestTag/Access=admin was passed by
// [Acceſs=readonly, Access=admin] and the user got Access=admin (SQLite;
// PostgreSQL answered an internal error: ON CONFLICT cannot affect a row
// twice). Such a request is refused, as IAM does duplicate keys ("Tag
// keys are case insensitive"), on every engine.
func TestIAMTagFoldedDuplicateKeys(t *testing.T) {
	t.Parallel()
	for _, engine := range []string{"sqlite", "postgres"} {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, engine)
			ctx := context.Background()
			root := e.IAM(e.Root)
			harness.Must(root.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("tf-target"),
				Tags: []types.Tag{{Key: aws.String("Access"), Value: aws.String("readonly")}}}))(t)
			mallory := e.IAM(e.newUser(t, "tf-mallory", harness.Doc(
				map[string]any{"Effect": "Allow", "Action": []string{"iam:TagUser", "iam:CreateUser"}, "Resource": "*"},
				map[string]any{"Effect": "Deny", "Action": []string{"iam:TagUser", "iam:CreateUser"}, "Resource": "*",
					"Condition": map[string]any{"StringEquals": map[string]any{"aws:RequestTag/Access": "admin"}}},
			)))
			for _, pair := range [][2]string{{"Acce\u017fs", "Access"}, {"Access", "Acce\u017fs"}, {"ACCESS", "acce\u017fs"}} {
				_, err := mallory.TagUser(ctx, &iam.TagUserInput{UserName: aws.String("tf-target"), Tags: []types.Tag{
					{Key: aws.String(pair[0]), Value: aws.String("readonly")}, {Key: aws.String(pair[1]), Value: aws.String("admin")}}})
				if err == nil {
					got := harness.Must(root.ListUserTags(ctx, &iam.ListUserTagsInput{UserName: aws.String("tf-target")}))(t).Tags
					t.Errorf("TagUser %s=readonly, %s=admin passed a Deny on aws:RequestTag/Access=admin; the user's tags: %s", pair[0], pair[1], tagList(got))
					continue
				}
				harness.WantCode(t, err, "InvalidInput", 400)
			}
			tags := harness.Must(root.ListUserTags(ctx, &iam.ListUserTagsInput{UserName: aws.String("tf-target")}))(t).Tags
			if len(tags) != 1 || aws.ToString(tags[0].Key) != "Access" || aws.ToString(tags[0].Value) != "readonly" {
				t.Errorf("tf-target's tags after the refused calls: %s, want Access=readonly", tagList(tags))
			}
			// A new user cannot be made with both spellings either: it would
			// carry two tags that IAM's own matching takes for one.
			_, err := mallory.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("tf-new"), Tags: []types.Tag{
				{Key: aws.String("Acce\u017fs"), Value: aws.String("readonly")}, {Key: aws.String("Access"), Value: aws.String("x")}}})
			harness.WantCode(t, err, "InvalidInput", 400)
			// One spelling per key is fine, whatever it is.
			harness.Must(mallory.TagUser(ctx, &iam.TagUserInput{UserName: aws.String("tf-target"), Tags: []types.Tag{
				{Key: aws.String("Acce\u017fs"), Value: aws.String("readonly")}, {Key: aws.String("note"), Value: aws.String("x")}}}))(t)
		})
	}
}

func tagList(tags []types.Tag) string {
	var s string
	for _, t := range tags {
		s += aws.ToString(t.Key) + "=" + aws.ToString(t.Value) + " "
	}
	return s
}
