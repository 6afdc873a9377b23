package iam

import (
	"bytes"
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/kaginashi/kaginashi/internal/apierr"
	"github.com/kaginashi/kaginashi/internal/seal"
	"github.com/kaginashi/kaginashi/internal/store"
	"github.com/kaginashi/kaginashi/internal/store/sqlite"
	"github.com/kaginashi/kaginashi/policy"
)

const testAcct = "123456789012"

type fixture struct {
	st  store.Store
	svc *Service
	az  *Authorizer
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	sealer, _ := seal.New(bytes.Repeat([]byte{3}, seal.KeySize))
	f := &fixture{st: st, svc: NewService(st, sealer, testAcct, "us-east-1", time.Now), az: NewAuthorizer(st, sealer, testAcct)}
	if err := f.svc.InstallAWSManagedPolicies(context.Background()); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) decide(t *testing.T, user, action, resource string) *Decision {
	t.Helper()
	p := &Principal{Account: testAcct, UserName: user, ARN: UserARN(testAcct, "/", user)}
	d, err := f.az.Authorize(context.Background(), p, action, resource, BaseContext(p, RequestInfo{Time: time.Now()}))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// wantKind is mfa_test.go's.

const (
	adminDoc    = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}`
	eicBoundary = `{"Version":"2012-10-17","Statement":[
		{"Sid":"EIC","Effect":"Allow","Action":["ec2-instance-connect:*","ec2:Describe*"],"Resource":"*"},
		{"Sid":"NoTags","Effect":"Deny","Action":"ec2:DescribeTags","Resource":"*"}]}`
)

func TestPutDeleteUserPermissionsBoundary(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	bp, err := f.svc.CreatePolicy(ctx, "only-eic", "", "", eicBoundary, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.CreateUser(ctx, "bob", "", "", nil); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.PutUserPolicy(ctx, "bob", "admin", adminDoc); err != nil {
		t.Fatal(err)
	}
	// Without a boundary the inline policy allows everything; the
	// authorizer's cache must see the boundary come and go.
	if !f.decide(t, "bob", "iam:CreateUser", "*").Allowed {
		t.Fatal("admin denied before any boundary")
	}
	if err := f.svc.PutUserPermissionsBoundary(ctx, "bob", bp.ARN); err != nil {
		t.Fatal(err)
	}
	if u, _ := f.svc.GetUser(ctx, "bob"); u.PermissionsBoundary != bp.ARN {
		t.Fatalf("boundary %q after Put", u.PermissionsBoundary)
	}
	wantKind(t, f.svc.DeletePolicy(ctx, bp.ARN), apierr.Conflict, "deleting a policy in use as a boundary")
	if d := f.decide(t, "bob", "iam:CreateUser", "*"); d.Allowed || d.Boundary != bp.ARN {
		t.Fatalf("outside the new boundary: %+v", d)
	}
	if !f.decide(t, "bob", "ec2-instance-connect:SendSSHPublicKey", "*").Allowed {
		t.Fatal("inside the boundary: denied")
	}
	// An AWS-managed policy may be a boundary too.
	if err := f.svc.PutUserPermissionsBoundary(ctx, "bob", "arn:aws:iam::aws:policy/IAMReadOnlyAccess"); err != nil {
		t.Fatal(err)
	}
	if !f.decide(t, "bob", "iam:GetUser", "*").Allowed || f.decide(t, "bob", "ec2-instance-connect:SendSSHPublicKey", "*").Allowed {
		t.Fatal("IAMReadOnlyAccess as the boundary does not decide")
	}
	if err := f.svc.DeleteUserPermissionsBoundary(ctx, "bob"); err != nil {
		t.Fatal(err)
	}
	if u, _ := f.svc.GetUser(ctx, "bob"); u.PermissionsBoundary != "" {
		t.Fatalf("boundary %q after Delete", u.PermissionsBoundary)
	}
	if !f.decide(t, "bob", "iam:CreateUser", "*").Allowed {
		t.Fatal("still capped after DeleteUserPermissionsBoundary")
	}
	// Deleting an absent boundary is no error.
	if err := f.svc.DeleteUserPermissionsBoundary(ctx, "bob"); err != nil {
		t.Fatal(err)
	}

	wantKind(t, f.svc.PutUserPermissionsBoundary(ctx, "nobody", bp.ARN), apierr.NotFound, "Put on a missing user")
	wantKind(t, f.svc.DeleteUserPermissionsBoundary(ctx, "nobody"), apierr.NotFound, "Delete on a missing user")
	wantKind(t, f.svc.PutUserPermissionsBoundary(ctx, "bob", "arn:aws:iam::"+testAcct+":user/bob"), apierr.InvalidInput, "a user ARN as the boundary")
	wantKind(t, f.svc.PutUserPermissionsBoundary(ctx, "bob", "not-an-arn"), apierr.InvalidInput, "a non-ARN as the boundary")
	wantKind(t, f.svc.PutUserPermissionsBoundary(ctx, "bob", PolicyARN(testAcct, "/", "missing")), apierr.NotFound, "a missing policy")
	wantKind(t, f.svc.PutUserPermissionsBoundary(ctx, "bob", "arn:aws:iam::aws:policy/ReadOnlyAccess"), apierr.NotFound, "an AWS policy kaginashi does not ship")
	wantKind(t, f.svc.PutUserPermissionsBoundary(ctx, "bob", PolicyARN("210987654321", "/", "only-eic")), apierr.NotFound, "another account's policy")
}

func TestSimulateWithBoundary(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	bp, err := f.svc.CreatePolicy(ctx, "only-eic", "", "", eicBoundary, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.CreateUser(ctx, "bob", "", bp.ARN, nil); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.PutUserPolicy(ctx, "bob", "admin", adminDoc); err != nil {
		t.Fatal(err)
	}
	rs, err := f.svc.Simulate(ctx, SimulationInput{User: "bob", Actions: []string{"iam:CreateUser", "ec2-instance-connect:SendSSHPublicKey", "ec2:DescribeTags"}})
	if err != nil {
		t.Fatal(err)
	}
	byAction := map[string]Evaluation{}
	for _, r := range rs {
		byAction[r.Action] = r
		// The simulator must agree with the authorizer.
		if d := f.decide(t, "bob", r.Action, r.Resource); d.Result != r.Decision {
			t.Errorf("%s: simulated %v, authorized %v", r.Action, r.Decision, d.Result)
		}
	}
	c := byAction["iam:CreateUser"]
	if c.Decision != policy.ImplicitDeny || !c.DeniedByBoundary || c.Boundary == nil || c.Boundary.Allowed || c.Boundary.Source != bp.ARN ||
		c.Identity.Decision != policy.Allowed || len(c.Matched) != 0 {
		t.Errorf("iam:CreateUser: %+v", c)
	}
	s := byAction["ec2-instance-connect:SendSSHPublicKey"]
	if s.Decision != policy.Allowed || s.DeniedByBoundary || !s.Boundary.Allowed ||
		!slices.ContainsFunc(s.Matched, func(m policy.StatementRef) bool { return m.Policy == bp.ARN && m.Sid == "EIC" }) ||
		!slices.ContainsFunc(s.Matched, func(m policy.StatementRef) bool { return m.Policy == "admin" }) {
		t.Errorf("SendSSHPublicKey: %+v", s)
	}
	d := byAction["ec2:DescribeTags"]
	if d.Decision != policy.ExplicitDeny || !d.DeniedByBoundary || len(d.Matched) != 1 || d.Matched[0].Sid != "NoTags" {
		t.Errorf("ec2:DescribeTags: %+v", d)
	}

	// PermissionsBoundaryPolicyInputList replaces the user's boundary.
	rs, err = f.svc.Simulate(ctx, SimulationInput{User: "bob", Actions: []string{"iam:CreateUser", "ec2-instance-connect:SendSSHPublicKey"},
		BoundaryPolicies: []string{`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iam:*","Resource":"*"}]}`}})
	if err != nil {
		t.Fatal(err)
	}
	if rs[0].Decision != policy.Allowed || rs[1].Decision != policy.ImplicitDeny || rs[1].Boundary.Source != "PermissionsBoundaryPolicyInputList.1" {
		t.Errorf("with a given boundary: %+v / %+v", rs[0], rs[1])
	}
	// SimulateCustomPolicy's form: documents only.
	rs, err = f.svc.Simulate(ctx, SimulationInput{Policies: []string{adminDoc}, BoundaryPolicies: []string{eicBoundary}, Actions: []string{"iam:CreateUser"}})
	if err != nil || rs[0].Decision != policy.ImplicitDeny || !rs[0].DeniedByBoundary {
		t.Errorf("custom with a boundary: %+v %v", rs, err)
	}
	// No boundary: no boundary detail.
	rs, err = f.svc.Simulate(ctx, SimulationInput{Policies: []string{adminDoc}, Actions: []string{"iam:CreateUser"}})
	if err != nil || rs[0].Boundary != nil || rs[0].Decision != policy.Allowed {
		t.Errorf("custom without a boundary: %+v %v", rs, err)
	}
	_, err = f.svc.Simulate(ctx, SimulationInput{Policies: []string{adminDoc}, BoundaryPolicies: []string{eicBoundary, eicBoundary}, Actions: []string{"iam:CreateUser"}})
	wantKind(t, err, apierr.InvalidInput, "two boundaries")
	_, err = f.svc.Simulate(ctx, SimulationInput{Policies: []string{adminDoc}, BoundaryPolicies: []string{`{"Statement":`}, Actions: []string{"iam:CreateUser"}})
	wantKind(t, err, apierr.MalformedPolicy, "a malformed boundary")
}

func TestAWSManagedPolicies(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	const admin = "arn:aws:iam::aws:policy/AdministratorAccess"
	// A second start rewrites nothing: caches stay valid.
	gen, _ := f.st.IAMGeneration(ctx)
	if err := f.svc.InstallAWSManagedPolicies(ctx); err != nil {
		t.Fatal(err)
	}
	if g, _ := f.st.IAMGeneration(ctx); g != gen {
		t.Errorf("reinstalling unchanged policies moved the IAM generation %d → %d", gen, g)
	}
	p, err := f.svc.GetPolicy(ctx, admin)
	if err != nil || p.Name != "AdministratorAccess" || p.Path != "/" || p.DefaultVersionID != "v1" {
		t.Fatalf("GetPolicy: %+v %v", p, err)
	}
	v, err := f.svc.GetPolicyVersion(ctx, "arn:aws:iam::aws:policy/PowerUserAccess", "v12")
	if err != nil || !v.IsDefault {
		t.Fatalf("GetPolicyVersion PowerUserAccess v12: %+v %v", v, err)
	}
	_, err = f.svc.GetPolicy(ctx, "arn:aws:iam::aws:policy/ReadOnlyAccess")
	wantKind(t, err, apierr.NotFound, "an AWS policy not shipped")

	// The account may have a policy of the same name.
	local, err := f.svc.CreatePolicy(ctx, "AdministratorAccess", "", "", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}`, nil)
	if err != nil {
		t.Fatal(err)
	}
	names := func(scope string) []string {
		t.Helper()
		ps, err := f.svc.ListPolicies(ctx, scope, "", false)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, p := range ps {
			out = append(out, p.ARN)
		}
		return out
	}
	if got := names("Local"); !slices.Equal(got, []string{local.ARN}) {
		t.Errorf("Local: %v", got)
	}
	aws := names("AWS")
	if len(aws) != 6 || !slices.Contains(aws, admin) || !slices.Contains(aws, "arn:aws:iam::aws:policy/EC2InstanceConnect") {
		t.Errorf("AWS: %v", aws)
	}
	if all := names(""); len(all) != 7 || all[0] != local.ARN {
		t.Errorf("All: %v", all)
	}
	_, err = f.svc.ListPolicies(ctx, "Mine", "", false)
	wantKind(t, err, apierr.InvalidInput, "a bad scope")

	// Read-only.
	wantKind(t, f.svc.DeletePolicy(ctx, admin), apierr.AccessDenied, "DeletePolicy")
	_, err = f.svc.CreatePolicyVersion(ctx, admin, adminDoc, true)
	wantKind(t, err, apierr.AccessDenied, "CreatePolicyVersion")
	wantKind(t, f.svc.SetDefaultPolicyVersion(ctx, admin, "v1"), apierr.AccessDenied, "SetDefaultPolicyVersion")
	wantKind(t, f.svc.DeletePolicyVersion(ctx, admin, "v1"), apierr.AccessDenied, "DeletePolicyVersion")

	// Attachable, and decides.
	if _, err := f.svc.CreateUser(ctx, "carol", "", "", nil); err != nil {
		t.Fatal(err)
	}
	if f.decide(t, "carol", "ec2-instance-connect:SendSSHPublicKey", "*").Allowed {
		t.Fatal("allowed before any attachment")
	}
	if err := f.svc.AttachUserPolicy(ctx, "carol", "arn:aws:iam::aws:policy/EC2InstanceConnect"); err != nil {
		t.Fatal(err)
	}
	if !f.decide(t, "carol", "ec2-instance-connect:SendSSHPublicKey", "arn:aws:ec2:us-east-1:"+testAcct+":instance/i-0123456789abcdef0").Allowed {
		t.Error("EC2InstanceConnect attached: SendSSHPublicKey denied")
	}
	if f.decide(t, "carol", "iam:CreateUser", "*").Allowed {
		t.Error("EC2InstanceConnect attached: iam:CreateUser allowed")
	}
	if p, _ := f.svc.GetPolicy(ctx, "arn:aws:iam::aws:policy/EC2InstanceConnect"); p.AttachmentCount != 1 {
		t.Errorf("AttachmentCount %d", p.AttachmentCount)
	}
	if err := f.svc.DetachUserPolicy(ctx, "carol", "arn:aws:iam::aws:policy/EC2InstanceConnect"); err != nil {
		t.Fatal(err)
	}
	if f.decide(t, "carol", "ec2-instance-connect:SendSSHPublicKey", "*").Allowed {
		t.Error("still allowed after detaching")
	}
	wantKind(t, f.svc.AttachUserPolicy(ctx, "carol", "arn:aws:iam::aws:policy/ReadOnlyAccess"), apierr.NotFound, "attaching an AWS policy not shipped")
	wantKind(t, f.svc.AttachUserPolicy(ctx, "carol", "arn:aws:iam::aws:policy/bad name"), apierr.InvalidInput, "a malformed AWS policy ARN")
}
