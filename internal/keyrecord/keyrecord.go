// Package keyrecord is the signed record of one pushed SSH key: what the
// server sends an agent, what the agent persists, and what the
// AuthorizedKeysCommand verifies again before it prints a key for sshd.
//
// A record is signed by the server's Ed25519 key, which the agent pinned at
// enrollment; an agent obeys nothing else. The signed bytes are a fixed,
// versioned, line-based encoding of every field, so nothing outside the
// signature can change a record's meaning. Fields are validated so that no
// value can hold a newline, a quote or anything sshd would read as an
// option: the key line printed for sshd is built from checked parts only.
//
// The package uses only the standard library: the AuthorizedKeysCommand
// links it, and sshd runs that on every login attempt.
package keyrecord

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Record is one pushed key.
type Record struct {
	RequestID  string `json:"requestId"`
	InstanceID string `json:"instanceId"`
	OSUser     string `json:"osUser"`
	// PublicKey is the canonical "type base64" line, no comment.
	PublicKey   string `json:"publicKey"`
	Fingerprint string `json:"fingerprint"`
	CallerARN   string `json:"callerArn"`
	// IssuedAt and ExpiresAt are the server's clock, Unix seconds.
	IssuedAt  int64  `json:"issuedAt"`
	ExpiresAt int64  `json:"expiresAt"`
	Signature []byte `json:"signature"`
}

// MaxLifetime bounds ExpiresAt - IssuedAt: nothing signed can live longer
// than Instance Connect's 60 seconds (plus a margin for clock rounding),
// whatever a server says.
const MaxLifetime = 60

const header = "kaginashi-key-record-v1\n"

// The field checks below are hand-written rather than regular expressions:
// `authorized-keys` runs on every SSH login and compiling six regexps at
// package init cost it ~0.4 ms of its start-up. keyrecord_test.go checks
// each against the regular expression it replaces.

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// validRequestID: ^[A-Za-z0-9-]{1,64}$
func validRequestID(s string) bool {
	if len(s) < 1 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isAlnum(s[i]) && s[i] != '-' {
			return false
		}
	}
	return true
}

// validInstanceID: ^i-[0-9a-f]{8,32}$
func validInstanceID(s string) bool {
	if len(s) < 2+8 || len(s) > 2+32 || s[:2] != "i-" {
		return false
	}
	for i := 2; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// validOSUser: ^[A-Za-z0-9_][A-Za-z0-9@._-]{0,31}\$?$
func validOSUser(s string) bool {
	if n := len(s); n > 1 && s[n-1] == '$' {
		s = s[:n-1]
	}
	if len(s) < 1 || len(s) > 32 || !(isAlnum(s[0]) || s[0] == '_') {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && c != '@' && c != '.' && c != '_' && c != '-' {
			return false
		}
	}
	return true
}

// keyTypes are the public key algorithms a record may carry.
var keyTypes = [...]string{"ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521", "ssh-rsa"}

// validKeyLine: ^(ssh-ed25519|ecdsa-sha2-nistp256|...|ssh-rsa) [A-Za-z0-9+/]+={0,3}$
func validKeyLine(s string) bool {
	typ, blob, ok := strings.Cut(s, " ")
	if !ok {
		return false
	}
	known := false
	for _, t := range keyTypes {
		known = known || typ == t
	}
	if !known {
		return false
	}
	body := strings.TrimRight(blob, "=")
	if len(blob)-len(body) > 3 || !isBase64(body) {
		return false
	}
	return len(body) > 0
}

func isBase64(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && c != '+' && c != '/' {
			return false
		}
	}
	return true
}

// validFingerprint: ^SHA256:[A-Za-z0-9+/]{43}$
func validFingerprint(s string) bool {
	return len(s) == 7+43 && s[:7] == "SHA256:" && isBase64(s[7:])
}

// validARN: ^arn:[a-z-]+:iam::[0-9]{12}:[\x21-\x7e]+$
func validARN(s string) bool {
	rest, ok := strings.CutPrefix(s, "arn:")
	if !ok {
		return false
	}
	part, rest, ok := strings.Cut(rest, ":iam::")
	if !ok || part == "" {
		return false
	}
	for i := 0; i < len(part); i++ {
		if c := part[i]; !(c >= 'a' && c <= 'z' || c == '-') {
			return false
		}
	}
	if len(rest) < 12+1+1 || rest[12] != ':' {
		return false
	}
	for i := 0; i < 12; i++ {
		if c := rest[i]; c < '0' || c > '9' {
			return false
		}
	}
	for i := 13; i < len(rest); i++ {
		if c := rest[i]; c < 0x21 || c > 0x7e {
			return false
		}
	}
	return true
}

// Check validates every field's shape: what passes can be printed for sshd
// and logged without quoting surprises.
func (r *Record) Check() error {
	switch {
	case !validRequestID(r.RequestID):
		return errors.New("key record: malformed request ID")
	case !validInstanceID(r.InstanceID):
		return errors.New("key record: malformed instance ID")
	case !validOSUser(r.OSUser):
		return errors.New("key record: malformed OS user")
	case len(r.PublicKey) > 4096 || !validKeyLine(r.PublicKey):
		return errors.New("key record: malformed public key")
	case !validFingerprint(r.Fingerprint):
		return errors.New("key record: malformed fingerprint")
	case len(r.CallerARN) > 1300 || !validARN(r.CallerARN) || strings.ContainsAny(r.CallerARN, `"\`):
		return errors.New("key record: malformed caller ARN")
	case r.ExpiresAt <= r.IssuedAt || r.ExpiresAt-r.IssuedAt > MaxLifetime:
		return fmt.Errorf("key record: lifetime %ds is outside 1-%ds", r.ExpiresAt-r.IssuedAt, MaxLifetime)
	}
	return nil
}

// signed is the exact byte string the signature covers.
func (r *Record) signed() []byte {
	var b bytes.Buffer
	b.WriteString(header)
	for _, kv := range [][2]string{
		{"request", r.RequestID}, {"instance", r.InstanceID}, {"user", r.OSUser}, {"key", r.PublicKey},
		{"fingerprint", r.Fingerprint}, {"caller", r.CallerARN},
		{"issued", strconv.FormatInt(r.IssuedAt, 10)}, {"expires", strconv.FormatInt(r.ExpiresAt, 10)},
	} {
		b.WriteString(kv[0])
		b.WriteByte('=')
		b.WriteString(kv[1])
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// Sign checks the record and signs it.
func (r *Record) Sign(priv ed25519.PrivateKey) error {
	if err := r.Check(); err != nil {
		return err
	}
	r.Signature = ed25519.Sign(priv, r.signed())
	return nil
}

// Errors of Verify.
var (
	ErrSignature = errors.New("key record: bad signature")
	ErrInstance  = errors.New("key record: for another instance")
	ErrUser      = errors.New("key record: for another user")
	ErrExpired   = errors.New("key record: expired")
)

// Verify checks that the record is well formed, signed by pub, for this
// instance and user, and unexpired at serverNow — the server's clock as
// the agent estimates it (local time corrected by the measured skew), so
// a host's clock error neither shortens nor lengthens the 60 seconds.
func (r *Record) Verify(pub ed25519.PublicKey, instanceID, user string, serverNow time.Time) error {
	if err := r.Check(); err != nil {
		return err
	}
	if len(pub) != ed25519.PublicKeySize || !verifyEd25519(pub, r.signed(), r.Signature) {
		return ErrSignature
	}
	if r.InstanceID != instanceID {
		return ErrInstance
	}
	if user != "" && r.OSUser != user {
		return ErrUser
	}
	if serverNow.Unix() >= r.ExpiresAt {
		return ErrExpired
	}
	return nil
}

// AuthorizedKeysLine is the line sshd reads. With expiryOption (OpenSSH
// 7.7 and later understand it; older sshd refuse the whole line), the key
// carries expiry-time="YYYYMMDDHHMMSSZ", so sshd itself refuses it after
// the expiry even if something served it later. serverToLocal shifts the
// expiry from the server's clock to this host's, which is what sshd
// compares with. The result holds only validated characters, and nothing
// but the option and the key: no comment (the issue's contract is "each
// key with its expiry-time, nothing else"; the request ID is in the
// syslog line that goes with it).
func (r *Record) AuthorizedKeysLine(serverToLocal time.Duration, expiryOption bool) string {
	line := r.PublicKey
	if !expiryOption {
		return line
	}
	exp := time.Unix(r.ExpiresAt, 0).Add(serverToLocal).UTC().Format("20060102150405Z")
	return `expiry-time="` + exp + `" ` + line
}

// EncodeSignature and DecodeSignature are for logs and text files.
func EncodeSignature(sig []byte) string { return base64.StdEncoding.EncodeToString(sig) }

// DecodeSignature reads a signature written by EncodeSignature.
func DecodeSignature(s string) ([]byte, error) { return base64.StdEncoding.DecodeString(s) }
