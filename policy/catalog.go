package policy

import (
	"sort"
	"strings"
)

// The catalog describes the services kaginashi serves, in the shape of
// AWS's Service Authorization Reference: each action, the resource types it
// can be granted on, the condition keys it supplies. The validator reads it
// to find actions that do not exist, keys that never apply and resources an
// action never touches; the evaluator indexes its actions.

// ActionInfo describes one action.
type ActionInfo struct {
	Service string `json:"service"` // "ec2-instance-connect"
	Name    string `json:"name"`    // "SendSSHPublicKey"
	// ResourceTypes the action is authorized on. Empty: the action has no
	// resource-level permissions and is granted on "*".
	ResourceTypes []string `json:"resourceTypes"`
	// ConditionKeys the action supplies besides the global aws: keys. Keys
	// ending in "/" are prefixes (aws:ResourceTag/team).
	ConditionKeys []string `json:"conditionKeys"`
}

// FullName is "service:Name".
func (a *ActionInfo) FullName() string { return a.Service + ":" + a.Name }

// ResourceType is an ARN shape actions are authorized on.
type ResourceType struct {
	Service string
	Name    string
	// ARN is the template, in the Service Authorization Reference's
	// notation: arn:${Partition}:ec2:${Region}:${Account}:instance/${InstanceId}.
	ARN string
}

// KeyInfo describes a condition key.
type KeyInfo struct {
	Name  string // "ec2:osuser"; a name ending in "/" is a prefix
	Type  ValueType
	Multi bool // multivalued: used with ForAllValues:/ForAnyValue:
}

// Services kaginashi serves; actions of other services are never asked for.
var servedServices = []string{"ec2-instance-connect", "ec2", "iam", "sts", "cloudtrail", "kaginashi"}

var resourceTypes = []ResourceType{
	{"ec2", "instance", "arn:${Partition}:ec2:${Region}:${Account}:instance/${InstanceId}"},
	{"ec2", "instance-connect-endpoint", "arn:${Partition}:ec2:${Region}:${Account}:instance-connect-endpoint/${InstanceConnectEndpointId}"},
	{"iam", "user", "arn:${Partition}:iam::${Account}:user/${UserNameWithPath}"},
	{"iam", "group", "arn:${Partition}:iam::${Account}:group/${GroupNameWithPath}"},
	{"iam", "policy", "arn:${Partition}:iam::${Account}:policy/${PolicyNameWithPath}"},
	{"iam", "mfa", "arn:${Partition}:iam::${Account}:mfa/${MfaTokenIdWithPath}"},
	{"kaginashi", "join-token", "arn:${Partition}:kaginashi:${Region}:${Account}:join-token/${TokenId}"},
	{"kaginashi", "recording", "arn:${Partition}:kaginashi:${Region}:${Account}:recording/${RecordingId}"},
}

var (
	ec2ResKeys    = []string{"aws:ResourceTag/", "ec2:ResourceTag/"}
	iamResKeys    = []string{"aws:ResourceTag/", "iam:ResourceTag/"}
	tagOnCreate   = []string{"aws:RequestTag/", "aws:TagKeys"}
	iamPolicyKeys = []string{"iam:PolicyARN", "iam:PermissionsBoundary", "aws:ResourceTag/", "iam:ResourceTag/"}
)

func keys(lists ...[]string) []string {
	var out []string
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}

var actionTable = buildActions()

func buildActions() []ActionInfo {
	var out []ActionInfo
	add := func(svc string, res []string, ks []string, names ...string) {
		for _, n := range names {
			out = append(out, ActionInfo{Service: svc, Name: n, ResourceTypes: res, ConditionKeys: ks})
		}
	}
	inst := []string{"instance"}
	eice := []string{"instance-connect-endpoint"}
	add("ec2-instance-connect", inst, keys([]string{"ec2:osuser"}, ec2ResKeys), "SendSSHPublicKey")
	add("ec2-instance-connect", inst, ec2ResKeys, "SendSerialConsoleSSHPublicKey")
	add("ec2-instance-connect", eice, keys([]string{
		"ec2-instance-connect:remotePort", "ec2-instance-connect:privateIpAddress", "ec2-instance-connect:maxTunnelDuration",
	}, ec2ResKeys), "OpenTunnel")

	add("ec2", nil, nil, "DescribeInstances", "DescribeInstanceConnectEndpoints", "DescribeTags")
	add("ec2", []string{"instance", "instance-connect-endpoint"}, keys(tagOnCreate, ec2ResKeys, []string{"ec2:CreateAction"}), "CreateTags")
	add("ec2", []string{"instance", "instance-connect-endpoint"}, keys(tagOnCreate, ec2ResKeys), "DeleteTags")

	user := []string{"user"}
	add("iam", user, keys(tagOnCreate, []string{"iam:PermissionsBoundary"}), "CreateUser")
	add("iam", user, iamResKeys,
		"GetUser", "DeleteUser", "ListUserTags",
		"CreateAccessKey", "ListAccessKeys", "UpdateAccessKey", "DeleteAccessKey",
		"ListAttachedUserPolicies", "GetUserPolicy", "ListUserPolicies",
		"ListGroupsForUser", "CreateLoginProfile", "UpdateLoginProfile", "GetLoginProfile", "DeleteLoginProfile",
		"EnableMFADevice", "ListMFADevices", "DeactivateMFADevice")
	add("iam", user, keys(tagOnCreate, iamResKeys), "TagUser")
	add("iam", user, keys([]string{"aws:TagKeys"}, iamResKeys), "UntagUser")
	add("iam", user, iamPolicyKeys, "AttachUserPolicy", "DetachUserPolicy")
	add("iam", user, keys([]string{"iam:PermissionsBoundary"}, iamResKeys), "PutUserPolicy", "DeleteUserPolicy")
	add("iam", user, keys([]string{"iam:PermissionsBoundary"}, iamResKeys), "PutUserPermissionsBoundary", "DeleteUserPermissionsBoundary")
	add("iam", []string{"user", "group"}, iamResKeys, "SimulatePrincipalPolicy")
	group := []string{"group"}
	add("iam", group, nil, "CreateGroup", "GetGroup", "DeleteGroup", "AddUserToGroup", "RemoveUserFromGroup", "ListAttachedGroupPolicies")
	add("iam", group, []string{"iam:PolicyARN"}, "AttachGroupPolicy", "DetachGroupPolicy")
	// The policy resource type has aws:ResourceTag/* only: iam:ResourceTag/*
	// is the user's and role's (Service Authorization Reference, IAM's
	// resource types table).
	pol := []string{"policy"}
	polResKeys := []string{"aws:ResourceTag/"}
	add("iam", pol, tagOnCreate, "CreatePolicy")
	add("iam", pol, polResKeys,
		"GetPolicy", "DeletePolicy", "CreatePolicyVersion", "GetPolicyVersion", "ListPolicyVersions",
		"SetDefaultPolicyVersion", "DeletePolicyVersion", "ListEntitiesForPolicy")
	add("iam", pol, keys(tagOnCreate, polResKeys), "TagPolicy")
	add("iam", pol, keys([]string{"aws:TagKeys"}, polResKeys), "UntagPolicy")
	add("iam", pol, polResKeys, "ListPolicyTags")
	// So has the mfa resource type.
	add("iam", []string{"mfa"}, keys(tagOnCreate, polResKeys), "CreateVirtualMFADevice", "DeleteVirtualMFADevice")
	add("iam", nil, nil, "ListUsers", "ListPolicies", "ListGroups", "ListVirtualMFADevices", "SimulateCustomPolicy")

	add("sts", nil, nil, "GetCallerIdentity")
	add("cloudtrail", nil, nil, "LookupEvents")

	add("kaginashi", nil, tagOnCreate, "CreateJoinToken")
	add("kaginashi", nil, nil, "ListJoinTokens")
	add("kaginashi", []string{"join-token"}, nil, "RevokeJoinToken")
	add("kaginashi", inst, ec2ResKeys, "DeregisterInstance")
	// The console's terminal session recordings.
	add("kaginashi", nil, nil, "ListSessionRecordings")
	add("kaginashi", []string{"recording"}, nil, "GetSessionRecording")
	return out
}

// globalKeys are AWS's global condition keys: they apply to every action.
var globalKeys = []KeyInfo{
	{"aws:CurrentTime", TypeDate, false},
	{"aws:EpochTime", TypeDate, false},
	{"aws:SecureTransport", TypeBool, false},
	{"aws:SourceIp", TypeIP, false},
	{"aws:VpcSourceIp", TypeIP, false},
	{"aws:UserAgent", TypeString, false},
	{"aws:Referer", TypeString, false},
	{"aws:username", TypeString, false},
	{"aws:userid", TypeString, false},
	{"aws:PrincipalArn", TypeARN, false},
	{"aws:PrincipalAccount", TypeString, false},
	{"aws:PrincipalType", TypeString, false},
	{"aws:PrincipalTag/", TypeString, false},
	{"aws:PrincipalOrgID", TypeString, false},
	{"aws:PrincipalOrgPaths", TypeString, true},
	{"aws:PrincipalIsAWSService", TypeBool, false},
	{"aws:PrincipalServiceName", TypeString, false},
	{"aws:PrincipalServiceNamesList", TypeString, true},
	{"aws:MultiFactorAuthPresent", TypeBool, false},
	{"aws:MultiFactorAuthAge", TypeNumeric, false},
	{"aws:RequestedRegion", TypeString, false},
	{"aws:TokenIssueTime", TypeDate, false},
	{"aws:SourceVpc", TypeString, false},
	{"aws:SourceVpce", TypeString, false},
	{"aws:ViaAWSService", TypeBool, false},
	{"aws:CalledVia", TypeString, true},
	{"aws:CalledViaFirst", TypeString, false},
	{"aws:CalledViaLast", TypeString, false},
	{"aws:ResourceAccount", TypeString, false},
	{"aws:ResourceOrgID", TypeString, false},
	{"aws:ResourceOrgPaths", TypeString, true},
	{"aws:SourceArn", TypeARN, false},
	{"aws:SourceAccount", TypeString, false},
	{"aws:SourceOrgID", TypeString, false},
	{"aws:SourceOrgPaths", TypeString, true},
	{"aws:SourceIdentity", TypeString, false},
	{"aws:FederatedProvider", TypeString, false},
	{"aws:IsMcpServiceAction", TypeBool, false},
}

// serviceKeys are the condition keys that only some actions supply.
var serviceKeys = []KeyInfo{
	{"aws:RequestTag/", TypeString, false},
	{"aws:ResourceTag/", TypeString, false},
	{"aws:TagKeys", TypeString, true},
	{"ec2:osuser", TypeString, false},
	{"ec2:ResourceTag/", TypeString, false},
	{"ec2:CreateAction", TypeString, false},
	{"ec2-instance-connect:remotePort", TypeNumeric, false},
	{"ec2-instance-connect:privateIpAddress", TypeIP, false},
	{"ec2-instance-connect:maxTunnelDuration", TypeNumeric, false},
	{"iam:PolicyARN", TypeARN, false},
	{"iam:PermissionsBoundary", TypeARN, false},
	{"iam:ResourceTag/", TypeString, false},
}

// Actions lists every action kaginashi serves, sorted.
func Actions() []ActionInfo {
	out := append([]ActionInfo(nil), actionTable...)
	sort.Slice(out, func(i, j int) bool { return out[i].FullName() < out[j].FullName() })
	return out
}

// LookupAction finds a served action by name, case-insensitively.
func LookupAction(name string) (*ActionInfo, bool) {
	for i := range actionTable {
		if strings.EqualFold(actionTable[i].FullName(), name) {
			return &actionTable[i], true
		}
	}
	return nil, false
}

func catalogActions() []string {
	out := make([]string, len(actionTable))
	for i := range actionTable {
		out[i] = actionTable[i].FullName()
	}
	return out
}

func isServedService(svc string) bool {
	for _, s := range servedServices {
		if strings.EqualFold(s, svc) {
			return true
		}
	}
	return false
}

// lookupResourceType finds a resource type by name; names are unique across
// the served services.
func lookupResourceType(name string) *ResourceType {
	for i := range resourceTypes {
		if resourceTypes[i].Name == name {
			return &resourceTypes[i]
		}
	}
	return nil
}

// LookupKey finds a condition key's description. Tag keys match their
// prefix: aws:PrincipalTag/team → aws:PrincipalTag/. global says whether
// the key applies to every action.
func LookupKey(name string) (info KeyInfo, global, ok bool) {
	for _, list := range []struct {
		keys   []KeyInfo
		global bool
	}{{globalKeys, true}, {serviceKeys, false}} {
		for _, k := range list.keys {
			if keyMatches(k.Name, name) {
				return k, list.global, true
			}
		}
	}
	return KeyInfo{}, false, false
}

// keyMatches compares a catalog key (maybe a "/"-ending prefix) with a key
// used in a policy, without regard to case.
func keyMatches(catalog, used string) bool {
	if strings.HasSuffix(catalog, "/") {
		return len(used) > len(catalog) && strings.EqualFold(used[:len(catalog)], catalog)
	}
	return strings.EqualFold(catalog, used)
}

// actionSupportsKey reports whether an action supplies a condition key.
func actionSupportsKey(a *ActionInfo, key string) bool {
	if _, global, ok := LookupKey(key); ok && global {
		return true
	}
	for _, k := range a.ConditionKeys {
		if keyMatches(k, key) {
			return true
		}
	}
	return false
}
