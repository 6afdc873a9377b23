package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/kaginashi/kaginashi/test/e2e/harness"
)

// TestMFA runs virtual MFA devices end to end on each engine, as a user
// would set one up: with the AWS SDK for Go v2 and with the aws CLI
// (create-virtual-mfa-device --outfile), codes computed from the returned
// seed as an authenticator app would.
func TestMFA(t *testing.T) {
	t.Parallel()
	for _, engine := range harness.Engines {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			auditLog := filepath.Join(t.TempDir(), "audit.jsonl")
			e := &env{Server: harness.StartServer(t, engine, append([]string{"--audit-log", auditLog}, engineArgs[engine]...)...), auditLog: auditLog}
			seeds := map[string]string{}
			t.Run("SDK", func(t *testing.T) { testMFASDK(t, e, seeds) })
			t.Run("Policy", func(t *testing.T) { testMFAPolicy(t, e) })
			t.Run("CLI", func(t *testing.T) { testMFACLI(t, e, seeds) })
			t.Run("Audit", func(t *testing.T) { testMFAAudit(t, e, seeds) })
		})
	}
}

// totpAt is the code of a base32 seed at a time (RFC 6238: SHA-1, 30 s, 6
// digits, what kaginashi and AWS use).
func totpAt(t testing.TB, seed string, at time.Time) string {
	t.Helper()
	c, err := totp.GenerateCodeCustom(seed, at, totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// enableCodes are two consecutive codes, the later one of the current step.
func enableCodes(t testing.TB, seed string) (string, string) {
	now := time.Now()
	return totpAt(t, seed, now.Add(-30*time.Second)), totpAt(t, seed, now)
}

var base32SeedRE = regexp.MustCompile(`^[A-Z2-7]{64}$`)

func testMFASDK(t *testing.T, e *env, seeds map[string]string) {
	ctx := context.Background()
	c := e.IAM(e.Root)
	harness.Must(c.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("mfa-alice")}))(t)

	out := harness.Must(c.CreateVirtualMFADevice(ctx, &iam.CreateVirtualMFADeviceInput{
		VirtualMFADeviceName: aws.String("mfa-alice"),
		Tags:                 []iamtypes.Tag{{Key: aws.String("owner"), Value: aws.String("alice")}},
	}))(t)
	dev := out.VirtualMFADevice
	serial := aws.ToString(dev.SerialNumber)
	if serial != "arn:aws:iam::"+e.Account+":mfa/mfa-alice" {
		t.Errorf("SerialNumber %q", serial)
	}
	seed := string(dev.Base32StringSeed)
	if !base32SeedRE.MatchString(seed) {
		t.Fatalf("Base32StringSeed %q: want 64 base32 characters", seed)
	}
	seeds["sdk"] = seed
	if _, err := png.Decode(bytes.NewReader(dev.QRCodePNG)); err != nil {
		t.Errorf("QRCodePNG is no PNG: %v", err)
	}
	if len(dev.Tags) != 1 || aws.ToString(dev.Tags[0].Key) != "owner" {
		t.Errorf("Tags %+v", dev.Tags)
	}
	_, err := c.CreateVirtualMFADevice(ctx, &iam.CreateVirtualMFADeviceInput{VirtualMFADeviceName: aws.String("MFA-ALICE")})
	harness.WantTyped[*iamtypes.EntityAlreadyExistsException](t, err, 409)
	_, err = c.CreateVirtualMFADevice(ctx, &iam.CreateVirtualMFADeviceInput{VirtualMFADeviceName: aws.String("bad name")})
	harness.WantCode(t, err, "ValidationError", 400) // the model's pattern, as AWS

	// Unassigned, it is listed as such.
	un := harness.Must(c.ListVirtualMFADevices(ctx, &iam.ListVirtualMFADevicesInput{AssignmentStatus: iamtypes.AssignmentStatusTypeUnassigned}))(t)
	if len(un.VirtualMFADevices) != 1 || aws.ToString(un.VirtualMFADevices[0].SerialNumber) != serial ||
		un.VirtualMFADevices[0].User != nil || len(un.VirtualMFADevices[0].Base32StringSeed) != 0 {
		t.Errorf("ListVirtualMFADevices Unassigned: %+v", un.VirtualMFADevices)
	}

	// Enabling needs two consecutive codes.
	enable := func(user, c1, c2 string) error {
		_, err := c.EnableMFADevice(ctx, &iam.EnableMFADeviceInput{
			UserName: aws.String(user), SerialNumber: aws.String(serial),
			AuthenticationCode1: aws.String(c1), AuthenticationCode2: aws.String(c2),
		})
		return err
	}
	c1, c2 := enableCodes(t, seed)
	harness.WantTyped[*iamtypes.InvalidAuthenticationCodeException](t, enable("mfa-alice", c2, c2), 403)
	harness.WantTyped[*iamtypes.InvalidAuthenticationCodeException](t, enable("mfa-alice", c2, c1), 403)
	harness.WantTyped[*iamtypes.NoSuchEntityException](t, enable("mfa-nobody", c1, c2), 404)
	if err := enable("mfa-alice", c1, c2); err != nil {
		t.Fatalf("EnableMFADevice: %v", err)
	}
	harness.Must(c.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("mfa-bob")}))(t)
	c1, c2 = enableCodes(t, seed)
	harness.WantTyped[*iamtypes.EntityAlreadyExistsException](t, enable("mfa-bob", c1, c2), 409)

	list := harness.Must(c.ListMFADevices(ctx, &iam.ListMFADevicesInput{UserName: aws.String("mfa-alice")}))(t)
	if len(list.MFADevices) != 1 || aws.ToString(list.MFADevices[0].SerialNumber) != serial ||
		aws.ToString(list.MFADevices[0].UserName) != "mfa-alice" || list.MFADevices[0].EnableDate == nil ||
		time.Since(*list.MFADevices[0].EnableDate) > time.Minute {
		t.Errorf("ListMFADevices: %+v", list.MFADevices)
	}
	if other := harness.Must(c.ListMFADevices(ctx, &iam.ListMFADevicesInput{UserName: aws.String("mfa-bob")}))(t); len(other.MFADevices) != 0 {
		t.Errorf("ListMFADevices of a user without one: %+v", other.MFADevices)
	}
	_, err = c.ListMFADevices(ctx, &iam.ListMFADevicesInput{UserName: aws.String("mfa-nobody")})
	harness.WantTyped[*iamtypes.NoSuchEntityException](t, err, 404)
	as := harness.Must(c.ListVirtualMFADevices(ctx, &iam.ListVirtualMFADevicesInput{AssignmentStatus: iamtypes.AssignmentStatusTypeAssigned}))(t)
	if len(as.VirtualMFADevices) != 1 || as.VirtualMFADevices[0].User == nil ||
		aws.ToString(as.VirtualMFADevices[0].User.UserName) != "mfa-alice" || as.VirtualMFADevices[0].EnableDate == nil {
		t.Errorf("ListVirtualMFADevices Assigned: %+v", as.VirtualMFADevices)
	}

	// A device in use keeps its user, and itself, from being deleted.
	_, err = c.DeleteUser(ctx, &iam.DeleteUserInput{UserName: aws.String("mfa-alice")})
	harness.WantTyped[*iamtypes.DeleteConflictException](t, err, 409)
	_, err = c.DeleteVirtualMFADevice(ctx, &iam.DeleteVirtualMFADeviceInput{SerialNumber: aws.String(serial)})
	harness.WantTyped[*iamtypes.DeleteConflictException](t, err, 409)

	_, err = c.DeactivateMFADevice(ctx, &iam.DeactivateMFADeviceInput{UserName: aws.String("mfa-bob"), SerialNumber: aws.String(serial)})
	harness.WantTyped[*iamtypes.NoSuchEntityException](t, err, 404)
	harness.Must(c.DeactivateMFADevice(ctx, &iam.DeactivateMFADeviceInput{UserName: aws.String("mfa-alice"), SerialNumber: aws.String(serial)}))(t)
	if l := harness.Must(c.ListMFADevices(ctx, &iam.ListMFADevicesInput{UserName: aws.String("mfa-alice")}))(t); len(l.MFADevices) != 0 {
		t.Errorf("ListMFADevices after deactivating: %+v", l.MFADevices)
	}
	harness.Must(c.DeleteVirtualMFADevice(ctx, &iam.DeleteVirtualMFADeviceInput{SerialNumber: aws.String(serial)}))(t)
	_, err = c.DeleteVirtualMFADevice(ctx, &iam.DeleteVirtualMFADeviceInput{SerialNumber: aws.String(serial)})
	harness.WantTyped[*iamtypes.NoSuchEntityException](t, err, 404)
	harness.Must(c.DeleteUser(ctx, &iam.DeleteUserInput{UserName: aws.String("mfa-alice")}))(t)
}

// testMFAPolicy: AWS's self-service policy ("let users manage their own
// MFA device") works as on AWS: the device ARN and the user ARN are the
// resources.
func testMFAPolicy(t *testing.T, e *env) {
	ctx := context.Background()
	doc := harness.Doc(
		map[string]any{
			"Effect":   "Allow",
			"Action":   []string{"iam:CreateVirtualMFADevice", "iam:EnableMFADevice", "iam:DeleteVirtualMFADevice", "iam:ListMFADevices"},
			"Resource": []string{"arn:aws:iam::*:mfa/${aws:username}", "arn:aws:iam::*:user/${aws:username}"},
		},
		map[string]any{
			"Effect":   "Allow",
			"Action":   "iam:DeactivateMFADevice",
			"Resource": []string{"arn:aws:iam::*:mfa/${aws:username}", "arn:aws:iam::*:user/${aws:username}"},
			// Access keys carry no MFA: this one stays denied, as on AWS.
			"Condition": map[string]any{"Bool": map[string]any{"aws:MultiFactorAuthPresent": "true"}},
		},
		map[string]any{
			"Effect":   "Deny",
			"Action":   "iam:DeleteVirtualMFADevice",
			"Resource": "*",
			// aws:ResourceTag: the mfa resource type has no iam:ResourceTag
			// (AWS's Service Authorization Reference).
			"Condition": map[string]any{"StringEquals": map[string]any{"aws:ResourceTag/protected": "true"}},
		},
	)
	self := newUserWithPolicy(t, e, "mfa-self", doc)
	c := e.IAM(self)

	_, err := c.CreateVirtualMFADevice(ctx, &iam.CreateVirtualMFADeviceInput{VirtualMFADeviceName: aws.String("someone-else")})
	harness.WantCode(t, err, "AccessDenied", 403)
	// The device's tags are resource tags.
	out := harness.Must(c.CreateVirtualMFADevice(ctx, &iam.CreateVirtualMFADeviceInput{VirtualMFADeviceName: aws.String("mfa-self"),
		Tags: []iamtypes.Tag{{Key: aws.String("protected"), Value: aws.String("true")}}}))(t)
	_, err = c.DeleteVirtualMFADevice(ctx, &iam.DeleteVirtualMFADeviceInput{SerialNumber: out.VirtualMFADevice.SerialNumber})
	harness.WantCode(t, err, "AccessDenied", 403)
	harness.Must(e.IAM(e.Root).DeleteVirtualMFADevice(ctx, &iam.DeleteVirtualMFADeviceInput{SerialNumber: out.VirtualMFADevice.SerialNumber}))(t)

	out = harness.Must(c.CreateVirtualMFADevice(ctx, &iam.CreateVirtualMFADeviceInput{VirtualMFADeviceName: aws.String("mfa-self")}))(t)
	serial := aws.ToString(out.VirtualMFADevice.SerialNumber)
	c1, c2 := enableCodes(t, string(out.VirtualMFADevice.Base32StringSeed))
	_, err = c.EnableMFADevice(ctx, &iam.EnableMFADeviceInput{UserName: aws.String("mfa-other"), SerialNumber: aws.String(serial),
		AuthenticationCode1: aws.String(c1), AuthenticationCode2: aws.String(c2)})
	harness.WantCode(t, err, "AccessDenied", 403)
	harness.Must(c.EnableMFADevice(ctx, &iam.EnableMFADeviceInput{UserName: aws.String("mfa-self"), SerialNumber: aws.String(serial),
		AuthenticationCode1: aws.String(c1), AuthenticationCode2: aws.String(c2)}))(t)
	// Without UserName, ListMFADevices is about the caller.
	mine := harness.Must(c.ListMFADevices(ctx, &iam.ListMFADevicesInput{}))(t)
	if len(mine.MFADevices) != 1 || aws.ToString(mine.MFADevices[0].UserName) != "mfa-self" {
		t.Errorf("own ListMFADevices: %+v", mine.MFADevices)
	}
	_, err = c.ListVirtualMFADevices(ctx, &iam.ListVirtualMFADevicesInput{})
	harness.WantCode(t, err, "AccessDenied", 403)
	_, err = c.DeactivateMFADevice(ctx, &iam.DeactivateMFADeviceInput{SerialNumber: aws.String(serial)})
	harness.WantCode(t, err, "AccessDenied", 403)

	// Root cleans up.
	r := e.IAM(e.Root)
	harness.Must(r.DeactivateMFADevice(ctx, &iam.DeactivateMFADeviceInput{UserName: aws.String("mfa-self"), SerialNumber: aws.String(serial)}))(t)
	harness.Must(c.DeleteVirtualMFADevice(ctx, &iam.DeleteVirtualMFADeviceInput{SerialNumber: aws.String(serial)}))(t)
}

// newUserWithPolicy creates a user with one inline policy and a key.
func newUserWithPolicy(t *testing.T, e *env, name, doc string) harness.Creds {
	t.Helper()
	ctx := context.Background()
	c := e.IAM(e.Root)
	harness.Must(c.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String(name)}))(t)
	harness.Must(c.PutUserPolicy(ctx, &iam.PutUserPolicyInput{UserName: aws.String(name), PolicyName: aws.String("mfa"), PolicyDocument: aws.String(doc)}))(t)
	k := harness.Must(c.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String(name)}))(t).AccessKey
	return harness.Creds{Who: name, ID: aws.ToString(k.AccessKeyId), Secret: aws.ToString(k.SecretAccessKey)}
}

// testMFACLI: the aws CLI's own customization writes the seed or the QR
// code to a file (--outfile, --bootstrap-method), from the base64 blobs.
func testMFACLI(t *testing.T, e *env, seeds map[string]string) {
	if _, err := exec.LookPath("aws"); err != nil {
		t.Fatalf("the aws CLI is not installed: %v", err)
	}
	dir := t.TempDir()
	writeCredentials(t, filepath.Join(dir, "credentials"), map[string]harness.Creds{"kaginashi-root": e.Root})
	env := e.cliEnv(t, dir, "AWS_PROFILE=kaginashi-root", "AWS_ENDPOINT_URL="+e.URL(), "AWS_CA_BUNDLE="+e.CAPath())
	aws := func(t *testing.T, v any, args ...string) {
		t.Helper()
		r := run(t, env, "aws", append([]string{"--output", "json", "iam"}, args...)...)
		if r.code != 0 {
			t.Fatalf("aws iam %s: exit %d\nstderr: %s", strings.Join(args, " "), r.code, r.stderr)
		}
		if v != nil {
			if err := json.Unmarshal([]byte(r.stdout), v); err != nil {
				t.Fatalf("aws iam %s: %v\nstdout: %s", args[0], err, r.stdout)
			}
		}
	}
	aws(t, nil, "create-user", "--user-name", "mfa-cli")

	seedFile, qrFile := filepath.Join(dir, "seed.txt"), filepath.Join(dir, "qr.png")
	var out struct{ VirtualMFADevice struct{ SerialNumber string } }
	aws(t, &out, "create-virtual-mfa-device", "--virtual-mfa-device-name", "mfa-cli",
		"--outfile", seedFile, "--bootstrap-method", "Base32StringSeed")
	created := out.VirtualMFADevice
	if created.SerialNumber != "arn:aws:iam::"+e.Account+":mfa/mfa-cli" {
		t.Errorf("create-virtual-mfa-device: %+v", out)
	}
	b, err := os.ReadFile(seedFile)
	if err != nil {
		t.Fatal(err)
	}
	seed := string(b)
	if !base32SeedRE.MatchString(seed) {
		t.Fatalf("--outfile with Base32StringSeed wrote %q", b)
	}
	seeds["cli"] = seed
	aws(t, nil, "create-virtual-mfa-device", "--virtual-mfa-device-name", "mfa-cli-qr",
		"--outfile", qrFile, "--bootstrap-method", "QRCodePNG")
	q, err := os.Open(qrFile)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	if _, err := png.Decode(q); err != nil {
		t.Errorf("--outfile with QRCodePNG wrote no PNG: %v", err)
	}

	c1, c2 := enableCodes(t, seed)
	aws(t, nil, "enable-mfa-device", "--user-name", "mfa-cli", "--serial-number", created.SerialNumber,
		"--authentication-code1", c1, "--authentication-code2", c2)
	var list struct {
		MFADevices []struct{ UserName, SerialNumber, EnableDate string }
	}
	aws(t, &list, "list-mfa-devices", "--user-name", "mfa-cli")
	if len(list.MFADevices) != 1 || list.MFADevices[0].SerialNumber != created.SerialNumber || list.MFADevices[0].EnableDate == "" {
		t.Errorf("list-mfa-devices: %+v", list)
	}
	var virt struct {
		VirtualMFADevices []struct {
			SerialNumber string
			User         *struct{ UserName string }
		}
	}
	aws(t, &virt, "list-virtual-mfa-devices")
	if len(virt.VirtualMFADevices) != 2 {
		t.Errorf("list-virtual-mfa-devices: %+v", virt)
	}
	r := run(t, env, "aws", "iam", "delete-user", "--user-name", "mfa-cli")
	if r.code == 0 || !strings.Contains(r.stderr, "DeleteConflict") {
		t.Errorf("delete-user with an MFA device: exit %d, %s", r.code, r.stderr)
	}
	r = run(t, env, "aws", "iam", "enable-mfa-device", "--user-name", "mfa-cli", "--serial-number",
		"arn:aws:iam::"+e.Account+":mfa/mfa-cli-qr", "--authentication-code1", "000000", "--authentication-code2", "000000")
	if r.code == 0 || !strings.Contains(r.stderr, "InvalidAuthenticationCode") {
		t.Errorf("enable-mfa-device with wrong codes: exit %d, %s", r.code, r.stderr)
	}
	aws(t, nil, "deactivate-mfa-device", "--user-name", "mfa-cli", "--serial-number", created.SerialNumber)
	aws(t, nil, "delete-virtual-mfa-device", "--serial-number", created.SerialNumber)
	aws(t, nil, "delete-virtual-mfa-device", "--serial-number", "arn:aws:iam::"+e.Account+":mfa/mfa-cli-qr")
	aws(t, nil, "delete-user", "--user-name", "mfa-cli")
}

// testMFAAudit: every MFA call is in the audit trail, and no seed is.
func testMFAAudit(t *testing.T, e *env, seeds map[string]string) {
	want := []string{"CreateVirtualMFADevice", "EnableMFADevice", "ListMFADevices", "ListVirtualMFADevices", "DeactivateMFADevice", "DeleteVirtualMFADevice"}
	var log []byte
	deadline := time.Now().Add(10 * time.Second)
	for {
		var err error
		if log, err = os.ReadFile(e.auditLog); err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		missing := ""
		for _, name := range want {
			if !bytes.Contains(log, []byte(`"eventName":"`+name+`"`)) {
				missing = name
			}
		}
		if missing == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s event in the audit log", missing)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(seeds) == 0 {
		t.Fatal("no seeds to look for: the SDK and CLI subtests did not run")
	}
	for from, seed := range seeds {
		if bytes.Contains(log, []byte(seed)) {
			t.Errorf("the %s device's seed is in the audit log", from)
		}
	}
}
