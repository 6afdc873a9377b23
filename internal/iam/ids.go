package iam

import (
	"crypto/rand"
	"fmt"
	"regexp"
	"strings"
)

// IDs look like AWS's: a four-letter prefix naming the kind (AIDA user,
// AGPA group, ANPA policy, AKIA access key) and random upper-case letters
// and digits. Secrets are 40 characters of the base64 alphabet, as AWS's.

const idAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"

func randomString(alphabet string, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err)) // the kernel's CSPRNG does not fail
	}
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

// Prefixes of IAM unique IDs.
const (
	PrefixUser      = "AIDA"
	PrefixGroup     = "AGPA"
	PrefixPolicy    = "ANPA"
	PrefixAccessKey = "AKIA"
)

// NewID returns a unique ID with a prefix: 21 characters, like AWS's.
func NewID(prefix string) string { return prefix + randomString(idAlphabet, 17) }

// NewAccessKeyID returns an access key ID: AKIA and 16 characters.
func NewAccessKeyID() string { return PrefixAccessKey + randomString(idAlphabet, 16) }

// NewSecret returns a 40-character secret access key.
func NewSecret() string {
	// 64 symbols: each byte mod 64 is uniform.
	return randomString("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", 40)
}

// NewAccountID returns a 12-digit account ID that does not start with 0.
func NewAccountID() string {
	return randomString("123456789", 1) + randomString("0123456789", 11)
}

var (
	nameRE       = regexp.MustCompile(`^[\w+=,.@-]+$`)
	pathRE       = regexp.MustCompile(`^(/|/[\x21-\x7E]+/)$`)
	accessKeyRE  = regexp.MustCompile(`^[\w]{16,128}$`)
	versionIDRE  = regexp.MustCompile(`^v[1-9][0-9]*(\.[A-Za-z0-9-]*)?$`)
	accountIDRE  = regexp.MustCompile(`^[0-9]{12}$`)
	policyARNLen = 2048
)

// ValidName checks a user, group or policy name as IAM does.
func ValidName(what, name string, max int) error {
	switch {
	case name == "":
		return fmt.Errorf("%s must not be empty", what)
	case len(name) > max:
		return fmt.Errorf("%s must be at most %d characters", what, max)
	case !nameRE.MatchString(name):
		return fmt.Errorf("%s %q may contain only letters, digits and +=,.@_-", what, name)
	}
	return nil
}

// ValidPath checks an IAM path: "/" or "/a/b/".
func ValidPath(p string) error {
	if len(p) > 512 || !pathRE.MatchString(p) {
		return fmt.Errorf("path %q must begin and end with / and contain only printable ASCII", p)
	}
	return nil
}

// ValidAccessKeyID checks an access key ID's shape.
func ValidAccessKeyID(id string) error {
	if !accessKeyRE.MatchString(id) {
		return fmt.Errorf("access key ID %q is malformed", id)
	}
	return nil
}

// ValidVersionID checks a policy version ID such as v3.
func ValidVersionID(v string) error {
	if !versionIDRE.MatchString(v) {
		return fmt.Errorf("version ID %q is malformed; it looks like v1", v)
	}
	return nil
}

// ValidAccountID checks a 12-digit account ID.
func ValidAccountID(a string) error {
	if !accountIDRE.MatchString(a) {
		return fmt.Errorf("account ID %q must be 12 digits", a)
	}
	return nil
}

// ARNs of the account's IAM entities. Partition is always aws, so policies
// written for AWS work unchanged.

// UserARN is arn:aws:iam::ACCOUNT:user/PATH/NAME.
func UserARN(account, path, name string) string {
	return "arn:aws:iam::" + account + ":user" + path + name
}

// GroupARN is arn:aws:iam::ACCOUNT:group/PATH/NAME.
func GroupARN(account, path, name string) string {
	return "arn:aws:iam::" + account + ":group" + path + name
}

// PolicyARN is arn:aws:iam::ACCOUNT:policy/PATH/NAME.
func PolicyARN(account, path, name string) string {
	return "arn:aws:iam::" + account + ":policy" + path + name
}

// RootARN is the account root's ARN.
func RootARN(account string) string { return "arn:aws:iam::" + account + ":root" }

// ParsePolicyARN splits an account policy ARN into account, path and name.
func ParsePolicyARN(arn string) (account, path, name string, err error) {
	if len(arn) > policyARNLen {
		return "", "", "", fmt.Errorf("policy ARN is too long")
	}
	rest, ok := strings.CutPrefix(arn, "arn:aws:iam::")
	if !ok {
		return "", "", "", fmt.Errorf("%q is not an IAM policy ARN (arn:aws:iam::ACCOUNT:policy/NAME)", arn)
	}
	account, rest, ok = strings.Cut(rest, ":policy/")
	if !ok || ValidAccountID(account) != nil {
		return "", "", "", fmt.Errorf("%q is not an IAM policy ARN (arn:aws:iam::ACCOUNT:policy/NAME)", arn)
	}
	i := strings.LastIndexByte(rest, '/')
	path, name = "/"+rest[:i+1], rest[i+1:]
	if err := ValidName("policy name", name, 128); err != nil {
		return "", "", "", err
	}
	if err := ValidPath(path); err != nil {
		return "", "", "", err
	}
	return account, path, name, nil
}
