package awsapi

// The IAM API model's input constraints, for iamvalidate.go: every
// operation kaginashi serves, its members, and their shapes' lengths,
// patterns, enums and ranges, taken from the model the SDKs are generated
// from (botocore's data/iam/2010-05-08/service-2.json, which the aws CLI
// v1 ships). TestIAMModelMatchesBotocore compares this file with that
// model; an operation added to iamOps needs its entry here
// (TestIAMModelCoversEveryOperation). Patterns are in Go's syntax
// (\x{0020} for the model's \u0020).

var (
	shActionNameType             = &iamShape{name: "ActionNameType", kind: iamString, min: 3, max: 128}
	shContextKeyNameType         = &iamShape{name: "ContextKeyNameType", kind: iamString, min: 5, max: 256}
	shContextKeyTypeEnum         = &iamShape{name: "ContextKeyTypeEnum", kind: iamString, max: -1, enum: []string{"string", "stringList", "numeric", "numericList", "boolean", "booleanList", "ip", "ipList", "binary", "binaryList", "date", "dateList"}}
	shEntityType                 = &iamShape{name: "EntityType", kind: iamString, max: -1, enum: []string{"User", "Role", "Group", "LocalManagedPolicy", "AWSManagedPolicy"}}
	shPolicyUsageType            = &iamShape{name: "PolicyUsageType", kind: iamString, max: -1, enum: []string{"PermissionsPolicy", "PermissionsBoundary"}}
	shResourceHandlingOptionType = &iamShape{name: "ResourceHandlingOptionType", kind: iamString, min: 1, max: 64}
	shResourceNameType           = &iamShape{name: "ResourceNameType", kind: iamString, min: 1, max: 2048}
	shAccessKeyIdType            = &iamShape{name: "accessKeyIdType", kind: iamString, min: 16, max: 128, pattern: `[\w]+`}
	shArnType                    = &iamShape{name: "arnType", kind: iamString, min: 20, max: 2048}
	shAssignmentStatusType       = &iamShape{name: "assignmentStatusType", kind: iamString, max: -1, enum: []string{"Assigned", "Unassigned", "Any"}}
	shAuthenticationCodeType     = &iamShape{name: "authenticationCodeType", kind: iamString, min: 6, max: 6, pattern: `[\d]+`}
	shBooleanObjectType          = &iamShape{name: "booleanObjectType", kind: iamBool, max: -1}
	shBooleanType                = &iamShape{name: "booleanType", kind: iamBool, max: -1}
	shExistingUserNameType       = &iamShape{name: "existingUserNameType", kind: iamString, min: 1, max: 128, pattern: `[\w+=,.@-]+`}
	shGroupNameType              = &iamShape{name: "groupNameType", kind: iamString, min: 1, max: 128, pattern: `[\w+=,.@-]+`}
	shMarkerType                 = &iamShape{name: "markerType", kind: iamString, min: 1, max: 320, pattern: `[\x{0020}-\x{00FF}]+`}
	shMaxItemsType               = &iamShape{name: "maxItemsType", kind: iamInt, min: 1, max: 1000}
	shPasswordType               = &iamShape{name: "passwordType", kind: iamString, min: 1, max: 128, pattern: `[\x{0009}\x{000A}\x{000D}\x{0020}-\x{00FF}]+`, sensitive: true}
	shPathPrefixType             = &iamShape{name: "pathPrefixType", kind: iamString, min: 1, max: 512, pattern: `\x{002F}[\x{0021}-\x{007F}]*`}
	shPathType                   = &iamShape{name: "pathType", kind: iamString, min: 1, max: 512, pattern: `(\x{002F})|(\x{002F}[\x{0021}-\x{007E}]+\x{002F})`}
	shPolicyDescriptionType      = &iamShape{name: "policyDescriptionType", kind: iamString, max: 1000}
	shPolicyDocumentType         = &iamShape{name: "policyDocumentType", kind: iamString, min: 1, max: 131072, pattern: `[\x{0009}\x{000A}\x{000D}\x{0020}-\x{00FF}]+`}
	shPolicyNameType             = &iamShape{name: "policyNameType", kind: iamString, min: 1, max: 128, pattern: `[\w+=,.@-]+`}
	shPolicyPathType             = &iamShape{name: "policyPathType", kind: iamString, min: 1, max: 512, pattern: `((/[A-Za-z0-9\.,\+@=_-]+)*)/`}
	shPolicyScopeType            = &iamShape{name: "policyScopeType", kind: iamString, max: -1, enum: []string{"All", "AWS", "Local"}}
	shPolicyVersionIdType        = &iamShape{name: "policyVersionIdType", kind: iamString, max: -1, pattern: `v[1-9][0-9]*(\.[A-Za-z0-9-]*)?`}
	shSerialNumberType           = &iamShape{name: "serialNumberType", kind: iamString, min: 9, max: 256, pattern: `[\w+=/:,.@-]+`}
	shStatusType                 = &iamShape{name: "statusType", kind: iamString, max: -1, enum: []string{"Active", "Inactive", "Expired"}}
	shTagKeyType                 = &iamShape{name: "tagKeyType", kind: iamString, min: 1, max: 128, pattern: `[\p{L}\p{Z}\p{N}_.:/=+\-@]+`}
	shTagValueType               = &iamShape{name: "tagValueType", kind: iamString, min: 0, max: 256, pattern: `[\p{L}\p{Z}\p{N}_.:/=+\-@]*`}
	shUserNameType               = &iamShape{name: "userNameType", kind: iamString, min: 1, max: 64, pattern: `[\w+=,.@-]+`}
	shVirtualMFADeviceName       = &iamShape{name: "virtualMFADeviceName", kind: iamString, min: 1, max: -1, pattern: `[\w+=,.@-]+`}
)

var iamModel = map[string][]iamMember{
	"AddUserToGroup": {
		{name: "GroupName", required: true, shape: shGroupNameType},
		{name: "UserName", required: true, shape: shExistingUserNameType},
	},
	"AttachGroupPolicy": {
		{name: "GroupName", required: true, shape: shGroupNameType},
		{name: "PolicyArn", required: true, shape: shArnType},
	},
	"AttachUserPolicy": {
		{name: "UserName", required: true, shape: shUserNameType},
		{name: "PolicyArn", required: true, shape: shArnType},
	},
	"CreateAccessKey": {
		{name: "UserName", required: false, shape: shExistingUserNameType},
	},
	"CreateGroup": {
		{name: "Path", required: false, shape: shPathType},
		{name: "GroupName", required: true, shape: shGroupNameType},
	},
	"CreateLoginProfile": {
		{name: "UserName", required: false, shape: shUserNameType},
		{name: "Password", required: false, shape: shPasswordType},
		{name: "PasswordResetRequired", required: false, shape: shBooleanType},
	},
	"CreatePolicy": {
		{name: "PolicyName", required: true, shape: shPolicyNameType},
		{name: "Path", required: false, shape: shPolicyPathType},
		{name: "PolicyDocument", required: true, shape: shPolicyDocumentType},
		{name: "Description", required: false, shape: shPolicyDescriptionType},
		{name: "Tags", required: false, list: &iamList{max: 50, fields: []iamField{{"Key", shTagKeyType, true}, {"Value", shTagValueType, true}}}},
	},
	"CreatePolicyVersion": {
		{name: "PolicyArn", required: true, shape: shArnType},
		{name: "PolicyDocument", required: true, shape: shPolicyDocumentType},
		{name: "SetAsDefault", required: false, shape: shBooleanType},
	},
	"CreateUser": {
		{name: "Path", required: false, shape: shPathType},
		{name: "UserName", required: true, shape: shUserNameType},
		{name: "PermissionsBoundary", required: false, shape: shArnType},
		{name: "Tags", required: false, list: &iamList{max: 50, fields: []iamField{{"Key", shTagKeyType, true}, {"Value", shTagValueType, true}}}},
	},
	"CreateVirtualMFADevice": {
		{name: "Path", required: false, shape: shPathType},
		{name: "VirtualMFADeviceName", required: true, shape: shVirtualMFADeviceName},
		{name: "Tags", required: false, list: &iamList{max: 50, fields: []iamField{{"Key", shTagKeyType, true}, {"Value", shTagValueType, true}}}},
	},
	"DeactivateMFADevice": {
		{name: "UserName", required: false, shape: shExistingUserNameType},
		{name: "SerialNumber", required: true, shape: shSerialNumberType},
	},
	"DeleteAccessKey": {
		{name: "UserName", required: false, shape: shExistingUserNameType},
		{name: "AccessKeyId", required: true, shape: shAccessKeyIdType},
	},
	"DeleteGroup": {
		{name: "GroupName", required: true, shape: shGroupNameType},
	},
	"DeleteLoginProfile": {
		{name: "UserName", required: false, shape: shUserNameType},
	},
	"DeletePolicy": {
		{name: "PolicyArn", required: true, shape: shArnType},
	},
	"DeletePolicyVersion": {
		{name: "PolicyArn", required: true, shape: shArnType},
		{name: "VersionId", required: true, shape: shPolicyVersionIdType},
	},
	"DeleteUser": {
		{name: "UserName", required: true, shape: shExistingUserNameType},
	},
	"DeleteUserPermissionsBoundary": {
		{name: "UserName", required: true, shape: shUserNameType},
	},
	"DeleteUserPolicy": {
		{name: "UserName", required: true, shape: shExistingUserNameType},
		{name: "PolicyName", required: true, shape: shPolicyNameType},
	},
	"DeleteVirtualMFADevice": {
		{name: "SerialNumber", required: true, shape: shSerialNumberType},
	},
	"DetachGroupPolicy": {
		{name: "GroupName", required: true, shape: shGroupNameType},
		{name: "PolicyArn", required: true, shape: shArnType},
	},
	"DetachUserPolicy": {
		{name: "UserName", required: true, shape: shUserNameType},
		{name: "PolicyArn", required: true, shape: shArnType},
	},
	"EnableMFADevice": {
		{name: "UserName", required: true, shape: shExistingUserNameType},
		{name: "SerialNumber", required: true, shape: shSerialNumberType},
		{name: "AuthenticationCode1", required: true, shape: shAuthenticationCodeType},
		{name: "AuthenticationCode2", required: true, shape: shAuthenticationCodeType},
	},
	"GetGroup": {
		{name: "GroupName", required: true, shape: shGroupNameType},
		{name: "Marker", required: false, shape: shMarkerType},
		{name: "MaxItems", required: false, shape: shMaxItemsType},
	},
	"GetLoginProfile": {
		{name: "UserName", required: false, shape: shUserNameType},
	},
	"GetPolicy": {
		{name: "PolicyArn", required: true, shape: shArnType},
	},
	"GetPolicyVersion": {
		{name: "PolicyArn", required: true, shape: shArnType},
		{name: "VersionId", required: true, shape: shPolicyVersionIdType},
	},
	"GetUser": {
		{name: "UserName", required: false, shape: shExistingUserNameType},
	},
	"GetUserPolicy": {
		{name: "UserName", required: true, shape: shExistingUserNameType},
		{name: "PolicyName", required: true, shape: shPolicyNameType},
	},
	"ListAccessKeys": {
		{name: "UserName", required: false, shape: shExistingUserNameType},
		{name: "Marker", required: false, shape: shMarkerType},
		{name: "MaxItems", required: false, shape: shMaxItemsType},
	},
	"ListAttachedGroupPolicies": {
		{name: "GroupName", required: true, shape: shGroupNameType},
		{name: "PathPrefix", required: false, shape: shPolicyPathType},
		{name: "Marker", required: false, shape: shMarkerType},
		{name: "MaxItems", required: false, shape: shMaxItemsType},
	},
	"ListAttachedUserPolicies": {
		{name: "UserName", required: true, shape: shUserNameType},
		{name: "PathPrefix", required: false, shape: shPolicyPathType},
		{name: "Marker", required: false, shape: shMarkerType},
		{name: "MaxItems", required: false, shape: shMaxItemsType},
	},
	"ListEntitiesForPolicy": {
		{name: "PolicyArn", required: true, shape: shArnType},
		{name: "EntityFilter", required: false, shape: shEntityType},
		{name: "PathPrefix", required: false, shape: shPathType},
		{name: "PolicyUsageFilter", required: false, shape: shPolicyUsageType},
		{name: "Marker", required: false, shape: shMarkerType},
		{name: "MaxItems", required: false, shape: shMaxItemsType},
	},
	"ListGroups": {
		{name: "PathPrefix", required: false, shape: shPathPrefixType},
		{name: "Marker", required: false, shape: shMarkerType},
		{name: "MaxItems", required: false, shape: shMaxItemsType},
	},
	"ListGroupsForUser": {
		{name: "UserName", required: true, shape: shExistingUserNameType},
		{name: "Marker", required: false, shape: shMarkerType},
		{name: "MaxItems", required: false, shape: shMaxItemsType},
	},
	"ListMFADevices": {
		{name: "UserName", required: false, shape: shExistingUserNameType},
		{name: "Marker", required: false, shape: shMarkerType},
		{name: "MaxItems", required: false, shape: shMaxItemsType},
	},
	"ListPolicies": {
		{name: "Scope", required: false, shape: shPolicyScopeType},
		{name: "OnlyAttached", required: false, shape: shBooleanType},
		{name: "PathPrefix", required: false, shape: shPolicyPathType},
		{name: "PolicyUsageFilter", required: false, shape: shPolicyUsageType},
		{name: "Marker", required: false, shape: shMarkerType},
		{name: "MaxItems", required: false, shape: shMaxItemsType},
	},
	"ListPolicyTags": {
		{name: "PolicyArn", required: true, shape: shArnType},
		{name: "Marker", required: false, shape: shMarkerType},
		{name: "MaxItems", required: false, shape: shMaxItemsType},
	},
	"ListPolicyVersions": {
		{name: "PolicyArn", required: true, shape: shArnType},
		{name: "Marker", required: false, shape: shMarkerType},
		{name: "MaxItems", required: false, shape: shMaxItemsType},
	},
	"ListUserPolicies": {
		{name: "UserName", required: true, shape: shExistingUserNameType},
		{name: "Marker", required: false, shape: shMarkerType},
		{name: "MaxItems", required: false, shape: shMaxItemsType},
	},
	"ListUserTags": {
		{name: "UserName", required: true, shape: shExistingUserNameType},
		{name: "Marker", required: false, shape: shMarkerType},
		{name: "MaxItems", required: false, shape: shMaxItemsType},
	},
	"ListUsers": {
		{name: "PathPrefix", required: false, shape: shPathPrefixType},
		{name: "Marker", required: false, shape: shMarkerType},
		{name: "MaxItems", required: false, shape: shMaxItemsType},
	},
	"ListVirtualMFADevices": {
		{name: "AssignmentStatus", required: false, shape: shAssignmentStatusType},
		{name: "Marker", required: false, shape: shMarkerType},
		{name: "MaxItems", required: false, shape: shMaxItemsType},
	},
	"PutUserPermissionsBoundary": {
		{name: "UserName", required: true, shape: shUserNameType},
		{name: "PermissionsBoundary", required: true, shape: shArnType},
	},
	"PutUserPolicy": {
		{name: "UserName", required: true, shape: shExistingUserNameType},
		{name: "PolicyName", required: true, shape: shPolicyNameType},
		{name: "PolicyDocument", required: true, shape: shPolicyDocumentType},
	},
	"RemoveUserFromGroup": {
		{name: "GroupName", required: true, shape: shGroupNameType},
		{name: "UserName", required: true, shape: shExistingUserNameType},
	},
	"SetDefaultPolicyVersion": {
		{name: "PolicyArn", required: true, shape: shArnType},
		{name: "VersionId", required: true, shape: shPolicyVersionIdType},
	},
	"SimulateCustomPolicy": {
		{name: "PolicyInputList", required: true, list: &iamList{max: 0, elem: shPolicyDocumentType}},
		{name: "PermissionsBoundaryPolicyInputList", required: false, list: &iamList{max: 0, elem: shPolicyDocumentType}},
		{name: "ActionNames", required: true, list: &iamList{max: 0, elem: shActionNameType}},
		{name: "ResourceArns", required: false, list: &iamList{max: 0, elem: shResourceNameType}},
		{name: "ResourcePolicy", required: false, shape: shPolicyDocumentType},
		{name: "ResourceOwner", required: false, shape: shResourceNameType},
		{name: "CallerArn", required: false, shape: shResourceNameType},
		{name: "ContextEntries", required: false, list: &iamList{max: 0, fields: []iamField{{"ContextKeyName", shContextKeyNameType, false}, {"ContextKeyType", shContextKeyTypeEnum, false}}}},
		{name: "ResourceHandlingOption", required: false, shape: shResourceHandlingOptionType},
		{name: "MaxItems", required: false, shape: shMaxItemsType},
		{name: "Marker", required: false, shape: shMarkerType},
	},
	"SimulatePrincipalPolicy": {
		{name: "PolicySourceArn", required: true, shape: shArnType},
		{name: "PolicyInputList", required: false, list: &iamList{max: 0, elem: shPolicyDocumentType}},
		{name: "PermissionsBoundaryPolicyInputList", required: false, list: &iamList{max: 0, elem: shPolicyDocumentType}},
		{name: "ActionNames", required: true, list: &iamList{max: 0, elem: shActionNameType}},
		{name: "ResourceArns", required: false, list: &iamList{max: 0, elem: shResourceNameType}},
		{name: "ResourcePolicy", required: false, shape: shPolicyDocumentType},
		{name: "ResourceOwner", required: false, shape: shResourceNameType},
		{name: "CallerArn", required: false, shape: shResourceNameType},
		{name: "ContextEntries", required: false, list: &iamList{max: 0, fields: []iamField{{"ContextKeyName", shContextKeyNameType, false}, {"ContextKeyType", shContextKeyTypeEnum, false}}}},
		{name: "ResourceHandlingOption", required: false, shape: shResourceHandlingOptionType},
		{name: "MaxItems", required: false, shape: shMaxItemsType},
		{name: "Marker", required: false, shape: shMarkerType},
	},
	"TagPolicy": {
		{name: "PolicyArn", required: true, shape: shArnType},
		{name: "Tags", required: true, list: &iamList{max: 50, fields: []iamField{{"Key", shTagKeyType, true}, {"Value", shTagValueType, true}}}},
	},
	"TagUser": {
		{name: "UserName", required: true, shape: shExistingUserNameType},
		{name: "Tags", required: true, list: &iamList{max: 50, fields: []iamField{{"Key", shTagKeyType, true}, {"Value", shTagValueType, true}}}},
	},
	"UntagPolicy": {
		{name: "PolicyArn", required: true, shape: shArnType},
		{name: "TagKeys", required: true, list: &iamList{max: 50, elem: shTagKeyType}},
	},
	"UntagUser": {
		{name: "UserName", required: true, shape: shExistingUserNameType},
		{name: "TagKeys", required: true, list: &iamList{max: 50, elem: shTagKeyType}},
	},
	"UpdateAccessKey": {
		{name: "UserName", required: false, shape: shExistingUserNameType},
		{name: "AccessKeyId", required: true, shape: shAccessKeyIdType},
		{name: "Status", required: true, shape: shStatusType},
	},
	"UpdateLoginProfile": {
		{name: "UserName", required: true, shape: shUserNameType},
		{name: "Password", required: false, shape: shPasswordType},
		{name: "PasswordResetRequired", required: false, shape: shBooleanObjectType},
	},
}
