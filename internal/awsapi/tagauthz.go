package awsapi

import (
	"github.com/kaginashi/kaginashi/internal/inventory"
	"github.com/kaginashi/kaginashi/internal/store"
	"github.com/kaginashi/kaginashi/policy"
)

// taggedResource is a resource EC2 tagging names, as authorization sees
// it: its ARN and its tags as they stand (none for a resource that does
// not exist, so a denied caller learns nothing of it).
type taggedResource struct {
	id, arn string
	tags    []store.Tag
}

// taggedResources reads the resources a CreateTags or DeleteTags names.
// A failing store is an error, not a resource without tags: authorizing
// without them would dodge a Deny on ec2:ResourceTag/*.
func (c *call) taggedResources(ids []string) ([]taggedResource, error) {
	out := make([]taggedResource, len(ids))
	for i, id := range ids {
		tags, err := c.h.deps.Inventory.ResourceTags(c.ctx, id)
		if err != nil {
			return nil, err
		}
		out[i] = taggedResource{id: id, arn: c.h.deps.Inventory.ResourceARN(id), tags: tags}
	}
	return out, nil
}

// authorizeTagging authorizes the call's action on each resource, as EC2
// does: each with its own tags as aws:ResourceTag/* and ec2:ResourceTag/*
// (so a Deny on ec2:ResourceTag/env=prod protects prod hosts from being
// retagged) and the condition keys extra sets for it. The call is refused
// (UnauthorizedOperation) when any one resource is denied; the audit
// event's decision is the denied one's, else the last one's.
func (c *call) authorizeTagging(rs []taggedResource, extra func(taggedResource, *policy.Context)) error {
	for i, r := range rs {
		if i > 0 {
			c.authorized = false // authorize guards against a second decision; here each resource takes its own
		}
		if amb := inventory.AmbiguousTagKeys(r.tags); len(amb) > 0 {
			c.h.deps.Log.Warn("resource has tag keys that differ only in case; left out of its condition keys until one of each is deleted",
				"requestID", c.requestID, "resource", r.id, "keys", amb)
		}
		err := c.authorize(r.arn, func(rc *policy.Context) {
			resourceTags(r.tags, "aws:ResourceTag/", "ec2:ResourceTag/")(rc)
			extra(r, rc)
		})
		if err != nil {
			c.authorized = true
			return err
		}
	}
	return nil
}
