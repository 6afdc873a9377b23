package keyrecord

import (
	"regexp"
	"strings"
	"testing"
)

// The regular expressions the hand-written checks replaced: the
// definition of what each field may hold.
var fieldRE = map[string]struct {
	re    *regexp.Regexp
	check func(string) bool
}{
	"request":     {regexp.MustCompile(`^[A-Za-z0-9-]{1,64}$`), validRequestID},
	"instance":    {regexp.MustCompile(`^i-[0-9a-f]{8,32}$`), validInstanceID},
	"user":        {regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9@._-]{0,31}\$?$`), validOSUser},
	"key":         {regexp.MustCompile(`^(ssh-ed25519|ecdsa-sha2-nistp256|ecdsa-sha2-nistp384|ecdsa-sha2-nistp521|ssh-rsa) [A-Za-z0-9+/]+={0,3}$`), validKeyLine},
	"fingerprint": {regexp.MustCompile(`^SHA256:[A-Za-z0-9+/]{43}$`), validFingerprint},
	"arn":         {regexp.MustCompile(`^arn:[a-z-]+:iam::[0-9]{12}:[\x21-\x7e]+$`), validARN},
}

var fieldSamples = []string{
	"", "-", "a", "$", "a$", "a$$", "_x", "@x", "x@y.z_-", strings.Repeat("a", 32), strings.Repeat("a", 32) + "$", strings.Repeat("a", 33),
	strings.Repeat("A", 64), strings.Repeat("A", 65), "8c9f3a52-0b1e-4a8e", "a b", "a\n", "a\x00",
	"i-", "i-0123456", "i-01234567", "i-0123456789abcdef0", "i-0123456789ABCDEF0", "i-" + strings.Repeat("f", 32), "i-" + strings.Repeat("f", 33), "x-01234567",
	"ssh-ed25519 AAAA", "ssh-ed25519 AAAA=", "ssh-ed25519 AAAA===", "ssh-ed25519 AAAA====", "ssh-ed25519 ===", "ssh-ed25519 ", "ssh-ed25519",
	"ssh-ed25519  AAAA", "ssh-ed25519 AA AA", "ssh-ed25519 AA=A", "ssh-dss AAAA", "sk-ssh-ed25519@openssh.com AAAA", "ecdsa-sha2-nistp521 A+/9", "ssh-rsa AAAA\n",
	"SHA256:" + strings.Repeat("A", 43), "SHA256:" + strings.Repeat("A", 42), "SHA256:" + strings.Repeat("+", 43), "SHA256:" + strings.Repeat("=", 43), "sha256:" + strings.Repeat("A", 43),
	"arn:aws:iam::123456789012:user/alice", "arn:aws-cn:iam::123456789012:root", "arn::iam::123456789012:root", "arn:aws:iam::12345678901:root",
	"arn:aws:iam::123456789012:", "arn:aws:iam::123456789012:a b", "arn:aws:iam::123456789012:~!", "arn:AWS:iam::123456789012:x", "arn:a:b:iam::123456789012:x",
	"arn:aws:iam::123456789012:user/é", "arn:aws:iam::1234567890123:x", "arn:aws:iam:::iam::123456789012:x",
}

func TestFieldChecksMatchRegexps(t *testing.T) {
	for name, f := range fieldRE {
		for _, s := range fieldSamples {
			if got, want := f.check(s), f.re.MatchString(s); got != want {
				t.Errorf("%s check(%q) = %v, the regexp says %v", name, s, got, want)
			}
		}
	}
}

// FuzzFieldChecks: every hand-written check agrees with its regexp on any input.
func FuzzFieldChecks(f *testing.F) {
	for _, s := range fieldSamples {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for name, fc := range fieldRE {
			if got, want := fc.check(s), fc.re.MatchString(s); got != want {
				t.Fatalf("%s check(%q) = %v, the regexp says %v", name, s, got, want)
			}
		}
	})
}
