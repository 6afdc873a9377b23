package iam

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/kaginashi/kaginashi/internal/apierr"
	"github.com/kaginashi/kaginashi/internal/seal"
	"github.com/kaginashi/kaginashi/internal/store"
	"github.com/kaginashi/kaginashi/policy"
)

// Principal is who makes a request: the account root, or an IAM user
// through one of its access keys (or a console session).
type Principal struct {
	Account     string
	Root        bool
	UserName    string // "" for root
	UserID      string // AIDA...; the account ID for root
	ARN         string
	AccessKeyID string // "" for console sessions
	Tags        []store.Tag
	// MFA is true for console sessions signed in with a TOTP code. For
	// access keys the MFA key is absent, as on AWS for long-term keys.
	MFA     bool
	Console bool
}

// Type is CloudTrail's userIdentity.type: "Root" or "IAMUser".
func (p *Principal) Type() string {
	if p.Root {
		return "Root"
	}
	return "IAMUser"
}

// RequestInfo is what the edge knows about a request besides its
// parameters; it becomes global condition keys.
type RequestInfo struct {
	SourceIP  string
	UserAgent string
	Secure    bool // TLS
	Time      time.Time
	Region    string // the requested region (credential scope)
}

// BaseContext returns the global condition keys for a principal's request:
// aws:username, aws:userid, aws:PrincipalArn, aws:PrincipalAccount,
// aws:PrincipalType, aws:PrincipalTag/*, aws:SourceIp, aws:CurrentTime,
// aws:EpochTime, aws:SecureTransport, aws:UserAgent, aws:RequestedRegion,
// and aws:MultiFactorAuthPresent/Age for console sessions.
func BaseContext(p *Principal, ri RequestInfo) *policy.Context {
	c := policy.NewContext()
	c.Set("aws:PrincipalArn", p.ARN)
	c.Set("aws:PrincipalAccount", p.Account)
	c.Set("aws:userid", p.UserID)
	if p.Root {
		c.Set("aws:PrincipalType", "Account")
	} else {
		c.Set("aws:PrincipalType", "User")
		c.Set("aws:username", p.UserName)
	}
	for _, t := range p.Tags {
		c.Set("aws:PrincipalTag/"+t.Key, t.Value)
	}
	if ri.SourceIP != "" {
		c.Set("aws:SourceIp", ri.SourceIP)
	}
	if ri.UserAgent != "" {
		c.Set("aws:UserAgent", ri.UserAgent)
	}
	c.Set("aws:SecureTransport", strconv.FormatBool(ri.Secure))
	c.Set("aws:CurrentTime", ri.Time.UTC().Format(time.RFC3339))
	c.Set("aws:EpochTime", strconv.FormatInt(ri.Time.Unix(), 10))
	if ri.Region != "" {
		c.Set("aws:RequestedRegion", ri.Region)
	}
	if p.Console {
		c.Set("aws:MultiFactorAuthPresent", strconv.FormatBool(p.MFA))
	}
	return c
}

// Decision is an authorization outcome with its reasons.
type Decision struct {
	Allowed  bool
	Result   policy.Decision
	Matched  []policy.StatementRef
	Missing  []string
	Root     bool // allowed because the principal is the account root
	Action   string
	Resource string
	// Boundary is the ARN of the user's permissions boundary when it, not
	// the identity policies, refused the request.
	Boundary string
}

// Authorizer decides requests with the policies that apply to a
// principal. It caches each user's compiled policy set and drops it when
// the store's IAM generation moves, so several replicas sharing one
// database stay correct.
type Authorizer struct {
	store   store.Store
	sealer  *seal.Sealer
	account string

	mu    sync.Mutex
	sets  map[string]cachedSet // by user name
	keys  map[string]cachedKey // by access key ID
	gen   int64
	limit int
}

type cachedSet struct {
	set *policy.Set
	// invalid names policies that do not compile (a document stored by an
	// older version, say); they are skipped and reported.
	invalid []string
	// boundary is the user's permissions boundary (nil: none). It caps
	// what the identity policies grant; one that cannot be loaded or
	// compiled allows nothing (fail closed).
	boundary    *policy.Set
	boundaryARN string
}

type cachedKey struct {
	secret    string
	principal *Principal
}

// NewAuthorizer makes an authorizer over a store.
func NewAuthorizer(st store.Store, sealer *seal.Sealer, account string) *Authorizer {
	return &Authorizer{store: st, sealer: sealer, account: account, sets: map[string]cachedSet{}, keys: map[string]cachedKey{}, limit: 10000}
}

// refresh drops the caches when the IAM generation has moved.
func (a *Authorizer) refresh(ctx context.Context) error {
	gen, err := a.store.IAMGeneration(ctx)
	if err != nil {
		return apierr.Wrap(err, "reading the IAM generation")
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if gen != a.gen || len(a.sets)+len(a.keys) > a.limit {
		a.gen = gen
		clear(a.sets)
		clear(a.keys)
	}
	return nil
}

// ErrUnknownKey means the access key does not exist or is inactive.
var ErrUnknownKey = errors.New("the security token included in the request is invalid")

// Credentials resolves an access key to its secret and principal.
func (a *Authorizer) Credentials(ctx context.Context, accessKeyID string) (string, *Principal, error) {
	if err := a.refresh(ctx); err != nil {
		return "", nil, err
	}
	a.mu.Lock()
	ck, ok := a.keys[accessKeyID]
	a.mu.Unlock()
	if ok {
		return ck.secret, ck.principal, nil
	}
	k, err := a.store.GetAccessKey(ctx, accessKeyID)
	if errors.Is(err, store.ErrNotFound) {
		return "", nil, ErrUnknownKey
	}
	if err != nil {
		return "", nil, apierr.Wrap(err, "looking up the access key")
	}
	if k.Status != store.StatusActive {
		return "", nil, ErrUnknownKey
	}
	secret, err := a.sealer.Open(k.SecretCiphertext, k.ID)
	if err != nil {
		return "", nil, apierr.Wrap(err, "decrypting the access key")
	}
	p := &Principal{Account: a.account, AccessKeyID: k.ID}
	if k.UserName == "" {
		p.Root, p.UserID, p.ARN = true, a.account, RootARN(a.account)
	} else {
		u, err := a.store.GetUser(ctx, k.UserName)
		if err != nil {
			return "", nil, apierr.Wrap(err, "looking up the key's user")
		}
		p.UserName, p.UserID, p.ARN, p.Tags = u.Name, u.ID, UserARN(a.account, u.Path, u.Name), u.Tags
	}
	a.mu.Lock()
	a.keys[accessKeyID] = cachedKey{secret: string(secret), principal: p}
	a.mu.Unlock()
	return string(secret), p, nil
}

// policySet returns the compiled policies that apply to a user.
func (a *Authorizer) policySet(ctx context.Context, user string) (cachedSet, error) {
	a.mu.Lock()
	cs, ok := a.sets[user]
	a.mu.Unlock()
	if ok {
		return cs, nil
	}
	docs, err := a.store.PrincipalPolicies(ctx, user)
	if err != nil {
		return cachedSet{}, apierr.Wrap(err, "loading the user's policies")
	}
	var compiled []*policy.Compiled
	for _, d := range docs {
		c, err := policy.ParseAndCompile(d.Name, []byte(d.Document))
		if err != nil {
			cs.invalid = append(cs.invalid, d.Name)
			continue
		}
		compiled = append(compiled, c)
	}
	cs.set = policy.NewSet(compiled...)
	if err := a.loadBoundary(ctx, user, &cs); err != nil {
		return cachedSet{}, err
	}
	a.mu.Lock()
	a.sets[user] = cs
	a.mu.Unlock()
	return cs, nil
}

// loadBoundary compiles the user's permissions boundary into cs.
func (a *Authorizer) loadBoundary(ctx context.Context, user string, cs *cachedSet) error {
	u, err := a.store.GetUser(ctx, user)
	if errors.Is(err, store.ErrNotFound) {
		return nil // a deleted user: its identity policies are gone too
	}
	if err != nil {
		return apierr.Wrap(err, "loading the user's permissions boundary")
	}
	b, err := loadBoundary(ctx, a.store, u.PermissionsBoundary)
	if err != nil || b == nil {
		return err
	}
	cs.boundary, cs.boundaryARN = b.Set, b.Source
	if b.Problem != "" {
		cs.invalid = append(cs.invalid, b.Problem)
	}
	return nil
}

// Authorize decides whether p may perform action on resource in context
// rc. The account root may do everything, as on AWS.
func (a *Authorizer) Authorize(ctx context.Context, p *Principal, action, resource string, rc *policy.Context) (*Decision, error) {
	d := &Decision{Action: action, Resource: resource}
	if p.Root {
		d.Allowed, d.Root, d.Result = true, true, policy.Allowed
		return d, nil
	}
	if err := a.refresh(ctx); err != nil {
		return nil, err
	}
	cs, err := a.policySet(ctx, p.UserName)
	if err != nil {
		return nil, err
	}
	req := &policy.Request{Action: action, Resource: resource, Context: rc}
	res := cs.set.Decide(req)
	d.Result, d.Matched, d.Missing = res.Decision, res.Matched, res.Missing
	d.Allowed = res.Decision == policy.Allowed
	// A permissions boundary caps the grant: both must allow, and a deny
	// in either is final (IAM's evaluation logic).
	if cs.boundary != nil && res.Decision != policy.ExplicitDeny {
		b := cs.boundary.Decide(req)
		if b.Decision != policy.Allowed && (d.Allowed || b.Decision == policy.ExplicitDeny) {
			d.Allowed = false
			d.Result, d.Matched, d.Boundary = b.Decision, b.Matched, cs.boundaryARN
			d.Missing = append(append([]string(nil), d.Missing...), b.Missing...)
		}
	}
	return d, nil
}

// DeniedMessage is AWS's wording for an authorization failure.
func DeniedMessage(p *Principal, d *Decision) string {
	kind := "an identity-based policy"
	why := "because no identity-based policy allows the " + d.Action + " action"
	if d.Boundary != "" {
		kind = "a permissions boundary"
		why = "because no permissions boundary allows the " + d.Action + " action (" + d.Boundary + ")"
	}
	if d.Result == policy.ExplicitDeny {
		why = "with an explicit deny in " + kind
		if len(d.Matched) > 0 {
			m := d.Matched[0]
			why += fmt.Sprintf(" (%s %s", m.Policy, m.Path)
			if m.Sid != "" {
				why += " Sid " + m.Sid
			}
			why += ")"
		}
	}
	return fmt.Sprintf("User: %s is not authorized to perform: %s on resource: %s %s", p.ARN, d.Action, d.Resource, why)
}
