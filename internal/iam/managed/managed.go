// Package managed is kaginashi's curated set of AWS-managed policies:
// arn:aws:iam::aws:policy/NAME, attachable like customer policies and
// read-only, so that policies and scripts written for AWS ("attach
// AdministratorAccess", "attach EC2InstanceConnect") work unchanged.
//
// Each document in aws/ is AWS's text, not ours: do not edit one except to
// follow a new AWS version, and then change its version, dates and source
// below together. Only policies whose exact text was found are shipped;
// ReadOnlyAccess is absent because its document (thousands of actions,
// revised every few weeks) could not be obtained whole.
package managed

import (
	"crypto/sha256"
	"embed"
	"encoding/base32"
	"fmt"
	"strings"
	"time"
)

// ARNPrefix starts every AWS-managed policy ARN.
const ARNPrefix = "arn:aws:iam::aws:policy/"

//go:embed aws/*.json
var documents embed.FS

// Policy is one AWS-managed policy as kaginashi ships it.
type Policy struct {
	Name        string
	Path        string
	Description string
	// VersionID is AWS's default version of the document shipped.
	VersionID string
	// Created and Updated are AWS's creation and last-edit times.
	Created, Updated time.Time
	Document         string
	// Source is where the document's text was taken from.
	Source string
}

// ARN is arn:aws:iam::aws:policy/PATH/NAME.
func (p Policy) ARN() string { return ARNPrefix + strings.TrimPrefix(p.Path, "/") + p.Name }

// ID is a stable policy ID of IAM's shape (ANPA and 17 characters),
// derived from the name so that every server and replica agrees on it.
// It is not AWS's ID for the policy.
func (p Policy) ID() string {
	sum := sha256.Sum256([]byte("kaginashi aws-managed policy " + p.ARN()))
	return "ANPA" + base32.StdEncoding.EncodeToString(sum[:])[:17]
}

// IsAWS tells whether an ARN is in the AWS-managed namespace.
func IsAWS(arn string) bool { return strings.HasPrefix(arn, ARNPrefix) }

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(fmt.Sprintf("managed: bad time %q: %v", s, err)) // a constant below is wrong
	}
	return t
}

// referenceURL is AWS's managed policy reference page of a policy.
func referenceURL(name string) string {
	return "https://docs.aws.amazon.com/aws-managed-policy/latest/reference/" + name + ".html"
}

// snapshot is `aws iam get-policy-version` output of the default version,
// as collected in github.com/cloudy-native/aws-managed-policies
// (policies/NAME.md): used where AWS's reference page was not at hand.
func snapshot(name string) string {
	return "aws iam get-policy-version, as recorded in github.com/cloudy-native/aws-managed-policies policies/" + name + ".md"
}

// All returns the shipped policies, by name.
func All() []Policy {
	ps := []Policy{
		{Name: "AdministratorAccess", Description: "Provides full access to AWS services and resources.",
			VersionID: "v1", Created: utc("2015-02-06T18:39:46Z"), Updated: utc("2015-02-06T18:39:46Z"),
			Source: snapshot("AdministratorAccess")},
		{Name: "AmazonEC2ReadOnlyAccess", Description: "Provides read only access to Amazon EC2 via the AWS Management Console.",
			// AWS's current default is v5 (it adds ec2:GetSecurityGroupsForVpc
			// among others); its whole text was not at hand, so v1 ships, under
			// its own version ID. For kaginashi's EC2 API both allow the same.
			VersionID: "v1", Created: utc("2015-02-06T18:40:17Z"), Updated: utc("2015-02-06T18:40:17Z"),
			Source: snapshot("AmazonEC2ReadOnlyAccess")},
		{Name: "EC2InstanceConnect", Description: "Allows customers to call EC2 Instance Connect to publish ephemeral keys to their EC2 instances and connect via ssh or the EC2 Instance Connect CLI.",
			VersionID: "v1", Created: utc("2019-06-27T18:53:34Z"), Updated: utc("2019-06-27T18:53:34Z"),
			Source: snapshot("EC2InstanceConnect")},
		{Name: "IAMFullAccess", Description: "Provides full access to IAM via the AWS Management Console.",
			VersionID: "v2", Created: utc("2015-02-06T18:40:00Z"), Updated: utc("2019-06-21T19:40:00Z"),
			Source: referenceURL("IAMFullAccess")},
		{Name: "IAMReadOnlyAccess", Description: "Provides read only access to IAM via the AWS Management Console.",
			VersionID: "v4", Created: utc("2015-02-06T18:40:00Z"), Updated: utc("2018-01-25T19:11:00Z"),
			Source: referenceURL("IAMReadOnlyAccess")},
		{Name: "PowerUserAccess", Description: "Provides full access to AWS services and resources, but does not allow management of Users and groups.",
			VersionID: "v12", Created: utc("2015-02-06T18:39:00Z"), Updated: utc("2026-02-12T17:59:00Z"),
			Source: referenceURL("PowerUserAccess")},
	}
	for i := range ps {
		ps[i].Path = "/"
		b, err := documents.ReadFile("aws/" + ps[i].Name + ".json")
		if err != nil {
			panic(fmt.Sprintf("managed: %v", err)) // every listed policy has its file: see the test
		}
		ps[i].Document = strings.TrimSuffix(string(b), "\n")
	}
	return ps
}
