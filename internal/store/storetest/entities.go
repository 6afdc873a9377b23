package storetest

import (
	"testing"

	"github.com/kaginashi/kaginashi/internal/store"
)

// testPolicyEntities: who uses a policy, as attachments and as a
// permissions boundary, and the boundary usage count of Get and List.
func testPolicyEntities(t *testing.T, s store.Store) {
	ctx := ctxOf(t)
	p := newPolicy(t, s, 1, "P", doc("ec2:*"))
	other := newPolicy(t, s, 2, "Other", doc("s3:*"))
	// Created out of name order, to see the lists sorted.
	bob := newUser(t, s, 1, "bob")
	alice := newUser(t, s, 2, "alice")
	carol := newUser(t, s, 3, "carol")
	ops := newGroup(t, s, 1, "ops")

	e, err := s.PolicyEntities(ctx, p.ARN)
	must(t, err)
	// Empty lists may be nil or not, as each engine collects rows.
	equal(t, "entities of an unused policy", []int{len(e.Users), len(e.Groups), len(e.BoundaryUsers)}, []int{0, 0, 0})

	must(t, s.AttachUserPolicy(ctx, "bob", p.ARN))
	must(t, s.AttachGroupPolicy(ctx, "ops", p.ARN))
	must(t, s.SetUserPermissionsBoundary(ctx, "carol", p.ARN))
	must(t, s.SetUserPermissionsBoundary(ctx, "alice", p.ARN))
	must(t, s.SetUserPermissionsBoundary(ctx, "bob", other.ARN))
	carol.PermissionsBoundary, alice.PermissionsBoundary, bob.PermissionsBoundary = p.ARN, p.ARN, other.ARN

	e, err = s.PolicyEntities(ctx, p.ARN)
	must(t, err)
	equal(t, "entities", e, store.PolicyEntities{
		Users: []store.User{bob}, Groups: []store.Group{ops}, BoundaryUsers: []store.User{alice, carol},
	})
	got, err := s.GetPolicy(ctx, p.ARN)
	must(t, err)
	equal(t, "counts in Get", []int{got.AttachmentCount, got.PermissionsBoundaryUsageCount}, []int{2, 2})
	all, err := s.ListPolicies(ctx, "/", false)
	must(t, err)
	counts := map[string]int{}
	for _, q := range all {
		counts[q.Name] = q.PermissionsBoundaryUsageCount
	}
	equal(t, "boundary usage counts in List", counts, map[string]int{"P": 2, "Other": 1})

	// A policy in use as a boundary cannot be deleted, whatever the
	// caller checked before (the check and the delete are one
	// transaction).
	wantErr(t, s.DeletePolicy(ctx, other.ARN), store.ErrConflict, "deleting a boundary policy")
	must(t, s.SetUserPermissionsBoundary(ctx, "bob", ""))
	got, err = s.GetPolicy(ctx, other.ARN)
	must(t, err)
	equal(t, "boundary usage count after removal", got.PermissionsBoundaryUsageCount, 0)
	must(t, s.DeletePolicy(ctx, other.ARN))

	_, err = s.PolicyEntities(ctx, policyARN("/", "Missing"))
	wantErr(t, err, store.ErrNotFound, "entities of a missing policy")
}
