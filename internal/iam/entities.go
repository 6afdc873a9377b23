package iam

import (
	"context"
	"slices"
	"strings"

	"github.com/kaginashi/kaginashi/internal/store"
)

// Policy usage filters of ListEntitiesForPolicy (IAM's PolicyUsageType).
const (
	UsagePermissionsPolicy   = "PermissionsPolicy"
	UsagePermissionsBoundary = "PermissionsBoundary"
)

// ListEntitiesForPolicy lists the users and groups that use a managed
// policy, as IAM's ListEntitiesForPolicy: entityFilter "User", "Group",
// "Role" (always empty here), "LocalManagedPolicy" or "AWSManagedPolicy"
// (IAM's enum; no policy uses a policy, so empty too) or "" for all;
// usageFilter "PermissionsPolicy" (attachments), "PermissionsBoundary"
// (users whose boundary it is) or "" for both — a user that has the
// policy both ways is listed once; pathPrefix matches the entities'
// paths. It is what an administrator runs before DeletePolicy, which
// refuses a policy in use either way. Users and groups come by name;
// kaginashi has no roles.
func (s *Service) ListEntitiesForPolicy(ctx context.Context, arn, entityFilter, usageFilter, pathPrefix string) (users []store.User, groups []store.Group, err error) {
	switch entityFilter {
	case "", "User", "Group", "Role", "LocalManagedPolicy", "AWSManagedPolicy":
	default:
		return nil, nil, invalid("EntityFilter must be User, Role, Group, LocalManagedPolicy or AWSManagedPolicy")
	}
	switch usageFilter {
	case "", UsagePermissionsPolicy, UsagePermissionsBoundary:
	default:
		return nil, nil, invalid("PolicyUsageFilter must be PermissionsPolicy or PermissionsBoundary")
	}
	if pathPrefix == "" {
		pathPrefix = "/"
	}
	if !strings.HasPrefix(pathPrefix, "/") {
		return nil, nil, invalid("PathPrefix must begin with a slash")
	}
	// GetPolicy gives the error shapes: an ARN that is not a policy's, a
	// policy that does not exist (or an AWS-managed one not shipped).
	if _, err := s.GetPolicy(ctx, arn); err != nil {
		return nil, nil, err
	}
	e, err := s.store.PolicyEntities(ctx, arn)
	if err != nil {
		return nil, nil, mapStore(err, "policy")
	}
	if entityFilter == "" || entityFilter == "User" {
		seen := map[string]bool{}
		add := func(us []store.User) {
			for _, u := range us {
				if !seen[u.ID] && strings.HasPrefix(u.Path, pathPrefix) {
					seen[u.ID] = true
					users = append(users, u)
				}
			}
		}
		if usageFilter != UsagePermissionsBoundary {
			add(e.Users)
		}
		if usageFilter != UsagePermissionsPolicy {
			add(e.BoundaryUsers)
		}
		// Both lists come by name; merged, they need sorting again.
		slices.SortStableFunc(users, func(a, b store.User) int {
			return strings.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name))
		})
	}
	// A group cannot have a permissions boundary: groups use a policy
	// only as a permissions policy.
	if (entityFilter == "" || entityFilter == "Group") && usageFilter != UsagePermissionsBoundary {
		for _, g := range e.Groups {
			if strings.HasPrefix(g.Path, pathPrefix) {
				groups = append(groups, g)
			}
		}
	}
	return users, groups, nil
}
