package iam

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kaginashi/kaginashi/internal/apierr"
	"github.com/kaginashi/kaginashi/internal/seal"
	"github.com/kaginashi/kaginashi/internal/store"
	"github.com/kaginashi/kaginashi/internal/store/sqlite"
	"github.com/kaginashi/kaginashi/policy"
)

func TestIDs(t *testing.T) {
	if !regexp.MustCompile(`^AIDA[A-Z2-7]{17}$`).MatchString(NewID(PrefixUser)) {
		t.Error("user ID shape")
	}
	if !regexp.MustCompile(`^AKIA[A-Z2-7]{16}$`).MatchString(NewAccessKeyID()) {
		t.Error("access key ID shape")
	}
	if s := NewSecret(); len(s) != 40 {
		t.Errorf("secret %q", s)
	}
	if a := NewAccountID(); ValidAccountID(a) != nil || a[0] == '0' {
		t.Errorf("account %q", a)
	}
	if NewSecret() == NewSecret() {
		t.Error("secrets repeat")
	}
}

func TestNamesAndARNs(t *testing.T) {
	for _, n := range []string{"alice", "a.b+c=d,e@f_g-h"} {
		if ValidName("user name", n, 64) != nil {
			t.Errorf("%q rejected", n)
		}
	}
	for _, n := range []string{"", "a b", "a/b", strings.Repeat("a", 65), "ア"} {
		if ValidName("user name", n, 64) == nil {
			t.Errorf("%q accepted", n)
		}
	}
	for _, p := range []string{"/", "/a/", "/a/b/"} {
		if ValidPath(p) != nil {
			t.Errorf("path %q rejected", p)
		}
	}
	for _, p := range []string{"", "a", "/a", "a/", "/a b/"} {
		if ValidPath(p) == nil {
			t.Errorf("path %q accepted", p)
		}
	}
	acct, path, name, err := ParsePolicyARN("arn:aws:iam::123456789012:policy/team/EIC")
	if err != nil || acct != "123456789012" || path != "/team/" || name != "EIC" {
		t.Errorf("ParsePolicyARN = %q %q %q %v", acct, path, name, err)
	}
	for _, bad := range []string{"arn:aws:iam::aws:policy/AdministratorAccess", "arn:aws:iam::123:policy/x", "arn:aws:s3:::b", "arn:aws:iam::123456789012:user/x"} {
		if _, _, _, err := ParsePolicyARN(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestPasswords(t *testing.T) {
	h, err := HashPassword("Correct-Horse-9")
	if err != nil || !strings.HasPrefix(h, "$argon2id$") || strings.Contains(h, "Correct") {
		t.Fatalf("hash %q %v", h, err)
	}
	if !VerifyPassword(h, "Correct-Horse-9") || VerifyPassword(h, "Correct-Horse-8") || VerifyPassword("garbage", "x") {
		t.Error("VerifyPassword is wrong")
	}
	for _, weak := range []string{"short1A", "alllowercaseletters", "ALLUPPER123", "\x00Aa1aaaaaaa"} {
		if _, err := HashPassword(weak); apierr.As(err).Code != "PasswordPolicyViolation" {
			t.Errorf("%q: %v", weak, err)
		}
	}
}

// The authorizer sees a policy change at once, through the generation.
func TestAuthorizerFollowsChanges(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	sealer, _ := seal.New(bytes.Repeat([]byte{3}, seal.KeySize))
	const acct = "123456789012"
	svc := NewService(st, sealer, acct, "us-east-1", time.Now)
	az := NewAuthorizer(st, sealer, acct)
	if _, err := svc.CreateUser(ctx, "alice", "", "", nil); err != nil {
		t.Fatal(err)
	}
	k, err := svc.CreateAccessKey(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	secret, p, err := az.Credentials(ctx, k.ID)
	if err != nil || secret != k.Secret || p.UserName != "alice" || p.ARN != "arn:aws:iam::123456789012:user/alice" {
		t.Fatalf("Credentials: %q %+v %v", secret, p, err)
	}
	ask := func() bool {
		d, err := az.Authorize(ctx, p, "ec2:DescribeInstances", "*", BaseContext(p, RequestInfo{Time: time.Now()}))
		if err != nil {
			t.Fatal(err)
		}
		return d.Allowed
	}
	if ask() {
		t.Fatal("allowed without a policy")
	}
	doc := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ec2:DescribeInstances","Resource":"*"}]}`
	if err := svc.PutUserPolicy(ctx, "alice", "describe", doc); err != nil {
		t.Fatal(err)
	}
	if !ask() {
		t.Fatal("the new policy is not seen")
	}
	if err := svc.DeleteUserPolicy(ctx, "alice", "describe"); err != nil {
		t.Fatal(err)
	}
	if ask() {
		t.Fatal("the deleted policy still allows")
	}
	if err := svc.UpdateAccessKey(ctx, "alice", k.ID, "Inactive"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := az.Credentials(ctx, k.ID); err != ErrUnknownKey {
		t.Fatalf("an inactive key still authenticates: %v", err)
	}
	root := &Principal{Root: true, Account: acct, ARN: RootARN(acct)}
	if d, _ := az.Authorize(ctx, root, "iam:DeleteUser", "*", policy.NewContext()); !d.Allowed || !d.Root {
		t.Error("root is not allowed everything")
	}
}

func TestServiceErrors(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	sealer, _ := seal.New(bytes.Repeat([]byte{3}, seal.KeySize))
	svc := NewService(st, sealer, "123456789012", "us-east-1", time.Now)
	kind := func(err error) apierr.Kind { return apierr.KindOf(err) }
	if _, err := svc.GetUser(ctx, "nobody"); kind(err) != apierr.NotFound {
		t.Errorf("GetUser: %v", err)
	}
	svc.CreateUser(ctx, "bob", "", "", nil)
	if _, err := svc.CreateUser(ctx, "BOB", "", "", nil); kind(err) != apierr.AlreadyExists {
		t.Errorf("CreateUser duplicate (any case): %v", err)
	}
	if _, err := svc.CreateUser(ctx, "bad name", "", "", nil); kind(err) != apierr.InvalidInput {
		t.Errorf("CreateUser bad name: %v", err)
	}
	// "root" (any case) is the console's name for the account root: a
	// user of that name could never sign in.
	for _, name := range []string{"root", "Root", "ROOT"} {
		if _, err := svc.CreateUser(ctx, name, "", "", nil); kind(err) != apierr.InvalidInput || !strings.Contains(err.Error(), "reserved for the account root") {
			t.Errorf("CreateUser %s: %v, want InvalidInput (reserved)", name, err)
		}
	}
	svc.CreateAccessKey(ctx, "bob")
	if err := svc.DeleteUser(ctx, "bob"); kind(err) != apierr.Conflict {
		t.Errorf("DeleteUser with a key: %v", err)
	}
	seed := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ec2-instance-connect:SendSSHPublicKey","Resource":"arn:aws:ec2:リージョン:アカウントID:instance/*"}]}`
	_, err = svc.CreatePolicy(ctx, "seed", "", "", seed, nil)
	if kind(err) != apierr.MalformedPolicy || !strings.Contains(err.Error(), "ARN_PLACEHOLDER") {
		t.Errorf("CreatePolicy with placeholders: %v", err)
	}
	if fs, ok := apierr.As(err).Details.([]policy.Finding); !ok || !policy.HasErrors(fs) {
		t.Error("the findings do not travel with the error")
	}
	if _, err := svc.GetPolicy(ctx, "arn:aws:iam::999999999999:policy/x"); kind(err) != apierr.NotFound {
		t.Errorf("another account's policy: %v", err)
	}
}

func TestPermissionsBoundary(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	sealer, _ := seal.New(bytes.Repeat([]byte{3}, seal.KeySize))
	const acct = "123456789012"
	svc := NewService(st, sealer, acct, "us-east-1", time.Now)
	az := NewAuthorizer(st, sealer, acct)
	bp, err := svc.CreatePolicy(ctx, "only-eic", "", "", `{"Version":"2012-10-17","Statement":[
		{"Effect":"Allow","Action":["ec2-instance-connect:*","ec2:Describe*"],"Resource":"*"},
		{"Effect":"Deny","Action":"ec2:DescribeTags","Resource":"*"}]}`, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.CreateUser(ctx, "bob", "", bp.ARN, nil); err != nil {
		t.Fatal(err)
	}
	if err := svc.PutUserPolicy(ctx, "bob", "admin", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}`); err != nil {
		t.Fatal(err)
	}
	p := &Principal{Account: acct, UserName: "bob", ARN: UserARN(acct, "/", "bob")}
	decide := func(action string) *Decision {
		t.Helper()
		d, err := az.Authorize(ctx, p, action, "*", BaseContext(p, RequestInfo{Time: time.Now()}))
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	if d := decide("ec2-instance-connect:SendSSHPublicKey"); !d.Allowed {
		t.Errorf("inside the boundary: denied (%v)", d.Result)
	}
	d := decide("iam:CreateUser")
	if d.Allowed || d.Boundary != bp.ARN || d.Result != policy.ImplicitDeny {
		t.Fatalf("outside the boundary: %+v", d)
	}
	if msg := DeniedMessage(p, d); !strings.Contains(msg, "no permissions boundary allows the iam:CreateUser action") {
		t.Errorf("message: %s", msg)
	}
	if d := decide("ec2:DescribeTags"); d.Allowed || d.Result != policy.ExplicitDeny || !strings.Contains(DeniedMessage(p, d), "explicit deny in a permissions boundary") {
		t.Errorf("boundary's explicit deny: %+v %s", d, DeniedMessage(p, d))
	}
	// The API refuses to delete a policy in use as a boundary, and so does
	// the store; a boundary naming a policy that is gone all the same (a
	// database edited by hand, a restore) allows nothing (fail closed).
	if err := svc.DeletePolicy(ctx, bp.ARN); apierr.KindOf(err) != apierr.Conflict {
		t.Errorf("DeletePolicy of a boundary in use: %v", err)
	}
	if err := st.DeletePolicy(ctx, bp.ARN); !errors.Is(err, store.ErrConflict) {
		t.Errorf("store DeletePolicy of a boundary in use: %v", err)
	}
	if err := st.SetUserPermissionsBoundary(ctx, "bob", PolicyARN(acct, "/", "gone")); err != nil {
		t.Fatal(err)
	}
	if d := decide("ec2-instance-connect:SendSSHPublicKey"); d.Allowed {
		t.Error("a deleted boundary still lets requests through")
	}
}

// Tag keys are duplicates when strings.EqualFold says so — the rule the
// tags are merged by — not only when their lower cases match: "Acceſs"
// (a long s) and "Access" used to pass the check and then both land on
// one tag, the last value winning past a Deny on the other's value.
func TestCheckTagsFoldedDuplicates(t *testing.T) {
	for _, pair := range [][2]string{{"Access", "ACCESS"}, {"Access", "Acceſs"}, {"Kelvin", "\u212aelvin"}} {
		err := checkTags([]store.Tag{{Key: pair[0], Value: "a"}, {Key: pair[1], Value: "b"}})
		if apierr.KindOf(err) != apierr.InvalidInput || !strings.Contains(err.Error(), "Duplicate tag keys") {
			t.Errorf("keys %q and %q: %v, want a duplicate-key refusal", pair[0], pair[1], err)
		}
		if !strings.EqualFold(pair[0], pair[1]) {
			t.Fatalf("test case %q/%q: not EqualFold", pair[0], pair[1])
		}
	}
	if err := checkTags([]store.Tag{{Key: "Access", Value: "a"}, {Key: "Accesses", Value: "b"}}); err != nil {
		t.Errorf("different keys: %v", err)
	}
}
