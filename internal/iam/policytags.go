package iam

import (
	"context"
	"errors"
	"strings"

	"github.com/kaginashi/kaginashi/internal/apierr"
	"github.com/kaginashi/kaginashi/internal/store"
)

// maxTags is IAM's per-resource tag quota.
const maxTags = 50

// mergeTags applies IAM's tagging rules to adding tags to a resource that
// has cur: the request's own tags are checked (lengths, aws: prefix,
// duplicates), the result may hold at most 50 (LimitExceeded, as IAM),
// and a key that differs from an existing one only in case replaces that
// tag's value under the existing key's spelling — IAM tag keys are
// case-insensitive, so a resource never has both "Team" and "team". It
// returns the tags to write.
func mergeTags(cur, add []store.Tag) ([]store.Tag, error) {
	if err := checkTags(add); err != nil {
		return nil, err
	}
	out := make([]store.Tag, 0, len(add))
	n := len(cur)
	for _, t := range add {
		found := false
		for _, c := range cur {
			if strings.EqualFold(c.Key, t.Key) {
				t.Key, found = c.Key, true
				break
			}
		}
		if !found {
			n++
		}
		out = append(out, t)
	}
	if n > maxTags {
		return nil, apierr.New(apierr.LimitExceeded, "The number of tags has reached the maximum limit (%d per resource).", maxTags)
	}
	return out, nil
}

// untagKeys maps the keys to remove onto the resource's own spelling of
// them (tag keys are case-insensitive); unknown keys are kept, harmlessly.
func untagKeys(cur []store.Tag, keys []string) []string {
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		for _, c := range cur {
			if strings.EqualFold(c.Key, k) {
				k = c.Key
				break
			}
		}
		out = append(out, k)
	}
	return out
}

// TagPolicy adds or overwrites a customer managed policy's tags. The tags
// are what aws:ResourceTag/* sees when the policy is the resource of a
// call (GetPolicy, CreatePolicyVersion, DeletePolicy, ...).
func (s *Service) TagPolicy(ctx context.Context, arn string, tags []store.Tag) error {
	p, err := s.GetPolicy(ctx, arn)
	if err != nil {
		return err
	}
	if err := readOnly(arn); err != nil {
		return err
	}
	w, err := mergeTags(p.Tags, tags)
	if err != nil {
		return err
	}
	err = s.store.TagPolicy(ctx, arn, w)
	if errors.Is(err, store.ErrNotFound) {
		return apierr.New(apierr.NotFound, "Policy %s does not exist or is not attachable.", arn)
	}
	return mapStore(err, "policy")
}

// UntagPolicy removes a customer managed policy's tags by key.
func (s *Service) UntagPolicy(ctx context.Context, arn string, keys []string) error {
	p, err := s.GetPolicy(ctx, arn)
	if err != nil {
		return err
	}
	if err := readOnly(arn); err != nil {
		return err
	}
	err = s.store.UntagPolicy(ctx, arn, untagKeys(p.Tags, keys))
	if errors.Is(err, store.ErrNotFound) {
		return apierr.New(apierr.NotFound, "Policy %s does not exist or is not attachable.", arn)
	}
	return mapStore(err, "policy")
}
