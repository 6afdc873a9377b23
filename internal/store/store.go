// Package store is kaginashi's persistence: one Store interface with two
// engines, SQLite (sqlite/, the embedded default) and PostgreSQL
// (postgres/, for several server replicas sharing one database). Both pass
// the shared conformance suite in storetest/.
//
// The store keeps no secret in the clear: access-key secrets arrive here
// already encrypted (SecretCiphertext) and leave encrypted. Every write that
// changes what a principal may do bumps the IAM generation in the same
// transaction, so that replicas can cache compiled policies and know when
// to drop them.
package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Errors every engine returns, wrapped with context. Services map them to
// each protocol's error codes at the edge.
var (
	ErrNotFound = errors.New("not found")
	// ErrExists: an entity with that name or ID exists (EntityAlreadyExists).
	ErrExists = errors.New("already exists")
	// ErrConflict: the entity still has dependents (DeleteConflict), e.g. a
	// user with access keys, a policy still attached, a default version.
	ErrConflict = errors.New("conflict")
	// ErrLimitExceeded: a per-entity quota (2 access keys per user, 5
	// versions per policy) would be exceeded (LimitExceeded).
	ErrLimitExceeded = errors.New("limit exceeded")
	// ErrInvalidCursor: a paging cursor this store did not issue.
	ErrInvalidCursor = errors.New("invalid cursor")
	// ErrTokenUnusable: a join token that exists but is expired, revoked
	// or used up.
	ErrTokenUnusable = errors.New("join token expired, revoked or used up")
)

// TagKeyCaseError: TagResource was asked for a key that differs only in
// case from a key the resource already has (team beside Team). Condition
// keys ignore case, so one resource must not have both; the engines check
// inside the write transaction, so two concurrent calls cannot both land.
// Keys already stored in two spellings (before the check) are left alone.
type TagKeyCaseError struct {
	Resource string
	Key      string // the key asked for
	Existing string // the resource's spelling
}

func (e *TagKeyCaseError) Error() string {
	return fmt.Sprintf("tag key %q differs only in case from %s's existing tag %q", e.Key, e.Resource, e.Existing)
}

// CheckTagKeyCase is what the engines run in TagResource's transaction:
// it returns a *TagKeyCaseError for the first requested key that differs
// only in case from one of existing (the resource's keys, sorted) or from
// another requested key. The same spelling is no collision: it overwrites.
// Case is folded by strings.ToLower, as the inventory's own check does, so
// both engines agree (SQLite's lower() folds ASCII only).
func CheckTagKeyCase(resource string, existing []string, tags []Tag) error {
	have := make(map[string]string, len(existing)+len(tags))
	exact := make(map[string]bool, len(existing))
	for _, k := range existing {
		exact[k] = true
		if _, ok := have[strings.ToLower(k)]; !ok {
			have[strings.ToLower(k)] = k
		}
	}
	for _, t := range tags {
		lk := strings.ToLower(t.Key)
		k, ok := have[lk]
		switch {
		case !ok:
			have[lk] = t.Key
		case k != t.Key && !exact[t.Key]:
			return &TagKeyCaseError{Resource: resource, Key: t.Key, Existing: k}
		}
	}
	return nil
}

// Tag is a key and value, on users, policies and instances.
type Tag struct {
	Key   string
	Value string
}

// User is an IAM user.
type User struct {
	ID         string // AIDA + 17 characters, unique
	Name       string // unique, case-insensitively (as IAM)
	Path       string // "/" by default
	CreateDate time.Time
	// PermissionsBoundary is a managed policy ARN, or "".
	PermissionsBoundary string
	Tags                []Tag
}

// AccessKey is an access key ID and its encrypted secret. UserName is ""
// for the account root's keys.
type AccessKey struct {
	ID               string // AKIA + 16 characters
	UserName         string
	SecretCiphertext []byte
	Status           string // "Active" or "Inactive"
	CreateDate       time.Time
}

// Access key statuses.
const (
	StatusActive   = "Active"
	StatusInactive = "Inactive"
)

// MaxAccessKeysPerUser is IAM's quota.
const MaxAccessKeysPerUser = 2

// MaxPolicyVersions is IAM's quota of versions per managed policy.
const MaxPolicyVersions = 5

// Group is an IAM group.
type Group struct {
	ID         string // AGPA + 17 characters
	Name       string // unique, case-insensitively
	Path       string
	CreateDate time.Time
}

// ManagedPolicy is a customer-managed policy. Its ARN is derived from the
// account, path and name; the store keeps it as the policy's key.
type ManagedPolicy struct {
	ARN              string
	ID               string // ANPA + 17 characters
	Name             string
	Path             string
	Description      string
	DefaultVersionID string // "v1", "v2", ...
	AttachmentCount  int    // filled by Get/List: users and groups attached
	// PermissionsBoundaryUsageCount, filled by Get/List: the users whose
	// permissions boundary the policy is.
	PermissionsBoundaryUsageCount int
	CreateDate                    time.Time
	UpdateDate                    time.Time
	Tags                          []Tag
}

// PolicyEntities are the users and groups that use a managed policy, each
// list ordered by name.
type PolicyEntities struct {
	Users  []User  // the policy is attached to them
	Groups []Group // the policy is attached to them
	// BoundaryUsers: the policy is their permissions boundary.
	BoundaryUsers []User
}

// PolicyVersion is one version of a managed policy's document.
type PolicyVersion struct {
	PolicyARN  string
	VersionID  string // "v1", "v2", ...: never reused within a policy
	Document   string
	IsDefault  bool
	CreateDate time.Time
}

// InlinePolicy is a policy embedded in a user.
type InlinePolicy struct {
	UserName   string
	PolicyName string
	Document   string
}

// LoginProfile is a user's console password.
type LoginProfile struct {
	UserName      string
	PasswordHash  string // a self-describing hash (e.g. $argon2id$...)
	ResetRequired bool
	CreateDate    time.Time
}

// MFADevice is a virtual MFA device (a TOTP seed). SerialNumber is its
// ARN, arn:aws:iam::ACCOUNT:mfa/PATH/NAME, unique without regard to case.
type MFADevice struct {
	SerialNumber string
	Name         string
	Path         string
	// SeedCiphertext is the TOTP seed sealed by the caller; the store
	// never sees the seed.
	SeedCiphertext []byte
	UserName       string    // the user it is enabled for; "" while unassigned
	EnableDate     time.Time // zero while unassigned
	CreateDate     time.Time
	// LastStep is the last TOTP time step (Unix time / 30 s) accepted from
	// the device, 0 for none: a code of this step or an earlier one is a
	// replay.
	LastStep int64
	Tags     []Tag
}

// MaxMFADevicesPerUser is IAM's quota of MFA devices per user.
const MaxMFADevicesPerUser = 8

// PrincipalPolicy is a policy document that applies to a user, with the
// name results report it under.
type PrincipalPolicy struct {
	// Name: the inline policy's name, or the managed policy's ARN.
	Name     string
	Document string
}

// TagMatch selects a tag to remove: by key, and by value too when
// MatchValue is set.
type TagMatch struct {
	Key        string
	Value      string
	MatchValue bool
}

// ResourceTag is a tag with the resource it is on.
type ResourceTag struct {
	ResourceID string
	Tag
}

// Instance states, as EC2 names them.
const (
	StatePending    = "pending"
	StateRunning    = "running"
	StateStopped    = "stopped"
	StateTerminated = "terminated"
)

// Instance is a host known to kaginashi (an enrolled agent).
type Instance struct {
	ID         string // i- + 17 hex digits
	State      string
	LaunchTime time.Time // first enrollment
	LastSeen   time.Time
	Hostname   string
	PrivateIP  string
	IPv6       string
	// OS and agent facts, as the agent reports them.
	OSID          string // os-release ID: amzn, ubuntu, debian, ...
	OSVersion     string
	OSPrettyName  string
	Platform      string // platformDetails: "Linux/UNIX", "Red Hat Enterprise Linux", ...
	Architecture  string // x86_64, arm64
	Kernel        string
	DefaultUser   string
	AgentVersion  string
	SSHDVersion   string
	HostKeys      []string // OpenSSH public key lines
	AvailabilityZ string   // availabilityZone reported by DescribeInstances
	Tags          []Tag

	// Agent facts (issue #4).
	// AgentKey is the SHA-256 fingerprint ("SHA256:...") of the enrolled
	// agent's public key: only that agent may speak for the instance.
	AgentKey          string
	DefaultUserExists bool
	SSHDConfigured    bool  // sshd runs kaginashi's AuthorizedKeysCommand
	ClockSkewMillis   int64 // server time minus host time, as last measured
}

// AgentRef names an instance and the fingerprint of the agent key that
// speaks for it (Instance.AgentKey).
type AgentRef struct {
	InstanceID, AgentKey string
}

// Untouched is the agents whose instance a write did not touch (touched:
// the IDs it did), in the order given: the stores' TouchInstances answer.
func Untouched(agents []AgentRef, touched []string) []AgentRef {
	if len(touched) == len(agents) {
		return nil // the IDs are distinct: every one was touched
	}
	done := make(map[string]bool, len(touched))
	for _, id := range touched {
		done[id] = true
	}
	var stale []AgentRef
	for _, a := range agents {
		if !done[a.InstanceID] {
			stale = append(stale, a)
		}
	}
	return stale
}

// JoinToken lets agents enroll. Only a hash of its secret is stored.
type JoinToken struct {
	ID         string // jt- + 17 hex digits
	SecretHash []byte // SHA-256 of the token's secret part
	CreatedBy  string // the creator's ARN
	CreatedAt  time.Time
	ExpiresAt  time.Time
	MaxUses    int // at least 1
	Uses       int
	Revoked    bool
	// Tags are given to every instance enrolled with the token.
	Tags []Tag
}

// InstanceFilter narrows ListInstances. Empty fields match everything.
type InstanceFilter struct {
	IDs []string
	// Limit and After page through instances ordered by ID.
	Limit int
	After string
}

// KeyRecord is a public key pushed for one OS user of one instance.
type KeyRecord struct {
	RequestID   string
	InstanceID  string
	OSUser      string
	PublicKey   string
	Fingerprint string // SHA256:...
	CallerARN   string
	CreatedAt   time.Time
	ExpiresAt   time.Time
}

// AuditEvent is one CloudTrail-shaped event. Record is the full JSON event;
// the other fields are indexed copies for lookup.
type AuditEvent struct {
	ID          string // the event ID (a UUID)
	Time        time.Time
	Name        string // eventName
	Source      string // eventSource
	UserName    string
	AccessKeyID string
	ErrorCode   string
	Record      []byte
	// RequestID is the request the event records. It is not stored apart
	// from Record: it links a SendSSHPublicKey call's event to its key
	// record, committed together, so that a success event whose key
	// record failed is left out (see SkippedEventsError).
	RequestID string
	// Replace marks the final version of a write-ahead event: it takes
	// the place of the stored event with the same ID (its pending
	// version, committed before the call ran), keeping its position in
	// lookups, or is inserted when there is none. Without it, an event ID
	// already stored is ErrExists.
	Replace bool
}

// ErrKeyRecordFailed: AppendAudit left out a success event because the
// key record of its request, committed with it, failed to be written.
var ErrKeyRecordFailed = errors.New("the request's key record was not stored")

// SkippedEventsError is AppendAudit's answer when it wrote the events but
// left some out: success events (ErrorCode "") of requests whose key
// record failed to be written in the same group commit, or in an earlier
// one. An event saying Success must not be durable for a call that then
// answers a server error; the caller records the failure instead.
type SkippedEventsError struct {
	// Skipped maps the left-out events' IDs to errors wrapping
	// ErrKeyRecordFailed and the key record's own error.
	Skipped map[string]error
}

func (e *SkippedEventsError) Error() string {
	return fmt.Sprintf("%d audit events left out: their requests' key records were not stored", len(e.Skipped))
}

// AuditFilter narrows LookupAudit. Events come newest first.
type AuditFilter struct {
	EventName string
	UserName  string
	Since     time.Time // inclusive; zero: no bound
	Until     time.Time // exclusive; zero: no bound
	Limit     int       // 0: a default of 50
	// Cursor continues a previous lookup (its next cursor).
	Cursor string
}

// Store is the whole persistence interface. Methods take a context first
// and return errors wrapping the sentinel errors above.
type Store interface {
	// Close releases the engine's resources.
	Close() error

	// Meta holds deployment-wide settings (account ID, endpoint ID, ...).
	GetMeta(ctx context.Context, key string) (value string, ok bool, err error)
	// InitMeta sets key to value unless it is set, and returns the value
	// that holds — so replicas starting together agree on one.
	InitMeta(ctx context.Context, key, value string) (string, error)

	// IAMGeneration is a counter bumped by every write that may change an
	// authorization decision (users, keys, groups, policies, attachments).
	IAMGeneration(ctx context.Context) (int64, error)

	CreateUser(ctx context.Context, u User) error
	GetUser(ctx context.Context, name string) (User, error)
	ListUsers(ctx context.Context, pathPrefix string) ([]User, error)
	// DeleteUser fails with ErrConflict while the user has access keys,
	// a login profile, inline or attached policies, group memberships, or
	// MFA devices.
	DeleteUser(ctx context.Context, name string) error
	TagUser(ctx context.Context, name string, tags []Tag) error
	UntagUser(ctx context.Context, name string, keys []string) error
	// SetUserPermissionsBoundary sets a user's permissions boundary to a
	// managed policy ARN, or removes it with "" (ErrNotFound: no user).
	SetUserPermissionsBoundary(ctx context.Context, name, policyARN string) error

	// CreateAccessKey fails with ErrLimitExceeded at MaxAccessKeysPerUser
	// (not for root, UserName "").
	CreateAccessKey(ctx context.Context, k AccessKey) error
	GetAccessKey(ctx context.Context, id string) (AccessKey, error)
	ListAccessKeys(ctx context.Context, userName string) ([]AccessKey, error)
	UpdateAccessKey(ctx context.Context, userName, id, status string) error
	DeleteAccessKey(ctx context.Context, userName, id string) error

	CreateGroup(ctx context.Context, g Group) error
	GetGroup(ctx context.Context, name string) (Group, []User, error)
	ListGroups(ctx context.Context, pathPrefix string) ([]Group, error)
	// DeleteGroup fails with ErrConflict while the group has members or
	// attached policies.
	DeleteGroup(ctx context.Context, name string) error
	AddUserToGroup(ctx context.Context, group, user string) error
	RemoveUserFromGroup(ctx context.Context, group, user string) error
	ListGroupsForUser(ctx context.Context, user string) ([]Group, error)

	// CreatePolicy stores the policy with document as version v1, default.
	CreatePolicy(ctx context.Context, p ManagedPolicy, document string) error
	// PutAWSManagedPolicy installs or refreshes an AWS-managed policy
	// (ARN arn:aws:iam::aws:policy/...): p.DefaultVersionID becomes its
	// only version, holding document. Its name does not take a customer
	// policy's name (AWS's and the account's names are separate spaces).
	// Attachments survive a refresh.
	PutAWSManagedPolicy(ctx context.Context, p ManagedPolicy, document string) error
	GetPolicy(ctx context.Context, arn string) (ManagedPolicy, error)
	// ListPolicies lists the account's policies; onlyAttached keeps those
	// attached to some user or group.
	ListPolicies(ctx context.Context, pathPrefix string, onlyAttached bool) ([]ManagedPolicy, error)
	// PolicyEntities lists who uses a policy (ErrNotFound: no such
	// policy), for ListEntitiesForPolicy.
	PolicyEntities(ctx context.Context, arn string) (PolicyEntities, error)
	// DeletePolicy fails with ErrConflict while the policy is attached, is
	// some user's permissions boundary, or has versions other than the
	// default.
	DeletePolicy(ctx context.Context, arn string) error
	// CreatePolicyVersion adds the next version; ErrLimitExceeded at
	// MaxPolicyVersions.
	CreatePolicyVersion(ctx context.Context, arn, document string, setDefault bool, now time.Time) (PolicyVersion, error)
	GetPolicyVersion(ctx context.Context, arn, versionID string) (PolicyVersion, error)
	ListPolicyVersions(ctx context.Context, arn string) ([]PolicyVersion, error)
	SetDefaultPolicyVersion(ctx context.Context, arn, versionID string, now time.Time) error
	// DeletePolicyVersion fails with ErrConflict for the default version.
	DeletePolicyVersion(ctx context.Context, arn, versionID string) error
	// TagPolicy adds tags to a managed policy, overwriting the values of
	// existing keys; UntagPolicy removes tags by key (absent keys are no
	// error). Both: ErrNotFound for a missing policy.
	TagPolicy(ctx context.Context, arn string, tags []Tag) error
	UntagPolicy(ctx context.Context, arn string, keys []string) error

	AttachUserPolicy(ctx context.Context, user, policyARN string) error
	DetachUserPolicy(ctx context.Context, user, policyARN string) error
	ListAttachedUserPolicies(ctx context.Context, user string) ([]ManagedPolicy, error)
	AttachGroupPolicy(ctx context.Context, group, policyARN string) error
	DetachGroupPolicy(ctx context.Context, group, policyARN string) error
	ListAttachedGroupPolicies(ctx context.Context, group string) ([]ManagedPolicy, error)

	PutUserPolicy(ctx context.Context, p InlinePolicy) error
	GetUserPolicy(ctx context.Context, user, name string) (InlinePolicy, error)
	ListUserPolicies(ctx context.Context, user string) ([]string, error)
	DeleteUserPolicy(ctx context.Context, user, name string) error

	CreateLoginProfile(ctx context.Context, p LoginProfile) error
	GetLoginProfile(ctx context.Context, user string) (LoginProfile, error)
	UpdateLoginProfile(ctx context.Context, p LoginProfile) error
	DeleteLoginProfile(ctx context.Context, user string) error

	// CreateMFADevice stores an unassigned virtual MFA device (ErrExists
	// when its serial number is taken).
	CreateMFADevice(ctx context.Context, d MFADevice) error
	GetMFADevice(ctx context.Context, serial string) (MFADevice, error)
	// ListMFADevices lists the devices enabled for a user, by enable date.
	ListMFADevices(ctx context.Context, user string) ([]MFADevice, error)
	// ListVirtualMFADevices lists every virtual MFA device, by serial.
	ListVirtualMFADevices(ctx context.Context) ([]MFADevice, error)
	// EnableMFADevice assigns an unassigned device to a user and raises its
	// LastStep to step (the step of the codes that enabled it, which may
	// not be used again): ErrNotFound for an unknown user or device,
	// ErrExists when the device is assigned already, ErrLimitExceeded at
	// MaxMFADevicesPerUser.
	EnableMFADevice(ctx context.Context, user, serial string, step int64, at time.Time) error
	// DeactivateMFADevice unassigns a device from a user (ErrNotFound
	// unless it is enabled for that user).
	DeactivateMFADevice(ctx context.Context, user, serial string) error
	// DeleteMFADevice deletes an unassigned device (ErrConflict while it
	// is enabled for a user).
	DeleteMFADevice(ctx context.Context, serial string) error
	// AdvanceMFAStep records that a code of time step step was accepted
	// from a device, if step is later than its LastStep, and reports
	// whether it was: false means a replay. Atomic, so that of replicas
	// racing with one code, only one accepts it.
	AdvanceMFAStep(ctx context.Context, serial string, step int64) (bool, error)

	// PrincipalPolicies returns every policy that applies to a user: its
	// inline policies, the default versions of the managed policies attached
	// to it and to its groups. Order: inline, user-attached, group-attached.
	PrincipalPolicies(ctx context.Context, user string) ([]PrincipalPolicy, error)

	// PutInstance creates or replaces an instance. Its Tags are written as
	// the instance's tags; Get and List fill them in.
	PutInstance(ctx context.Context, in Instance) error
	GetInstance(ctx context.Context, id string) (Instance, error)
	// CachedInstance is GetInstance answered from memory while the
	// inventory generation (bumped by every change to an instance or a
	// tag, by triggers) is the one the instance was read under. Changes
	// through this handle are seen at once, other writers' (another
	// replica's) within 250 ms. LastSeen may lag: heartbeats do not bump
	// the generation. For the SendSSHPublicKey hot path; anything that
	// reads to write back (a read-modify-write) uses GetInstance.
	CachedInstance(ctx context.Context, id string) (Instance, error)
	// ListInstances returns instances ordered by ID and the ID to continue
	// after ("" at the end).
	ListInstances(ctx context.Context, f InstanceFilter) ([]Instance, string, error)
	DeleteInstance(ctx context.Context, id string) error
	// SetInstanceState records a state change and when the host was seen.
	SetInstanceState(ctx context.Context, id, state string, seen time.Time) error
	// ReplaceInstance is PutInstance, tags included, for an instance that
	// exists with AgentKey agentKey only (ErrNotFound otherwise), checked
	// and written in one transaction: a re-enrollment, which must neither
	// re-create an instance deregistered since it read it nor overwrite
	// another enrollment made meanwhile.
	ReplaceInstance(ctx context.Context, in Instance, agentKey string) error
	// UpdateAgentFacts writes what an instance's agent reports — in's
	// hostname, addresses, OS and agent facts, host keys and clock skew —
	// with its State and LastSeen, only while the instance exists with
	// AgentKey in.AgentKey, in one statement: an agent session's write,
	// which must neither re-create a deregistered instance nor give a
	// re-enrolled one back to the key it replaced (a read-then-write
	// could, with a delete or an enrollment in between). ErrNotFound when
	// no row matched. Tags, LaunchTime, AvailabilityZ and AgentKey stay.
	UpdateAgentFacts(ctx context.Context, in Instance) error
	// TouchInstances marks the instances running and seen at seen, in one
	// statement: the gateway's batch of heartbeats. Each is touched only
	// while its agent key is the given one (an agent whose identity a
	// re-enrollment replaced does not speak for it); unknown IDs and other
	// keys are skipped, and returned as stale: agents that no longer speak
	// for their instance (deregistered, or re-enrolled), in the order
	// given.
	TouchInstances(ctx context.Context, agents []AgentRef, seen time.Time) (stale []AgentRef, err error)
	// SetAgentState is SetInstanceState only while the instance's agent
	// key is agentKey (ErrNotFound otherwise): a session that ends marks
	// its instance stopped unless a re-enrollment gave it to another key.
	SetAgentState(ctx context.Context, id, agentKey, state string, seen time.Time) error
	// TagResource adds or overwrites tags of an EC2 resource: an instance
	// (i-...) or the Instance Connect Endpoint (eice-...).
	TagResource(ctx context.Context, resourceID string, tags []Tag) error
	// UntagResource removes tags, as EC2 DeleteTags: a TagMatch with
	// MatchValue removes the key only while it has that value.
	UntagResource(ctx context.Context, resourceID string, tags []TagMatch) error
	// ResourceTags returns one resource's tags, sorted by key.
	ResourceTags(ctx context.Context, resourceID string) ([]Tag, error)
	// ListResourceTags returns tags of every resource (or of the given
	// resource IDs), ordered by resource ID and key.
	ListResourceTags(ctx context.Context, resourceIDs []string) ([]ResourceTag, error)

	// CreateJoinToken stores a new token (ErrExists for a used ID).
	CreateJoinToken(ctx context.Context, t JoinToken) error
	// ListJoinTokens lists tokens, newest first.
	ListJoinTokens(ctx context.Context) ([]JoinToken, error)
	// RevokeJoinToken marks a token revoked (ErrNotFound when unknown).
	RevokeJoinToken(ctx context.Context, id string) error
	// UseJoinToken atomically counts one use of a token and returns it:
	// ErrNotFound when the ID is unknown or secretHash differs (compared in
	// constant time), ErrTokenUnusable when it is revoked, expired at now,
	// or has MaxUses uses already. Replicas racing for the last use: one
	// wins.
	UseJoinToken(ctx context.Context, id string, secretHash []byte, now time.Time) (JoinToken, error)

	// PutKeyRecord stores a pushed key.
	PutKeyRecord(ctx context.Context, r KeyRecord) error
	// ActiveKeyRecords lists an instance's keys for one OS user that are
	// unexpired at now ("" osUser: every user).
	ActiveKeyRecords(ctx context.Context, instanceID, osUser string, now time.Time) ([]KeyRecord, error)
	// PurgeKeyRecords deletes records that expired before cutoff.
	PurgeKeyRecords(ctx context.Context, cutoff time.Time) (int, error)

	// AppendAudit stores events in one transaction: callers batch events
	// (group commit) and answer requests only once this returns.
	AppendAudit(ctx context.Context, events []AuditEvent) error
	// LookupAudit returns matching events, newest first, and a cursor for
	// the next page ("" when there is none).
	LookupAudit(ctx context.Context, f AuditFilter) ([]AuditEvent, string, error)
	// DeleteAuditBefore deletes at most limit of the oldest events whose
	// time is before cutoff, and returns how many it deleted: retention
	// deletes in batches, so that no one transaction holds the writer long.
	DeleteAuditBefore(ctx context.Context, cutoff time.Time, limit int) (int, error)
}
