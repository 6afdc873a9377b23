package awsapi

import (
	"slices"
	"testing"

	"github.com/kaginashi/kaginashi/internal/store"
	"github.com/kaginashi/kaginashi/policy"
)

// Tag keys that differ only in case (stored before CreateTags refused
// them) are left out of the condition context, whatever their order;
// the others are set under every prefix.
func TestResourceTagsLeavesAmbiguousKeysOut(t *testing.T) {
	tags := []store.Tag{{Key: "Team", Value: "prod"}, {Key: "env", Value: "dev"}, {Key: "team", Value: "dev"}}
	for _, order := range [][]store.Tag{tags, {tags[2], tags[1], tags[0]}} {
		rc := policy.NewContext()
		resourceTags(order, "aws:ResourceTag/", "ec2:ResourceTag/")(rc)
		for _, k := range []string{"aws:ResourceTag/Team", "ec2:ResourceTag/team", "ec2:ResourceTag/TEAM"} {
			if v := rc.Get(k); v != nil {
				t.Errorf("%v: %s = %v, want it left out", order, k, v)
			}
		}
		for _, k := range []string{"aws:ResourceTag/env", "ec2:ResourceTag/env"} {
			if v := rc.Get(k); !slices.Equal(v, []string{"dev"}) {
				t.Errorf("%v: %s = %v, want [dev]", order, k, v)
			}
		}
	}
}
