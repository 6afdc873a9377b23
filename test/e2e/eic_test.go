package e2e

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	eic "github.com/aws/aws-sdk-go-v2/service/ec2instanceconnect"
	eictypes "github.com/aws/aws-sdk-go-v2/service/ec2instanceconnect/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"golang.org/x/crypto/ssh"

	"github.com/kaginashi/kaginashi/internal/store"

	"github.com/kaginashi/kaginashi/test/e2e/harness"
)

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

func sendKey(c *eic.Client, instance, osUser, key string) (*eic.SendSSHPublicKeyOutput, error) {
	return c.SendSSHPublicKey(context.Background(), &eic.SendSSHPublicKeyInput{
		InstanceId: aws.String(instance), InstanceOSUser: aws.String(osUser), SSHPublicKey: aws.String(key),
	})
}

// wantPushed asserts a successful push and returns its request ID.
func wantPushed(out *eic.SendSSHPublicKeyOutput, err error) func(t *testing.T) string {
	return func(t *testing.T) string {
		t.Helper()
		if err != nil {
			t.Fatalf("SendSSHPublicKey: %v", err)
		}
		if !out.Success || !uuidRE.MatchString(aws.ToString(out.RequestId)) {
			t.Fatalf("SendSSHPublicKey: success %v, request ID %q", out.Success, aws.ToString(out.RequestId))
		}
		return aws.ToString(out.RequestId)
	}
}

// canonical is a key line as the server stores it: type and base64.
func canonical(t testing.TB, line string) (string, string) {
	t.Helper()
	k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k))), ssh.FingerprintSHA256(k)
}

// keyRecord finds a pushed key's record by request ID among the active
// ones at instant at.
func (e *env) keyRecord(t *testing.T, instance, osUser, requestID string, at time.Time) (store.KeyRecord, bool) {
	t.Helper()
	recs, err := e.st.ActiveKeyRecords(context.Background(), instance, osUser, at)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if r.RequestID == requestID {
			return r, true
		}
	}
	return store.KeyRecord{}, false
}

func testEICErrors(t *testing.T, e *env) {
	c := e.EIC(e.Root)
	nobody := e.newUser(t, "eic-nobody")
	good := harness.Ed25519Key(t)
	// invalid asserts InvalidArgsException saying why (why, in its message).
	invalid := func(why string) func(t *testing.T, err error) {
		return func(t *testing.T, err error) {
			t.Helper()
			ie := harness.WantTyped[*eictypes.InvalidArgsException](t, err, 400)
			if !strings.Contains(ie.ErrorMessage(), why) {
				t.Errorf("InvalidArgsException %q does not say %q", ie.ErrorMessage(), why)
			}
		}
	}
	const keyInvalid = "SSH Public key is invalid"
	for _, tc := range []struct {
		name     string
		client   *eic.Client
		instance string
		osUser   string
		key      string
		check    func(t *testing.T, err error)
	}{
		{"EC2InstanceNotFoundException", c, missingID, "ec2-user", good, func(t *testing.T, err error) {
			harness.WantTyped[*eictypes.EC2InstanceNotFoundException](t, err, 404)
		}},
		{"EC2InstanceUnavailableException: stopped (its agent is not connected)", c, instanceID(3), "ec2-user", good, func(t *testing.T, err error) {
			harness.WantTyped[*eictypes.EC2InstanceUnavailableException](t, err, 503)
		}},
		{"AuthException: no policy", e.EIC(nobody), instanceID(1), "ec2-user", good, func(t *testing.T, err error) {
			ae := harness.WantTyped[*eictypes.AuthException](t, err, 403)
			if !strings.Contains(ae.ErrorMessage(), "ec2-instance-connect:SendSSHPublicKey") {
				t.Errorf("AuthException message does not name the action: %q", ae.ErrorMessage())
			}
		}},
		{"InvalidArgs: key too short", c, instanceID(1), "ec2-user", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5", invalid("80 to 4096")},
		{"InvalidArgs: key too long", c, instanceID(1), "ec2-user", good + strings.Repeat("c", 4096), invalid("80 to 4096")},
		{"InvalidArgs: sk-ssh-ed25519@openssh.com", c, instanceID(1), "ec2-user", skEd25519Key(t), invalid("security-key")},
		{"InvalidArgs: options", c, instanceID(1), "ec2-user", `command="x" ` + good, invalid("options are not allowed")},
		{"InvalidArgs: from= option", c, instanceID(1), "ec2-user", `from="10.0.0.0/8" ` + good, invalid("options are not allowed")},
		{"InvalidArgs: a second line", c, instanceID(1), "ec2-user", good + "\n" + harness.Ed25519Key(t), invalid("second line")},
		{"InvalidArgs: a second line after CRLF", c, instanceID(1), "ec2-user", good + "\r\n" + harness.Ed25519Key(t), invalid("second line")},
		{"InvalidArgs: control character", c, instanceID(1), "ec2-user", good + "\x01", invalid("control character")},
		{"InvalidArgs: RSA 1024", c, instanceID(1), "ec2-user", rsaKey(t, 1024), invalid("2048")},
		{"InvalidArgs: not base64", c, instanceID(1), "ec2-user", "ssh-ed25519 " + strings.Repeat("!", 80), invalid(keyInvalid)},
		{"InvalidArgs: type mismatch", c, instanceID(1), "ec2-user", "ssh-rsa " + strings.Fields(good)[1] + " mismatch@e2e", invalid(keyInvalid)},
		{"InvalidArgs: malformed instance ID", c, "i-NOTHEX0000", "ec2-user", good, invalid("InstanceId")},
		{"InvalidArgs: malformed OS user", c, instanceID(1), "bad user!", good, invalid("OS user")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := sendKey(tc.client, tc.instance, tc.osUser, tc.key)
			tc.check(t, err)
		})
	}
	t.Run("InvalidArgs: AvailabilityZone", func(t *testing.T) {
		_, err := c.SendSSHPublicKey(context.Background(), &eic.SendSSHPublicKeyInput{
			InstanceId: aws.String(instanceID(1)), InstanceOSUser: aws.String("ec2-user"), SSHPublicKey: aws.String(good), AvailabilityZone: aws.String("nowhere"),
		})
		invalid("AvailabilityZone")(t, err)
	})
	t.Run("SerialConsoleAccessDisabledException", func(t *testing.T) {
		_, err := c.SendSerialConsoleSSHPublicKey(context.Background(), &eic.SendSerialConsoleSSHPublicKeyInput{
			InstanceId: aws.String(instanceID(1)), SSHPublicKey: aws.String(good),
		})
		se := harness.WantTyped[*eictypes.SerialConsoleAccessDisabledException](t, err, 403)
		if !strings.Contains(se.ErrorMessage(), "serial console") {
			t.Errorf("message is not clear: %q", se.ErrorMessage())
		}
	})
	// Nothing refused was stored.
	recs, err := e.st.ActiveKeyRecords(context.Background(), instanceID(1), "", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if strings.Contains(good, strings.Fields(r.PublicKey)[1]) || r.OSUser == "bad user!" {
			t.Errorf("a refused key was stored: %+v", r)
		}
	}
}

func testEICKeys(t *testing.T, e *env) {
	c := e.EIC(e.Root)
	i2 := instanceID(2)
	for _, tc := range []struct{ name, key string }{
		{"ed25519", harness.Ed25519Key(t)},
		{"ed25519 with the trailing newline file:// sends", harness.Ed25519Key(t) + "\n"},
		{"ed25519 without comment", strings.Join(strings.Fields(harness.Ed25519Key(t))[:2], " ")},
		{"ecdsa-sha2-nistp256", ecdsaKey(t)},
		{"ssh-rsa 2048", rsaKey(t, 2048)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := time.Now()
			id := wantPushed(sendKey(c, i2, "ec2-user", tc.key))(t)
			rec, found := e.keyRecord(t, i2, "ec2-user", id, time.Now())
			if !found {
				t.Fatalf("no active key record for request %s", id)
			}
			line, fp := canonical(t, strings.TrimSpace(tc.key))
			if rec.PublicKey != line || rec.Fingerprint != fp || rec.CallerARN != "arn:aws:iam::"+e.Account+":root" || rec.OSUser != "ec2-user" {
				t.Errorf("record: %+v\nwant key %q fingerprint %s", rec, line, fp)
			}
			if rec.CreatedAt.Before(before.Add(-2*time.Second)) || rec.ExpiresAt.Sub(rec.CreatedAt) != 60*time.Second {
				t.Errorf("record lifetime: created %v expires %v", rec.CreatedAt, rec.ExpiresAt)
			}
		})
	}
	t.Run("with AvailabilityZone", func(t *testing.T) {
		out, err := c.SendSSHPublicKey(context.Background(), &eic.SendSSHPublicKeyInput{
			InstanceId: aws.String(i2), InstanceOSUser: aws.String("admin"), SSHPublicKey: aws.String(harness.Ed25519Key(t)), AvailabilityZone: aws.String(e.Region + "a"),
		})
		wantPushed(out, err)(t)
	})
}

func testSeedPolicy(t *testing.T, e *env) {
	ctx := context.Background()
	seed := harness.SeedPolicy(t, e.Region, e.Account)
	seedUser := e.newUser(t, "seed-user")
	e.attachManaged(t, "seed-user", "seed", seed)
	sc := e.EIC(seedUser)
	key := harness.Ed25519Key(t)

	t.Run("any running instance in its region", func(t *testing.T) {
		for _, n := range []int{1, 2, 4, 7} {
			id := wantPushed(sendKey(sc, instanceID(n), "ec2-user", key))(t)
			if n != 1 {
				continue
			}
			// The key record lives 60 seconds.
			now := time.Now()
			rec, found := e.keyRecord(t, instanceID(1), "ec2-user", id, now)
			line, _ := canonical(t, key)
			if !found || rec.PublicKey != line || rec.CallerARN != "arn:aws:iam::"+e.Account+":user/seed-user" || rec.InstanceID != instanceID(1) {
				t.Fatalf("key record at now: found %v %+v", found, rec)
			}
			if d := rec.ExpiresAt.Sub(rec.CreatedAt); d != 60*time.Second {
				t.Errorf("key lifetime %v, want 60s", d)
			}
			if _, found := e.keyRecord(t, instanceID(1), "ec2-user", id, now.Add(61*time.Second)); found {
				t.Errorf("key record still active 61s later")
			}
			if _, found := e.keyRecord(t, instanceID(1), "admin", id, now); found {
				t.Errorf("key record active for another OS user")
			}
		}
	})
	t.Run("DescribeInstances allowed", func(t *testing.T) {
		harness.Must(e.EC2(seedUser).DescribeInstances(ctx, &ec2.DescribeInstancesInput{}))(t)
	})
	t.Run("no iam:ListUsers", func(t *testing.T) {
		_, err := e.IAM(seedUser).ListUsers(ctx, &iam.ListUsersInput{})
		harness.WantCode(t, err, "AccessDenied", 403)
	})
	t.Run("no serial console permission", func(t *testing.T) {
		_, err := sc.SendSerialConsoleSSHPublicKey(ctx, &eic.SendSerialConsoleSSHPublicKeyInput{InstanceId: aws.String(instanceID(1)), SSHPublicKey: aws.String(key)})
		harness.WantTyped[*eictypes.AuthException](t, err, 403)
	})
	t.Run("allowed on instance/*: a missing instance is not found", func(t *testing.T) {
		_, err := sendKey(sc, missingID, "ec2-user", key)
		harness.WantTyped[*eictypes.EC2InstanceNotFoundException](t, err, 404)
	})

	t.Run("seed for another region", func(t *testing.T) {
		other := "eu-central-1"
		if e.Region == other {
			other = "us-west-2"
		}
		u := e.newUser(t, "seed-elsewhere")
		e.attachManaged(t, "seed-elsewhere", "seed-elsewhere", harness.SeedPolicy(t, other, e.Account))
		_, err := sendKey(e.EIC(u), instanceID(1), "ec2-user", key)
		harness.WantTyped[*eictypes.AuthException](t, err, 403)
	})

	t.Run("one instance only", func(t *testing.T) {
		u := e.newUser(t, "seed-one", harness.Doc(map[string]any{
			"Effect": "Allow", "Action": "ec2-instance-connect:SendSSHPublicKey", "Resource": e.instanceARN(instanceID(1)),
		}))
		c := e.EIC(u)
		wantPushed(sendKey(c, instanceID(1), "ec2-user", key))(t)
		_, err := sendKey(c, instanceID(2), "ec2-user", key)
		harness.WantTyped[*eictypes.AuthException](t, err, 403)
		// A missing instance gets AuthException too: existence does not leak.
		_, err = sendKey(c, missingID, "ec2-user", key)
		harness.WantTyped[*eictypes.AuthException](t, err, 403)
	})

	// The request context the server builds: resource tags, the caller's
	// address and name, TLS.
	t.Run("conditions", func(t *testing.T) {
		instances := "arn:aws:ec2:" + e.Region + ":" + e.Account + ":instance/*"
		allowIf := func(cond map[string]any) string {
			return harness.Doc(map[string]any{"Effect": "Allow", "Action": "ec2-instance-connect:SendSSHPublicKey", "Resource": instances, "Condition": cond})
		}
		for i, tc := range []struct {
			name   string
			policy string
			n      int
			osUser string
			ok     bool
		}{
			{"ec2:ResourceTag matches", allowIf(map[string]any{"StringEquals": map[string]any{"ec2:ResourceTag/env": "dev"}}), 2, "ec2-user", true},
			{"ec2:ResourceTag differs", allowIf(map[string]any{"StringEquals": map[string]any{"ec2:ResourceTag/env": "dev"}}), 1, "ec2-user", false},
			{"aws:ResourceTag matches", allowIf(map[string]any{"StringEquals": map[string]any{"aws:ResourceTag/Name": "web-1"}}), 1, "ec2-user", true},
			{"ec2:osuser matches", allowIf(map[string]any{"StringEquals": map[string]any{"ec2:osuser": "deploy"}}), 1, "deploy", true},
			{"ec2:osuser differs", allowIf(map[string]any{"StringEquals": map[string]any{"ec2:osuser": "deploy"}}), 1, "ec2-user", false},
			{"aws:SourceIp loopback", allowIf(map[string]any{"IpAddress": map[string]any{"aws:SourceIp": "127.0.0.0/8"}}), 1, "ec2-user", true},
			{"aws:SourceIp elsewhere", allowIf(map[string]any{"IpAddress": map[string]any{"aws:SourceIp": "192.0.2.0/24"}}), 1, "ec2-user", false},
			{"aws:SecureTransport", allowIf(map[string]any{"Bool": map[string]any{"aws:SecureTransport": "true"}}), 1, "ec2-user", true},
			{"aws:username as osuser", allowIf(map[string]any{"StringEquals": map[string]any{"ec2:osuser": "${aws:username}"}}), 1, "", true},
			{"aws:CurrentTime in the past", allowIf(map[string]any{"DateLessThan": map[string]any{"aws:CurrentTime": "2020-01-01T00:00:00Z"}}), 1, "ec2-user", false},
		} {
			t.Run(tc.name, func(t *testing.T) {
				name := fmt.Sprintf("cond-%d", i)
				osUser := tc.osUser
				if osUser == "" {
					osUser = name
				}
				out, err := sendKey(e.EIC(e.newUser(t, name, tc.policy)), instanceID(tc.n), osUser, key)
				if tc.ok {
					wantPushed(out, err)(t)
				} else {
					harness.WantTyped[*eictypes.AuthException](t, err, 403)
				}
			})
		}
	})

	t.Run("explicit Deny wins", func(t *testing.T) {
		u := e.newUser(t, "seed-denyroot", harness.Doc(map[string]any{
			"Sid": "NoRoot", "Effect": "Deny", "Action": "ec2-instance-connect:SendSSHPublicKey", "Resource": "*",
			"Condition": map[string]any{"StringEquals": map[string]any{"ec2:osuser": "root"}},
		}))
		e.attachManaged(t, "seed-denyroot", "seed-denyroot", seed)
		c := e.EIC(u)
		_, err := sendKey(c, instanceID(1), "root", key)
		ae := harness.WantTyped[*eictypes.AuthException](t, err, 403)
		if !strings.Contains(ae.ErrorMessage(), "explicit deny") {
			t.Errorf("AuthException does not say explicit deny: %q", ae.ErrorMessage())
		}
		wantPushed(sendKey(c, instanceID(1), "ec2-user", key))(t)
		recs, err := e.st.ActiveKeyRecords(ctx, instanceID(1), "root", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			if strings.HasSuffix(r.CallerARN, ":user/seed-denyroot") {
				t.Errorf("a denied push was stored: %+v", r)
			}
		}
	})
}
