// Package connect is EC2 Instance Connect: it validates pushed SSH public
// keys the way the service model does (and stricter where a key could
// smuggle options into authorized_keys), and keeps the 60-second key
// records that hosts serve to sshd.
package connect

import (
	"crypto/rsa"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/crypto/ssh"

	"github.com/kaginashi/kaginashi/policy"
)

// KeyLifetime is how long a pushed key is accepted.
const KeyLifetimeSeconds = 60

// Model constraints of SendSSHPublicKey.
const (
	minKeyLen = 80
	maxKeyLen = 4096
)

var (
	instanceIDRE = regexp.MustCompile(`^i-[a-f0-9]+$`)
	azRE         = regexp.MustCompile(`^(\w+-){2,3}\d+\w+$`)
)

// ValidInstanceID checks an instance ID as the model does (i- and hex,
// 10-32 characters).
func ValidInstanceID(id string) error {
	if len(id) < 10 || len(id) > 32 || !instanceIDRE.MatchString(id) {
		return fmt.Errorf("InstanceId %q must match ^i-[a-f0-9]+$ and be 10 to 32 characters", id)
	}
	return nil
}

// ValidAvailabilityZone checks the optional AvailabilityZone parameter.
func ValidAvailabilityZone(az string) error {
	if len(az) < 6 || len(az) > 32 || !azRE.MatchString(az) {
		return fmt.Errorf("AvailabilityZone %q is malformed", az)
	}
	return nil
}

// PublicKey is a validated key: its canonical authorized_keys line (type
// and base64, comment dropped) and its SHA256 fingerprint.
type PublicKey struct {
	Type        string
	Line        string // "ssh-ed25519 AAAA..."
	Fingerprint string // "SHA256:..."
	Key         ssh.PublicKey
}

// Allowed key types. FIDO (sk-*) keys are refused as AWS does; DSA is long
// dead; certificates are not what Instance Connect pushes.
var allowedTypes = map[string]bool{
	ssh.KeyAlgoED25519:  true,
	ssh.KeyAlgoECDSA256: true,
	ssh.KeyAlgoECDSA384: true,
	ssh.KeyAlgoECDSA521: true,
	ssh.KeyAlgoRSA:      true,
}

// ParsePublicKey validates an SSHPublicKey parameter: one OpenSSH public
// key line ("type base64 [comment]"), 80-4096 characters, no options, no
// control characters, no second line (one trailing newline, as
// `file://key.pub` sends, is fine); ssh-ed25519, ecdsa-sha2-nistp256/384/521,
// or ssh-rsa of at least 2048 bits.
func ParsePublicKey(s string) (*PublicKey, error) {
	if len(s) < minKeyLen || len(s) > maxKeyLen {
		return nil, fmt.Errorf("SSHPublicKey must be %d to %d characters, not %d", minKeyLen, maxKeyLen, len(s))
	}
	// One line end may follow the key: "\n", or "\r\n" from a file saved
	// on Windows. A lone "\r" is a control character like any other.
	line, ok := strings.CutSuffix(s, "\r\n")
	if !ok {
		line = strings.TrimSuffix(s, "\n")
	}
	if !utf8.ValidString(line) {
		return nil, errors.New("SSH Public key is invalid: it is not UTF-8 text")
	}
	for _, r := range line {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' || isBidiControl(r) {
			// C0 and C1 controls, Unicode line and paragraph separators (a
			// second line to some readers), and bidirectional overrides,
			// which make the audit trail's text read as something else.
			return nil, fmt.Errorf("SSH Public key is invalid: it contains a control character (%U) or a second line", r)
		}
	}
	fields := strings.Fields(line)
	if len(fields) < 2 {
		return nil, errors.New("SSH Public key is invalid: want \"TYPE BASE64 [COMMENT]\"")
	}
	if strings.HasPrefix(fields[0], "sk-") {
		return nil, fmt.Errorf("SSH Public key is invalid: security-key (FIDO) keys such as %s are not supported", fields[0])
	}
	if !allowedTypes[fields[0]] {
		// Anything else first — including authorized_keys options such as
		// command="..." or from="..." — is refused, never passed on.
		if looksLikeKeyType(fields[0]) {
			return nil, fmt.Errorf("SSH Public key is invalid: %q is not a supported key type (ssh-ed25519, ecdsa-sha2-nistp256/384/521, ssh-rsa)", truncate(fields[0], 40))
		}
		return nil, fmt.Errorf("SSH Public key is invalid: it must start with the key type (ssh-ed25519, ecdsa-sha2-nistp256/384/521, ssh-rsa), not %q; authorized_keys options are not allowed", truncate(fields[0], 40))
	}
	key, _, options, rest, err := ssh.ParseAuthorizedKey([]byte(line))
	if err != nil {
		return nil, fmt.Errorf("SSH Public key is invalid: %v", err)
	}
	if len(options) > 0 || len(rest) > 0 {
		return nil, errors.New("SSH Public key is invalid: options or more than one key are not allowed")
	}
	if key.Type() != fields[0] {
		return nil, fmt.Errorf("SSH Public key is invalid: the key is a %s key but says %s", key.Type(), fields[0])
	}
	if key.Type() == ssh.KeyAlgoRSA {
		ck, ok := key.(ssh.CryptoPublicKey)
		if !ok {
			return nil, errors.New("SSH Public key is invalid: unreadable RSA key")
		}
		rk, ok := ck.CryptoPublicKey().(*rsa.PublicKey)
		if !ok || rk.N.BitLen() < 2048 {
			return nil, errors.New("SSH Public key is invalid: RSA keys must have at least 2048 bits")
		}
	}
	canonical := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key)))
	return &PublicKey{Type: key.Type(), Line: canonical, Fingerprint: ssh.FingerprintSHA256(key), Key: key}, nil
}

// looksLikeKeyType says whether an unsupported first word is a key type
// (ssh-dss, ssh-xmss@openssh.com, ...) rather than options.
func looksLikeKeyType(w string) bool {
	return (strings.HasPrefix(w, "ssh-") || strings.HasPrefix(w, "ecdsa-")) && !strings.ContainsAny(w, "=\",")
}

// isBidiControl says whether r is one of Unicode's bidirectional
// formatting characters (the "Trojan Source" ones).
func isBidiControl(r rune) bool {
	return r == '\u061c' || r == '\u200e' || r == '\u200f' || (r >= '\u202a' && r <= '\u202e') || (r >= '\u2066' && r <= '\u2069')
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// ValidOSUser checks InstanceOSUser as the model does.
func ValidOSUser(u string) error { return policy.ValidOSUser(u) }
