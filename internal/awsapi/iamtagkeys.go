package awsapi

import (
	"strings"

	"github.com/kaginashi/kaginashi/internal/apierr"
	"github.com/kaginashi/kaginashi/internal/store"
	"github.com/kaginashi/kaginashi/policy"
)

// IAM tag keys ignore case: TagUser with team=… overwrites the user's Team
// tag, UntagUser TEAM removes it (iam's mergeTags and untagKeys). A
// condition on aws:TagKeys compares values, which StringEquals does with
// regard to case, so aws:TagKeys carries each key as the caller spelled it
// and, when the resource has the key in another spelling, as the resource
// has it too: a Deny on changing Team then holds against team. The other
// side of that choice: an allow-list (ForAllValues:StringEquals
// aws:TagKeys ["Team"]) must list every spelling the resource may have,
// or use StringEqualsIgnoreCase — a caller writing Team to a user tagged
// team is denied where AWS would allow it. It fails closed.

// withStoredSpellings returns keys, each followed by the resource's own
// spelling of it (cur) when that differs.
func withStoredSpellings(keys []string, cur []store.Tag) []string {
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		out = append(out, k)
		for _, t := range cur {
			if t.Key != k && strings.EqualFold(t.Key, k) {
				out = append(out, t.Key)
				break
			}
		}
	}
	return out
}

// currentTags are the tags the resource id names has now; none when it
// does not exist or the name is not one (the answer says so after
// authorization). A failing store is an error: authorizing without the
// stored spellings could dodge a Deny on them.
func (t tagActions) currentTags(c *call, id string) ([]store.Tag, error) {
	tags, err := t.tags(c, id)
	if err != nil && apierr.KindOf(err) == apierr.Internal {
		return nil, err
	}
	return tags, nil
}

// storedRequestTags sets aws:RequestTag/* for the request's tags under
// the spelling the resource already has for each (cur), besides the one
// requestTags sets: iam's mergeTags matches keys with Unicode case folding
// (ſensitivity overwrites Sensitivity) while condition keys are only
// lower-cased, so aws:RequestTag/Sensitivity would not see the value
// being written to Sensitivity.
func storedRequestTags(tags, cur []store.Tag) func(*policy.Context) {
	return func(rc *policy.Context) {
		for _, t := range tags {
			for _, c := range cur {
				if c.Key != t.Key && strings.EqualFold(c.Key, t.Key) {
					rc.Set("aws:RequestTag/"+c.Key, t.Value)
					break
				}
			}
		}
	}
}

// checkFoldedKeys refuses a request naming one IAM tag key twice under
// Unicode case folding (Acceſs and Access, with a long s). iam's checkTags
// finds duplicates by lower-casing, which leaves ſ alone, while its
// mergeTags matches keys with strings.EqualFold: both would land on the
// user's Access tag, the last one winning, while aws:RequestTag/Access
// carried the other's value (storedRequestTags), so a Deny on one value
// was passed by writing it second. On a new resource the two would be
// stored as two tags that IAM's own matching takes for one. IAM refuses
// duplicate keys, "Tag keys are case insensitive"; so do we, before
// authorization, as the other checks of the request's shape.
func checkFoldedKeys(tags []store.Tag) error {
	for i := range tags {
		for j := range i {
			if strings.EqualFold(tags[i].Key, tags[j].Key) {
				return invalidf("Duplicate tag keys found (%q and %q). Please note that Tag keys are case insensitive.", tags[j].Key, tags[i].Key)
			}
		}
	}
	return nil
}
