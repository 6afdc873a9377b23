package awsapi

import (
	"encoding/base64"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kaginashi/kaginashi/internal/apierr"
	"github.com/kaginashi/kaginashi/internal/iam"
	"github.com/kaginashi/kaginashi/internal/iam/managed"
	"github.com/kaginashi/kaginashi/internal/inventory"
	"github.com/kaginashi/kaginashi/internal/store"
	"github.com/kaginashi/kaginashi/policy"
)

// --- XML shapes (IAM API reference) -------------------------------------------

type xmlTag struct {
	Key   string `xml:"Key"`
	Value string `xml:"Value"`
}

type xmlUser struct {
	Path                string       `xml:"Path"`
	UserName            string       `xml:"UserName"`
	UserID              string       `xml:"UserId"`
	ARN                 string       `xml:"Arn"`
	CreateDate          string       `xml:"CreateDate"`
	PermissionsBoundary *xmlBoundary `xml:"PermissionsBoundary,omitempty"`
	Tags                *xmlTags     `xml:"Tags,omitempty"`
}

type xmlTags struct {
	M []xmlTag `xml:"member"`
}

type xmlBoundary struct {
	Type string `xml:"PermissionsBoundaryType"`
	ARN  string `xml:"PermissionsBoundaryArn"`
}

type xmlGroup struct {
	Path       string `xml:"Path"`
	GroupName  string `xml:"GroupName"`
	GroupID    string `xml:"GroupId"`
	ARN        string `xml:"Arn"`
	CreateDate string `xml:"CreateDate"`
}

type xmlPolicy struct {
	PolicyName                    string   `xml:"PolicyName"`
	PolicyID                      string   `xml:"PolicyId"`
	ARN                           string   `xml:"Arn"`
	Path                          string   `xml:"Path"`
	DefaultVersionID              string   `xml:"DefaultVersionId"`
	AttachmentCount               int      `xml:"AttachmentCount"`
	PermissionsBoundaryUsageCount int      `xml:"PermissionsBoundaryUsageCount"`
	IsAttachable                  bool     `xml:"IsAttachable"`
	Description                   string   `xml:"Description,omitempty"`
	CreateDate                    string   `xml:"CreateDate"`
	UpdateDate                    string   `xml:"UpdateDate"`
	Tags                          *xmlTags `xml:"Tags,omitempty"`
}

type xmlPolicyVersion struct {
	Document         string `xml:"Document,omitempty"`
	VersionID        string `xml:"VersionId"`
	IsDefaultVersion bool   `xml:"IsDefaultVersion"`
	CreateDate       string `xml:"CreateDate"`
}

// xmlNewKey is CreateAccessKey's answer: the only time a secret is sent.
type xmlNewKey struct {
	// Root's own key (user "") has none rather than an empty one, as in
	// ListAccessKeys.
	UserName        string `xml:"UserName,omitempty"`
	AccessKeyID     string `xml:"AccessKeyId"`
	Status          string `xml:"Status"`
	SecretAccessKey string `xml:"SecretAccessKey"`
	CreateDate      string `xml:"CreateDate"`
}

type xmlAttached struct {
	PolicyName string `xml:"PolicyName"`
	PolicyARN  string `xml:"PolicyArn"`
}

// isoTime is IAM's timestamp format.
func isoTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05Z") }

func tagsXML(ts []store.Tag) []xmlTag {
	out := make([]xmlTag, len(ts))
	for i, t := range ts {
		out[i] = xmlTag{t.Key, t.Value}
	}
	return out
}

func (h *Handler) userXML(u store.User, withTags bool) xmlUser {
	x := xmlUser{Path: u.Path, UserName: u.Name, UserID: u.ID, ARN: iam.UserARN(h.cfg.Account, u.Path, u.Name), CreateDate: isoTime(u.CreateDate)}
	if u.PermissionsBoundary != "" {
		// The SDKs' enum (PermissionsBoundaryAttachmentType) has one value,
		// PermissionsBoundaryPolicy, which is what IAM answers.
		x.PermissionsBoundary = &xmlBoundary{Type: "PermissionsBoundaryPolicy", ARN: u.PermissionsBoundary}
	}
	if withTags && len(u.Tags) > 0 {
		x.Tags = &xmlTags{M: tagsXML(u.Tags)}
	}
	return x
}

func (h *Handler) groupXML(g store.Group) xmlGroup {
	return xmlGroup{Path: g.Path, GroupName: g.Name, GroupID: g.ID, ARN: iam.GroupARN(h.cfg.Account, g.Path, g.Name), CreateDate: isoTime(g.CreateDate)}
}

func policyXML(p store.ManagedPolicy, withTags bool) xmlPolicy {
	x := xmlPolicy{
		PolicyName: p.Name, PolicyID: p.ID, ARN: p.ARN, Path: p.Path, DefaultVersionID: p.DefaultVersionID,
		AttachmentCount: p.AttachmentCount, PermissionsBoundaryUsageCount: p.PermissionsBoundaryUsageCount,
		IsAttachable: true, Description: p.Description,
		CreateDate: isoTime(p.CreateDate), UpdateDate: isoTime(p.UpdateDate),
	}
	if withTags && len(p.Tags) > 0 {
		x.Tags = &xmlTags{M: tagsXML(p.Tags)}
	}
	return x
}

// policyDocumentXML: IAM returns policy documents URL-encoded (RFC 3986).
func policyDocumentXML(doc string) string {
	return strings.ReplaceAll(url.QueryEscape(doc), "+", "%20")
}

// --- pagination -----------------------------------------------------------------

// page cuts a listing by Marker/MaxItems. The marker is the offset, opaque
// to clients.
func page[T any](c *call, items []T) (out []T, truncated bool, marker string, err error) {
	max := c.params.integer("MaxItems", 100, 1, 1000)
	start := 0
	if m := c.params.str("Marker"); m != "" {
		b, derr := base64.RawURLEncoding.DecodeString(m)
		n, aerr := strconv.Atoi(string(b))
		if derr != nil || aerr != nil || n < 0 || n > len(items) {
			return nil, false, "", invalidf("Invalid Marker")
		}
		start = n
	}
	end := start + max
	if end >= len(items) {
		return items[start:], false, "", nil
	}
	return items[start:end], true, base64.RawURLEncoding.EncodeToString([]byte(strconv.Itoa(end))), nil
}

// --- helpers ---------------------------------------------------------------------

func (c *call) iamSvc() *iam.Service { return c.h.deps.IAM }

// lookupUser finds the user an IAM call names. IAM names are unique
// without regard to case and the store finds "DEV" as "dev", so what the
// call is authorized on, acts on and answers with is the stored user: its
// name as stored, its path and tags. A user that does not exist is the
// name as given, under "/", without tags (found false). A failing store is
// an error, not a missing user: authorizing without the user's tags could
// dodge a Deny conditioned on them.
func (c *call) lookupUser(name string) (u store.User, found bool, err error) {
	u, err = c.h.deps.IAM.GetUser(c.ctx, name)
	switch {
	case err == nil:
		return u, true, nil
	case apierr.KindOf(err) == apierr.NotFound:
		return store.User{Name: name, Path: "/"}, false, nil
	default:
		return store.User{}, false, err
	}
}

// authorizeUser authorizes the call's action on a user: the stored user's
// ARN (its real path, and its name as stored — never the caller's
// spelling, which would slip past a Deny on user/dev as user/DEV), and the
// user's tags as aws:ResourceTag/* and iam:ResourceTag/*, so that
// attribute-based policies work. A user that does not exist is authorized
// as arn:...:user/NAME without tags, so the answer does not tell whether
// it exists (AccessDenied before NoSuchEntity, as IAM). It returns the
// name to act on and answer with: the stored one when the user exists.
func (c *call) authorizeUser(name string, extra func(*policy.Context)) (string, error) {
	u, _, err := c.lookupUser(name)
	if err != nil {
		return name, err
	}
	return u.Name, c.authorize(iam.UserARN(c.h.cfg.Account, u.Path, u.Name), func(rc *policy.Context) {
		resourceTags(u.Tags, "aws:ResourceTag/", "iam:ResourceTag/")(rc)
		if extra != nil {
			extra(rc)
		}
	})
}

// authorizePolicy authorizes the call's action on a managed policy, with
// the policy's tags as aws:ResourceTag/* only, so that attribute-based
// policies on policies work. Not as iam:ResourceTag/*: AWS's Service
// Authorization Reference gives that key to the user and role resource
// types only ("the tags attached to an IAM entity (user or role)"); the
// policy resource type has aws:ResourceTag/* alone, so a condition on
// iam:ResourceTag/* never holds for a policy there, nor here. A policy
// that does not exist is authorized without tags, so the answer does not
// tell whether it exists.
func (c *call) authorizePolicy(arn string, extra func(*policy.Context)) error {
	var tags []store.Tag
	if p, err := c.h.deps.IAM.GetPolicy(c.ctx, arn); err == nil {
		tags = p.Tags
	}
	return c.authorize(arn, func(rc *policy.Context) {
		resourceTags(tags, "aws:ResourceTag/")(rc)
		if extra != nil {
			extra(rc)
		}
	})
}

// authorizeTargetUser is authorizeUser for targetUser: root's own keys
// and profile are authorized on the root ARN (the name returned is then
// "").
func (c *call) authorizeTargetUser(extra func(*policy.Context)) (string, error) {
	u := c.targetUser()
	if u == "" {
		return "", c.authorize(iam.RootARN(c.h.cfg.Account), extra)
	}
	return c.authorizeUser(u, extra)
}

// authorizeGroup authorizes the call's action on a group, as authorizeUser
// does on a user: the stored group's ARN (its name as stored, whatever
// the caller's spelling, and its path), or arn:...:group/NAME for a group
// that does not exist, so that a denied caller learns nothing of it. It
// returns the name to act on and answer with.
func (c *call) authorizeGroup(name string, extra func(*policy.Context)) (string, error) {
	path := "/"
	g, _, err := c.h.deps.IAM.GetGroup(c.ctx, name)
	switch {
	case err == nil:
		name, path = g.Name, g.Path
	case apierr.KindOf(err) != apierr.NotFound:
		return name, err
	}
	return name, c.authorize(iam.GroupARN(c.h.cfg.Account, path, name), extra)
}

// targetUser is the UserName parameter, or the caller's own user when it
// is omitted (as IAM does for key and profile operations). Root without a
// user name means root's own keys.
func (c *call) targetUser() string {
	if n := c.params.str("UserName"); n != "" {
		return n
	}
	return c.auth.Principal.UserName
}

func requestTags(tags []store.Tag) func(*policy.Context) {
	return func(rc *policy.Context) {
		var keys []string
		for _, t := range tags {
			rc.Set("aws:RequestTag/"+t.Key, t.Value)
			keys = append(keys, t.Key)
		}
		if len(keys) > 0 {
			rc.Set("aws:TagKeys", keys...)
		}
	}
}

// resourceTags sets a resource's tags as condition keys under each prefix
// (aws:ResourceTag/, ec2:ResourceTag/, iam:ResourceTag/). Condition keys
// ignore case; EC2 tag keys do not, and a host may still carry Team=prod
// and team=dev (stored before CreateTags refused such pairs). Neither is
// picked — whichever came last would let whoever added "team" decide what
// a policy on ec2:ResourceTag/Team sees: a key spelled in more than one
// case is left out altogether, whatever the order of the tags. An Allow
// conditioned on it then does not match; a Deny written with ...IfExists,
// Null or a negated operator still applies (docs/SECURITY.md).
func resourceTags(tags []store.Tag, prefixes ...string) func(*policy.Context) {
	ambiguous := inventory.AmbiguousTagKeys(tags)
	return func(rc *policy.Context) {
		for _, t := range tags {
			if len(ambiguous) > 0 && slices.Contains(ambiguous, strings.ToLower(t.Key)) {
				continue
			}
			for _, p := range prefixes {
				rc.Set(p+t.Key, t.Value)
			}
		}
	}
}

// --- operations --------------------------------------------------------------------

func iamOps() map[string]*op {
	ops := map[string]*op{}
	add := func(name string, readOnly bool, run func(c *call) (any, error)) {
		// The model's constraints first, before authorization, as AWS
		// (iamvalidate.go); the operation's own decoding problems are
		// ValidationErrors too.
		model := iamModel[name]
		ops[name] = &op{name: name, action: "iam:" + name, readOnly: readOnly, run: func(c *call) (any, error) {
			if c.params != nil {
				c.params.code = validationCode
				if err := validateIAM(c.params.v, model); err != nil {
					return nil, err
				}
			}
			return run(c)
		}}
	}

	// Users.
	add("CreateUser", false, func(c *call) (any, error) {
		name, path, boundary := c.params.req("UserName"), c.params.str("Path"), c.params.str("PermissionsBoundary")
		tags := c.params.tags("Tags.member", 50)
		if err := c.decoded(); err != nil {
			return nil, err
		}
		if err := checkFoldedKeys(tags); err != nil { // iamtagkeys.go
			return nil, err
		}
		p := path
		if p == "" {
			p = "/"
		}
		if err := c.authorize(iam.UserARN(c.h.cfg.Account, p, name), func(rc *policy.Context) {
			requestTags(tags)(rc)
			if boundary != "" {
				rc.Set("iam:PermissionsBoundary", boundary)
			}
		}); err != nil {
			return nil, err
		}
		u, err := c.iamSvc().CreateUser(c.ctx, name, path, boundary, tags)
		if err != nil {
			return nil, err
		}
		c.response = map[string]any{"user": map[string]any{"userName": u.Name, "userId": u.ID, "arn": iam.UserARN(c.h.cfg.Account, u.Path, u.Name)}}
		return struct {
			User xmlUser `xml:"User"`
		}{c.h.userXML(u, true)}, nil
	})
	add("GetUser", true, func(c *call) (any, error) {
		name := c.targetUser()
		if name == "" { // root asking about itself
			if err := c.authorize(iam.RootARN(c.h.cfg.Account), nil); err != nil {
				return nil, err
			}
			// As IAM answers root: UserId is the account ID, no UserName
			// nor Path (the SDKs' User shape lists them as required, but
			// botocore and aws-sdk-go-v2 parse the answer without them),
			// and CreateDate the account's creation. PasswordLastUsed is
			// not recorded for root, so it is left out as IAM leaves out
			// a password never used.
			type rootUser struct {
				UserID     string `xml:"UserId"`
				ARN        string `xml:"Arn"`
				CreateDate string `xml:"CreateDate,omitempty"`
			}
			u := rootUser{UserID: c.h.cfg.Account, ARN: iam.RootARN(c.h.cfg.Account)}
			if inv := c.h.deps.Inventory; inv != nil && !inv.Created().IsZero() {
				u.CreateDate = isoTime(inv.Created())
			}
			return struct {
				User rootUser `xml:"User"`
			}{u}, nil
		}
		name, err := c.authorizeUser(name, nil)
		if err != nil {
			return nil, err
		}
		u, err := c.iamSvc().GetUser(c.ctx, name)
		if err != nil {
			return nil, err
		}
		return struct {
			User xmlUser `xml:"User"`
		}{c.h.userXML(u, true)}, nil
	})
	add("ListUsers", true, func(c *call) (any, error) {
		prefix := c.params.str("PathPrefix")
		if err := c.decoded(); err != nil {
			return nil, err
		}
		if err := c.authorize("*", nil); err != nil {
			return nil, err
		}
		us, err := c.iamSvc().ListUsers(c.ctx, prefix)
		if err != nil {
			return nil, err
		}
		us, truncated, marker, err := page(c, us)
		if err != nil {
			return nil, err
		}
		out := struct {
			Users       []xmlUser `xml:"Users>member"`
			IsTruncated bool      `xml:"IsTruncated"`
			Marker      string    `xml:"Marker,omitempty"`
		}{IsTruncated: truncated, Marker: marker}
		out.Users = []xmlUser{}
		for _, u := range us {
			out.Users = append(out.Users, c.h.userXML(u, false))
		}
		return out, nil
	})
	add("DeleteUser", false, func(c *call) (any, error) {
		name := c.params.req("UserName")
		if err := c.decoded(); err != nil {
			return nil, err
		}
		name, err := c.authorizeUser(name, nil)
		if err != nil {
			return nil, err
		}
		return nil, c.iamSvc().DeleteUser(c.ctx, name)
	})
	tagActions{
		noun: "User", param: "UserName", authorize: (*call).authorizeUser,
		tag:   func(c *call, name string, tags []store.Tag) error { return c.iamSvc().TagUser(c.ctx, name, tags) },
		untag: func(c *call, name string, keys []string) error { return c.iamSvc().UntagUser(c.ctx, name, keys) },
		tags: func(c *call, name string) ([]store.Tag, error) {
			u, err := c.iamSvc().GetUser(c.ctx, name)
			return u.Tags, err
		},
	}.register(add)

	// Permissions boundaries.
	add("PutUserPermissionsBoundary", false, func(c *call) (any, error) {
		name, boundary := c.params.req("UserName"), c.params.req("PermissionsBoundary")
		if err := c.decoded(); err != nil {
			return nil, err
		}
		name, err := c.authorizeUser(name, func(rc *policy.Context) { rc.Set("iam:PermissionsBoundary", boundary) })
		if err != nil {
			return nil, err
		}
		return nil, c.iamSvc().PutUserPermissionsBoundary(c.ctx, name, boundary)
	})
	add("DeleteUserPermissionsBoundary", false, func(c *call) (any, error) {
		name := c.params.req("UserName")
		if err := c.decoded(); err != nil {
			return nil, err
		}
		// iam:PermissionsBoundary is the boundary being removed, so a
		// policy can protect a particular boundary from removal.
		current := ""
		if u, err := c.iamSvc().GetUser(c.ctx, name); err == nil {
			current = u.PermissionsBoundary
		}
		name, err := c.authorizeUser(name, func(rc *policy.Context) {
			if current != "" {
				rc.Set("iam:PermissionsBoundary", current)
			}
		})
		if err != nil {
			return nil, err
		}
		return nil, c.iamSvc().DeleteUserPermissionsBoundary(c.ctx, name)
	})

	// Access keys.
	type xmlKeyMeta struct {
		// Root's own keys (user "") have no UserName rather than an empty
		// one: AccessKeyMetadata.UserName is optional.
		UserName    string `xml:"UserName,omitempty"`
		AccessKeyID string `xml:"AccessKeyId"`
		Status      string `xml:"Status"`
		CreateDate  string `xml:"CreateDate"`
	}
	add("CreateAccessKey", false, func(c *call) (any, error) {
		user := c.targetUser()
		if err := c.decoded(); err != nil {
			return nil, err
		}
		user, err := c.authorizeTargetUser(nil)
		if err != nil {
			return nil, err
		}
		k, err := c.iamSvc().CreateAccessKey(c.ctx, user)
		if err != nil {
			return nil, err
		}
		ak := map[string]any{"accessKeyId": k.ID, "status": k.Status, "secretAccessKey": "HIDDEN_DUE_TO_SECURITY_REASONS"}
		if user != "" { // root's own key: no user name, not an empty one
			ak["userName"] = user
		}
		c.response = map[string]any{"accessKey": ak}
		return struct {
			AccessKey xmlNewKey `xml:"AccessKey"`
		}{xmlNewKey{user, k.ID, k.Status, k.Secret, isoTime(k.CreateDate)}}, nil
	})
	add("ListAccessKeys", true, func(c *call) (any, error) {
		user := c.targetUser()
		if err := c.decoded(); err != nil {
			return nil, err
		}
		user, err := c.authorizeTargetUser(nil)
		if err != nil {
			return nil, err
		}
		ks, err := c.iamSvc().ListAccessKeys(c.ctx, user)
		if err != nil {
			return nil, err
		}
		ks, truncated, marker, err := page(c, ks)
		if err != nil {
			return nil, err
		}
		out := struct {
			UserName    string       `xml:"UserName,omitempty"`
			Keys        []xmlKeyMeta `xml:"AccessKeyMetadata>member"`
			IsTruncated bool         `xml:"IsTruncated"`
			Marker      string       `xml:"Marker,omitempty"`
		}{UserName: user, Keys: []xmlKeyMeta{}, IsTruncated: truncated, Marker: marker}
		for _, k := range ks {
			out.Keys = append(out.Keys, xmlKeyMeta{user, k.ID, k.Status, isoTime(k.CreateDate)})
		}
		return out, nil
	})
	add("UpdateAccessKey", false, func(c *call) (any, error) {
		user, id, status := c.targetUser(), c.params.req("AccessKeyId"), c.params.req("Status")
		if err := c.decoded(); err != nil {
			return nil, err
		}
		user, err := c.authorizeTargetUser(nil)
		if err != nil {
			return nil, err
		}
		return nil, c.iamSvc().UpdateAccessKey(c.ctx, user, id, status)
	})
	add("DeleteAccessKey", false, func(c *call) (any, error) {
		user, id := c.targetUser(), c.params.req("AccessKeyId")
		if err := c.decoded(); err != nil {
			return nil, err
		}
		user, err := c.authorizeTargetUser(nil)
		if err != nil {
			return nil, err
		}
		return nil, c.iamSvc().DeleteAccessKey(c.ctx, user, id)
	})

	// Managed policies.
	add("CreatePolicy", false, func(c *call) (any, error) {
		name, path, desc, doc := c.params.req("PolicyName"), c.params.str("Path"), c.params.str("Description"), c.params.req("PolicyDocument")
		tags := c.params.tags("Tags.member", 50)
		if err := c.decoded(); err != nil {
			return nil, err
		}
		if err := checkFoldedKeys(tags); err != nil { // iamtagkeys.go
			return nil, err
		}
		p := path
		if p == "" {
			p = "/"
		}
		if err := c.authorize(iam.PolicyARN(c.h.cfg.Account, p, name), requestTags(tags)); err != nil {
			return nil, err
		}
		pol, err := c.iamSvc().CreatePolicy(c.ctx, name, path, desc, doc, tags)
		if err != nil {
			return nil, err
		}
		c.response = map[string]any{"policy": map[string]any{"arn": pol.ARN, "policyName": pol.Name, "defaultVersionId": pol.DefaultVersionID}}
		return struct {
			Policy xmlPolicy `xml:"Policy"`
		}{policyXML(pol, true)}, nil
	})
	add("GetPolicy", true, func(c *call) (any, error) {
		arn := c.params.req("PolicyArn")
		if err := c.decoded(); err != nil {
			return nil, err
		}
		if err := c.authorizePolicy(arn, nil); err != nil {
			return nil, err
		}
		p, err := c.iamSvc().GetPolicy(c.ctx, arn)
		if err != nil {
			return nil, err
		}
		return struct {
			Policy xmlPolicy `xml:"Policy"`
		}{policyXML(p, true)}, nil
	})
	add("ListPolicies", true, func(c *call) (any, error) {
		scope, prefix, onlyAttached := c.params.str("Scope"), c.params.str("PathPrefix"), c.params.boolean("OnlyAttached", false)
		if err := c.decoded(); err != nil {
			return nil, err
		}
		if err := c.authorize("*", nil); err != nil {
			return nil, err
		}
		ps, err := c.iamSvc().ListPolicies(c.ctx, scope, prefix, onlyAttached)
		if err != nil {
			return nil, err
		}
		ps, truncated, marker, err := page(c, ps)
		if err != nil {
			return nil, err
		}
		out := struct {
			Policies    []xmlPolicy `xml:"Policies>member"`
			IsTruncated bool        `xml:"IsTruncated"`
			Marker      string      `xml:"Marker,omitempty"`
		}{Policies: []xmlPolicy{}, IsTruncated: truncated, Marker: marker}
		for _, p := range ps {
			out.Policies = append(out.Policies, policyXML(p, false))
		}
		return out, nil
	})
	add("DeletePolicy", false, func(c *call) (any, error) {
		arn := c.params.req("PolicyArn")
		if err := c.decoded(); err != nil {
			return nil, err
		}
		if err := c.authorizePolicy(arn, nil); err != nil {
			return nil, err
		}
		return nil, c.iamSvc().DeletePolicy(c.ctx, arn)
	})
	// Policy tags: as the user's, with the policy as the resource.
	tagActions{
		noun: "Policy", param: "PolicyArn",
		// A policy ARN is matched exactly (not without regard to case),
		// so the ARN as given is the policy's own.
		authorize: func(c *call, arn string, extra func(*policy.Context)) (string, error) {
			return arn, c.authorizePolicy(arn, extra)
		},
		tag:   func(c *call, arn string, tags []store.Tag) error { return c.iamSvc().TagPolicy(c.ctx, arn, tags) },
		untag: func(c *call, arn string, keys []string) error { return c.iamSvc().UntagPolicy(c.ctx, arn, keys) },
		tags: func(c *call, arn string) ([]store.Tag, error) {
			p, err := c.iamSvc().GetPolicy(c.ctx, arn)
			return p.Tags, err
		},
	}.register(add)
	add("ListEntitiesForPolicy", true, func(c *call) (any, error) {
		arn := c.params.req("PolicyArn")
		entityFilter, usage, prefix := c.params.str("EntityFilter"), c.params.str("PolicyUsageFilter"), c.params.str("PathPrefix")
		if err := c.decoded(); err != nil {
			return nil, err
		}
		if err := c.authorizePolicy(arn, nil); err != nil {
			return nil, err
		}
		users, groups, err := c.iamSvc().ListEntitiesForPolicy(c.ctx, arn, entityFilter, usage, prefix)
		if err != nil {
			return nil, err
		}
		// One page runs through the users, then the groups. (No roles
		// here: PolicyRoles is always absent, which the SDKs read as
		// empty.)
		type entity struct {
			user  *store.User
			group *store.Group
		}
		all := make([]entity, 0, len(users)+len(groups))
		for i := range users {
			all = append(all, entity{user: &users[i]})
		}
		for i := range groups {
			all = append(all, entity{group: &groups[i]})
		}
		all, truncated, marker, err := page(c, all)
		if err != nil {
			return nil, err
		}
		type xmlPolicyUser struct {
			UserName string `xml:"UserName"`
			UserID   string `xml:"UserId"`
		}
		type xmlPolicyGroup struct {
			GroupName string `xml:"GroupName"`
			GroupID   string `xml:"GroupId"`
		}
		out := struct {
			Groups      []xmlPolicyGroup `xml:"PolicyGroups>member"`
			Users       []xmlPolicyUser  `xml:"PolicyUsers>member"`
			IsTruncated bool             `xml:"IsTruncated"`
			Marker      string           `xml:"Marker,omitempty"`
		}{Groups: []xmlPolicyGroup{}, Users: []xmlPolicyUser{}, IsTruncated: truncated, Marker: marker}
		for _, e := range all {
			if e.user != nil {
				out.Users = append(out.Users, xmlPolicyUser{e.user.Name, e.user.ID})
			} else {
				out.Groups = append(out.Groups, xmlPolicyGroup{e.group.Name, e.group.ID})
			}
		}
		return out, nil
	})
	add("CreatePolicyVersion", false, func(c *call) (any, error) {
		arn, doc, setDefault := c.params.req("PolicyArn"), c.params.req("PolicyDocument"), c.params.boolean("SetAsDefault", false)
		if err := c.decoded(); err != nil {
			return nil, err
		}
		if err := c.authorizePolicy(arn, nil); err != nil {
			return nil, err
		}
		v, err := c.iamSvc().CreatePolicyVersion(c.ctx, arn, doc, setDefault)
		if err != nil {
			return nil, err
		}
		return struct {
			PolicyVersion xmlPolicyVersion `xml:"PolicyVersion"`
		}{xmlPolicyVersion{VersionID: v.VersionID, IsDefaultVersion: v.IsDefault, CreateDate: isoTime(v.CreateDate)}}, nil
	})
	add("GetPolicyVersion", true, func(c *call) (any, error) {
		arn, version := c.params.req("PolicyArn"), c.params.req("VersionId")
		if err := c.decoded(); err != nil {
			return nil, err
		}
		if err := c.authorizePolicy(arn, nil); err != nil {
			return nil, err
		}
		v, err := c.iamSvc().GetPolicyVersion(c.ctx, arn, version)
		if err != nil {
			return nil, err
		}
		return struct {
			PolicyVersion xmlPolicyVersion `xml:"PolicyVersion"`
		}{xmlPolicyVersion{Document: policyDocumentXML(v.Document), VersionID: v.VersionID, IsDefaultVersion: v.IsDefault, CreateDate: isoTime(v.CreateDate)}}, nil
	})
	add("ListPolicyVersions", true, func(c *call) (any, error) {
		arn := c.params.req("PolicyArn")
		if err := c.decoded(); err != nil {
			return nil, err
		}
		if err := c.authorizePolicy(arn, nil); err != nil {
			return nil, err
		}
		vs, err := c.iamSvc().ListPolicyVersions(c.ctx, arn)
		if err != nil {
			return nil, err
		}
		vs, truncated, marker, err := page(c, vs)
		if err != nil {
			return nil, err
		}
		out := struct {
			Versions    []xmlPolicyVersion `xml:"Versions>member"`
			IsTruncated bool               `xml:"IsTruncated"`
			Marker      string             `xml:"Marker,omitempty"`
		}{Versions: []xmlPolicyVersion{}, IsTruncated: truncated, Marker: marker}
		for _, v := range vs {
			out.Versions = append(out.Versions, xmlPolicyVersion{VersionID: v.VersionID, IsDefaultVersion: v.IsDefault, CreateDate: isoTime(v.CreateDate)})
		}
		return out, nil
	})
	add("SetDefaultPolicyVersion", false, func(c *call) (any, error) {
		arn, version := c.params.req("PolicyArn"), c.params.req("VersionId")
		if err := c.decoded(); err != nil {
			return nil, err
		}
		if err := c.authorizePolicy(arn, nil); err != nil {
			return nil, err
		}
		return nil, c.iamSvc().SetDefaultPolicyVersion(c.ctx, arn, version)
	})
	add("DeletePolicyVersion", false, func(c *call) (any, error) {
		arn, version := c.params.req("PolicyArn"), c.params.req("VersionId")
		if err := c.decoded(); err != nil {
			return nil, err
		}
		if err := c.authorizePolicy(arn, nil); err != nil {
			return nil, err
		}
		return nil, c.iamSvc().DeletePolicyVersion(c.ctx, arn, version)
	})

	// Attachments.
	attachedXML := func(c *call, ps []store.ManagedPolicy) (any, error) {
		ps, truncated, marker, err := page(c, ps)
		if err != nil {
			return nil, err
		}
		out := struct {
			Policies    []xmlAttached `xml:"AttachedPolicies>member"`
			IsTruncated bool          `xml:"IsTruncated"`
			Marker      string        `xml:"Marker,omitempty"`
		}{Policies: []xmlAttached{}, IsTruncated: truncated, Marker: marker}
		for _, p := range ps {
			out.Policies = append(out.Policies, xmlAttached{p.Name, p.ARN})
		}
		return out, nil
	}
	policyARNKey := func(arn string) func(*policy.Context) {
		return func(rc *policy.Context) { rc.Set("iam:PolicyARN", arn) }
	}
	add("AttachUserPolicy", false, func(c *call) (any, error) {
		user, arn := c.params.req("UserName"), c.params.req("PolicyArn")
		if err := c.decoded(); err != nil {
			return nil, err
		}
		user, err := c.authorizeUser(user, policyARNKey(arn))
		if err != nil {
			return nil, err
		}
		return nil, c.iamSvc().AttachUserPolicy(c.ctx, user, arn)
	})
	add("DetachUserPolicy", false, func(c *call) (any, error) {
		user, arn := c.params.req("UserName"), c.params.req("PolicyArn")
		if err := c.decoded(); err != nil {
			return nil, err
		}
		user, err := c.authorizeUser(user, policyARNKey(arn))
		if err != nil {
			return nil, err
		}
		return nil, c.iamSvc().DetachUserPolicy(c.ctx, user, arn)
	})
	add("ListAttachedUserPolicies", true, func(c *call) (any, error) {
		user := c.params.req("UserName")
		if err := c.decoded(); err != nil {
			return nil, err
		}
		user, err := c.authorizeUser(user, nil)
		if err != nil {
			return nil, err
		}
		ps, err := c.iamSvc().ListAttachedUserPolicies(c.ctx, user)
		if err != nil {
			return nil, err
		}
		return attachedXML(c, ps)
	})
	add("AttachGroupPolicy", false, func(c *call) (any, error) {
		group, arn := c.params.req("GroupName"), c.params.req("PolicyArn")
		if err := c.decoded(); err != nil {
			return nil, err
		}
		group, err := c.authorizeGroup(group, policyARNKey(arn))
		if err != nil {
			return nil, err
		}
		return nil, c.iamSvc().AttachGroupPolicy(c.ctx, group, arn)
	})
	add("DetachGroupPolicy", false, func(c *call) (any, error) {
		group, arn := c.params.req("GroupName"), c.params.req("PolicyArn")
		if err := c.decoded(); err != nil {
			return nil, err
		}
		group, err := c.authorizeGroup(group, policyARNKey(arn))
		if err != nil {
			return nil, err
		}
		return nil, c.iamSvc().DetachGroupPolicy(c.ctx, group, arn)
	})
	add("ListAttachedGroupPolicies", true, func(c *call) (any, error) {
		group := c.params.req("GroupName")
		if err := c.decoded(); err != nil {
			return nil, err
		}
		group, err := c.authorizeGroup(group, nil)
		if err != nil {
			return nil, err
		}
		ps, err := c.iamSvc().ListAttachedGroupPolicies(c.ctx, group)
		if err != nil {
			return nil, err
		}
		return attachedXML(c, ps)
	})

	// Inline policies.
	add("PutUserPolicy", false, func(c *call) (any, error) {
		user, name, doc := c.params.req("UserName"), c.params.req("PolicyName"), c.params.req("PolicyDocument")
		if err := c.decoded(); err != nil {
			return nil, err
		}
		user, err := c.authorizeUser(user, nil)
		if err != nil {
			return nil, err
		}
		return nil, c.iamSvc().PutUserPolicy(c.ctx, user, name, doc)
	})
	add("GetUserPolicy", true, func(c *call) (any, error) {
		user, name := c.params.req("UserName"), c.params.req("PolicyName")
		if err := c.decoded(); err != nil {
			return nil, err
		}
		user, err := c.authorizeUser(user, nil)
		if err != nil {
			return nil, err
		}
		p, err := c.iamSvc().GetUserPolicy(c.ctx, user, name)
		if err != nil {
			return nil, err
		}
		return struct {
			UserName       string `xml:"UserName"`
			PolicyName     string `xml:"PolicyName"`
			PolicyDocument string `xml:"PolicyDocument"`
		}{p.UserName, p.PolicyName, policyDocumentXML(p.Document)}, nil
	})
	add("ListUserPolicies", true, func(c *call) (any, error) {
		user := c.params.req("UserName")
		if err := c.decoded(); err != nil {
			return nil, err
		}
		user, err := c.authorizeUser(user, nil)
		if err != nil {
			return nil, err
		}
		ns, err := c.iamSvc().ListUserPolicies(c.ctx, user)
		if err != nil {
			return nil, err
		}
		ns, truncated, marker, err := page(c, ns)
		if err != nil {
			return nil, err
		}
		return struct {
			PolicyNames []string `xml:"PolicyNames>member"`
			IsTruncated bool     `xml:"IsTruncated"`
			Marker      string   `xml:"Marker,omitempty"`
		}{append([]string{}, ns...), truncated, marker}, nil
	})
	add("DeleteUserPolicy", false, func(c *call) (any, error) {
		user, name := c.params.req("UserName"), c.params.req("PolicyName")
		if err := c.decoded(); err != nil {
			return nil, err
		}
		user, err := c.authorizeUser(user, nil)
		if err != nil {
			return nil, err
		}
		return nil, c.iamSvc().DeleteUserPolicy(c.ctx, user, name)
	})

	// Groups.
	groupsXML := func(c *call, gs []store.Group) (any, error) {
		gs, truncated, marker, err := page(c, gs)
		if err != nil {
			return nil, err
		}
		out := struct {
			Groups      []xmlGroup `xml:"Groups>member"`
			IsTruncated bool       `xml:"IsTruncated"`
			Marker      string     `xml:"Marker,omitempty"`
		}{Groups: []xmlGroup{}, IsTruncated: truncated, Marker: marker}
		for _, g := range gs {
			out.Groups = append(out.Groups, c.h.groupXML(g))
		}
		return out, nil
	}
	add("CreateGroup", false, func(c *call) (any, error) {
		name, path := c.params.req("GroupName"), c.params.str("Path")
		if err := c.decoded(); err != nil {
			return nil, err
		}
		p := path
		if p == "" {
			p = "/"
		}
		if err := c.authorize(iam.GroupARN(c.h.cfg.Account, p, name), nil); err != nil {
			return nil, err
		}
		g, err := c.iamSvc().CreateGroup(c.ctx, name, path)
		if err != nil {
			return nil, err
		}
		return struct {
			Group xmlGroup `xml:"Group"`
		}{c.h.groupXML(g)}, nil
	})
	add("GetGroup", true, func(c *call) (any, error) {
		name := c.params.req("GroupName")
		if err := c.decoded(); err != nil {
			return nil, err
		}
		name, err := c.authorizeGroup(name, nil)
		if err != nil {
			return nil, err
		}
		g, us, err := c.iamSvc().GetGroup(c.ctx, name)
		if err != nil {
			return nil, err
		}
		us, truncated, marker, err := page(c, us)
		if err != nil {
			return nil, err
		}
		out := struct {
			Group       xmlGroup  `xml:"Group"`
			Users       []xmlUser `xml:"Users>member"`
			IsTruncated bool      `xml:"IsTruncated"`
			Marker      string    `xml:"Marker,omitempty"`
		}{Group: c.h.groupXML(g), Users: []xmlUser{}, IsTruncated: truncated, Marker: marker}
		for _, u := range us {
			out.Users = append(out.Users, c.h.userXML(u, false))
		}
		return out, nil
	})
	add("ListGroups", true, func(c *call) (any, error) {
		prefix := c.params.str("PathPrefix")
		if err := c.decoded(); err != nil {
			return nil, err
		}
		if err := c.authorize("*", nil); err != nil {
			return nil, err
		}
		gs, err := c.iamSvc().ListGroups(c.ctx, prefix)
		if err != nil {
			return nil, err
		}
		return groupsXML(c, gs)
	})
	add("DeleteGroup", false, func(c *call) (any, error) {
		name := c.params.req("GroupName")
		if err := c.decoded(); err != nil {
			return nil, err
		}
		name, err := c.authorizeGroup(name, nil)
		if err != nil {
			return nil, err
		}
		return nil, c.iamSvc().DeleteGroup(c.ctx, name)
	})
	add("AddUserToGroup", false, func(c *call) (any, error) {
		group, user := c.params.req("GroupName"), c.params.req("UserName")
		if err := c.decoded(); err != nil {
			return nil, err
		}
		group, err := c.authorizeGroup(group, nil)
		if err != nil {
			return nil, err
		}
		return nil, c.iamSvc().AddUserToGroup(c.ctx, group, user)
	})
	add("RemoveUserFromGroup", false, func(c *call) (any, error) {
		group, user := c.params.req("GroupName"), c.params.req("UserName")
		if err := c.decoded(); err != nil {
			return nil, err
		}
		group, err := c.authorizeGroup(group, nil)
		if err != nil {
			return nil, err
		}
		return nil, c.iamSvc().RemoveUserFromGroup(c.ctx, group, user)
	})
	add("ListGroupsForUser", true, func(c *call) (any, error) {
		user := c.params.req("UserName")
		if err := c.decoded(); err != nil {
			return nil, err
		}
		user, err := c.authorizeUser(user, nil)
		if err != nil {
			return nil, err
		}
		gs, err := c.iamSvc().ListGroupsForUser(c.ctx, user)
		if err != nil {
			return nil, err
		}
		return groupsXML(c, gs)
	})

	// Login profiles.
	type xmlLoginProfile struct {
		UserName              string `xml:"UserName"`
		CreateDate            string `xml:"CreateDate"`
		PasswordResetRequired bool   `xml:"PasswordResetRequired"`
	}
	add("CreateLoginProfile", false, func(c *call) (any, error) {
		user, pw, reset := c.params.req("UserName"), c.params.req("Password"), c.params.boolean("PasswordResetRequired", false)
		if err := c.decoded(); err != nil {
			return nil, err
		}
		user, err := c.authorizeUser(user, nil)
		if err != nil {
			return nil, err
		}
		p, err := c.iamSvc().CreateLoginProfile(c.ctx, user, pw, reset)
		if err != nil {
			return nil, err
		}
		return struct {
			LoginProfile xmlLoginProfile `xml:"LoginProfile"`
		}{xmlLoginProfile{p.UserName, isoTime(p.CreateDate), p.ResetRequired}}, nil
	})
	add("GetLoginProfile", true, func(c *call) (any, error) {
		user := c.targetUser()
		if err := c.decoded(); err != nil {
			return nil, err
		}
		user, err := c.authorizeTargetUser(nil)
		if err != nil {
			return nil, err
		}
		p, err := c.iamSvc().GetLoginProfile(c.ctx, user)
		if err != nil {
			return nil, err
		}
		return struct {
			LoginProfile xmlLoginProfile `xml:"LoginProfile"`
		}{xmlLoginProfile{p.UserName, isoTime(p.CreateDate), p.ResetRequired}}, nil
	})
	add("UpdateLoginProfile", false, func(c *call) (any, error) {
		user := c.params.req("UserName")
		var pw *string
		var reset *bool
		if c.params.has("Password") {
			v := c.params.str("Password")
			pw = &v
		}
		if c.params.has("PasswordResetRequired") {
			v := c.params.boolean("PasswordResetRequired", false)
			reset = &v
		}
		if err := c.decoded(); err != nil {
			return nil, err
		}
		user, err := c.authorizeUser(user, nil)
		if err != nil {
			return nil, err
		}
		return nil, c.iamSvc().UpdateLoginProfile(c.ctx, user, pw, reset)
	})
	add("DeleteLoginProfile", false, func(c *call) (any, error) {
		user := c.params.req("UserName")
		if err := c.decoded(); err != nil {
			return nil, err
		}
		user, err := c.authorizeUser(user, nil)
		if err != nil {
			return nil, err
		}
		return nil, c.iamSvc().DeleteLoginProfile(c.ctx, user)
	})

	// Simulation.
	add("SimulatePrincipalPolicy", true, func(c *call) (any, error) {
		source := c.params.req("PolicySourceArn")
		in := simulationInput(c)
		if err := c.decoded(); err != nil {
			return nil, err
		}
		user, err := userFromARN(c.h.cfg.Account, source)
		if err != nil {
			return nil, err
		}
		// Authorized on the stored user's ARN when the user exists (the
		// store finds the name whatever its case, so the ARN as given
		// could slip past a Deny on the user's own); else on the ARN as
		// given, so that a denied caller learns nothing of it.
		u, found, err := c.lookupUser(user)
		if err != nil {
			return nil, err
		}
		if found {
			source = iam.UserARN(c.h.cfg.Account, u.Path, u.Name)
		}
		if err := c.authorize(source, nil); err != nil {
			return nil, err
		}
		if !found {
			if _, err := c.iamSvc().GetUser(c.ctx, user); err != nil {
				return nil, err
			}
		}
		in.User = u.Name
		return simulate(c, in)
	})
	add("SimulateCustomPolicy", true, func(c *call) (any, error) {
		in := simulationInput(c)
		if err := c.decoded(); err != nil {
			return nil, err
		}
		if len(in.Policies) == 0 {
			return nil, invalidf("PolicyInputList must contain at least one policy")
		}
		if err := c.authorize("*", nil); err != nil {
			return nil, err
		}
		return simulate(c, in)
	})

	// Virtual MFA devices (mfaops.go).
	addMFAOps(add)
	return ops
}

func simulationInput(c *call) iam.SimulationInput {
	return iam.SimulationInput{
		Policies:         c.params.members("PolicyInputList", 100),
		BoundaryPolicies: c.params.members("PermissionsBoundaryPolicyInputList", 100),
		Actions:          c.params.members("ActionNames", 100),
		Resources:        c.params.members("ResourceArns", 100),
		Context:          c.params.contextEntries(100),
	}
}

// userFromARN extracts a user name from arn:aws:iam::ACCOUNT:user/PATH/NAME.
func userFromARN(account, arn string) (string, error) {
	rest, ok := strings.CutPrefix(arn, "arn:aws:iam::"+account+":user/")
	if !ok || rest == "" {
		return "", apierr.New(apierr.InvalidInput, "PolicySourceArn must be a user of this account (arn:aws:iam::%s:user/NAME)", account)
	}
	return rest[strings.LastIndexByte(rest, '/')+1:], nil
}

type xmlEvalResult struct {
	EvalActionName       string           `xml:"EvalActionName"`
	EvalResourceName     string           `xml:"EvalResourceName"`
	EvalDecision         string           `xml:"EvalDecision"`
	MatchedStatements    []xmlStatementID `xml:"MatchedStatements>member"`
	MissingContextValues []string         `xml:"MissingContextValues>member"`
	// Present when the principal has (or the call gave) a permissions
	// boundary, as IAM answers.
	Boundary *xmlBoundaryDetail `xml:"PermissionsBoundaryDecisionDetail,omitempty"`
}

type xmlBoundaryDetail struct {
	AllowedByPermissionsBoundary bool `xml:"AllowedByPermissionsBoundary"`
}

type xmlStatementID struct {
	SourcePolicyID   string `xml:"SourcePolicyId"`
	SourcePolicyType string `xml:"SourcePolicyType"`
}

func simulate(c *call, in iam.SimulationInput) (any, error) {
	rs, err := c.iamSvc().Simulate(c.ctx, in)
	if err != nil {
		return nil, err
	}
	out := struct {
		Results     []xmlEvalResult `xml:"EvaluationResults>member"`
		IsTruncated bool            `xml:"IsTruncated"`
	}{Results: []xmlEvalResult{}}
	for _, r := range rs {
		x := xmlEvalResult{EvalActionName: r.Action, EvalResourceName: r.Resource, EvalDecision: r.Decision.String(),
			MatchedStatements: []xmlStatementID{}, MissingContextValues: append([]string{}, r.Missing...)}
		if r.Boundary != nil {
			x.Boundary = &xmlBoundaryDetail{AllowedByPermissionsBoundary: r.Boundary.Allowed}
		}
		for _, m := range r.Matched {
			// IAM's PolicySourceType: "none" for documents given in the
			// call, "aws-managed" and "user-managed" for managed policies,
			// "user" for inline ones.
			typ := "user"
			switch {
			case strings.HasPrefix(m.Policy, "PolicyInputList."), strings.HasPrefix(m.Policy, "PermissionsBoundaryPolicyInputList."):
				typ = "none"
			case managed.IsAWS(m.Policy):
				typ = "aws-managed"
			case strings.HasPrefix(m.Policy, "arn:"):
				typ = "user-managed"
			}
			x.MatchedStatements = append(x.MatchedStatements, xmlStatementID{SourcePolicyID: m.Policy, SourcePolicyType: typ})
		}
		out.Results = append(out.Results, x)
	}
	return out, nil
}

// tagActions are the three tag actions of a taggable IAM resource
// (TagUser, UntagUser and ListUserTags; TagPolicy, …): the same parameters,
// limits and condition keys, on a different resource.
type tagActions struct {
	noun  string // "User": TagUser, UntagUser, ListUserTags
	param string // the resource's parameter: "UserName"
	// authorize authorizes the action on the resource id names and
	// returns the id to act on: the stored name (see authorizeUser).
	authorize func(c *call, id string, extra func(*policy.Context)) (string, error)
	tag       func(c *call, id string, tags []store.Tag) error
	untag     func(c *call, id string, keys []string) error
	tags      func(c *call, id string) ([]store.Tag, error)
}

func (t tagActions) register(add func(name string, readOnly bool, run func(c *call) (any, error))) {
	add("Tag"+t.noun, false, func(c *call) (any, error) {
		id := c.params.req(t.param)
		tags := c.params.tags("Tags.member", 50)
		if err := c.decoded(); err != nil {
			return nil, err
		}
		if err := checkFoldedKeys(tags); err != nil { // iamtagkeys.go
			return nil, err
		}
		if len(tags) == 0 {
			return nil, invalidf("Tags must name at least one tag")
		}
		cur, err := t.currentTags(c, id)
		if err != nil {
			return nil, err
		}
		id, err = t.authorize(c, id, func(rc *policy.Context) {
			requestTags(tags)(rc)
			storedRequestTags(tags, cur)(rc) // iamtagkeys.go
			keys := make([]string, 0, len(tags))
			for _, tg := range tags {
				keys = append(keys, tg.Key)
			}
			rc.Set("aws:TagKeys", withStoredSpellings(keys, cur)...) // iamtagkeys.go
		})
		if err != nil {
			return nil, err
		}
		return nil, t.tag(c, id, tags)
	})
	add("Untag"+t.noun, false, func(c *call) (any, error) {
		id := c.params.req(t.param)
		keys := c.params.members("TagKeys", 50)
		if err := c.decoded(); err != nil {
			return nil, err
		}
		cur, err := t.currentTags(c, id)
		if err != nil {
			return nil, err
		}
		id, err = t.authorize(c, id, func(rc *policy.Context) {
			if len(keys) > 0 {
				rc.Set("aws:TagKeys", withStoredSpellings(keys, cur)...) // iamtagkeys.go
			}
		})
		if err != nil {
			return nil, err
		}
		return nil, t.untag(c, id, keys)
	})
	add("List"+t.noun+"Tags", true, func(c *call) (any, error) {
		id := c.params.req(t.param)
		if err := c.decoded(); err != nil {
			return nil, err
		}
		id, err := t.authorize(c, id, nil)
		if err != nil {
			return nil, err
		}
		all, err := t.tags(c, id)
		if err != nil {
			return nil, err
		}
		tags, truncated, marker, err := page(c, all)
		if err != nil {
			return nil, err
		}
		return struct {
			Tags        []xmlTag `xml:"Tags>member"`
			IsTruncated bool     `xml:"IsTruncated"`
			Marker      string   `xml:"Marker,omitempty"`
		}{append([]xmlTag{}, tagsXML(tags)...), truncated, marker}, nil
	})
}
