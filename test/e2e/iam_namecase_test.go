package e2e

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"

	"github.com/kaginashi/kaginashi/test/e2e/harness"
)

// TestIAMNameCase: IAM user and group names (and MFA serial numbers) are
// unique without regard to case, and a call may spell them in any case;
// what it is authorized on and answered with is the stored entity — its
// own ARN (path and name as stored) and its own name — so that an Allow
// or a Deny on that ARN applies whatever the caller's spelling, while a
// caller without permission still hears AccessDenied, not NoSuchEntity,
// for an entity that does not exist. (The red team's Deny-dodging case is
// TestRedTeamOpenFindings/IAMNameCaseDoesNotDodgeDeny.)
func TestIAMNameCase(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "sqlite")
	ctx := context.Background()
	root := e.IAM(e.Root)
	arn := func(rest string) string { return "arn:aws:iam::" + e.Account + ":" + rest }
	harness.Must(root.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("Nc-Alice"), Path: aws.String("/eng/")}))(t)
	harness.Must(root.CreateGroup(ctx, &iam.CreateGroupInput{GroupName: aws.String("Nc-Ops"), Path: aws.String("/eng/")}))(t)

	// Answers name the user as stored.
	k := harness.Must(root.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String("nc-alice")}))(t).AccessKey
	e.keepSecret(aws.ToString(k.SecretAccessKey))
	if got := aws.ToString(k.UserName); got != "Nc-Alice" {
		t.Errorf("CreateAccessKey UserName=nc-alice answered UserName %q, want the stored Nc-Alice", got)
	}
	ks := harness.Must(root.ListAccessKeys(ctx, &iam.ListAccessKeysInput{UserName: aws.String("NC-ALICE")}))(t)
	if len(ks.AccessKeyMetadata) != 1 || aws.ToString(ks.AccessKeyMetadata[0].UserName) != "Nc-Alice" {
		t.Errorf("ListAccessKeys UserName=NC-ALICE: %+v, want one key of the stored Nc-Alice", ks.AccessKeyMetadata)
	}

	// An Allow on the stored ARN applies whatever the spelling (the
	// caller's spelling in the ARN would match nothing).
	bob := e.IAM(e.newUser(t, "nc-bob", harness.Doc(
		map[string]any{"Effect": "Allow", "Action": []string{"iam:ListAccessKeys", "iam:SimulatePrincipalPolicy"}, "Resource": arn("user/eng/Nc-Alice")},
		map[string]any{"Effect": "Allow", "Action": "iam:GetGroup", "Resource": arn("group/eng/Nc-Ops")},
	)))
	for _, n := range []string{"Nc-Alice", "nc-alice", "NC-ALICE"} {
		if _, err := bob.ListAccessKeys(ctx, &iam.ListAccessKeysInput{UserName: aws.String(n)}); err != nil {
			t.Errorf("ListAccessKeys UserName=%s with an Allow on user/eng/Nc-Alice: %v", n, err)
		}
	}
	for _, n := range []string{"Nc-Ops", "nc-ops", "NC-OPS"} {
		g, err := bob.GetGroup(ctx, &iam.GetGroupInput{GroupName: aws.String(n)})
		if err != nil {
			t.Errorf("GetGroup GroupName=%s with an Allow on group/eng/Nc-Ops: %v", n, err)
		} else if aws.ToString(g.Group.GroupName) != "Nc-Ops" {
			t.Errorf("GetGroup GroupName=%s answered %q", n, aws.ToString(g.Group.GroupName))
		}
	}
	// SimulatePrincipalPolicy names the user by ARN: the stored user's
	// ARN is what is authorized, whatever path and case the caller gave.
	if _, err := bob.SimulatePrincipalPolicy(ctx, &iam.SimulatePrincipalPolicyInput{
		PolicySourceArn: aws.String(arn("user/NC-ALICE")), ActionNames: []string{"ec2:DescribeInstances"}}); err != nil {
		t.Errorf("SimulatePrincipalPolicy user/NC-ALICE with an Allow on user/eng/Nc-Alice: %v", err)
	}

	// Existence does not leak: without permission on it, a user or group
	// that does not exist is AccessDenied; with it, NoSuchEntity.
	_, err := bob.ListAccessKeys(ctx, &iam.ListAccessKeysInput{UserName: aws.String("nc-nobody")})
	harness.WantCode(t, err, "AccessDenied", 403)
	_, err = bob.GetGroup(ctx, &iam.GetGroupInput{GroupName: aws.String("nc-nogroup")})
	harness.WantCode(t, err, "AccessDenied", 403)
	_, err = bob.SimulatePrincipalPolicy(ctx, &iam.SimulatePrincipalPolicyInput{
		PolicySourceArn: aws.String(arn("user/nc-nobody")), ActionNames: []string{"ec2:DescribeInstances"}})
	harness.WantCode(t, err, "AccessDenied", 403)
	_, err = root.ListAccessKeys(ctx, &iam.ListAccessKeysInput{UserName: aws.String("nc-nobody")})
	harness.WantCode(t, err, "NoSuchEntity", 404)

	// MFA serial numbers are found without regard to case too: a Deny on
	// the device's ARN holds against its serial number in capitals.
	dev := harness.Must(root.CreateVirtualMFADevice(ctx, &iam.CreateVirtualMFADeviceInput{VirtualMFADeviceName: aws.String("nc-device")}))(t)
	mallory := e.IAM(e.newUser(t, "nc-mallory", harness.Doc(
		map[string]any{"Effect": "Allow", "Action": "iam:DeleteVirtualMFADevice", "Resource": "*"},
		map[string]any{"Effect": "Deny", "Action": "iam:DeleteVirtualMFADevice", "Resource": arn("mfa/nc-device")},
	)))
	for _, s := range []string{arn("mfa/nc-device"), arn("mfa/NC-DEVICE")} {
		_, err := mallory.DeleteVirtualMFADevice(ctx, &iam.DeleteVirtualMFADeviceInput{SerialNumber: aws.String(s)})
		if err == nil {
			t.Fatalf("DeleteVirtualMFADevice %s: deleted %s despite the Deny on it", s, aws.ToString(dev.VirtualMFADevice.SerialNumber))
		}
		harness.WantCode(t, err, "AccessDenied", 403)
	}
}
