// Package iam is kaginashi's identity service: users, access keys, groups,
// managed and inline policies, console passwords, and the authorizer that
// decides every request with them. Operations here do not authorize: the
// API edge authorizes each call first (one decision path for API, CLI and
// console), then calls the operation.
package iam

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
	"unicode"

	"github.com/kaginashi/kaginashi/internal/apierr"
	"github.com/kaginashi/kaginashi/internal/iam/managed"
	"github.com/kaginashi/kaginashi/internal/seal"
	"github.com/kaginashi/kaginashi/internal/store"
	"github.com/kaginashi/kaginashi/policy"
)

// Service runs IAM operations on a store.
type Service struct {
	store   store.Store
	sealer  *seal.Sealer
	account string
	region  string
	now     func() time.Time
}

// NewService makes the IAM service. now is the clock.
func NewService(st store.Store, sealer *seal.Sealer, account, region string, now func() time.Time) *Service {
	return &Service{store: st, sealer: sealer, account: account, region: region, now: now}
}

// Account is the account ID.
func (s *Service) Account() string { return s.account }

// notFound, exists and the like turn store sentinels into API errors with
// IAM's wording.
func mapStore(err error, what string) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, store.ErrNotFound):
		return apierr.New(apierr.NotFound, "The %s cannot be found.", what)
	case errors.Is(err, store.ErrExists):
		return apierr.New(apierr.AlreadyExists, "%s already exists.", upperFirst(what))
	case errors.Is(err, store.ErrConflict):
		return apierr.New(apierr.Conflict, "Cannot delete the %s: it still has dependent entities; remove them first.", what)
	case errors.Is(err, store.ErrLimitExceeded):
		return apierr.New(apierr.LimitExceeded, "Cannot exceed the quota for the %s.", what)
	}
	var ae *apierr.Error
	if errors.As(err, &ae) {
		return ae
	}
	return apierr.Wrap(err, "accessing the "+what)
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func invalid(format string, args ...any) error {
	return apierr.New(apierr.InvalidInput, format, args...)
}

func checkName(what, name string, max int) error {
	if err := ValidName(what, name, max); err != nil {
		return invalid("%v", err)
	}
	return nil
}

func defaultPath(p string) (string, error) {
	if p == "" {
		return "/", nil
	}
	if err := ValidPath(p); err != nil {
		return "", invalid("%v", err)
	}
	return p, nil
}

// checkTags enforces IAM's tag rules: at most 50, keys 1-128 and values
// 0-256 characters, no duplicate keys (case-insensitively), no aws: prefix.
func checkTags(tags []store.Tag) error {
	if len(tags) > 50 {
		return invalid("a resource can have at most 50 tags")
	}
	seen := map[string]bool{}
	for _, t := range tags {
		lk := strings.ToLower(t.Key)
		fk := foldKey(t.Key)
		switch {
		case t.Key == "" || len(t.Key) > 128:
			return invalid("tag keys must be 1 to 128 characters")
		case len(t.Value) > 256:
			return invalid("tag values must be at most 256 characters")
		case strings.HasPrefix(lk, "aws:"):
			return invalid("tag keys starting with aws: are reserved")
		case seen[fk]:
			return invalid("Duplicate tag keys found (%q). Please note that Tag keys are case insensitive.", t.Key)
		}
		seen[fk] = true
	}
	return nil
}

// foldKey is s with every rune replaced by the smallest of its Unicode
// simple case folding orbit, so that two keys have the same foldKey
// exactly when strings.EqualFold says they are equal — the rule the
// tags are merged by (a long s, ſ, folds with s and S; strings.ToLower
// does not make them equal).
func foldKey(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		min := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			if f < min {
				min = f
			}
		}
		b.WriteRune(min)
	}
	return b.String()
}

// ValidatePolicy checks a policy document on write. ERROR findings make it
// a MalformedPolicyDocument error carrying the findings.
func (s *Service) ValidatePolicy(doc string) ([]policy.Finding, error) {
	if len(doc) > 131072 {
		return nil, apierr.New(apierr.LimitExceeded, "Cannot exceed quota for PolicySize: 131072")
	}
	fs := policy.Validate([]byte(doc), policy.ValidateOptions{Region: s.region, AccountID: s.account})
	if !policy.HasErrors(fs) {
		// The API model's pattern for documents: tab, LF, CR and Latin-1
		// only. Checked after the findings (which say more about a
		// document with placeholders in another script); the code is the
		// model's, ValidationError.
		for _, r := range doc {
			if r != '\t' && r != '\n' && r != '\r' && (r < 0x20 || r > 0xFF) {
				return fs, apierr.WithCode(apierr.InvalidInput, "ValidationError",
					"1 validation error detected: Value at 'policyDocument' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\u0009\\u000A\\u000D\\u0020-\\u00FF]+ (the document has %q; policy documents take Latin-1 characters only)", r)
			}
		}
		return fs, nil
	}
	var msgs []string
	for _, f := range fs {
		if f.Type == policy.FindingError {
			msg := f.Code + ": " + f.Message
			if f.Path != "" {
				msg = f.Path + ": " + msg
			}
			msgs = append(msgs, msg)
		}
	}
	return fs, &apierr.Error{Kind: apierr.MalformedPolicy, Message: "The policy document has errors: " + strings.Join(msgs, " | "), Details: fs}
}

// --- users ----------------------------------------------------------------

// CreateUser creates a user.
func (s *Service) CreateUser(ctx context.Context, name, path, boundary string, tags []store.Tag) (store.User, error) {
	if err := checkName("user name", name, 64); err != nil {
		return store.User{}, err
	}
	if strings.EqualFold(name, "root") {
		// The console signs the account root in as user name "root" (its
		// password is the root secret access key): a user of that name
		// could never sign in, and audit lines would read ambiguously.
		return store.User{}, invalid("The user name %q is reserved for the account root; choose another.", name)
	}
	path, err := defaultPath(path)
	if err != nil {
		return store.User{}, err
	}
	if err := checkTags(tags); err != nil {
		return store.User{}, err
	}
	if boundary != "" {
		if _, err := s.GetPolicy(ctx, boundary); err != nil {
			return store.User{}, invalid("permissions boundary %s: %v", boundary, err)
		}
	}
	u := store.User{ID: NewID(PrefixUser), Name: name, Path: path, CreateDate: s.now().UTC(), PermissionsBoundary: boundary, Tags: tags}
	if err := s.store.CreateUser(ctx, u); err != nil {
		if errors.Is(err, store.ErrExists) {
			return store.User{}, apierr.New(apierr.AlreadyExists, "User with name %s already exists.", name)
		}
		return store.User{}, mapStore(err, "user")
	}
	return u, nil
}

// GetUser returns a user.
func (s *Service) GetUser(ctx context.Context, name string) (store.User, error) {
	if err := checkName("user name", name, 64); err != nil {
		return store.User{}, err
	}
	u, err := s.store.GetUser(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return u, apierr.New(apierr.NotFound, "The user with name %s cannot be found.", name)
	}
	return u, mapStore(err, "user")
}

// ListUsers lists users under a path prefix.
func (s *Service) ListUsers(ctx context.Context, pathPrefix string) ([]store.User, error) {
	if pathPrefix == "" {
		pathPrefix = "/"
	}
	us, err := s.store.ListUsers(ctx, pathPrefix)
	return us, mapStore(err, "users")
}

// DeleteUser deletes a user without dependents.
func (s *Service) DeleteUser(ctx context.Context, name string) error {
	if _, err := s.GetUser(ctx, name); err != nil {
		return err
	}
	err := s.store.DeleteUser(ctx, name)
	if errors.Is(err, store.ErrConflict) {
		return apierr.New(apierr.Conflict, "Cannot delete entity, must delete access keys, login profile, policies, group memberships and MFA devices first.")
	}
	return mapStore(err, "user")
}

// TagUser adds or overwrites a user's tags (mergeTags: IAM's limits, and
// keys matched without regard to case).
func (s *Service) TagUser(ctx context.Context, name string, tags []store.Tag) error {
	u, err := s.GetUser(ctx, name)
	if err != nil {
		return err
	}
	w, err := mergeTags(u.Tags, tags)
	if err != nil {
		return err
	}
	return mapStore(s.store.TagUser(ctx, name, w), "user")
}

// UntagUser removes tags by key (in any case).
func (s *Service) UntagUser(ctx context.Context, name string, keys []string) error {
	u, err := s.GetUser(ctx, name)
	if err != nil {
		return err
	}
	return mapStore(s.store.UntagUser(ctx, name, untagKeys(u.Tags, keys)), "user")
}

// PutUserPermissionsBoundary sets a user's permissions boundary to a
// managed policy (the account's or an AWS-managed one).
func (s *Service) PutUserPermissionsBoundary(ctx context.Context, user, arn string) error {
	if _, err := s.GetUser(ctx, user); err != nil {
		return err
	}
	if err := s.checkPolicyARN(arn); err != nil {
		if apierr.KindOf(err) == apierr.InvalidInput {
			return invalid("ARN %s is not valid: a permissions boundary must be a managed policy (arn:aws:iam::ACCOUNT:policy/NAME or arn:aws:iam::aws:policy/NAME)", arn)
		}
		return apierr.New(apierr.NotFound, "Scope ARN: %s does not exist or is not attachable.", arn)
	}
	if _, err := s.store.GetPolicy(ctx, arn); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return apierr.New(apierr.NotFound, "Scope ARN: %s does not exist or is not attachable.", arn)
		}
		return mapStore(err, "policy")
	}
	err := s.store.SetUserPermissionsBoundary(ctx, user, arn)
	if errors.Is(err, store.ErrNotFound) {
		return apierr.New(apierr.NotFound, "The user with name %s cannot be found.", user)
	}
	return mapStore(err, "user")
}

// DeleteUserPermissionsBoundary removes a user's permissions boundary; a
// user without one is left as it is.
func (s *Service) DeleteUserPermissionsBoundary(ctx context.Context, user string) error {
	u, err := s.GetUser(ctx, user)
	if err != nil || u.PermissionsBoundary == "" {
		return err
	}
	err = s.store.SetUserPermissionsBoundary(ctx, user, "")
	if errors.Is(err, store.ErrNotFound) {
		return apierr.New(apierr.NotFound, "The user with name %s cannot be found.", user)
	}
	return mapStore(err, "user")
}

// --- access keys -------------------------------------------------------------

// NewAccessKey is a created key with its secret: the only time the secret
// leaves the server.
type NewAccessKey struct {
	store.AccessKey
	Secret string
}

// CreateAccessKey creates a key for a user ("" with root: a root key).
func (s *Service) CreateAccessKey(ctx context.Context, user string) (NewAccessKey, error) {
	if user != "" {
		if _, err := s.GetUser(ctx, user); err != nil {
			return NewAccessKey{}, err
		}
	}
	id, secret := NewAccessKeyID(), NewSecret()
	ct, err := s.sealer.Seal([]byte(secret), id)
	if err != nil {
		return NewAccessKey{}, apierr.Wrap(err, "sealing the secret")
	}
	k := store.AccessKey{ID: id, UserName: user, SecretCiphertext: ct, Status: store.StatusActive, CreateDate: s.now().UTC()}
	if err := s.store.CreateAccessKey(ctx, k); err != nil {
		if errors.Is(err, store.ErrLimitExceeded) {
			return NewAccessKey{}, apierr.New(apierr.LimitExceeded, "Cannot exceed quota for AccessKeysPerUser: %d", store.MaxAccessKeysPerUser)
		}
		return NewAccessKey{}, mapStore(err, "access key")
	}
	return NewAccessKey{AccessKey: k, Secret: secret}, nil
}

// ImportAccessKey stores a key whose secret is given (the root key from
// the environment at start-up).
func (s *Service) ImportAccessKey(ctx context.Context, user, id, secret string) error {
	if err := ValidAccessKeyID(id); err != nil {
		return invalid("%v", err)
	}
	if len(secret) < 16 {
		return invalid("the secret access key is too short")
	}
	ct, err := s.sealer.Seal([]byte(secret), id)
	if err != nil {
		return apierr.Wrap(err, "sealing the secret")
	}
	return mapStore(s.store.CreateAccessKey(ctx, store.AccessKey{ID: id, UserName: user, SecretCiphertext: ct, Status: store.StatusActive, CreateDate: s.now().UTC()}), "access key")
}

// ListAccessKeys lists a user's keys ("" with root: root's).
func (s *Service) ListAccessKeys(ctx context.Context, user string) ([]store.AccessKey, error) {
	if user != "" {
		if _, err := s.GetUser(ctx, user); err != nil {
			return nil, err
		}
	}
	ks, err := s.store.ListAccessKeys(ctx, user)
	return ks, mapStore(err, "access keys")
}

// UpdateAccessKey activates or deactivates a key.
func (s *Service) UpdateAccessKey(ctx context.Context, user, id, status string) error {
	if status != store.StatusActive && status != store.StatusInactive {
		return invalid("status must be Active or Inactive")
	}
	if err := ValidAccessKeyID(id); err != nil {
		return invalid("%v", err)
	}
	err := s.store.UpdateAccessKey(ctx, user, id, status)
	if errors.Is(err, store.ErrNotFound) {
		return apierr.New(apierr.NotFound, "The Access Key with id %s cannot be found.", id)
	}
	return mapStore(err, "access key")
}

// DeleteAccessKey deletes a key.
func (s *Service) DeleteAccessKey(ctx context.Context, user, id string) error {
	if err := ValidAccessKeyID(id); err != nil {
		return invalid("%v", err)
	}
	err := s.store.DeleteAccessKey(ctx, user, id)
	if errors.Is(err, store.ErrNotFound) {
		return apierr.New(apierr.NotFound, "The Access Key with id %s cannot be found.", id)
	}
	return mapStore(err, "access key")
}

// --- managed policies -------------------------------------------------------

// CreatePolicy creates a customer-managed policy.
func (s *Service) CreatePolicy(ctx context.Context, name, path, description, doc string, tags []store.Tag) (store.ManagedPolicy, error) {
	if err := checkName("policy name", name, 128); err != nil {
		return store.ManagedPolicy{}, err
	}
	path, err := defaultPath(path)
	if err != nil {
		return store.ManagedPolicy{}, err
	}
	if len(description) > 1000 {
		return store.ManagedPolicy{}, invalid("description must be at most 1000 characters")
	}
	if err := checkTags(tags); err != nil {
		return store.ManagedPolicy{}, err
	}
	if _, err := s.ValidatePolicy(doc); err != nil {
		return store.ManagedPolicy{}, err
	}
	now := s.now().UTC()
	p := store.ManagedPolicy{
		ARN: PolicyARN(s.account, path, name), ID: NewID(PrefixPolicy), Name: name, Path: path,
		Description: description, DefaultVersionID: "v1", CreateDate: now, UpdateDate: now, Tags: tags,
	}
	if err := s.store.CreatePolicy(ctx, p, doc); err != nil {
		if errors.Is(err, store.ErrExists) {
			return store.ManagedPolicy{}, apierr.New(apierr.AlreadyExists, "A policy called %s already exists. Duplicate names are not allowed.", name)
		}
		return store.ManagedPolicy{}, mapStore(err, "policy")
	}
	return p, nil
}

func (s *Service) checkPolicyARN(arn string) error {
	if managed.IsAWS(arn) {
		// AWS-managed: any name; GetPolicy answers NoSuchEntity for the
		// ones kaginashi does not ship.
		if len(arn) > policyARNLen || ValidName("policy name", arn[strings.LastIndexByte(arn, '/')+1:], 128) != nil {
			return invalid("%q is not a valid policy ARN", arn)
		}
		return nil
	}
	account, _, _, err := ParsePolicyARN(arn)
	if err != nil {
		return invalid("%v", err)
	}
	if account != s.account {
		return apierr.New(apierr.NotFound, "Policy %s does not exist or is not attachable.", arn)
	}
	return nil
}

// GetPolicy returns a managed policy.
func (s *Service) GetPolicy(ctx context.Context, arn string) (store.ManagedPolicy, error) {
	if err := s.checkPolicyARN(arn); err != nil {
		return store.ManagedPolicy{}, err
	}
	p, err := s.store.GetPolicy(ctx, arn)
	if errors.Is(err, store.ErrNotFound) {
		return p, apierr.New(apierr.NotFound, "Policy %s does not exist or is not attachable.", arn)
	}
	return p, mapStore(err, "policy")
}

// ListPolicies lists policies: scope "Local" the account's own, "AWS"
// the AWS-managed ones kaginashi ships, "All" (the default) both, each
// scope by name.
func (s *Service) ListPolicies(ctx context.Context, scope, pathPrefix string, onlyAttached bool) ([]store.ManagedPolicy, error) {
	switch scope {
	case "":
		scope = "All"
	case "All", "Local", "AWS":
	default:
		return nil, invalid("Scope must be All, AWS or Local")
	}
	if pathPrefix == "" {
		pathPrefix = "/"
	}
	ps, err := s.store.ListPolicies(ctx, pathPrefix, onlyAttached)
	if err != nil {
		return nil, mapStore(err, "policies")
	}
	var out []store.ManagedPolicy
	for _, p := range ps {
		aws := managed.IsAWS(p.ARN)
		if scope == "All" || aws == (scope == "AWS") {
			out = append(out, p)
		}
	}
	// The account's policies first, then AWS's, as IAM lists them.
	sort.SliceStable(out, func(i, j int) bool {
		ai, aj := managed.IsAWS(out[i].ARN), managed.IsAWS(out[j].ARN)
		if ai != aj {
			return aj
		}
		return strings.ToLower(out[i].Name) < strings.ToLower(out[j].Name)
	})
	return out, nil
}

// InstallAWSManagedPolicies puts the AWS-managed policies kaginashi ships
// into the store, or brings them up to the shipped version; unchanged ones
// are not rewritten (a rewrite would drop every replica's policy cache).
// The server calls it at start.
func (s *Service) InstallAWSManagedPolicies(ctx context.Context) error {
	for _, mp := range managed.All() {
		p := store.ManagedPolicy{
			ARN: mp.ARN(), ID: mp.ID(), Name: mp.Name, Path: mp.Path, Description: mp.Description,
			DefaultVersionID: mp.VersionID, CreateDate: mp.Created, UpdateDate: mp.Updated,
		}
		cur, err := s.store.GetPolicy(ctx, p.ARN)
		if err == nil && cur.DefaultVersionID == p.DefaultVersionID && cur.Description == p.Description {
			v, err := s.store.GetPolicyVersion(ctx, p.ARN, p.DefaultVersionID)
			if err == nil && v.Document == mp.Document {
				continue
			}
		} else if err != nil && !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("reading AWS-managed policy %s: %w", p.ARN, err)
		}
		if err := s.store.PutAWSManagedPolicy(ctx, p, mp.Document); err != nil {
			return fmt.Errorf("installing AWS-managed policy %s: %w", p.ARN, err)
		}
	}
	return nil
}

// readOnly refuses changes to AWS-managed policies, which only AWS (here:
// a kaginashi release) changes.
func readOnly(arn string) error {
	if managed.IsAWS(arn) {
		return apierr.New(apierr.AccessDenied, "%s is an AWS managed policy; it cannot be changed or deleted. Create a customer managed policy from its document instead.", arn)
	}
	return nil
}

// DeletePolicy deletes a detached policy with only its default version.
func (s *Service) DeletePolicy(ctx context.Context, arn string) error {
	if _, err := s.GetPolicy(ctx, arn); err != nil {
		return err
	}
	if err := readOnly(arn); err != nil {
		return err
	}
	// IAM refuses to delete a policy some user has as its permissions
	// boundary; this names the user. (The store refuses it too, in the
	// delete's own transaction, so a boundary set concurrently with this
	// look-up cannot lose its policy.)
	e, err := s.store.PolicyEntities(ctx, arn)
	if err != nil {
		return mapStore(err, "policy")
	}
	if len(e.BoundaryUsers) > 0 {
		return apierr.New(apierr.Conflict, "Cannot delete a policy attached to entities: it is the permissions boundary of user %s.", e.BoundaryUsers[0].Name)
	}
	err = s.store.DeletePolicy(ctx, arn)
	if errors.Is(err, store.ErrConflict) {
		return apierr.New(apierr.Conflict, "Cannot delete a policy attached to entities (or some user's permissions boundary), or with versions other than the default; detach it and delete the other versions first (aws iam list-entities-for-policy lists its users and groups).")
	}
	return mapStore(err, "policy")
}

// CreatePolicyVersion adds a version.
func (s *Service) CreatePolicyVersion(ctx context.Context, arn, doc string, setDefault bool) (store.PolicyVersion, error) {
	if _, err := s.GetPolicy(ctx, arn); err != nil {
		return store.PolicyVersion{}, err
	}
	if err := readOnly(arn); err != nil {
		return store.PolicyVersion{}, err
	}
	if _, err := s.ValidatePolicy(doc); err != nil {
		return store.PolicyVersion{}, err
	}
	v, err := s.store.CreatePolicyVersion(ctx, arn, doc, setDefault, s.now().UTC())
	if errors.Is(err, store.ErrLimitExceeded) {
		return v, apierr.New(apierr.LimitExceeded, "A managed policy can have up to %d versions. Before you create a new version, you must delete an existing version.", store.MaxPolicyVersions)
	}
	return v, mapStore(err, "policy version")
}

// GetPolicyVersion returns one version.
func (s *Service) GetPolicyVersion(ctx context.Context, arn, version string) (store.PolicyVersion, error) {
	if err := ValidVersionID(version); err != nil {
		return store.PolicyVersion{}, invalid("%v", err)
	}
	if err := s.checkPolicyARN(arn); err != nil {
		return store.PolicyVersion{}, err
	}
	v, err := s.store.GetPolicyVersion(ctx, arn, version)
	if errors.Is(err, store.ErrNotFound) {
		return v, apierr.New(apierr.NotFound, "Policy %s version %s does not exist or is not attachable.", arn, version)
	}
	return v, mapStore(err, "policy version")
}

// ListPolicyVersions lists a policy's versions.
func (s *Service) ListPolicyVersions(ctx context.Context, arn string) ([]store.PolicyVersion, error) {
	if _, err := s.GetPolicy(ctx, arn); err != nil {
		return nil, err
	}
	vs, err := s.store.ListPolicyVersions(ctx, arn)
	return vs, mapStore(err, "policy versions")
}

// SetDefaultPolicyVersion makes a version the default.
func (s *Service) SetDefaultPolicyVersion(ctx context.Context, arn, version string) error {
	if _, err := s.GetPolicyVersion(ctx, arn, version); err != nil {
		return err
	}
	if err := readOnly(arn); err != nil {
		return err
	}
	return mapStore(s.store.SetDefaultPolicyVersion(ctx, arn, version, s.now().UTC()), "policy version")
}

// DeletePolicyVersion deletes a non-default version.
func (s *Service) DeletePolicyVersion(ctx context.Context, arn, version string) error {
	if _, err := s.GetPolicyVersion(ctx, arn, version); err != nil {
		return err
	}
	if err := readOnly(arn); err != nil {
		return err
	}
	err := s.store.DeletePolicyVersion(ctx, arn, version)
	if errors.Is(err, store.ErrConflict) {
		return apierr.New(apierr.Conflict, "Cannot delete the default version of a policy.")
	}
	return mapStore(err, "policy version")
}

// --- attachments -------------------------------------------------------------

// AttachUserPolicy attaches a managed policy to a user.
func (s *Service) AttachUserPolicy(ctx context.Context, user, arn string) error {
	if _, err := s.GetUser(ctx, user); err != nil {
		return err
	}
	if _, err := s.GetPolicy(ctx, arn); err != nil {
		return err
	}
	return mapStore(s.store.AttachUserPolicy(ctx, user, arn), "attachment")
}

// DetachUserPolicy detaches a managed policy from a user.
func (s *Service) DetachUserPolicy(ctx context.Context, user, arn string) error {
	if _, err := s.GetUser(ctx, user); err != nil {
		return err
	}
	if err := s.checkPolicyARN(arn); err != nil {
		return err
	}
	err := s.store.DetachUserPolicy(ctx, user, arn)
	if errors.Is(err, store.ErrNotFound) {
		return apierr.New(apierr.NotFound, "Policy %s was not found.", arn)
	}
	return mapStore(err, "attachment")
}

// ListAttachedUserPolicies lists the managed policies attached to a user.
func (s *Service) ListAttachedUserPolicies(ctx context.Context, user string) ([]store.ManagedPolicy, error) {
	if _, err := s.GetUser(ctx, user); err != nil {
		return nil, err
	}
	ps, err := s.store.ListAttachedUserPolicies(ctx, user)
	return ps, mapStore(err, "attachments")
}

// AttachGroupPolicy attaches a managed policy to a group.
func (s *Service) AttachGroupPolicy(ctx context.Context, group, arn string) error {
	if _, _, err := s.GetGroup(ctx, group); err != nil {
		return err
	}
	if _, err := s.GetPolicy(ctx, arn); err != nil {
		return err
	}
	return mapStore(s.store.AttachGroupPolicy(ctx, group, arn), "attachment")
}

// DetachGroupPolicy detaches a managed policy from a group.
func (s *Service) DetachGroupPolicy(ctx context.Context, group, arn string) error {
	if _, _, err := s.GetGroup(ctx, group); err != nil {
		return err
	}
	if err := s.checkPolicyARN(arn); err != nil {
		return err
	}
	err := s.store.DetachGroupPolicy(ctx, group, arn)
	if errors.Is(err, store.ErrNotFound) {
		return apierr.New(apierr.NotFound, "Policy %s was not found.", arn)
	}
	return mapStore(err, "attachment")
}

// ListAttachedGroupPolicies lists the managed policies attached to a group.
func (s *Service) ListAttachedGroupPolicies(ctx context.Context, group string) ([]store.ManagedPolicy, error) {
	if _, _, err := s.GetGroup(ctx, group); err != nil {
		return nil, err
	}
	ps, err := s.store.ListAttachedGroupPolicies(ctx, group)
	return ps, mapStore(err, "attachments")
}

// --- inline policies ----------------------------------------------------------

// PutUserPolicy creates or replaces a user's inline policy.
func (s *Service) PutUserPolicy(ctx context.Context, user, name, doc string) error {
	if err := checkName("policy name", name, 128); err != nil {
		return err
	}
	if _, err := s.GetUser(ctx, user); err != nil {
		return err
	}
	if _, err := s.ValidatePolicy(doc); err != nil {
		return err
	}
	return mapStore(s.store.PutUserPolicy(ctx, store.InlinePolicy{UserName: user, PolicyName: name, Document: doc}), "inline policy")
}

// GetUserPolicy returns an inline policy.
func (s *Service) GetUserPolicy(ctx context.Context, user, name string) (store.InlinePolicy, error) {
	if err := checkName("policy name", name, 128); err != nil {
		return store.InlinePolicy{}, err
	}
	if _, err := s.GetUser(ctx, user); err != nil {
		return store.InlinePolicy{}, err
	}
	p, err := s.store.GetUserPolicy(ctx, user, name)
	if errors.Is(err, store.ErrNotFound) {
		return p, apierr.New(apierr.NotFound, "The user policy with name %s cannot be found.", name)
	}
	return p, mapStore(err, "inline policy")
}

// ListUserPolicies lists a user's inline policy names.
func (s *Service) ListUserPolicies(ctx context.Context, user string) ([]string, error) {
	if _, err := s.GetUser(ctx, user); err != nil {
		return nil, err
	}
	ns, err := s.store.ListUserPolicies(ctx, user)
	return ns, mapStore(err, "inline policies")
}

// DeleteUserPolicy deletes an inline policy.
func (s *Service) DeleteUserPolicy(ctx context.Context, user, name string) error {
	if _, err := s.GetUserPolicy(ctx, user, name); err != nil {
		return err
	}
	return mapStore(s.store.DeleteUserPolicy(ctx, user, name), "inline policy")
}

// --- groups ---------------------------------------------------------------------

// CreateGroup creates a group.
func (s *Service) CreateGroup(ctx context.Context, name, path string) (store.Group, error) {
	if err := checkName("group name", name, 128); err != nil {
		return store.Group{}, err
	}
	path, err := defaultPath(path)
	if err != nil {
		return store.Group{}, err
	}
	g := store.Group{ID: NewID(PrefixGroup), Name: name, Path: path, CreateDate: s.now().UTC()}
	if err := s.store.CreateGroup(ctx, g); err != nil {
		if errors.Is(err, store.ErrExists) {
			return store.Group{}, apierr.New(apierr.AlreadyExists, "Group with name %s already exists.", name)
		}
		return store.Group{}, mapStore(err, "group")
	}
	return g, nil
}

// GetGroup returns a group and its members.
func (s *Service) GetGroup(ctx context.Context, name string) (store.Group, []store.User, error) {
	if err := checkName("group name", name, 128); err != nil {
		return store.Group{}, nil, err
	}
	g, us, err := s.store.GetGroup(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return g, nil, apierr.New(apierr.NotFound, "The group with name %s cannot be found.", name)
	}
	return g, us, mapStore(err, "group")
}

// ListGroups lists groups.
func (s *Service) ListGroups(ctx context.Context, pathPrefix string) ([]store.Group, error) {
	if pathPrefix == "" {
		pathPrefix = "/"
	}
	gs, err := s.store.ListGroups(ctx, pathPrefix)
	return gs, mapStore(err, "groups")
}

// DeleteGroup deletes an empty group without policies.
func (s *Service) DeleteGroup(ctx context.Context, name string) error {
	if _, _, err := s.GetGroup(ctx, name); err != nil {
		return err
	}
	err := s.store.DeleteGroup(ctx, name)
	if errors.Is(err, store.ErrConflict) {
		return apierr.New(apierr.Conflict, "Cannot delete entity, must remove users from group and detach policies first.")
	}
	return mapStore(err, "group")
}

// AddUserToGroup adds a member.
func (s *Service) AddUserToGroup(ctx context.Context, group, user string) error {
	if _, _, err := s.GetGroup(ctx, group); err != nil {
		return err
	}
	if _, err := s.GetUser(ctx, user); err != nil {
		return err
	}
	return mapStore(s.store.AddUserToGroup(ctx, group, user), "membership")
}

// RemoveUserFromGroup removes a member.
func (s *Service) RemoveUserFromGroup(ctx context.Context, group, user string) error {
	if _, _, err := s.GetGroup(ctx, group); err != nil {
		return err
	}
	if _, err := s.GetUser(ctx, user); err != nil {
		return err
	}
	err := s.store.RemoveUserFromGroup(ctx, group, user)
	if errors.Is(err, store.ErrNotFound) {
		return apierr.New(apierr.NotFound, "The user %s is not in group %s.", user, group)
	}
	return mapStore(err, "membership")
}

// ListGroupsForUser lists a user's groups.
func (s *Service) ListGroupsForUser(ctx context.Context, user string) ([]store.Group, error) {
	if _, err := s.GetUser(ctx, user); err != nil {
		return nil, err
	}
	gs, err := s.store.ListGroupsForUser(ctx, user)
	return gs, mapStore(err, "groups")
}

// --- login profiles -----------------------------------------------------------

// CreateLoginProfile gives a user a console password.
func (s *Service) CreateLoginProfile(ctx context.Context, user, password string, reset bool) (store.LoginProfile, error) {
	if _, err := s.GetUser(ctx, user); err != nil {
		return store.LoginProfile{}, err
	}
	hash, err := HashPassword(password)
	if err != nil {
		return store.LoginProfile{}, err
	}
	p := store.LoginProfile{UserName: user, PasswordHash: hash, ResetRequired: reset, CreateDate: s.now().UTC()}
	if err := s.store.CreateLoginProfile(ctx, p); err != nil {
		if errors.Is(err, store.ErrExists) {
			return store.LoginProfile{}, apierr.New(apierr.AlreadyExists, "Login Profile for user %s already exists.", user)
		}
		return store.LoginProfile{}, mapStore(err, "login profile")
	}
	return p, nil
}

// GetLoginProfile returns a user's login profile (without the hash).
func (s *Service) GetLoginProfile(ctx context.Context, user string) (store.LoginProfile, error) {
	if _, err := s.GetUser(ctx, user); err != nil {
		return store.LoginProfile{}, err
	}
	p, err := s.store.GetLoginProfile(ctx, user)
	if errors.Is(err, store.ErrNotFound) {
		return p, apierr.New(apierr.NotFound, "Login Profile for User %s cannot be found.", user)
	}
	p.PasswordHash = ""
	return p, mapStore(err, "login profile")
}

// UpdateLoginProfile changes a user's password or reset flag.
func (s *Service) UpdateLoginProfile(ctx context.Context, user string, password *string, reset *bool) error {
	if _, err := s.GetUser(ctx, user); err != nil {
		return err
	}
	p, err := s.store.GetLoginProfile(ctx, user)
	if errors.Is(err, store.ErrNotFound) {
		return apierr.New(apierr.NotFound, "Login Profile for User %s cannot be found.", user)
	}
	if err != nil {
		return mapStore(err, "login profile")
	}
	if password != nil {
		if p.PasswordHash, err = HashPassword(*password); err != nil {
			return err
		}
	}
	if reset != nil {
		p.ResetRequired = *reset
	}
	return mapStore(s.store.UpdateLoginProfile(ctx, p), "login profile")
}

// DeleteLoginProfile removes a user's console password.
func (s *Service) DeleteLoginProfile(ctx context.Context, user string) error {
	if _, err := s.GetLoginProfile(ctx, user); err != nil {
		return err
	}
	return mapStore(s.store.DeleteLoginProfile(ctx, user), "login profile")
}

// --- simulation ---------------------------------------------------------------

// SimulationInput is a SimulatePrincipalPolicy / SimulateCustomPolicy call.
type SimulationInput struct {
	// User: simulate the user's own policies and permissions boundary
	// (SimulatePrincipalPolicy).
	User string
	// Policies: extra policy documents (PolicyInputList).
	Policies []string
	// BoundaryPolicies: a permissions boundary document
	// (PermissionsBoundaryPolicyInputList, at most one). It replaces the
	// user's own boundary, as IAM's simulator does.
	BoundaryPolicies []string
	Actions          []string
	Resources        []string // default "*"
	Context          map[string][]string
	// Caller, for ${aws:username}-style keys when the request gives none.
	CallerUser string
}

// Simulate evaluates actions × resources against a user's policies and/or
// given documents, capped by a permissions boundary, as IAM's policy
// simulator does.
func (s *Service) Simulate(ctx context.Context, in SimulationInput) ([]Evaluation, error) {
	if len(in.Actions) == 0 {
		return nil, invalid("ActionNames must name at least one action")
	}
	if len(in.Actions) > 100 || len(in.Resources) > 100 || len(in.Policies) > 100 {
		return nil, invalid("at most 100 actions, resources and policies per simulation")
	}
	if len(in.BoundaryPolicies) > 1 {
		return nil, invalid("PermissionsBoundaryPolicyInputList takes one permissions boundary policy")
	}
	var compiled []*policy.Compiled
	var boundary *Boundary
	if in.User != "" {
		docs, err := s.store.PrincipalPolicies(ctx, in.User)
		if err != nil {
			return nil, mapStore(err, "user's policies")
		}
		for _, d := range docs {
			if c, err := policy.ParseAndCompile(d.Name, []byte(d.Document)); err == nil {
				compiled = append(compiled, c)
			}
		}
		if len(in.BoundaryPolicies) == 0 {
			u, err := s.store.GetUser(ctx, in.User)
			if err != nil {
				return nil, mapStore(err, "user")
			}
			if boundary, err = loadBoundary(ctx, s.store, u.PermissionsBoundary); err != nil {
				return nil, err
			}
		}
	}
	compile := func(name, doc string) (*policy.Compiled, error) {
		if _, err := s.ValidatePolicy(doc); err != nil {
			return nil, err
		}
		c, err := policy.ParseAndCompile(name, []byte(doc))
		if err != nil {
			return nil, &apierr.Error{Kind: apierr.MalformedPolicy, Message: err.Error()}
		}
		return c, nil
	}
	for i, doc := range in.Policies {
		c, err := compile(fmt.Sprintf("PolicyInputList.%d", i+1), doc)
		if err != nil {
			return nil, err
		}
		compiled = append(compiled, c)
	}
	for i, doc := range in.BoundaryPolicies {
		name := fmt.Sprintf("PermissionsBoundaryPolicyInputList.%d", i+1)
		c, err := compile(name, doc)
		if err != nil {
			return nil, err
		}
		boundary = &Boundary{Source: name, Set: policy.NewSet(c)}
	}
	set := policy.NewSet(compiled...)
	rc := policy.NewContext()
	keys := make([]string, 0, len(in.Context))
	for k := range in.Context {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		rc.Set(k, in.Context[k]...)
	}
	resources := in.Resources
	if len(resources) == 0 {
		resources = []string{"*"}
	}
	var out []Evaluation
	for _, a := range in.Actions {
		for _, r := range resources {
			out = append(out, *Evaluate(set, boundary, &policy.Request{Action: a, Resource: r, Context: rc}))
		}
	}
	return out, nil
}
