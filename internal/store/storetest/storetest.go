// Package storetest is the conformance suite every store engine passes:
// one set of expectations for SQLite and PostgreSQL alike, so that the
// server behaves the same on either.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/kaginashi/kaginashi/internal/store"
)

// Run runs the suite. open returns an empty, migrated store of its own for
// each subtest and closes it when that test ends (t.Cleanup); subtests run
// in parallel, so stores must not share data.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"Meta", testMeta},
		{"MetaConcurrentInit", testMetaConcurrentInit},
		{"Users", testUsers},
		{"UserNamesIgnoreCase", testUserNamesIgnoreCase},
		{"UserTags", testUserTags},
		{"DeleteUserConflicts", testDeleteUserConflicts},
		{"AccessKeys", testAccessKeys},
		{"AccessKeyQuota", testAccessKeyQuota},
		{"RootAccessKeys", testRootAccessKeys},
		{"Groups", testGroups},
		{"DeleteGroupConflicts", testDeleteGroupConflicts},
		{"Policies", testPolicies},
		{"PolicyVersions", testPolicyVersions},
		{"DeletePolicy", testDeletePolicy},
		{"Attachments", testAttachments},
		{"InlinePolicies", testInlinePolicies},
		{"LoginProfiles", testLoginProfiles},
		{"PrincipalPolicies", testPrincipalPolicies},
		{"UserPermissionsBoundary", testUserPermissionsBoundary},
		{"AWSManagedPolicies", testAWSManagedPolicies},
		{"PolicyEntities", testPolicyEntities},
		{"PolicyTags", testPolicyTags},
		{"IAMGeneration", testIAMGeneration},
		{"HostileInput", testHostileInput},
		{"Times", testTimes},
		{"Instances", testInstances},
		{"CachedInstance", testCachedInstance},
		{"ListInstancesPaging", testListInstancesPaging},
		{"ResourceTags", testResourceTags},
		{"TagKeyCase", testTagKeyCase},
		{"TagKeyCaseRace", testTagKeyCaseRace},
		{"KeyRecords", testKeyRecords},
		{"InstanceAgentFacts", testInstanceAgentFacts},
		{"UpdateAgentFacts", testUpdateAgentFacts},
		{"UpdateAgentFactsRace", testUpdateAgentFactsRace},
		{"ReplaceInstance", testReplaceInstance},
		{"JoinTokens", testJoinTokens},
		{"JoinTokenTags", testJoinTokenTags},
		{"JoinTokenRace", testJoinTokenRace},
		{"Audit", testAudit},
		{"AuditPaging", testAuditPaging},
		{"AuditReplace", testAuditReplace},
		{"DeleteAuditBefore", testDeleteAuditBefore},
		{"ConcurrentAccessKeys", testConcurrentAccessKeys},
		{"ConcurrentCreateUser", testConcurrentCreateUser},
		{"ConcurrentPolicyVersions", testConcurrentPolicyVersions},
		{"ConcurrentDeleteUser", testConcurrentDeleteUser},
		{"MFADevices", testMFADevices},
		{"MFASteps", testMFASteps},
		{"MFAStepRace", testMFAStepRace},
		{"MFAQuota", testMFAQuota},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, open(t))
		})
	}
}

// t0 is the suite's clock: microsecond-aligned, as stores keep times.
var t0 = time.Date(2026, 11, 3, 4, 5, 6, 123456000, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

func ctxOf(t *testing.T) context.Context { return t.Context() }

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// wantErr checks that err wraps target (nil: that there is no error).
func wantErr(t *testing.T, err, target error, what string) {
	t.Helper()
	switch {
	case target == nil && err != nil:
		t.Fatalf("%s: unexpected error %v", what, err)
	case target != nil && !errors.Is(err, target):
		t.Fatalf("%s: error %v, want one wrapping %q", what, err, target)
	}
}

// equal compares with reflect.DeepEqual and reports both values.
func equal(t *testing.T, what string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s:\n got  %#v\n want %#v", what, got, want)
	}
}

// ids makes IDs of the shapes IAM uses, distinct per n.
func userID(n int) string   { return fmt.Sprintf("AIDA%017d", n) }
func groupID(n int) string  { return fmt.Sprintf("AGPA%017d", n) }
func policyID(n int) string { return fmt.Sprintf("ANPA%017d", n) }
func keyID(n int) string    { return fmt.Sprintf("AKIA%016d", n) }

const account = "123456789012"

func policyARN(path, name string) string {
	return "arn:aws:iam::" + account + ":policy" + path + name
}

func doc(s string) string {
	return `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"` + s + `","Resource":"*"}]}`
}

func newUser(t *testing.T, s store.Store, n int, name string) store.User {
	t.Helper()
	u := store.User{ID: userID(n), Name: name, Path: "/", CreateDate: at(time.Duration(n) * time.Second)}
	must(t, s.CreateUser(ctxOf(t), u))
	return u
}

func newGroup(t *testing.T, s store.Store, n int, name string) store.Group {
	t.Helper()
	g := store.Group{ID: groupID(n), Name: name, Path: "/", CreateDate: at(time.Duration(n) * time.Second)}
	must(t, s.CreateGroup(ctxOf(t), g))
	return g
}

func newPolicy(t *testing.T, s store.Store, n int, name, document string) store.ManagedPolicy {
	t.Helper()
	p := store.ManagedPolicy{
		ARN: policyARN("/", name), ID: policyID(n), Name: name, Path: "/",
		CreateDate: at(time.Duration(n) * time.Second), UpdateDate: at(time.Duration(n) * time.Second),
	}
	must(t, s.CreatePolicy(ctxOf(t), p, document))
	p.DefaultVersionID = "v1"
	return p
}

func userNames(us []store.User) []string {
	var out []string
	for _, u := range us {
		out = append(out, u.Name)
	}
	return out
}

func groupNames(gs []store.Group) []string {
	var out []string
	for _, g := range gs {
		out = append(out, g.Name)
	}
	return out
}

func policyARNs(ps []store.ManagedPolicy) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.ARN)
	}
	return out
}

// tags returns nil for no tags, as engines may return nil or empty.
func tags(ts []store.Tag) []store.Tag {
	if len(ts) == 0 {
		return nil
	}
	return ts
}
