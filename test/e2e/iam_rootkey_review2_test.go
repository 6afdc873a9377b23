package e2e

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"

	"github.com/kaginashi/kaginashi/test/e2e/harness"
)

// TestRootCreateAccessKeyHasNoUserName (S6-H13): 1261226 made root's keys
// carry no UserName in ListAccessKeys and in CreateAccessKey's audit
// event, as IAM answers the root user's keys, but CreateAccessKey's own
// answer still had an empty <UserName/>, which the SDK reads as "" (and
// the aws CLI prints "UserName": "") rather than as absent.
func TestRootCreateAccessKeyHasNoUserName(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "sqlite")
	ctx := context.Background()
	root := e.IAM(e.Root)
	k := harness.Must(root.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{}))(t).AccessKey
	if k.UserName != nil {
		t.Errorf("CreateAccessKey as root: UserName %q, want none", aws.ToString(k.UserName))
	}
	harness.Must(root.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("rk-bob")}))(t)
	k = harness.Must(root.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String("rk-bob")}))(t).AccessKey
	if aws.ToString(k.UserName) != "rk-bob" {
		t.Errorf("CreateAccessKey for rk-bob: UserName %v", k.UserName)
	}
}
