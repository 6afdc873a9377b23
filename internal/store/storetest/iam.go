package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kaginashi/kaginashi/internal/store"
)

func testMeta(t *testing.T, s store.Store) {
	ctx := ctxOf(t)
	_, ok, err := s.GetMeta(ctx, "account-id")
	must(t, err)
	if ok {
		t.Fatal("GetMeta of an unset key: ok")
	}
	v, err := s.InitMeta(ctx, "account-id", "111111111111")
	must(t, err)
	equal(t, "first InitMeta", v, "111111111111")
	v, err = s.InitMeta(ctx, "account-id", "222222222222")
	must(t, err)
	equal(t, "second InitMeta", v, "111111111111")
	v, ok, err = s.GetMeta(ctx, "account-id")
	must(t, err)
	equal(t, "GetMeta", []any{v, ok}, []any{"111111111111", true})
	// An empty value is a value.
	v, err = s.InitMeta(ctx, "empty", "")
	must(t, err)
	equal(t, "InitMeta empty", v, "")
	_, ok, err = s.GetMeta(ctx, "empty")
	must(t, err)
	equal(t, "GetMeta empty ok", ok, true)
}

func testMetaConcurrentInit(t *testing.T, s store.Store) {
	ctx := ctxOf(t)
	const n = 10
	got := make([]string, n)
	errs := make([]error, n)
	run(n, func(i int) {
		got[i], errs[i] = s.InitMeta(ctx, "endpoint-id", fmt.Sprintf("eice-%017d", i))
	})
	for i := range n {
		must(t, errs[i])
		if got[i] != got[0] {
			t.Fatalf("InitMeta callers disagree: %q and %q", got[0], got[i])
		}
	}
	v, _, err := s.GetMeta(ctx, "endpoint-id")
	must(t, err)
	equal(t, "stored value", v, got[0])
}

func testUsers(t *testing.T, s store.Store) {
	ctx := ctxOf(t)
	alice := store.User{
		ID: userID(1), Name: "Alice", Path: "/engineering/", CreateDate: at(0),
		PermissionsBoundary: policyARN("/", "Boundary"),
		Tags:                []store.Tag{{Key: "team", Value: "infra"}, {Key: "cost-center", Value: "42"}},
	}
	must(t, s.CreateUser(ctx, alice))
	newUser(t, s, 2, "bob")
	must(t, s.CreateUser(ctx, store.User{ID: userID(3), Name: "carol", CreateDate: at(0)})) // no path: "/"

	got, err := s.GetUser(ctx, "Alice")
	must(t, err)
	want := alice
	want.Tags = []store.Tag{{Key: "cost-center", Value: "42"}, {Key: "team", Value: "infra"}} // sorted by key
	equal(t, "GetUser", got, want)

	got, err = s.GetUser(ctx, "carol")
	must(t, err)
	equal(t, "default path", got.Path, "/")

	_, err = s.GetUser(ctx, "nobody")
	wantErr(t, err, store.ErrNotFound, "GetUser of a missing user")

	err = s.CreateUser(ctx, store.User{ID: userID(1), Name: "other", Path: "/", CreateDate: at(0)})
	wantErr(t, err, store.ErrExists, "CreateUser with a used ID")

	all, err := s.ListUsers(ctx, "")
	must(t, err)
	equal(t, "ListUsers", userNames(all), []string{"Alice", "bob", "carol"})
	equal(t, "ListUsers fills tags", tags(all[0].Tags), want.Tags)
	eng, err := s.ListUsers(ctx, "/engineering/")
	must(t, err)
	equal(t, "ListUsers /engineering/", userNames(eng), []string{"Alice"})
	eng, err = s.ListUsers(ctx, "/eng")
	must(t, err)
	equal(t, "ListUsers /eng", userNames(eng), []string{"Alice"})
	none, err := s.ListUsers(ctx, "/sales/")
	must(t, err)
	equal(t, "ListUsers /sales/", len(none), 0)

	must(t, s.DeleteUser(ctx, "bob"))
	_, err = s.GetUser(ctx, "bob")
	wantErr(t, err, store.ErrNotFound, "GetUser after DeleteUser")
	wantErr(t, s.DeleteUser(ctx, "bob"), store.ErrNotFound, "DeleteUser twice")
}

func testUserNamesIgnoreCase(t *testing.T, s store.Store) {
	ctx := ctxOf(t)
	newUser(t, s, 1, "DevOps-Admin")
	err := s.CreateUser(ctx, store.User{ID: userID(2), Name: "devops-admin", Path: "/", CreateDate: at(0)})
	wantErr(t, err, store.ErrExists, "CreateUser differing only in case")
	err = s.CreateUser(ctx, store.User{ID: userID(3), Name: "DEVOPS-ADMIN", Path: "/other/", CreateDate: at(0)})
	wantErr(t, err, store.ErrExists, "CreateUser differing in case and path")
	for _, name := range []string{"DevOps-Admin", "devops-admin", "DEVOPS-ADMIN", "dEvOpS-aDmIn"} {
		u, err := s.GetUser(ctx, name)
		must(t, err)
		equal(t, "GetUser("+name+") name", u.Name, "DevOps-Admin")
	}
	// Every name argument finds the user in any case.
	must(t, s.TagUser(ctx, "devops-admin", []store.Tag{{Key: "k", Value: "v"}}))
	must(t, s.CreateAccessKey(ctx, store.AccessKey{ID: keyID(1), UserName: "DEVOPS-admin", SecretCiphertext: []byte{1}, Status: store.StatusActive, CreateDate: at(0)}))
	k, err := s.GetAccessKey(ctx, keyID(1))
	must(t, err)
	equal(t, "access key user name", k.UserName, "DevOps-Admin")
	keys, err := s.ListAccessKeys(ctx, "devops-ADMIN")
	must(t, err)
	equal(t, "ListAccessKeys in other case", len(keys), 1)
	must(t, s.PutUserPolicy(ctx, store.InlinePolicy{UserName: "devops-admin", PolicyName: "p", Document: doc("s3:*")}))
	ip, err := s.GetUserPolicy(ctx, "DEVOPS-ADMIN", "p")
	must(t, err)
	equal(t, "inline policy user name", ip.UserName, "DevOps-Admin")

	newGroup(t, s, 1, "Admins")
	wantErr(t, s.CreateGroup(ctx, store.Group{ID: groupID(2), Name: "ADMINS", Path: "/", CreateDate: at(0)}),
		store.ErrExists, "CreateGroup differing only in case")
	must(t, s.AddUserToGroup(ctx, "admins", "devops-admin"))
	g, members, err := s.GetGroup(ctx, "aDmInS")
	must(t, err)
	equal(t, "group name", g.Name, "Admins")
	equal(t, "members", userNames(members), []string{"DevOps-Admin"})
	gs, err := s.ListGroupsForUser(ctx, "DEVOPS-ADMIN")
	must(t, err)
	equal(t, "ListGroupsForUser", groupNames(gs), []string{"Admins"})

	// Ordering ignores case too.
	newUser(t, s, 4, "alpha")
	newUser(t, s, 5, "Beta")
	all, err := s.ListUsers(ctx, "")
	must(t, err)
	equal(t, "ListUsers order", userNames(all), []string{"alpha", "Beta", "DevOps-Admin"})
}

func testUserTags(t *testing.T, s store.Store) {
	ctx := ctxOf(t)
	newUser(t, s, 1, "alice")
	must(t, s.TagUser(ctx, "alice", []store.Tag{{Key: "b", Value: "1"}, {Key: "a", Value: "2"}}))
	must(t, s.TagUser(ctx, "alice", []store.Tag{{Key: "b", Value: "overwritten"}, {Key: "c", Value: ""}}))
	u, err := s.GetUser(ctx, "alice")
	must(t, err)
	equal(t, "tags after TagUser", u.Tags, []store.Tag{{Key: "a", Value: "2"}, {Key: "b", Value: "overwritten"}, {Key: "c", Value: ""}})

	must(t, s.UntagUser(ctx, "alice", []string{"a", "c", "absent"}))
	u, err = s.GetUser(ctx, "alice")
	must(t, err)
	equal(t, "tags after UntagUser", u.Tags, []store.Tag{{Key: "b", Value: "overwritten"}})

	wantErr(t, s.TagUser(ctx, "nobody", []store.Tag{{Key: "a", Value: "b"}}), store.ErrNotFound, "TagUser of a missing user")
	wantErr(t, s.UntagUser(ctx, "nobody", []string{"a"}), store.ErrNotFound, "UntagUser of a missing user")

	// Tags go with the user: a new user of the same name starts bare.
	must(t, s.DeleteUser(ctx, "alice"))
	newUser(t, s, 2, "alice")
	u, err = s.GetUser(ctx, "alice")
	must(t, err)
	equal(t, "tags of a re-created user", tags(u.Tags), []store.Tag(nil))
}

func testDeleteUserConflicts(t *testing.T, s store.Store) {
	ctx := ctxOf(t)
	newUser(t, s, 1, "alice")
	newGroup(t, s, 1, "admins")
	p := newPolicy(t, s, 1, "ReadOnly", doc("ec2:Describe*"))

	// Each dependent alone blocks the delete; removing it unblocks it.
	cases := []struct {
		name        string
		add, remove func() error
	}{
		{"access key",
			func() error {
				return s.CreateAccessKey(ctx, store.AccessKey{ID: keyID(1), UserName: "alice", SecretCiphertext: []byte("x"), Status: store.StatusActive, CreateDate: at(0)})
			},
			func() error { return s.DeleteAccessKey(ctx, "alice", keyID(1)) }},
		{"login profile",
			func() error {
				return s.CreateLoginProfile(ctx, store.LoginProfile{UserName: "alice", PasswordHash: "$argon2id$x", CreateDate: at(0)})
			},
			func() error { return s.DeleteLoginProfile(ctx, "alice") }},
		{"inline policy",
			func() error {
				return s.PutUserPolicy(ctx, store.InlinePolicy{UserName: "alice", PolicyName: "inline", Document: doc("s3:*")})
			},
			func() error { return s.DeleteUserPolicy(ctx, "alice", "inline") }},
		{"attached policy",
			func() error { return s.AttachUserPolicy(ctx, "alice", p.ARN) },
			func() error { return s.DetachUserPolicy(ctx, "alice", p.ARN) }},
		{"group membership",
			func() error { return s.AddUserToGroup(ctx, "admins", "alice") },
			func() error { return s.RemoveUserFromGroup(ctx, "admins", "alice") }},
	}
	for _, c := range cases {
		must(t, c.add())
		wantErr(t, s.DeleteUser(ctx, "alice"), store.ErrConflict, "DeleteUser with "+c.name)
		if _, err := s.GetUser(ctx, "alice"); err != nil {
			t.Fatalf("user gone after a refused delete (%s): %v", c.name, err)
		}
		must(t, c.remove())
	}
	must(t, s.DeleteUser(ctx, "alice"))
}

func testAccessKeys(t *testing.T, s store.Store) {
	ctx := ctxOf(t)
	newUser(t, s, 1, "alice")
	newUser(t, s, 2, "bob")
	// Every byte value, to show ciphertext passes through untouched.
	secret := make([]byte, 256)
	for i := range secret {
		secret[i] = byte(i)
	}
	k1 := store.AccessKey{ID: keyID(1), UserName: "alice", SecretCiphertext: secret, Status: store.StatusActive, CreateDate: at(time.Second)}
	must(t, s.CreateAccessKey(ctx, k1))
	got, err := s.GetAccessKey(ctx, keyID(1))
	must(t, err)
	equal(t, "GetAccessKey", got, k1)
	if !bytes.Equal(got.SecretCiphertext, secret) {
		t.Fatal("ciphertext changed")
	}

	k2 := store.AccessKey{ID: keyID(2), UserName: "alice", SecretCiphertext: []byte{0, 0, 0}, Status: store.StatusInactive, CreateDate: at(2 * time.Second)}
	must(t, s.CreateAccessKey(ctx, k2))
	must(t, s.CreateAccessKey(ctx, store.AccessKey{ID: keyID(3), UserName: "bob", SecretCiphertext: []byte("b"), Status: store.StatusActive, CreateDate: at(0)}))

	keys, err := s.ListAccessKeys(ctx, "alice")
	must(t, err)
	equal(t, "ListAccessKeys", keys, []store.AccessKey{k1, k2})

	wantErr(t, s.CreateAccessKey(ctx, store.AccessKey{ID: keyID(1), UserName: "bob", SecretCiphertext: []byte("x"), Status: store.StatusActive, CreateDate: at(0)}),
		store.ErrExists, "CreateAccessKey with a used ID")
	wantErr(t, s.CreateAccessKey(ctx, store.AccessKey{ID: keyID(9), UserName: "nobody", SecretCiphertext: []byte("x"), Status: store.StatusActive, CreateDate: at(0)}),
		store.ErrNotFound, "CreateAccessKey for a missing user")
	_, err = s.GetAccessKey(ctx, keyID(9))
	wantErr(t, err, store.ErrNotFound, "GetAccessKey of a missing key")
	_, err = s.ListAccessKeys(ctx, "nobody")
	wantErr(t, err, store.ErrNotFound, "ListAccessKeys of a missing user")

	must(t, s.UpdateAccessKey(ctx, "alice", keyID(1), store.StatusInactive))
	got, err = s.GetAccessKey(ctx, keyID(1))
	must(t, err)
	equal(t, "status after UpdateAccessKey", got.Status, store.StatusInactive)
	if s.UpdateAccessKey(ctx, "alice", keyID(1), "Deleted") == nil {
		t.Fatal("UpdateAccessKey accepted an invalid status")
	}
	// A key is addressed through its owner: someone else's is not found.
	wantErr(t, s.UpdateAccessKey(ctx, "bob", keyID(1), store.StatusActive), store.ErrNotFound, "UpdateAccessKey of another user's key")
	wantErr(t, s.UpdateAccessKey(ctx, "", keyID(1), store.StatusActive), store.ErrNotFound, "UpdateAccessKey of a user's key as root")
	wantErr(t, s.DeleteAccessKey(ctx, "bob", keyID(1)), store.ErrNotFound, "DeleteAccessKey of another user's key")
	wantErr(t, s.UpdateAccessKey(ctx, "alice", keyID(9), store.StatusActive), store.ErrNotFound, "UpdateAccessKey of a missing key")

	must(t, s.DeleteAccessKey(ctx, "alice", keyID(1)))
	_, err = s.GetAccessKey(ctx, keyID(1))
	wantErr(t, err, store.ErrNotFound, "GetAccessKey after delete")
	wantErr(t, s.DeleteAccessKey(ctx, "alice", keyID(1)), store.ErrNotFound, "DeleteAccessKey twice")
	keys, err = s.ListAccessKeys(ctx, "alice")
	must(t, err)
	equal(t, "ListAccessKeys after delete", keys, []store.AccessKey{k2})
}

func testAccessKeyQuota(t *testing.T, s store.Store) {
	ctx := ctxOf(t)
	newUser(t, s, 1, "alice")
	key := func(n int) store.AccessKey {
		return store.AccessKey{ID: keyID(n), UserName: "alice", SecretCiphertext: []byte("s"), Status: store.StatusActive, CreateDate: at(0)}
	}
	must(t, s.CreateAccessKey(ctx, key(1)))
	must(t, s.CreateAccessKey(ctx, key(2)))
	wantErr(t, s.CreateAccessKey(ctx, key(3)), store.ErrLimitExceeded, "third access key")
	// Inactive keys count too, as in IAM.
	must(t, s.UpdateAccessKey(ctx, "alice", keyID(1), store.StatusInactive))
	wantErr(t, s.CreateAccessKey(ctx, key(3)), store.ErrLimitExceeded, "third access key with one inactive")
	must(t, s.DeleteAccessKey(ctx, "alice", keyID(1)))
	must(t, s.CreateAccessKey(ctx, key(3)))
	_, err := s.GetAccessKey(ctx, keyID(4))
	wantErr(t, err, store.ErrNotFound, "key refused by quota")
}

func testRootAccessKeys(t *testing.T, s store.Store) {
	ctx := ctxOf(t)
	newUser(t, s, 1, "alice")
	var want []store.AccessKey
	for i := range store.MaxAccessKeysPerUser + 3 {
		k := store.AccessKey{ID: keyID(i), SecretCiphertext: []byte{byte(i)}, Status: store.StatusActive, CreateDate: at(time.Duration(i) * time.Second)}
		must(t, s.CreateAccessKey(ctx, k))
		want = append(want, k)
	}
	got, err := s.ListAccessKeys(ctx, "")
	must(t, err)
	equal(t, "root keys", got, want)
	k, err := s.GetAccessKey(ctx, keyID(0))
	must(t, err)
	equal(t, "root key user", k.UserName, "")
	users, err := s.ListAccessKeys(ctx, "alice")
	must(t, err)
	equal(t, "alice has no keys", len(users), 0)
	must(t, s.UpdateAccessKey(ctx, "", keyID(0), store.StatusInactive))
	wantErr(t, s.DeleteAccessKey(ctx, "alice", keyID(0)), store.ErrNotFound, "DeleteAccessKey of a root key as a user")
	must(t, s.DeleteAccessKey(ctx, "", keyID(0)))
}

func testGroups(t *testing.T, s store.Store) {
	ctx := ctxOf(t)
	admins := store.Group{ID: groupID(1), Name: "Admins", Path: "/ops/", CreateDate: at(0)}
	must(t, s.CreateGroup(ctx, admins))
	newGroup(t, s, 2, "devs")
	must(t, s.CreateGroup(ctx, store.Group{ID: groupID(3), Name: "auditors", CreateDate: at(0)}))
	wantErr(t, s.CreateGroup(ctx, store.Group{ID: groupID(1), Name: "other", Path: "/", CreateDate: at(0)}), store.ErrExists, "CreateGroup with a used ID")

	newUser(t, s, 1, "zed")
	newUser(t, s, 2, "Amy")
	must(t, s.AddUserToGroup(ctx, "Admins", "zed"))
	must(t, s.AddUserToGroup(ctx, "Admins", "amy"))
	must(t, s.AddUserToGroup(ctx, "Admins", "zed")) // again: no error
	must(t, s.AddUserToGroup(ctx, "devs", "zed"))

	g, members, err := s.GetGroup(ctx, "admins")
	must(t, err)
	equal(t, "GetGroup", g, admins)
	equal(t, "members", userNames(members), []string{"Amy", "zed"})
	_, _, err = s.GetGroup(ctx, "nobody")
	wantErr(t, err, store.ErrNotFound, "GetGroup of a missing group")

	all, err := s.ListGroups(ctx, "")
	must(t, err)
	equal(t, "ListGroups", groupNames(all), []string{"Admins", "auditors", "devs"})
	ops, err := s.ListGroups(ctx, "/ops/")
	must(t, err)
	equal(t, "ListGroups /ops/", groupNames(ops), []string{"Admins"})
	g3, _, err := s.GetGroup(ctx, "auditors")
	must(t, err)
	equal(t, "default group path", g3.Path, "/")

	gs, err := s.ListGroupsForUser(ctx, "zed")
	must(t, err)
	equal(t, "ListGroupsForUser", groupNames(gs), []string{"Admins", "devs"})
	_, err = s.ListGroupsForUser(ctx, "nobody")
	wantErr(t, err, store.ErrNotFound, "ListGroupsForUser of a missing user")

	wantErr(t, s.AddUserToGroup(ctx, "nogroup", "zed"), store.ErrNotFound, "AddUserToGroup to a missing group")
	wantErr(t, s.AddUserToGroup(ctx, "devs", "nobody"), store.ErrNotFound, "AddUserToGroup of a missing user")
	must(t, s.RemoveUserFromGroup(ctx, "DEVS", "ZED"))
	wantErr(t, s.RemoveUserFromGroup(ctx, "devs", "zed"), store.ErrNotFound, "RemoveUserFromGroup of a non-member")
	wantErr(t, s.RemoveUserFromGroup(ctx, "nogroup", "zed"), store.ErrNotFound, "RemoveUserFromGroup of a missing group")
	gs, err = s.ListGroupsForUser(ctx, "zed")
	must(t, err)
	equal(t, "ListGroupsForUser after remove", groupNames(gs), []string{"Admins"})

	must(t, s.DeleteGroup(ctx, "devs"))
	wantErr(t, s.DeleteGroup(ctx, "devs"), store.ErrNotFound, "DeleteGroup twice")
}

func testDeleteGroupConflicts(t *testing.T, s store.Store) {
	ctx := ctxOf(t)
	newGroup(t, s, 1, "admins")
	newUser(t, s, 1, "alice")
	p := newPolicy(t, s, 1, "Admin", doc("*"))

	must(t, s.AddUserToGroup(ctx, "admins", "alice"))
	wantErr(t, s.DeleteGroup(ctx, "admins"), store.ErrConflict, "DeleteGroup with a member")
	must(t, s.RemoveUserFromGroup(ctx, "admins", "alice"))

	must(t, s.AttachGroupPolicy(ctx, "admins", p.ARN))
	wantErr(t, s.DeleteGroup(ctx, "admins"), store.ErrConflict, "DeleteGroup with an attached policy")
	must(t, s.DetachGroupPolicy(ctx, "admins", p.ARN))

	must(t, s.DeleteGroup(ctx, "admins"))
	// The user, who had been a member, can go now.
	must(t, s.DeleteUser(ctx, "alice"))
}

func testPolicies(t *testing.T, s store.Store) {
	ctx := ctxOf(t)
	p := store.ManagedPolicy{
		ARN: policyARN("/team/", "Deploy"), ID: policyID(1), Name: "Deploy", Path: "/team/",
		Description: "deploys things", CreateDate: at(0), UpdateDate: at(0),
		Tags: []store.Tag{{Key: "z", Value: "1"}, {Key: "a", Value: "2"}},
	}
	must(t, s.CreatePolicy(ctx, p, doc("ec2:*")))
	got, err := s.GetPolicy(ctx, p.ARN)
	must(t, err)
	want := p
	want.DefaultVersionID = "v1"
	want.Tags = []store.Tag{{Key: "a", Value: "2"}, {Key: "z", Value: "1"}}
	equal(t, "GetPolicy", got, want)

	v, err := s.GetPolicyVersion(ctx, p.ARN, "v1")
	must(t, err)
	equal(t, "v1", v, store.PolicyVersion{PolicyARN: p.ARN, VersionID: "v1", Document: doc("ec2:*"), IsDefault: true, CreateDate: at(0)})

	wantErr(t, s.CreatePolicy(ctx, p, doc("x")), store.ErrExists, "CreatePolicy with a used ARN")
	// Policy names, like user names, are unique without regard to case
	// (and to path).
	dup := store.ManagedPolicy{ARN: policyARN("/", "DEPLOY"), ID: policyID(2), Name: "DEPLOY", Path: "/", CreateDate: at(0), UpdateDate: at(0)}
	wantErr(t, s.CreatePolicy(ctx, dup, doc("x")), store.ErrExists, "CreatePolicy with a name differing only in case")
	_, err = s.GetPolicy(ctx, policyARN("/", "Missing"))
	wantErr(t, err, store.ErrNotFound, "GetPolicy of a missing policy")

	// No UpdateDate: it starts as the CreateDate.
	must(t, s.CreatePolicy(ctx, store.ManagedPolicy{ARN: policyARN("/", "attached"), ID: policyID(3), Name: "attached", CreateDate: at(time.Hour)}, doc("s3:*")))
	a, err := s.GetPolicy(ctx, policyARN("/", "attached"))
	must(t, err)
	equal(t, "UpdateDate defaults to CreateDate", a.UpdateDate, at(time.Hour))
	equal(t, "default policy path", a.Path, "/")
	newPolicy(t, s, 4, "Billing", doc("aws-portal:*"))

	all, err := s.ListPolicies(ctx, "", false)
	must(t, err)
	equal(t, "ListPolicies", policyARNs(all), []string{policyARN("/", "attached"), policyARN("/", "Billing"), p.ARN})
	team, err := s.ListPolicies(ctx, "/team/", false)
	must(t, err)
	equal(t, "ListPolicies /team/", policyARNs(team), []string{p.ARN})
	equal(t, "ListPolicies fills tags", team[0].Tags, want.Tags)

	newUser(t, s, 1, "alice")
	newGroup(t, s, 1, "admins")
	must(t, s.AttachUserPolicy(ctx, "alice", policyARN("/", "attached")))
	must(t, s.AttachGroupPolicy(ctx, "admins", policyARN("/", "attached")))
	attached, err := s.ListPolicies(ctx, "", true)
	must(t, err)
	equal(t, "ListPolicies onlyAttached", policyARNs(attached), []string{policyARN("/", "attached")})
	equal(t, "AttachmentCount in List", attached[0].AttachmentCount, 2)
	a, err = s.GetPolicy(ctx, policyARN("/", "attached"))
	must(t, err)
	equal(t, "AttachmentCount in Get", a.AttachmentCount, 2)
	none, err := s.ListPolicies(ctx, "/team/", true)
	must(t, err)
	equal(t, "ListPolicies /team/ onlyAttached", len(none), 0)
}

func testPolicyVersions(t *testing.T, s store.Store) {
	ctx := ctxOf(t)
	p := newPolicy(t, s, 1, "P", doc("v1"))

	v2, err := s.CreatePolicyVersion(ctx, p.ARN, doc("v2"), false, at(time.Minute))
	must(t, err)
	equal(t, "v2", v2, store.PolicyVersion{PolicyARN: p.ARN, VersionID: "v2", Document: doc("v2"), IsDefault: false, CreateDate: at(time.Minute)})
	got, err := s.GetPolicy(ctx, p.ARN)
	must(t, err)
	equal(t, "default after a non-default version", got.DefaultVersionID, "v1")
	equal(t, "UpdateDate after CreatePolicyVersion", got.UpdateDate, at(time.Minute))

	v3, err := s.CreatePolicyVersion(ctx, p.ARN, doc("v3"), true, at(2*time.Minute))
	must(t, err)
	equal(t, "v3 ID and default", []any{v3.VersionID, v3.IsDefault}, []any{"v3", true})
	got, err = s.GetPolicy(ctx, p.ARN)
	must(t, err)
	equal(t, "default after setDefault", got.DefaultVersionID, "v3")
	v1, err := s.GetPolicyVersion(ctx, p.ARN, "v1")
	must(t, err)
	equal(t, "v1 no longer default", v1.IsDefault, false)

	for i := 4; i <= store.MaxPolicyVersions; i++ {
		v, err := s.CreatePolicyVersion(ctx, p.ARN, doc(fmt.Sprint(i)), false, at(time.Hour))
		must(t, err)
		equal(t, "version ID", v.VersionID, fmt.Sprintf("v%d", i))
	}
	_, err = s.CreatePolicyVersion(ctx, p.ARN, doc("six"), false, at(time.Hour))
	wantErr(t, err, store.ErrLimitExceeded, "sixth version")

	vs, err := s.ListPolicyVersions(ctx, p.ARN)
	must(t, err)
	var ids []string
	var defaults int
	for _, v := range vs {
		ids = append(ids, v.VersionID)
		if v.IsDefault {
			defaults++
		}
	}
	equal(t, "ListPolicyVersions", ids, []string{"v1", "v2", "v3", "v4", "v5"})
	equal(t, "one default", defaults, 1)

	wantErr(t, s.DeletePolicyVersion(ctx, p.ARN, "v3"), store.ErrConflict, "DeletePolicyVersion of the default")
	must(t, s.DeletePolicyVersion(ctx, p.ARN, "v2"))
	_, err = s.GetPolicyVersion(ctx, p.ARN, "v2")
	wantErr(t, err, store.ErrNotFound, "GetPolicyVersion of a deleted version")
	wantErr(t, s.DeletePolicyVersion(ctx, p.ARN, "v2"), store.ErrNotFound, "DeletePolicyVersion twice")

	// Version numbers are never reused.
	v6, err := s.CreatePolicyVersion(ctx, p.ARN, doc("v6"), false, at(time.Hour))
	must(t, err)
	equal(t, "version after a delete", v6.VersionID, "v6")

	must(t, s.SetDefaultPolicyVersion(ctx, p.ARN, "v6", at(3*time.Hour)))
	got, err = s.GetPolicy(ctx, p.ARN)
	must(t, err)
	equal(t, "default after SetDefaultPolicyVersion", got.DefaultVersionID, "v6")
	equal(t, "UpdateDate after SetDefaultPolicyVersion", got.UpdateDate, at(3*time.Hour))
	must(t, s.DeletePolicyVersion(ctx, p.ARN, "v3")) // no longer the default

	for _, bad := range []string{"v2", "v7", "v0", "v06", "6", "v", "", "V6", "v-1", "v+6"} {
		_, err := s.GetPolicyVersion(ctx, p.ARN, bad)
		wantErr(t, err, store.ErrNotFound, "GetPolicyVersion "+bad)
		wantErr(t, s.SetDefaultPolicyVersion(ctx, p.ARN, bad, at(0)), store.ErrNotFound, "SetDefaultPolicyVersion "+bad)
		wantErr(t, s.DeletePolicyVersion(ctx, p.ARN, bad), store.ErrNotFound, "DeletePolicyVersion "+bad)
	}
	missing := policyARN("/", "Missing")
	_, err = s.CreatePolicyVersion(ctx, missing, doc("x"), true, at(0))
	wantErr(t, err, store.ErrNotFound, "CreatePolicyVersion of a missing policy")
	_, err = s.ListPolicyVersions(ctx, missing)
	wantErr(t, err, store.ErrNotFound, "ListPolicyVersions of a missing policy")
	_, err = s.GetPolicyVersion(ctx, missing, "v1")
	wantErr(t, err, store.ErrNotFound, "GetPolicyVersion of a missing policy")
	wantErr(t, s.SetDefaultPolicyVersion(ctx, missing, "v1", at(0)), store.ErrNotFound, "SetDefaultPolicyVersion of a missing policy")
	wantErr(t, s.DeletePolicyVersion(ctx, missing, "v1"), store.ErrNotFound, "DeletePolicyVersion of a missing policy")
}

func testDeletePolicy(t *testing.T, s store.Store) {
	ctx := ctxOf(t)
	p := newPolicy(t, s, 1, "P", doc("v1"))
	newUser(t, s, 1, "alice")
	newGroup(t, s, 1, "admins")

	must(t, s.AttachUserPolicy(ctx, "alice", p.ARN))
	wantErr(t, s.DeletePolicy(ctx, p.ARN), store.ErrConflict, "DeletePolicy attached to a user")
	must(t, s.DetachUserPolicy(ctx, "alice", p.ARN))
	must(t, s.AttachGroupPolicy(ctx, "admins", p.ARN))
	wantErr(t, s.DeletePolicy(ctx, p.ARN), store.ErrConflict, "DeletePolicy attached to a group")
	must(t, s.DetachGroupPolicy(ctx, "admins", p.ARN))

	_, err := s.CreatePolicyVersion(ctx, p.ARN, doc("v2"), true, at(time.Minute))
	must(t, err)
	wantErr(t, s.DeletePolicy(ctx, p.ARN), store.ErrConflict, "DeletePolicy with a non-default version")
	must(t, s.DeletePolicyVersion(ctx, p.ARN, "v1"))

	must(t, s.DeletePolicy(ctx, p.ARN)) // its default version v2 goes with it
	_, err = s.GetPolicy(ctx, p.ARN)
	wantErr(t, err, store.ErrNotFound, "GetPolicy after delete")
	wantErr(t, s.DeletePolicy(ctx, p.ARN), store.ErrNotFound, "DeletePolicy twice")

	// The name is free again, and the new policy starts at v1.
	p2 := newPolicy(t, s, 2, "P", doc("again"))
	vs, err := s.ListPolicyVersions(ctx, p2.ARN)
	must(t, err)
	equal(t, "versions of a re-created policy", len(vs), 1)
	equal(t, "its version", []any{vs[0].VersionID, vs[0].Document}, []any{"v1", doc("again")})
}

func testAttachments(t *testing.T, s store.Store) {
	ctx := ctxOf(t)
	newUser(t, s, 1, "alice")
	newGroup(t, s, 1, "admins")
	a := newPolicy(t, s, 1, "A", doc("a"))
	b := newPolicy(t, s, 2, "B", doc("b"))
	missing := policyARN("/", "Missing")

	must(t, s.AttachUserPolicy(ctx, "alice", b.ARN))
	must(t, s.AttachUserPolicy(ctx, "ALICE", a.ARN))
	must(t, s.AttachUserPolicy(ctx, "alice", a.ARN)) // again: no error
	ps, err := s.ListAttachedUserPolicies(ctx, "alice")
	must(t, err)
	equal(t, "ListAttachedUserPolicies", policyARNs(ps), []string{a.ARN, b.ARN})
	equal(t, "attached policy fields", []any{ps[0].Name, ps[0].DefaultVersionID, ps[0].AttachmentCount}, []any{"A", "v1", 1})

	wantErr(t, s.AttachUserPolicy(ctx, "alice", missing), store.ErrNotFound, "AttachUserPolicy of a missing policy")
	wantErr(t, s.AttachUserPolicy(ctx, "nobody", a.ARN), store.ErrNotFound, "AttachUserPolicy to a missing user")
	_, err = s.ListAttachedUserPolicies(ctx, "nobody")
	wantErr(t, err, store.ErrNotFound, "ListAttachedUserPolicies of a missing user")

	must(t, s.AttachGroupPolicy(ctx, "Admins", a.ARN))
	gp, err := s.ListAttachedGroupPolicies(ctx, "admins")
	must(t, err)
	equal(t, "ListAttachedGroupPolicies", policyARNs(gp), []string{a.ARN})
	equal(t, "AttachmentCount counts users and groups", gp[0].AttachmentCount, 2)
	wantErr(t, s.AttachGroupPolicy(ctx, "admins", missing), store.ErrNotFound, "AttachGroupPolicy of a missing policy")
	wantErr(t, s.AttachGroupPolicy(ctx, "nogroup", a.ARN), store.ErrNotFound, "AttachGroupPolicy to a missing group")
	_, err = s.ListAttachedGroupPolicies(ctx, "nogroup")
	wantErr(t, err, store.ErrNotFound, "ListAttachedGroupPolicies of a missing group")

	must(t, s.DetachUserPolicy(ctx, "alice", a.ARN))
	wantErr(t, s.DetachUserPolicy(ctx, "alice", a.ARN), store.ErrNotFound, "DetachUserPolicy of a detached policy")
	wantErr(t, s.DetachUserPolicy(ctx, "nobody", a.ARN), store.ErrNotFound, "DetachUserPolicy of a missing user")
	must(t, s.DetachGroupPolicy(ctx, "admins", a.ARN))
	wantErr(t, s.DetachGroupPolicy(ctx, "admins", a.ARN), store.ErrNotFound, "DetachGroupPolicy of a detached policy")
	ps, err = s.ListAttachedUserPolicies(ctx, "alice")
	must(t, err)
	equal(t, "ListAttachedUserPolicies after detach", policyARNs(ps), []string{b.ARN})
	gp, err = s.ListAttachedGroupPolicies(ctx, "admins")
	must(t, err)
	equal(t, "ListAttachedGroupPolicies after detach", len(gp), 0)
	got, err := s.GetPolicy(ctx, a.ARN)
	must(t, err)
	equal(t, "AttachmentCount after detach", got.AttachmentCount, 0)
}

func testInlinePolicies(t *testing.T, s store.Store) {
	ctx := ctxOf(t)
	newUser(t, s, 1, "Alice")
	must(t, s.PutUserPolicy(ctx, store.InlinePolicy{UserName: "alice", PolicyName: "zeta", Document: doc("z")}))
	must(t, s.PutUserPolicy(ctx, store.InlinePolicy{UserName: "alice", PolicyName: "alpha", Document: doc("a")}))
	must(t, s.PutUserPolicy(ctx, store.InlinePolicy{UserName: "alice", PolicyName: "zeta", Document: doc("z2")})) // replaces

	p, err := s.GetUserPolicy(ctx, "alice", "zeta")
	must(t, err)
	equal(t, "GetUserPolicy", p, store.InlinePolicy{UserName: "Alice", PolicyName: "zeta", Document: doc("z2")})
	names, err := s.ListUserPolicies(ctx, "ALICE")
	must(t, err)
	equal(t, "ListUserPolicies", names, []string{"alpha", "zeta"})

	_, err = s.GetUserPolicy(ctx, "alice", "missing")
	wantErr(t, err, store.ErrNotFound, "GetUserPolicy of a missing policy")
	_, err = s.GetUserPolicy(ctx, "nobody", "zeta")
	wantErr(t, err, store.ErrNotFound, "GetUserPolicy of a missing user")
	wantErr(t, s.PutUserPolicy(ctx, store.InlinePolicy{UserName: "nobody", PolicyName: "p", Document: "{}"}), store.ErrNotFound, "PutUserPolicy for a missing user")
	_, err = s.ListUserPolicies(ctx, "nobody")
	wantErr(t, err, store.ErrNotFound, "ListUserPolicies of a missing user")

	must(t, s.DeleteUserPolicy(ctx, "alice", "zeta"))
	wantErr(t, s.DeleteUserPolicy(ctx, "alice", "zeta"), store.ErrNotFound, "DeleteUserPolicy twice")
	wantErr(t, s.DeleteUserPolicy(ctx, "nobody", "zeta"), store.ErrNotFound, "DeleteUserPolicy of a missing user")
	names, err = s.ListUserPolicies(ctx, "alice")
	must(t, err)
	equal(t, "ListUserPolicies after delete", names, []string{"alpha"})
}

func testLoginProfiles(t *testing.T, s store.Store) {
	ctx := ctxOf(t)
	newUser(t, s, 1, "Alice")
	lp := store.LoginProfile{UserName: "alice", PasswordHash: "$argon2id$v=19$m=65536,t=1,p=4$c2FsdA$aGFzaA", ResetRequired: true, CreateDate: at(time.Minute)}
	must(t, s.CreateLoginProfile(ctx, lp))
	wantErr(t, s.CreateLoginProfile(ctx, lp), store.ErrExists, "CreateLoginProfile twice")
	got, err := s.GetLoginProfile(ctx, "ALICE")
	must(t, err)
	want := lp
	want.UserName = "Alice"
	equal(t, "GetLoginProfile", got, want)

	must(t, s.UpdateLoginProfile(ctx, store.LoginProfile{UserName: "alice", PasswordHash: "$argon2id$new", ResetRequired: false, CreateDate: at(time.Hour)}))
	got, err = s.GetLoginProfile(ctx, "alice")
	must(t, err)
	equal(t, "after UpdateLoginProfile", got, store.LoginProfile{UserName: "Alice", PasswordHash: "$argon2id$new", ResetRequired: false, CreateDate: at(time.Minute)})

	must(t, s.DeleteLoginProfile(ctx, "alice"))
	_, err = s.GetLoginProfile(ctx, "alice")
	wantErr(t, err, store.ErrNotFound, "GetLoginProfile after delete")
	wantErr(t, s.DeleteLoginProfile(ctx, "alice"), store.ErrNotFound, "DeleteLoginProfile twice")
	wantErr(t, s.UpdateLoginProfile(ctx, lp), store.ErrNotFound, "UpdateLoginProfile without a profile")
	wantErr(t, s.CreateLoginProfile(ctx, store.LoginProfile{UserName: "nobody", PasswordHash: "x", CreateDate: at(0)}), store.ErrNotFound, "CreateLoginProfile for a missing user")
	_, err = s.GetLoginProfile(ctx, "nobody")
	wantErr(t, err, store.ErrNotFound, "GetLoginProfile of a missing user")
}

func testPrincipalPolicies(t *testing.T, s store.Store) {
	ctx := ctxOf(t)
	newUser(t, s, 1, "alice")
	newUser(t, s, 2, "bob")
	newGroup(t, s, 1, "g1")
	newGroup(t, s, 2, "g2")
	userOnly := newPolicy(t, s, 1, "UserOnly", doc("user-only"))
	both := newPolicy(t, s, 2, "Both", doc("both"))
	shared := newPolicy(t, s, 3, "Shared", doc("shared-v1"))
	g2only := newPolicy(t, s, 4, "AAAG2Only", doc("g2-only"))

	got, err := s.PrincipalPolicies(ctx, "alice")
	must(t, err)
	equal(t, "no policies", len(got), 0)
	_, err = s.PrincipalPolicies(ctx, "nobody")
	wantErr(t, err, store.ErrNotFound, "PrincipalPolicies of a missing user")

	must(t, s.PutUserPolicy(ctx, store.InlinePolicy{UserName: "alice", PolicyName: "inline-b", Document: doc("inline-b")}))
	must(t, s.PutUserPolicy(ctx, store.InlinePolicy{UserName: "alice", PolicyName: "inline-a", Document: doc("inline-a")}))
	must(t, s.AttachUserPolicy(ctx, "alice", userOnly.ARN))
	must(t, s.AttachUserPolicy(ctx, "alice", both.ARN))
	must(t, s.AddUserToGroup(ctx, "g1", "alice"))
	must(t, s.AddUserToGroup(ctx, "g2", "alice"))
	must(t, s.AttachGroupPolicy(ctx, "g1", shared.ARN))
	must(t, s.AttachGroupPolicy(ctx, "g2", shared.ARN)) // reached through two groups
	must(t, s.AttachGroupPolicy(ctx, "g2", both.ARN))   // and through the user too
	must(t, s.AttachGroupPolicy(ctx, "g2", g2only.ARN))
	_, err = s.CreatePolicyVersion(ctx, shared.ARN, doc("shared-v2"), true, at(time.Hour))
	must(t, err)
	_, err = s.CreatePolicyVersion(ctx, userOnly.ARN, doc("user-only-v2-not-default"), false, at(time.Hour))
	must(t, err)

	got, err = s.PrincipalPolicies(ctx, "ALICE")
	must(t, err)
	equal(t, "PrincipalPolicies", got, []store.PrincipalPolicy{
		{Name: "inline-a", Document: doc("inline-a")},
		{Name: "inline-b", Document: doc("inline-b")},
		{Name: both.ARN, Document: doc("both")},
		{Name: userOnly.ARN, Document: doc("user-only")},
		{Name: g2only.ARN, Document: doc("g2-only")},
		{Name: shared.ARN, Document: doc("shared-v2")},
	})

	// bob sees only what reaches him.
	must(t, s.AddUserToGroup(ctx, "g1", "bob"))
	got, err = s.PrincipalPolicies(ctx, "bob")
	must(t, err)
	equal(t, "bob's policies", got, []store.PrincipalPolicy{{Name: shared.ARN, Document: doc("shared-v2")}})
}

func testIAMGeneration(t *testing.T, s store.Store) {
	ctx := ctxOf(t)
	last, err := s.IAMGeneration(ctx)
	must(t, err)
	step := func(what string, write func() error) {
		t.Helper()
		must(t, write())
		g, err := s.IAMGeneration(ctx)
		must(t, err)
		if g <= last {
			t.Fatalf("IAMGeneration after %s: %d, want more than %d", what, g, last)
		}
		last = g
	}
	read := func(what string, r func() error) {
		t.Helper()
		must(t, r())
		g, err := s.IAMGeneration(ctx)
		must(t, err)
		if g != last {
			t.Fatalf("IAMGeneration after reading %s: %d, want %d", what, g, last)
		}
	}
	ignore := func(_ any, err error) error { return err }
	ignore3 := func(_, _ any, err error) error { return err }

	arn := policyARN("/", "P")
	key := store.AccessKey{ID: keyID(1), UserName: "alice", SecretCiphertext: []byte("s"), Status: store.StatusActive, CreateDate: at(0)}
	step("CreateUser", func() error {
		return s.CreateUser(ctx, store.User{ID: userID(1), Name: "alice", Path: "/", CreateDate: at(0)})
	})
	read("users", func() error { return ignore(s.GetUser(ctx, "alice")) })
	read("user list", func() error { return ignore(s.ListUsers(ctx, "")) })
	step("TagUser", func() error { return s.TagUser(ctx, "alice", []store.Tag{{Key: "k", Value: "v"}}) })
	step("UntagUser", func() error { return s.UntagUser(ctx, "alice", []string{"k"}) })
	step("CreateAccessKey", func() error { return s.CreateAccessKey(ctx, key) })
	read("access keys", func() error { return ignore(s.GetAccessKey(ctx, keyID(1))) })
	step("UpdateAccessKey", func() error { return s.UpdateAccessKey(ctx, "alice", keyID(1), store.StatusInactive) })
	step("DeleteAccessKey", func() error { return s.DeleteAccessKey(ctx, "alice", keyID(1)) })
	step("CreateGroup", func() error {
		return s.CreateGroup(ctx, store.Group{ID: groupID(1), Name: "g", Path: "/", CreateDate: at(0)})
	})
	read("groups", func() error { return ignore3(s.GetGroup(ctx, "g")) })
	step("AddUserToGroup", func() error { return s.AddUserToGroup(ctx, "g", "alice") })
	step("CreatePolicy", func() error {
		return s.CreatePolicy(ctx, store.ManagedPolicy{ARN: arn, ID: policyID(1), Name: "P", Path: "/", CreateDate: at(0)}, doc("a"))
	})
	read("policies", func() error { return ignore(s.GetPolicy(ctx, arn)) })
	step("CreatePolicyVersion", func() error { return ignore(s.CreatePolicyVersion(ctx, arn, doc("b"), false, at(time.Minute))) })
	step("SetDefaultPolicyVersion", func() error { return s.SetDefaultPolicyVersion(ctx, arn, "v2", at(time.Minute)) })
	step("DeletePolicyVersion", func() error { return s.DeletePolicyVersion(ctx, arn, "v1") })
	step("AttachUserPolicy", func() error { return s.AttachUserPolicy(ctx, "alice", arn) })
	step("AttachGroupPolicy", func() error { return s.AttachGroupPolicy(ctx, "g", arn) })
	read("principal policies", func() error { return ignore(s.PrincipalPolicies(ctx, "alice")) })
	step("DetachUserPolicy", func() error { return s.DetachUserPolicy(ctx, "alice", arn) })
	step("DetachGroupPolicy", func() error { return s.DetachGroupPolicy(ctx, "g", arn) })
	step("PutUserPolicy", func() error {
		return s.PutUserPolicy(ctx, store.InlinePolicy{UserName: "alice", PolicyName: "i", Document: doc("i")})
	})
	step("DeleteUserPolicy", func() error { return s.DeleteUserPolicy(ctx, "alice", "i") })
	step("CreateLoginProfile", func() error {
		return s.CreateLoginProfile(ctx, store.LoginProfile{UserName: "alice", PasswordHash: "h", CreateDate: at(0)})
	})
	step("UpdateLoginProfile", func() error {
		return s.UpdateLoginProfile(ctx, store.LoginProfile{UserName: "alice", PasswordHash: "h2"})
	})
	step("DeleteLoginProfile", func() error { return s.DeleteLoginProfile(ctx, "alice") })
	step("RemoveUserFromGroup", func() error { return s.RemoveUserFromGroup(ctx, "g", "alice") })
	step("DeleteGroup", func() error { return s.DeleteGroup(ctx, "g") })
	step("DeletePolicy", func() error { return s.DeletePolicy(ctx, arn) })
	step("DeleteUser", func() error { return s.DeleteUser(ctx, "alice") })

	// A refused write changes nothing, so it need not bump the generation;
	// it must not break the counter either.
	wantErr(t, s.DeleteUser(ctx, "alice"), store.ErrNotFound, "DeleteUser of a missing user")
	g, err := s.IAMGeneration(ctx)
	must(t, err)
	if g < last {
		t.Fatalf("IAMGeneration went back from %d to %d", last, g)
	}
}

// testHostileInput stores names and values that would break SQL built by
// concatenation; every engine must pass them as parameters.
func testHostileInput(t *testing.T, s store.Store) {
	ctx := ctxOf(t)
	hostile := []string{
		`o'brien`, `"; DROP TABLE users; --`, `a%b`, `a_b`, `back\slash`, "tab\tnew\nline",
		`$1`, `?`, `:name`, `@var`, `ünïcødé-名前`, strings.Repeat("x", 1000),
	}
	for i, h := range hostile {
		u := store.User{ID: userID(100 + i), Name: "u" + h, Path: "/p" + h + "/", CreateDate: at(0),
			Tags: []store.Tag{{Key: h, Value: h}}}
		must(t, s.CreateUser(ctx, u))
		got, err := s.GetUser(ctx, u.Name)
		must(t, err)
		equal(t, "hostile user", got, u)
		must(t, s.PutUserPolicy(ctx, store.InlinePolicy{UserName: u.Name, PolicyName: h, Document: h}))
		ip, err := s.GetUserPolicy(ctx, u.Name, h)
		must(t, err)
		equal(t, "hostile inline policy", ip.Document, h)
		must(t, s.TagResource(ctx, "eice-"+h, []store.Tag{{Key: h, Value: h}}))
		rt, err := s.ResourceTags(ctx, "eice-"+h)
		must(t, err)
		equal(t, "hostile resource tags", rt, []store.Tag{{Key: h, Value: h}})
	}
	all, err := s.ListUsers(ctx, "")
	must(t, err)
	equal(t, "users after hostile input", len(all), len(hostile))
	// LIKE wildcards in a path prefix match only themselves.
	for _, prefix := range []string{"/pa%", "/pa_", "/p%", "/p_"} {
		us, err := s.ListUsers(ctx, prefix)
		must(t, err)
		for _, u := range us {
			if !strings.HasPrefix(u.Path, prefix) {
				t.Fatalf("ListUsers(%q) returned path %q", prefix, u.Path)
			}
		}
	}
	us, err := s.ListUsers(ctx, "/pa%b/")
	must(t, err)
	equal(t, "ListUsers(/pa%b/)", userNames(us), []string{"ua%b"})
}

func testTimes(t *testing.T, s store.Store) {
	ctx := ctxOf(t)
	tokyo := time.FixedZone("JST", 9*3600)
	// Nanoseconds are beyond the contract: microseconds survive, and
	// times come back in UTC.
	in := time.Date(2026, 11, 3, 13, 5, 6, 123456789, tokyo)
	want := time.Date(2026, 11, 3, 4, 5, 6, 123456000, time.UTC)
	must(t, s.CreateUser(ctx, store.User{ID: userID(1), Name: "alice", Path: "/", CreateDate: in}))
	u, err := s.GetUser(ctx, "alice")
	must(t, err)
	if !u.CreateDate.Equal(want) || u.CreateDate.Location() != time.UTC {
		t.Fatalf("CreateDate %v (%v), want %v in UTC", u.CreateDate, u.CreateDate.Location(), want)
	}
	// Times before 1970 and far ahead survive too.
	for i, tm := range []time.Time{time.Date(1969, 7, 20, 20, 17, 40, 1000, time.UTC), time.Date(2999, 12, 31, 23, 59, 59, 999999000, time.UTC)} {
		must(t, s.CreateGroup(ctx, store.Group{ID: groupID(i), Name: fmt.Sprint("g", i), Path: "/", CreateDate: tm}))
		g, _, err := s.GetGroup(ctx, fmt.Sprint("g", i))
		must(t, err)
		equal(t, "group time", g.CreateDate, tm)
	}
}

// run calls f(0..n-1) concurrently, released at once, and waits.
func run(n int, f func(i int)) {
	start := make(chan struct{})
	done := make(chan struct{})
	for i := range n {
		go func() {
			defer func() { done <- struct{}{} }()
			<-start
			f(i)
		}()
	}
	close(start)
	for range n {
		<-done
	}
}

func testConcurrentAccessKeys(t *testing.T, s store.Store) {
	ctx := ctxOf(t)
	newUser(t, s, 1, "alice")
	const n = 20
	errs := make([]error, n)
	run(n, func(i int) {
		errs[i] = s.CreateAccessKey(ctx, store.AccessKey{ID: keyID(i), UserName: "alice", SecretCiphertext: []byte{byte(i)}, Status: store.StatusActive, CreateDate: at(0)})
	})
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, store.ErrLimitExceeded):
		default:
			t.Fatalf("concurrent CreateAccessKey: %v", err)
		}
	}
	equal(t, "keys created concurrently", ok, store.MaxAccessKeysPerUser)
	keys, err := s.ListAccessKeys(ctx, "alice")
	must(t, err)
	equal(t, "keys stored", len(keys), store.MaxAccessKeysPerUser)
}

func testConcurrentCreateUser(t *testing.T, s store.Store) {
	ctx := ctxOf(t)
	const n = 10
	errs := make([]error, n)
	run(n, func(i int) {
		// Same name in varying case, distinct IDs.
		name := "Shared-Name"
		if i%2 == 1 {
			name = strings.ToUpper(name)
		}
		errs[i] = s.CreateUser(ctx, store.User{ID: userID(i), Name: name, Path: "/", CreateDate: at(0)})
	})
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, store.ErrExists):
		default:
			t.Fatalf("concurrent CreateUser: %v", err)
		}
	}
	equal(t, "users created concurrently", ok, 1)
	all, err := s.ListUsers(ctx, "")
	must(t, err)
	equal(t, "users stored", len(all), 1)
}

func testConcurrentPolicyVersions(t *testing.T, s store.Store) {
	ctx := ctxOf(t)
	p := newPolicy(t, s, 1, "P", doc("v1"))
	const n = 10
	vs := make([]store.PolicyVersion, n)
	errs := make([]error, n)
	run(n, func(i int) {
		vs[i], errs[i] = s.CreatePolicyVersion(ctx, p.ARN, doc(fmt.Sprint(i)), i%3 == 0, at(time.Minute))
	})
	seen := map[string]bool{}
	for i, err := range errs {
		switch {
		case err == nil:
			if seen[vs[i].VersionID] {
				t.Fatalf("version %s created twice", vs[i].VersionID)
			}
			seen[vs[i].VersionID] = true
		case errors.Is(err, store.ErrLimitExceeded):
		default:
			t.Fatalf("concurrent CreatePolicyVersion: %v", err)
		}
	}
	equal(t, "versions created concurrently", len(seen), store.MaxPolicyVersions-1)
	for i := 2; i <= store.MaxPolicyVersions; i++ {
		if !seen[fmt.Sprintf("v%d", i)] {
			t.Fatalf("versions created: %v, want v2..v%d", seen, store.MaxPolicyVersions)
		}
	}
	list, err := s.ListPolicyVersions(ctx, p.ARN)
	must(t, err)
	equal(t, "versions stored", len(list), store.MaxPolicyVersions)
}

// testConcurrentDeleteUser races DeleteUser against writes that add
// dependents: either the user is gone and the dependent was refused, or the
// dependent exists and the delete was refused. Never both succeed.
func testConcurrentDeleteUser(t *testing.T, s store.Store) {
	ctx := ctxOf(t)
	for round := range 5 {
		name := fmt.Sprint("racer", round)
		newUser(t, s, round, name)
		var delErr, keyErr error
		run(2, func(i int) {
			if i == 0 {
				delErr = s.DeleteUser(ctx, name)
			} else {
				keyErr = s.CreateAccessKey(ctx, store.AccessKey{ID: keyID(round), UserName: name, SecretCiphertext: []byte("s"), Status: store.StatusActive, CreateDate: at(0)})
			}
		})
		switch {
		case delErr == nil && errors.Is(keyErr, store.ErrNotFound):
		case keyErr == nil && errors.Is(delErr, store.ErrConflict):
		default:
			t.Fatalf("round %d: DeleteUser: %v; CreateAccessKey: %v", round, delErr, keyErr)
		}
		if keyErr == nil {
			k, err := s.GetAccessKey(ctx, keyID(round))
			must(t, err)
			equal(t, "key owner", k.UserName, name)
		}
	}
}
