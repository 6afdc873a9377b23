package storetest

import (
	"testing"
	"time"

	"github.com/kaginashi/kaginashi/internal/store"
)

func testUserPermissionsBoundary(t *testing.T, s store.Store) {
	ctx := ctxOf(t)
	newUser(t, s, 1, "alice")
	bp := newPolicy(t, s, 1, "Boundary", doc("ec2:*"))
	gen0, err := s.IAMGeneration(ctx)
	must(t, err)
	must(t, s.SetUserPermissionsBoundary(ctx, "ALICE", bp.ARN))
	u, err := s.GetUser(ctx, "alice")
	must(t, err)
	equal(t, "boundary after set", u.PermissionsBoundary, bp.ARN)
	gen1, err := s.IAMGeneration(ctx)
	must(t, err)
	if gen1 <= gen0 {
		t.Fatalf("setting a boundary left the IAM generation at %d (was %d): cached decisions would not see it", gen1, gen0)
	}
	must(t, s.SetUserPermissionsBoundary(ctx, "alice", ""))
	u, err = s.GetUser(ctx, "alice")
	must(t, err)
	equal(t, "boundary after removal", u.PermissionsBoundary, "")
	wantErr(t, s.SetUserPermissionsBoundary(ctx, "nobody", bp.ARN), store.ErrNotFound, "boundary of a missing user")
}

const awsAdmin = "arn:aws:iam::aws:policy/AdministratorAccess"

func testAWSManagedPolicies(t *testing.T, s store.Store) {
	ctx := ctxOf(t)
	// A customer policy may bear an AWS-managed policy's name: the two
	// name spaces are separate, in either order of creation.
	newPolicy(t, s, 1, "AdministratorAccess", doc("s3:*"))
	p := store.ManagedPolicy{
		ARN: awsAdmin, ID: policyID(2), Name: "AdministratorAccess", Path: "/",
		Description: "Provides full access", DefaultVersionID: "v3", CreateDate: at(0), UpdateDate: at(time.Hour),
	}
	must(t, s.PutAWSManagedPolicy(ctx, p, doc("*")))
	got, err := s.GetPolicy(ctx, awsAdmin)
	must(t, err)
	equal(t, "GetPolicy", got, p)
	vs, err := s.ListPolicyVersions(ctx, awsAdmin)
	must(t, err)
	equal(t, "versions", vs, []store.PolicyVersion{{PolicyARN: awsAdmin, VersionID: "v3", Document: doc("*"), IsDefault: true, CreateDate: at(time.Hour)}})

	// Attachable like any policy, and in the user's policies.
	newUser(t, s, 1, "alice")
	must(t, s.AttachUserPolicy(ctx, "alice", awsAdmin))
	pp, err := s.PrincipalPolicies(ctx, "alice")
	must(t, err)
	equal(t, "PrincipalPolicies", pp, []store.PrincipalPolicy{{Name: awsAdmin, Document: doc("*")}})

	// A refresh with a new version replaces the document, keeps the ID
	// and the attachment, and moves the generation.
	gen0, err := s.IAMGeneration(ctx)
	must(t, err)
	p2 := p
	p2.ID = policyID(3)
	p2.DefaultVersionID = "v4"
	p2.Description = "changed"
	p2.UpdateDate = at(2 * time.Hour)
	must(t, s.PutAWSManagedPolicy(ctx, p2, doc("ec2:*")))
	got, err = s.GetPolicy(ctx, awsAdmin)
	must(t, err)
	want := p2
	want.ID = p.ID
	want.AttachmentCount = 1
	equal(t, "GetPolicy after refresh", got, want)
	vs, err = s.ListPolicyVersions(ctx, awsAdmin)
	must(t, err)
	equal(t, "versions after refresh", vs, []store.PolicyVersion{{PolicyARN: awsAdmin, VersionID: "v4", Document: doc("ec2:*"), IsDefault: true, CreateDate: at(2 * time.Hour)}})
	pp, err = s.PrincipalPolicies(ctx, "alice")
	must(t, err)
	equal(t, "PrincipalPolicies after refresh", pp, []store.PrincipalPolicy{{Name: awsAdmin, Document: doc("ec2:*")}})
	gen1, err := s.IAMGeneration(ctx)
	must(t, err)
	if gen1 <= gen0 {
		t.Fatalf("refreshing an AWS-managed policy left the IAM generation at %d (was %d)", gen1, gen0)
	}
	all, err := s.ListPolicies(ctx, "/", false)
	must(t, err)
	if len(all) != 2 {
		t.Fatalf("ListPolicies: %v, want the customer and the AWS policy", policyARNs(all))
	}
	wantErr(t, s.PutAWSManagedPolicy(ctx, store.ManagedPolicy{ARN: awsAdmin, DefaultVersionID: "x"}, doc("*")), store.ErrNotFound, "a malformed version ID")
}
