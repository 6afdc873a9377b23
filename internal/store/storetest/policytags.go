package storetest

import (
	"testing"

	"github.com/kaginashi/kaginashi/internal/store"
)

// testPolicyTags: TagPolicy/UntagPolicy, the tags GetPolicy returns, and
// that they move the IAM generation (policy tags feed ABAC decisions).
func testPolicyTags(t *testing.T, s store.Store) {
	ctx := ctxOf(t)
	arn := policyARN("/", "Deploy")
	must(t, s.CreatePolicy(ctx, store.ManagedPolicy{ARN: arn, ID: policyID(1), Name: "Deploy", CreateDate: at(0),
		Tags: []store.Tag{{Key: "team", Value: "a"}}}, doc("ec2:*")))

	gen0, err := s.IAMGeneration(ctx)
	must(t, err)
	must(t, s.TagPolicy(ctx, arn, []store.Tag{{Key: "team", Value: "b"}, {Key: "env", Value: ""}}))
	gen1, err := s.IAMGeneration(ctx)
	must(t, err)
	if gen1 <= gen0 {
		t.Fatalf("TagPolicy did not move the IAM generation (%d → %d)", gen0, gen1)
	}
	p, err := s.GetPolicy(ctx, arn)
	must(t, err)
	equal(t, "tags after TagPolicy", p.Tags, []store.Tag{{Key: "env", Value: ""}, {Key: "team", Value: "b"}})

	must(t, s.UntagPolicy(ctx, arn, []string{"team", "absent"}))
	p, err = s.GetPolicy(ctx, arn)
	must(t, err)
	equal(t, "tags after UntagPolicy", p.Tags, []store.Tag{{Key: "env", Value: ""}})
	gen2, err := s.IAMGeneration(ctx)
	must(t, err)
	if gen2 <= gen1 {
		t.Fatalf("UntagPolicy did not move the IAM generation (%d → %d)", gen1, gen2)
	}
	must(t, s.UntagPolicy(ctx, arn, nil))

	missing := policyARN("/", "Missing")
	wantErr(t, s.TagPolicy(ctx, missing, []store.Tag{{Key: "a", Value: "b"}}), store.ErrNotFound, "TagPolicy of a missing policy")
	wantErr(t, s.UntagPolicy(ctx, missing, []string{"a"}), store.ErrNotFound, "UntagPolicy of a missing policy")

	// Tags go with the policy: a new policy of the same ARN starts bare.
	must(t, s.DeletePolicy(ctx, arn))
	must(t, s.CreatePolicy(ctx, store.ManagedPolicy{ARN: arn, ID: policyID(2), Name: "Deploy", CreateDate: at(0)}, doc("ec2:*")))
	p, err = s.GetPolicy(ctx, arn)
	must(t, err)
	equal(t, "tags of a re-created policy", tags(p.Tags), []store.Tag(nil))
}
